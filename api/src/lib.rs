//! The query API for the member units of the joint conference (axum): bearer tokens with roles
//! and scopes (`../shared/spec/access.md`), one JSON error shape, read-only SQL.
//!
//! This slice serves `/health`, `/v1/tables` and `/v1/sql`, with row scope per caller
//! ([`scope`]): a scoped caller's session registers filtered views, and hides what the spec does
//! not list.

pub mod error;
pub mod scope;
pub mod tokens;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, Query, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use datafusion::arrow::array::RecordBatch;
use plsw_schemas::tables::{self, TableKind};
use plsw_store::Warehouse;
use serde::Deserialize;

pub use error::ApiError;
use tokens::{Role, TokenRecord};

/// Limits on a request (access.md; configurable).
#[derive(Debug, Clone)]
pub struct Limits {
    pub query_time: Duration,
    /// Memory a query may use.
    pub memory_bytes: usize,
    pub rows: usize,
    pub body_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            query_time: Duration::from_secs(30),
            memory_bytes: 2 << 30,
            rows: 100_000,
            body_bytes: 1024 * 1024,
        }
    }
}

/// How long a token lookup is trusted before the tokens table is read again: a revoked token
/// stops working within this time.
const TOKEN_TTL: Duration = Duration::from_secs(2);

/// Valid tokens by SHA-256, and when they were read.
type TokenCache = Option<(Instant, HashMap<String, TokenRecord>)>;

/// What the routes share.
#[derive(Clone)]
pub struct AppState {
    wh: Arc<Warehouse>,
    limits: Limits,
    tokens: Arc<RwLock<TokenCache>>,
}

impl AppState {
    pub fn new(wh: Warehouse, limits: Limits) -> Self {
        AppState {
            wh: Arc::new(wh),
            limits,
            tokens: Arc::new(RwLock::new(None)),
        }
    }

    /// The token with this SHA-256, if valid (not revoked).
    async fn token(&self, sha256: &str) -> Result<Option<TokenRecord>, ApiError> {
        {
            let cache = self.tokens.read().expect("token cache");
            if let Some((at, map)) = cache.as_ref() {
                if at.elapsed() < TOKEN_TTL {
                    return Ok(map.get(sha256).cloned());
                }
            }
        }
        let all = tokens::all(&self.wh).await?;
        let map: HashMap<String, TokenRecord> = all
            .into_iter()
            .filter(|t| t.revoked_at.is_none())
            .map(|t| (t.sha256.clone(), t))
            .collect();
        let found = map.get(sha256).cloned();
        *self.tokens.write().expect("token cache") = Some((Instant::now(), map));
        Ok(found)
    }
}

/// The caller of a request, once its token is checked.
#[derive(Debug, Clone)]
pub struct Caller(pub TokenRecord);

/// The application: `/health` is open, every other route needs a valid bearer token.
pub fn app(state: AppState) -> Router {
    let body_limit = state.limits.body_bytes;
    let protected = Router::new()
        .route("/v1/tables", get(list_tables))
        .route("/v1/sql", post(sql))
        .route("/v1/indicators", get(indicators))
        .route("/v1/indicators/catalog", get(catalog))
        .route("/v1/freshness", get(freshness))
        .route_layer(middleware::from_fn_with_state(state.clone(), authenticate));
    Router::new()
        .route(
            "/health",
            get(|| async { Json(serde_json::json!({ "status": "ok" })) }),
        )
        .merge(protected)
        .fallback(|| async { ApiError::not_found("no such route") })
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state)
}

async fn authenticate(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let header = req.headers().get(AUTHORIZATION).ok_or_else(|| {
        ApiError::unauthorized("an Authorization: Bearer <token> header is required")
    })?;
    let token = header
        .to_str()
        .ok()
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            ApiError::unauthorized("the Authorization header is not `Bearer <token>`")
        })?;
    let record = state
        .token(&tokens::hash(token))
        .await?
        .ok_or_else(|| ApiError::unauthorized("the token is not valid (unknown or revoked)"))?;
    req.extensions_mut().insert(Caller(record));
    Ok(next.run(req).await)
}

