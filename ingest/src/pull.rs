//! Pulling F2, the online platform's work orders, from its paginated HTTP API, incrementally and
//! exactly once.
//!
//! A pull pages through `GET {base}/api/v1/work-orders?updated_after=W&limit=N[&cursor=C]` from
//! the warehouse's watermark `W` (inclusive), applies the item rules of [`crate::work_orders`],
//! and commits in groups. Each group is one load: its rows, its quarantined items and its
//! `loads` row, which carries the new watermark. The `loads` row is the commit marker that makes
//! the rows visible (as for files), so the watermark and the data under it become visible in the
//! same Delta commit and can never disagree. A pull killed at any instant leaves the watermark
//! at the last committed group; the rerun fetches again from there.
//!
//! Exactly once: a version `(order_id, updated_at)` is written when it is new, or when its
//! content differs from the stored one (the later content replaces it in
//! `work_order_versions_current`). A version received again with the same content is not written
//! again, so pulling twice changes nothing. The same bad item is quarantined once.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::{AsArray, RecordBatch, StringArray};
use datafusion::arrow::datatypes::Int64Type;
use datafusion::catalog::MemTable;
use datafusion::prelude::SessionContext;
use plsw_schemas::tables::{QUARANTINE, WORK_ORDER_VERSIONS};
use plsw_store::{Divisions, LoadBook, LoadRecord, Warehouse};
use reqwest::header::{HeaderValue, AUTHORIZATION, RETRY_AFTER};
use reqwest::StatusCode;
use serde_json::Value as Json;
use sha2::{Digest, Sha256};
use tracing::{info, warn};
use url::Url;

use crate::batch::{Lineage, QuarantineBatcher, RowBatcher};
use crate::error::{Error, Result};
use crate::feeds::{Reject, Row, Value};
use crate::load::{crash_point, now_micros, progress_bar};
use crate::work_orders::{convert_item, rfc3339_micros};

/// The feed code of work orders in `loads` and `quarantine`.
pub const FEED: &str = "work_orders";

/// The API path under the base URL.
pub const API_PATH: &str = "api/v1/work-orders";

/// How often one cursor may come back before the pull decides the server loops. A page served
/// twice is normal for this server; the same page forever is not.
const MAX_SAME_CURSOR: u32 = 3;

/// How to retry a request.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Retries of one request before the pull fails (so `max_retries + 1` attempts).
    pub max_retries: u32,
    /// The first back-off; it doubles with each retry, with jitter.
    pub base: Duration,
    /// The longest back-off.
    pub max_backoff: Duration,
    /// The longest `Retry-After` honoured; a longer one is cut to this.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 8,
            base: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(300),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `attempt` (0-based): exponential, capped, with "equal
    /// jitter" (half fixed, half random) so that many pullers do not retry in step.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .base
            .saturating_mul(1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX))
            .min(self.max_backoff);
        let half = exp / 2;
        let jitter = half.mul_f64(random_unit());
        half + jitter
    }
}

/// A uniform number in [0, 1) from the standard library's per-process random keys.
fn random_unit() -> f64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(now_micros() as u64);
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// What to pull from where.
#[derive(Clone)]
pub struct PullOptions {
    /// The platform's base URL; the API is at `{base}/api/v1/work-orders`.
    pub base_url: Url,
    /// Bearer token. Never logged or shown.
    pub token: Option<String>,
    /// Items per page asked for (`limit`).
    pub page_size: u32,
    /// Start here instead of at the warehouse's watermark (UTC microseconds), e.g. to re-fetch.
    pub since: Option<i64>,
    /// Commit after about this many distinct items (at a page boundary).
    pub commit_every: usize,
    pub retry: RetryPolicy,
    pub connect_timeout: Duration,
    /// The longest wait for the next bytes of a response.
    pub read_timeout: Duration,
    pub progress: bool,
}

