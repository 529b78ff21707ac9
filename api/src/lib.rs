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

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
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
    let bookkeeping = t.kind == TableKind::System;
    !bookkeeping
        || caller.role == Role::Admin
        || (caller.role == Role::Analyst && caller.scope.is_province())
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

async fn sql(
    State(state): State<AppState>,
    Extension(Caller(caller)): Extension<Caller>,
    body: Result<Json<SqlRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
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
    let divisions = plsw_store::Divisions::load(&state.wh)
        .await
        .map_err(ApiError::internal)?;
    let places = scope::places(&caller, &divisions);
    let access = |name: &str| scope::access(&caller, places.as_ref(), name);
    let ctx = plsw_query::session_with(&state.wh, &access, Some(state.limits.memory_bytes))
        .await
        .map_err(ApiError::internal)?;
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
