//! Running the models: one DataFusion session over the warehouse's committed views, each model
//! in dependency order, its result kept in memory for the models after it, its data tests run
//! right after it; the output models are then committed as Delta tables.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::catalog::MemTable;
use datafusion::config::Dialect;
use datafusion::prelude::{SessionConfig, SessionContext};
use plsw_schemas::tables;
use plsw_store::{sql_text, Warehouse};
use sha2::{Digest, Sha256};
use tracing::{debug, info};

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
    /// The whole model: its query and its data tests.
    pub millis: u128,
    /// Of which its data tests.
    pub tests_millis: u128,
}

/// What a transform did.
#[derive(Debug, Clone)]
pub struct Report {
    pub mode: Mode,
    pub models: Vec<ModelRun>,
    /// Quarters recomputed (labels).
    pub quarters: Vec<String>,
    /// Rows written to `indicators`.
    pub indicator_rows: usize,
    /// Models an incremental run left alone: the new loads cannot reach them and cannot move
    /// the span of quarters (their indicators keep their rows).
    pub skipped: Vec<String>,
    /// The current states written before the models ran (see `plsw_store::refresh_states`).
    pub states: Vec<plsw_store::Refreshed>,
}

impl Default for Report {
    fn default() -> Self {
        Report {
            mode: Mode::UpToDate,
            models: Vec::new(),
            quarters: Vec::new(),
            indicator_rows: 0,
            skipped: Vec::new(),
            states: Vec::new(),
        }
    }
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

/// The targets of `seeds/targets.csv`: (indicator, comparison, target, from_year), checked.
pub fn targets() -> Result<Vec<(String, String, f64, i64)>> {
    let mut out = Vec::new();
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
        out.push((
            f[0].to_string(),
            f[1].to_string(),
            f[2].parse::<f64>().map_err(|_| bad())?,
            f[3].parse::<i64>().map_err(|_| bad())?,
        ));
    }
    Ok(out)
}

fn register_targets(ctx: &SessionContext) -> Result<()> {
    use datafusion::arrow::array::{Float64Array, Int64Array, StringArray};
    let all = targets()?;
    let ids: Vec<&str> = all.iter().map(|t| t.0.as_str()).collect();
    let cmps: Vec<&str> = all.iter().map(|t| t.1.as_str()).collect();
    let targets: Vec<f64> = all.iter().map(|t| t.2).collect();
    let years: Vec<i64> = all.iter().map(|t| t.3).collect();
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

/// How to run.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Recompute every quarter, whatever changed.
    pub full: bool,
}

/// What the run recomputed, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Every quarter (first run, `--full`, other divisions, other models or targets).
    Full { reason: String },
    /// The quarters from `from` on.
    Incremental { from: String, reason: String },
    /// No committed load since the last run, same divisions, models and targets: nothing to do.
    UpToDate,
}

/// The state the last committed run left.
struct LastRun {
    max_load_seq: i64,
    divisions_sha256: String,
    models_sha256: String,
}

