//! Opening the warehouse location, creating and writing its Delta tables, and the `loads` marker.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Date32Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{Date32Type, Int64Type, TimestampMicrosecondType};
use datafusion::parquet::basic::{Compression, Encoding};
use datafusion::parquet::file::properties::WriterProperties;
use datafusion::parquet::schema::types::ColumnPath;
use datafusion::prelude::SessionContext;
use deltalake::kernel::engine::arrow_conversion::TryIntoKernel;
use deltalake::kernel::transaction::{CommitBuilder, CommitProperties};
use deltalake::kernel::{Action, StructType, Transaction};
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::{DeltaTable, DeltaTableBuilder, TableProperty};
use plsw_schemas::tables::{self, Kind, Table};
use url::Url;

use crate::error::{Error, Result};
use crate::files::FileWriter;

/// Table properties every table gets: logs and removed files are kept for ten years, so a
/// published assessment can time-travel to the versions it read.
const RETENTION: &str = "interval 3650 days";

/// Rows per Parquet row group: the writer holds one row group in memory before it flushes, so
/// this (not the file's size) bounds the memory of a load.
pub(crate) const ROW_GROUP_ROWS: usize = 128 * 1024;

/// Target size of the Parquet files a load writes; a file rolls over past it. The writer once
/// held a file's bytes until it rolled over (at 128 MiB, a load of ten province-years peaked
/// 32% above one of a single year; at 16 MiB, 19%, `docs/benchmarks-history.md`); it streams a file
/// of several row groups now, a row group at a time (in parts of 5 MiB on a store of objects),
/// so this no longer bounds its memory.
const TARGET_FILE_SIZE: u64 = 16 * 1024 * 1024;

/// The columns holding one value in every row of a load: its lineage (and a snapshot's date).
const LOAD_CONSTANTS: &[&str] = &["as_of", "feed", "load_id", "loaded_from", "loaded_at"];

/// The loads a table's log holds (`None`: a log left to the kernel), and the table's version
/// they were read at.
type Loaded = (u64, Option<Arc<HashSet<String>>>);

/// A warehouse location: a local directory or an object-store URL.
///
/// Table handles are cached and brought up to date incrementally, so a command that loads
/// hundreds of files replays each Delta log once, not once per file.
#[derive(Debug, Clone)]
pub struct Warehouse {
    url: Url,
    storage_options: HashMap<String, String>,
    cache: Arc<Mutex<HashMap<&'static str, DeltaTable>>>,
    /// The loads each table's log holds, at the version they were read at ([`crate::txns`]).
    loaded: Arc<Mutex<HashMap<&'static str, Loaded>>>,
    /// Versions to read instead of the latest ([`Warehouse::at`]); such a warehouse is read-only.
    pin: Option<Arc<HashMap<String, i64>>>,
    /// Whether `_current` views read the current states kept on disk (`states`).
    states: bool,
}

impl Warehouse {
    /// Opens (creating if needed) the warehouse at a local directory or URL, and makes sure every
    /// table of the contract exists, so that queries over an empty warehouse work.
    pub async fn open(location: &str) -> Result<Self> {
        Self::open_with(location, tables::ALL).await
    }

