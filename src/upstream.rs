//! A stand-in for the online platform's work-order API (feeds.md F2), for the demo and the tests:
//! it serves work-order versions (the generator's `work_orders/*.jsonl`, or items given in code)
//! exactly in the API's shape, and misbehaves on request the way the real server may.
//!
//! `GET /api/v1/work-orders?updated_after=&limit=[&cursor=]` answers the items with
//! `updated_at >= updated_after`, in ascending `(updated_at, order_id)`, `limit` at a time
//! (at most [`MAX_LIMIT`]), with an opaque `next_cursor` until the last page. An item whose
//! `updated_at` is missing or unreadable sorts first and is served at the start of every pull
//! (the way a broken record upstream keeps coming back).
//!
//! Faults are scheduled by request number (retries count), so a test gets the same faults on
//! every run: see [`Fault`] and [`FaultPlan`].

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures::StreamExt as _;
use serde::Deserialize;
use serde_json::Value as Json;

/// The largest page served, whatever `limit` asks for.
pub const MAX_LIMIT: usize = 1000;
/// The page size when `limit` is not given.
pub const DEFAULT_LIMIT: usize = 100;

/// One version as the upstream holds it: its sort key and its JSON text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// UTC microseconds; `i64::MIN` when missing or unreadable.
    pub updated_at: i64,
    pub order_id: String,
    pub json: String,
}

/// The fields of an item that order it; a field of another type reads as missing.
#[derive(Deserialize)]
struct Key {
    #[serde(default, deserialize_with = "lenient_str")]
    updated_at: Option<String>,
    #[serde(default, deserialize_with = "lenient_str")]
    order_id: Option<String>,
}

fn lenient_str<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Str(String),
        Other(serde::de::IgnoredAny),
    }
    Ok(match Either::deserialize(d)? {
        Either::Str(s) => Some(s),
        Either::Other(_) => None,
    })
}

fn parse_instant(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(s.trim())
        .ok()
        .map(|t| t.timestamp_micros())
}

impl Item {
    /// An item from its JSON value.
    pub fn from_json(v: &Json) -> Item {
        let updated_at = v
            .get("updated_at")
            .and_then(Json::as_str)
            .and_then(parse_instant)
            .unwrap_or(i64::MIN);
        let order_id = v
            .get("order_id")
            .and_then(Json::as_str)
            .unwrap_or_default()
            .to_string();
        Item {
            updated_at,
            order_id,
            json: v.to_string(),
        }
    }

    fn key(&self) -> (i64, &str) {
        (self.updated_at, &self.order_id)
    }
}

/// One way the server misbehaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// `429 Too Many Requests` with `Retry-After: secs`.
    TooMany { retry_after: u64 },
    /// This status (500, 503…) with a JSON error body.
    Status(u16),
    /// A `200` whose body stops half-way: the connection is dropped mid-body.
    DropMidBody,
    /// Waits this long before answering (longer than the client's read timeout).
    Stall(Duration),
    /// The page, with `next_cursor` pointing at this same page again: it is served twice.
    RepeatPage,
    /// The next page starts this many items back: versions repeated across pages.
    Overlap(usize),
    /// Before the page, the last item served so far is changed upstream (its `green_channel`
    /// flips) and sent again, first on this page: a version re-sent with changed content.
    ResendChanged,
}

/// When faults happen: request `n` (1-based, retries included) gets the first rule whose
/// `every` divides `n`, while that rule has `times` left.
#[derive(Debug, Clone, Default)]
pub struct FaultPlan {
    rules: Vec<Rule>,
}

#[derive(Debug, Clone)]
struct Rule {
    every: u64,
    /// Only requests after this one.
    after: u64,
    times: Option<u64>,
    fault: Fault,
}

impl FaultPlan {
    pub fn none() -> FaultPlan {
        FaultPlan::default()
    }

    /// Adds a fault on every `every`-th request.
    pub fn every(mut self, every: u64, fault: Fault) -> FaultPlan {
        assert!(every > 0);
        self.rules.push(Rule {
            every,
            after: 0,
            times: None,
            fault,
        });
        self
    }

