//! Loading files of a feed exactly once: fingerprint, skip if loaded, stream records through the
//! feed's rules into the raw table and `quarantine`, commit, and record the load last.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use plsw_store::{BackgroundWriter, Divisions, LoadBook, LoadRecord, Staged, Warehouse};
use sha2::{Digest, Sha256};
use tracing::{debug, info, warn};

use crate::batch::{Lineage, QuarantineBatcher, RowBatcher};
use crate::error::{Error, Result};
use crate::feeds::{Feed, Reject};
use crate::reader::Records;
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
pub(crate) fn crash_point(point: &str) {
    if std::env::var("PLSW_CRASH_AT").is_ok_and(|p| p == point) {
        eprintln!("PLSW_CRASH_AT={point}: aborting");
        std::process::abort();
    }
}

pub(crate) fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// Files are committed in groups: one commit per table for the whole group, then one `loads`
/// commit that marks every file of the group committed. A Delta commit costs tens of
/// milliseconds, so a year of small daily files would otherwise be dominated by commits.
const GROUP_FILES: usize = 64;
/// A group is also committed once it holds this many records.
const GROUP_RECORDS: i64 = 2_000_000;

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
    let files = source::resolve_inputs(paths).await?;
    let mut reports: Vec<FileReport> = Vec::with_capacity(files.len());
    let mut group = Group::default();
    // The next file is fetched before this one streams, and fingerprinted (read whole and
    // hashed) on a hashing thread while this one streams. The first one is hashed while the
    // divisions and the loads are read.
    let mut files = files.into_iter();
    let mut next = match files.next() {
        Some(input) => Some(Ahead::start(input, opts.encoding).await),
        None => None,
    };
    // The loads the two tables' logs hold (for the first file's writers) are read beside the
    // divisions and `loads` (4 ms less to the first file's records). Those two are read one
    // after the other: on two threads, each thread's heap kept what it freed (6-8 MiB more).
    let tables = async {
        wh.read_loads_of(feed.table).await;
        wh.read_loads_of(&plsw_schemas::tables::QUARANTINE).await;
    };
    let read = async {
        let divisions = Divisions::load(wh).await?;
        debug!("divisions read");
        let book = wh.load_book().await?;
        debug!("loads read");
        Ok::<_, Error>((divisions, book))
    };
    let (read, ()) = tokio::join!(read, tables);
    let (divisions, mut book) = read?;
    while let Some(ahead) = next.take() {
        let (name, path, fp, _tmp) = ahead.finish().await;
        if let Some(input) = files.next() {
            next = Some(Ahead::start(input, opts.encoding).await);
        }
        let id = match &fp {
            Ok(fp) => load_id(feed.name, &fp.sha256, opts.as_of),
            // Unreadable: no content to identify the load by, so it is recorded by name.
            Err(_) => load_id(feed.name, &format!("unreadable:{name}"), opts.as_of),
        };
        // The same content twice in one command: commit the first, then the second is skipped.
        if group.files.iter().any(|(_, f)| f.record.load_id == id) {
            group.commit(wh, &mut book, &mut reports).await?;
        }
        // One writer at most finishes beside the next file's reading (small files would
        // otherwise leave one each behind them). A workbook's reading starts by holding its
        // shared-strings table whole: it waits for them all, so that the two do not add up.
        let xlsx = matches!(&fp, Ok(f) if f.encoding == Encoding::Xlsx);
        let settling = Instant::now();
        group.settle(if xlsx { 0 } else { 1 }).await?;
        debug!(file = %name, settle_us = settling.elapsed().as_micros() as u64, "writers settled");
        let staged = stage_file(wh, &book, &divisions, feed, &path, &name, fp, id, opts).await?;
        match staged {
            Staging::Done(report) => reports.push(report),
            Staging::Pending(file) => {
                group.records += file.report.read;
                group.files.push((reports.len(), file));
                reports.push(FileReport {
                    path: name.clone(),
                    outcome: Outcome::Failed {
                        message: "not committed".into(),
                    },
                    encoding: None,
                    read: 0,
                    accepted: 0,
                    quarantined: 0,
                    warnings: 0,
                });
            }
        }
        if group.files.len() >= GROUP_FILES || group.records >= GROUP_RECORDS {
            group.commit(wh, &mut book, &mut reports).await?;
        }
    }
    group.commit(wh, &mut book, &mut reports).await?;
    Ok(reports)
}

