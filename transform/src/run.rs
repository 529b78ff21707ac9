//! Running the models: one DataFusion session over the warehouse's committed views, each model
//! in dependency order, its result kept in memory for the models after it, its data tests run
//! right after it; the output models are then committed as Delta tables.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use datafusion::arrow::array::{Array, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::catalog::MemTable;
use datafusion::config::Dialect;
use datafusion::prelude::{SessionConfig, SessionContext};
use plsw_schemas::tables;
use plsw_store::Warehouse;
use tracing::info;

use crate::error::{Error, Result};
use crate::model::{self, Model};
use crate::udf;

/// The targets shipped in `seeds/targets.csv` (indicator, comparison, target, from_year).
const TARGETS_CSV: &str = include_str!("../../seeds/targets.csv");

/// What one model did.
#[derive(Debug, Clone)]
pub struct ModelRun {
    pub name: String,
    pub rows: usize,
    pub millis: u128,
}

/// What a transform did.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub models: Vec<ModelRun>,
    /// Quarters computed (labels).
    pub quarters: Vec<String>,
    /// Rows written to `indicators`.
    pub indicator_rows: usize,
}

/// A session with the warehouse's views, the functions and the targets: what models see.
pub async fn session(wh: &Warehouse) -> Result<SessionContext> {
    let config = SessionConfig::new().with_information_schema(false);
    let ctx = SessionContext::new_with_config(config);
    plsw_store::register_all(&ctx, wh).await?;
    udf::register(&ctx);
    register_targets(&ctx)?;
    Ok(ctx)
}

fn register_targets(ctx: &SessionContext) -> Result<()> {
    use datafusion::arrow::array::{Float64Array, Int64Array, StringArray};
    let (mut ids, mut cmps, mut targets, mut years) = (vec![], vec![], vec![], vec![]);
    for (i, line) in TARGETS_CSV.lines().enumerate().skip(1) {
        let f: Vec<&str> = line.split(',').map(str::trim).collect();
        let bad = || Error::Model {
            model: "seeds/targets.csv".into(),
            message: format!(
                "line {}: expected indicator,comparison,target,from_year",
                i + 1
            ),
        };
        if f.len() != 4 || !matches!(f[1], ">=" | "=") {
            return Err(bad());
        }
        ids.push(f[0].to_string());
        cmps.push(f[1].to_string());
        targets.push(f[2].parse::<f64>().map_err(|_| bad())?);
        years.push(f[3].parse::<i64>().map_err(|_| bad())?);
    }
    let batch = RecordBatch::try_from_iter([
        (
            "indicator",
            Arc::new(StringArray::from(ids)) as Arc<dyn Array>,
        ),
        ("comparison", Arc::new(StringArray::from(cmps)) as _),
        ("target", Arc::new(Float64Array::from(targets)) as _),
        ("from_year", Arc::new(Int64Array::from(years)) as _),
    ])
    .map_err(|e| Error::sql("targets")(e.into()))?;
    let mem =
        MemTable::try_new(batch.schema(), vec![vec![batch]]).map_err(Error::sql("targets"))?;
    ctx.register_table("targets", Arc::new(mem))
        .map_err(Error::sql("targets"))?;
    Ok(())
}

/// Runs every model and commits the outputs.
pub async fn run(wh: &Warehouse) -> Result<Report> {
    let ctx = session(wh).await?;
    let models = model::load()?;
    let mut report = Report::default();
    for m in &models {
        report.models.push(run_model(&ctx, m).await?);
    }
    for m in models.iter().filter(|m| m.meta.output) {
        let def = tables::DERIVED_TABLES
            .iter()
            .copied()
            .find(|t| t.name == m.name)
            .ok_or_else(|| Error::Model {
                model: m.path.to_string(),
                message: "an output model must be a derived table of plsw-schemas".into(),
            })?;
        let batches = ctx
            .table(m.name.as_str())
            .await
            .map_err(Error::sql(&m.name))?
            .collect()
            .await
            .map_err(Error::sql(&m.name))?;
        let batches = conform(def, batches).map_err(Error::sql(&m.name))?;
        let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
        wh.overwrite(def, batches).await?;
        info!(table = def.name, rows, "committed");
        if def.name == tables::INDICATORS.name {
            report.indicator_rows = rows;
        }
    }
    let quarters = ctx
        .sql("SELECT quarter FROM quarters ORDER BY q")
        .await
        .map_err(Error::sql("quarters"))?
        .collect()
        .await
        .map_err(Error::sql("quarters"))?;
    for b in &quarters {
        let a = cast(b.column(0), &datafusion::arrow::datatypes::DataType::Utf8)
            .map_err(|e| Error::sql("quarters")(e.into()))?;
        let a = a
            .as_any()
            .downcast_ref::<datafusion::arrow::array::StringArray>()
            .expect("utf8");
        report
            .quarters
            .extend(a.iter().flatten().map(str::to_string));
    }
    Ok(report)
}