    /// Adds a fault on every request after the first `n`: an upstream that goes down.
    pub fn after(mut self, n: u64, fault: Fault) -> FaultPlan {
        self.rules.push(Rule {
            every: 1,
            after: n,
            times: None,
            fault,
        });
        self
    }

    /// Adds a fault on every `every`-th request, at most `times` times.
    pub fn times(mut self, every: u64, times: u64, fault: Fault) -> FaultPlan {
        assert!(every > 0);
        self.rules.push(Rule {
            every,
            after: 0,
            times: Some(times),
            fault,
        });
        self
    }

    /// Parses `kind:every[,kind:every…]`, kinds `429`, `500`, `503` (any 5xx), `drop`, `stall`
    /// (3 s), `repeat`, `overlap` (3 items) and `resend`. An empty text is no fault.
    pub fn parse(text: &str) -> anyhow::Result<FaultPlan> {
        let mut plan = FaultPlan::none();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (kind, every) = part
                .split_once(':')
                .with_context(|| format!("fault {part:?}: write kind:every, e.g. 503:7"))?;
            let every: u64 = every
                .parse()
                .ok()
                .filter(|&e| e > 0)
                .with_context(|| format!("fault {part:?}: every must be a positive number"))?;
            let fault = match kind {
                "429" => Fault::TooMany { retry_after: 1 },
                "drop" => Fault::DropMidBody,
                "stall" => Fault::Stall(Duration::from_secs(3)),
                "repeat" => Fault::RepeatPage,
                "overlap" => Fault::Overlap(3),
                "resend" => Fault::ResendChanged,
                s => match s.parse::<u16>() {
                    Ok(code) if (500..600).contains(&code) => Fault::Status(code),
                    _ => anyhow::bail!(
                        "fault {part:?}: kinds are 429, 5xx, drop, stall, repeat, overlap, resend"
                    ),
                },
            };
            plan = plan.every(every, fault);
        }
        Ok(plan)
    }

    fn take(&mut self, n: u64) -> Option<Fault> {
        let rule = self
            .rules
            .iter_mut()
            .find(|r| n > r.after && n.is_multiple_of(r.every) && r.times != Some(0))?;
        if let Some(t) = rule.times.as_mut() {
            *t -= 1;
        }
        Some(rule.fault.clone())
    }
}

/// What the server did with one request, for tests to check the client's behaviour.
#[derive(Debug, Clone)]
pub struct Served {
    pub n: u64,
    pub at: Instant,
    pub status: u16,
    pub fault: Option<Fault>,
    pub cursor: Option<String>,
    pub items: usize,
}

struct Inner {
    /// Sorted by `(updated_at, order_id)`; one entry per version.
    items: Vec<Item>,
    faults: FaultPlan,
    /// The key of the last item served, for [`Fault::ResendChanged`].
    last_served: Option<(i64, String)>,
    log: Vec<Served>,
}