/// Runs the models and commits `indicators`: every quarter on a full run, else only the
/// quarters from the earliest one that the loads committed since the last run touch.
pub async fn run(wh: &Warehouse, opts: Options) -> Result<Report> {
    let started_at = chrono::Utc::now().timestamp_micros();
    // The models read the `_current` views; with the states brought up to date first, those
    // views scan one file per feed instead of ranking every feed's history.
    let t0 = Instant::now();
    let phase = |what: &str| {
        debug!(
            phase = what,
            millis = t0.elapsed().as_millis() as u64,
            "transform"
        )
    };
    let states = plsw_store::refresh_states(wh).await?;
    phase("states");
    let ctx = session(wh).await?;
    phase("session");
    let max_load_seq = scalar_i64(
        &ctx,
        "SELECT max(load_seq) FROM loads WHERE status = 'committed'",
    )
    .await?
    .unwrap_or(0);
    let divisions_sha256 = divisions_sha256(&ctx).await?;
    let models_sha256 = models_sha256();
    let last = last_run(&ctx).await?;
    phase("last run");
    let mut changed_feeds: Vec<String> = Vec::new();
    // The loads since the last run by feed, read once for the probes and the pruning.
    let mut new_by_feed: NewLoads = Default::default();
    let (mode, from_q) = match &last {
        _ if opts.full => full("asked for (--full)"),
        None => full("first run"),
        Some(l) if l.divisions_sha256 != divisions_sha256 => full("the divisions changed"),
        Some(l) if l.models_sha256 != models_sha256 => full("the models or targets changed"),
        Some(l) if l.max_load_seq >= max_load_seq => (Mode::UpToDate, None),
        Some(l) => {
            new_by_feed = new_loads(&ctx, l.max_load_seq).await?;
            match affected_from(&ctx, &new_by_feed).await? {
                None => (Mode::UpToDate, None),
                Some((q, reason, feeds)) => {
                    changed_feeds = feeds;
                    (
                        Mode::Incremental {
                            from: udf::label(q),
                            reason,
                        },
                        Some(q),
                    )
                }
            }
        }
    };
    let mut report = Report {
        mode: mode.clone(),
        states,
        ..Report::default()
    };
    phase("what changed");
    if mode == Mode::UpToDate {
        return Ok(report);
    }
    register_params(&ctx, from_q.unwrap_or(0))?;
    let models = model::load()?;
    let pruned = match &mode {
        Mode::Incremental { .. } => prune_plan(&ctx, &new_by_feed, &changed_feeds, &models).await?,
        _ => None,
    };
    phase("plan");
    for m in &models {
        let Some(p) = &pruned else {
            report.models.push(run_model(&ctx, m).await?);
            continue;
        };
        if m.name == "quarters" {
            // The span cannot have moved: the quarters are the last run's, without reading
            // every feed's staging again.
            let (lo, hi) = p.span;
            let df = ctx
                .sql(&format!(
                    "SELECT q, quarter_label(q) AS quarter, quarter_last_day(q) AS last_day
                     FROM (SELECT unnest(range({lo}, {hi} + 1)) AS q)"
                ))
                .await
                .map_err(Error::sql(&m.name))?;
            let batches = df.collect().await.map_err(Error::sql(&m.name))?;
            let mem = MemTable::try_new(batches[0].schema(), vec![batches])
                .map_err(Error::sql(&m.name))?;
            ctx.register_table(m.name.as_str(), Arc::new(mem))
                .map_err(Error::sql(&m.name))?;
            continue;
        }
        if !p.run.contains(&m.name) {
            continue;
        }
        if m.meta.output {
            // The marts the loads do not reach contribute no rows (some ran, as inputs of
            // others); their rows stay in the table.
            let schema = m
                .meta
                .depends
                .iter()
                .find(|d| p.dirty.contains(*d))
                .map(|d| d.as_str());
            let template = match schema {
                Some(d) => ctx
                    .table(d)
                    .await
                    .map_err(Error::sql(&m.name))?
                    .schema()
                    .as_arrow()
                    .clone(),
                None => {
                    return Err(Error::Model {
                        model: m.path.to_string(),
                        message: "no mart to take a schema from".into(),
                    })
                }
            };
            let marts = m
                .meta
                .depends
                .iter()
                .filter(|d| models.iter().any(|x| &x.name == *d) && *d != "quarters");
            for d in marts.filter(|d| !p.dirty.contains(*d)) {
                let empty = MemTable::try_new(Arc::new(template.clone()), vec![vec![]])
                    .map_err(Error::sql(&m.name))?;
                // A mart may share its name with a warehouse view (`cases`).
                let _ = ctx.deregister_table(d.as_str());
                ctx.register_table(d.as_str(), Arc::new(empty))
                    .map_err(Error::sql(&m.name))?;
            }
        }
        report.models.push(run_model(&ctx, m).await?);
    }
    phase("models");
    report.skipped = pruned
        .as_ref()
        .map(|p| p.skipped.clone())
        .unwrap_or_default();
    report.quarters = labels(&ctx, "SELECT DISTINCT quarter FROM grid ORDER BY quarter").await?;
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
        match &mode {
            Mode::Incremental { from, .. } => {
                let mut predicate = format!("quarter >= '{from}'");
                if let Some(p) = &pruned {
                    let ids: Vec<String> = p.ids.iter().map(|i| format!("'{i}'")).collect();
                    predicate.push_str(&format!(" AND indicator IN ({})", ids.join(", ")));
                }
                wh.replace_where(def, &predicate, batches).await?
            }
            _ => wh.overwrite(def, batches).await?,
        }
        info!(table = def.name, rows, "committed");
        if def.name == tables::INDICATORS.name {
            report.indicator_rows = rows;
        }
    }
    phase("indicators committed");
    // Recorded after `indicators`: a run killed in between is redone by the next one, which
    // recomputes the same quarters from the same inputs.
    let (kind, from, reason) = match &mode {
        Mode::Full { reason } => (
            "full",
            report.quarters.first().cloned().unwrap_or_default(),
            reason.clone(),
        ),
        Mode::Incremental { from, reason } => ("incremental", from.clone(), reason.clone()),
        Mode::UpToDate => unreachable!("returned above"),
    };
    let run_id = format!("{started_at:x}-{max_load_seq}");
    let finished_at = chrono::Utc::now().timestamp_micros();
    let batch = transforms_row(
        &run_id,
        kind,
        &from,
        report.quarters.len() as i64,
        &reason,
        max_load_seq,
        &divisions_sha256,
        &models_sha256,
        report.indicator_rows as i64,
        started_at,
        finished_at,
    )
    .map_err(Error::sql("transforms"))?;
    wh.append(&tables::TRANSFORMS, vec![batch]).await?;
    Ok(report)
}