impl PullOptions {
    pub fn new(base_url: Url) -> Self {
        PullOptions {
            base_url,
            token: None,
            page_size: 1000,
            since: None,
            commit_every: 100_000,
            retry: RetryPolicy::default(),
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(60),
            progress: false,
        }
    }
}

impl std::fmt::Debug for PullOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PullOptions")
            .field("base_url", &self.base_url.as_str())
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("page_size", &self.page_size)
            .field("since", &self.since)
            .field("commit_every", &self.commit_every)
            .field("retry", &self.retry)
            .field("connect_timeout", &self.connect_timeout)
            .field("read_timeout", &self.read_timeout)
            .finish()
    }
}

/// What a pull did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PullReport {
    /// The base URL pulled from.
    pub source: String,
    /// The watermark the pull started from (UTC microseconds); `None`: from the beginning.
    pub from: Option<i64>,
    /// The watermark after the pull.
    pub watermark: Option<i64>,
    /// HTTP requests made, pages received and requests retried.
    pub requests: u64,
    pub pages: u64,
    pub retries: u64,
    /// Distinct items received; `accepted + quarantined = read`.
    pub read: i64,
    pub accepted: i64,
    pub quarantined: i64,
    /// Receipts of an item already received in this pull.
    pub repeated: i64,
    /// Versions written: new ones, and known ones whose content changed.
    pub stored: i64,
    /// Bad items written to `quarantine` (an item quarantined before is not written again).
    pub quarantine_rows: i64,
    /// `load_seq` of each load (commit group) of the pull; empty when nothing was new.
    pub loads: Vec<i64>,
}

/// Pulls every version updated since the watermark, committing as it goes. When retries run
/// out the pull fails, and the watermark stays at the last committed group.
pub async fn pull_work_orders(wh: &Warehouse, opts: &PullOptions) -> Result<PullReport> {
    if opts.page_size == 0 || opts.commit_every == 0 {
        return Err(Error::Usage(
            "page size and commit size must be positive".into(),
        ));
    }
    let divisions = Divisions::load(wh).await?;
    let mut book = wh.load_book().await?;
    let mut api = Api::new(opts)?;
    // Credentials in the URL stay out of `loads`, `quarantine` and the logs.
    let mut shown = opts.base_url.clone();
    let _ = shown.set_password(None);
    let _ = shown.set_username("");
    let source = shown.as_str().trim_end_matches('/').to_string();
    let committed = book.watermark(FEED);
    let from = opts.since.or(committed);
    let updated_after = rfc3339_utc(from.unwrap_or(0));
    let mut report = PullReport {
        source: source.clone(),
        from,
        watermark: committed,
        ..PullReport::default()
    };
    info!(source = %source, updated_after = %updated_after, "pulling work orders");

    let bar = progress_bar(
        opts.progress,
        "{spinner} work orders: {pos} items ({per_sec})",
    );
    let mut seen: HashSet<u128> = HashSet::new();
    let mut group = Group::new(now_micros());
    let mut ordinal: i64 = 0;
    let mut cursor: Option<String> = None;
    let mut cursor_count: HashMap<String, u32> = HashMap::new();
    loop {
        let (page, bytes) = api.page(&updated_after, cursor.as_deref()).await?;
        report.pages += 1;
        group.bytes += bytes as i64;
        for item in page.items {
            ordinal += 1;
            group.receive(item, ordinal, &divisions, &mut seen);
        }
        bar.set_position(seen.len() as u64);
        let next = page.next_cursor;
        if group.read as usize >= opts.commit_every {
            let g = std::mem::replace(&mut group, Group::new(now_micros()));
            commit_group(wh, &mut book, &source, g, &mut report).await?;
        }
        match next {
            None => break,
            Some(c) => {
                let n = cursor_count.entry(c.clone()).or_default();
                *n += 1;
                if *n > MAX_SAME_CURSOR {
                    return Err(Error::Upstream(format!(
                        "the API served the cursor {c:?} {} times: it does not advance",
                        *n
                    )));
                }
                cursor = Some(c);
            }
        }
    }
    commit_group(wh, &mut book, &source, group, &mut report).await?;
    bar.finish_and_clear();
    report.requests = api.requests;
    report.retries = api.retries;
    Ok(report)
}

