//! The query API for the member units of the joint conference (axum): bearer tokens with roles
//! and scopes (`../shared/spec/access.md`), one JSON error shape, read-only SQL with row scope
//! per caller ([`scope`]), indicators for the dashboards, the catalog, freshness, OpenAPI and
//! Prometheus metrics.
//!
//! Sessions and `GET` responses are cached per audience (callers with the same scope) and
//! dropped when any table of the warehouse commits ([`cache`]).

pub mod cache;
mod dashboard;
pub mod error;
pub mod metrics;
mod routes;
pub mod scope;
pub mod tokens;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::HeaderName;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use plsw_store::Warehouse;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

pub use error::ApiError;
pub use routes::ApiDoc;
use tokens::TokenRecord;

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

/// How often, at most, the warehouse's table versions are read to see whether it committed: a
/// commit is visible to the API after at most this long.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(1);

/// Valid tokens by SHA-256, and when they were read.
type TokenCache = Option<(Instant, HashMap<String, TokenRecord>)>;

/// What the routes share.
#[derive(Clone)]
pub struct AppState {
    wh: Arc<Warehouse>,
    limits: Limits,
    tokens: Arc<RwLock<TokenCache>>,
    token_refresh: Arc<tokio::sync::Mutex<()>>,
    cache: cache::SharedCache,
    metrics: Arc<metrics::Metrics>,
}

impl AppState {
    pub fn new(wh: Warehouse, limits: Limits) -> Self {
        AppState {
            wh: Arc::new(wh),
            limits,
            tokens: Arc::new(RwLock::new(None)),
            token_refresh: Arc::default(),
            cache: Arc::new(cache::Cache::new(DEFAULT_REFRESH)),
            metrics: Arc::default(),
        }
    }

    /// Reads the warehouse's versions at most once per `refresh` (0: on every request).
    pub fn with_refresh(mut self, refresh: Duration) -> Self {
        self.cache = Arc::new(cache::Cache::new(refresh));
        self
    }

    /// The token with this SHA-256 from the cache, if the cache is fresh (or, with `stale`,
    /// if there is one at all).
    fn cached_token(&self, sha256: &str, stale: bool) -> Option<Option<TokenRecord>> {
        let cache = self.tokens.read().expect("token cache");
        let (at, map) = cache.as_ref()?;
        (stale || at.elapsed() < TOKEN_TTL).then(|| map.get(sha256).cloned())
    }

    /// The token with this SHA-256, if valid (not revoked). When the cache expires one request
    /// reads the tokens table; the others meanwhile use the cache they have (no stampede, no
    /// queue), so a revocation takes effect within the TTL plus one read.
    async fn token(&self, sha256: &str) -> Result<Option<TokenRecord>, ApiError> {
        if let Some(found) = self.cached_token(sha256, false) {
            return Ok(found);
        }
        let _one = match self.token_refresh.try_lock() {
            Ok(guard) => guard,
            Err(_) => match self.cached_token(sha256, true) {
                Some(found) => return Ok(found),
                None => self.token_refresh.lock().await,
            },
        };
        if let Some(found) = self.cached_token(sha256, false) {
            return Ok(found);
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

/// Every route: (method, path). `/v1/openapi.json` documents exactly these (a test checks).
pub const ROUTES: &[(&str, &str)] = &[
    ("get", "/health"),
    ("get", "/metrics"),
    ("get", "/v1/openapi.json"),
    ("get", "/v1/me"),
    ("get", "/v1/tables"),
    ("post", "/v1/sql"),
    ("get", "/v1/indicators"),
    ("get", "/v1/indicators/catalog"),
    ("get", "/v1/freshness"),
    ("get", "/v1/assessments"),
    ("get", "/v1/assessments/{quarter}"),
    ("post", "/v1/export.xlsx"),
];

/// The application: `/health` is open, every other route needs a valid bearer token.
pub fn app(state: AppState) -> Router {
    let body_limit = state.limits.body_bytes;
    let x_request_id = HeaderName::from_static("x-request-id");
    let protected = Router::new()
        .route("/metrics", get(routes::metrics))
        .route("/v1/openapi.json", get(routes::openapi))
        .route("/v1/me", get(routes::me))
        .route("/v1/export.xlsx", post(routes::export_xlsx))
        .route("/v1/tables", get(routes::list_tables))
        .route("/v1/sql", post(routes::sql))
        .route("/v1/indicators", get(routes::indicators))
        .route("/v1/indicators/catalog", get(routes::catalog))
        .route("/v1/freshness", get(routes::freshness))
        .route("/v1/assessments", get(routes::assessments))
        .route("/v1/assessments/{quarter}", get(routes::assessment))
        .route_layer(middleware::from_fn_with_state(state.clone(), authenticate));
    Router::new()
        .route("/health", get(routes::health))
        // The dashboard's files: public, they hold no data (every figure comes from the API
        // with the signed-in token).
        .route("/", get(dashboard::index))
        .route("/assets/{file}", get(dashboard::asset))
        .merge(protected)
        .fallback(|| async { ApiError::not_found("no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                axum::http::StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this route does not take that method",
            )
        })
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn_with_state(state.clone(), measure))
        // Outermost first: an id for every request (or the caller's own), a span carrying it,
        // and the id echoed in the response.
        .layer(PropagateRequestIdLayer::new(x_request_id.clone()))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &Request| {
                let id = req
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
            }),
        )
        .layer(SetRequestIdLayer::new(x_request_id, MakeRequestUuid))
        .with_state(state)
}

/// Counts the request and its latency under its route's pattern.
async fn measure(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = req.method().to_string();
    let t0 = Instant::now();
    let res = next.run(req).await;
    state
        .metrics
        .request(&route, &method, res.status().as_u16(), t0.elapsed());
    res
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
    tracing::debug!(token_id = %record.token_id, unit = %record.unit_id, "caller");
    req.extensions_mut().insert(Caller(record));
    Ok(next.run(req).await)
}

/// `/health` needs no token.
pub(crate) fn health_body() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}
