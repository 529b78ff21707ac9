//! Quarterly assessments (考核): every county and city scored on its indicators against their
//! targets, ranked in the province and in its city, and published reproducibly.
//!
//! The method is `../shared/spec/indicators.md` (Assessment), configured by [`method`]. A
//! computation pins the warehouse at the versions it first reads ([`plsw_store::Warehouse::at`]),
//! so its record of "the versions it read" is exact; [`publish`] stores the result's JSON with
//! those versions and the method's files, and serves it byte for byte afterwards. [`report`]
//! renders an assessment as an XLSX workbook or a printable HTML page.

mod error;
pub mod method;
pub mod publish;
pub mod report;

use std::collections::{BTreeMap, HashMap};

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::Float64Type;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use error::{Error, Result};
pub use method::{Comparison, Method};
use plsw_store::{Divisions, Warehouse};

/// The status of one indicator of one place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The target is met.
    Green,
    /// Not met, attainment at least `amber_from`.
    Amber,
    /// Below that.
    Red,
    /// No value (no denominator, no snapshot): not scored.
    None,
}

impl Status {
    pub fn as_str(&self) -> &'static str {
        match self {
            Status::Green => "green",
            Status::Amber => "amber",
            Status::Red => "red",
            Status::None => "none",
        }
    }
}

/// An indicator the assessment scores, with the target of the quarter's year.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoredIndicator {
    pub id: String,
    pub name_zh: String,
    pub short_zh: String,
    pub unit: String,
    pub format: String,
    pub comparison: String,
    pub target: f64,
    pub weight: f64,
    /// `county` and/or `city`: the levels where it exists and is scored.
    pub levels: Vec<String>,
}

/// The method as applied: tolerance, the digests of the two files, and the indicators scored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MethodSummary {
    pub amber_from: f64,
    pub targets_csv_sha256: String,
    pub assessment_toml_sha256: String,
    pub indicators: Vec<ScoredIndicator>,
}

/// One indicator of one place.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    pub id: String,
    pub value: Option<f64>,
    pub target: f64,
    pub attainment: Option<f64>,
    pub status: Status,
}

/// One county or city.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub code: String,
    pub name: String,
    /// A county's city (null for a city).
    pub city_code: Option<String>,
    pub city_name: Option<String>,
    /// 0–100, rounded to 2 decimals; null when no scored indicator has a value.
    pub score: Option<f64>,
    /// In the province (cities among cities, counties among counties); 1, 1, 3 for ties.
    pub rank: Option<u32>,
    /// A county's rank among its city's counties (null for a city).
    pub rank_in_city: Option<u32>,
    pub previous_score: Option<f64>,
    /// score − previous_score, rounded to 2 decimals.
    pub score_change: Option<f64>,
    pub previous_rank: Option<u32>,
    /// previous_rank − rank: positive when the place moved up.
    pub rank_change: Option<i64>,
    pub previous_rank_in_city: Option<u32>,
    pub rank_in_city_change: Option<i64>,
    pub green: u32,
    pub amber: u32,
    pub red: u32,
    pub indicators: Vec<Cell>,
}

/// A quarter's assessment: what is published and rendered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assessment {
    pub quarter: String,
    pub previous_quarter: String,
    pub method: MethodSummary,
    /// The Delta version of every table at the moment of computing: what it read.
    pub table_versions: BTreeMap<String, i64>,
    pub cities: Vec<Entry>,
    pub counties: Vec<Entry>,
}

impl Assessment {
    /// The JSON that is published and served (pretty, fields in declaration order).
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("an assessment serialises");
        s.push('\n');
        s
    }

    /// Only the places of `cities` and `counties` (a scoped caller's); ranks stay the
    /// province's.
    pub fn restricted(&self, cities: &[String], counties: &[String]) -> Assessment {
        let mut a = self.clone();
        a.cities.retain(|e| cities.contains(&e.code));
        a.counties.retain(|e| counties.contains(&e.code));
        a
    }
}