fn full(reason: &str) -> (Mode, Option<i64>) {
    (
        Mode::Full {
            reason: reason.to_string(),
        },
        None,
    )
}

/// `run_params`: what the models need to know about this run (the first quarter to compute).
fn register_params(ctx: &SessionContext, from_q: i64) -> Result<()> {
    use datafusion::arrow::array::Int64Array;
    let batch = RecordBatch::try_from_iter([(
        "from_q",
        Arc::new(Int64Array::from(vec![from_q])) as Arc<dyn Array>,
    )])
    .map_err(|e| Error::sql("run_params")(e.into()))?;
    let mem =
        MemTable::try_new(batch.schema(), vec![vec![batch]]).map_err(Error::sql("run_params"))?;
    ctx.register_table("run_params", Arc::new(mem))
        .map_err(Error::sql("run_params"))?;
    Ok(())
}

/// The SQL of a probe, given the new loads' ids as SQL literals (`'a', 'b'`).
type Probe = fn(&str) -> String;

/// For each feed, the earliest quarter its loads committed after `since` can change, over the
/// old and new rows of every key they touch; the earliest of them, and which feeds gave it.
async fn affected_from(
    ctx: &SessionContext,
    new_loads: &NewLoads,
) -> Result<Option<(i64, String, Vec<String>)>> {
    let new_of = |feed: &str| new_loads.get(feed).map(|ids| ids.join(", "));
    // (feed, the earliest quarter its new loads — listed as SQL literals — can change)
    let probes: [(&str, Probe); 7] = [
        ("hotline", |new| {
            format!(
                "SELECT min(local_quarter(h.queued_at)) FROM hotline_calls h
                 JOIN (SELECT DISTINCT call_id FROM hotline_calls WHERE load_id IN ({new})) k
                 ON h.call_id = k.call_id"
            )
        }),
        ("cases", |new| {
            format!(
                "SELECT min(date_quarter(c.accepted_on)) FROM cases c
                 JOIN (SELECT DISTINCT case_type, case_id FROM cases WHERE load_id IN ({new})) k
                 ON c.case_type = k.case_type AND c.case_id = k.case_id"
            )
        }),
        ("work_orders", |new| {
            format!(
                "SELECT min(CASE WHEN local_quarter(v.closed_at) < local_quarter(v.created_at)
                            THEN local_quarter(v.closed_at) ELSE local_quarter(v.created_at) END)
                 FROM work_order_versions v
                 JOIN (SELECT DISTINCT order_id FROM work_order_versions WHERE load_id IN ({new})) k
                 ON v.order_id = k.order_id"
            )
        }),
        ("funding", |new| {
            format!("SELECT min(year * 4 + quarter - 1) FROM funding WHERE load_id IN ({new})")
        }),
        ("population", |new| {
            format!("SELECT min(year * 4) FROM population WHERE load_id IN ({new})")
        }),
        ("platforms", |new| {
            format!(
                "SELECT min(date_quarter(as_of)) FROM loads WHERE feed = 'platforms' AND load_id IN ({new})"
            )
        }),
        ("staff", |new| {
            format!(
                "SELECT min(date_quarter(as_of)) FROM loads WHERE feed = 'staff' AND load_id IN ({new})"
            )
        }),
    ];
    let mut found: Vec<(i64, &str)> = Vec::new();
    for (feed, sql) in &probes {
        // Only feeds with new loads, listed by id so that the scans skip every other file.
        let Some(new) = new_of(feed) else {
            continue;
        };
        if let Some(q) = scalar_i64(ctx, &sql(&new)).await? {
            found.push((q, feed));
        }
    }
    let Some(min) = found.iter().map(|(q, _)| *q).min() else {
        return Ok(None);
    };
    let reason = found
        .iter()
        .map(|(q, feed)| format!("{feed} from {}", udf::label(*q)))
        .collect::<Vec<_>>()
        .join(", ");
    let feeds = found.iter().map(|(_, f)| f.to_string()).collect();
    Ok(Some((min, format!("new loads: {reason}"), feeds)))
}

