//! The `plsw` command line: one subcommand per stage.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use plsw_ingest::{feeds, source::Encoding, FileReport, LoadOptions, Outcome};
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
    /// Run one read-only SQL statement over every warehouse table and view.
    Sql {
        /// SELECT, WITH or EXPLAIN
        sql: String,
        #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
        format: OutputFormat,
    },
    /// Write a synthetic province-year in the exact feed formats, on the real divisions.
    Generate(generate::Args),
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
        Command::Ingest { feed } => {
            let wh = open(&location).await?;
            ingest(&wh, feed).await
        }
        Command::Seeds {
            action: SeedsAction::Load { dir },
        } => {
            let wh = open(&location).await?;
            let d = Divisions::from_dir(&dir)?;
            d.store(&wh).await?;
            outln!(
                "divisions replaced: {} cities, {} counties, {} townships, {} villages",
                d.cities.len(),
                d.counties.len(),
                d.townships.len(),
                d.villages.len()
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

async fn ingest(wh: &Warehouse, feed: IngestFeed) -> anyhow::Result<bool> {
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
    let reports = plsw_ingest::load_paths(wh, feed, &files.paths, &opts).await?;
    print_reports(feed.name, &reports);
    Ok(!reports.iter().any(FileReport::failed))
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