/// `2025Q3` → (2025, 3).
pub fn parse_quarter(q: &str) -> Result<(i32, u32)> {
    let bad = || Error::Quarter(q.to_string());
    let (y, n) = q.split_once('Q').ok_or_else(bad)?;
    let year: i32 = y
        .parse()
        .ok()
        .filter(|y| (2000..=2100).contains(y))
        .ok_or_else(bad)?;
    let n: u32 = n
        .parse()
        .ok()
        .filter(|n| (1..=4).contains(n))
        .ok_or_else(bad)?;
    if y.len() != 4 {
        return Err(bad());
    }
    Ok((year, n))
}

fn previous_quarter(year: i32, n: u32) -> String {
    if n == 1 {
        format!("{}Q4", year - 1)
    } else {
        format!("{year}Q{}", n - 1)
    }
}

/// A text column as `Utf8`, whatever string type the scan gave (views, dictionaries).
pub(crate) fn utf8(
    a: &datafusion::arrow::array::ArrayRef,
) -> Result<datafusion::arrow::array::StringArray> {
    let c = datafusion::arrow::compute::cast(a, &datafusion::arrow::datatypes::DataType::Utf8)
        .map_err(|e| Error::Query(e.to_string()))?;
    Ok(c.as_string::<i32>().clone())
}

