//! The SQL models: files under `transform/models/`, each a `SELECT` with a TOML header in a
//! leading `/* … */` comment declaring what it is:
//!
//! ```text
//! /*
//! doc = "What a row is."
//! depends = ["stg_hotline", "grid"]          # models and warehouse views it reads
//! indicators = ["hotline.inbound"]           # the indicator ids it computes, if any
//! output = true                              # committed as a Delta table (else in memory)
//! [columns]
//! quarter = "Quarter label, 2025Q3"
//! [[tests]]
//! unique = ["quarter", "scope", "code"]
//! */
//! SELECT …
//! ```
//!
//! Data tests: `unique = [cols]`, `not_null = [cols]`,
//! `accepted_values = { column = "c", values = ["a", "b"] }`,
//! `relationship = { column = "c", to = "model_or_view.column" }`.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Deserialize;

use crate::error::{Error, Result};

macro_rules! model_files {
    ($($path:literal),* $(,)?) => {
        &[$(($path, include_str!(concat!("../models/", $path)))),*]
    };
}

/// Every model file, built into the binary (a test checks none under `models/` is missing).
pub const FILES: &[(&str, &str)] = model_files![
    "staging/scopes.sql",
    "staging/stg_hotline.sql",
    "staging/stg_work_orders.sql",
    "staging/stg_cases.sql",
    "staging/quarters.sql",
    "staging/grid.sql",
    "staging/population_q.sql",
    "staging/snapshots_q.sql",
    "staging/stg_platforms_q.sql",
    "staging/stg_staff_q.sql",
    "staging/staff_persons.sql",
    "marts/hotline.sql",
    "marts/work_orders.sql",
    "marts/cases.sql",
    "marts/coverage.sql",
    "marts/staffing.sql",
    "marts/funding.sql",
    "marts/balance.sql",
    "indicators.sql",
];

/// The TOML header of a model.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Meta {
    pub doc: String,
    #[serde(default)]
    pub depends: Vec<String>,
    #[serde(default)]
    pub indicators: Vec<String>,
    #[serde(default)]
    pub output: bool,
    #[serde(default)]
    pub columns: BTreeMap<String, String>,
    #[serde(default)]
    pub tests: Vec<DataTest>,
}

/// A check on a model's rows, run right after the model.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum DataTest {
    Unique(Vec<String>),
    NotNull(Vec<String>),
    AcceptedValues { column: String, values: Vec<String> },
    Relationship { column: String, to: String },
}

impl DataTest {
    /// A query returning the offending rows (none when the test passes).
    pub fn sql(&self, model: &str) -> String {
        match self {
            DataTest::Unique(cols) => {
                let list = cols.join(", ");
                format!(
                    "SELECT {list}, count(*) AS copies FROM {model} GROUP BY {list} HAVING count(*) > 1"
                )
            }
            DataTest::NotNull(cols) => {
                let cond = cols
                    .iter()
                    .map(|c| format!("{c} IS NULL"))
                    .collect::<Vec<_>>()
                    .join(" OR ");
                format!("SELECT * FROM {model} WHERE {cond}")
            }
            DataTest::AcceptedValues { column, values } => {
                let list = values
                    .iter()
                    .map(|v| plsw_store::sql_text(v))
                    .collect::<Vec<_>>()
                    .join(", ");
                format!(
                    "SELECT * FROM {model} WHERE {column} IS NOT NULL AND CAST({column} AS VARCHAR) NOT IN ({list})"
                )
            }
            DataTest::Relationship { column, to } => {
                let (t, c) = to.split_once('.').unwrap_or((to.as_str(), column.as_str()));
                format!(
                    "SELECT m.* FROM {model} m LEFT ANTI JOIN {t} r ON m.{column} = r.{c} WHERE m.{column} IS NOT NULL"
                )
            }
        }
    }

    pub fn describe(&self) -> String {
        match self {
            DataTest::Unique(c) => format!("unique({})", c.join(", ")),
            DataTest::NotNull(c) => format!("not_null({})", c.join(", ")),
            DataTest::AcceptedValues { column, values } => {
                format!("accepted_values({column}: {})", values.join(", "))
            }
            DataTest::Relationship { column, to } => format!("relationship({column} -> {to})"),
        }
    }
}

/// One model: its name (the file's stem), file and SQL.
#[derive(Debug, Clone)]
pub struct Model {
    pub name: String,
    pub path: &'static str,
    pub meta: Meta,
    pub sql: String,
}

impl Model {
    pub fn parse(path: &'static str, text: &str) -> Result<Model> {
        let name = path
            .rsplit('/')
            .next()
            .and_then(|f| f.strip_suffix(".sql"))
            .ok_or_else(|| Error::Model {
                model: path.to_string(),
                message: "a model file is NAME.sql".into(),
            })?
            .to_string();
        let bad = |message: String| Error::Model {
            model: path.to_string(),
            message,
        };
        let rest = text
            .trim_start()
            .strip_prefix("/*")
            .ok_or_else(|| bad("the file must start with a /* TOML header */".into()))?;
        let (header, sql) = rest
            .split_once("*/")
            .ok_or_else(|| bad("the header comment is not closed".into()))?;
        let meta: Meta = toml::from_str(header).map_err(|e| bad(format!("header: {e}")))?;
        let sql = sql.trim().trim_end_matches(';').to_string();
        if sql.is_empty() {
            return Err(bad("no SQL after the header".into()));
        }
        Ok(Model {
            name,
            path,
            meta,
            sql,
        })
    }
}

