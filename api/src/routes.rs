//! The route handlers, each documented for `/v1/openapi.json` (utoipa).

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{OriginalUri, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use datafusion::arrow::array::RecordBatch;
use plsw_schemas::tables;
use serde::Deserialize;
use utoipa::OpenApi;

use crate::cache::{Audience, AudienceCatalog};
use crate::error::ApiError;
use crate::tokens::{Role, TokenRecord};
use crate::{scope, AppState, Caller};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "plsw query API",
        description = "The analytics warehouse of Henan's public legal service system, for the member units of the provincial joint conference. Every route but /health needs `Authorization: Bearer <token>`; errors are `{\"error\": code, \"message\": text}`."
    ),
    paths(health, metrics, openapi, me, list_tables, sql, indicators, catalog, freshness, assessments, assessment, export_xlsx),
    components(schemas(ErrorBody, SqlRequest, ExportRequest)),
    modifiers(&BearerAuth),
    security(("bearer" = []))
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The error shape of every route.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct ErrorBody {
    /// A stable code: `unauthorized`, `forbidden`, `not_read_only`, `forbidden_function`, `bad_sql`, `bad_parameter`,
    /// `limit_exceeded`, `payload_too_large`, `not_acceptable`, `not_found`, `internal`.
    error: String,
    /// What went wrong, for people.
    message: String,
}

/// A JSON body from cache, or computed and kept until the warehouse commits. Answers 304 to an
/// `If-None-Match` with the body's ETag.
async fn cached_json<F>(
    state: &AppState,
    caller: &TokenRecord,
    key: String,
    headers: &HeaderMap,
    compute: F,
) -> Result<Response, ApiError>
where
    F: std::future::Future<Output = Result<serde_json::Value, ApiError>>,
{
    let generation = state.cache.generation(&state.wh).await?;
    let who = Audience::of(caller);
    let (body, hit) = match state.cache.response(generation, &who, &key) {
        Some(body) => (body, true),
        None => {
            let body =
                Bytes::from(serde_json::to_vec(&compute.await?).map_err(ApiError::internal)?);
            state
                .cache
                .keep_response(generation, who, key, body.clone());
            (body, false)
        }
    };
    let etag = {
        use sha2::Digest;
        format!("\"{}\"", &hex::encode(sha2::Sha256::digest(&body))[..32])
    };
    let cache_header = ("x-cache", if hit { "hit" } else { "miss" });
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag))
    {
        return Ok((
            StatusCode::NOT_MODIFIED,
            [(header::ETAG.as_str(), etag.as_str()), cache_header],
        )
            .into_response());
    }
    Ok((
        [
            (header::CONTENT_TYPE.as_str(), "application/json"),
            (header::ETAG.as_str(), etag.as_str()),
            // Private: the body depends on the caller's token.
            (header::CACHE_CONTROL.as_str(), "private, no-cache"),
            cache_header,
        ],
        body,
    )
        .into_response())
}

/// A body that is not the JSON a route takes: 413 `payload_too_large` beyond the limit, else
/// `bad_request` with axum's reason.
fn json_rejection(e: axum::extract::rejection::JsonRejection) -> ApiError {
    let code = if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        "payload_too_large"
    } else {
        "bad_request"
    };
    ApiError::new(e.status(), code, e.body_text())
}

/// Liveness: open, no token.
#[utoipa::path(get, path = "/health", security(()), responses((status = 200, description = "`{\"status\": \"ok\"}`")))]
pub(crate) async fn health() -> Json<serde_json::Value> {
    crate::health_body()
}

/// This document.
#[utoipa::path(get, path = "/v1/openapi.json", responses((status = 200, description = "The OpenAPI 3.1 description of every route"), (status = 401, body = ErrorBody)))]
pub(crate) async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

/// Docs of the views that are not tables of the contract.
fn view_doc(name: &str) -> Option<String> {
    if let Some(base) = name.strip_suffix(plsw_store::CURRENT_SUFFIX) {
        return Some(format!(
            "The current state of `{base}`: each key once, at its latest committed row."
        ));
    }
    if let Some(scope) = name.strip_prefix("indicators_") {
        return Some(format!(
            "`indicators` at {scope} scope, wide: one row per quarter and {scope} (with its name), one column per indicator (`.` written `_`)."
        ));
    }
    (name == "divisions").then(|| {
        "Every place of the divisions in one view: code, name, level (province, city, county, township, village), parent_code and kind.".to_string()
    })
}