/// Tables a caller may know about: `loads`, `quarantine` and `transforms` for admins and
/// province-scoped analysts only; `tokens` for nobody.
fn visible(caller: &TokenRecord, t: &tables::Table) -> bool {
    if t.name == tables::TOKENS.name {
        return false;
    }
    t.kind != TableKind::System || scope::sees_bookkeeping(caller)
}

async fn list_tables(Extension(Caller(caller)): Extension<Caller>) -> Json<serde_json::Value> {
    let list: Vec<serde_json::Value> = tables::ALL
        .iter()
        .filter(|t| visible(&caller, t))
        .map(|t| {
            let cols: Vec<serde_json::Value> = t
                .schema()
                .fields()
                .iter()
                .map(|f| {
                    serde_json::json!({
                        "name": f.name(),
                        "type": f.data_type().to_string(),
                        "nullable": f.is_nullable(),
                        "doc": f.metadata().get("doc").cloned().unwrap_or_default(),
                    })
                })
                .collect();
            serde_json::json!({ "name": t.name, "doc": t.doc, "columns": cols })
        })
        .collect();
    Json(serde_json::json!({ "tables": list }))
}

#[derive(Debug, Deserialize)]
struct SqlRequest {
    sql: String,
}

/// Result formats of `/v1/sql`, chosen by `Accept`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Output {
    Json,
    Csv,
    Arrow,
    Parquet,
}

const ARROW_STREAM: &str = "application/vnd.apache.arrow.stream";
const PARQUET: &str = "application/vnd.apache.parquet";

impl Output {
    /// The first media type of `Accept` that we serve; JSON when none is given.
    fn from_accept(headers: &axum::http::HeaderMap) -> Result<Output, ApiError> {
        let Some(accept) = headers
            .get(axum::http::header::ACCEPT)
            .and_then(|v| v.to_str().ok())
        else {
            return Ok(Output::Json);
        };
        for part in accept.split(',') {
            let media = part.split(';').next().unwrap_or_default().trim();
            match media {
                "application/json" | "*/*" | "application/*" => return Ok(Output::Json),
                "text/csv" => return Ok(Output::Csv),
                ARROW_STREAM => return Ok(Output::Arrow),
                PARQUET | "application/x-parquet" => return Ok(Output::Parquet),
                _ => {}
            }
        }
        Err(ApiError::new(
            axum::http::StatusCode::NOT_ACCEPTABLE,
            "not_acceptable",
            format!(
                "Accept: {accept}: use application/json, text/csv, {ARROW_STREAM} or {PARQUET}"
            ),
        ))
    }
}

/// The batches in a binary format.
fn encode(
    output: Output,
    batches: &[RecordBatch],
    schema: datafusion::arrow::datatypes::SchemaRef,
) -> Result<Vec<u8>, ApiError> {
    let mut out = Vec::new();
    match output {
        Output::Arrow => {
            let mut w = datafusion::arrow::ipc::writer::StreamWriter::try_new(&mut out, &schema)
                .map_err(ApiError::internal)?;
            for b in batches {
                w.write(b).map_err(ApiError::internal)?;
            }
            w.finish().map_err(ApiError::internal)?;
        }
        Output::Parquet => {
            let mut w = datafusion::parquet::arrow::ArrowWriter::try_new(&mut out, schema, None)
                .map_err(ApiError::internal)?;
            for b in batches {
                w.write(b).map_err(ApiError::internal)?;
            }
            w.close().map_err(ApiError::internal)?;
        }
        Output::Json | Output::Csv => unreachable!("text formats are rendered"),
    }
    Ok(out)
}