/// Load ids by feed, as quoted SQL literals.
type NewLoads = std::collections::HashMap<String, Vec<String>>;

/// Runs `sql` and collects its batches; an error names `what` (the model, or what was read).
async fn query(ctx: &SessionContext, sql: &str, what: &str) -> Result<Vec<RecordBatch>> {
    ctx.sql(sql)
        .await
        .map_err(Error::sql(what))?
        .collect()
        .await
        .map_err(Error::sql(what))
}

/// The loads committed after `since`, by feed.
async fn new_loads(ctx: &SessionContext, since: i64) -> Result<NewLoads> {
    let batches = query(
        ctx,
        &format!(
            "SELECT feed, load_id FROM loads WHERE status = 'committed' AND load_seq > {since}"
        ),
        "loads",
    )
    .await?;
    let mut out = NewLoads::default();
    for b in &batches {
        let feeds =
            cast(b.column(0), &DataType::Utf8).map_err(|e| Error::sql("loads")(e.into()))?;
        let ids = cast(b.column(1), &DataType::Utf8).map_err(|e| Error::sql("loads")(e.into()))?;
        let (feeds, ids) = (feeds.as_string::<i32>(), ids.as_string::<i32>());
        for i in 0..b.num_rows() {
            out.entry(feeds.value(i).to_string())
                .or_default()
                .push(sql_text(ids.value(i)));
        }
    }
    Ok(out)
}

/// The relations of the warehouse a feed's loads change: its table and its `_current` view.
fn relations_of(feed: &str) -> Vec<String> {
    tables::FEED_CODES
        .iter()
        .filter(|(f, _)| *f == feed)
        .flat_map(|(_, t)| {
            [
                t.name.to_string(),
                format!("{}{}", t.name, plsw_store::CURRENT_SUFFIX),
            ]
        })
        .collect()
}

/// What an incremental run can leave alone when the new loads cannot move the span of quarters.
struct Pruned {
    /// The span of quarters (first, last) as the last run left it: also the span now.
    span: (i64, i64),
    /// The models to run (beside `quarters`, which is rebuilt from the span).
    run: std::collections::HashSet<String>,
    /// The models the new loads reach: only their indicators are replaced.
    dirty: std::collections::HashSet<String>,
    /// The indicator ids the run recomputes; the others stay as they are.
    ids: Vec<String>,
    /// The models left alone.
    skipped: Vec<String>,
}

/// `2025Q3` → 2025 × 4 + 2.
fn quarter_number(label: &str) -> Option<i64> {
    let (y, n) = label.split_once('Q')?;
    Some(y.parse::<i64>().ok()? * 4 + n.parse::<i64>().ok()? - 1)
}