/// An input fetched to a local path, its fingerprint being computed on a pooled hashing thread
/// (Tokio's blocking pool ran them on whichever of its threads was free, each with its own
/// glibc arena, and the memory they freed stayed with the process).
struct Ahead {
    name: String,
    path: PathBuf,
    tmp: Option<tempfile::TempPath>,
    fingerprint: Result<tokio::sync::oneshot::Receiver<Result<source::Fingerprint>>>,
}

impl Ahead {
    async fn start(input: source::Input, forced: Option<Encoding>) -> Ahead {
        let name = input.name();
        match input.fetch().await {
            Ok((path, tmp)) => {
                let p = path.clone();
                let fingerprint = Ok(crate::reader::on_hashing_thread(move || {
                    source::fingerprint(&p, forced)
                }));
                Ahead {
                    name,
                    path,
                    tmp,
                    fingerprint,
                }
            }
            // An object that cannot be fetched is a file-level error like an unreadable file.
            Err(e) => Ahead {
                path: PathBuf::from(&name),
                name,
                tmp: None,
                fingerprint: Err(e),
            },
        }
    }

    /// The name, the local path, the fingerprint, and the guard of a fetched temporary file.
    async fn finish(
        self,
    ) -> (
        String,
        PathBuf,
        Result<source::Fingerprint>,
        Option<tempfile::TempPath>,
    ) {
        let fp = match self.fingerprint {
            Ok(result) => result.await.unwrap_or_else(|_| {
                Err(Error::Read {
                    path: self.path.clone(),
                    message: "fingerprinting failed: its thread stopped".into(),
                })
            }),
            Err(e) => Err(e),
        };
        (self.name, self.path, fp, self.tmp)
    }
}

/// A file's raw rows: their writer, maybe still encoding the last batches while the next file
/// is read, or the files it staged.
enum RawStage {
    Encoding(BackgroundWriter),
    Staged(Staged),
}

impl RawStage {
    async fn staged(self) -> Result<Staged> {
        Ok(match self {
            RawStage::Encoding(w) => w.finish().await?,
            RawStage::Staged(s) => s,
        })
    }
}

/// A file read and written, waiting for its group's commit.
struct StagedFile {
    report: FileReport,
    record: LoadRecord,
    raw: Option<RawStage>,
    quarantine: Option<Staged>,
}

enum Staging {
    /// Nothing to commit (already loaded).
    Done(FileReport),
    Pending(Box<StagedFile>),
}

#[derive(Default)]
struct Group {
    /// Index of each file's report, and the file.
    files: Vec<(usize, Box<StagedFile>)>,
    records: i64,
}

impl Group {
    /// Waits for the writers still encoding their files' last batches, all but the latest
    /// `keep` of them.
    async fn settle(&mut self, keep: usize) -> Result<()> {
        let encoding = self
            .files
            .iter()
            .filter(|(_, f)| matches!(f.raw, Some(RawStage::Encoding(_))))
            .count();
        let mut to_settle = encoding.saturating_sub(keep);
        for (_, f) in &mut self.files {
            if to_settle == 0 {
                break;
            }
            if let Some(RawStage::Encoding(_)) = &f.raw {
                to_settle -= 1;
                if let Some(r) = f.raw.take() {
                    f.raw = Some(RawStage::Staged(r.staged().await?));
                }
            }
        }
        Ok(())
    }

