//! The `plsw` command line: one subcommand per stage.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use plsw_ingest::{feeds, source::Encoding, FileReport, LoadOptions, Outcome};
use plsw_schemas::tables;
use plsw_store::{Divisions, Warehouse};

use crate::config::{self, FileConfig};
use crate::generate;

/// Writes to stdout; a closed pipe (`plsw sql … | head`) ends the output quietly instead of
/// panicking.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout().lock(), $($arg)*);
    }};
}

macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

/// plsw: the analytics warehouse of the province's public legal service system.
#[derive(Debug, Parser)]
#[command(name = "plsw", version, about)]
pub struct Cli {
    /// Warehouse location: a directory or an object-store URL [default: ./warehouse]
    #[arg(long, env = "PLSW_WAREHOUSE", global = true)]
    pub warehouse: Option<String>,

    /// Config file [default: ./plsw.toml when present]
    #[arg(long, env = "PLSW_CONFIG", global = true)]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// Whether this process runs with glibc's malloc tuned ([`crate::malloc`]). Every command
    /// does but `plsw bench`: its floors run in its own process, on glibc's defaults, which is
    /// how a floor runs fastest (a fixed threshold maps and zeroes every large buffer afresh);
    /// the commands it measures are child processes and tune themselves.
    pub fn tunes_malloc(&self) -> bool {
        !matches!(self.command, Command::Bench { .. })
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Load feed files (CSV in UTF-8 or GB18030, or XLSX) exactly once.
    Ingest {
        #[command(subcommand)]
        feed: IngestFeed,
    },
    /// Reference data: the administrative divisions.
    Seeds {
        #[command(subcommand)]
        action: SeedsAction,
    },
    /// Compute the indicators: run the SQL models and commit `indicators` (only the quarters
    /// the loads since the last run touch, unless --full).
    Transform {
        /// Recompute every quarter, not only those the loads since the last run touch
        #[arg(long)]
        full: bool,
    },
    /// List the SQL models: inputs, outputs, the indicators each computes.
    Models,
    /// API tokens of the member units.
    Tokens {
        #[command(subcommand)]
        action: TokensAction,
    },
    /// Serve the query API on localhost.
    Serve {
        /// Address to listen on
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: String,
    },
    /// Run one read-only SQL statement over every warehouse table and view.
    Sql {
        /// SELECT, WITH or EXPLAIN
        sql: String,
        #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
        format: OutputFormat,
    },
    /// Score and rank every county and city for a quarter; publish it, or read a publication.
    Assess(AssessArgs),
    /// Pull a feed from its upstream API, incrementally from the warehouse's watermark.
    Pull {
        #[command(subcommand)]
        feed: PullFeed,
    },
    /// Write a synthetic province-year in the exact feed formats, on the real divisions.
    Generate(generate::Args),
    /// Serve generated work orders through the online platform's API (a stand-in for demos
    /// and tests, with optional faults).
    Upstream(UpstreamArgs),
    /// Benchmarks: ingest, transform and API at the given scales, each beside a floor (make
    /// bench). Keeps its data under --dir.
    Bench {
        /// Where data, loaded warehouses and results are kept
        #[arg(long, default_value = "bench")]
        dir: PathBuf,
        /// Scales to run, e.g. 1,10 (province-years)
        #[arg(long, value_delimiter = ',', default_value = "1,10")]
        scales: Vec<f64>,
        /// Seconds of load per concurrency level of the API bench
        #[arg(long, default_value_t = 5)]
        api_seconds: u64,
        /// Run only these parts, e.g. ingest or transform,api (default: all); the results go
        /// to results/<date>-<parts>.json, leaving the day's whole run in place
        #[arg(long, value_delimiter = ',', value_enum)]
        only: Vec<crate::bench::Part>,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokensAction {
    /// Create a token for a member unit; it is printed once and stored only as a hash
    Create {
        /// The member unit (seeds/member_units.csv), e.g. sfj
        #[arg(long)]
        unit: String,
        /// admin, analyst or viewer
        #[arg(long)]
        role: String,
        /// province, or city and county codes, e.g. 410100,419001 [default: province]
        #[arg(long, default_value = "province")]
        scope: String,
    },
    /// Revoke a token by its id (see `plsw tokens list`)
    Revoke { token_id: String },
    /// List the tokens (ids, units, roles, scopes; never the tokens)
    List,
}

#[derive(Debug, Subcommand)]
pub enum PullFeed {
    /// Work-order versions of the online platform (F2), exactly once
    WorkOrders(PullArgs),
}

#[derive(Debug, clap::Args)]
pub struct PullArgs {
    /// The platform's base URL (the API is under /api/v1/work-orders) [default: from plsw.toml]
    #[arg(long)]
    pub url: Option<String>,
    /// Read the bearer token from this environment variable [default: from plsw.toml]
    #[arg(long)]
    pub token_env: Option<String>,
    /// Items per page to ask for
    #[arg(long, default_value_t = 1000)]
    pub page_size: u32,
    /// Start from this instant (RFC 3339) instead of the warehouse's watermark
    #[arg(long)]
    pub since: Option<String>,
    /// Commit after about this many items
    #[arg(long, default_value_t = 100_000)]
    pub commit_every: usize,
    /// Retries of one request before the pull fails
    #[arg(long, default_value_t = 8)]
    pub max_retries: u32,
    /// First back-off between retries (doubles each time, with jitter, up to 30s)
    #[arg(long, default_value = "500ms", value_parser = parse_duration)]
    pub retry_base: std::time::Duration,
    /// Connect timeout
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub connect_timeout: std::time::Duration,
    /// Longest wait for the next bytes of a response
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub read_timeout: std::time::Duration,
}

#[derive(Debug, clap::Args)]
pub struct UpstreamArgs {
    /// Directory of work-order versions as JSON lines (the generator's work_orders/)
    #[arg(long)]
    pub dir: PathBuf,
    /// Address to listen on (127.0.0.1:0 picks a free port)
    #[arg(long, default_value = "127.0.0.1:18348")]
    pub addr: String,
    /// Write the bound address to this file once listening
    #[arg(long)]
    pub addr_file: Option<PathBuf>,
    /// Require this environment variable's value as the bearer token
    #[arg(long)]
    pub token_env: Option<String>,
    /// Faults by request number, e.g. 503:7,429:50,drop:11,repeat:5,overlap:6,resend:9,stall:13
    #[arg(long, default_value = "")]
    pub faults: String,
}

/// Options shared by every file feed.
#[derive(Debug, clap::Args)]
pub struct FileArgs {
    /// Files, directories or globs; loaded in sorted path order
    #[arg(required = true)]
    pub paths: Vec<String>,
    /// Force the CSV encoding (utf-8 or gb18030) instead of detecting it
    #[arg(long)]
    pub encoding: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct SnapshotArgs {
    /// The date the registry is as of (YYYY-MM-DD) [default: today, local time]
    #[arg(long)]
    pub as_of: Option<String>,
    #[command(flatten)]
    pub files: FileArgs,
}

#[derive(Debug, Subcommand)]
pub enum IngestFeed {
    /// 12348 hotline call detail records (F1)
    Hotline(FileArgs),
    /// Case-management exports (F3)
    Cases(FileArgs),
    /// Platform registry snapshot
    Platforms(SnapshotArgs),
    /// Staff registry snapshot
    Staff(SnapshotArgs),
    /// Funding facts
    Funding(FileArgs),
    /// Population facts
    Population(FileArgs),
}

#[derive(Debug, Subcommand)]
pub enum SeedsAction {
    /// Replace the divisions with cities.csv, counties.csv, townships.csv, villages.csv of DIR
    Load { dir: PathBuf },
}

#[derive(Debug, clap::Args)]
pub struct AssessArgs {
    /// The quarter, e.g. 2025Q3
    #[arg(long)]
    quarter: String,
    #[arg(long, value_enum, default_value_t = AssessFormat::Table)]
    format: AssessFormat,
    /// Write to this file instead of standard output (required for xlsx)
    #[arg(long)]
    out: Option<PathBuf>,
    /// A folder with targets.csv and/or assessment.toml replacing the defaults of seeds/
    #[arg(long)]
    seeds: Option<PathBuf>,
    /// Store the assessment as the quarter's next revision, with the versions it read
    #[arg(long, conflicts_with = "published")]
    publish: bool,
    /// Show the quarter's published assessment (its latest revision, or --revision) as published
    #[arg(long)]
    published: bool,
    /// With --published: which revision
    #[arg(long, requires = "published")]
    revision: Option<i64>,
    /// With --published: recompute it at the versions and with the method it recorded, and
    /// check that the result is byte-identical
    #[arg(long, requires = "published")]
    verify: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AssessFormat {
    Table,
    Json,
    Xlsx,
    Html,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum OutputFormat {
    Table,
    Csv,
    Json,
}

/// Runs the command; `Ok(false)` means it ran but something failed (exit code 1).
pub async fn run(cli: Cli) -> anyhow::Result<bool> {
    let file = FileConfig::load(cli.config.as_deref())?;
    let location = config::warehouse(cli.warehouse.as_deref(), &file);
    match cli.command {
        Command::Generate(args) => {
            let summary = generate::run(&args)?;
            outln!("{summary}");
            Ok(true)
        }
        Command::Ingest { feed } => ingest(&location, feed).await,
        Command::Bench {
            dir,
            scales,
            api_seconds,
            only,
        } => {
            let table = crate::bench::run(&dir, &scales, api_seconds, &only).await?;
            outln!("{table}");
            Ok(true)
        }
        Command::Assess(args) => {
            let wh = open(&location).await?;
            assess(&wh, args).await
        }
        Command::Pull {
            feed: PullFeed::WorkOrders(args),
        } => {
            let wh = open(&location).await?;
            pull_work_orders(&wh, &file, args).await
        }
        Command::Upstream(args) => serve_upstream(args).await,
        Command::Transform { full } => {
            let wh = open(&location).await?;
            let t0 = std::time::Instant::now();
            let report = plsw_transform::run(&wh, plsw_transform::Options { full }).await?;
            for s in &report.states {
                outln!(
                    "state    {:<18} {:>9} rows  {:>6} ms  (current rows after load #{})",
                    s.table,
                    s.rows,
                    s.millis,
                    s.seq
                );
            }
            for m in &report.models {
                outln!(
                    "model    {:<18} {:>9} rows  {:>6} ms  (tests {} ms)",
                    m.name,
                    m.rows,
                    m.millis,
                    m.tests_millis
                );
            }
            let span = match (report.quarters.first(), report.quarters.last()) {
                (Some(a), Some(b)) if a == b => a.clone(),
                (Some(a), Some(b)) => format!("{a}–{b}"),
                _ => "no quarter".into(),
            };
            match &report.mode {
                plsw_transform::Mode::UpToDate => {
                    outln!("indicators are up to date: no committed load since the last run")
                }
                plsw_transform::Mode::Full { reason } => outln!(
                    "full run ({reason}): {} rows of indicators for {span} in {:.1} s",
                    report.indicator_rows,
                    t0.elapsed().as_secs_f64()
                ),
                plsw_transform::Mode::Incremental { reason, .. } => {
                    outln!(
                        "incremental run ({reason}): recomputed {span}, {} rows of indicators, in {:.1} s",
                        report.indicator_rows,
                        t0.elapsed().as_secs_f64()
                    );
                    if !report.skipped.is_empty() {
                        outln!(
                            "left alone (the new loads reach none of them, and the quarters stay): {}",
                            report.skipped.join(", ")
                        );
                    }
                }
            }
            Ok(true)
        }
        Command::Tokens { action } => {
            let wh = open(&location).await?;
            tokens(&wh, action).await
        }
        Command::Serve { addr } => {
            let wh = open(&location).await?;
            let app = plsw_api::app(plsw_api::AppState::new(wh, plsw_api::Limits::default()));
            let listener = tokio::net::TcpListener::bind(&addr)
                .await
                .with_context(|| format!("listening on {addr}"))?;
            outln!("serving the API at http://{}", listener.local_addr()?);
            axum::serve(listener, app)
                .with_graceful_shutdown(async { shutdown_signal().await })
                .await
                .context("serving the API")?;
            Ok(true)
        }
        Command::Models => {
            for m in plsw_transform::model::load()? {
                outln!("{}  ({})", m.name, m.path);
                outln!("  {}", m.meta.doc);
                outln!("  reads: {}", m.meta.depends.join(", "));
                if m.meta.output {
                    outln!("  writes: table {}", m.name);
                }
                if !m.meta.indicators.is_empty() {
                    outln!("  computes: {}", m.meta.indicators.join(", "));
                }
                for t in &m.meta.tests {
                    outln!("  test: {}", t.describe());
                }
            }
            Ok(true)
        }
        Command::Seeds {
            action: SeedsAction::Load { dir },
        } => {
            let wh = open(&location).await?;
            let d = Divisions::from_dir(&dir)?;
            d.store(&wh).await?;
            outln!(
                "divisions replaced: {} cities, {} counties, {} townships, {} villages",
                d.count(&tables::CITIES),
                d.count(&tables::COUNTIES),
                d.count(&tables::TOWNSHIPS),
                d.count(&tables::VILLAGES)
            );
            Ok(true)
        }
        Command::Sql { sql, format } => {
            let wh = open(&location).await?;
            let ctx = plsw_query::session(&wh).await?;
            let batches = plsw_query::run(&ctx, &sql).await?;
            let format = match format {
                OutputFormat::Table => plsw_query::Format::Table,
                OutputFormat::Csv => plsw_query::Format::Csv,
                OutputFormat::Json => plsw_query::Format::Json,
            };
            out!("{}", plsw_query::render(&batches, format)?);
            if format == plsw_query::Format::Table {
                outln!("");
            }
            Ok(true)
        }
    }
}

async fn open(location: &str) -> anyhow::Result<Warehouse> {
    Warehouse::open(location)
        .await
        .with_context(|| format!("opening the warehouse at {location}"))
}

async fn ingest(location: &str, feed: IngestFeed) -> anyhow::Result<bool> {
    let (feed, files, as_of) = match feed {
        IngestFeed::Hotline(f) => (&feeds::HOTLINE, f, None),
        IngestFeed::Cases(f) => (&feeds::CASES, f, None),
        IngestFeed::Funding(f) => (&feeds::FUNDING, f, None),
        IngestFeed::Population(f) => (&feeds::POPULATION, f, None),
        IngestFeed::Platforms(s) => (&feeds::PLATFORMS, s.files, Some(as_of(s.as_of)?)),
        IngestFeed::Staff(s) => (&feeds::STAFF, s.files, Some(as_of(s.as_of)?)),
    };
    let encoding = match files.encoding.as_deref() {
        None => None,
        Some(e) => Some(
            Encoding::parse(e)
                .with_context(|| format!("unknown encoding {e:?}: use utf-8 or gb18030"))?,
        ),
    };
    let opts = LoadOptions {
        as_of,
        encoding,
        progress: true,
    };
    // A load opens the tables it reads and writes, not all 17 (`Warehouse::open_with`). (A pull
    // opens all of them: a group at or before its watermark reads a session of every table.)
    let mut used = vec![feed.table, &tables::QUARANTINE, &tables::LOADS];
    used.extend(tables::DIVISION_TABLES);
    let wh = Warehouse::open_with(location, &used)
        .await
        .with_context(|| format!("opening the warehouse at {location}"))?;
    let reports = plsw_ingest::load_paths(&wh, feed, &files.paths, &opts).await?;
    print_reports(feed.name, &reports);
    Ok(!reports.iter().any(FileReport::failed))
}

async fn pull_work_orders(
    wh: &Warehouse,
    file: &FileConfig,
    args: PullArgs,
) -> anyhow::Result<bool> {
    use plsw_ingest::pull::{self, rfc3339_utc, PullOptions, RetryPolicy};
    let conf = file.pull.as_ref().and_then(|p| p.work_orders.clone());
    let url = args
        .url
        .or_else(|| conf.as_ref().and_then(|c| c.url.clone()))
        .context("give --url, or [pull.work_orders] url in plsw.toml")?;
    let base_url = url::Url::parse(&url).with_context(|| format!("--url {url:?} is not a URL"))?;
    let token = config::work_orders_token(args.token_env.as_deref(), conf.as_ref())?;
    let since = match args.since.as_deref() {
        None => None,
        Some(s) => Some(
            plsw_ingest::work_orders::rfc3339_micros(s)
                .with_context(|| format!("--since {s:?} is not an RFC 3339 instant"))?,
        ),
    };
    let opts = PullOptions {
        token,
        page_size: args.page_size,
        since,
        commit_every: args.commit_every,
        retry: RetryPolicy {
            max_retries: args.max_retries,
            base: args.retry_base,
            ..RetryPolicy::default()
        },
        connect_timeout: args.connect_timeout,
        read_timeout: args.read_timeout,
        progress: true,
        ..PullOptions::new(base_url)
    };
    let ts = |t: Option<i64>| t.map(rfc3339_utc).unwrap_or_else(|| "the beginning".into());
    match pull::pull_work_orders(wh, &opts).await {
        Ok(r) => {
            outln!(
                "pulled   {}  from {}: pages={} requests={} retries={}",
                r.source,
                ts(r.from),
                r.pages,
                r.requests,
                r.retries
            );
            let loads = match (r.loads.first(), r.loads.last()) {
                (Some(a), Some(b)) if a == b => format!("load #{a}"),
                (Some(a), Some(b)) => format!("loads #{a}-#{b}"),
                _ => "nothing new, nothing committed".into(),
            };
            outln!(
                "work_orders: read={} accepted={} quarantined={} repeated={} stored={} (new or changed versions); watermark {}; {loads}",
                r.read,
                r.accepted,
                r.quarantined,
                r.repeated,
                r.stored,
                ts(r.watermark)
            );
            Ok(true)
        }
        Err(e) => {
            // Whatever committed before the failure stays, with its watermark.
            let book = wh.load_book().await?;
            Err(anyhow::Error::new(e).context(format!(
                "pull failed; the watermark stays at {} (what was committed stays)",
                ts(book.watermark(pull::FEED))
            )))
        }
    }
}

async fn tokens(wh: &Warehouse, action: TokensAction) -> anyhow::Result<bool> {
    use plsw_api::tokens::{self, Role, Scope};
    let ts = |t: i64| {
        chrono::DateTime::from_timestamp_micros(t)
            .map(|d| d.format("%Y-%m-%d %H:%M:%SZ").to_string())
            .unwrap_or_default()
    };
    match action {
        TokensAction::Create { unit, role, scope } => {
            let role = Role::parse(&role)
                .with_context(|| format!("--role {role:?}: use admin, analyst or viewer"))?;
            let (token, rec) = tokens::create(wh, &unit, role, Scope::parse(&scope)).await?;
            outln!("{token}");
            eprintln!(
                "token {} for {} ({}, scope {}): shown once, keep it secret",
                rec.token_id,
                rec.unit_id,
                rec.role.as_str(),
                rec.scope.as_text()
            );
        }
        TokensAction::Revoke { token_id } => {
            let rec = tokens::revoke(wh, &token_id).await?;
            outln!(
                "revoked {} ({}) at {}",
                rec.token_id,
                rec.unit_id,
                rec.revoked_at.map(ts).unwrap_or_default()
            );
        }
        TokensAction::List => {
            for r in tokens::all(wh).await? {
                outln!(
                    "{}  {:<6} {:<8} {:<20} created {}{}",
                    r.token_id,
                    r.unit_id,
                    r.role.as_str(),
                    r.scope.as_text(),
                    ts(r.created_at),
                    r.revoked_at
                        .map(|t| format!("  revoked {}", ts(t)))
                        .unwrap_or_default()
                );
            }
        }
    }
    Ok(true)
}

async fn serve_upstream(args: UpstreamArgs) -> anyhow::Result<bool> {
    let mut up = crate::upstream::Upstream::from_dir(&args.dir)?;
    if let Some(var) = &args.token_env {
        let token = std::env::var(var).with_context(|| format!("${var} is not set"))?;
        up = up.with_token(&token);
    }
    up.set_faults(crate::upstream::FaultPlan::parse(&args.faults)?);
    let listener = tokio::net::TcpListener::bind(&args.addr)
        .await
        .with_context(|| format!("listening on {}", args.addr))?;
    let addr = listener.local_addr()?;
    if let Some(f) = &args.addr_file {
        std::fs::write(f, addr.to_string()).with_context(|| format!("writing {}", f.display()))?;
    }
    outln!(
        "serving {} work-order versions at http://{addr}/api/v1/work-orders",
        up.items().len()
    );
    up.serve(listener, async {
        shutdown_signal().await;
    })
    .await?;
    Ok(true)
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

/// `500ms`, `2s`, `1m`, or a number of seconds.
fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let t = text.trim();
    let (num, unit) = t
        .find(|c: char| !c.is_ascii_digit())
        .map_or((t, "s"), |i| t.split_at(i));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 500ms, 10s or 1m"))?;
    match unit {
        "ms" => Ok(std::time::Duration::from_millis(n)),
        "s" => Ok(std::time::Duration::from_secs(n)),
        "m" => Ok(std::time::Duration::from_secs(n * 60)),
        _ => Err(format!("{text:?} is not a duration like 500ms, 10s or 1m")),
    }
}

fn as_of(text: Option<String>) -> anyhow::Result<i32> {
    match text {
        Some(t) => plsw_ingest::parse::date(&t)
            .with_context(|| format!("--as-of {t:?} is not a date (YYYY-MM-DD)")),
        None => Ok(plsw_ingest::parse::local_day(
            chrono::Utc::now().timestamp_micros(),
        )),
    }
}

fn print_reports(feed: &str, reports: &[FileReport]) {
    let (mut read, mut acc, mut quar, mut warn, mut failed, mut skipped) = (0, 0, 0, 0, 0, 0);
    for r in reports {
        match &r.outcome {
            Outcome::Loaded { load_seq } => outln!(
                "loaded   {}  [{}] read={} accepted={} quarantined={}{}  (load #{load_seq})",
                r.path,
                r.encoding.unwrap_or("?"),
                r.read,
                r.accepted,
                r.quarantined,
                if r.warnings > 0 {
                    format!(" warnings={}", r.warnings)
                } else {
                    String::new()
                }
            ),
            Outcome::Skipped { load_seq } => {
                skipped += 1;
                outln!("skipped  {}  already loaded (load #{load_seq})", r.path)
            }
            Outcome::Failed { message } => {
                failed += 1;
                outln!("FAILED   {}  {message}", r.path)
            }
        }
        if matches!(r.outcome, Outcome::Loaded { .. }) {
            read += r.read;
            acc += r.accepted;
            quar += r.quarantined;
            warn += r.warnings;
        }
    }
    outln!(
        "{feed}: {} file(s): {} loaded, {skipped} skipped, {failed} failed; read={read} accepted={acc} quarantined={quar} warnings={warn}",
        reports.len(),
        reports.len() - skipped - failed
    );
}

/// Checks a condition at the end of a command, for use in `main`.
pub fn exit_status(ok: anyhow::Result<bool>) -> std::process::ExitCode {
    match ok {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

/// `plsw assess`.
async fn assess(wh: &Warehouse, args: AssessArgs) -> anyhow::Result<bool> {
    use plsw_assess::{publish, report, Method};
    if args.format == AssessFormat::Xlsx && args.out.is_none() {
        anyhow::bail!("--format xlsx needs --out FILE");
    }
    let (assessment, json) = if args.published {
        if args.seeds.is_some() {
            anyhow::bail!("--seeds does not apply to --published: a publication keeps its method");
        }
        let p = publish::published(wh, &args.quarter, args.revision).await?;
        eprintln!(
            "{} revision {} published {} by {} (sha256 {})",
            p.quarter,
            p.revision,
            p.published_at_text(),
            p.published_by,
            &p.result_sha256[..16]
        );
        if args.verify {
            let again = publish::recompute(wh, &p).await?;
            if again != p.result_json {
                eprintln!("NOT reproduced: recomputing at the recorded versions gives other bytes");
                return Ok(false);
            }
            eprintln!("reproduced: recomputing at the recorded versions gives the same bytes");
        }
        (p.assessment()?, p.result_json)
    } else {
        let method = match &args.seeds {
            Some(dir) => Method::from_dir(dir)?,
            None => Method::builtin()?,
        };
        if args.publish {
            let by = std::env::var("USER").unwrap_or_else(|_| "plsw".into());
            let p = publish::publish(wh, &args.quarter, &method, &by).await?;
            eprintln!(
                "published {} revision {} (sha256 {})",
                p.quarter,
                p.revision,
                &p.result_sha256[..16]
            );
            (p.assessment()?, p.result_json)
        } else {
            let a = plsw_assess::compute(wh, &args.quarter, &method).await?;
            let json = a.to_json();
            (a, json)
        }
    };
    let bytes = match args.format {
        AssessFormat::Json => json.into_bytes(),
        AssessFormat::Xlsx => report::xlsx(&assessment)?,
        AssessFormat::Html => report::html(&assessment).into_bytes(),
        AssessFormat::Table => assessment_table(&assessment).into_bytes(),
    };
    match &args.out {
        Some(path) => {
            std::fs::write(path, &bytes).with_context(|| format!("writing {}", path.display()))?;
            eprintln!("wrote {}", path.display());
        }
        None => {
            use std::io::Write as _;
            std::io::stdout().lock().write_all(&bytes)?;
        }
    }
    Ok(true)
}

/// Cities, then counties: rank, place, score, changes, statuses.
fn assessment_table(a: &plsw_assess::Assessment) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let signed = |v: Option<f64>, d: usize| match v {
        None => "—".to_string(),
        Some(v) if v > 0.0 => format!("+{v:.d$}"),
        Some(v) => format!("{v:.d$}"),
    };
    for (title, entries) in [("省辖市", &a.cities), ("县（市、区）", &a.counties)] {
        let _ = writeln!(
            out,
            "{} {} — {title} ({}; change against {})",
            a.quarter,
            plsw_assess::report::quarter_zh(&a.quarter),
            entries.len(),
            a.previous_quarter
        );
        let _ = writeln!(
            out,
            "{:>4} {:>5}  {:<8} {:<14} {:>7} {:>7} {:>5}  green/amber/red",
            "rank", "city#", "code", "name", "score", "Δscore", "Δrank"
        );
        for e in entries.iter() {
            let name: String = e.name.chars().take(7).collect();
            let pad = 14usize.saturating_sub(name.chars().count() * 2);
            let _ = writeln!(
                out,
                "{:>4} {:>5}  {:<8} {name}{} {:>7} {:>7} {:>5}  {}/{}/{}",
                e.rank.map_or("—".into(), |r| r.to_string()),
                e.rank_in_city.map_or(String::new(), |r| r.to_string()),
                e.code,
                " ".repeat(pad),
                e.score.map_or("—".into(), |s| format!("{s:.2}")),
                signed(e.score_change, 2),
                signed(e.rank_change.map(|v| v as f64), 0),
                e.green,
                e.amber,
                e.red
            );
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_but_the_bench_tunes_malloc() {
        let tunes = |args: &[&str]| Cli::try_parse_from(args).unwrap().tunes_malloc();
        assert!(tunes(&["plsw", "sql", "SELECT 1"]));
        assert!(tunes(&["plsw", "ingest", "cases", "a.csv"]));
        assert!(!tunes(&["plsw", "bench"]));
        assert!(!tunes(&[
            "plsw",
            "--warehouse",
            "w",
            "bench",
            "--scales",
            "1"
        ]));
    }

    #[test]
    fn durations() {
        use std::time::Duration;
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("5h").is_err());
    }
}