    /// As [`Warehouse::open`], opening (and creating if missing) only the tables of `defs` now;
    /// any other is opened when first used. For a command that uses a few tables (a load): each
    /// table opened reads its log, about 2 ms of CPU, and a load of a few small files spent more
    /// on opening the 17 tables than on its files.
    pub async fn open_with(location: &str, defs: &[&'static Table]) -> Result<Self> {
        let url = deltalake::ensure_table_uri(location).map_err(|e| Error::Location {
            location: location.to_string(),
            reason: e.to_string(),
        })?;
        let wh = Warehouse {
            url,
            storage_options: HashMap::new(),
            cache: Arc::default(),
            loaded: Arc::default(),
            pin: None,
            states: true,
        };
        // Each table's log is listed and read on its own task: one after another, the waits
        // on the store added up to most of a short command's start.
        let opening: Vec<_> = defs
            .iter()
            .map(|&t| {
                let wh = wh.clone();
                tokio::spawn(async move { wh.table(t).await.map(drop) })
            })
            .collect();
        // The first table asked for that fails is the error, whichever finished first.
        for (t, task) in defs.iter().zip(opening) {
            task.await.map_err(|e| Error::Opening {
                table: t.name.to_string(),
                message: e.to_string(),
            })??;
        }
        tracing::debug!(tables = defs.len(), "warehouse opened");
        Ok(wh)
    }

    /// The location, as a URL.
    pub fn url(&self) -> &Url {
        &self.url
    }

    fn table_url(&self, name: &str) -> Result<Url> {
        self.url
            .join(&format!("{name}/"))
            .map_err(|e| Error::Location {
                location: self.url.to_string(),
                reason: e.to_string(),
            })
    }

    /// The same warehouse as it was at `versions` (from [`Warehouse::versions`]): every read
    /// (sessions, [`Warehouse::raw_context`], the catalog) sees each table at its pinned version,
    /// through Delta time travel. It cannot write. Tables not in `versions` read at their latest.
    pub fn at(&self, versions: &[(&'static str, i64)]) -> Warehouse {
        Warehouse {
            url: self.url.clone(),
            storage_options: self.storage_options.clone(),
            cache: Arc::default(),
            loaded: Arc::default(),
            pin: Some(Arc::new(
                versions.iter().map(|(t, v)| (t.to_string(), *v)).collect(),
            )),
            states: self.states,
        }
    }

    /// The same warehouse with every `_current` view ranked from the whole history, ignoring the
    /// current states on disk: the reference the states are tested against.
    pub fn without_states(&self) -> Warehouse {
        Warehouse {
            states: false,
            ..self.clone()
        }
    }

    /// Whether `_current` views may read the current states on disk.
    pub(crate) fn uses_states(&self) -> bool {
        self.states
    }

    /// Whether this warehouse is pinned at past versions (and so read-only).
    pub fn is_pinned(&self) -> bool {
        self.pin.is_some()
    }

    /// Refuses writes to a pinned warehouse.
    fn writable(&self, table: &str) -> Result<()> {
        match self.pin {
            None => Ok(()),
            Some(_) => Err(Error::Pinned(format!(
                "table {table}: a warehouse pinned at past versions is read-only"
            ))),
        }
    }

    /// Loads a table at its latest version (or its pinned one), creating it empty if it does not
    /// exist.
    pub async fn table(&self, def: &'static Table) -> Result<DeltaTable> {
        if let Some(version) = self.pin.as_ref().and_then(|p| p.get(def.name).copied()) {
            return self.pinned_table(def, version).await;
        }
        let table = match self.cached(def) {
            Some(mut t) => {
                t.update_incremental(None)
                    .await
                    .map_err(Error::delta(def.name))?;
                t
            }
            None => self.open_table(def).await?,
        };
        self.cache
            .lock()
            .expect("table cache")
            .insert(def.name, table.clone());
        Ok(table)
    }

    /// Reads the loads `def`'s log holds, as [`Warehouse::writer`] would, so that the first
    /// writer finds them read: a load asks this beside reading the divisions. An error is left
    /// for the writer to meet.
    pub async fn read_loads_of(&self, def: &'static Table) {
        if let Ok(table) = self.table_as_seen(def).await {
            self.loaded_in(def, &table).await;
        }
    }

    /// The loads `table`'s log holds (its Delta transactions' ids), read once for each version
    /// of the table this process sees; `None` when the log's shape leaves it to the kernel.
    async fn loaded_in(
        &self,
        def: &'static Table,
        table: &DeltaTable,
    ) -> Option<Arc<HashSet<String>>> {
        let version = table.version()?;
        let known = self.loaded.lock().expect("loaded").get(def.name).cloned();
        if let Some((_, ids)) = known.filter(|(v, _)| *v == version) {
            return ids;
        }
        // A log left to the kernel is remembered as such, not listed again for every file.
        let ids = crate::txns::app_ids(table).await.map(Arc::new);
        self.loaded
            .lock()
            .expect("loaded")
            .insert(def.name, (version, ids.clone()));
        ids
    }

    /// `def` as this process last saw it (see [`Warehouse::writer`]), opened if it never was.
    async fn table_as_seen(&self, def: &'static Table) -> Result<DeltaTable> {
        match self.cached(def) {
            Some(t) => Ok(t),
            None => self.table(def).await,
        }
    }

    /// `def`'s handle as this process holds it, if it was opened.
    fn cached(&self, def: &Table) -> Option<DeltaTable> {
        self.cache
            .lock()
            .expect("table cache")
            .get(def.name)
            .cloned()
    }

    async fn pinned_table(&self, def: &'static Table, version: i64) -> Result<DeltaTable> {
        if let Some(t) = self.cached(def) {
            return Ok(t);
        }
        if version < 0 {
            return Err(Error::Pinned(format!(
                "table {} did not exist at the pinned state",
                def.name
            )));
        }
        let mut table = self.unloaded(def)?;
        table
            .load_version(version as u64)
            .await
            .map_err(Error::delta(def.name))?;
        check_schema(def, &table)?;
        self.cache
            .lock()
            .expect("table cache")
            .insert(def.name, table.clone());
        Ok(table)
    }

    /// A handle on `def`'s location, its log not read yet.
    fn unloaded(&self, def: &Table) -> Result<DeltaTable> {
        let url = self.table_url(def.name)?;
        // A local table directory must exist before the log can be listed.
        let url = deltalake::ensure_table_uri(url.as_str()).map_err(Error::delta(def.name))?;
        DeltaTableBuilder::from_url(url)
            .map_err(Error::delta(def.name))?
            .with_storage_options(self.storage_options.clone())
            .build()
            .map_err(Error::delta(def.name))
    }

    async fn open_table(&self, def: &Table) -> Result<DeltaTable> {
        let mut table = self.unloaded(def)?;
        if !table
            .verify_deltatable_existence()
            .await
            .map_err(Error::delta(def.name))?
        {
            return self.create(def, table).await;
        }
        table.load().await.map_err(Error::delta(def.name))?;
        check_schema(def, &table)?;
        Ok(table)
    }

    async fn create(&self, def: &Table, table: DeltaTable) -> Result<DeltaTable> {
        let schema = declared_schema(def)?;
        table
            .create()
            .with_table_name(def.name)
            .with_comment(def.doc)
            .with_columns(schema.fields().cloned())
            .with_configuration_property(TableProperty::LogRetentionDuration, Some(RETENTION))
            .with_configuration_property(
                TableProperty::DeletedFileRetentionDuration,
                Some(RETENTION),
            )
            .with_save_mode(SaveMode::Ignore)
            .await
            .map_err(Error::delta(def.name))
    }

    /// A writer that appends to `def` as part of the load `load_id`, or `None` when a commit of
    /// that load is already in the table (an earlier run was killed after it).
    ///
    /// The table's log is asked as this process last saw it (opened, or as its own last commit
    /// left it), not listed again: a warehouse has one writer at a time (docs/ingest.md), so no
    /// other process commits meanwhile, and listing the log again for every file was a fifth of
    /// the cost of loading a small daily file. The commit lists it again before it commits.
    pub async fn writer(&self, def: &'static Table, load_id: &str) -> Result<Option<TableWriter>> {
        self.writable(def.name)?;
        let table = self.table_as_seen(def).await?;
        let done = match self.loaded_in(def, &table).await {
            Some(loaded) => loaded.contains(load_id),
            // A log in a shape not read by `txns`: the kernel, for this id.
            None => table
                .snapshot()
                .map_err(Error::delta(def.name))?
                .transaction_version(table.log_store().as_ref(), load_id)
                .await
                .map_err(Error::delta(def.name))?
                .is_some(),
        };
        if done {
            return Ok(None);
        }
        // Every row a load writes carries the load's lineage: those columns are written as a
        // dictionary of one value and a run of zeros per row group (`files.rs`).
        // Its code columns are looked up in their lists and written as indices (`files.rs`).
        Ok(Some(
            self.table_writer(def, table, Some(load_id))?
                .with_constant_columns(LOAD_CONSTANTS)?
                .with_coded_columns()?,
        ))
    }

    fn table_writer(
        &self,
        def: &'static Table,
        table: DeltaTable,
        app_id: Option<&str>,
    ) -> Result<TableWriter> {
        let props = writer_properties(def);
        let snapshot = table.snapshot().map_err(Error::delta(def.name))?;
        let configuration: HashMap<String, Option<String>> = snapshot
            .metadata()
            .configuration()
            .iter()
            .map(|(k, v)| (k.clone(), Some(v.clone())))
            .collect();
        let mut files = FileWriter::new(
            def.name,
            def.schema(),
            props,
            table.object_store(),
            &configuration,
            ROW_GROUP_ROWS,
            TARGET_FILE_SIZE as usize,
        )?;
        if self.url.scheme() == "file" {
            files.parts_of_any_size();
        }
        Ok(TableWriter {
            def,
            files,
            app_id: app_id.map(str::to_string),
        })
    }

    /// Replaces the whole content of a (small) table in one commit: the divisions.
    pub async fn overwrite(&self, def: &'static Table, batches: Vec<RecordBatch>) -> Result<()> {
        self.writable(def.name)?;
        let table = self.table(def).await?;
        table
            .write(batches)
            .with_save_mode(SaveMode::Overwrite)
            .await
            .map_err(Error::delta(def.name))?;
        Ok(())
    }

    /// Replaces the rows of `def` matching `predicate` (SQL, e.g. `quarter >= '2025Q3'`) by
    /// `batches`, in one commit: every row written must match the predicate.
    pub async fn replace_where(
        &self,
        def: &'static Table,
        predicate: &str,
        batches: Vec<RecordBatch>,
    ) -> Result<()> {
        self.writable(def.name)?;
        let table = self.table(def).await?;
        table
            .write(batches)
            .with_save_mode(SaveMode::Overwrite)
            .with_replace_where(predicate.to_string())
            .await
            .map_err(Error::delta(def.name))?;
        Ok(())
    }

    /// Every table's latest Delta version, in the contract's order: the warehouse's committed
    /// state. Any commit to any table changes it (the API's caches key on it).
    pub async fn versions(&self) -> Result<Vec<(&'static str, i64)>> {
        let mut out = Vec::with_capacity(tables::ALL.len());
        for t in tables::ALL {
            let table = self.table(t).await?;
            out.push((t.name, table.version().map_or(-1, |v| v as i64)));
        }
        Ok(out)
    }

    /// Appends rows to a small table in one commit (bookkeeping such as `transforms`).
    pub async fn append(&self, def: &'static Table, batches: Vec<RecordBatch>) -> Result<()> {
        self.writable(def.name)?;
        let table = self.table(def).await?;
        let mut w = self.table_writer(def, table, None)?;
        for b in batches {
            w.write(b).await?;
        }
        self.commit_staged(vec![w.finish().await?]).await
    }

    /// A DataFusion context with every Delta table registered under its own name and nothing
    /// else: the warehouse's own bookkeeping reads. Analysts get [`crate::register_all`].
    pub async fn raw_context(&self) -> Result<SessionContext> {
        // `loads` is read first: a load commits its rows before its `loads` row (the marker), so
        // every load this read of `loads` sees committed has its rows in the tables read after
        // it, even while a load commits meanwhile. (Read the other way round, a current state
        // written from this context could claim a load whose rows it never saw.)
        let order: Vec<&'static Table> = std::iter::once(&tables::LOADS)
            .chain(
                tables::ALL
                    .iter()
                    .copied()
                    .filter(|t| t.name != tables::LOADS.name),
            )
            .collect();
        self.context_of(&order).await
    }

    /// As [`Warehouse::raw_context`], with only `defs` registered: a read of one or two tables
    /// (tokens, published assessments) need not open every table's log.
    pub async fn context_of(&self, defs: &[&'static Table]) -> Result<SessionContext> {
        let ctx = SessionContext::new();
        for t in defs {
            let table = self.table(t).await?;
            table
                .update_datafusion_session(&ctx.state())
                .map_err(Error::delta(t.name))?;
            let provider = table.table_provider().await?;
            ctx.register_table(t.name, provider)?;
        }
        Ok(ctx)
    }

    /// Every row of `loads` (committed and failed), in commit order.
    pub async fn loads(&self) -> Result<Vec<LoadRecord>> {
        load_records(&self.context_of(&[&tables::LOADS]).await?).await
    }

    /// What `loads` holds now, for deciding which files are loaded and the next `load_seq`.
    pub async fn load_book(&self) -> Result<LoadBook> {
        let all = self.loads().await?;
        let next_seq = all.iter().map(|l| l.load_seq).max().unwrap_or(0) + 1;
        let committed = all
            .into_iter()
            .filter(|l| l.status == "committed")
            .map(|l| (l.load_id.clone(), l))
            .collect();
        Ok(LoadBook {
            committed,
            next_seq,
        })
    }

    /// Commits staged files of one table (of one or several loads) in one commit.
    pub async fn commit_staged(&self, staged: Vec<Staged>) -> Result<()> {
        self.writable("(staged)")?;
        commit(&self.cache, staged).await
    }

    /// Appends rows to `loads` in one commit, numbering them from the book: for committed
    /// loads this is the marker that makes their rows visible, so it is the last write of a load.
    pub async fn record_loads(
        &self,
        book: &mut LoadBook,
        recs: Vec<LoadRecord>,
    ) -> Result<Vec<LoadRecord>> {
        self.writable(tables::LOADS.name)?;
        if recs.is_empty() {
            return Ok(recs);
        }
        let mut out = Vec::with_capacity(recs.len());
        for mut rec in recs {
            rec.load_seq = book.next_seq;
            book.next_seq += 1;
            out.push(rec);
        }
        let table = self.table(&tables::LOADS).await?;
        let mut w = self.table_writer(&tables::LOADS, table, None)?;
        for rec in &out {
            w.write(rec.to_batch()).await?;
        }
        self.commit_staged(vec![w.finish().await?]).await?;
        for rec in &out {
            if rec.status == "committed" {
                book.committed.insert(rec.load_id.clone(), rec.clone());
            }
        }
        Ok(out)
    }
}

/// Every row of `loads` as registered in `ctx` (read once, so that a caller can read the tables
/// after it from the same point; see [`Warehouse::raw_context`]), in commit order.
pub(crate) async fn load_records(ctx: &SessionContext) -> Result<Vec<LoadRecord>> {
    let batches = ctx
        .sql("SELECT * FROM loads ORDER BY load_seq, loaded_at")
        .await?
        .collect()
        .await?;
    let mut out = Vec::new();
    for b in &batches {
        for i in 0..b.num_rows() {
            out.push(LoadRecord::from_batch(b, i));
        }
    }
    Ok(out)
}

/// The loads known to a command: one writer at a time per warehouse (see docs/exactly-once.md).
#[derive(Debug, Clone, Default)]
pub struct LoadBook {
    committed: HashMap<String, LoadRecord>,
    next_seq: i64,
}

impl LoadBook {
    /// The committed load of this id, if any.
    pub fn committed(&self, load_id: &str) -> Option<&LoadRecord> {
        self.committed.get(load_id)
    }

    /// The `load_seq` the next recorded load gets.
    pub fn next_seq(&self) -> i64 {
        self.next_seq
    }

    /// The watermark of a pulled feed: the greatest committed one, if any.
    pub fn watermark(&self, feed: &str) -> Option<i64> {
        self.committed
            .values()
            .filter(|l| l.feed == feed)
            .filter_map(|l| l.watermark)
            .max()
    }
}

/// `def`'s schema as Delta declares it: what a table is created with and checked against.
fn declared_schema(def: &Table) -> Result<StructType> {
    def.schema()
        .as_ref()
        .try_into_kernel()
        .map_err(|e| Error::Schema {
            table: def.name.to_string(),
            message: e.to_string(),
        })
}

fn check_schema(def: &Table, table: &DeltaTable) -> Result<()> {
    let snapshot = table.snapshot().map_err(Error::delta(def.name))?;
    let stored: Vec<String> = snapshot
        .schema()
        .fields()
        .map(|f| f.name().to_string())
        .collect();
    let expected: Vec<String> = def
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    if stored != expected {
        return Err(Error::Schema {
            table: def.name.to_string(),
            message: format!("columns {stored:?}, expected {expected:?}"),
        });
    }
    // The warehouse writes its files with the schema it declares (`files.rs`), so the table's
    // column types must be those too.
    let declared = declared_schema(def)?;
    for (s, d) in snapshot.schema().fields().zip(declared.fields()) {
        if s.data_type() != d.data_type() {
            return Err(Error::Schema {
                table: def.name.to_string(),
                message: format!(
                    "column {} is {:?} in the table, {:?} in the warehouse's definition",
                    s.name(),
                    s.data_type(),
                    d.data_type()
                ),
            });
        }
    }
    Ok(())
}

/// Streams record batches of one load into one table and commits them at once.
pub struct TableWriter {
    def: &'static Table,
    files: FileWriter,
    /// The load's application transaction, written with the commit.
    app_id: Option<String>,
}

impl std::fmt::Debug for TableWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableWriter")
            .field("table", &self.def.name)
            .field("app_id", &self.app_id)
            .finish()
    }
}

impl TableWriter {
    /// Streams a batch into the table's data files (not yet visible).
    pub async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        self.files.write(&batch).await
    }

    /// Declares columns that hold one value for the whole write (a load's lineage): they are
    /// written as a dictionary of one value and a run of zeros per row group, with no work per
    /// row. Every batch's first and last rows are checked against the first batch's value (the
    /// load builds those columns as one value repeated); a column whose first value is null
    /// is written as any other.
    pub fn with_constant_columns(mut self, names: &[&str]) -> Result<Self> {
        let names: Vec<&str> = names
            .iter()
            .copied()
            .filter(|n| self.def.schema().field_with_name(n).is_ok())
            .collect();
        self.files.constant_columns(&names)?;
        Ok(self)
    }

    /// Declares the columns written by hand (`files.rs`): the table's code columns (each of
    /// values from a code list) and division-code columns, each value looked up in its list
    /// (the divisions' start empty and fill as codes are met) and written as the entry's index
    /// (`files/coded.rs`); its date columns, as a dictionary of the days met
    /// (`files/days.rs`); and a load's record positions, as deltas (`files/deltas.rs`).
    pub fn with_coded_columns(mut self) -> Result<Self> {
        let lists = coded_lists(self.def);
        let columns: Vec<(&str, &[&str])> = lists
            .iter()
            .map(|(n, codes)| (*n, codes.as_slice()))
            .collect();
        self.files.coded_columns(&columns)?;
        let (dated, counted) = dated_and_counted(self.def);
        self.files.by_hand_columns(&dated, &counted)?;
        Ok(self)
    }

    /// Finishes the Parquet files written so far and returns them, staged: written but not yet
    /// in the table's log. [`Warehouse::commit_staged`] commits them.
    pub async fn finish(self) -> Result<Staged> {
        let adds = self.files.finish().await?;
        Ok(Staged {
            table: self.def,
            app_id: self.app_id,
            adds,
        })
    }
}

/// A [`TableWriter`] on a task of its own: the Parquet encoding of one batch runs while the
/// caller prepares the next (a load parses and checks on one core, encodes on the other). At
/// most [`BackgroundWriter::QUEUE`] batches wait, so memory stays bounded.
pub struct BackgroundWriter {
    table: &'static str,
    tx: Option<tokio::sync::mpsc::Sender<RecordBatch>>,
    task: Option<tokio::task::JoinHandle<Result<Staged>>>,
}

impl BackgroundWriter {
    /// Batches that may wait for the encoder.
    pub const QUEUE: usize = 4;