/// Every built-in model, in an order where each comes after what it depends on.
pub fn load() -> Result<Vec<Model>> {
    let models = FILES
        .iter()
        .map(|(p, t)| Model::parse(p, t))
        .collect::<Result<Vec<_>>>()?;
    order(models)
}

/// Orders models so that each follows its model dependencies (names that are not models are
/// warehouse views). A cycle, or two models of one name, is an error.
pub fn order(models: Vec<Model>) -> Result<Vec<Model>> {
    let mut by_name: HashMap<String, Model> = HashMap::new();
    let mut names = Vec::new();
    for m in models {
        names.push(m.name.clone());
        if let Some(prev) = by_name.insert(m.name.clone(), m) {
            return Err(Error::Model {
                model: prev.path.to_string(),
                message: format!("two models are named {}", prev.name),
            });
        }
    }
    let mut out: Vec<Model> = Vec::new();
    let mut done: HashSet<String> = HashSet::new();
    let mut visiting: Vec<String> = Vec::new();
    fn visit(
        name: &str,
        by_name: &HashMap<String, Model>,
        done: &mut HashSet<String>,
        visiting: &mut Vec<String>,
        out: &mut Vec<Model>,
    ) -> Result<()> {
        if done.contains(name) || !by_name.contains_key(name) {
            return Ok(());
        }
        if let Some(i) = visiting.iter().position(|n| n == name) {
            let mut cycle = visiting[i..].to_vec();
            cycle.push(name.to_string());
            return Err(Error::Model {
                model: by_name[name].path.to_string(),
                message: format!("dependency cycle: {}", cycle.join(" -> ")),
            });
        }
        visiting.push(name.to_string());
        for d in &by_name[name].meta.depends {
            visit(d, by_name, done, visiting, out)?;
        }
        visiting.pop();
        done.insert(name.to_string());
        out.push(by_name[name].clone());
        Ok(())
    }
    for n in &names {
        visit(n, &by_name, &mut done, &mut visiting, &mut out)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(name: &'static str, deps: &[&str]) -> Model {
        Model {
            name: name.into(),
            path: name,
            meta: Meta {
                doc: String::new(),
                depends: deps.iter().map(|s| s.to_string()).collect(),
                indicators: vec![],
                output: false,
                columns: BTreeMap::new(),
                tests: vec![],
            },
            sql: "SELECT 1".into(),
        }
    }

    #[test]
    fn models_run_after_their_dependencies_and_cycles_are_refused() {
        let ordered = order(vec![
            m("c", &["b", "hotline_calls_current"]),
            m("b", &["a"]),
            m("a", &[]),
        ])
        .unwrap();
        let names: Vec<_> = ordered.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        let err = order(vec![m("a", &["b"]), m("b", &["a"])]).unwrap_err();
        assert!(err.to_string().contains("cycle: a -> b -> a"), "{err}");
        assert!(order(vec![m("a", &[]), m("a", &[])]).is_err());
    }

    #[test]
    fn headers_parse_with_their_tests() {
        let text = r#"/*
doc = "Rows."
depends = ["x"]
indicators = ["a.b"]
[columns]
k = "key"
[[tests]]
unique = ["k"]
[[tests]]
accepted_values = { column = "s", values = ["a", "b"] }
[[tests]]
relationship = { column = "code", to = "scopes.code" }
*/
SELECT 1 AS k;
"#;
        let model = Model::parse("marts/m.sql", text).unwrap();
        assert_eq!(model.name, "m");
        assert_eq!(model.sql, "SELECT 1 AS k");
        assert_eq!(model.meta.tests.len(), 3);
        assert_eq!(model.meta.tests[0], DataTest::Unique(vec!["k".into()]));
        assert!(Model::parse("m.sql", "SELECT 1").is_err());
        assert!(Model::parse("m.sql", "/* doc = \"x\"\nunknown = 1 */ SELECT 1").is_err());
        assert!(Model::parse("m.sql", "/* doc = \"x\" */").is_err());
    }

    #[test]
    fn every_model_file_is_built_in_and_parses() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
        let mut on_disk = Vec::new();
        let mut stack = vec![dir.clone()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|x| x == "sql") {
                    on_disk.push(
                        p.strip_prefix(&dir)
                            .unwrap()
                            .to_string_lossy()
                            .replace('\\', "/"),
                    );
                }
            }
        }
        on_disk.sort();
        let mut built_in: Vec<String> = FILES.iter().map(|(p, _)| p.to_string()).collect();
        built_in.sort();
        assert_eq!(on_disk, built_in, "add new model files to model::FILES");
        let models = load().unwrap();
        assert_eq!(models.len(), FILES.len());
    }
}