/// The items received since the last commit: one load when committed.
struct Group {
    started_at: i64,
    /// Good versions in order of first receipt; each key once, with its last received content.
    rows: Vec<Pending>,
    by_key: HashMap<(String, i64), usize>,
    /// Bad items, first receipts only.
    bad: Vec<(i64, Reject, String, [u8; 32])>,
    read: i64,
    accepted: i64,
    quarantined: i64,
    repeated: i64,
    bytes: i64,
    /// The greatest `updated_at` received in the group (good or bad items).
    max_updated: Option<i64>,
}

struct Pending {
    row: Row<'static>,
    record: i64,
    hash: [u8; 32],
    updated_at: i64,
}

impl Group {
    fn new(started_at: i64) -> Self {
        Group {
            started_at,
            rows: Vec::new(),
            by_key: HashMap::new(),
            bad: Vec::new(),
            read: 0,
            accepted: 0,
            quarantined: 0,
            repeated: 0,
            bytes: 0,
            max_updated: None,
        }
    }

    fn receive(&mut self, item: Json, record: i64, d: &Divisions, seen: &mut HashSet<u128>) {
        let hash = item_hash(&item);
        let first = seen.insert(u128::from_le_bytes(
            hash[..16].try_into().expect("16 bytes"),
        ));
        if first {
            self.read += 1;
        } else {
            self.repeated += 1;
        }
        match convert_item(&item, d) {
            Ok(row) => {
                if first {
                    self.accepted += 1;
                }
                let (Value::Text(id), Value::Ts(ts)) = (row.get("order_id"), row.get("updated_at"))
                else {
                    unreachable!("order_id and updated_at are required");
                };
                let (key, ts) = ((id.to_string(), *ts), *ts);
                self.max_updated = self.max_updated.max(Some(ts));
                let pending = Pending {
                    row,
                    record,
                    hash,
                    updated_at: ts,
                };
                // The same version again: its last received content wins.
                match self.by_key.get(&key) {
                    Some(&i) if self.rows[i].hash == hash => {}
                    Some(&i) => self.rows[i] = pending,
                    None => {
                        self.by_key.insert(key, self.rows.len());
                        self.rows.push(pending);
                    }
                }
            }
            Err(reject) => {
                let ts = item
                    .get("updated_at")
                    .and_then(Json::as_str)
                    .and_then(rfc3339_micros);
                self.max_updated = self.max_updated.max(ts);
                if first {
                    self.quarantined += 1;
                    // serde_json keeps object keys sorted: equal items give equal texts.
                    self.bad.push((record, reject, item.to_string(), hash));
                }
            }
        }
    }
}

/// The identity of an item's content: SHA-256 over an unambiguous encoding of the JSON value
/// (object keys in order, serde_json keeps them sorted), without building its text.
fn item_hash(item: &Json) -> [u8; 32] {
    fn feed(v: &Json, h: &mut Sha256) {
        let len = |h: &mut Sha256, n: usize| h.update((n as u64).to_le_bytes());
        match v {
            Json::Null => h.update(b"n"),
            Json::Bool(b) => h.update(if *b { b"t" } else { b"f" }),
            Json::Number(n) => {
                if let Some(i) = n.as_i64() {
                    h.update(b"i");
                    h.update(i.to_le_bytes());
                } else if let Some(u) = n.as_u64() {
                    h.update(b"u");
                    h.update(u.to_le_bytes());
                } else {
                    h.update(b"d");
                    h.update(n.as_f64().unwrap_or(f64::NAN).to_bits().to_le_bytes());
                }
            }
            Json::String(s) => {
                h.update(b"s");
                len(h, s.len());
                h.update(s.as_bytes());
            }
            Json::Array(a) => {
                h.update(b"a");
                len(h, a.len());
                for x in a {
                    feed(x, h);
                }
            }
            Json::Object(o) => {
                h.update(b"o");
                len(h, o.len());
                for (k, x) in o {
                    len(h, k.len());
                    h.update(k.as_bytes());
                    feed(x, h);
                }
            }
        }
    }
    let mut h = Sha256::new();
    feed(item, &mut h);
    h.finalize().into()
}