    /// Moves `writer` to a task of its own (on the current Tokio runtime).
    pub fn spawn(mut writer: TableWriter) -> BackgroundWriter {
        let table = writer.def.name;
        let (tx, mut rx) = tokio::sync::mpsc::channel::<RecordBatch>(Self::QUEUE);
        let task = tokio::spawn(async move {
            while let Some(batch) = rx.recv().await {
                writer.write(batch).await?;
            }
            writer.finish().await
        });
        BackgroundWriter {
            table,
            tx: Some(tx),
            task: Some(task),
        }
    }

    /// Queues a batch; waits while the queue is full. A failed writer returns its error here or
    /// from [`BackgroundWriter::finish`].
    pub async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        let Some(tx) = &self.tx else {
            return Ok(());
        };
        if tx.send(batch).await.is_err() {
            // The task stopped: it failed; its error is the one to report.
            self.tx = None;
            return Err(self
                .join()
                .await
                .err()
                .unwrap_or_else(|| Error::Background {
                    table: self.table.to_string(),
                    message: "the writer stopped early".into(),
                }));
        }
        Ok(())
    }

    /// Takes no more batches: the task writes those queued and closes its files, while the
    /// caller goes on ([`BackgroundWriter::finish`] waits for them). A batch written after this
    /// would be dropped: `write` is for before it.
    pub fn close(&mut self) {
        self.tx = None;
    }

