//! Current states kept on disk: a cache of each feed's `_current` view.
//!
//! The current state of a feed table ("the latest row per key") is a function of its committed
//! loads, and loads only ever add: the state after load `n` is the state after load `m < n` with
//! the keys of loads `m+1..=n` replaced. So a state written once, after every load numbered up to
//! `seq`, answers `_current` together with the rows of the loads committed after it: the view
//! reads the state's Parquet file, leaves out the keys (or, for a snapshot, the dates) those later
//! loads bring, and ranks only their rows. Without this, every read of a `_current` view ranked
//! the table's whole history (a window over 1.7 M rows for a year of cases).
//!
//! A state is a cache, never the truth:
//! - it is written to a temporary file and renamed, so a killed writer leaves no state or a
//!   whole one, and it sits beside the Delta tables (`_states/<table>-<columns digest>/`), outside
//!   them: nothing commits it and deleting it changes no answer;
//! - a reader takes the newest state numbered at or below the last load it can see, so a
//!   warehouse pinned at past versions ([`Warehouse::at`]) reads a state of its own past, or none;
//! - the directory's name carries a digest of the table's columns, so a state written by a plsw
//!   with another table layout is never read.
//!
//! `plsw transform` refreshes the states before it runs the models ([`refresh`]); only local
//! warehouses keep them (an object-store warehouse reads every `_current` view from history).

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::Compression;
use datafusion::parquet::file::properties::WriterProperties;
use datafusion::prelude::SessionContext;
use futures::StreamExt;
use plsw_schemas::tables::{self, Table};
use sha2::{Digest, Sha256};
use tracing::{info, warn};

use crate::error::{Error, Result};
use crate::store::Warehouse;

/// The directory of the states, under the warehouse's root.
pub const STATES_DIR: &str = "_states";

/// States kept per table: the newest ones (a reader that registered an older one a moment ago
/// still finds it).
const KEEP: usize = 3;

/// Rows per row group of a state file.
const ROW_GROUP_ROWS: usize = 128 * 1024;

/// One state on disk: the current rows of a feed table after every load numbered up to `seq`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateFile {
    pub seq: i64,
    pub path: PathBuf,
}

/// What [`refresh`] did for one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refreshed {
    pub table: &'static str,
    /// The last load the new state covers.
    pub seq: i64,
    /// Current rows written.
    pub rows: usize,
    pub millis: u128,
}

/// `cases-1a2b3c4d`: the table's name and a digest of its stored columns and their types.
fn dir_name(t: &Table) -> String {
    let mut h = Sha256::new();
    for c in t.stored_columns() {
        h.update(format!("{}:{:?};", c.name, c.kind.data_type()).as_bytes());
    }
    let digest = hex::encode(h.finalize());
    format!("{}-{}", t.name, &digest[..8])
}

fn file_name(seq: i64) -> String {
    format!("{seq:020}.parquet")
}

impl Warehouse {
    /// Where the states of `t` live, for a local warehouse.
    pub(crate) fn states_dir(&self, t: &Table) -> Option<PathBuf> {
        if self.url().scheme() != "file" || !self.uses_states() {
            return None;
        }
        let root = self.url().to_file_path().ok()?;
        Some(root.join(STATES_DIR).join(dir_name(t)))
    }

    /// The newest state of `t` covering no load after `max_seq`, if any.
    pub(crate) fn state_for(&self, t: &Table, max_seq: i64) -> Option<StateFile> {
        let dir = self.states_dir(t)?;
        list(&dir).into_iter().find(|s| s.seq <= max_seq)
    }
}

/// The states in `dir`, newest first.
fn list(dir: &Path) -> Vec<StateFile> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<StateFile> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let seq = name.strip_suffix(".parquet")?.parse::<i64>().ok()?;
            (name == file_name(seq)).then(|| StateFile {
                seq,
                path: e.path(),
            })
        })
        .collect();
    out.sort_by_key(|s| std::cmp::Reverse(s.seq));
    out
}

/// A state is rewritten once the loads after it hold this share of its rows (1/10)…
const REWRITE_SHARE: i64 = 10;
/// …or once this many loads came after it (the views list them by id).
const REWRITE_LOADS: usize = 64;