/// Commits one group as one load: the versions not already stored with the same content, the
/// bad items not quarantined before, and the `loads` row with the new watermark, last.
async fn commit_group(
    wh: &Warehouse,
    book: &mut LoadBook,
    source: &str,
    mut g: Group,
    report: &mut PullReport,
) -> Result<()> {
    let committed = book.watermark(FEED);
    // Versions at or before the committed watermark may be stored already.
    let maybe_known: Vec<usize> = match committed {
        Some(w) => (0..g.rows.len())
            .filter(|&i| g.rows[i].updated_at <= w)
            .collect(),
        None => Vec::new(),
    };
    if !maybe_known.is_empty() || !g.bad.is_empty() {
        let ctx = SessionContext::new();
        plsw_store::register_all(&ctx, wh).await?;
        if !maybe_known.is_empty() {
            let changed = changed_versions(&ctx, &g, &maybe_known).await?;
            let drop: HashSet<usize> = maybe_known
                .into_iter()
                .filter(|&i| {
                    let (Value::Text(id), ts) =
                        (g.rows[i].row.get("order_id"), g.rows[i].updated_at)
                    else {
                        return false;
                    };
                    !changed.contains(&(id.to_string(), ts))
                })
                .collect();
            let mut i = 0;
            g.rows.retain(|_| {
                i += 1;
                !drop.contains(&(i - 1))
            });
        }
        if !g.bad.is_empty() {
            let known = quarantined_before(&ctx, &g).await?;
            g.bad.retain(|(_, _, raw, _)| !known.contains(raw));
        }
    }
    let watermark = committed.max(g.max_updated);
    report.read += g.read;
    report.accepted += g.accepted;
    report.quarantined += g.quarantined;
    report.repeated += g.repeated;
    if g.rows.is_empty() && g.bad.is_empty() && watermark == committed {
        // Nothing new: no load, nothing changes.
        return Ok(());
    }

    // The same group after a kill gets the same id (same position in `loads`, same items), so
    // a rerun adopts a table commit of the killed run instead of writing it twice.
    let mut hashes: Vec<[u8; 32]> = g
        .rows
        .iter()
        .map(|p| p.hash)
        .chain(g.bad.iter().map(|b| b.3))
        .collect();
    hashes.sort_unstable();
    let mut h = Sha256::new();
    h.update(format!("{FEED}\n{source}\n{}\n", book.next_seq()));
    for x in &hashes {
        h.update(x);
    }
    let content = hex::encode(h.finalize());
    let load_id = content[..32].to_string();

    let lineage = Lineage {
        load_id: load_id.clone(),
        feed: FEED,
        source: source.to_string(),
        loaded_at: g.started_at,
        as_of: None,
    };
    let mut staged = Vec::new();
    let mut quarantine_staged = Vec::new();
    if let Some(mut w) = wh.writer(&WORK_ORDER_VERSIONS, &load_id).await? {
        let mut rows = RowBatcher::new(&WORK_ORDER_VERSIONS, lineage.clone());
        for p in &g.rows {
            rows.push(&p.row, p.record);
            if rows.is_full() {
                w.write(rows.finish()).await?;
            }
        }
        if !rows.is_empty() {
            w.write(rows.finish()).await?;
        }
        staged.push(w.finish().await?);
    }
    if let Some(mut w) = wh.writer(&QUARANTINE, &load_id).await? {
        let mut bad = QuarantineBatcher::new(lineage);
        for (record, reject, raw, _) in &g.bad {
            bad.push(*record, reject, raw);
            if bad.is_full() {
                w.write(bad.finish()).await?;
            }
        }
        if bad.len() > 0 {
            w.write(bad.finish()).await?;
        }
        quarantine_staged.push(w.finish().await?);
    }
    staged.retain(|s| !s.is_empty());
    quarantine_staged.retain(|s| !s.is_empty());
    crash_point("before_raw_commit");
    wh.commit_staged(staged).await?;
    crash_point("after_raw_commit");
    wh.commit_staged(quarantine_staged).await?;
    crash_point("after_quarantine_commit");
    crash_point("before_load_commit");
    let record = LoadRecord {
        load_id,
        load_seq: 0,
        feed: FEED.to_string(),
        source: source.to_string(),
        content_sha256: content,
        as_of: None,
        encoding: None,
        status: "committed".into(),
        message: None,
        rows_read: g.read,
        rows_accepted: g.accepted,
        rows_quarantined: g.quarantined,
        rows_repeated: g.repeated,
        warnings: 0,
        bytes: g.bytes,
        watermark,
        started_at: g.started_at,
        loaded_at: now_micros(),
    };
    let recorded = wh.record_loads(book, vec![record]).await?;
    report.stored += g.rows.len() as i64;
    report.quarantine_rows += g.bad.len() as i64;
    report.watermark = watermark;
    report.loads.extend(recorded.iter().map(|r| r.load_seq));
    info!(
        load_seq = recorded[0].load_seq,
        read = g.read,
        stored = g.rows.len(),
        quarantined = g.bad.len(),
        watermark = %watermark.map(rfc3339_utc).unwrap_or_default(),
        "committed"
    );
    Ok(())
}

