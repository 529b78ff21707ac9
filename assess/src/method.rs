//! The method of an assessment: targets by plan year (`targets.csv`), weights and the amber
//! tolerance (`assessment.toml`). Built-in defaults are the files of `seeds/`; another folder
//! can replace either. Both are validated on load, with the file and line of every error.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::error::{Error, Result};

const TARGETS_CSV: &str = include_str!("../../seeds/targets.csv");
const ASSESSMENT_TOML: &str = include_str!("../../seeds/assessment.toml");

/// `>=`, or `=` with a target of 1 (everything) or 0 (a blank: nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, Deserialize)]
pub enum Comparison {
    #[serde(rename = ">=")]
    AtLeast,
    #[serde(rename = "=")]
    Equals,
}

impl Comparison {
    pub fn as_str(&self) -> &'static str {
        match self {
            Comparison::AtLeast => ">=",
            Comparison::Equals => "=",
        }
    }
}

/// One row of `targets.csv`.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub indicator: String,
    pub comparison: Comparison,
    pub target: f64,
    /// The first plan year it applies to.
    pub from_year: i32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Toml {
    amber_from: f64,
    weights: BTreeMap<String, f64>,
}

/// Targets, weights and tolerance, with the texts they came from (kept when publishing).
#[derive(Debug, Clone)]
pub struct Method {
    pub targets: Vec<Target>,
    pub weights: BTreeMap<String, f64>,
    pub amber_from: f64,
    pub targets_csv: String,
    pub assessment_toml: String,
}

impl Method {
    /// The defaults of `seeds/`.
    pub fn builtin() -> Result<Method> {
        Method::parse(TARGETS_CSV, ASSESSMENT_TOML, "seeds")
    }

    /// `dir/targets.csv` and `dir/assessment.toml`, each taken from the defaults when absent.
    pub fn from_dir(dir: &Path) -> Result<Method> {
        if !dir.is_dir() {
            return Err(Error::Method(format!(
                "{}: not a folder of method files",
                dir.display()
            )));
        }
        let read = |name: &str, default: &str| -> Result<String> {
            let p = dir.join(name);
            if p.exists() {
                std::fs::read_to_string(&p)
                    .map_err(|e| Error::Method(format!("{}: {e}", p.display())))
            } else {
                Ok(default.to_string())
            }
        };
        Method::parse(
            &read("targets.csv", TARGETS_CSV)?,
            &read("assessment.toml", ASSESSMENT_TOML)?,
            &dir.display().to_string(),
        )
    }

    /// Parses and checks both files against the indicators the models compute.
    pub fn parse(targets_csv: &str, assessment_toml: &str, origin: &str) -> Result<Method> {
        let ids = plsw_transform::indicator_ids().map_err(|e| Error::Method(e.to_string()))?;
        Method::parse_with(targets_csv, assessment_toml, origin, &ids)
    }

    /// Parses the files of a publication: its indicator ids are those it names (a later
    /// renaming in the models does not make it unreadable).
    pub fn parse_published(targets_csv: &str, assessment_toml: &str) -> Result<Method> {
        let ids: Vec<String> = targets_csv
            .lines()
            .skip(1)
            .filter_map(|l| l.split(',').next())
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        Method::parse_with(targets_csv, assessment_toml, "the published method", &ids)
    }

    fn parse_with(
        targets_csv: &str,
        assessment_toml: &str,
        origin: &str,
        ids: &[String],
    ) -> Result<Method> {
        let tfile = format!("{origin}/targets.csv");
        let mut targets: Vec<Target> = Vec::new();
        let mut reader = csv::Reader::from_reader(targets_csv.as_bytes());
        let header = reader
            .headers()
            .map_err(|e| Error::Method(format!("{tfile}: {e}")))?
            .clone();
        if header.iter().map(str::trim).collect::<Vec<_>>()
            != ["indicator", "comparison", "target", "from_year"]
        {
            return Err(Error::Method(format!(
                "{tfile}: the header must be indicator,comparison,target,from_year"
            )));
        }
        for (i, row) in reader.records().enumerate() {
            let line = i + 2;
            let bad = |m: String| Error::Method(format!("{tfile}, line {line}: {m}"));
            let row = row.map_err(|e| bad(e.to_string()))?;
            let f: Vec<&str> = row.iter().map(str::trim).collect();
            if f.len() != 4 {
                return Err(bad("expected 4 fields".into()));
            }
            if !ids.iter().any(|id| id == f[0]) {
                return Err(bad(format!(
                    "{:?} is not an indicator the models compute",
                    f[0]
                )));
            }
            let comparison = match f[1] {
                ">=" => Comparison::AtLeast,
                "=" => Comparison::Equals,
                other => return Err(bad(format!("comparison {other:?}: use >= or ="))),
            };
            let target: f64 = f[2]
                .parse()
                .ok()
                .filter(|t: &f64| t.is_finite())
                .ok_or_else(|| bad(format!("target {:?} is not a number", f[2])))?;
            match comparison {
                Comparison::AtLeast if target <= 0.0 => {
                    return Err(bad("a >= target must be above 0".into()))
                }
                Comparison::Equals if target != 0.0 && target != 1.0 => {
                    return Err(bad(
                        "an = target must be 1 (everything) or 0 (a blank)".into()
                    ))
                }
                _ => {}
            }
            let from_year: i32 = f[3]
                .parse()
                .ok()
                .filter(|y| (2000..=2100).contains(y))
                .ok_or_else(|| bad(format!("from_year {:?}: a year such as 2020", f[3])))?;
            if targets
                .iter()
                .any(|t| t.indicator == f[0] && t.from_year == from_year)
            {
                return Err(bad(format!("{} has two targets from {from_year}", f[0])));
            }
            targets.push(Target {
                indicator: f[0].to_string(),
                comparison,
                target,
                from_year,
            });
        }
        let afile = format!("{origin}/assessment.toml");
        let parsed: Toml =
            toml::from_str(assessment_toml).map_err(|e| Error::Method(format!("{afile}: {e}")))?;
        if !(parsed.amber_from > 0.0 && parsed.amber_from <= 1.0) {
            return Err(Error::Method(format!(
                "{afile}: amber_from = {} must be above 0 and at most 1",
                parsed.amber_from
            )));
        }
        for (id, w) in &parsed.weights {
            if !targets.iter().any(|t| &t.indicator == id) {
                return Err(Error::Method(format!(
                    "{afile}: weights.{id:?} has no target in {tfile}"
                )));
            }
            if !(w.is_finite() && *w >= 0.0) {
                return Err(Error::Method(format!(
                    "{afile}: weights.{id:?} = {w} must be a number ≥ 0"
                )));
            }
        }
        if let Some(t) = targets
            .iter()
            .find(|t| !parsed.weights.contains_key(&t.indicator))
        {
            return Err(Error::Method(format!(
                "{afile}: {} has a target but no weight (0 leaves it out of the score)",
                t.indicator
            )));
        }
        Ok(Method {
            targets,
            weights: parsed.weights,
            amber_from: parsed.amber_from,
            targets_csv: targets_csv.to_string(),
            assessment_toml: assessment_toml.to_string(),
        })
    }