/// Brings the states up to date where it pays: a feed table with committed loads and no state
/// gets one; a state gets rewritten once the loads after it are many (see [`REWRITE_SHARE`] and
/// [`REWRITE_LOADS`]). Below that, the views read the state and rank the few newer rows, which
/// costs less than writing the state again. Drops all but the newest few states. Returns what
/// it wrote; nothing happens on a pinned or non-local warehouse.
pub async fn refresh(wh: &Warehouse) -> Result<Vec<Refreshed>> {
    if wh.is_pinned() {
        return Ok(Vec::new());
    }
    let book = wh.context_of(&[&tables::LOADS]).await?;
    let loads = crate::store::load_records(&book).await?;
    let max_seq = loads.iter().map(|l| l.load_seq).max().unwrap_or(0);
    let mut due: Vec<(&'static Table, PathBuf, Option<i64>)> = Vec::new();
    for t in tables::FEED_TABLES {
        let Some(dir) = wh.states_dir(t) else {
            continue;
        };
        let feed = tables::feed_of(t.name).unwrap_or(t.name);
        let state = wh.state_for(t, max_seq);
        let since = state.as_ref().map_or(i64::MIN, |s| s.seq);
        let newer: Vec<_> = loads
            .iter()
            .filter(|l| l.status == "committed" && l.feed == feed && l.load_seq > since)
            .collect();
        let rows: i64 = newer.iter().map(|l| l.rows_accepted).sum();
        let rewrite = match &state {
            None => !newer.is_empty(),
            Some(s) => match state_rows(t, &s.path) {
                Ok(in_state) => {
                    !newer.is_empty()
                        && (newer.len() >= REWRITE_LOADS || rows * REWRITE_SHARE >= in_state)
                }
                // Damaged (the views pass it by): written again.
                Err(e) => {
                    warn!(error = %e, "current state unreadable, written again");
                    true
                }
            },
        };
        if rewrite {
            due.push((t, dir, state.map(|s| s.seq)));
        }
    }
    if due.is_empty() {
        return Ok(Vec::new());
    }
    let ctx = SessionContext::new();
    let plan = crate::catalog::register_views(&ctx, wh, &|_, _| crate::Access::Full).await?;
    let mut out = Vec::new();
    for (t, dir, previous) in due {
        let t0 = Instant::now();
        let rows = write_state(&ctx, t, &dir, plan.max_seq).await?;
        let done = Refreshed {
            table: t.name,
            seq: plan.max_seq,
            rows,
            millis: t0.elapsed().as_millis(),
        };
        info!(
            table = t.name,
            seq = done.seq,
            previous = ?previous,
            rows,
            millis = done.millis,
            "state written"
        );
        prune(&dir);
        out.push(done);
    }
    Ok(out)
}

/// The rows of a state file, from its footer.
fn state_rows(t: &Table, path: &Path) -> Result<i64> {
    use datafusion::parquet::file::reader::{FileReader, SerializedFileReader};
    let fail = |message: String| Error::State {
        table: t.name.to_string(),
        message: format!("{}: {message}", path.display()),
    };
    let file = fs::File::open(path).map_err(|e| fail(e.to_string()))?;
    let reader = SerializedFileReader::new(file).map_err(|e| fail(e.to_string()))?;
    Ok(reader.metadata().file_metadata().num_rows())
}

/// Streams `<table>_current` into `dir/<seq>.parquet` (through a temporary file and a rename).
async fn write_state(ctx: &SessionContext, t: &Table, dir: &Path, seq: i64) -> Result<usize> {
    let io = |e: std::io::Error| Error::State {
        table: t.name.to_string(),
        message: format!("{}: {e}", dir.display()),
    };
    fs::create_dir_all(dir).map_err(io)?;
    // Leftovers of a writer killed mid-way (an hour old: not those of a transform running now).
    for e in fs::read_dir(dir).map_err(io)?.flatten() {
        let stale = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age.as_secs() > 3600);
        if e.file_name().to_string_lossy().starts_with(".tmp-") && stale {
            let _ = fs::remove_file(e.path());
        }
    }
    let tmp = dir.join(format!(".tmp-{}", uuid::Uuid::new_v4()));
    let df = ctx
        .sql(&format!(
            "SELECT * FROM {}{}",
            t.name,
            crate::CURRENT_SUFFIX
        ))
        .await?;
    let schema = crate::without_metadata(datafusion::arrow::array::RecordBatch::new_empty(
        std::sync::Arc::new(df.schema().as_arrow().clone()),
    ))
    .schema();
    let mut stream = df.execute_stream().await?;
    let file = fs::File::create(&tmp).map_err(io)?;
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .build();
    let parquet = |e: datafusion::parquet::errors::ParquetError| Error::State {
        table: t.name.to_string(),
        message: e.to_string(),
    };
    let mut writer = ArrowWriter::try_new(file, schema, Some(props)).map_err(parquet)?;
    let mut rows = 0;
    while let Some(batch) = stream.next().await {
        let batch = crate::without_metadata(batch?);
        rows += batch.num_rows();
        writer.write(&batch).map_err(parquet)?;
    }
    let file = writer.into_inner().map_err(parquet)?;
    file.sync_all().map_err(io)?;
    drop(file);
    fs::rename(&tmp, dir.join(file_name(seq))).map_err(io)?;
    Ok(rows)
}

/// Deletes all but the newest [`KEEP`] states in `dir`.
fn prune(dir: &Path) {
    for old in list(dir).into_iter().skip(KEEP) {
        if let Err(e) = fs::remove_file(&old.path) {
            warn!(path = %old.path.display(), error = %e, "could not delete an old state");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_are_listed_newest_first_and_stray_files_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            file_name(7),
            file_name(12),
            file_name(3),
            ".tmp-x".into(),
            "12.parquet".into(),
            "notes.txt".into(),
        ] {
            fs::write(dir.path().join(name), b"").unwrap();
        }
        let seqs: Vec<i64> = list(dir.path()).iter().map(|s| s.seq).collect();
        assert_eq!(seqs, vec![12, 7, 3]);
        prune(dir.path());
        assert_eq!(list(dir.path()).len(), 3);
        fs::write(dir.path().join(file_name(20)), b"").unwrap();
        prune(dir.path());
        let seqs: Vec<i64> = list(dir.path()).iter().map(|s| s.seq).collect();
        assert_eq!(seqs, vec![20, 12, 7]);
    }

    #[test]
    fn another_table_layout_gets_another_directory() {
        let a = dir_name(&tables::CASES);
        assert!(a.starts_with("cases-"), "{a}");
        let mut other = tables::CASES;
        other.columns = &tables::CASES.columns[1..];
        assert_ne!(a, dir_name(&other));
    }
}