/// The tables and views the caller's SQL can read, with columns, types and docs.
#[utoipa::path(get, path = "/v1/tables", responses(
    (status = 200, description = "`{\"tables\": [{name, doc, columns: [{name, type, nullable, doc}]}]}`: exactly what the caller's SQL can read"),
    (status = 401, body = ErrorBody)))]
pub(crate) async fn list_tables(
    State(state): State<AppState>,
    Extension(Caller(caller)): Extension<Caller>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    cached_json(&state, &caller, uri.to_string(), &headers, async {
        let ctx = caller_session(&state, &caller).await?;
        let schema = ctx
            .catalog("datafusion")
            .and_then(|c| c.schema("public"))
            .ok_or_else(|| ApiError::internal("no public schema"))?;
        let mut names = schema.table_names();
        names.sort();
        let mut list = Vec::new();
        for name in names {
            let Some(provider) = schema.table(&name).await.map_err(ApiError::internal)? else {
                continue;
            };
            let base = name
                .strip_suffix(plsw_store::CURRENT_SUFFIX)
                .unwrap_or(&name);
            let def = tables::ALL
                .iter()
                .chain(tables::DIVISION_TABLES)
                .find(|t| t.name == base);
            let doc = match def {
                Some(t) if t.name == name => Some(t.doc.to_string()),
                _ => view_doc(&name),
            };
            let cols: Vec<serde_json::Value> = provider
                .schema()
                .fields()
                .iter()
                .map(|f| {
                    let doc = def
                        .and_then(|t| t.schema().field_with_name(f.name()).ok().cloned())
                        .and_then(|f| f.metadata().get("doc").cloned());
                    serde_json::json!({
                        "name": f.name(),
                        "type": f.data_type().to_string(),
                        "nullable": f.is_nullable(),
                        "doc": doc,
                    })
                })
                .collect();
            list.push(serde_json::json!({ "name": name, "doc": doc, "columns": cols }));
        }
        Ok(serde_json::json!({ "tables": list }))
    })
    .await
}

/// Prometheus metrics (text format 0.0.4): requests and latencies by route, `/v1/sql`
/// durations, rows loaded per feed, table versions, cache counters. Admins and province-scoped
/// analysts, as it shows the loads.
#[utoipa::path(get, path = "/metrics", responses(
    (status = 200, description = "Prometheus text exposition", content_type = "text/plain; version=0.0.4"),
    (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(crate) async fn metrics(
    State(state): State<AppState>,
    Extension(Caller(caller)): Extension<Caller>,
) -> Result<Response, ApiError> {
    use std::fmt::Write;
    if !scope::sees_bookkeeping(&caller) {
        return Err(ApiError::forbidden(
            "metrics show the loads: admins and province-scoped analysts only",
        ));
    }
    state.cache.generation(&state.wh).await?;
    let mut out = state.metrics.render();
    let loads = state.wh.loads().await.map_err(ApiError::internal)?;
    // Every feed is present, at 0 until its first load.
    let mut per_feed: std::collections::BTreeMap<&str, (u64, i64, i64, i64)> =
        plsw_schemas::codes::FEEDS
            .codes
            .iter()
            .map(|(f, _)| (*f, Default::default()))
            .collect();
    for l in loads.iter().filter(|l| l.status == "committed") {
        let e = per_feed.entry(l.feed.as_str()).or_default();
        e.0 += 1;
        e.1 += l.rows_accepted;
        e.2 += l.rows_quarantined;
        e.3 += l.rows_read;
    }
    out.push_str(
        "# HELP plsw_loads_total Committed loads per feed.\n# TYPE plsw_loads_total counter\n",
    );
    for (feed, (n, ..)) in &per_feed {
        let _ = writeln!(out, "plsw_loads_total{{feed=\"{feed}\"}} {n}");
    }
    out.push_str("# HELP plsw_rows_loaded_total Rows of committed loads per feed: read, accepted, quarantined.\n# TYPE plsw_rows_loaded_total counter\n");
    for (feed, (_, accepted, quarantined, read)) in &per_feed {
        for (kind, n) in [
            ("read", read),
            ("accepted", accepted),
            ("quarantined", quarantined),
        ] {
            let _ = writeln!(
                out,
                "plsw_rows_loaded_total{{feed=\"{feed}\",kind=\"{kind}\"}} {n}"
            );
        }
    }
    out.push_str("# HELP plsw_table_version Delta version of each table, as the API last read it.\n# TYPE plsw_table_version gauge\n");
    for (table, v) in state.cache.versions() {
        let _ = writeln!(out, "plsw_table_version{{table=\"{table}\"}} {v}");
    }
    let stats = state.cache.stats();
    let _ = write!(
        out,
        "# HELP plsw_cache_hits_total Responses served from the cache.\n# TYPE plsw_cache_hits_total counter\nplsw_cache_hits_total {}\n\
         # HELP plsw_cache_misses_total Responses computed.\n# TYPE plsw_cache_misses_total counter\nplsw_cache_misses_total {}\n\
         # HELP plsw_warehouse_generation Times the API saw the warehouse commit since it started (plus one).\n# TYPE plsw_warehouse_generation gauge\nplsw_warehouse_generation {}\n",
        stats.hits, stats.misses, stats.generation
    );
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response())
}

