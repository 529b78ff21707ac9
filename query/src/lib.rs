//! Query: read-only SQL over the warehouse, and the output formats of results.
//!
//! Every table and view is registered in one DataFusion `SessionContext` per caller
//! (`plsw_store::register_all`). User SQL is planned with DDL, DML and statements such as
//! `SET` disabled, so it can only read.

use datafusion::arrow::array::RecordBatch;
use datafusion::error::DataFusionError;
use datafusion::execution::context::SQLOptions;
use datafusion::execution::session_state::{SessionState, SessionStateBuilder};
use datafusion::prelude::{SessionConfig, SessionContext};
use plsw_store::Warehouse;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The statement is not a read-only query (the caller's fault).
    #[error("not_read_only: only SELECT, WITH and EXPLAIN are allowed ({0})")]
    NotReadOnly(String),

    /// A function that reads files or URLs (`read_csv`, `read_parquet`, …): none is registered,
    /// and asking for one is refused by name.
    #[error("forbidden_function: {0} reads files or URLs, which queries may not do")]
    ForbiddenFunction(String),

    /// The query does not plan: unknown table or column, syntax (the caller's fault).
    #[error("{0}")]
    Plan(String),

    /// The query failed while running.
    #[error("{0}")]
    Execution(String),

    /// The query needed more memory than the session allows.
    #[error("limit_exceeded: {0}")]
    Limit(String),

    #[error(transparent)]
    Warehouse(#[from] plsw_store::Error),

    #[error("formatting the result: {0}")]
    Format(String),
}

impl From<DataFusionError> for Error {
    fn from(e: DataFusionError) -> Self {
        // Errors come wrapped (context, diagnostics); the root says whose fault it is.
        match e.find_root() {
            DataFusionError::ResourcesExhausted(m) => Error::Limit(m.clone()),
            DataFusionError::Plan(m) | DataFusionError::SQL(_, Some(m)) => match file_function(m) {
                Some(f) => Error::ForbiddenFunction(f),
                None => Error::Plan(m.clone()),
            },
            DataFusionError::SQL(p, None) => Error::Plan(p.to_string()),
            DataFusionError::SchemaError(s, _) => Error::Plan(s.to_string()),
            // `SET TIME ZONE` and other settings DataFusion does not implement.
            DataFusionError::NotImplemented(m) if m.starts_with("SET") => {
                Error::NotReadOnly(m.clone())
            }
            DataFusionError::NotImplemented(m) => Error::Plan(m.clone()),
            _ => Error::Execution(e.to_string()),
        }
    }
}

/// A session over the warehouse at its latest committed state.
pub async fn session(wh: &Warehouse) -> Result<SessionContext> {
    session_with(wh, &|_, _| plsw_store::Access::Full, None).await
}

/// A session with row scope (see [`plsw_store::register_all_with`]) and, if given, a limit on
/// the memory its queries may use (beyond it a query fails with [`Error::Limit`]).
pub async fn session_with(
    wh: &Warehouse,
    access: &(dyn Fn(&str, &plsw_store::Divisions) -> plsw_store::Access + Send + Sync),
    memory_limit: Option<usize>,
) -> Result<SessionContext> {
    let state = session_state(wh, access).await?;
    match memory_limit {
        None => Ok(SessionContext::new_with_state(state)),
        Some(bytes) => with_memory_limit(&state, bytes),
    }
}

/// The catalog of a session with row scope, to keep and share: user SQL cannot change it (DDL
/// and statements are refused), so one state can serve many queries, each through
/// [`with_memory_limit`].
pub async fn session_state(
    wh: &Warehouse,
    access: &(dyn Fn(&str, &plsw_store::Divisions) -> plsw_store::Access + Send + Sync),
) -> Result<SessionState> {
    let config = SessionConfig::new()
        .with_information_schema(true)
        .set_str("datafusion.sql_parser.enable_ident_normalization", "true");
    let ctx = SessionContext::new_with_config(config);
    plsw_store::register_all_with(&ctx, wh, access).await?;
    // The models' functions (local_quarter, date_quarter, quarter_label, quarter_last_day,
    // ratio): pure, so an analyst can run a model's SQL as it is.
    plsw_transform::udf::register(&ctx);
    plsw_transform::register_wide_views(&ctx)
        .await
        .map_err(|e| Error::Execution(e.to_string()))?;
    Ok(ctx.state())
}

/// A context over `state`'s catalog whose queries may use at most `bytes` of memory: each call
/// gets its own memory pool, so the limit holds per query, not per caller.
pub fn with_memory_limit(state: &SessionState, bytes: usize) -> Result<SessionContext> {
    let runtime = datafusion::execution::runtime_env::RuntimeEnvBuilder::new()
        // The Delta tables' object stores were registered in the state's runtime.
        .with_object_store_registry(state.runtime_env().object_store_registry.clone())
        .with_memory_limit(bytes, 1.0)
        .build_arc()?;
    let state = SessionStateBuilder::new_from_existing(state.clone())
        .with_runtime_env(runtime)
        .build();
    Ok(SessionContext::new_with_state(state))
}

/// Runs one read-only statement and keeps at most `max_rows` rows of its result (reading stops
/// there); the flag says whether there were more.
pub async fn run_limited(
    ctx: &SessionContext,
    sql: &str,
    max_rows: usize,
) -> Result<(Vec<RecordBatch>, bool)> {
    use futures::StreamExt;
    let df = plan(ctx, sql).await?;
    let mut stream = df.execute_stream().await?;
    let mut kept = Vec::new();
    let mut rows = 0usize;
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        if rows + batch.num_rows() > max_rows {
            kept.push(batch.slice(0, max_rows - rows));
            return Ok((kept, true));
        }
        rows += batch.num_rows();
        kept.push(batch);
    }
    Ok((kept, false))
}

