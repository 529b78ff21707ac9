//! Transform: the SQL models under `transform/models/` run as a DAG in one DataFusion session
//! over the warehouse's committed views, computing the indicators of
//! `../shared/spec/indicators.md` into the Delta table `indicators`.
//!
//! - [`model`]: the model files, their TOML headers (doc, depends, indicators, columns, data
//!   tests) and the dependency order;
//! - [`udf`]: local-time quarters and null-safe ratios;
//! - [`run`]: running the models, their data tests, and committing the outputs.

pub mod docs;
mod error;
pub mod model;
pub mod run;
pub mod udf;

pub use docs::{indicator_docs, IndicatorDoc};
pub use error::{Error, Result};
pub use run::{run, session, targets, Mode, Options, Report};

/// Scopes where an indicator exists (indicators.md, "Which rows exist").
pub fn scopes_of(indicator: &str) -> &'static [&'static str] {
    let city_and_province = (indicator.starts_with("hotline.")
        && indicator != "hotline.calls_per_10k")
        || indicator == "coverage.city_center"
        || indicator.starts_with("balance.");
    if city_and_province {
        &["city", "province"]
    } else {
        &["county", "city", "province"]
    }
}

/// Every indicator id the models compute, in model order.
pub fn indicator_ids() -> Result<Vec<String>> {
    Ok(model::load()?
        .into_iter()
        .flat_map(|m| m.meta.indicators)
        .collect())
}

/// Registers the wide views `indicators_county`, `indicators_city` and `indicators_province`:
/// one row per quarter and code (with the place's name), one column per indicator that exists
/// at that scope, named with `_` for `.` (`hotline_answer_rate`).
pub async fn register_wide_views(ctx: &datafusion::prelude::SessionContext) -> Result<()> {
    let ids = indicator_ids()?;
    for scope in ["county", "city", "province"] {
        let cols: Vec<String> = ids
            .iter()
            .filter(|id| scopes_of(id).contains(&scope))
            .map(|id| {
                format!(
                    "max(CASE WHEN i.indicator = '{id}' THEN i.value END) AS {}",
                    id.replace('.', "_")
                )
            })
            .collect();
        let sql = format!(
            "CREATE VIEW indicators_{scope} AS
             SELECT i.quarter, i.code, d.name, {}
             FROM indicators i LEFT JOIN divisions d ON d.code = i.code AND d.level = '{scope}'
             WHERE i.scope = '{scope}'
             GROUP BY i.quarter, i.code, d.name",
            cols.join(",\n  ")
        );
        ctx.sql(&sql).await.map_err(Error::sql("wide views"))?;
    }
    Ok(())
}