/// The body of `POST /v1/sql`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub(crate) struct SqlRequest {
    /// One SELECT, WITH or EXPLAIN statement.
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

/// Runs one read-only statement over the caller's rows. The result comes as JSON (`{rows,
/// row_count, truncated}`), CSV, an Arrow IPC stream or Parquet, by `Accept`; the binary and
/// CSV forms carry `X-Truncated`.
#[utoipa::path(post, path = "/v1/sql", request_body = SqlRequest, responses(
    (status = 200, description = "The rows: `{\"rows\": [...], \"row_count\": n, \"truncated\": bool}`, or CSV / Arrow IPC stream / Parquet by Accept"),
    (status = 400, body = ErrorBody, description = "`not_read_only`, `forbidden_function`, `bad_sql`, `query_failed`, `bad_request`"),
    (status = 401, body = ErrorBody), (status = 403, body = ErrorBody, description = "viewers may not run SQL"),
    (status = 406, body = ErrorBody), (status = 413, body = ErrorBody),
    (status = 422, body = ErrorBody, description = "`limit_exceeded`: time or memory")))]
pub(crate) async fn sql(
    State(state): State<AppState>,
    Extension(Caller(caller)): Extension<Caller>,
    headers: HeaderMap,
    body: Result<Json<SqlRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let output = Output::from_accept(&headers)?;
    if caller.role == Role::Viewer {
        return Err(ApiError::forbidden("viewers may not run SQL"));
    }
    let Json(req) = body.map_err(json_rejection)?;
    let ctx = caller_session(&state, &caller).await?;
    let t0 = Instant::now();
    let run = plsw_query::run_limited(&ctx, &req.sql, state.limits.rows);
    let limit = |m: String| {
        ApiError::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            "limit_exceeded",
            m,
        )
    };
    let result = tokio::time::timeout(state.limits.query_time, run).await;
    let outcome = match &result {
        Err(_) | Ok(Err(plsw_query::Error::Limit(_))) => "limit",
        Ok(Err(
            plsw_query::Error::NotReadOnly(_)
            | plsw_query::Error::Plan(_)
            | plsw_query::Error::ForbiddenFunction(_),
        )) => "refused",
        Ok(Err(_)) => "failed",
        Ok(Ok((_, true))) => "truncated",
        Ok(Ok((_, false))) => "ok",
    };
    state.metrics.query(outcome, t0.elapsed());
    let (batches, truncated) = match result {
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
        Ok(Err(e @ plsw_query::Error::ForbiddenFunction(_))) => {
            return Err(ApiError::bad_request("forbidden_function", e.to_string()))
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

/// A session for `caller`: its row scope (the audience's catalog, cached until the warehouse
/// commits) and a memory pool of its own.
async fn caller_session(
    state: &AppState,
    caller: &TokenRecord,
) -> Result<datafusion::prelude::SessionContext, ApiError> {
    let catalog = audience_catalog(state, caller).await?;
    plsw_query::with_memory_limit(&catalog.state, state.limits.memory_bytes)
        .map_err(ApiError::internal)
}

/// The caller's audience's catalog and the places of its scope, shared (not copied) by every
/// request of the audience until the warehouse commits.
async fn audience_catalog(
    state: &AppState,
    caller: &TokenRecord,
) -> Result<Arc<AudienceCatalog>, ApiError> {
    let generation = state.cache.generation(&state.wh).await?;
    let who = Audience::of(caller);
    if let Some(found) = state.cache.session(generation, &who) {
        return Ok(found);
    }
    // The places of the scope, from the divisions the session reads (worked out once).
    let places = std::sync::OnceLock::new();
    let access = |name: &str, d: &plsw_store::Divisions| {
        scope::access(
            caller,
            places.get_or_init(|| scope::places(caller, d)).as_ref(),
            name,
        )
    };
    let built = plsw_query::session_state(&state.wh, &access)
        .await
        .map_err(ApiError::internal)?;
    let catalog = Arc::new(AudienceCatalog {
        state: built,
        places: places.into_inner().flatten(),
    });
    state.cache.keep_session(generation, who, catalog.clone());
    Ok(catalog)
}

/// Rows of a DataFrame as JSON objects.
async fn json_rows(df: datafusion::dataframe::DataFrame) -> Result<serde_json::Value, ApiError> {
    let batches = df.collect().await.map_err(ApiError::internal)?;
    let text =
        plsw_query::render(&batches, plsw_query::Format::Json).map_err(ApiError::internal)?;
    serde_json::from_str(&text).map_err(ApiError::internal)
}

/// Filters of `GET /v1/indicators`; all optional.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub(crate) struct IndicatorQuery {
    /// An indicator id, such as `hotline.answer_rate`.
    indicator: Option<String>,
    /// `county`, `city` or `province`.
    scope: Option<String>,
    /// A 6-digit code of a county, city or the province (`410000`).
    code: Option<String>,
    /// One quarter, such as `2025Q3`.
    quarter: Option<String>,
    /// The first quarter of a time series (inclusive).
    from: Option<String>,
    /// The last quarter of a time series (inclusive).
    to: Option<String>,
}

fn is_quarter(q: &str) -> bool {
    let b = q.as_bytes();
    b.len() == 6
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'Q'
        && (b'1'..=b'4').contains(&b[5])
}

/// The caller's rows of `indicators`, filtered, ordered by indicator, scope, code and quarter
/// (a time series per place): value, numerator, denominator, target, meets_target.
#[utoipa::path(get, path = "/v1/indicators", params(IndicatorQuery), responses(
    (status = 200, description = "`{\"rows\": [{quarter, scope, code, indicator, value, numerator, denominator, target, meets_target}], \"truncated\": bool}` (at most the row limit); cached until the warehouse commits, with an ETag"),
    (status = 304, description = "Not modified (If-None-Match)"),
    (status = 400, body = ErrorBody, description = "`bad_parameter`"),
    (status = 401, body = ErrorBody)))]