/// The keys among `candidates` whose content differs from the stored current version (or that
/// are not stored at all).
async fn changed_versions(
    ctx: &SessionContext,
    g: &Group,
    candidates: &[usize],
) -> Result<HashSet<(String, i64)>> {
    let lineage = Lineage {
        load_id: String::new(),
        feed: FEED,
        source: String::new(),
        loaded_at: 0,
        as_of: None,
    };
    let mut rows = RowBatcher::new(&WORK_ORDER_VERSIONS, lineage);
    let (mut lo, mut hi) = (i64::MAX, i64::MIN);
    for &i in candidates {
        rows.push(&g.rows[i].row, 0);
        lo = lo.min(g.rows[i].updated_at);
        hi = hi.max(g.rows[i].updated_at);
    }
    let batch = rows.finish();
    let feed_cols: Vec<usize> = (0..WORK_ORDER_VERSIONS.columns.len()).collect();
    let batch: RecordBatch = batch.project(&feed_cols).map_err(datafusion_err)?;
    let mem = MemTable::try_new(batch.schema(), vec![vec![batch]]).map_err(store_err)?;
    ctx.register_table("pull_incoming_", Arc::new(mem))
        .map_err(store_err)?;
    let cols = WORK_ORDER_VERSIONS
        .columns
        .iter()
        .map(|c| c.name)
        .collect::<Vec<_>>()
        .join(", ");
    // The range filter prunes the scan to the files holding these instants.
    let sql = format!(
        "SELECT order_id, CAST(updated_at AS BIGINT) AS ts FROM (
           SELECT {cols} FROM pull_incoming_
           EXCEPT
           SELECT {cols} FROM work_order_versions_current
           WHERE updated_at >= '{lo}' AND updated_at <= '{hi}')",
        lo = rfc3339_utc(lo),
        hi = rfc3339_utc(hi),
    );
    let batches = collect(ctx, &sql).await?;
    let _ = ctx.deregister_table("pull_incoming_");
    let mut out = HashSet::new();
    for b in &batches {
        let ids = string_column(b, 0)?;
        let ts = b.column(1).as_primitive::<Int64Type>();
        for r in 0..b.num_rows() {
            out.insert((ids.value(r).to_string(), ts.value(r)));
        }
    }
    Ok(out)
}