async fn sql(
    State(state): State<AppState>,
    Extension(Caller(caller)): Extension<Caller>,
    headers: axum::http::HeaderMap,
    body: Result<Json<SqlRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let output = Output::from_accept(&headers)?;
    if caller.role == Role::Viewer {
        return Err(ApiError::forbidden("viewers may not run SQL"));
    }
    let Json(req) = body.map_err(|e| {
        let code = if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            "payload_too_large"
        } else {
            "bad_request"
        };
        ApiError::new(e.status(), code, e.body_text())
    })?;
    let ctx = caller_session(&state, &caller).await?;
    let run = plsw_query::run_limited(&ctx, &req.sql, state.limits.rows);
    let limit = |m: String| {
        ApiError::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            "limit_exceeded",
            m,
        )
    };
    let (batches, truncated) = match tokio::time::timeout(state.limits.query_time, run).await {
        Err(_) => {
            return Err(limit(format!(
                "the query ran longer than {:?}",
                state.limits.query_time
            )))
        }
        Ok(Err(plsw_query::Error::Limit(m))) => {
            return Err(limit(format!("the query needed too much memory: {m}")))
        }
        Ok(Err(plsw_query::Error::NotReadOnly(m))) => {
            return Err(ApiError::bad_request("not_read_only", m))
        }
        Ok(Err(plsw_query::Error::Plan(m))) => return Err(ApiError::bad_request("bad_sql", m)),
        Ok(Err(plsw_query::Error::Execution(m))) => {
            return Err(ApiError::bad_request("query_failed", m))
        }
        Ok(Err(e)) => return Err(ApiError::internal(e)),
        Ok(Ok(b)) => b,
    };
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    let truncated_header = ("x-truncated", if truncated { "true" } else { "false" });
    match output {
        Output::Json => {}
        Output::Csv => {
            let text = plsw_query::render(&batches, plsw_query::Format::Csv)
                .map_err(ApiError::internal)?;
            return Ok((
                [
                    ("content-type", "text/csv; charset=utf-8"),
                    truncated_header,
                ],
                text,
            )
                .into_response());
        }
        Output::Arrow | Output::Parquet => {
            let schema = match batches.first() {
                Some(b) => b.schema(),
                None => Arc::new(datafusion::arrow::datatypes::Schema::empty()),
            };
            let bytes = encode(output, &batches, schema)?;
            let media = if output == Output::Arrow {
                ARROW_STREAM
            } else {
                PARQUET
            };
            return Ok(([("content-type", media), truncated_header], bytes).into_response());
        }
    }
    let text =
        plsw_query::render(&batches, plsw_query::Format::Json).map_err(ApiError::internal)?;
    let json: serde_json::Value = serde_json::from_str(&text).unwrap_or(serde_json::json!([]));
    Ok(Json(serde_json::json!({
        "rows": json,
        "row_count": rows,
        "truncated": truncated,
    }))
    .into_response())
}

/// A session for `caller`: its row scope, the memory limit.
async fn caller_session(
    state: &AppState,
    caller: &TokenRecord,
) -> Result<datafusion::prelude::SessionContext, ApiError> {
    // The places of the scope, from the divisions the session reads (worked out once).
    let places = std::sync::OnceLock::new();
    let access = |name: &str, d: &plsw_store::Divisions| {
        scope::access(
            caller,
            places.get_or_init(|| scope::places(caller, d)).as_ref(),
            name,
        )
    };
    plsw_query::session_with(&state.wh, &access, Some(state.limits.memory_bytes))
        .await
        .map_err(ApiError::internal)
}

/// Rows of a DataFrame as JSON objects.
async fn json_rows(df: datafusion::dataframe::DataFrame) -> Result<serde_json::Value, ApiError> {
    let batches = df.collect().await.map_err(ApiError::internal)?;
    let text =
        plsw_query::render(&batches, plsw_query::Format::Json).map_err(ApiError::internal)?;
    serde_json::from_str(&text).map_err(ApiError::internal)
}