pub(crate) async fn indicators(
    State(state): State<AppState>,
    Extension(Caller(caller)): Extension<Caller>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    q: Result<Query<IndicatorQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::bad_request("bad_parameter", e.body_text()))?;
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
    let places = audience_catalog(&state, &caller).await?.places.clone();
    if let Some(p) = &places {
        // Asking for a place outside the scope is refused rather than answered empty.
        if q.scope.as_deref() == Some("province") {
            return Err(ApiError::forbidden(
                "province rows are for province-scoped tokens only",
            ));
        }
        if let Some(c) = &q.code {
            if !p.cities.contains(c) && !p.counties.contains(c) {
                return Err(ApiError::forbidden(format!(
                    "{c} is outside the token's scope"
                )));
            }
        }
    }
    cached_json(&state, &caller, uri.to_string(), &headers, async {
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
            .limit(0, Some(state.limits.rows + 1))
            .map_err(ApiError::internal)?;
        let mut rows = json_rows(df).await?;
        let truncated = rows.as_array_mut().is_some_and(|r| {
            r.len() > state.limits.rows && {
                r.truncate(state.limits.rows);
                true
            }
        });
        Ok(serde_json::json!({ "rows": rows, "truncated": truncated }))
    })
    .await
}

/// Every indicator: id, names (Chinese and English), unit, display format, definition, the
/// scopes where it exists, the model that computes it, and its target.
#[utoipa::path(get, path = "/v1/indicators/catalog", responses(
    (status = 200, description = "`{\"indicators\": [{id, name_zh, short_zh, name_en, unit, format, definition_zh, definition_en, family, scopes, model, target}]}`"),
    (status = 401, body = ErrorBody)))]