/// The quarters of the current rows of the keys the new loads of `feed` touch, and of those
/// keys' rows loaded before: (current min, current max, old min, old max), each possibly absent.
async fn event_span(
    ctx: &SessionContext,
    new_loads: &NewLoads,
    feed: &str,
) -> Result<[Option<i64>; 4]> {
    let Some(new) = new_loads.get(feed).map(|ids| ids.join(", ")) else {
        return Ok([None; 4]);
    };
    // (table, key columns, lowest quarter of a row, highest quarter of a row)
    let (table, key, lo, hi) = match feed {
        "hotline" => (
            "hotline_calls",
            "call_id",
            "local_quarter(t.queued_at)".to_string(),
            "local_quarter(t.queued_at)".to_string(),
        ),
        "cases" => (
            "cases",
            "case_type, case_id",
            "date_quarter(t.accepted_on)".to_string(),
            "CASE WHEN date_quarter(t.closed_on) > date_quarter(t.accepted_on) THEN date_quarter(t.closed_on) ELSE date_quarter(t.accepted_on) END".to_string(),
        ),
        "work_orders" => (
            "work_order_versions",
            "order_id",
            "CASE WHEN local_quarter(t.closed_at) < local_quarter(t.created_at) THEN local_quarter(t.closed_at) ELSE local_quarter(t.created_at) END".to_string(),
            "CASE WHEN local_quarter(t.closed_at) > local_quarter(t.created_at) THEN local_quarter(t.closed_at) ELSE local_quarter(t.created_at) END".to_string(),
        ),
        // A funding row's key holds its quarter: a correction cannot move it.
        "funding" => (
            "funding",
            "",
            "t.year * 4 + t.quarter - 1".to_string(),
            "t.year * 4 + t.quarter - 1".to_string(),
        ),
        // Registries and populations add no quarter.
        _ => return Ok([None; 4]),
    };
    if key.is_empty() {
        let sql = format!("SELECT min({lo}), max({hi}) FROM {table} t WHERE t.load_id IN ({new})");
        let [n0, n1] = scalar_pair(ctx, &sql).await?;
        return Ok([n0, n1, None, None]);
    }
    let on = key
        .split(", ")
        .map(|k| format!("t.{k} = k.{k}"))
        .collect::<Vec<_>>()
        .join(" AND ");
    // The range of the new keys' last column: the joins hold it already, but said outright it
    // lets the scans skip, by their statistics, the files that hold none of those keys (ids
    // carry their day: without it, every day's file of the feed's history was read).
    let last = key.rsplit(", ").next().unwrap_or(key);
    let within = match key_range(ctx, table, last, &new).await? {
        Some((k0, k1)) => format!(
            "t.{last} >= {} AND t.{last} <= {}",
            sql_text(&k0),
            sql_text(&k1)
        ),
        None => "TRUE".into(),
    };
    let current_sql = format!(
        "SELECT min({lo}), max({hi}) FROM {table}_current t
         JOIN (SELECT DISTINCT {key} FROM {table} WHERE load_id IN ({new})) k ON {on}
         WHERE {within}"
    );
    let [n0, n1] = scalar_pair(ctx, &current_sql).await?;
    let old_sql = format!(
        "SELECT min({lo}), max({hi}) FROM {table} t
         JOIN (SELECT DISTINCT {key} FROM {table} WHERE load_id IN ({new})) k ON {on}
         WHERE t.load_id NOT IN ({new}) AND {within}"
    );
    let [o0, o1] = scalar_pair(ctx, &old_sql).await?;
    Ok([n0, n1, o0, o1])
}

/// The lowest and highest value of a text column among the rows of some loads (`None` when
/// they have none).
async fn key_range(
    ctx: &SessionContext,
    table: &str,
    column: &str,
    loads: &str,
) -> Result<Option<(String, String)>> {
    let sql =
        format!("SELECT min({column}), max({column}) FROM {table} WHERE load_id IN ({loads})");
    let Some(b) = first_row(ctx, &sql, "span").await? else {
        return Ok(None);
    };
    let text = |i: usize| -> Result<Option<String>> {
        let a = cast(b.column(i), &DataType::Utf8).map_err(|e| Error::sql("span")(e.into()))?;
        let a = a.as_string::<i32>();
        Ok((!a.is_null(0)).then(|| a.value(0).to_string()))
    };
    Ok(text(0)?.zip(text(1)?))
}