#[derive(Debug, Deserialize)]
struct IndicatorQuery {
    indicator: Option<String>,
    scope: Option<String>,
    code: Option<String>,
    quarter: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

fn is_quarter(q: &str) -> bool {
    let b = q.as_bytes();
    b.len() == 6
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'Q'
        && (b'1'..=b'4').contains(&b[5])
}

/// `GET /v1/indicators`: the caller's rows of `indicators`, filtered, as a time series.
async fn indicators(
    State(state): State<AppState>,
    Extension(Caller(caller)): Extension<Caller>,
    Query(q): Query<IndicatorQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    use datafusion::prelude::{col, lit};
    let bad = |m: &str| ApiError::bad_request("bad_parameter", m.to_string());
    if let Some(i) = &q.indicator {
        if i.is_empty()
            || !i
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '_')
        {
            return Err(bad("indicator: an id such as hotline.answer_rate"));
        }
    }
    if let Some(s) = &q.scope {
        if !matches!(s.as_str(), "county" | "city" | "province") {
            return Err(bad("scope: county, city or province"));
        }
    }
    if let Some(c) = &q.code {
        if c.len() != 6 || !c.chars().all(|ch| ch.is_ascii_digit()) {
            return Err(bad("code: a 6-digit county, city or province code"));
        }
    }
    for (name, v) in [("quarter", &q.quarter), ("from", &q.from), ("to", &q.to)] {
        if v.as_deref().is_some_and(|v| !is_quarter(v)) {
            return Err(bad(&format!("{name}: a quarter such as 2025Q3")));
        }
    }
    let ctx = caller_session(&state, &caller).await?;
    let mut df = ctx.table("indicators").await.map_err(ApiError::internal)?;
    let filters = [
        q.indicator
            .as_ref()
            .map(|v| col("indicator").eq(lit(v.clone()))),
        q.scope.as_ref().map(|v| col("scope").eq(lit(v.clone()))),
        q.code.as_ref().map(|v| col("code").eq(lit(v.clone()))),
        q.quarter
            .as_ref()
            .map(|v| col("quarter").eq(lit(v.clone()))),
        q.from
            .as_ref()
            .map(|v| col("quarter").gt_eq(lit(v.clone()))),
        q.to.as_ref().map(|v| col("quarter").lt_eq(lit(v.clone()))),
    ];
    for f in filters.into_iter().flatten() {
        df = df.filter(f).map_err(ApiError::internal)?;
    }
    let df = df
        .sort(vec![
            col("indicator").sort(true, true),
            col("scope").sort(true, true),
            col("code").sort(true, true),
            col("quarter").sort(true, true),
        ])
        .map_err(ApiError::internal)?
        .limit(0, Some(state.limits.rows))
        .map_err(ApiError::internal)?;
    Ok(Json(serde_json::json!({ "rows": json_rows(df).await? })))
}

/// `GET /v1/indicators/catalog`: every indicator id, the model that computes it, its scopes and
/// its target.
async fn catalog() -> Result<Json<serde_json::Value>, ApiError> {
    let targets = plsw_transform::targets().map_err(ApiError::internal)?;
    let mut out = Vec::new();
    for m in plsw_transform::model::load().map_err(ApiError::internal)? {
        for id in &m.meta.indicators {
            let t = targets.iter().find(|t| &t.0 == id);
            out.push(serde_json::json!({
                "id": id,
                "family": id.split('.').next().unwrap_or_default(),
                "model": m.path,
                "model_doc": m.meta.doc,
                "scopes": plsw_transform::scopes_of(id),
                "target": t.map(|t| serde_json::json!({ "comparison": t.1, "value": t.2, "from_year": t.3 })),
            }));
        }
    }
    Ok(Json(serde_json::json!({ "indicators": out })))
}

/// `GET /v1/freshness`: per feed, the last committed load, its rows, and the pull's watermark.
/// Loads are bookkeeping: admins and province-scoped analysts only.
async fn freshness(
    State(state): State<AppState>,
    Extension(Caller(caller)): Extension<Caller>,
) -> Result<Json<serde_json::Value>, ApiError> {
    if !scope::sees_bookkeeping(&caller) {
        return Err(ApiError::forbidden(
            "freshness shows the loads: admins and province-scoped analysts only",
        ));
    }
    let ctx = caller_session(&state, &caller).await?;
    let df = ctx
        .sql(
            "SELECT feed, count(*) AS loads, max(load_seq) AS last_load_seq,
                    CAST(max(loaded_at) AS VARCHAR) AS last_loaded_at,
                    sum(rows_accepted) AS rows_accepted, sum(rows_quarantined) AS rows_quarantined,
                    CAST(max(watermark) AS VARCHAR) AS watermark
             FROM loads WHERE status = 'committed' GROUP BY feed ORDER BY feed",
        )
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(serde_json::json!({ "feeds": json_rows(df).await? })))
}