    /// Waits for every queued batch to be written and returns the staged files.
    pub async fn finish(mut self) -> Result<Staged> {
        self.tx = None;
        self.join().await
    }

    async fn join(&mut self) -> Result<Staged> {
        let background = |message: String| Error::Background {
            table: self.table.to_string(),
            message,
        };
        let Some(task) = self.task.take() else {
            return Err(background("the writer has already stopped".into()));
        };
        task.await.map_err(|e| background(e.to_string()))?
    }
}

impl Drop for BackgroundWriter {
    /// A load that stops early (an error) leaves no half-written file behind its back.
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// Parquet files of one load written into one table, not yet committed.
#[derive(Debug)]
pub struct Staged {
    table: &'static Table,
    app_id: Option<String>,
    adds: Vec<deltalake::kernel::Add>,
}

impl Staged {
    /// Whether no file was staged (nothing was written).
    pub fn is_empty(&self) -> bool {
        self.adds.is_empty()
    }
}

/// Commits staged files of one table, possibly of several loads, in one Delta commit carrying
/// each load's application transaction.
async fn commit(
    cache: &Arc<Mutex<HashMap<&'static str, DeltaTable>>>,
    staged: Vec<Staged>,
) -> Result<()> {
    let Some(first) = staged.first() else {
        return Ok(());
    };
    let def = first.table;
    let name = def.name;
    let mut table = cache
        .lock()
        .expect("table cache")
        .get(name)
        .cloned()
        .ok_or_else(|| Error::Schema {
            table: name.to_string(),
            message: "committing to a table that was never opened".into(),
        })?;
    table
        .update_incremental(None)
        .await
        .map_err(Error::delta(name))?;
    // Logs are kept ten years (RETENTION); skipping the clean-up saves a log listing per commit.
    let mut props = CommitProperties::default().with_cleanup_expired_logs(Some(false));
    let ids: Vec<String> = staged.iter().filter_map(|s| s.app_id.clone()).collect();
    if !ids.is_empty() {
        props = props
            .with_application_transactions(ids.iter().map(|id| Transaction::new(id, 1)).collect())
            .with_metadata([(
                "plsw.load_ids".to_string(),
                serde_json::Value::from(ids.clone()),
            )]);
    }
    let adds: Vec<Action> = staged
        .into_iter()
        .flat_map(|s| s.adds)
        .map(Action::Add)
        .collect();
    let snapshot = table.snapshot().map_err(Error::delta(name))?;
    let finalized = CommitBuilder::from(props)
        .with_actions(adds)
        .build(
            Some(snapshot),
            table.log_store(),
            DeltaOperation::Write {
                mode: SaveMode::Append,
                partition_by: None,
                predicate: None,
            },
        )
        .await
        .map_err(Error::delta(name))?;
    // Keep the state after our commit, so the next write does not replay the log.
    table.state = Some(finalized.snapshot());
    cache.lock().expect("table cache").insert(name, table);
    Ok(())
}

/// A string column as `Utf8`, whatever string type the scan produced (DataFusion reads Parquet
/// strings as `Utf8View`).
pub(crate) fn utf8(a: &ArrayRef) -> Result<StringArray> {
    let cast = datafusion::arrow::compute::cast(a, &datafusion::arrow::datatypes::DataType::Utf8)
        .map_err(|e| Error::from(datafusion::error::DataFusionError::from(e)))?;
    Ok(cast.as_string::<i32>().clone())
}

/// One row of `loads`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadRecord {
    pub load_id: String,
    pub load_seq: i64,
    pub feed: String,
    pub source: String,
    pub content_sha256: String,
    /// Days since the epoch.
    pub as_of: Option<i32>,
    pub encoding: Option<String>,
    pub status: String,
    pub message: Option<String>,
    pub rows_read: i64,
    pub rows_accepted: i64,
    pub rows_quarantined: i64,
    /// Pulls: items received more than once.
    pub rows_repeated: i64,
    pub warnings: i64,
    pub bytes: i64,
    /// Pulls: the greatest `updated_at` received (UTC microseconds).
    pub watermark: Option<i64>,
    /// Microseconds since the epoch, UTC.
    pub started_at: i64,
    pub loaded_at: i64,
}