fn sha256(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// Rounds half away from zero to 2 decimals. The hundredths are first snapped to a millionth,
/// so that a true .xx5 computed as .xx4999… (floating-point noise) still rounds up.
pub fn round2(x: f64) -> f64 {
    let hundredths = ((x * 100.0) * 1e6).round() / 1e6;
    hundredths.round() / 100.0
}

/// Assesses `quarter` over the warehouse as it is now (pinned at the versions read first).
pub async fn compute(wh: &Warehouse, quarter: &str, method: &Method) -> Result<Assessment> {
    let versions = wh.versions().await?;
    compute_at(wh, &versions, quarter, method).await
}

/// Assesses `quarter` over the warehouse as it was at `versions`.
pub async fn compute_at(
    wh: &Warehouse,
    versions: &[(&'static str, i64)],
    quarter: &str,
    method: &Method,
) -> Result<Assessment> {
    let docs = plsw_transform::indicator_docs().map_err(|e| Error::Method(e.to_string()))?;
    compute_with_docs(wh, versions, quarter, method, &docs).await
}

/// [`compute_at`] with the names, units and formats of `docs` (a publication's own, when it is
/// recomputed: a later edit of `seeds/indicators.csv` does not change it).
pub async fn compute_with_docs(
    wh: &Warehouse,
    versions: &[(&'static str, i64)],
    quarter: &str,
    method: &Method,
    docs: &[plsw_transform::IndicatorDoc],
) -> Result<Assessment> {
    let (year, n) = parse_quarter(quarter)?;
    let prev = previous_quarter(year, n);
    let pinned = wh.at(versions);
    let divisions = Divisions::load(&pinned).await?;
    let values = read_values(&pinned, &[quarter, &prev]).await?;
    if !values.keys().any(|k| k.0 == quarter) {
        let known = read_quarters(&pinned).await?;
        return Err(Error::NoIndicators {
            quarter: quarter.to_string(),
            known: match (known.first(), known.last()) {
                (Some(a), Some(b)) => format!("{a} to {b}"),
                _ => "none: run plsw transform".into(),
            },
        });
    }
    let scored = scored_indicators(method, year, docs);
    let (prev_year, _) = parse_quarter(&prev)?;
    let prev_scored = scored_indicators(method, prev_year, docs);

    let city_rows = divisions.rows(&plsw_schemas::tables::CITIES);
    let cities: Vec<Place> = city_rows
        .iter()
        .map(|c| (c[0].clone(), c[1].clone(), None))
        .collect();
    let city_name: HashMap<&str, &str> = city_rows
        .iter()
        .map(|c| (c[0].as_str(), c[1].as_str()))
        .collect();
    let counties: Vec<Place> = divisions
        .rows(&plsw_schemas::tables::COUNTIES)
        .iter()
        .map(|c| {
            let city = (
                c[2].clone(),
                city_name.get(c[2].as_str()).unwrap_or(&"").to_string(),
            );
            (c[0].clone(), c[1].clone(), Some(city))
        })
        .collect();

    let level = |scope: &str, places: &[Place]| {
        let now = score_level(scope, places, quarter, &scored, &values, method.amber_from);
        let before = score_level(
            scope,
            places,
            &prev,
            &prev_scored,
            &values,
            method.amber_from,
        );
        let mut entries = now;
        for (e, p) in entries.iter_mut().zip(&before) {
            e.previous_score = p.score;
            e.previous_rank = p.rank;
            e.previous_rank_in_city = p.rank_in_city;
            e.score_change = e.score.zip(p.score).map(|(a, b)| round2(a - b));
            e.rank_change = e.rank.zip(p.rank).map(|(a, b)| i64::from(b) - i64::from(a));
            e.rank_in_city_change = e
                .rank_in_city
                .zip(p.rank_in_city)
                .map(|(a, b)| i64::from(b) - i64::from(a));
        }
        entries.sort_by(|a, b| {
            (a.rank.is_none(), a.rank, &a.code).cmp(&(b.rank.is_none(), b.rank, &b.code))
        });
        entries
    };
    let cities = level("city", &cities);
    let counties = level("county", &counties);
    Ok(Assessment {
        quarter: quarter.to_string(),
        previous_quarter: prev,
        method: MethodSummary {
            amber_from: method.amber_from,
            targets_csv_sha256: sha256(&method.targets_csv),
            assessment_toml_sha256: sha256(&method.assessment_toml),
            indicators: scored,
        },
        table_versions: versions.iter().map(|(t, v)| (t.to_string(), *v)).collect(),
        cities,
        counties,
    })
}

/// The indicators with a target in `year`, in the targets file's order.
fn scored_indicators(
    method: &Method,
    year: i32,
    docs: &[plsw_transform::IndicatorDoc],
) -> Vec<ScoredIndicator> {
    let mut out: Vec<ScoredIndicator> = Vec::new();
    for t in &method.targets {
        if out.iter().any(|s| s.id == t.indicator) {
            continue;
        }
        let Some(t) = method.target(&t.indicator, year) else {
            continue;
        };
        let doc = docs.iter().find(|d| d.indicator == t.indicator);
        let field = |f: fn(&plsw_transform::IndicatorDoc) -> &String| {
            doc.map(|d| f(d).clone()).unwrap_or_default()
        };
        out.push(ScoredIndicator {
            id: t.indicator.clone(),
            name_zh: field(|d| &d.name_zh),
            short_zh: field(|d| &d.short_zh),
            unit: field(|d| &d.unit),
            format: field(|d| &d.format),
            comparison: t.comparison.as_str().to_string(),
            target: t.target,
            weight: method.weights.get(&t.indicator).copied().unwrap_or(0.0),
            levels: plsw_transform::scopes_of(&t.indicator)
                .iter()
                .filter(|s| **s != "province")
                .map(|s| s.to_string())
                .collect(),
        });
    }
    out
}

/// A place to score: code, name, and a county's city (code, name).
type Place = (String, String, Option<(String, String)>);

/// (quarter, scope, code, indicator) → value.
type Values = HashMap<(String, String, String, String), Option<f64>>;

async fn read_values(wh: &Warehouse, quarters: &[&str]) -> Result<Values> {
    let ctx = wh.context_of(&[&plsw_schemas::tables::INDICATORS]).await?;
    let list = quarters
        .iter()
        .map(|q| format!("'{q}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let batches = ctx
        .sql(&format!(
            "SELECT quarter, scope, code, indicator, value FROM indicators
             WHERE quarter IN ({list}) AND scope IN ('county', 'city')"
        ))
        .await?
        .collect()
        .await?;
    let mut out = Values::new();
    for b in &batches {
        let text = |i: usize| utf8(b.column(i));
        let (q, s, c, id) = (text(0)?, text(1)?, text(2)?, text(3)?);
        let v = datafusion::arrow::compute::cast(
            b.column(4),
            &datafusion::arrow::datatypes::DataType::Float64,
        )
        .map_err(|e| Error::Query(e.to_string()))?;
        let v = v.as_primitive::<Float64Type>();
        for r in 0..b.num_rows() {
            out.insert(
                (
                    q.value(r).to_string(),
                    s.value(r).to_string(),
                    c.value(r).to_string(),
                    id.value(r).to_string(),
                ),
                (!v.is_null(r)).then(|| v.value(r)),
            );
        }
    }
    Ok(out)
}

async fn read_quarters(wh: &Warehouse) -> Result<Vec<String>> {
    let ctx = wh.context_of(&[&plsw_schemas::tables::INDICATORS]).await?;
    let batches = ctx
        .sql("SELECT DISTINCT quarter FROM indicators ORDER BY quarter")
        .await?
        .collect()
        .await?;
    let mut out = Vec::new();
    for b in &batches {
        let a = utf8(b.column(0))?;
        out.extend((0..a.len()).map(|i| a.value(i).to_string()));
    }
    Ok(out)
}

/// Attainment (indicators.md): min(value / target, 1) for `>=` and `= 1`; 1 − value for `= 0`.
pub fn attainment(comparison: Comparison, target: f64, value: f64) -> f64 {
    match comparison {
        Comparison::Equals if target == 0.0 => 1.0 - value,
        _ => (value / target).min(1.0),
    }
}

/// Whether `value` meets the target, as computed (no rounding).
pub fn meets(comparison: Comparison, target: f64, value: f64) -> bool {
    match comparison {
        Comparison::AtLeast => value >= target,
        Comparison::Equals => value == target,
    }
}

/// Ranks of the scores, competition style (1, 1, 3); `None` for no score.
pub fn competition_ranks(scores: &[Option<f64>]) -> Vec<Option<u32>> {
    scores
        .iter()
        .map(|s| s.map(|s| 1 + scores.iter().filter(|o| o.is_some_and(|o| o > s)).count() as u32))
        .collect()
}

fn score_level(
    scope: &str,
    places: &[Place],
    quarter: &str,
    scored: &[ScoredIndicator],
    values: &Values,
    amber_from: f64,
) -> Vec<Entry> {
    let mut entries: Vec<Entry> = places
        .iter()
        .map(|(code, name, city)| {
            let mut cells = Vec::new();
            let (mut sum_w, mut sum_wa) = (0.0, 0.0);
            let (mut green, mut amber, mut red) = (0, 0, 0);
            for ind in scored
                .iter()
                .filter(|i| i.levels.iter().any(|l| l == scope))
            {
                let comparison = if ind.comparison == ">=" {
                    Comparison::AtLeast
                } else {
                    Comparison::Equals
                };
                let value = values
                    .get(&(
                        quarter.to_string(),
                        scope.to_string(),
                        code.clone(),
                        ind.id.clone(),
                    ))
                    .copied()
                    .flatten();
                let att = value.map(|v| attainment(comparison, ind.target, v));
                let status = match (value, att) {
                    (Some(v), _) if meets(comparison, ind.target, v) => Status::Green,
                    (Some(_), Some(a)) if a >= amber_from => Status::Amber,
                    (Some(_), _) => Status::Red,
                    (None, _) => Status::None,
                };
                match status {
                    Status::Green => green += 1,
                    Status::Amber => amber += 1,
                    Status::Red => red += 1,
                    Status::None => {}
                }
                if let Some(a) = att {
                    sum_w += ind.weight;
                    sum_wa += ind.weight * a;
                }
                cells.push(Cell {
                    id: ind.id.clone(),
                    value,
                    target: ind.target,
                    attainment: att,
                    status,
                });
            }
            let score = (sum_w > 0.0).then(|| round2(100.0 * sum_wa / sum_w));
            Entry {
                code: code.clone(),
                name: name.clone(),
                city_code: city.as_ref().map(|c| c.0.clone()),
                city_name: city.as_ref().map(|c| c.1.clone()),
                score,
                rank: None,
                rank_in_city: None,
                previous_score: None,
                score_change: None,
                previous_rank: None,
                rank_change: None,
                previous_rank_in_city: None,
                rank_in_city_change: None,
                green,
                amber,
                red,
                indicators: cells,
            }
        })
        .collect();
    let scores: Vec<Option<f64>> = entries.iter().map(|e| e.score).collect();
    for (e, r) in entries.iter_mut().zip(competition_ranks(&scores)) {
        e.rank = r;
    }
    if scope == "county" {
        let mut by_city: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (i, e) in entries.iter().enumerate() {
            by_city
                .entry(e.city_code.clone().unwrap_or_default())
                .or_default()
                .push(i);
        }
        for idx in by_city.values() {
            let scores: Vec<Option<f64>> = idx.iter().map(|i| entries[*i].score).collect();
            for (i, r) in idx.iter().zip(competition_ranks(&scores)) {
                entries[*i].rank_in_city = r;
            }
        }
    }
    entries
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ind(id: &str, cmp: &str, target: f64, weight: f64, levels: &[&str]) -> ScoredIndicator {
        ScoredIndicator {
            id: id.into(),
            name_zh: String::new(),
            short_zh: String::new(),
            unit: "rate".into(),
            format: "percent1".into(),
            comparison: cmp.into(),
            target,
            weight,
            levels: levels.iter().map(|l| l.to_string()).collect(),
        }
    }

    /// Worked by hand (weights 1, 1, 2, 1; amber from 0.95):
    /// - A: on-time 0.90 → 0.90/0.95 = 0.947368… (red: below 0.95), center 1 (green), townships
    ///   0.5 → 0.5 (red, weight 2), blank 0 → 1 (green): 100 × (0.947368 + 1 + 2×0.5 + 1) / 5
    ///   = 78.947… → 78.95.
    /// - B: on-time 0.93 → 0.978947 (amber), center 1, townships 1, blank null (not scored):
    ///   100 × (0.978947 + 1 + 2) / 4 = 99.4736… → 99.47.
    /// - C: A's values: 78.95, a tie with A.
    /// - D: no values: no score, no rank.
    /// - E: on-time 1.0 (green), center 0 (red), townships 1 (green), blank 0.25 → 1 − 0.25 =
    ///   0.75 (red): 100 × (1 + 0 + 2 + 0.75) / 5 = 75.00.
    ///
    /// Province: B 1, A 2, C 2, E 4 (1, 2, 2, 4: ties share, the next is skipped). City X (A,
    /// B): B 1, A 2. City Y (C, D, E): C 1, E 2.
    #[test]
    fn a_hand_computed_quarter_with_a_tie() {
        let scored = vec![
            ind(
                "workorders.on_time_rate",
                ">=",
                0.95,
                1.0,
                &["county", "city"],
            ),
            ind("coverage.county_center", "=", 1.0, 1.0, &["county", "city"]),
            ind(
                "coverage.township_build_rate",
                "=",
                1.0,
                2.0,
                &["county", "city"],
            ),
            ind("staff.notary_blank", "=", 0.0, 1.0, &["county", "city"]),
            ind("hotline.answer_rate", ">=", 0.90, 1.0, &["city"]),
        ];
        let ids = [
            "workorders.on_time_rate",
            "coverage.county_center",
            "coverage.township_build_rate",
            "staff.notary_blank",
        ];
        let mut values = Values::new();
        let mut put = |code: &str, v: [Option<f64>; 4]| {
            for (id, v) in ids.iter().zip(v) {
                values.insert(
                    (
                        "2025Q3".into(),
                        "county".into(),
                        code.into(),
                        id.to_string(),
                    ),
                    v,
                );
            }
        };
        put("A", [Some(0.90), Some(1.0), Some(0.5), Some(0.0)]);
        put("B", [Some(0.93), Some(1.0), Some(1.0), None]);
        put("C", [Some(0.90), Some(1.0), Some(0.5), Some(0.0)]);
        put("E", [Some(1.0), Some(0.0), Some(1.0), Some(0.25)]);
        let place = |code: &str, city: &str| {
            (
                code.to_string(),
                code.to_string(),
                Some((city.to_string(), city.to_string())),
            )
        };
        let places = vec![
            place("A", "X"),
            place("B", "X"),
            place("C", "Y"),
            place("D", "Y"),
            place("E", "Y"),
        ];
        let e = score_level("county", &places, "2025Q3", &scored, &values, 0.95);
        type Row<'a> = (&'a str, Option<f64>, Option<u32>, Option<u32>);
        let got: Vec<Row> = e
            .iter()
            .map(|e| (e.code.as_str(), e.score, e.rank, e.rank_in_city))
            .collect();
        assert_eq!(
            got,
            vec![
                ("A", Some(78.95), Some(2), Some(2)),
                ("B", Some(99.47), Some(1), Some(1)),
                ("C", Some(78.95), Some(2), Some(1)),
                ("D", None, None, None),
                ("E", Some(75.0), Some(4), Some(2)),
            ]
        );
        let statuses =
            |i: usize| -> Vec<Status> { e[i].indicators.iter().map(|c| c.status).collect() };
        let (g, a, r) = (Status::Green, Status::Amber, Status::Red);
        assert_eq!(statuses(0), vec![r, g, r, g]);
        assert_eq!(statuses(1), vec![a, g, g, Status::None]);
        assert_eq!(statuses(4), vec![g, r, g, r]);
        assert_eq!((e[0].green, e[0].amber, e[0].red), (2, 0, 2));
        assert_eq!((e[1].green, e[1].amber, e[1].red), (2, 1, 0));
        assert_eq!(e[4].indicators[3].attainment, Some(0.75));
        // The hotline's answer rate is scored for cities only.
        assert_eq!(e[0].indicators.len(), 4);
    }

    #[test]
    fn ties_share_a_rank_and_the_next_rank_is_skipped() {
        let r = competition_ranks(&[Some(90.0), Some(95.5), Some(90.0), None, Some(80.0)]);
        assert_eq!(r, vec![Some(2), Some(1), Some(2), None, Some(4)]);
    }

    #[test]
    fn attainment_and_status_follow_the_spec() {
        use Comparison::*;
        // >= 0.90 met by exactly 0.90; 0.87 / 0.90 = 0.9666… is amber.
        assert!(meets(AtLeast, 0.9, 0.9));
        assert_eq!(attainment(AtLeast, 0.9, 0.99), 1.0);
        assert!((attainment(AtLeast, 0.9, 0.87) - 0.87 / 0.9).abs() < 1e-15);
        // = 1: attainment is the value; = 0 (a blank): 1 − value.
        assert_eq!(attainment(Equals, 1.0, 0.8), 0.8);
        assert!(!meets(Equals, 1.0, 0.999));
        assert_eq!(attainment(Equals, 0.0, 0.25), 0.75);
        assert!(meets(Equals, 0.0, 0.0));
    }

    #[test]
    fn quarters_parse_and_step_back() {
        assert_eq!(parse_quarter("2025Q3").unwrap(), (2025, 3));
        assert!(parse_quarter("2025Q5").is_err() && parse_quarter("25Q1").is_err());
        assert!(parse_quarter("2025-3").is_err());
        assert_eq!(previous_quarter(2025, 1), "2024Q4");
        assert_eq!(previous_quarter(2025, 3), "2025Q2");
        assert_eq!(round2(95.004999), 95.0);
        assert_eq!(round2(95.005001), 95.01);
        // 78.945 is 78.94499999999999… in binary: still a half, rounded up.
        assert_eq!(round2(78.945), 78.95);
        assert_eq!(round2(100.0 * (0.5 + 0.25 + 0.829) / 2.0), 78.95);
        assert_eq!(round2(-1.005), -1.01);
    }
}