/// The first batch with a row of a query's result, if any; an error names `what`.
async fn first_row(ctx: &SessionContext, sql: &str, what: &str) -> Result<Option<RecordBatch>> {
    let batches = query(ctx, sql, what).await?;
    Ok(batches.into_iter().find(|b| b.num_rows() > 0))
}

async fn scalar_pair(ctx: &SessionContext, sql: &str) -> Result<[Option<i64>; 2]> {
    use datafusion::arrow::compute::cast;
    use datafusion::arrow::datatypes::{DataType, Int64Type};
    let mut out = [None, None];
    if let Some(b) = first_row(ctx, sql, "span").await? {
        for (i, slot) in out.iter_mut().enumerate() {
            let c =
                cast(b.column(i), &DataType::Int64).map_err(|e| Error::sql("span")(e.into()))?;
            let c = c.as_primitive::<Int64Type>();
            *slot = (!c.is_null(0)).then(|| c.value(0));
        }
    }
    Ok(out)
}

/// Whether an incremental run for `feeds` can skip the models those feeds do not reach: only
/// when the span of quarters cannot move. The untouched keys' events stay; so it holds when the
/// touched keys' current events lie inside the last run's span, and where one of their earlier
/// rows sat on an edge of the span (perhaps its only event there), a current one sits there
/// still.
async fn prune_plan(
    ctx: &SessionContext,
    new_loads: &NewLoads,
    feeds: &[String],
    models: &[Model],
) -> Result<Option<Pruned>> {
    let first = labels(ctx, "SELECT min(quarter) AS q FROM indicators").await?;
    let last = labels(ctx, "SELECT max(quarter) AS q FROM indicators").await?;
    let (Some(p0), Some(p1)) = (
        first.first().and_then(|q| quarter_number(q)),
        last.first().and_then(|q| quarter_number(q)),
    ) else {
        return Ok(None);
    };
    for feed in feeds {
        let [c0, c1, o0, o1] = event_span(ctx, new_loads, feed).await?;
        let inside = c0.is_none_or(|q| q >= p0) && c1.is_none_or(|q| q <= p1);
        let bottom_kept = o0 != Some(p0) || c0 == Some(p0);
        let top_kept = o1 != Some(p1) || c1 == Some(p1);
        if !(inside && bottom_kept && top_kept) {
            return Ok(None);
        }
    }
    let changed: std::collections::HashSet<String> =
        feeds.iter().flat_map(|f| relations_of(f)).collect();
    let mut dirty: std::collections::HashSet<String> = std::collections::HashSet::new();
    for m in models {
        if m.name == "quarters" {
            continue;
        }
        if m.meta
            .depends
            .iter()
            .any(|d| changed.contains(d.as_str()) || dirty.contains(d))
        {
            dirty.insert(m.name.clone());
        }
    }
    // What the dirty models read must be there too; the output model's other marts are not
    // needed (they are left as they are).
    let mut run = dirty.clone();
    for m in models.iter().rev() {
        if !run.contains(&m.name) {
            continue;
        }
        for d in &m.meta.depends {
            let is_model = models.iter().any(|x| &x.name == d);
            if is_model && d != "quarters" && (!m.meta.output || dirty.contains(d)) {
                run.insert(d.clone());
            }
        }
    }
    let ids: Vec<String> = models
        .iter()
        .filter(|m| dirty.contains(&m.name))
        .flat_map(|m| m.meta.indicators.iter().cloned())
        .collect();
    if ids.is_empty() {
        return Ok(None);
    }
    let skipped = models
        .iter()
        .filter(|m| !run.contains(&m.name) && m.name != "quarters")
        .map(|m| m.name.clone())
        .collect();
    Ok(Some(Pruned {
        span: (p0, p1),
        run,
        dirty,
        ids,
        skipped,
    }))
}