    /// Commits the rows, then the quarantined rows, then the `loads` rows (the marker).
    async fn commit(
        &mut self,
        wh: &Warehouse,
        book: &mut LoadBook,
        reports: &mut [FileReport],
    ) -> Result<()> {
        if self.files.is_empty() {
            return Ok(());
        }
        let files = std::mem::take(&mut self.files);
        self.records = 0;
        let mut raw = Vec::new();
        let mut quarantine = Vec::new();
        let mut records = Vec::new();
        let mut slots = Vec::new();
        for (slot, f) in files {
            let f = *f;
            if let Some(r) = f.raw {
                raw.extend(Some(r.staged().await?).filter(|s| !s.is_empty()));
            }
            quarantine.extend(f.quarantine.filter(|s| !s.is_empty()));
            records.push(f.record);
            slots.push((slot, f.report));
        }
        crash_point("before_raw_commit");
        wh.commit_staged(raw).await?;
        crash_point("after_raw_commit");
        wh.commit_staged(quarantine).await?;
        crash_point("after_quarantine_commit");
        crash_point("before_load_commit");
        let recorded = wh.record_loads(book, records).await?;
        for ((slot, mut report), rec) in slots.into_iter().zip(recorded) {
            if rec.status == "committed" {
                report.outcome = Outcome::Loaded {
                    load_seq: rec.load_seq,
                };
                info!(
                    file = %report.path,
                    read = report.read,
                    accepted = report.accepted,
                    quarantined = report.quarantined,
                    warnings = report.warnings,
                    "loaded"
                );
            }
            reports[slot] = report;
        }
        Ok(())
    }
}

/// Reads one file through the feed's rules into staged (uncommitted) files. Returns Err only
/// when the warehouse itself fails; a bad file is a report, and a failed `loads` row.
#[allow(clippy::too_many_arguments)]
async fn stage_file(
    wh: &Warehouse,
    book: &LoadBook,
    divisions: &Divisions,
    feed: &'static Feed,
    path: &Path,
    name: &str,
    fp: Result<source::Fingerprint>,
    id: String,
    opts: &LoadOptions,
) -> Result<Staging> {
    let started_at = now_micros();
    let src_name = name.to_string();
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
    let mut record = LoadRecord {
        load_id: id.clone(),
        load_seq: 0,
        feed: feed.name.to_string(),
        source: src_name.clone(),
        content_sha256: String::new(),
        as_of: opts.as_of,
        encoding: None,
        status: "failed".into(),
        message: None,
        rows_read: 0,
        rows_accepted: 0,
        rows_quarantined: 0,
        rows_repeated: 0,
        warnings: 0,
        bytes: 0,
        watermark: None,
        started_at,
        loaded_at: 0,
    };
    let fp = match fp {
        Ok(fp) => fp,
        Err(e) => return Ok(failed(report, record, e)),
    };
    report.encoding = Some(fp.encoding.name());
    record.content_sha256 = fp.sha256.clone();
    record.encoding = Some(fp.encoding.name().to_string());
    record.bytes = fp.bytes as i64;
    if let Some(done) = book.committed(&id) {
        info!(file = %src_name, load_seq = done.load_seq, "already loaded, skipped");
        report.outcome = Outcome::Skipped {
            load_seq: done.load_seq,
        };
        report.read = done.rows_read;
        report.accepted = done.rows_accepted;
        report.quarantined = done.rows_quarantined;
        report.warnings = done.warnings;
        return Ok(Staging::Done(report));
    }
    let (raw, quarantine) = match stream(
        wh,
        divisions,
        feed,
        path,
        name,
        fp.encoding,
        &id,
        started_at,
        opts,
        &mut report,
    )
    .await
    {
        Ok(staged) => staged,
        // Its staged Parquet files stay unreferenced by any log: invisible, vacuumed later.
        Err(e) if e.is_file_level() => return Ok(failed(report, record, e)),
        Err(e) => return Err(e),
    };
    // The rows read must be the content the load is identified by.
    if let Err(e) = source::unchanged(path, &fp) {
        return Ok(failed(report, record, e));
    }
    record.status = "committed".into();
    record.rows_read = report.read;
    record.rows_accepted = report.accepted;
    record.rows_quarantined = report.quarantined;
    record.warnings = report.warnings;
    record.loaded_at = now_micros();
    Ok(Staging::Pending(Box::new(StagedFile {
        report,
        record,
        raw: raw.map(RawStage::Encoding),
        quarantine,
    })))
}

/// A file rejected as a whole: its `loads` row says why, and nothing of it is committed.
fn failed(mut report: FileReport, mut record: LoadRecord, e: Error) -> Staging {
    let message = e.to_string();
    warn!(file = %report.path, error = %message, "file rejected");
    record.status = "failed".into();
    record.message = Some(message.clone());
    record.loaded_at = now_micros();
    report.read = 0;
    report.accepted = 0;
    report.quarantined = 0;
    report.warnings = 0;
    report.outcome = Outcome::Failed { message };
    Staging::Pending(Box::new(StagedFile {
        report,
        record,
        raw: None,
        quarantine: None,
    }))
}