pub(crate) async fn catalog(
    State(state): State<AppState>,
    Extension(Caller(caller)): Extension<Caller>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    cached_json(&state, &caller, uri.to_string(), &headers, async {
        let targets = plsw_transform::targets().map_err(ApiError::internal)?;
        let docs = plsw_transform::indicator_docs().map_err(ApiError::internal)?;
        let models = plsw_transform::model::load().map_err(ApiError::internal)?;
        let mut out = Vec::new();
        for d in docs {
            let id = &d.indicator;
            let model = models.iter().find(|m| m.meta.indicators.contains(id));
            let target = targets
                .iter()
                .filter(|t| &t.0 == id)
                .map(|t| serde_json::json!({ "comparison": t.1, "value": t.2, "from_year": t.3 }))
                .collect::<Vec<_>>();
            out.push(serde_json::json!({
                "id": id,
                "name_zh": d.name_zh,
                "short_zh": d.short_zh,
                "name_en": d.name_en,
                "unit": d.unit,
                "format": d.format,
                "definition_zh": d.definition_zh,
                "definition_en": d.definition_en,
                "family": id.split('.').next().unwrap_or_default(),
                "scopes": plsw_transform::scopes_of(id),
                "model": model.map(|m| m.path),
                "targets": target,
            }));
        }
        Ok(serde_json::json!({ "indicators": out }))
    })
    .await
}

/// Per feed: committed loads, the last load, rows accepted and quarantined, and the pull's
/// watermark. Admins and province-scoped analysts only (it shows the loads).
#[utoipa::path(get, path = "/v1/freshness", responses(
    (status = 200, description = "`{\"feeds\": [{feed, loads, last_load_seq, last_loaded_at, rows_accepted, rows_quarantined, watermark}]}`"),
    (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(crate) async fn freshness(
    State(state): State<AppState>,
    Extension(Caller(caller)): Extension<Caller>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if !scope::sees_bookkeeping(&caller) {
        return Err(ApiError::forbidden(
            "freshness shows the loads: admins and province-scoped analysts only",
        ));
    }
    cached_json(&state, &caller, uri.to_string(), &headers, async {
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
        Ok(serde_json::json!({ "feeds": json_rows(df).await? }))
    })
    .await
}

/// Every published assessment: quarter, revision, when, the SHA-256 of its JSON.
#[utoipa::path(get, path = "/v1/assessments", responses(
    (status = 200, description = "`{\"assessments\": [{quarter, revision, published_at, published_by, result_sha256}]}`, by quarter and revision"),
    (status = 401, body = ErrorBody)))]
pub(crate) async fn assessments(
    State(state): State<AppState>,
    Extension(Caller(caller)): Extension<Caller>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    cached_json(&state, &caller, uri.to_string(), &headers, async {
        let all = plsw_assess::publish::all(&state.wh)
            .await
            .map_err(ApiError::internal)?;
        let list: Vec<serde_json::Value> = all
            .iter()
            .map(|p| {
                serde_json::json!({
                    "quarter": p.quarter,
                    "revision": p.revision,
                    "published_at": p.published_at_text(),
                    "published_by": p.published_by,
                    "result_sha256": p.result_sha256,
                })
            })
            .collect();
        Ok(serde_json::json!({ "assessments": list }))
    })
    .await
}

/// `?revision=` and `?live=` of `/v1/assessments/{quarter}`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub(crate) struct RevisionQuery {
    /// A revision of the quarter's publication; the latest when left out.
    revision: Option<i64>,
    /// `true`: computed now with the default method (not a publication; cached until the
    /// warehouse commits).
    live: Option<bool>,
}

