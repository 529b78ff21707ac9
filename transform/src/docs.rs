//! What each indicator is, for people: names in Chinese and English, the unit, how to display
//! it, and the definition (`seeds/indicators.csv`, from `../shared/spec/indicators.md`).

use serde::Serialize;

use crate::error::{Error, Result};

const INDICATORS_CSV: &str = include_str!("../../seeds/indicators.csv");

/// One row of `seeds/indicators.csv`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct IndicatorDoc {
    pub indicator: String,
    /// The name an official would write (`12348热线接听率`).
    pub name_zh: String,
    /// At most 8 characters, for axes and table headers.
    pub short_zh: String,
    pub name_en: String,
    /// `rate` (0..1), `count`, `yuan`, `seconds`, `hours`, `per_10k` or `ratio`.
    pub unit: String,
    /// `percent1`, `int`, `dec1`, `dec2` or `yuan0`.
    pub format: String,
    pub definition_zh: String,
    pub definition_en: String,
}

const UNITS: &[&str] = &[
    "rate", "count", "yuan", "seconds", "hours", "per_10k", "ratio",
];
const FORMATS: &[&str] = &["percent1", "int", "dec1", "dec2", "yuan0"];

/// The docs of every indicator, in the file's order, checked: known units and formats, no
/// duplicate ids, and exactly the ids the models compute.
pub fn indicator_docs() -> Result<Vec<IndicatorDoc>> {
    parse(INDICATORS_CSV, &crate::indicator_ids()?)
}

fn parse(text: &str, ids: &[String]) -> Result<Vec<IndicatorDoc>> {
    let bad = |message: String| Error::Model {
        model: "seeds/indicators.csv".into(),
        message,
    };
    let mut out: Vec<IndicatorDoc> = Vec::new();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    for (i, row) in reader.deserialize::<IndicatorDoc>().enumerate() {
        let line = i + 2;
        let d = row.map_err(|e| bad(format!("line {line}: {e}")))?;
        if !UNITS.contains(&d.unit.as_str()) {
            return Err(bad(format!(
                "line {line}: unit {:?} is not one of {UNITS:?}",
                d.unit
            )));
        }
        if !FORMATS.contains(&d.format.as_str()) {
            return Err(bad(format!(
                "line {line}: format {:?} is not one of {FORMATS:?}",
                d.format
            )));
        }
        if out.iter().any(|o| o.indicator == d.indicator) {
            return Err(bad(format!("line {line}: {} is listed twice", d.indicator)));
        }
        if !ids.contains(&d.indicator) {
            return Err(bad(format!(
                "line {line}: {} is not computed by any model",
                d.indicator
            )));
        }
        out.push(d);
    }
    if let Some(missing) = ids
        .iter()
        .find(|id| !out.iter().any(|d| &&d.indicator == id))
    {
        return Err(bad(format!("{missing} has no row")));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_computed_indicator_has_one_doc() {
        let docs = indicator_docs().unwrap();
        assert_eq!(docs.len(), crate::indicator_ids().unwrap().len());
        let answer = docs
            .iter()
            .find(|d| d.indicator == "hotline.answer_rate")
            .unwrap();
        assert_eq!(
            (answer.unit.as_str(), answer.format.as_str()),
            ("rate", "percent1")
        );
        assert!(docs.iter().all(|d| d.short_zh.chars().count() <= 8));
    }

    #[test]
    fn bad_rows_are_refused_with_their_line() {
        let head = "indicator,name_zh,short_zh,name_en,unit,format,definition_zh,definition_en\n";
        let ids = vec!["a.b".to_string()];
        let ok = format!("{head}a.b,甲,甲,A,count,int,定义,def\n");
        assert_eq!(parse(&ok, &ids).unwrap().len(), 1);
        let unit = format!("{head}a.b,甲,甲,A,litres,int,定义,def\n");
        assert!(parse(&unit, &ids)
            .unwrap_err()
            .to_string()
            .contains("line 2: unit"));
        let unknown = format!("{head}a.c,甲,甲,A,count,int,定义,def\n");
        assert!(parse(&unknown, &ids)
            .unwrap_err()
            .to_string()
            .contains("a.c is not computed"));
        assert!(parse(head, &ids)
            .unwrap_err()
            .to_string()
            .contains("a.b has no row"));
        let twice =
            format!("{head}a.b,甲,甲,A,count,int,定义,def\na.b,甲,甲,A,count,int,定义,def\n");
        assert!(parse(&twice, &ids)
            .unwrap_err()
            .to_string()
            .contains("listed twice"));
    }
}