async fn last_run(ctx: &SessionContext) -> Result<Option<LastRun>> {
    let sql = "SELECT max_load_seq, divisions_sha256, models_sha256 FROM transforms
               ORDER BY finished_at DESC LIMIT 1";
    let Some(b) = first_row(ctx, sql, "transforms").await? else {
        return Ok(None);
    };
    let text = |i: usize| -> Result<String> {
        let a =
            cast(b.column(i), &DataType::Utf8).map_err(|e| Error::sql("transforms")(e.into()))?;
        Ok(a.as_string::<i32>().value(0).to_string())
    };
    Ok(Some(LastRun {
        max_load_seq: b.column(0).as_primitive::<Int64Type>().value(0),
        divisions_sha256: text(1)?,
        models_sha256: text(2)?,
    }))
}

async fn scalar_i64(ctx: &SessionContext, sql: &str) -> Result<Option<i64>> {
    let Some(b) = first_row(ctx, sql, "state").await? else {
        return Ok(None);
    };
    let a = cast(b.column(0), &DataType::Int64).map_err(|e| Error::sql("state")(e.into()))?;
    let a = a.as_primitive::<Int64Type>();
    Ok((!a.is_null(0)).then(|| a.value(0)))
}

async fn labels(ctx: &SessionContext, sql: &str) -> Result<Vec<String>> {
    let batches = query(ctx, sql, "quarters").await?;
    let mut out = Vec::new();
    for b in &batches {
        let a = cast(b.column(0), &DataType::Utf8).map_err(|e| Error::sql("quarters")(e.into()))?;
        out.extend(a.as_string::<i32>().iter().flatten().map(str::to_string));
    }
    Ok(out)
}

/// A digest of the divisions in force (every column of every level, in code order).
async fn divisions_sha256(ctx: &SessionContext) -> Result<String> {
    let mut h = Sha256::new();
    for t in tables::DIVISION_TABLES {
        let batches = query(
            ctx,
            &format!("SELECT * FROM {} ORDER BY code", t.name),
            "divisions",
        )
        .await?;
        h.update(t.name.as_bytes());
        for b in &batches {
            for c in b.columns() {
                let a = cast(c, &DataType::Utf8).map_err(|e| Error::sql("divisions")(e.into()))?;
                for v in a.as_string::<i32>().iter() {
                    h.update(v.unwrap_or("\\N").as_bytes());
                    h.update([0]);
                }
            }
        }
    }
    Ok(hex::encode(h.finalize()))
}

/// A digest of the model files and the targets.
fn models_sha256() -> String {
    let mut h = Sha256::new();
    for (path, text) in model::FILES {
        h.update(path.as_bytes());
        h.update([0]);
        h.update(text.as_bytes());
        h.update([0]);
    }
    h.update(TARGETS_CSV.as_bytes());
    hex::encode(h.finalize())
}