/// A published assessment: `{quarter}` is `2025Q3` (JSON, exactly as published for a
/// province-scoped caller), `2025Q3.xlsx` (workbook) or `2025Q3.html` (printable A4). A scoped
/// caller gets its own cities and counties only, with the province's ranks.
#[utoipa::path(get, path = "/v1/assessments/{quarter}", params(
    ("quarter" = String, Path, description = "2025Q3, 2025Q3.json, 2025Q3.xlsx or 2025Q3.html"),
    RevisionQuery),
    responses(
    (status = 200, description = "The assessment; headers X-Revision, X-Published-At, X-Result-Sha256 (a publication) or X-Live: true"),
    (status = 400, body = ErrorBody, description = "`bad_parameter`"),
    (status = 401, body = ErrorBody),
    (status = 404, body = ErrorBody, description = "`not_published`")))]
pub(crate) async fn assessment(
    State(state): State<AppState>,
    Extension(Caller(caller)): Extension<Caller>,
    axum::extract::Path(quarter): axum::extract::Path<String>,
    q: Result<Query<RevisionQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::bad_request("bad_parameter", e.body_text()))?;
    let (quarter, kind) = match quarter.rsplit_once('.') {
        None => (quarter.as_str(), "json"),
        Some((qr, ext @ ("json" | "xlsx" | "html"))) => (qr, ext),
        Some(_) => {
            return Err(ApiError::bad_request(
                "bad_parameter",
                "quarter: 2025Q3, with .json, .xlsx or .html",
            ))
        }
    };
    if plsw_assess::parse_quarter(quarter).is_err() {
        return Err(ApiError::bad_request(
            "bad_parameter",
            "quarter: a quarter such as 2025Q3",
        ));
    }
    if q.live == Some(true) {
        return live_assessment(&state, &caller, quarter, kind).await;
    }
    let p = match plsw_assess::publish::published(&state.wh, quarter, q.revision).await {
        Ok(p) => p,
        Err(plsw_assess::Error::NotPublished(m)) => {
            return Err(ApiError::new(StatusCode::NOT_FOUND, "not_published", m))
        }
        Err(e) => return Err(ApiError::internal(e)),
    };
    let places = audience_catalog(&state, &caller).await?.places.clone();
    let mut meta = HeaderMap::new();
    let value = |v: String| axum::http::HeaderValue::from_str(&v).map_err(ApiError::internal);
    meta.insert("x-revision", value(p.revision.to_string())?);
    meta.insert("x-published-at", value(p.published_at_text())?);
    // The digest is of the publication's JSON: sent only with that JSON.
    if places.is_none() && kind == "json" {
        meta.insert("x-result-sha256", value(p.result_sha256.clone())?);
    }
    let assessment = match &places {
        // The province: the publication itself.
        None if kind == "json" => {
            return Ok((
                [(
                    header::CONTENT_TYPE.as_str(),
                    "application/json".to_string(),
                )],
                meta,
                p.result_json,
            )
                .into_response())
        }
        None => p.assessment().map_err(ApiError::internal)?,
        Some(pl) => {
            let cities: Vec<String> = pl.cities.iter().cloned().collect();
            let counties: Vec<String> = pl.counties.iter().cloned().collect();
            p.assessment()
                .map_err(ApiError::internal)?
                .restricted(&cities, &counties)
        }
    };
    let (ctype, body): (&str, Vec<u8>) = match kind {
        "xlsx" => (
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            plsw_assess::report::xlsx(&assessment).map_err(ApiError::internal)?,
        ),
        "html" => (
            "text/html; charset=utf-8",
            plsw_assess::report::html(&assessment).into_bytes(),
        ),
        _ => ("application/json", assessment.to_json().into_bytes()),
    };
    let disposition = format!(
        "inline; filename=\"assessment-{quarter}-r{}.{kind}\"",
        p.revision
    );
    Ok((
        [
            (header::CONTENT_TYPE.as_str(), ctype.to_string()),
            (header::CONTENT_DISPOSITION.as_str(), disposition),
        ],
        meta,
        body,
    )
        .into_response())
}