/// The raw texts among the group's bad items that `quarantine` already holds for this feed.
async fn quarantined_before(ctx: &SessionContext, g: &Group) -> Result<HashSet<String>> {
    let raws = StringArray::from_iter_values(g.bad.iter().map(|b| b.2.as_str()));
    let batch =
        RecordBatch::try_from_iter([("raw", Arc::new(raws) as _)]).map_err(datafusion_err)?;
    let mem = MemTable::try_new(batch.schema(), vec![vec![batch]]).map_err(store_err)?;
    ctx.register_table("pull_bad_", Arc::new(mem))
        .map_err(store_err)?;
    let sql = format!(
        "SELECT DISTINCT q.raw FROM quarantine q JOIN pull_bad_ b ON q.raw = b.raw
         WHERE q.feed = '{FEED}'"
    );
    let batches = collect(ctx, &sql).await?;
    let _ = ctx.deregister_table("pull_bad_");
    let mut out = HashSet::new();
    for b in &batches {
        let raws = string_column(b, 0)?;
        for r in 0..b.num_rows() {
            out.insert(raws.value(r).to_string());
        }
    }
    Ok(out)
}

async fn collect(ctx: &SessionContext, sql: &str) -> Result<Vec<RecordBatch>> {
    let df = ctx.sql(sql).await.map_err(store_err)?;
    df.collect().await.map_err(store_err)
}

fn string_column(b: &RecordBatch, i: usize) -> Result<StringArray> {
    let a = datafusion::arrow::compute::cast(
        b.column(i),
        &datafusion::arrow::datatypes::DataType::Utf8,
    )
    .map_err(datafusion_err)?;
    Ok(a.as_string::<i32>().clone())
}

fn store_err(e: datafusion::error::DataFusionError) -> Error {
    Error::Warehouse(plsw_store::Error::from(e))
}

fn datafusion_err(e: datafusion::arrow::error::ArrowError) -> Error {
    store_err(datafusion::error::DataFusionError::from(e))
}