/// Runs one read-only statement.
pub async fn run(ctx: &SessionContext, sql: &str) -> Result<Vec<RecordBatch>> {
    Ok(plan(ctx, sql).await?.collect().await?)
}

/// Plans one statement, refusing anything but a read-only query.
async fn plan(ctx: &SessionContext, sql: &str) -> Result<datafusion::dataframe::DataFrame> {
    let options = SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false);
    let df = ctx
        .sql_with_options(sql, options)
        .await
        .map_err(|e| match e.find_root() {
            DataFusionError::Plan(m)
                if m.contains("not supported")
                    && (m.contains("DDL") || m.contains("DML") || m.contains("Statement")) =>
            {
                Error::NotReadOnly(m.clone())
            }
            _ => e.into(),
        })?;
    Ok(df)
}

/// Functions that read files or URLs in some DataFusion front ends (datafusion-cli, DuckDB
/// habits). The API's sessions register none of them; a plan error naming one is reported as
/// `forbidden_function` so that the caller learns why rather than "not found".
const FILE_FUNCTIONS: &[&str] = &[
    "read_csv",
    "read_csv_auto",
    "read_parquet",
    "read_json",
    "read_json_auto",
    "read_ndjson",
    "read_avro",
    "read_arrow",
    "read_text",
    "read_blob",
    "parquet_metadata",
    "parquet_schema",
    "metadata_cache",
    "statistics_cache",
];

/// The file-reading function a plan error is about, if any.
fn file_function(message: &str) -> Option<String> {
    let lower = message.to_ascii_lowercase();
    FILE_FUNCTIONS
        .iter()
        .find(|f| {
            lower.contains(&format!("'{f}'"))
                || lower.contains(&format!("\"{f}\""))
                || lower.contains(&format!("function {f}"))
        })
        .map(|f| f.to_string())
}

/// Output formats of `plsw sql`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Csv,
    Json,
}

/// Renders batches as an aligned table, CSV with a header, or a JSON array of objects.
pub fn render(batches: &[RecordBatch], format: Format) -> Result<String> {
    use datafusion::arrow::{csv, json, util::pretty};
    let err = |e: datafusion::arrow::error::ArrowError| Error::Format(e.to_string());
    match format {
        Format::Table => Ok(pretty::pretty_format_batches(batches)
            .map_err(err)?
            .to_string()),
        Format::Csv => {
            let mut out = Vec::new();
            {
                let mut w = csv::WriterBuilder::new().with_header(true).build(&mut out);
                for b in batches {
                    w.write(&flatten_nested(b)?).map_err(err)?;
                }
            }
            String::from_utf8(out).map_err(|e| Error::Format(e.to_string()))
        }
        Format::Json => {
            let mut out = Vec::new();
            {
                let mut w = json::ArrayWriter::new(&mut out);
                for b in batches {
                    w.write(b).map_err(err)?;
                }
                w.finish().map_err(err)?;
            }
            let mut s = String::from_utf8(out).map_err(|e| Error::Format(e.to_string()))?;
            if s.is_empty() {
                s.push_str("[]");
            }
            Ok(s)
        }
    }
}

/// CSV has no lists: nested columns (e.g. `platforms.services`) become their display text,
/// `[mediation, legal_aid]`.
fn flatten_nested(b: &RecordBatch) -> Result<RecordBatch> {
    let err = |e: datafusion::arrow::error::ArrowError| Error::Format(e.to_string());
    use datafusion::arrow::array::{ArrayRef, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
    use std::sync::Arc;
    if !b
        .schema()
        .fields()
        .iter()
        .any(|f| f.data_type().is_nested())
    {
        return Ok(b.clone());
    }
    let mut fields = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    for (f, a) in b.schema().fields().iter().zip(b.columns()) {
        if f.data_type().is_nested() {
            let fmt =
                ArrayFormatter::try_new(a.as_ref(), &FormatOptions::default()).map_err(err)?;
            let text: StringArray = (0..a.len())
                .map(|i| (!a.is_null(i)).then(|| fmt.value(i).to_string()))
                .collect();
            fields.push(Field::new(f.name(), DataType::Utf8, true));
            columns.push(Arc::new(text));
        } else {
            fields.push(f.as_ref().clone());
            columns.push(a.clone());
        }
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn file_functions_are_refused_by_name_and_others_are_plan_errors() {
        let ctx = SessionContext::new();
        for sql in [
            "SELECT * FROM read_csv('/etc/passwd')",
            "SELECT * FROM read_parquet('/tmp/x.parquet')",
            "SELECT * FROM parquet_metadata('/tmp/x.parquet')",
        ] {
            let e = run(&ctx, sql).await.unwrap_err();
            assert!(matches!(e, Error::ForbiddenFunction(_)), "{sql}: {e:?}");
        }
        let e = run(&ctx, "SELECT * FROM no_such_table").await.unwrap_err();
        assert!(matches!(e, Error::Plan(_)), "{e:?}");
        let e = run(&ctx, "DROP TABLE x").await.unwrap_err();
        assert!(matches!(e, Error::NotReadOnly(_)), "{e:?}");
        assert_eq!(run(&ctx, "SELECT 1").await.unwrap()[0].num_rows(), 1);
    }
}