/// An assessment computed now (`?live=true`), for the caller's places.
async fn live_assessment(
    state: &AppState,
    caller: &TokenRecord,
    quarter: &str,
    kind: &str,
) -> Result<Response, ApiError> {
    let places = audience_catalog(state, caller).await?.places.clone();
    let compute = async {
        let method = plsw_assess::Method::builtin().map_err(ApiError::internal)?;
        let a = plsw_assess::compute(&state.wh, quarter, &method)
            .await
            .map_err(|e| match e {
                plsw_assess::Error::NoIndicators { .. } => {
                    ApiError::new(StatusCode::NOT_FOUND, "no_indicators", e.to_string())
                }
                other => ApiError::internal(other),
            })?;
        Ok::<_, ApiError>(match &places {
            None => a,
            Some(pl) => a.restricted(
                &pl.cities.iter().cloned().collect::<Vec<_>>(),
                &pl.counties.iter().cloned().collect::<Vec<_>>(),
            ),
        })
    };
    let live = ("x-live", "true");
    match kind {
        "json" => {
            let key = format!("/v1/assessments/{quarter}?live=true");
            let mut resp = cached_json(state, caller, key, &HeaderMap::new(), async {
                serde_json::to_value(compute.await?).map_err(ApiError::internal)
            })
            .await?;
            resp.headers_mut()
                .insert("x-live", axum::http::HeaderValue::from_static("true"));
            Ok(resp)
        }
        "xlsx" => Ok((
            [
                (
                    header::CONTENT_TYPE.as_str(),
                    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                ),
                live,
            ],
            plsw_assess::report::xlsx(&compute.await?).map_err(ApiError::internal)?,
        )
            .into_response()),
        _ => Ok((
            [
                (header::CONTENT_TYPE.as_str(), "text/html; charset=utf-8"),
                live,
            ],
            plsw_assess::report::html(&compute.await?),
        )
            .into_response()),
    }
}

/// Who the caller is and what the dashboard needs to start: the unit, role and scope, the
/// places in scope with their names, the quarters that have indicators, and the quarters with a
/// published assessment.
#[utoipa::path(get, path = "/v1/me", responses(
    (status = 200, description = "`{unit_id, unit_name, role, scope, home: {scope, code, name}, places: {cities: [{code, name}], counties: [{code, name, city_code}]}, quarters, published}`"),
    (status = 401, body = ErrorBody)))]
pub(crate) async fn me(
    State(state): State<AppState>,
    Extension(Caller(caller)): Extension<Caller>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    // Same audience, other unit or role: the unit and role are part of the key.
    let key = format!("/v1/me#{}#{}", caller.unit_id, caller.role.as_str());
    cached_json(&state, &caller, key, &headers, async {
        let catalog = audience_catalog(&state, &caller).await?;
        let places = catalog.places.clone();
        let ctx = datafusion::prelude::SessionContext::new_with_state(catalog.state.clone());
        let rows = |sql: &'static str| {
            let ctx = ctx.clone();
            async move {
                let df = ctx.sql(sql).await.map_err(ApiError::internal)?;
                json_rows(df).await
            }
        };
        let cities = rows("SELECT code, name FROM cities ORDER BY code").await?;
        let counties =
            rows("SELECT code, name, city_code, kind FROM counties ORDER BY code").await?;
        let quarters = rows("SELECT DISTINCT quarter FROM indicators ORDER BY quarter").await?;
        let in_scope = |code: &serde_json::Value, set: Option<&std::collections::BTreeSet<String>>| {
            set.is_none_or(|s| code.as_str().is_some_and(|c| s.contains(c)))
        };
        let cities: Vec<&serde_json::Value> = cities
            .as_array()
            .into_iter()
            .flatten()
            .filter(|c| in_scope(&c["code"], places.as_ref().map(|p| &p.cities)))
            .collect();
        let counties: Vec<&serde_json::Value> = counties
            .as_array()
            .into_iter()
            .flatten()
            .filter(|c| in_scope(&c["code"], places.as_ref().map(|p| &p.counties)))
            .collect();
        let home = match (&places, cities.first(), counties.first()) {
            (None, _, _) => serde_json::json!({ "scope": "province", "code": plsw_store::PROVINCE_CODE, "name": "河南省" }),
            (Some(_), Some(c), _) => serde_json::json!({ "scope": "city", "code": c["code"], "name": c["name"] }),
            (Some(_), None, Some(c)) => serde_json::json!({ "scope": "county", "code": c["code"], "name": c["name"] }),
            (Some(_), None, None) => serde_json::Value::Null,
        };
        let published: std::collections::BTreeSet<String> = plsw_assess::publish::all(&state.wh)
            .await
            .map_err(ApiError::internal)?
            .into_iter()
            .map(|p| p.quarter)
            .collect();
        let unit_name = crate::tokens::member_units()
            .into_iter()
            .find(|u| u.0 == caller.unit_id)
            .map(|u| u.1);
        Ok(serde_json::json!({
            "unit_id": caller.unit_id,
            "unit_name": unit_name,
            "role": caller.role.as_str(),
            "scope": match &caller.scope {
                crate::tokens::Scope::Province => serde_json::json!("province"),
                crate::tokens::Scope::Codes(c) => serde_json::json!(c),
            },
            "home": home,
            "places": { "cities": cities, "counties": counties },
            "quarters": quarters
                .as_array()
                .into_iter()
                .flatten()
                .map(|q| q["quarter"].clone())
                .collect::<Vec<_>>(),
            "published": published,
        }))
    })
    .await
}