impl LoadRecord {
    fn to_batch(&self) -> RecordBatch {
        let s = |v: &str| Arc::new(StringArray::from(vec![v.to_string()])) as Arc<dyn Array>;
        let so =
            |v: &Option<String>| Arc::new(StringArray::from(vec![v.clone()])) as Arc<dyn Array>;
        let i = |v: i64| Arc::new(Int64Array::from(vec![v])) as Arc<dyn Array>;
        let ts = |v: i64| {
            Arc::new(TimestampMicrosecondArray::from(vec![v]).with_timezone("UTC"))
                as Arc<dyn Array>
        };
        let columns = vec![
            s(&self.load_id),
            i(self.load_seq),
            s(&self.feed),
            s(&self.source),
            s(&self.content_sha256),
            Arc::new(Date32Array::from(vec![self.as_of])) as Arc<dyn Array>,
            so(&self.encoding),
            s(&self.status),
            so(&self.message),
            i(self.rows_read),
            i(self.rows_accepted),
            i(self.rows_quarantined),
            i(self.rows_repeated),
            i(self.warnings),
            i(self.bytes),
            Arc::new(TimestampMicrosecondArray::from(vec![self.watermark]).with_timezone("UTC"))
                as Arc<dyn Array>,
            ts(self.started_at),
            ts(self.loaded_at),
        ];
        RecordBatch::try_new(tables::LOADS.schema(), columns)
            .expect("LoadRecord matches the loads schema")
    }