/// The work-order API stand-in. Cheap to clone; clones share the data.
#[derive(Clone)]
pub struct Upstream {
    inner: Arc<Mutex<Inner>>,
    token: Option<Arc<str>>,
    requests: Arc<AtomicU64>,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("items", &self.lock().items.len())
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl Upstream {
    /// Serves these items (later duplicates of a version replace earlier ones).
    pub fn new(mut items: Vec<Item>) -> Upstream {
        // Stable: of equal keys, the later item ends last, and dedup keeps it.
        items.sort_by(|a, b| a.key().cmp(&b.key()));
        let mut unique: Vec<Item> = Vec::with_capacity(items.len());
        for it in items {
            match unique.last_mut() {
                Some(last) if last.key() == it.key() => *last = it,
                _ => unique.push(it),
            }
        }
        let up = Upstream {
            inner: Arc::new(Mutex::new(Inner {
                items: Vec::new(),
                faults: FaultPlan::none(),
                last_served: None,
                log: Vec::new(),
            })),
            token: None,
            requests: Arc::new(AtomicU64::new(0)),
        };
        up.lock().items = unique;
        up
    }

    /// Serves every `*.jsonl` file of `dir` (one item per line).
    pub fn from_dir(dir: &Path) -> anyhow::Result<Upstream> {
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
            .collect();
        files.sort();
        let mut items = Vec::new();
        for f in files {
            let text =
                std::fs::read_to_string(&f).with_context(|| format!("reading {}", f.display()))?;
            for (i, line) in text
                .lines()
                .enumerate()
                .filter(|(_, l)| !l.trim().is_empty())
            {
                // Only the key is read; the line is served as it is.
                let k: Key = serde_json::from_str(line)
                    .ok()
                    .filter(|_| line.trim_start().starts_with('{'))
                    .with_context(|| format!("{}:{}: not a JSON object", f.display(), i + 1))?;
                items.push(Item {
                    updated_at: k
                        .updated_at
                        .as_deref()
                        .and_then(parse_instant)
                        .unwrap_or(i64::MIN),
                    order_id: k.order_id.unwrap_or_default(),
                    json: line.trim().to_string(),
                });
            }
        }
        Ok(Upstream::new(items))
    }

    /// Requires `Authorization: Bearer <token>`.
    pub fn with_token(mut self, token: &str) -> Upstream {
        self.token = Some(token.into());
        self
    }

    pub fn set_faults(&self, plan: FaultPlan) {
        self.lock().faults = plan;
    }

    /// Adds versions, or replaces the content of versions it holds (same order and instant).
    pub fn upsert(&self, items: Vec<Item>) {
        let mut inner = self.lock();
        for it in items {
            match inner.items.binary_search_by(|x| x.key().cmp(&it.key())) {
                Ok(i) => inner.items[i] = it,
                Err(i) => inner.items.insert(i, it),
            }
        }
    }

    /// Every version it holds now, in order.
    pub fn items(&self) -> Vec<Item> {
        self.lock().items.clone()
    }

    /// What it did with each request so far.
    pub fn log(&self) -> Vec<Served> {
        self.lock().log.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("upstream state")
    }

    /// The HTTP routes.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/api/v1/work-orders", get(work_orders))
            .route("/health", get(|| async { "ok" }))
            .with_state(self.clone())
    }

    /// Serves on `addr` until `shutdown` completes.
    pub async fn serve(
        &self,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        axum::serve(listener, self.router())
            .with_graceful_shutdown(shutdown)
            .await
            .context("serving the work-order API")
    }

    /// Serves on 127.0.0.1 (a free port) from a thread of its own, until the handle drops: for
    /// tests, which drive `plsw pull` as a separate process.
    pub fn spawn(&self) -> Running {
        let (tx, rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let up = self.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind 127.0.0.1");
                tx.send(listener.local_addr().expect("address"))
                    .expect("report address");
                let _ = up
                    .serve(listener, async {
                        let _ = stop_rx.await;
                    })
                    .await;
            });
        });
        let addr = rx.recv().expect("upstream started");
        Running {
            addr,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }
}

