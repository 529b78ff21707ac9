//! Loading files of a feed exactly once: fingerprint, skip if loaded, stream records through the
//! feed's rules into the raw table and `quarantine`, commit, and record the load last.

use std::io::IsTerminal;
use std::path::Path;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use plsw_store::{Divisions, LoadBook, LoadRecord, Warehouse};
use sha2::{Digest, Sha256};
use tracing::{info, warn};

use crate::batch::{Lineage, QuarantineBatcher, RowBatcher, BATCH_ROWS};
use crate::error::{Error, Result};
use crate::feeds::{Feed, Reject};
use crate::reader::{RawRecord, Records};
use crate::source::{self, Encoding};

/// How to load.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Snapshot date (days since the epoch) for `platforms` and `staff`.
    pub as_of: Option<i32>,
    /// Skip encoding detection.
    pub encoding: Option<Encoding>,
    /// Show a progress bar (on a terminal).
    pub progress: bool,
}

/// What happened to one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Loaded {
        load_seq: i64,
    },
    /// The same feed, content (and as-of date) was loaded before.
    Skipped {
        load_seq: i64,
    },
    Failed {
        message: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileReport {
    pub path: String,
    pub outcome: Outcome,
    pub encoding: Option<&'static str>,
    pub read: i64,
    pub accepted: i64,
    pub quarantined: i64,
    pub warnings: i64,
}

impl FileReport {
    pub fn failed(&self) -> bool {
        matches!(self.outcome, Outcome::Failed { .. })
    }
}

/// The id of a load: the same feed, content and as-of date always give the same id.
pub fn load_id(feed: &str, content_sha256: &str, as_of: Option<i32>) -> String {
    let mut h = Sha256::new();
    h.update(feed.as_bytes());
    h.update(b"\n");
    h.update(as_of.map(|d| d.to_string()).unwrap_or_default().as_bytes());
    h.update(b"\n");
    h.update(content_sha256.as_bytes());
    hex::encode(h.finalize())[..32].to_string()
}

/// Test hook: `PLSW_CRASH_AT=<point>` aborts the process there, as `kill -9` would, so tests can
/// prove a load interrupted at that point leaves the warehouse as it was.
fn crash_point(point: &str) {
    if std::env::var("PLSW_CRASH_AT").is_ok_and(|p| p == point) {
        eprintln!("PLSW_CRASH_AT={point}: aborting");
        std::process::abort();
    }
}

fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// Loads every file of `paths` (files, directories or globs, in sorted order) into `feed`.
/// File-level problems reject that file (recorded in `loads` as failed) and the others go on.
pub async fn load_paths(
    wh: &Warehouse,
    feed: &'static Feed,
    paths: &[String],
    opts: &LoadOptions,
) -> Result<Vec<FileReport>> {
    if feed.is_snapshot() && opts.as_of.is_none() {
        return Err(Error::Usage(format!(
            "{} is a snapshot: give --as-of",
            feed.name
        )));
    }
    let files = source::resolve(paths)?;
    let divisions = Divisions::load(wh).await?;
    let mut book = wh.load_book().await?;
    let mut reports = Vec::with_capacity(files.len());
    for path in files {
        reports.push(load_file(wh, &mut book, &divisions, feed, &path, opts).await?);
    }
    Ok(reports)
}

/// Loads one file. Returns Err only when the warehouse itself fails; a bad file is a report.
pub async fn load_file(
    wh: &Warehouse,
    book: &mut LoadBook,
    divisions: &Divisions,
    feed: &'static Feed,
    path: &Path,
    opts: &LoadOptions,
) -> Result<FileReport> {
    let started_at = now_micros();
    let src_name = path.display().to_string();
    let mut report = FileReport {
        path: src_name.clone(),
        outcome: Outcome::Failed {
            message: String::new(),
        },
        encoding: None,
        read: 0,
        accepted: 0,
        quarantined: 0,
        warnings: 0,
    };
    let fp = match source::fingerprint(path, opts.encoding) {
        Ok(fp) => fp,
        Err(e) => {
            // Unreadable: no content to identify the load by, so it is recorded by path.
            let id = load_id(feed.name, &format!("unreadable:{src_name}"), opts.as_of);
            return fail(
                wh, book, feed, &src_name, id, None, started_at, opts, report, e,
            )
            .await;
        }
    };
    report.encoding = Some(fp.encoding.name());
    let id = load_id(feed.name, &fp.sha256, opts.as_of);
    if let Some(done) = book.committed(&id).cloned() {
        info!(file = %src_name, load_seq = done.load_seq, "already loaded, skipped");
        report.outcome = Outcome::Skipped {
            load_seq: done.load_seq,
        };
        report.read = done.rows_read;
        report.accepted = done.rows_accepted;
        report.quarantined = done.rows_quarantined;
        report.warnings = done.warnings;
        return Ok(report);
    }
    match stream(
        wh,
        divisions,
        feed,
        path,
        fp.encoding,
        &id,
        started_at,
        opts,
        &mut report,
    )
    .await
    {
        Ok(()) => {}
        Err(e) if e.is_file_level() => {
            return fail(
                wh,
                book,
                feed,
                &src_name,
                id,
                Some(&fp),
                started_at,
                opts,
                report,
                e,
            )
            .await
        }
        Err(e) => return Err(e),
    }
    crash_point("before_load_commit");
    let rec = wh
        .record_load(
            book,
            LoadRecord {
                load_id: id,
                load_seq: 0,
                feed: feed.name.to_string(),
                source: src_name.clone(),
                content_sha256: fp.sha256.clone(),
                as_of: opts.as_of,
                encoding: Some(fp.encoding.name().to_string()),
                status: "committed".into(),
                message: None,
                rows_read: report.read,
                rows_accepted: report.accepted,
                rows_quarantined: report.quarantined,
                warnings: report.warnings,
                bytes: fp.bytes as i64,
                started_at,
                loaded_at: now_micros(),
            },
        )
        .await?;
    report.outcome = Outcome::Loaded {
        load_seq: rec.load_seq,
    };
    info!(
        file = %src_name,
        read = report.read,
        accepted = report.accepted,
        quarantined = report.quarantined,
        warnings = report.warnings,
        "loaded"
    );
    Ok(report)
}

#[allow(clippy::too_many_arguments)]
async fn fail(
    wh: &Warehouse,
    book: &mut LoadBook,
    feed: &Feed,
    src_name: &str,
    id: String,
    fp: Option<&source::Fingerprint>,
    started_at: i64,
    opts: &LoadOptions,
    mut report: FileReport,
    e: Error,
) -> Result<FileReport> {
    let message = e.to_string();
    warn!(file = %src_name, error = %message, "file rejected");
    // Nothing of the file is visible: its rows (if any were written) have no committed load.
    wh.record_load(
        book,
        LoadRecord {
            load_id: id,
            load_seq: 0,
            feed: feed.name.to_string(),
            source: src_name.to_string(),
            content_sha256: fp.map(|f| f.sha256.clone()).unwrap_or_default(),
            as_of: opts.as_of,
            encoding: fp.map(|f| f.encoding.name().to_string()),
            status: "failed".into(),
            message: Some(message.clone()),
            rows_read: 0,
            rows_accepted: 0,
            rows_quarantined: 0,
            warnings: 0,
            bytes: fp.map(|f| f.bytes as i64).unwrap_or(0),
            started_at,
            loaded_at: now_micros(),
        },
    )
    .await?;
    report.read = 0;
    report.accepted = 0;
    report.quarantined = 0;
    report.warnings = 0;
    report.outcome = Outcome::Failed { message };
    Ok(report)
}

#[allow(clippy::too_many_arguments)]
async fn stream(
    wh: &Warehouse,
    divisions: &Divisions,
    feed: &'static Feed,
    path: &Path,
    encoding: Encoding,
    id: &str,
    started_at: i64,
    opts: &LoadOptions,
    report: &mut FileReport,
) -> Result<()> {
    let required = |c: &str| !feed.optional_headers.contains(&c);
    let mut records = Records::open(path, encoding, feed.table, &required)?;
    let lineage = Lineage {
        load_id: id.to_string(),
        feed: feed.name,
        source: path.display().to_string(),
        loaded_at: started_at,
        as_of: opts.as_of,
    };
    // A writer is None when a killed earlier run already committed this load's rows there.
    let mut raw = wh.writer(feed.table, id).await?;
    let mut quarantine = wh.writer(&plsw_schemas::tables::QUARANTINE, id).await?;
    let mut rows = RowBatcher::new(feed.table, lineage.clone());
    let mut bad = QuarantineBatcher::new(lineage);
    let bar = progress_bar(opts.progress, path);
    let t0 = Instant::now();
    let mut rec = RawRecord::default();
    let ncols = feed.table.columns.len();
    while records.next_into(&mut rec, path)? {
        if encoding == Encoding::Xlsx && Records::is_blank(&rec) {
            continue;
        }
        report.read += 1;
        let result = if records.well_formed(&rec) {
            feed.convert((0..ncols).map(|c| records.value(&rec, c)), divisions)
        } else {
            Err(Reject {
                reason: "malformed_record".into(),
                message: format!(
                    "the record has {} fields, the header {}",
                    rec.fields.len(),
                    records.header_len()
                ),
            })
        };
        match result {
            Ok(row) => {
                report.accepted += 1;
                report.warnings += i64::from(row.warnings > 0);
                rows.push(&row, rec.position);
                if rows.len() >= BATCH_ROWS {
                    let batch = rows.finish();
                    if let Some(w) = raw.as_mut() {
                        w.write(batch).await?;
                    }
                }
            }
            Err(reject) => {
                report.quarantined += 1;
                bad.push(rec.position, &reject, &records.raw_json(&rec));
                if bad.len() >= BATCH_ROWS {
                    let batch = bad.finish();
                    if let Some(w) = quarantine.as_mut() {
                        w.write(batch).await?;
                    }
                }
            }
        }
        if report.read % 4096 == 0 {
            bar.set_position(report.read as u64);
        }
    }
    // A table with nothing to add gets no commit: a rerun would write nothing there either.
    if let Some(mut w) = raw {
        if !rows.is_empty() {
            w.write(rows.finish()).await?;
        }
        crash_point("before_raw_commit");
        if report.accepted > 0 {
            w.commit().await?;
        }
    }
    crash_point("after_raw_commit");
    if let Some(mut w) = quarantine {
        if bad.len() > 0 {
            w.write(bad.finish()).await?;
        }
        if report.quarantined > 0 {
            w.commit().await?;
        }
    }
    crash_point("after_quarantine_commit");
    bar.finish_and_clear();
    info!(
        file = %path.display(),
        rows_per_s = (report.read as f64 / t0.elapsed().as_secs_f64().max(1e-9)) as u64,
        "streamed"
    );
    Ok(())
}

fn progress_bar(enabled: bool, path: &Path) -> ProgressBar {
    if !enabled || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} {pos} records ({per_sec})")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_message(path.display().to_string());
    bar
}