    fn from_batch(b: &RecordBatch, row: usize) -> LoadRecord {
        let text = |name: &str| -> Option<String> {
            let a = utf8(b.column_by_name(name)?).ok()?;
            (!a.is_null(row)).then(|| a.value(row).to_string())
        };
        let int = |name: &str| -> i64 {
            b.column_by_name(name)
                .map(|a| a.as_primitive::<Int64Type>().value(row))
                .unwrap_or(0)
        };
        let ts = |name: &str| -> i64 {
            b.column_by_name(name)
                .map(|a| a.as_primitive::<TimestampMicrosecondType>().value(row))
                .unwrap_or(0)
        };
        let watermark = b.column_by_name("watermark").and_then(|a| {
            let a = a.as_primitive::<TimestampMicrosecondType>();
            (!a.is_null(row)).then(|| a.value(row))
        });
        let as_of = b.column_by_name("as_of").and_then(|a| {
            let a = a.as_primitive::<Date32Type>();
            (!a.is_null(row)).then(|| a.value(row))
        });
        LoadRecord {
            load_id: text("load_id").unwrap_or_default(),
            load_seq: int("load_seq"),
            feed: text("feed").unwrap_or_default(),
            source: text("source").unwrap_or_default(),
            content_sha256: text("content_sha256").unwrap_or_default(),
            as_of,
            encoding: text("encoding"),
            status: text("status").unwrap_or_default(),
            message: text("message"),
            rows_read: int("rows_read"),
            rows_accepted: int("rows_accepted"),
            rows_quarantined: int("rows_quarantined"),
            rows_repeated: int("rows_repeated"),
            warnings: int("warnings"),
            bytes: int("bytes"),
            watermark,
            started_at: ts("started_at"),
            loaded_at: ts("loaded_at"),
        }
    }
}