/// A running stand-in; dropping it stops the server.
#[derive(Debug)]
pub struct Running {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Running {
    /// The base URL to give `plsw pull work-orders --url`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[derive(Debug, Deserialize)]
struct Params {
    updated_after: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

/// The cursor before every item.
const START: &str = "start";

fn encode_cursor(key: (i64, &str)) -> String {
    format!("{}~{}", key.0, key.1)
}

fn decode_cursor(c: &str) -> Option<(i64, String)> {
    if c == START {
        return Some((i64::MIN, String::new()));
    }
    let (ts, id) = c.split_once('~')?;
    Some((ts.parse().ok()?, id.to_string()))
}

fn error(status: StatusCode, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::json!({ "error": message }).to_string(),
    )
        .into_response()
}

async fn work_orders(
    State(up): State<Upstream>,
    headers: HeaderMap,
    Query(p): Query<Params>,
) -> Response {
    let n = up.requests.fetch_add(1, Ordering::SeqCst) + 1;
    let fault = up.lock().faults.take(n);
    let (status, items, resp) = answer(&up, &headers, &p, fault.as_ref()).await;
    up.lock().log.push(Served {
        n,
        at: Instant::now(),
        status: status.as_u16(),
        fault,
        cursor: p.cursor.clone(),
        items,
    });
    resp
}

async fn answer(
    up: &Upstream,
    headers: &HeaderMap,
    p: &Params,
    fault: Option<&Fault>,
) -> (StatusCode, usize, Response) {
    if let Some(token) = &up.token {
        let expected = format!("Bearer {token}");
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if given != Some(expected.as_str()) {
            let s = StatusCode::UNAUTHORIZED;
            return (s, 0, error(s, "a valid bearer token is required"));
        }
    }
    match fault {
        Some(Fault::TooMany { retry_after }) => {
            let s = StatusCode::TOO_MANY_REQUESTS;
            let mut r = error(s, "too many requests");
            r.headers_mut().insert(
                header::RETRY_AFTER,
                retry_after.to_string().parse().unwrap(),
            );
            return (s, 0, r);
        }
        Some(Fault::Status(code)) => {
            let s = StatusCode::from_u16(*code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return (s, 0, error(s, "the server failed"));
        }
        Some(Fault::Stall(d)) => tokio::time::sleep(*d).await,
        _ => {}
    }
    let Some(after) = p
        .updated_after
        .as_deref()
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.timestamp_micros())
    else {
        let s = StatusCode::BAD_REQUEST;
        return (s, 0, error(s, "updated_after (RFC 3339) is required"));
    };
    let limit = match p.limit.as_deref().map(str::parse::<usize>) {
        None => DEFAULT_LIMIT,
        Some(Ok(l)) if l > 0 => l.min(MAX_LIMIT),
        Some(_) => {
            let s = StatusCode::BAD_REQUEST;
            return (s, 0, error(s, "limit must be a positive number"));
        }
    };
    let cursor = match p.cursor.as_deref().map(decode_cursor) {
        None => None,
        Some(Some(c)) => Some(c),
        Some(None) => {
            let s = StatusCode::BAD_REQUEST;
            return (s, 0, error(s, "unknown cursor"));
        }
    };

    let mut inner = up.lock();
    let mut page: Vec<String> = Vec::new();
    if fault == Some(&Fault::ResendChanged) {
        if let Some(key) = inner.last_served.clone() {
            if let Ok(i) = inner
                .items
                .binary_search_by(|x| x.key().cmp(&(key.0, key.1.as_str())))
            {
                let mut v: Json = serde_json::from_str(&inner.items[i].json).expect("stored JSON");
                let flipped = !v
                    .get("green_channel")
                    .and_then(Json::as_bool)
                    .unwrap_or(false);
                v["green_channel"] = Json::Bool(flipped);
                inner.items[i].json = v.to_string();
                page.push(inner.items[i].json.clone());
            }
        }
    }
    let start = match &cursor {
        None => 0,
        Some((ts, id)) => inner
            .items
            .partition_point(|x| x.key() <= (*ts, id.as_str())),
    };
    let wanted = |x: &Item| x.updated_at == i64::MIN || x.updated_at >= after;
    let mut chosen: Vec<usize> = Vec::with_capacity(limit);
    let mut more = false;
    for (i, x) in inner.items.iter().enumerate().skip(start) {
        if !wanted(x) {
            continue;
        }
        if chosen.len() == limit {
            more = true;
            break;
        }
        chosen.push(i);
    }
    page.extend(chosen.iter().map(|&i| inner.items[i].json.clone()));
    let next = if !more {
        None
    } else {
        match fault {
            Some(Fault::RepeatPage) => Some(p.cursor.clone().unwrap_or_else(|| START.into())),
            Some(Fault::Overlap(k)) if chosen.len() > *k => Some(encode_cursor(
                inner.items[chosen[chosen.len() - 1 - k]].key(),
            )),
            _ => chosen.last().map(|&i| encode_cursor(inner.items[i].key())),
        }
    };
    if let Some(&i) = chosen.last() {
        let it = &inner.items[i];
        inner.last_served = Some((it.updated_at, it.order_id.clone()));
    }
    drop(inner);

    let mut body = String::from("{\"items\":[");
    body.push_str(&page.join(","));
    body.push_str("],\"next_cursor\":");
    body.push_str(&match &next {
        Some(c) => Json::String(c.clone()).to_string(),
        None => "null".into(),
    });
    body.push('}');
    let n = page.len();
    if fault == Some(&Fault::DropMidBody) {
        let half = body.as_bytes()[..body.len() / 2].to_vec();
        // The headers and the first half go out; a moment later the connection is cut.
        let body = futures::stream::once(async move { Ok::<_, std::io::Error>(half) }).chain(
            futures::stream::once(async {
                tokio::time::sleep(Duration::from_millis(50)).await;
                Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "dropped mid-body",
                ))
            }),
        );
        let resp = Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from_stream(body))
            .expect("response");
        return (StatusCode::OK, n, resp);
    }
    (
        StatusCode::OK,
        n,
        ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_plans_parse_and_schedule() {
        let mut p = FaultPlan::parse("429:3, 503:2,drop:5").unwrap();
        let got: Vec<_> = (1..=6).map(|n| p.take(n)).collect();
        assert_eq!(
            got,
            vec![
                None,
                Some(Fault::Status(503)),
                Some(Fault::TooMany { retry_after: 1 }),
                Some(Fault::Status(503)),
                Some(Fault::DropMidBody),
                Some(Fault::TooMany { retry_after: 1 }),
            ]
        );
        assert!(FaultPlan::parse("").unwrap().take(1).is_none());
        assert!(FaultPlan::parse("404:2").is_err());
        assert!(FaultPlan::parse("503:0").is_err());
        assert!(FaultPlan::parse("503").is_err());
        let mut once = FaultPlan::none().times(1, 1, Fault::RepeatPage);
        assert_eq!(once.take(1), Some(Fault::RepeatPage));
        assert_eq!(once.take(2), None);
        let mut down = FaultPlan::none().after(2, Fault::Status(503));
        assert_eq!(down.take(2), None);
        assert_eq!(down.take(3), Some(Fault::Status(503)));
        assert_eq!(down.take(30), Some(Fault::Status(503)));
    }

    #[test]
    fn a_directory_of_json_lines_is_read_by_key() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("b.jsonl"),
            "{\"order_id\":\"W\\\"2\",\"updated_at\":\"2025-01-01T00:00:00Z\",\"x\":[1]}\n\n{\"order_id\":null,\"updated_at\":5}\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("a.jsonl"),
            "{\"order_id\":\"W1\",\"updated_at\":\"2025-01-01T08:00:00+08:00\"}\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not read").unwrap();
        let items = Upstream::from_dir(dir.path()).unwrap().items();
        let keys: Vec<_> = items
            .iter()
            .map(|i| (i.updated_at, i.order_id.as_str()))
            .collect();
        assert_eq!(
            keys,
            [
                (i64::MIN, ""),
                (1_735_689_600_000_000, "W\"2"),
                (1_735_689_600_000_000, "W1")
            ]
        );
        std::fs::write(dir.path().join("c.jsonl"), "[1]\n").unwrap();
        assert!(Upstream::from_dir(dir.path()).is_err());
    }

    #[test]
    fn cursors_round_trip() {
        assert_eq!(
            decode_cursor(&encode_cursor((5, "WO~1"))),
            Some((5, "WO~1".to_string()))
        );
        assert_eq!(decode_cursor(START), Some((i64::MIN, String::new())));
        assert_eq!(decode_cursor("garbage"), None);
    }

    #[test]
    fn items_sort_and_upsert_by_version() {
        let a = Item::from_json(
            &serde_json::json!({"order_id": "B", "updated_at": "2025-01-01T08:00:00+08:00"}),
        );
        let b = Item::from_json(
            &serde_json::json!({"order_id": "A", "updated_at": "2025-01-01T00:00:00Z"}),
        );
        let bad = Item::from_json(&serde_json::json!({"order_id": "C"}));
        assert_eq!(
            a.updated_at, b.updated_at,
            "+08:00 and Z forms of one instant"
        );
        let up = Upstream::new(vec![a.clone(), b.clone(), bad.clone()]);
        let ids: Vec<_> = up.items().into_iter().map(|i| i.order_id).collect();
        assert_eq!(ids, ["C", "A", "B"]);
        let mut b2 = b.clone();
        b2.json = "{\"changed\":true}".into();
        up.upsert(vec![b2.clone()]);
        assert_eq!(up.items().len(), 3);
        assert_eq!(up.items()[1], b2);
    }
}
