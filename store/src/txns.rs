//! The loads a table's log already holds: the application ids of its Delta transactions
//! (`txn { appId: <load id> }`, see `docs/exactly-once.md`), read once for a table's version
//! from the log's own files, for every file of a command to ask.
//!
//! The Delta kernel answers one id at a time, replaying the log each time: two questions per
//! file cost a year of GB18030 legal aid 8% of its wall time and 0.12 s of CPU, and a load of
//! 120 small files a quarter of its time. Here the log is listed once, the last classic
//! checkpoint's `txn` column is read, then every commit after it. A log in any other shape (a
//! multi-part or v2 checkpoint, a commit file missing, transactions that expire) gives `None`,
//! and the caller asks the kernel id by id as before.

use std::collections::HashSet;

use bytes::Bytes;
use datafusion::arrow::array::{Array, AsArray};
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use datafusion::parquet::arrow::ProjectionMask;
use deltalake::DeltaTable;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

/// The table property that makes transactions expire; a table with it is left to the kernel.
const TXN_RETENTION: &str = "delta.setTransactionRetentionDuration";

/// What the log's directory holds, by version.
#[derive(Debug, Default, PartialEq)]
struct Listing {
    commits: Vec<u64>,
    /// Classic single-file checkpoints (`<version>.checkpoint.parquet`).
    checkpoints: Vec<u64>,
    /// Checkpoints of any other shape (multi-part, v2 with a UUID).
    other_checkpoints: Vec<u64>,
}

/// Sorts the names of the log's files into commits and checkpoints (other files are ignored:
/// `_last_checkpoint`, compacted commits, temporary files).
fn listing<'a>(names: impl Iterator<Item = &'a str>) -> Listing {
    let mut l = Listing::default();
    for name in names {
        let Some((digits, rest)) = name.split_at_checked(20) else {
            continue;
        };
        let Some(v) = digits
            .bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| digits.parse::<u64>().ok())
            .flatten()
        else {
            continue;
        };
        match rest {
            ".json" => l.commits.push(v),
            ".checkpoint.parquet" => l.checkpoints.push(v),
            r if r.starts_with(".checkpoint.") => l.other_checkpoints.push(v),
            _ => {}
        }
    }
    l
}

/// The files to read for the log at `version`: the last classic checkpoint at or below it (if
/// any) and every commit after it, or `None` when the log is not in that shape.
fn plan(l: &Listing, version: u64) -> Option<(Option<u64>, Vec<u64>)> {
    let latest = |versions: &[u64]| versions.iter().copied().filter(|v| *v <= version).max();
    let checkpoint = latest(&l.checkpoints);
    // A checkpoint of another shape as recent as the classic one: the kernel knows it better.
    let other = latest(&l.other_checkpoints);
    if other.is_some() && other >= checkpoint {
        return None;
    }
    let first = checkpoint.map_or(0, |c| c + 1);
    let have: HashSet<u64> = l.commits.iter().copied().collect();
    let commits: Vec<u64> = (first..=version).collect();
    commits
        .iter()
        .all(|v| have.contains(v))
        .then_some((checkpoint, commits))
}

/// The application ids of the `txn` actions in one commit file (newline-delimited JSON).
fn commit_ids(bytes: &[u8], ids: &mut HashSet<String>) -> Option<()> {
    for line in bytes.split(|b| *b == b'\n') {
        // Only a line that names `txn` is parsed (`add` lines are most of a commit), whatever
        // the writer's spacing; a `txn` inside another action is not one.
        if !line.windows(5).any(|w| w == b"\"txn\"") {
            continue;
        }
        let action: serde_json::Value = serde_json::from_slice(line).ok()?;
        if let Some(txn) = action.get("txn") {
            ids.insert(txn.get("appId")?.as_str()?.to_string());
        }
    }
    Some(())
}

/// The application ids in a classic checkpoint's `txn` column.
fn checkpoint_ids(bytes: Bytes, ids: &mut HashSet<String>) -> Option<()> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes).ok()?;
    let root = builder
        .parquet_schema()
        .root_schema()
        .get_fields()
        .iter()
        .position(|f| f.name() == "txn")?;
    let mask = ProjectionMask::roots(builder.parquet_schema(), [root]);
    for batch in builder.with_projection(mask).build().ok()? {
        let batch = batch.ok()?;
        let txn = batch.column(0).as_struct_opt()?;
        let app_ids = txn.column_by_name("appId")?.as_string_opt::<i32>()?;
        for (i, id) in app_ids.iter().enumerate() {
            if let (true, Some(id)) = (txn.is_valid(i), id) {
                ids.insert(id.to_string());
            }
        }
    }
    Some(())
}

/// The names of the files in the log's directory that the log at `version` is read from: from
/// the checkpoint that `_last_checkpoint` names on, when it names one at or below `version`
/// (a table checkpoints every so many commits, and a listing of the whole directory on an
/// object store grows with every commit ever made: a request per thousand files); else every
/// file. `_last_checkpoint` is a hint (Delta protocol): one that names an older checkpoint only
/// lists more, and one that names a checkpoint that is not there lists no older one: [`plan`]
/// takes a later checkpoint if there is one, else finds commits missing and leaves the log to
/// the kernel.
async fn log_names(store: &dyn ObjectStore, version: u64) -> object_store::Result<Vec<String>> {
    let dir = Path::from("_delta_log");
    let hint = match store.get(&Path::from("_delta_log/_last_checkpoint")).await {
        Ok(got) => got.bytes().await.ok(),
        Err(object_store::Error::NotFound { .. }) => None,
        Err(e) => return Err(e),
    };
    let checkpoint = hint
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v.get("version")?.as_u64())
        .filter(|c| *c <= version);
    let listed = match checkpoint {
        // Every name after this one: the checkpoint's own files (`.checkpoint.parquet` and
        // those of a multi-part or v2 one), its commit (`.json` sorts after `.checkpoint`), and
        // every later version's.
        Some(c) => store.list_with_offset(
            Some(&dir),
            &Path::from(format!("_delta_log/{c:020}.checkpoint")),
        ),
        None => store.list(Some(&dir)),
    };
    listed
        .map_ok(|meta| meta.location.filename().unwrap_or_default().to_string())
        .try_collect()
        .await
}

/// The application ids in `table`'s log at its version, or `None` when the log is not read
/// here (see the module's doc) or could not be read (the kernel then reports the error).
pub(crate) async fn app_ids(table: &DeltaTable) -> Option<HashSet<String>> {
    let version = table.version()?;
    let snapshot = table.snapshot().ok()?;
    if snapshot
        .metadata()
        .configuration()
        .contains_key(TXN_RETENTION)
    {
        return None;
    }
    let store = table.log_store().object_store(None);
    let names = log_names(store.as_ref(), version).await.ok()?;
    let (checkpoint, commits) = plan(&listing(names.iter().map(String::as_str)), version)?;
    let mut ids = HashSet::new();
    if let Some(c) = checkpoint {
        let path = Path::from(format!("_delta_log/{c:020}.checkpoint.parquet"));
        let bytes = store.get(&path).await.ok()?.bytes().await.ok()?;
        checkpoint_ids(bytes, &mut ids)?;
    }
    let reads = futures::stream::iter(commits)
        .map(|v| {
            let store = store.clone();
            let path = Path::from(format!("_delta_log/{v:020}.json"));
            async move { store.get(&path).await?.bytes().await }
        })
        .buffered(16);
    let files: Vec<Bytes> = reads.try_collect().await.ok()?;
    for bytes in &files {
        commit_ids(bytes, &mut ids)?;
    }
    Some(ids)
}

#[cfg(test)]
mod tests;
