//! Row scope (access.md): what a caller's session registers, per table or view. The filter is
//! part of each view's plan, so it holds however the caller's SQL is written; anything not
//! listed here is hidden from scoped callers (fail closed).

use std::collections::BTreeSet;

use plsw_store::{Access, Divisions};

use crate::tokens::{Role, Scope, TokenRecord};

/// The bookkeeping views: admins and province-scoped analysts only.
const BOOKKEEPING: &[&str] = &["loads", "quarantine", "transforms"];

/// The cities and counties a scope covers (a city brings its counties).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Places {
    pub cities: BTreeSet<String>,
    pub counties: BTreeSet<String>,
}

impl Places {
    pub fn of(codes: &[String], d: &Divisions) -> Places {
        let mut p = Places::default();
        for c in codes {
            if d.is_city(c) {
                p.cities.insert(c.clone());
            } else if d.is_county(c) {
                p.counties.insert(c.clone());
            }
        }
        for (county, city) in d.county_cities() {
            if p.cities.contains(city) {
                p.counties.insert(county.to_string());
            }
        }
        p
    }
}

/// `'a', 'b'`, or a value no code has, so that `IN (…)` stays valid SQL and matches nothing.
fn list<'a>(codes: impl IntoIterator<Item = &'a String>) -> String {
    let items: Vec<String> = codes
        .into_iter()
        .filter(|c| c.chars().all(|ch| ch.is_ascii_digit()))
        .map(|c| format!("'{c}'"))
        .collect();
    if items.is_empty() {
        "'-'".into()
    } else {
        items.join(", ")
    }
}

/// Whether `caller` may see the loads, the quarantine and the transforms (access.md: admins and
/// province-scoped analysts).
pub fn sees_bookkeeping(caller: &TokenRecord) -> bool {
    caller.role == Role::Admin || (caller.role == Role::Analyst && caller.scope == Scope::Province)
}

/// What `caller` may see of the view `name`.
pub fn access(caller: &TokenRecord, places: Option<&Places>, name: &str) -> Access {
    if BOOKKEEPING.contains(&name) {
        return if sees_bookkeeping(caller) {
            Access::Full
        } else {
            Access::Hidden
        };
    }
    let Some(p) = places else {
        return Access::Full;
    };
    let cities = list(&p.cities);
    let counties = list(&p.counties);
    let both = list(p.cities.iter().chain(&p.counties));
    let base = name
        .strip_suffix(plsw_store::CURRENT_SUFFIX)
        .unwrap_or(name);
    let predicate = match base {
        "hotline_calls" => format!("seat_city_code IN ({cities})"),
        "work_order_versions" => format!(
            "(platform_level IN ('county', 'township', 'village') AND substr(division_code, 1, 6) IN ({counties}))
             OR (platform_level = 'city' AND division_code IN ({cities}))"
        ),
        "cases" => format!("county_code IN ({both})"),
        "platforms" | "staff" => format!(
            "substr(division_code, 1, 6) IN ({counties}) OR division_code IN ({cities})"
        ),
        "funding" | "population" => format!("county_code IN ({counties})"),
        // One row holds every place's result (JSON): scoped callers get theirs through
        // `/v1/assessments`, filtered there.
        "assessments" => return Access::Hidden,
        "indicators" => format!(
            "(scope = 'county' AND code IN ({counties})) OR (scope = 'city' AND code IN ({cities}))"
        ),
        _ => return Access::Hidden,
    };
    Access::Rows(predicate)
}

/// The places of a caller's scope, or `None` for the province.
pub fn places(caller: &TokenRecord, d: &Divisions) -> Option<Places> {
    match &caller.scope {
        Scope::Province => None,
        Scope::Codes(codes) => Some(Places::of(codes, d)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(role: Role, scope: Scope) -> TokenRecord {
        TokenRecord {
            token_id: "t".into(),
            unit_id: "sfj".into(),
            role,
            scope,
            sha256: String::new(),
            created_at: 0,
            revoked_at: None,
        }
    }

    #[test]
    fn a_city_brings_its_counties_and_unknown_views_are_hidden() {
        let d = Divisions::builtin();
        let p = Places::of(&["419000".into(), "410102".into()], &d);
        assert!(p.cities.contains("419000") && p.counties.contains("419001"));
        assert!(p.counties.contains("410102") && !p.cities.contains("410100"));
        let c = caller(Role::Analyst, Scope::Codes(vec!["419000".into()]));
        assert_eq!(access(&c, Some(&p), "some_new_table"), Access::Hidden);
        assert_eq!(access(&c, Some(&p), "loads"), Access::Hidden);
        assert!(matches!(
            access(&c, Some(&p), "hotline_calls_current"),
            Access::Rows(_)
        ));
        let province = caller(Role::Analyst, Scope::Province);
        assert_eq!(access(&province, None, "loads"), Access::Full);
        assert_eq!(access(&province, None, "cases_current"), Access::Full);
        let viewer = caller(Role::Viewer, Scope::Province);
        assert_eq!(access(&viewer, None, "quarantine"), Access::Hidden);
        assert_eq!(list(&BTreeSet::new()), "'-'");
    }
}