#[allow(clippy::too_many_arguments)]
fn transforms_row(
    run_id: &str,
    mode: &str,
    from: &str,
    quarters: i64,
    reason: &str,
    max_load_seq: i64,
    divisions: &str,
    models: &str,
    rows: i64,
    started_at: i64,
    finished_at: i64,
) -> datafusion::error::Result<RecordBatch> {
    use datafusion::arrow::array::{Int64Array, StringArray, TimestampMicrosecondArray};
    let s = |v: &str| Arc::new(StringArray::from(vec![v.to_string()])) as Arc<dyn Array>;
    let i = |v: i64| Arc::new(Int64Array::from(vec![v])) as Arc<dyn Array>;
    let ts = |v: i64| {
        Arc::new(TimestampMicrosecondArray::from(vec![v]).with_timezone("UTC")) as Arc<dyn Array>
    };
    Ok(RecordBatch::try_new(
        tables::TRANSFORMS.schema(),
        vec![
            s(run_id),
            s(mode),
            s(from),
            i(quarters),
            s(reason),
            i(max_load_seq),
            s(divisions),
            s(models),
            i(rows),
            ts(started_at),
            ts(finished_at),
        ],
    )?)
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
    let tests_started = Instant::now();
    for test in &m.meta.tests {
        let sql = test.sql(&m.name);
        let bad = query(ctx, &sql, &m.name).await?;
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
    let tests_millis = tests_started.elapsed().as_millis();
    info!(model = %m.name, rows, millis, tests_millis, "model");
    Ok(ModelRun {
        name: m.name.clone(),
        rows,
        millis,
        tests_millis,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{DataTest, Meta};

    fn model(name: &str, depends: &[&str], tests: Vec<DataTest>, sql: &str) -> Model {
        Model {
            name: name.into(),
            path: "test.sql",
            meta: Meta {
                doc: String::new(),
                depends: depends.iter().map(|s| s.to_string()).collect(),
                indicators: vec![],
                output: false,
                columns: Default::default(),
                tests,
            },
            sql: sql.into(),
        }
    }

    async fn ctx() -> SessionContext {
        let ctx = SessionContext::new();
        udf::register(&ctx);
        ctx.sql("CREATE VIEW places AS SELECT * FROM (VALUES ('410102'), ('410122')) AS t(code)")
            .await
            .unwrap();
        ctx
    }

    #[tokio::test]
    async fn a_failing_data_test_names_the_model_the_test_and_sample_rows() {
        let ctx = ctx().await;
        let m = model(
            "dupes",
            &[],
            vec![DataTest::Unique(vec!["k".into()])],
            "SELECT * FROM (VALUES (1, 'a'), (1, 'b'), (2, 'c')) AS t(k, v)",
        );
        let err = run_model(&ctx, &m).await.unwrap_err().to_string();
        assert!(
            err.contains("model dupes: data test unique(k) failed: 1 offending row(s)"),
            "{err}"
        );
        assert!(
            err.contains("| 1 | 2      |"),
            "a sample of the rows: {err}"
        );
    }

    #[tokio::test]
    async fn each_kind_of_data_test_passes_and_fails() {
        let ctx = ctx().await;
        let cases = [
            (
                DataTest::NotNull(vec!["code".into()]),
                "SELECT '410102' AS code",
                true,
            ),
            (
                DataTest::NotNull(vec!["code".into()]),
                "SELECT CAST(NULL AS VARCHAR) AS code",
                false,
            ),
            (
                DataTest::AcceptedValues {
                    column: "scope".into(),
                    values: vec!["county".into(), "city".into()],
                },
                "SELECT 'county' AS scope UNION ALL SELECT CAST(NULL AS VARCHAR)",
                true,
            ),
            (
                DataTest::AcceptedValues {
                    column: "scope".into(),
                    values: vec!["county".into()],
                },
                "SELECT 'town' AS scope",
                false,
            ),
            (
                DataTest::Relationship {
                    column: "code".into(),
                    to: "places.code".into(),
                },
                "SELECT '410122' AS code UNION ALL SELECT CAST(NULL AS VARCHAR)",
                true,
            ),
            (
                DataTest::Relationship {
                    column: "code".into(),
                    to: "places.code".into(),
                },
                "SELECT '510104' AS code",
                false,
            ),
        ];
        for (i, (test, sql, passes)) in cases.into_iter().enumerate() {
            let name = format!("m{i}");
            let m = model(&name, &[], vec![test.clone()], sql);
            let got = run_model(&ctx, &m).await;
            assert_eq!(got.is_ok(), passes, "{test:?} on {sql}: {got:?}");
        }
    }

    #[tokio::test]
    async fn declared_depends_must_match_what_the_sql_reads() {
        let ctx = ctx().await;
        let ok = model(
            "a",
            &["places"],
            vec![],
            "WITH x AS (SELECT code FROM places) SELECT * FROM x",
        );
        assert!(run_model(&ctx, &ok).await.is_ok());
        let missing = model("b", &[], vec![], "SELECT code FROM places");
        let err = run_model(&ctx, &missing).await.unwrap_err().to_string();
        assert!(
            err.contains("declared depends {}, but the SQL reads {\"places\"}"),
            "{err}"
        );
        let extra = model(
            "c",
            &["places", "counties"],
            vec![],
            "SELECT code FROM places",
        );
        assert!(run_model(&ctx, &extra).await.is_err());
    }
}