/// A table's coded columns and their lists: each code column with its code list, each
/// division-code column with none (a column holds one level's codes, a few hundred at most for
/// cities and counties; a column of more, townships or villages, is handed back to parquet's
/// encoder past 4,096).
pub(crate) fn coded_lists(def: &Table) -> Vec<(&'static str, Vec<&'static str>)> {
    def.columns
        .iter()
        .filter_map(|c| match c.kind {
            Kind::Code(list) => Some((c.name, list.codes.iter().map(|(code, _)| *code).collect())),
            Kind::DivisionCode => Some((c.name, Vec::new())),
            _ => None,
        })
        .collect()
}

/// A table's date columns, and its record positions if it has them (a raw table's `record`):
/// the columns a load writes by hand as days and as deltas (`files/days.rs`, `files/deltas.rs`).
pub(crate) fn dated_and_counted(def: &Table) -> (Vec<&'static str>, Vec<&'static str>) {
    let dated = def
        .columns
        .iter()
        .filter(|c| matches!(c.kind, Kind::Date))
        .map(|c| c.name)
        .collect();
    let counted = ["record"]
        .into_iter()
        .filter(|n| def.schema().field_with_name(n).is_ok())
        .collect();
    (dated, counted)
}

/// How the warehouse writes a table's Parquet files: Snappy (but not for an id stored as
/// deltas), row groups of [`ROW_GROUP_ROWS`], and no dictionary for the columns with a value per
/// row.
pub(crate) fn writer_properties(def: &Table) -> WriterProperties {
    let mut props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS));
    // Columns with a value per row (ids, record positions, instants) get no dictionary:
    // building one costs a hash per value, only to be given up once it grows too large.
    for (name, encoding) in unique_columns(def) {
        props = props.set_column_dictionary_enabled(ColumnPath::from(name), false);
        if let Some(encoding) = encoding {
            props = props.set_column_encoding(ColumnPath::from(name), encoding);
        }
        // An id stored as the prefix it shares with the id before and the rest leaves Snappy
        // the rests, mostly digits, which it shrank by about a quarter at the price of 15% of
        // a load's writer (a year of legal aid at scale 10): stored as they are.
        if encoding == Some(Encoding::DELTA_BYTE_ARRAY) {
            props = props.set_column_compression(ColumnPath::from(name), Compression::UNCOMPRESSED);
        }
    }
    props.build()
}

/// The columns of a table with (nearly) a value per row: the last key column when it is an id,
/// the record position, and timestamps; each with the encoding it is stored in, if not plain.
fn unique_columns(def: &Table) -> Vec<(&'static str, Option<Encoding>)> {
    let mut out: Vec<(&'static str, Option<Encoding>)> = def
        .columns
        .iter()
        .filter_map(|c| match c.kind {
            Kind::Timestamp => Some((c.name, None)),
            // Ids of one system share long prefixes (`豫0100调2025…`): stored as the length of
            // the prefix shared with the id before and the rest, a year of mediation cases
            // takes 86 MB instead of 120, and Snappy has less to compress.
            Kind::Text if def.key.last() == Some(&c.name) => {
                Some((c.name, Some(Encoding::DELTA_BYTE_ARRAY)))
            }
            _ => None,
        })
        .collect();
    // A load's record positions count up by one: stored as deltas, a page of them takes a few
    // bytes, and Snappy has 8 bytes a row less to compress.
    if def.schema().field_with_name("record").is_ok() {
        out.push(("record", Some(Encoding::DELTA_BINARY_PACKED)));
    }
    out
}