/// Runs one model into an in-memory table of its name, then its data tests.
async fn run_model(ctx: &SessionContext, m: &Model) -> Result<ModelRun> {
    let t0 = Instant::now();
    check_depends(ctx, m)?;
    let df = ctx.sql(&m.sql).await.map_err(Error::sql(&m.name))?;
    let schema = plsw_store::without_metadata(RecordBatch::new_empty(Arc::new(
        df.schema().as_arrow().clone(),
    )))
    .schema();
    let batches: Vec<RecordBatch> = df
        .collect()
        .await
        .map_err(Error::sql(&m.name))?
        .into_iter()
        .map(plsw_store::without_metadata)
        .collect();
    let rows = batches.iter().map(|b| b.num_rows()).sum();
    let schema = batches.first().map(|b| b.schema()).unwrap_or(schema);
    let mem = MemTable::try_new(schema, vec![batches]).map_err(Error::sql(&m.name))?;
    // A model may take the name of a warehouse view (`indicators`): within the run, it wins.
    let _ = ctx.deregister_table(m.name.as_str());
    ctx.register_table(m.name.as_str(), Arc::new(mem))
        .map_err(Error::sql(&m.name))?;
    for test in &m.meta.tests {
        let sql = test.sql(&m.name);
        let bad = ctx
            .sql(&sql)
            .await
            .map_err(Error::sql(&m.name))?
            .collect()
            .await
            .map_err(Error::sql(&m.name))?;
        let count: usize = bad.iter().map(|b| b.num_rows()).sum();
        if count > 0 {
            let sample: Vec<RecordBatch> = bad
                .iter()
                .take(1)
                .map(|b| b.slice(0, b.num_rows().min(5)))
                .collect();
            let sample = datafusion::arrow::util::pretty::pretty_format_batches(&sample)
                .map(|t| t.to_string())
                .unwrap_or_default();
            return Err(Error::DataTest {
                model: m.name.clone(),
                test: test.describe(),
                count,
                sample,
            });
        }
    }
    let millis = t0.elapsed().as_millis();
    info!(model = %m.name, rows, millis, "model");
    Ok(ModelRun {
        name: m.name.clone(),
        rows,
        millis,
    })
}

/// The relations a model's SQL reads (CTEs aside) must be exactly the ones its header declares.
fn check_depends(ctx: &SessionContext, m: &Model) -> Result<()> {
    let state = ctx.state();
    let statement = state
        .sql_to_statement(&m.sql, &Dialect::Generic)
        .map_err(Error::sql(&m.name))?;
    let read: BTreeSet<String> = state
        .resolve_table_references(&statement)
        .map_err(Error::sql(&m.name))?
        .iter()
        .map(|t| t.table().to_string())
        .collect();
    let declared: BTreeSet<String> = m.meta.depends.iter().cloned().collect();
    if read != declared {
        return Err(Error::Model {
            model: m.path.to_string(),
            message: format!("declared depends {declared:?}, but the SQL reads {read:?}"),
        });
    }
    Ok(())
}

/// The batches cast to the table's stored schema (names, types and nullability).
fn conform(
    def: &tables::Table,
    batches: Vec<RecordBatch>,
) -> datafusion::error::Result<Vec<RecordBatch>> {
    let schema = def.schema();
    batches
        .into_iter()
        .map(|b| {
            let columns = schema
                .fields()
                .iter()
                .map(|f| {
                    let c = b.column_by_name(f.name()).ok_or_else(|| {
                        datafusion::error::DataFusionError::Plan(format!(
                            "the output lacks column {}",
                            f.name()
                        ))
                    })?;
                    Ok(cast(c, f.data_type())?)
                })
                .collect::<datafusion::error::Result<Vec<_>>>()?;
            Ok(RecordBatch::try_new(schema.clone(), columns)?)
        })
        .collect()
}
