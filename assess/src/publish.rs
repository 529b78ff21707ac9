//! Publishing: an assessment stored in the Delta table `assessments` with the versions it read
//! and its method's files, then served byte for byte. Each publication of a quarter is a new
//! revision; old revisions stay.

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{Int64Type, TimestampMicrosecondType};
use plsw_schemas::tables::ASSESSMENTS;
use plsw_store::Warehouse;

use crate::error::{Error, Result};
use crate::{compute_at, sha256, Assessment, Method};

/// One published revision.
#[derive(Debug, Clone, PartialEq)]
pub struct Published {
    pub quarter: String,
    pub revision: i64,
    /// Microseconds since the epoch, UTC.
    pub published_at: i64,
    pub published_by: String,
    /// JSON object of table → version.
    pub table_versions: String,
    pub targets_csv: String,
    pub assessment_toml: String,
    /// The assessment exactly as published.
    pub result_json: String,
    pub result_sha256: String,
}

impl Published {
    pub fn assessment(&self) -> Result<Assessment> {
        serde_json::from_str(&self.result_json)
            .map_err(|e| Error::Query(format!("a stored assessment does not parse: {e}")))
    }

    pub fn published_at_text(&self) -> String {
        chrono::DateTime::from_timestamp_micros(self.published_at)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_default()
    }
}

/// Computes `quarter` now and stores it as the quarter's next revision.
pub async fn publish(
    wh: &Warehouse,
    quarter: &str,
    method: &Method,
    by: &str,
) -> Result<Published> {
    let versions = wh.versions().await?;
    let assessment = compute_at(wh, &versions, quarter, method).await?;
    let result_json = assessment.to_json();
    let revision = all(wh)
        .await?
        .iter()
        .filter(|p| p.quarter == quarter)
        .map(|p| p.revision)
        .max()
        .unwrap_or(0)
        + 1;
    let p = Published {
        quarter: quarter.to_string(),
        revision,
        published_at: chrono::Utc::now().timestamp_micros(),
        published_by: by.to_string(),
        table_versions: serde_json::to_string(&assessment.table_versions)
            .map_err(|e| Error::Query(e.to_string()))?,
        targets_csv: method.targets_csv.clone(),
        assessment_toml: method.assessment_toml.clone(),
        result_sha256: sha256(&result_json),
        result_json,
    };
    wh.append(&ASSESSMENTS, vec![batch(&p)?]).await?;
    Ok(p)
}

/// The published revision `revision` of `quarter`, or its latest.
pub async fn published(wh: &Warehouse, quarter: &str, revision: Option<i64>) -> Result<Published> {
    crate::parse_quarter(quarter)?;
    let mut of_quarter: Vec<Published> = all(wh)
        .await?
        .into_iter()
        .filter(|p| p.quarter == quarter)
        .collect();
    of_quarter.sort_by_key(|p| p.revision);
    match revision {
        None => of_quarter.pop().ok_or_else(|| {
            Error::NotPublished(format!(
                "{quarter} has not been published (plsw assess --quarter {quarter} --publish)"
            ))
        }),
        Some(r) => of_quarter
            .into_iter()
            .find(|p| p.revision == r)
            .ok_or_else(|| Error::NotPublished(format!("{quarter} has no revision {r}"))),
    }
}

/// Recomputes a publication at the versions and with the method files it recorded: the JSON
/// must come out the same, byte for byte.
pub async fn recompute(wh: &Warehouse, p: &Published) -> Result<String> {
    let method = Method::parse_published(&p.targets_csv, &p.assessment_toml)?;
    // The names, units and formats as published.
    let stored = p.assessment()?;
    let docs: Vec<plsw_transform::IndicatorDoc> = stored
        .method
        .indicators
        .iter()
        .map(|i| plsw_transform::IndicatorDoc {
            indicator: i.id.clone(),
            name_zh: i.name_zh.clone(),
            short_zh: i.short_zh.clone(),
            name_en: String::new(),
            unit: i.unit.clone(),
            format: i.format.clone(),
            definition_zh: String::new(),
            definition_en: String::new(),
        })
        .collect();
    let versions: std::collections::BTreeMap<String, i64> =
        serde_json::from_str(&p.table_versions).map_err(|e| Error::Query(e.to_string()))?;
    let versions: Vec<(&'static str, i64)> = plsw_schemas::tables::ALL
        .iter()
        .filter_map(|t| versions.get(t.name).map(|v| (t.name, *v)))
        .collect();
    Ok(
        crate::compute_with_docs(wh, &versions, &p.quarter, &method, &docs)
            .await?
            .to_json(),
    )
}

/// Every publication, in the order of quarter and revision.
pub async fn all(wh: &Warehouse) -> Result<Vec<Published>> {
    let ctx = wh.context_of(&[&ASSESSMENTS]).await?;
    let batches = ctx
        .sql("SELECT * FROM assessments ORDER BY quarter, revision")
        .await?
        .collect()
        .await?;
    let mut out = Vec::new();
    for b in &batches {
        let text = |name: &str| -> Result<StringArray> {
            crate::utf8(
                b.column_by_name(name)
                    .ok_or_else(|| Error::Query(format!("assessments has no column {name}")))?,
            )
        };
        let (quarter, by, versions, targets, toml, json, sha) = (
            text("quarter")?,
            text("published_by")?,
            text("table_versions")?,
            text("targets_csv")?,
            text("assessment_toml")?,
            text("result_json")?,
            text("result_sha256")?,
        );
        let revision = b
            .column_by_name("revision")
            .ok_or_else(|| Error::Query("revision".into()))?
            .as_primitive::<Int64Type>()
            .clone();
        let at = b
            .column_by_name("published_at")
            .ok_or_else(|| Error::Query("published_at".into()))?
            .as_primitive::<TimestampMicrosecondType>()
            .clone();
        for i in 0..b.num_rows() {
            out.push(Published {
                quarter: quarter.value(i).to_string(),
                revision: revision.value(i),
                published_at: at.value(i),
                published_by: by.value(i).to_string(),
                table_versions: versions.value(i).to_string(),
                targets_csv: targets.value(i).to_string(),
                assessment_toml: toml.value(i).to_string(),
                result_json: json.value(i).to_string(),
                result_sha256: sha.value(i).to_string(),
            });
        }
    }
    Ok(out)
}

fn batch(p: &Published) -> Result<RecordBatch> {
    use datafusion::arrow::array::TimestampMicrosecondArray;
    let s = |v: &str| Arc::new(StringArray::from(vec![v])) as Arc<dyn Array>;
    RecordBatch::try_new(
        ASSESSMENTS.schema(),
        vec![
            s(&p.quarter),
            Arc::new(Int64Array::from(vec![p.revision])),
            Arc::new(TimestampMicrosecondArray::from(vec![p.published_at]).with_timezone("UTC")),
            s(&p.published_by),
            s(&p.table_versions),
            s(&p.targets_csv),
            s(&p.assessment_toml),
            s(&p.result_json),
            s(&p.result_sha256),
        ],
    )
    .map_err(|e| Error::Query(e.to_string()))
}