    /// The target of `indicator` in `year`: the row of that year, else the latest earlier one.
    pub fn target(&self, indicator: &str, year: i32) -> Option<&Target> {
        self.targets
            .iter()
            .filter(|t| t.indicator == indicator && t.from_year <= year)
            .max_by_key(|t| t.from_year)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> Vec<String> {
        ["a.rate", "b.cover", "c.blank"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    const T: &str = "indicator,comparison,target,from_year\na.rate,>=,0.9,2020\na.rate,>=,0.95,2022\nb.cover,=,1,2020\nc.blank,=,0,2020\n";
    const W: &str =
        "amber_from = 0.95\n[weights]\n\"a.rate\" = 2\n\"b.cover\" = 1\n\"c.blank\" = 0\n";

    #[test]
    fn a_quarter_takes_the_target_of_its_year_else_the_latest_earlier() {
        let m = Method::parse_with(T, W, "t", &ids()).unwrap();
        assert_eq!(m.target("a.rate", 2021).unwrap().target, 0.9);
        assert_eq!(m.target("a.rate", 2022).unwrap().target, 0.95);
        assert_eq!(m.target("a.rate", 2030).unwrap().target, 0.95);
        assert!(m.target("a.rate", 2019).is_none());
        assert_eq!(m.weights["a.rate"], 2.0);
    }

    #[test]
    fn bad_files_are_refused_with_file_and_line() {
        let err = |t: &str, w: &str| {
            Method::parse_with(t, w, "t", &ids())
                .unwrap_err()
                .to_string()
        };
        let head = "indicator,comparison,target,from_year\n";
        assert!(err(&format!("{head}x.y,>=,1,2020\n"), W)
            .contains("line 2: \"x.y\" is not an indicator"));
        assert!(err(&format!("{head}a.rate,>,1,2020\n"), W).contains("comparison \">\""));
        assert!(
            err(&format!("{head}a.rate,=,0.5,2020\n"), W).contains("must be 1 (everything) or 0")
        );
        assert!(err(&format!("{head}a.rate,>=,0,2020\n"), W).contains("above 0"));
        assert!(err(&format!("{head}a.rate,>=,abc,2020\n"), W).contains("not a number"));
        assert!(err(&format!("{head}a.rate,>=,1,20\n"), W).contains("from_year"));
        assert!(
            err(&format!("{head}a.rate,>=,1,2020\na.rate,>=,1,2020\n"), W)
                .contains("line 3: a.rate has two targets")
        );
        assert!(err("a,b\n", W).contains("header"));
        assert!(err(T, "amber_from = 1.5\n[weights]\n").contains("amber_from = 1.5"));
        assert!(err(T, "amber_from = 0.9\ncolour = 1\n[weights]\n").contains("unknown field"));
        assert!(err(
            T,
            "amber_from = 0.9\n[weights]\n\"a.rate\" = 1\n\"b.cover\" = 1\n"
        )
        .contains("c.blank has a target but no weight"));
        assert!(err(T, &format!("{W}\"d.none\" = 1\n")).contains("has no target"));
        assert!(err(
            T,
            "amber_from = 0.9\n[weights]\n\"a.rate\" = -1\n\"b.cover\" = 1\n\"c.blank\" = 1\n"
        )
        .contains("≥ 0"));
    }

    #[test]
    fn the_builtin_method_loads() {
        let m = Method::builtin().unwrap();
        assert_eq!(m.amber_from, 0.95);
        assert_eq!(m.targets.len(), 14);
        assert!(m.weights.values().all(|w| *w == 1.0));
    }
}