/// An instant as RFC 3339 in UTC with microseconds (`2025-03-01T00:00:00.000000Z`).
pub fn rfc3339_utc(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

/// One page of the API.
#[derive(Debug)]
struct Page {
    items: Vec<Json>,
    next_cursor: Option<String>,
}

/// The HTTP side: requests, retries and their counts.
struct Api {
    client: reqwest::Client,
    url: Url,
    auth: Option<HeaderValue>,
    limit: String,
    retry: RetryPolicy,
    requests: u64,
    retries: u64,
}

/// Why one attempt failed.
enum Attempt {
    /// Worth another attempt, after the server's wait if it gave one.
    Retry { why: String, wait: Option<Duration> },
    /// Another attempt would fail the same way.
    Fatal(String),
}

impl Api {
    fn new(opts: &PullOptions) -> Result<Self> {
        let client = reqwest::Client::builder()
            .connect_timeout(opts.connect_timeout)
            .read_timeout(opts.read_timeout)
            .user_agent(concat!("plsw/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Usage(format!("cannot build the HTTP client: {e}")))?;
        let mut base = opts.base_url.clone();
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        let url = base
            .join(API_PATH)
            .map_err(|e| Error::Usage(format!("bad base URL {}: {e}", opts.base_url)))?;
        let auth = match &opts.token {
            Some(t) => {
                let mut v = HeaderValue::from_str(&format!("Bearer {t}")).map_err(|_| {
                    Error::Usage("the token has characters a header cannot hold".into())
                })?;
                // Kept out of debug output and marked for HPACK as never-indexed.
                v.set_sensitive(true);
                Some(v)
            }
            None => None,
        };
        Ok(Api {
            client,
            url,
            auth,
            limit: opts.page_size.to_string(),
            retry: opts.retry.clone(),
            requests: 0,
            retries: 0,
        })
    }

    /// One page, retried as the policy says. Returns the page and its size in bytes.
    async fn page(&mut self, updated_after: &str, cursor: Option<&str>) -> Result<(Page, usize)> {
        let mut attempt = 0u32;
        loop {
            self.requests += 1;
            match self.attempt(updated_after, cursor).await {
                Ok(page) => return Ok(page),
                Err(Attempt::Fatal(why)) => return Err(Error::Upstream(why)),
                Err(Attempt::Retry { why, wait }) => {
                    if attempt >= self.retry.max_retries {
                        return Err(Error::Upstream(format!(
                            "giving up after {} attempts: {why}",
                            attempt + 1
                        )));
                    }
                    let wait = match wait {
                        Some(w) => w.min(self.retry.max_retry_after),
                        None => self.retry.backoff(attempt),
                    };
                    warn!(
                        reason = %why,
                        attempt = attempt + 1,
                        wait_ms = wait.as_millis() as u64,
                        "request failed, retrying"
                    );
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                    self.retries += 1;
                }
            }
        }
    }

    async fn attempt(
        &self,
        updated_after: &str,
        cursor: Option<&str>,
    ) -> std::result::Result<(Page, usize), Attempt> {
        let mut query = vec![("updated_after", updated_after), ("limit", &self.limit)];
        if let Some(c) = cursor {
            query.push(("cursor", c));
        }
        let mut req = self.client.get(self.url.clone()).query(&query);
        if let Some(a) = &self.auth {
            req = req.header(AUTHORIZATION, a.clone());
        }
        let resp = req.send().await.map_err(|e| Attempt::Retry {
            why: describe(e),
            wait: None,
        })?;
        let status = resp.status();
        if status == StatusCode::TOO_MANY_REQUESTS {
            let wait = resp
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_retry_after);
            return Err(Attempt::Retry {
                why: "HTTP 429 Too Many Requests".into(),
                wait,
            });
        }
        if status.is_server_error() || status == StatusCode::REQUEST_TIMEOUT {
            return Err(Attempt::Retry {
                why: format!("HTTP {status}"),
                wait: None,
            });
        }
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(Attempt::Fatal(format!(
                "the API refused the token (HTTP {status}): check --token-env or the token in plsw.toml"
            )));
        }
        if !status.is_success() {
            let body = resp.text().await.unwrap_or_default();
            let body: String = body.chars().take(300).collect();
            return Err(Attempt::Fatal(format!("HTTP {status}: {body}")));
        }
        let body = resp.bytes().await.map_err(|e| Attempt::Retry {
            why: format!("the response broke off ({})", describe(e)),
            wait: None,
        })?;
        let page = parse_page(&body).map_err(|why| Attempt::Retry { why, wait: None })?;
        Ok((page, body.len()))
    }
}

/// What went wrong with a request, briefly: its kind and the innermost cause (reqwest's chain
/// repeats itself on the way down). The URL is left out: it is long, and the log has it.
fn describe(e: reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else if e.is_body() || e.is_decode() {
        "broken body"
    } else {
        "request failed"
    };
    let e = e.without_url();
    let mut cause: &dyn std::error::Error = &e;
    while let Some(s) = cause.source() {
        cause = s;
    }
    format!("{kind}: {cause}")
}

/// `Retry-After` as seconds, or as an HTTP date.
fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let ms = at.timestamp_millis() - chrono::Utc::now().timestamp_millis();
    Some(Duration::from_millis(ms.max(0) as u64))
}