/// A table to turn into a workbook.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub(crate) struct ExportRequest {
    /// The sheet's title (at most 31 characters are kept).
    title: String,
    columns: Vec<String>,
    /// Cells: text, numbers or null.
    rows: Vec<Vec<serde_json::Value>>,
}

/// A workbook of the table the caller sends (what a dashboard shows): one sheet, a frozen
/// header row, numbers as numbers. It reads nothing from the warehouse.
#[utoipa::path(post, path = "/v1/export.xlsx", request_body = ExportRequest, responses(
    (status = 200, description = "The workbook", content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 413, body = ErrorBody)))]
pub(crate) async fn export_xlsx(
    body: Result<Json<ExportRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    use rust_xlsxwriter::{Format, Workbook};
    let Json(req) = body.map_err(json_rejection)?;
    if req.columns.is_empty() || req.columns.len() > 500 || req.rows.len() > 100_000 {
        return Err(ApiError::bad_request(
            "bad_request",
            "1 to 500 columns and at most 100,000 rows",
        ));
    }
    let err = |e: rust_xlsxwriter::XlsxError| ApiError::internal(e);
    let mut wb = Workbook::new();
    let ws = wb.add_worksheet();
    let title: String = req
        .title
        .chars()
        .filter(|c| !"[]:*?/\\".contains(*c))
        .take(31)
        .collect();
    if !title.trim().is_empty() {
        ws.set_name(title.trim()).map_err(err)?;
    }
    let bold = Format::new().set_bold();
    for (c, h) in req.columns.iter().enumerate() {
        ws.write_string_with_format(0, c as u16, h, &bold)
            .map_err(err)?;
    }
    for (r, row) in req.rows.iter().enumerate() {
        for (c, v) in row.iter().enumerate().take(req.columns.len()) {
            let (r, c) = (r as u32 + 1, c as u16);
            match v {
                serde_json::Value::Number(n) => {
                    ws.write_number(r, c, n.as_f64().unwrap_or_default())
                        .map_err(err)?;
                }
                serde_json::Value::String(t) => {
                    ws.write_string(r, c, t).map_err(err)?;
                }
                serde_json::Value::Bool(b) => {
                    ws.write_boolean(r, c, *b).map_err(err)?;
                }
                _ => {}
            }
        }
    }
    ws.set_freeze_panes(1, 0).map_err(err)?;
    let bytes = wb.save_to_buffer().map_err(err)?;
    Ok((
        [
            (
                header::CONTENT_TYPE.as_str(),
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            ),
            (
                header::CONTENT_DISPOSITION.as_str(),
                "attachment; filename=\"plsw-export.xlsx\"",
            ),
        ],
        bytes,
    )
        .into_response())
}