/// Streams a file's records into staged Parquet files of the raw table and `quarantine`.
/// A table whose log already holds this load (an earlier run was killed after committing it)
/// gets nothing. The raw rows' writer comes back closed but maybe still encoding, so that the
/// next file's reading starts while it finishes.
#[allow(clippy::too_many_arguments)]
async fn stream(
    wh: &Warehouse,
    divisions: &Divisions,
    feed: &'static Feed,
    path: &Path,
    name: &str,
    encoding: Encoding,
    id: &str,
    started_at: i64,
    opts: &LoadOptions,
    report: &mut FileReport,
) -> Result<(Option<BackgroundWriter>, Option<Staged>)> {
    let set_up = Instant::now();
    let required = |c: &str| !feed.optional_headers.contains(&c);
    let mut records = Records::open(path, encoding, feed.table, &required)?;
    let opened = set_up.elapsed();
    let lineage = Lineage {
        load_id: id.to_string(),
        feed: feed.name,
        source: name.to_string(),
        loaded_at: started_at,
        as_of: opts.as_of,
    };
    // A writer is None when a killed earlier run already committed this load's rows there.
    // Each asks whether its table's log holds the load (the log's loads are read once per
    // table version, `Warehouse::writer`), both at once, while a reader thread (for a long
    // file or a workbook) starts on the file. The raw rows are encoded on a task of their own,
    // beside the parsing.
    let (raw, mut quarantine) = tokio::try_join!(
        wh.writer(feed.table, id),
        wh.writer(&plsw_schemas::tables::QUARANTINE, id)
    )?;
    let mut raw = raw.map(BackgroundWriter::spawn);
    debug!(
        file = %name,
        open_us = opened.as_micros() as u64,
        set_up_us = set_up.elapsed().as_micros() as u64,
        "stream set up"
    );
    let mut rows = RowBatcher::new(feed.table, lineage.clone());
    let mut bad = QuarantineBatcher::new(lineage);
    let bar = progress_bar(opts.progress, "{spinner} {msg} {pos} records ({per_sec})");
    bar.set_message(name.to_string());
    let t0 = Instant::now();
    let ncols = feed.table.columns.len();
    let mut plan = feed.plan();
    while let Some(rec) = records.next(path)? {
        if encoding == Encoding::Xlsx && rec.is_blank() {
            continue;
        }
        report.read += 1;
        // Each record is converted straight into the columns of the batch being built.
        let result = if let Some(message) = rec.cell_error() {
            Err(Reject {
                reason: "bad_cell".into(),
                message,
            })
        } else if rec.well_formed() {
            let values = (0..ncols).map(|c| rec.value(c));
            feed.convert_into(&mut plan, rows.columns(), values, divisions)
        } else {
            Err(Reject {
                reason: "malformed_record".into(),
                message: format!(
                    "the record has {} fields, the header {}",
                    rec.len(),
                    rec.header_len()
                ),
            })
        };
        match result {
            Ok(warnings) => {
                report.accepted += 1;
                report.warnings += i64::from(warnings > 0);
                rows.pushed(rec.position);
                if rows.is_full() {
                    let batch = rows.finish();
                    if let Some(w) = raw.as_mut() {
                        w.write(batch).await?;
                    }
                }
            }
            Err(reject) => {
                report.quarantined += 1;
                bad.push(rec.position, &reject, &rec.raw_json());
                if bad.is_full() {
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
    if let Some(w) = raw.as_mut() {
        if !rows.is_empty() {
            w.write(rows.finish()).await?;
        }
        w.close();
    }
    let quarantine = match quarantine {
        Some(mut w) => {
            if bad.len() > 0 {
                w.write(bad.finish()).await?;
            }
            Some(w.finish().await?)
        }
        None => None,
    };
    bar.finish_and_clear();
    info!(
        file = %name,
        rows_per_s = (report.read as f64 / t0.elapsed().as_secs_f64().max(1e-9)) as u64,
        "streamed"
    );
    Ok((raw, quarantine))
}

/// A spinner on stderr with `template`, or a hidden bar when not wanted or not on a terminal.
pub(crate) fn progress_bar(enabled: bool, template: &str) -> ProgressBar {
    if !enabled || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar
}