fn parse_page(body: &[u8]) -> std::result::Result<Page, String> {
    let v: Json =
        serde_json::from_slice(body).map_err(|e| format!("the page is not valid JSON: {e}"))?;
    let Json::Object(mut obj) = v else {
        return Err("the page is not a JSON object".into());
    };
    let items = match obj.remove("items") {
        Some(Json::Array(items)) => items,
        _ => return Err("the page has no items array".into()),
    };
    let next_cursor = match obj.remove("next_cursor") {
        None | Some(Json::Null) => None,
        Some(Json::String(s)) => Some(s),
        Some(other) => return Err(format!("next_cursor {other} is not a string")),
    };
    Ok(Page { items, next_cursor })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let p = RetryPolicy {
            max_retries: 10,
            base: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            max_retry_after: Duration::from_secs(5),
        };
        for attempt in 0..12 {
            let exp = Duration::from_millis(100 * (1u64 << attempt.min(20))).min(p.max_backoff);
            let d = p.backoff(attempt);
            assert!(
                d >= exp / 2 && d <= exp,
                "attempt {attempt}: {d:?} vs {exp:?}"
            );
        }
        let waits: HashSet<Duration> = (0..20).map(|_| p.backoff(5)).collect();
        assert!(waits.len() > 1, "jitter varies the wait");
        assert!(p.backoff(u32::MAX) <= p.max_backoff);
    }

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after(" 0 "), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO),
            "a date in the past means now"
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn pages_are_checked() {
        let p = parse_page(br#"{"items":[{"a":1}],"next_cursor":"x","extra":true}"#).unwrap();
        assert_eq!(p.items.len(), 1);
        assert_eq!(p.next_cursor.as_deref(), Some("x"));
        assert!(parse_page(br#"{"items":[],"next_cursor":null}"#)
            .unwrap()
            .next_cursor
            .is_none());
        assert!(parse_page(br#"{"items":[],"next_cursor":3}"#).is_err());
        assert!(parse_page(br#"{"next_cursor":null}"#).is_err());
        assert!(parse_page(br#"{"items":[{"a":1}"#).is_err());
        assert!(parse_page(b"[]").is_err());
    }

    #[test]
    fn item_hashes_tell_contents_apart_and_ignore_key_order() {
        let h = |t: &str| item_hash(&serde_json::from_str(t).unwrap());
        assert_eq!(h(r#"{"a":1,"b":"x"}"#), h(r#"{"b":"x","a":1}"#));
        let distinct = [
            r#"{"a":1}"#,
            r#"{"a":1.0}"#,
            r#"{"a":"1"}"#,
            r#"{"a":null}"#,
            r#"{}"#,
            r#"{"a":[1]}"#,
            r#"{"a":true}"#,
            r#"{"ab":""}"#,
            r#"{"a":"b"}"#,
            r#"[1]"#,
        ];
        let hashes: HashSet<[u8; 32]> = distinct.iter().map(|t| h(t)).collect();
        assert_eq!(hashes.len(), distinct.len());
    }

    #[test]
    fn instants_round_trip() {
        let t = rfc3339_micros("2025-03-31T23:59:59.5+08:00").unwrap();
        assert_eq!(rfc3339_utc(t), "2025-03-31T15:59:59.500000Z");
        assert_eq!(rfc3339_micros(&rfc3339_utc(t)), Some(t));
        assert_eq!(rfc3339_utc(0), "1970-01-01T00:00:00.000000Z");
    }

    #[test]
    fn the_token_is_not_in_debug_output() {
        let mut o = PullOptions::new(Url::parse("http://127.0.0.1:1/").unwrap());
        o.token = Some("s3cret-token".into());
        assert!(!format!("{o:?}").contains("s3cret"));
        let api = Api::new(&o).unwrap();
        assert!(!format!("{:?}", api.auth).contains("s3cret"));
        assert_eq!(api.url.as_str(), "http://127.0.0.1:1/api/v1/work-orders");
    }
}
