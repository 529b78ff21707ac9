//! The Parquet files of a table write, written by the warehouse itself rather than by
//! deltalake's writer, so that a column holding one value for the whole write (a load's
//! `load_id`, `loaded_from`, `loaded_at`, `feed`, `as_of`) costs nothing per row: each of its
//! column chunks is written by hand as a dictionary page of the one value and a data page of
//! one run of zeros, with the value as its minimum and maximum, instead of being interned,
//! compared for its statistics and encoded row by row. Every other column goes through
//! parquet's own Arrow column writers, with the same properties as before. A file that ends
//! within its first row group is stored with one `put` once it is complete; a longer one is
//! streamed, what each row group adds put as parts of a multipart upload as soon as it is
//! flushed, so that a writer holds a row group's bytes (or a part's), not a file's.
//!
//! The files' Delta statistics (`Add.stats`) are computed from the Parquet footer as
//! deltalake computes them (its `create_add` is crate-private); a test holds the two to the
//! same JSON and the same rows for every table of the warehouse.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use chrono::Timelike;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, SchemaRef, TimeUnit as ArrowTimeUnit};
use datafusion::arrow::datatypes::{Date32Type, Int64Type, TimestampMicrosecondType};
use datafusion::common::ScalarValue;
use datafusion::parquet::arrow::arrow_writer::{
    compute_leaves, ArrowColumnWriter, ArrowRowGroupWriterFactory,
};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::{
    Compression, Encoding, EncodingMask, LogicalType, PageType, TimeUnit, Type as PhysicalType,
};
use datafusion::parquet::column::page::{CompressedPage, Page, PageWriter};
use datafusion::parquet::column::writer::ColumnCloseResult;
use datafusion::parquet::data_type::ByteArray;
use datafusion::parquet::errors::ParquetError;
use datafusion::parquet::file::metadata::{
    ColumnChunkMetaData, OffsetIndexBuilder, PageEncodingStats, ParquetMetaData,
};
use datafusion::parquet::file::properties::{WriterProperties, WriterPropertiesPtr};
use datafusion::parquet::file::statistics::{Statistics, ValueStatistics};
use datafusion::parquet::file::writer::{SerializedFileWriter, SerializedPageWriter, TrackedWrite};
use datafusion::parquet::schema::types::ColumnDescPtr;
use deltalake::kernel::Add;
use deltalake::ObjectStore;
use object_store::{MultipartUpload, ObjectStoreExt};
use serde_json::{Map, Value};

use crate::error::{Error, Result};

mod coded;
mod days;
mod deltas;

/// Columns with statistics in the Delta log when the table does not say otherwise (deltalake's
/// `DEFAULT_NUM_INDEX_COLS`, the Delta protocol's default).
const DEFAULT_INDEXED_COLUMNS: usize = 32;

/// The size of every part but the last of a file streamed to a store of objects: S3 refuses
/// smaller ones, and R2 parts of different sizes (object_store's `MultipartUpload`). The local
/// file system takes any size, and a warehouse there streams each row group as it is flushed
/// ([`FileWriter::parts_of_any_size`]).
pub(crate) const MIN_PART: usize = 5 << 20;

/// Writes record batches of one schema into Parquet files under a table's root, rolling over to
/// a new file past `target_size` bytes, and returns the files as Delta `Add` actions.
pub(crate) struct FileWriter {
    table: &'static str,
    schema: SchemaRef,
    props: WriterPropertiesPtr,
    store: Arc<dyn ObjectStore>,
    row_group_rows: usize,
    target_size: usize,
    /// The size of a streamed file's parts but the last, or 0 for whatever a row group adds.
    min_part: usize,
    /// Top-level columns with statistics in the Delta log.
    indexed: usize,
    /// Per column: `Some` once the column is declared constant; its value is taken from the
    /// first batch.
    constant: Vec<Option<Option<ScalarValue>>>,
    /// Per constant column, the last array found to hold only its value: a batch's column that
    /// is a slice of it (as a load's batches are, of one array built per load) is not compared
    /// again.
    verified: Vec<Option<ArrayRef>>,
    /// Per column: `Some` once the column is declared to be written by hand: coded (its values
    /// from a known list), dated or counted.
    coded: Vec<Option<Hand>>,
    /// Encoded chunks of the constant columns, by column and row count.
    chunks: HashMap<(usize, usize), (Bytes, ColumnCloseResult)>,
    open: Option<OpenFile>,
    adds: Vec<Add>,
    writer_id: uuid::Uuid,
    part: usize,
}

struct OpenFile {
    file: SerializedFileWriter<Vec<u8>>,
    factory: ArrowRowGroupWriterFactory,
    /// The row group in progress, one writer per column.
    columns: Vec<ArrowColumnWriter>,
    /// The Parquet description of each column.
    descrs: Vec<ColumnDescPtr>,
    rows: usize,
    row_groups: usize,
    /// The file's upload, from its first part put on ([`FileWriter::stream`]).
    upload: Option<Upload>,
}

/// A file being streamed to the store: what each flushed row group adds is put as parts, with
/// at most one part in flight, on a task of its own, while the next row group is encoded. The
/// local file system takes parts of any size (it writes them into a file beside the target,
/// `<name>#<n>`, and renames it on completion); a store of objects wants them of 5 MiB at least
/// (some, of one size), see [`MIN_PART`].
struct Upload {
    path: String,
    parts: Box<dyn MultipartUpload>,
    in_flight: Option<tokio::task::JoinHandle<object_store::Result<()>>>,
}

impl Upload {
    /// Gives the upload up after a failure, as far as the store lets it (the local file
    /// system's staged file is removed when the upload is dropped in any case; a store of
    /// objects would otherwise keep the parts put).
    async fn abort(&mut self) {
        if let Some(part) = self.in_flight.take() {
            let _ = part.await;
        }
        if let Err(e) = self.parts.abort().await {
            tracing::warn!(path = %self.path, error = %e, "giving up an upload");
        }
    }

    /// Waits for the part in flight.
    async fn settle(&mut self) -> object_store::Result<()> {
        match self.in_flight.take() {
            None => Ok(()),
            Some(part) => part.await.map_err(|e| object_store::Error::Generic {
                store: "parts",
                source: Box::new(e),
            })?,
        }
    }
}

fn parquet_err(table: &str) -> impl Fn(ParquetError) -> Error + '_ {
    move |e| Error::Background {
        table: table.to_string(),
        message: format!("writing Parquet: {e}"),
    }
}

fn storing_err<'a>(table: &'a str, path: &'a str) -> impl Fn(object_store::Error) -> Error + 'a {
    move |e| Error::Background {
        table: table.to_string(),
        message: format!("storing {path}: {e}"),
    }
}

impl FileWriter {
    pub(crate) fn new(
        table: &'static str,
        schema: SchemaRef,
        props: WriterProperties,
        store: Arc<dyn ObjectStore>,
        configuration: &HashMap<String, Option<String>>,
        row_group_rows: usize,
        target_size: usize,
    ) -> Result<FileWriter> {
        let setting = |key: &str| configuration.get(key).cloned().flatten();
        if setting("delta.dataSkippingStatsColumns").is_some() {
            return Err(Error::Schema {
                table: table.to_string(),
                message:
                    "delta.dataSkippingStatsColumns is not supported by the warehouse's writer"
                        .into(),
            });
        }
        // As the Delta protocol reads it: -1 is every column (deltalake 1.1's writer reads
        // only unsigned numbers and falls back to 32); no table of the warehouse sets it.
        let indexed = match setting("delta.dataSkippingNumIndexedCols") {
            None => DEFAULT_INDEXED_COLUMNS,
            Some(v) => match v.parse::<i64>() {
                Ok(-1) => usize::MAX,
                Ok(n) if n >= 0 => n as usize,
                _ => {
                    return Err(Error::Schema {
                        table: table.to_string(),
                        message: format!("delta.dataSkippingNumIndexedCols is {v:?}"),
                    })
                }
            },
        };
        for f in schema.fields() {
            if matches!(f.data_type(), DataType::Struct(_) | DataType::Map(_, _)) {
                return Err(Error::Schema {
                    table: table.to_string(),
                    message: format!(
                        "column {} is nested; the writer takes flat columns and lists",
                        f.name()
                    ),
                });
            }
        }
        Ok(FileWriter {
            table,
            constant: vec![None; schema.fields().len()],
            verified: vec![None; schema.fields().len()],
            coded: (0..schema.fields().len()).map(|_| None).collect(),
            schema,
            props: Arc::new(props),
            store,
            row_group_rows,
            target_size,
            min_part: MIN_PART,
            indexed,
            chunks: HashMap::new(),
            open: None,
            adds: Vec::new(),
            writer_id: uuid::Uuid::new_v4(),
            part: 0,
        })
    }

    /// Streams a file's parts as its row groups are flushed, whatever their size (for a store
    /// that takes parts of any size: the local file system), instead of in parts of
    /// [`MIN_PART`].
    pub(crate) fn parts_of_any_size(&mut self) {
        self.min_part = 0;
    }

    /// Declares columns that hold one value in every row of every batch written: each is
    /// written by hand, once per row-group length. The value is taken from the first batch, and
    /// every batch's first and last row are checked against it; a column whose first value is
    /// null is written as any other.
    pub(crate) fn constant_columns(&mut self, names: &[&str]) -> Result<()> {
        if self.open.is_some() || !self.adds.is_empty() {
            return Err(Error::Schema {
                table: self.table.to_string(),
                message: "constant columns are declared before the first rows".into(),
            });
        }
        for name in names {
            let i = self.schema.index_of(name).map_err(|_| Error::Schema {
                table: self.table.to_string(),
                message: format!("no column {name} to hold constant"),
            })?;
            if !matches!(
                self.schema.field(i).data_type(),
                DataType::Utf8
                    | DataType::Date32
                    | DataType::Int64
                    | DataType::Timestamp(ArrowTimeUnit::Microsecond, _)
            ) {
                return Err(Error::Schema {
                    table: self.table.to_string(),
                    message: format!("column {name} cannot be held constant"),
                });
            }
            self.constant[i] = Some(None);
            // Held constant, it is not coded (the cheaper of the two).
            self.coded[i] = None;
        }
        Ok(())
    }

    /// Declares text columns whose values come from a known list (`codes`): each value is
    /// looked up in the list and the row group's chunk written by hand as the list and the
    /// indices (`coded.rs`). A value not in the list is added to the column's dictionary. A
    /// column declared constant stays constant.
    pub(crate) fn coded_columns(&mut self, columns: &[(&str, &[&str])]) -> Result<()> {
        if self.open.is_some() || !self.adds.is_empty() {
            return Err(Error::Schema {
                table: self.table.to_string(),
                message: "coded columns are declared before the first rows".into(),
            });
        }
        for (name, codes) in columns {
            let i = self.schema.index_of(name).map_err(|_| Error::Schema {
                table: self.table.to_string(),
                message: format!("no column {name} to code"),
            })?;
            if self.constant[i].is_some() {
                // Held constant already: written once per row-group length, which is cheaper.
                continue;
            }
            let field = self.schema.field(i);
            if field.data_type() != &DataType::Utf8 {
                return Err(Error::Schema {
                    table: self.table.to_string(),
                    message: format!("column {name} cannot be coded"),
                });
            }
            self.coded[i] = Some(Hand::Codes(coded::Coded::new(codes, field.is_nullable())));
        }
        Ok(())
    }

    /// Declares date columns to be written by hand as a dictionary of the days met and their
    /// indices (`days.rs`), and required 64-bit integer columns as deltas (`deltas.rs`), such
    /// as a load's record positions. A column declared constant stays constant.
    pub(crate) fn by_hand_columns(&mut self, dated: &[&str], counted: &[&str]) -> Result<()> {
        if self.open.is_some() || !self.adds.is_empty() {
            return Err(Error::Schema {
                table: self.table.to_string(),
                message: "columns written by hand are declared before the first rows".into(),
            });
        }
        for (names, counts) in [(dated, false), (counted, true)] {
            for name in names {
                let i = self.schema.index_of(name).map_err(|_| Error::Schema {
                    table: self.table.to_string(),
                    message: format!("no column {name} to write by hand"),
                })?;
                if self.constant[i].is_some() {
                    continue;
                }
                let field = self.schema.field(i);
                self.coded[i] = Some(match (field.data_type(), counts) {
                    (DataType::Date32, false) => Hand::Days(days::Days::new(field.is_nullable())),
                    (DataType::Int64, true) if !field.is_nullable() => {
                        Hand::Deltas(deltas::Deltas::default())
                    }
                    _ => {
                        return Err(Error::Schema {
                            table: self.table.to_string(),
                            message: format!(
                                "column {name} cannot be {}",
                                if counts { "stored as deltas" } else { "dated" }
                            ),
                        })
                    }
                });
            }
        }
        Ok(())
    }

    pub(crate) async fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let n = batch.num_rows();
        if n == 0 {
            return Ok(());
        }
        self.check(batch)?;
        let mut offset = 0;
        while offset < n {
            let table = self.table;
            let row_group_rows = self.row_group_rows;
            self.open_file()?;
            let FileWriter {
                open,
                schema,
                constant,
                coded,
                ..
            } = self;
            let open = open.as_mut().expect("opened above");
            let take = (n - offset).min(row_group_rows - open.rows);
            let part = batch.slice(offset, take);
            for (i, (field, writer)) in schema.fields().iter().zip(&mut open.columns).enumerate() {
                if constant[i].is_some() {
                    continue;
                }
                if let Some(c) = &mut coded[i] {
                    let pushed = c.push(part.column(i)).map_err(|message| Error::Schema {
                        table: table.to_string(),
                        message: format!("column {}: {message}", field.name()),
                    })?;
                    if pushed.is_ok() {
                        continue;
                    }
                    // Too many distinct values to code (or nulls to count): parquet's encoder
                    // takes the column from here, starting with the row group's rows so far.
                    let so_far = c.rows_so_far();
                    for leaf in compute_leaves(field, &so_far).map_err(parquet_err(table))? {
                        writer.write(&leaf).map_err(parquet_err(table))?;
                    }
                    coded[i] = None;
                }
                for leaf in compute_leaves(field, part.column(i)).map_err(parquet_err(table))? {
                    writer.write(&leaf).map_err(parquet_err(table))?;
                }
            }
            open.rows += take;
            offset += take;
            if open.rows >= row_group_rows {
                self.flush_row_group()?;
                if self
                    .open
                    .as_ref()
                    .is_some_and(|o| o.file.bytes_written() >= self.target_size)
                {
                    self.close_file().await?;
                } else {
                    self.stream().await?;
                }
            }
        }
        Ok(())
    }

    /// Closes the last file and returns every file written, as `Add` actions.
    pub(crate) async fn finish(mut self) -> Result<Vec<Add>> {
        self.close_file().await?;
        Ok(self.adds)
    }

    /// The batch has the writer's columns, and its constant columns the writer's values.
    fn check(&mut self, batch: &RecordBatch) -> Result<()> {
        let fields = batch.schema_ref().fields();
        let same = fields.len() == self.schema.fields().len()
            && fields
                .iter()
                .zip(self.schema.fields())
                .all(|(a, b)| a.name() == b.name() && a.data_type() == b.data_type());
        if !same {
            return Err(Error::Schema {
                table: self.table.to_string(),
                message: format!(
                    "batch columns {:?}, expected {:?}",
                    batch.schema(),
                    self.schema
                ),
            });
        }
        for (i, c) in self.constant.iter_mut().enumerate() {
            let Some(value) = c else { continue };
            let column = batch.column(i);
            if value.is_none() {
                let first = ScalarValue::try_from_array(column, 0).map_err(|e| Error::Schema {
                    table: self.table.to_string(),
                    message: e.to_string(),
                })?;
                if first.is_null() {
                    // A null lineage (not one the warehouse writes) is written as any column is.
                    *c = None;
                    continue;
                }
                *value = Some(first);
            }
            let expected = value.as_ref().expect("set above");
            let verified = &mut self.verified[i];
            if verified
                .as_ref()
                .is_some_and(|seen| slice_of(column.as_ref(), seen.as_ref()))
            {
                continue;
            }
            if !holds_only(column.as_ref(), expected) {
                return Err(Error::Schema {
                    table: self.table.to_string(),
                    message: format!(
                        "column {} was declared constant ({expected}) but holds other values",
                        self.schema.field(i).name()
                    ),
                });
            }
            *verified = Some(column.clone());
        }
        Ok(())
    }

    fn open_file(&mut self) -> Result<&mut OpenFile> {
        if self.open.is_none() {
            let err = parquet_err(self.table);
            let writer =
                ArrowWriter::try_new(Vec::new(), self.schema.clone(), Some((*self.props).clone()))
                    .map_err(&err)?;
            let (file, factory) = writer.into_serialized_writer().map_err(&err)?;
            let columns = factory.create_column_writers(0).map_err(&err)?;
            if columns.len() != self.schema.fields().len() {
                return Err(Error::Schema {
                    table: self.table.to_string(),
                    message: "a column with more than one Parquet leaf".into(),
                });
            }
            let descrs = file.schema_descr().columns().to_vec();
            self.open = Some(OpenFile {
                descrs,
                file,
                factory,
                columns,
                rows: 0,
                row_groups: 0,
                upload: None,
            });
        }
        Ok(self.open.as_mut().expect("opened above"))
    }

    fn flush_row_group(&mut self) -> Result<()> {
        let err = parquet_err(self.table);
        let Some(open) = self.open.as_mut() else {
            return Ok(());
        };
        let rows = open.rows;
        if rows == 0 {
            return Ok(());
        }
        let next = open
            .factory
            .create_column_writers(open.row_groups + 1)
            .map_err(&err)?;
        let columns = std::mem::replace(&mut open.columns, next);
        let mut group = open.file.next_row_group().map_err(&err)?;
        for (i, writer) in columns.into_iter().enumerate() {
            if let Some(c) = &mut self.coded[i] {
                debug_assert_eq!(c.rows(), rows);
                let descr = open.descrs[i].clone();
                let compression = self.props.compression(descr.path());
                let (bytes, close) = c.chunk(descr, compression).map_err(&err)?;
                group.append_column(&bytes, close).map_err(&err)?;
                continue;
            }
            match &self.constant[i] {
                Some(value) => {
                    let key = (i, rows);
                    if !self.chunks.contains_key(&key) {
                        let descr = open.descrs[i].clone();
                        let value = value.as_ref().ok_or_else(|| Error::Schema {
                            table: self.table.to_string(),
                            message: "a constant column with no value".into(),
                        })?;
                        let chunk = constant_chunk(descr, value, rows).map_err(&err)?;
                        self.chunks.insert(key, chunk);
                    }
                    let (bytes, close) = &self.chunks[&key];
                    group.append_column(bytes, close.clone()).map_err(&err)?;
                }
                None => writer
                    .close()
                    .and_then(|chunk| chunk.append_to_row_group(&mut group))
                    .map_err(&err)?,
            }
        }
        group.close().map_err(&err)?;
        open.rows = 0;
        open.row_groups += 1;
        Ok(())
    }

    /// The name of the file being written.
    fn file_path(&self) -> String {
        format!(
            "part-{:05}-{}-c000.snappy.parquet",
            self.part, self.writer_id
        )
    }

    /// Puts the open file's bytes so far (its row groups flushed) as the next parts of its
    /// upload, starting the upload at the file's first flushed row group. Each part is of
    /// [`FileWriter::min_part`] bytes exactly (the bytes past the last whole part wait for the
    /// next row group), or of whatever was flushed where any size will do. The part put before
    /// is waited for first: one is in flight at most.
    async fn stream(&mut self) -> Result<()> {
        let path = self.file_path();
        let min_part = self.min_part;
        let table = self.table;
        let Some(open) = self.open.as_mut() else {
            return Ok(());
        };
        open.file
            .flush()
            .map_err(|e| parquet_err(table)(e.into()))?;
        let buffer = open.file.inner_mut();
        let whole = match min_part {
            0 => buffer.len(),
            n => buffer.len() / n * n,
        };
        if whole == 0 {
            return Ok(());
        }
        // The next row group's bytes come to about as many: room for them is made once.
        let mut rest = Vec::with_capacity(buffer.len());
        rest.extend_from_slice(&buffer[whole..]);
        buffer.truncate(whole);
        let bytes = Bytes::from(std::mem::replace(buffer, rest));
        let upload = match &mut open.upload {
            Some(upload) => upload,
            None => {
                let location = deltalake::Path::from(path.as_str());
                let parts = (self.store.put_multipart(&location).await)
                    .map_err(storing_err(table, &path))?;
                open.upload.insert(Upload {
                    path,
                    parts,
                    in_flight: None,
                })
            }
        };
        let step = if min_part == 0 { whole } else { min_part };
        for at in (0..whole).step_by(step) {
            if let Err(e) = upload.settle().await {
                upload.abort().await;
                return Err(storing_err(table, &upload.path)(e));
            }
            // A part's future does nothing until polled: it is spawned to be written meanwhile.
            let part = upload.parts.put_part(bytes.slice(at..at + step).into());
            upload.in_flight = Some(tokio::spawn(part));
        }
        Ok(())
    }

    async fn close_file(&mut self) -> Result<()> {
        self.flush_row_group()?;
        let Some(mut open) = self.open.take() else {
            return Ok(());
        };
        if open.row_groups == 0 {
            return Ok(());
        }
        let metadata = open.file.finish().map_err(parquet_err(self.table))?;
        let size = open.file.bytes_written() as i64;
        let bytes = std::mem::take(open.file.inner_mut());
        let path = self.file_path();
        self.part += 1;
        match open.upload {
            // Nothing put yet (the file ended within its first row group, or before its first
            // whole part): stored whole.
            None => self
                .store
                .put(&deltalake::Path::from(path.as_str()), bytes.into())
                .await
                .map(drop),
            Some(mut upload) => {
                debug_assert_eq!(upload.path, path);
                // The last part may be of any size.
                let done = async {
                    upload.settle().await?;
                    upload.parts.put_part(bytes.into()).await?;
                    upload.parts.complete().await.map(drop)
                }
                .await;
                if done.is_err() {
                    upload.abort().await;
                }
                done
            }
        }
        .map_err(storing_err(self.table, &path))?;
        let stats = stats(&metadata, self.indexed).map_err(|message| Error::Background {
            table: self.table.to_string(),
            message,
        })?;
        self.adds.push(Add {
            path,
            partition_values: HashMap::new(),
            size,
            modification_time: chrono::Utc::now().timestamp_millis(),
            data_change: true,
            stats: Some(stats.to_string()),
            tags: None,
            deletion_vector: None,
            base_row_id: None,
            default_row_commit_version: None,
            clustering_provider: None,
        });
        Ok(())
    }
}

/// A column written by hand (see [`FileWriter::coded_columns`] and
/// [`FileWriter::by_hand_columns`]).
enum Hand {
    Codes(coded::Coded),
    Days(days::Days),
    Deltas(deltas::Deltas),
}

impl Hand {
    /// Takes a batch's column: `Ok(Err(Full))` when it does not fit (the column is left as it
    /// was before it), `Err` when it is not of the column's type.
    fn push(
        &mut self,
        a: &ArrayRef,
    ) -> std::result::Result<std::result::Result<(), coded::Full>, String> {
        let wrong = || format!("not of the declared type ({})", a.data_type());
        Ok(match self {
            Hand::Codes(c) => c.push(a.as_string_opt::<i32>().ok_or_else(wrong)?),
            Hand::Days(d) => d.push(a.as_primitive_opt::<Date32Type>().ok_or_else(wrong)?),
            Hand::Deltas(d) => d.push(a.as_primitive_opt::<Int64Type>().ok_or_else(wrong)?),
        })
    }

    /// The row group's rows so far.
    fn rows_so_far(&self) -> ArrayRef {
        match self {
            Hand::Codes(c) => Arc::new(c.rows_as_text()),
            Hand::Days(d) => Arc::new(d.rows_as_array()),
            Hand::Deltas(d) => Arc::new(d.rows_as_array()),
        }
    }

    fn rows(&self) -> usize {
        match self {
            Hand::Codes(c) => c.rows(),
            Hand::Days(d) => d.rows(),
            Hand::Deltas(d) => d.rows(),
        }
    }

    /// The row group's chunk, and the column made ready for the next row group.
    fn chunk(
        &mut self,
        descr: ColumnDescPtr,
        compression: Compression,
    ) -> std::result::Result<(Bytes, ColumnCloseResult), ParquetError> {
        match self {
            Hand::Codes(c) => c.chunk(descr, compression),
            Hand::Days(d) => d.chunk(descr, compression),
            Hand::Deltas(d) => d.chunk(descr, compression),
        }
    }
}

/// Whether every row of `column` holds `value` (not null): every value is compared, without
/// hashing (a string column's offsets must step by the value's length, and its bytes repeat
/// the value).
fn holds_only(column: &dyn Array, value: &ScalarValue) -> bool {
    if column.null_count() != 0 {
        return false;
    }
    match value {
        ScalarValue::Utf8(Some(v)) => {
            let Some(a) = column.as_string_opt::<i32>() else {
                return false;
            };
            let v = v.as_bytes();
            let offsets = a.value_offsets();
            let base = offsets[0] as usize;
            let steps = offsets
                .iter()
                .enumerate()
                .all(|(i, o)| *o as usize == base + i * v.len());
            steps
                && (v.is_empty()
                    || a.values()[base..base + v.len() * a.len()]
                        .chunks_exact(v.len())
                        .all(|c| c == v))
        }
        ScalarValue::Date32(Some(v)) => column
            .as_primitive_opt::<Date32Type>()
            .is_some_and(|a| a.values().iter().all(|x| x == v)),
        ScalarValue::Int64(Some(v)) => column
            .as_primitive_opt::<Int64Type>()
            .is_some_and(|a| a.values().iter().all(|x| x == v)),
        ScalarValue::TimestampMicrosecond(Some(v), _) => column
            .as_primitive_opt::<TimestampMicrosecondType>()
            .is_some_and(|a| a.values().iter().all(|x| x == v)),
        _ => false,
    }
}

/// Whether `column` is a slice of `seen` (without nulls): its rows are some of `seen`'s, in the
/// same memory (Arrow's buffers are immutable while shared). A string slice shares the values
/// and takes a range of the offsets; a primitive slice takes a range of the values.
fn slice_of(column: &dyn Array, seen: &dyn Array) -> bool {
    fn within(outer: &[u8], inner: &[u8]) -> bool {
        let (o, i) = (outer.as_ptr_range(), inner.as_ptr_range());
        o.start <= i.start && i.end <= o.end
    }
    fn primitive(a: &dyn Array) -> Option<&[u8]> {
        if let Some(a) = a.as_primitive_opt::<Date32Type>() {
            return Some(a.values().inner().as_slice());
        }
        if let Some(a) = a.as_primitive_opt::<Int64Type>() {
            return Some(a.values().inner().as_slice());
        }
        if let Some(a) = a.as_primitive_opt::<TimestampMicrosecondType>() {
            return Some(a.values().inner().as_slice());
        }
        None
    }
    if column.null_count() != 0 || column.data_type() != seen.data_type() {
        return false;
    }
    if let (Some(c), Some(s)) = (column.as_string_opt::<i32>(), seen.as_string_opt::<i32>()) {
        return c.values().as_ptr() == s.values().as_ptr()
            && c.values().len() == s.values().len()
            && within(s.offsets().inner().inner(), c.offsets().inner().inner());
    }
    match (primitive(column), primitive(seen)) {
        (Some(c), Some(s)) => within(s, c),
        _ => false,
    }
}

/// A column chunk of `rows` rows that all hold `value`, written page by page: a dictionary page
/// of the one value and a data page whose indices are one run of zeros, so that it costs the
/// same whatever the number of rows. Its minimum and maximum are the value, whole (parquet's
/// own writer would cut a string statistic to 64 bytes and raise its maximum's last byte: a
/// `loaded_from` longer than that gets exact statistics, where deltalake's writer gave a range
/// around it); it is not compressed (a few bytes); it has no column index (page statistics),
/// only an offset index, which readers take as a chunk whose pages cannot be pruned. The offsets in the result are within the returned buffer, as
/// `append_column` expects.
fn constant_chunk(
    descr: ColumnDescPtr,
    value: &ScalarValue,
    rows: usize,
) -> std::result::Result<(Bytes, ColumnCloseResult), ParquetError> {
    fn exact<T: Clone>(v: T) -> ValueStatistics<T> {
        ValueStatistics::new(Some(v.clone()), Some(v), None, Some(0), false)
            .with_min_is_exact(true)
            .with_max_is_exact(true)
    }
    let unsupported = || {
        ParquetError::General(format!(
            "a constant {value:?} for a {} column",
            descr.physical_type()
        ))
    };
    let (plain, stats) = match (descr.physical_type(), value) {
        (PhysicalType::BYTE_ARRAY, ScalarValue::Utf8(Some(s))) => {
            let len = u32::try_from(s.len()).map_err(|_| unsupported())?;
            let mut plain = len.to_le_bytes().to_vec();
            plain.extend_from_slice(s.as_bytes());
            let v = ByteArray::from(Bytes::copy_from_slice(s.as_bytes()));
            (plain, Statistics::ByteArray(exact(v)))
        }
        (PhysicalType::INT32, ScalarValue::Date32(Some(v))) => {
            (v.to_le_bytes().to_vec(), Statistics::Int32(exact(*v)))
        }
        (
            PhysicalType::INT64,
            ScalarValue::Int64(Some(v)) | ScalarValue::TimestampMicrosecond(Some(v), _),
        ) => (v.to_le_bytes().to_vec(), Statistics::Int64(exact(*v))),
        _ => return Err(unsupported()),
    };
    if descr.max_rep_level() > 0 || descr.max_def_level() > 1 {
        return Err(unsupported());
    }
    // A run's header is `count << 1`, which some readers (parquet-mr) take as a 32-bit int.
    let count = u32::try_from(rows)
        .ok()
        .filter(|n| *n < 1 << 30)
        .ok_or_else(unsupported)?;
    // The data page (v1): definition levels when the column is optional, each 1, as one RLE
    // run (a length, the run's header, its value in a byte); then the dictionary indices at a
    // bit width of 0, as one run of `rows` zeros (the header alone, as parquet's own encoder
    // writes a one-entry dictionary's indices).
    let mut data = Vec::new();
    if descr.max_def_level() == 1 {
        let mut levels = Vec::new();
        rle_run(&mut levels, count, 1, 1);
        data.extend_from_slice(&(levels.len() as u32).to_le_bytes());
        data.extend_from_slice(&levels);
    }
    data.push(0);
    rle_run(&mut data, count, 0, 0);
    let unencoded = match value {
        ScalarValue::Utf8(Some(s)) => Some(s.len() as i64 * rows as i64),
        _ => None,
    };
    dictionary_chunk(
        descr,
        Some((plain, 1)),
        data,
        count,
        Compression::UNCOMPRESSED,
        stats,
        unencoded,
    )
}

/// Appends `v` as an unsigned LEB128 varint (the RLE/bit-packing hybrid's run headers).
fn uleb128(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Appends one RLE run of the RLE/bit-packing hybrid encoding: `count` times `value`, at
/// `width` bits (the run's header, then the value in whole bytes).
fn rle_run(out: &mut Vec<u8>, count: u32, value: u32, width: u8) {
    uleb128(out, u64::from(count) << 1);
    let bytes = usize::from(width).div_ceil(8);
    out.extend_from_slice(&value.to_le_bytes()[..bytes]);
}

/// Appends `values` as one bit-packed run of the RLE/bit-packing hybrid encoding at `width`
/// bits each: the run's header (its groups of eight, shifted, and 1), then the values packed
/// from the least significant bit, the last group padded with zeros.
fn bit_packed(out: &mut Vec<u8>, values: impl ExactSizeIterator<Item = u32>, width: u8) {
    let groups = values.len().div_ceil(8);
    uleb128(out, ((groups as u64) << 1) | 1);
    out.reserve(groups * usize::from(width));
    let width = u32::from(width);
    let (mut acc, mut bits) = (0u64, 0u32);
    let padding = groups * 8 - values.len();
    for v in values.chain(std::iter::repeat_n(0, padding)) {
        acc |= u64::from(v) << bits;
        bits += width;
        while bits >= 8 {
            out.push(acc as u8);
            acc >>= 8;
            bits -= 8;
        }
    }
    debug_assert_eq!(bits, 0, "eight values of any width fill whole bytes");
}

/// A dictionary-encoded column chunk written page by page: the dictionary page (its PLAIN
/// values and their count) and one data page of the indices (see [`page_chunk`]).
fn dictionary_chunk(
    descr: ColumnDescPtr,
    dictionary: Option<(Vec<u8>, u32)>,
    body: Vec<u8>,
    rows: u32,
    compression: Compression,
    stats: Statistics,
    unencoded: Option<i64>,
) -> std::result::Result<(Bytes, ColumnCloseResult), ParquetError> {
    page_chunk(
        descr,
        dictionary,
        (body, Encoding::RLE_DICTIONARY),
        rows,
        compression,
        stats,
        unencoded,
    )
}

/// A column chunk written page by page: a dictionary page if there is one (its PLAIN values
/// and their count), and one v1 data page (`page`: its body, the levels and the values, and the
/// values' encoding) of `rows` rows, each compressed with `compression` (Snappy, or none), with
/// the chunk's statistics and an offset index, at offsets within the returned buffer as
/// `append_column` expects.
fn page_chunk(
    descr: ColumnDescPtr,
    dictionary: Option<(Vec<u8>, u32)>,
    page: (Vec<u8>, Encoding),
    rows: u32,
    compression: Compression,
    stats: Statistics,
    unencoded: Option<i64>,
) -> std::result::Result<(Bytes, ColumnCloseResult), ParquetError> {
    let compress = |raw: Vec<u8>| -> std::result::Result<(Bytes, usize), ParquetError> {
        let size = raw.len();
        Ok(match compression {
            Compression::SNAPPY => {
                let packed = snap::raw::Encoder::new()
                    .compress_vec(&raw)
                    .map_err(|e| ParquetError::External(Box::new(e)))?;
                (Bytes::from(packed), size)
            }
            _ => (Bytes::from(raw), size),
        })
    };
    let compression = match compression {
        Compression::SNAPPY => Compression::SNAPPY,
        _ => Compression::UNCOMPRESSED,
    };
    let mut sink = TrackedWrite::new(Vec::new());
    let mut pages = SerializedPageWriter::new(&mut sink);
    let dictionary = match dictionary {
        Some((plain, entries)) => {
            let (buf, size) = compress(plain)?;
            Some(pages.write_page(CompressedPage::new(
                Page::DictionaryPage {
                    num_values: entries,
                    buf,
                    encoding: Encoding::PLAIN,
                    is_sorted: false,
                },
                size,
            ))?)
        }
        None => None,
    };
    let (body, encoding) = page;
    let (buf, size) = compress(body)?;
    let page = pages.write_page(CompressedPage::new(
        Page::DataPage {
            buf,
            num_values: rows,
            encoding,
            def_level_encoding: Encoding::RLE,
            rep_level_encoding: Encoding::RLE,
            statistics: None,
        },
        size,
    ))?;
    pages.close()?;

    let mut offsets = OffsetIndexBuilder::new();
    offsets.append_row_count(i64::from(rows));
    offsets.append_offset_and_size(page.offset as i64, page.compressed_size as i32);
    offsets.append_unencoded_byte_array_data_bytes(unencoded);
    let mut written = page.bytes_written as i64;
    let mut uncompressed = page.uncompressed_size as i64;
    let mut encodings = vec![Encoding::RLE, encoding];
    let mut page_stats = vec![PageEncodingStats {
        page_type: PageType::DATA_PAGE,
        encoding,
        count: 1,
    }];
    if let Some(d) = &dictionary {
        written += d.bytes_written as i64;
        uncompressed += d.uncompressed_size as i64;
        encodings.push(Encoding::PLAIN);
        page_stats.insert(
            0,
            PageEncodingStats {
                page_type: PageType::DICTIONARY_PAGE,
                encoding: Encoding::PLAIN,
                count: 1,
            },
        );
    }
    let metadata = ColumnChunkMetaData::builder(descr)
        .set_compression(compression)
        .set_encodings_mask(EncodingMask::new_from_encodings(encodings.iter()))
        .set_page_encoding_stats(page_stats)
        .set_total_compressed_size(written)
        .set_total_uncompressed_size(uncompressed)
        .set_num_values(i64::from(rows))
        .set_dictionary_page_offset(dictionary.map(|d| d.offset as i64))
        .set_data_page_offset(page.offset as i64)
        .set_statistics(stats)
        .build()?;
    let bytes = Bytes::from(sink.into_inner()?);
    Ok((
        bytes,
        ColumnCloseResult {
            bytes_written: written as u64,
            rows_written: u64::from(rows),
            metadata,
            bloom_filter: None,
            column_index: None,
            offset_index: Some(offsets.build()),
        },
    ))
}

/// The Delta statistics of a written file (`numRecords`, `minValues`, `maxValues`,
/// `nullCount`), as deltalake 1.1's `stats_from_metadata` writes them for flat columns: a
/// repeated (list) column has none; strings, dates (`%Y-%m-%d`), UTC timestamps (to the
/// millisecond, `Z`), decimals (as numbers), integers and booleans have their minimum,
/// maximum and null count.
pub(crate) fn stats(meta: &ParquetMetaData, indexed: usize) -> std::result::Result<Value, String> {
    let schema = meta.file_metadata().schema_descr();
    let mut mins = Map::new();
    let mut maxs = Map::new();
    let mut nulls = Map::new();
    let mut tops: Vec<&str> = Vec::new();
    for (idx, descr) in schema.columns().iter().enumerate() {
        let top = descr.path().parts()[0].as_str();
        if !tops.contains(&top) {
            if tops.len() >= indexed {
                break;
            }
            tops.push(top);
        }
        if descr.max_rep_level() > 0 {
            continue;
        }
        let logical = descr.logical_type_ref();
        let mut min: Option<Stat> = None;
        let mut max: Option<Stat> = None;
        let mut null_count: u64 = 0;
        let mut any = false;
        for group in meta.row_groups() {
            let Some(s) = group.column(idx).statistics() else {
                continue;
            };
            any = true;
            null_count += s.null_count_opt().unwrap_or_default();
            if s.min_bytes_opt().is_none() || s.max_bytes_opt().is_none() {
                continue;
            }
            // As deltalake adds up its row groups' statistics.
            if let Some(v) = Stat::of(s, logical, true) {
                min = Some(match min {
                    Some(m) if m < v => m,
                    _ => v,
                });
            }
            if let Some(v) = Stat::of(s, logical, false) {
                max = Some(match max {
                    Some(m) if m > v => m,
                    _ => v,
                });
            }
        }
        if !any {
            continue;
        }
        let name = descr.name().to_string();
        if let Some(v) = min {
            mins.insert(name.clone(), v.json());
        }
        if let Some(v) = max {
            maxs.insert(name.clone(), v.json());
        }
        nulls.insert(name, Value::from(null_count as i64));
    }
    let mut out = Map::new();
    out.insert(
        "numRecords".into(),
        Value::from(meta.file_metadata().num_rows()),
    );
    out.insert("minValues".into(), Value::Object(mins));
    out.insert("maxValues".into(), Value::Object(maxs));
    out.insert("nullCount".into(), Value::Object(nulls));
    Ok(Value::Object(out))
}

/// One statistic, as deltalake's `StatsScalar` orders and writes it.
#[derive(Debug, Clone, PartialEq, PartialOrd)]
enum Stat {
    Bool(bool),
    Int32(i32),
    Int64(i64),
    Float32(f32),
    Float64(f64),
    Date(chrono::NaiveDate),
    Timestamp(chrono::NaiveDateTime),
    TimestampNtz(chrono::NaiveDateTime),
    Decimal { value: f64, scale: i32 },
    String(String),
}

impl Stat {
    fn of(s: &Statistics, logical: Option<&LogicalType>, min: bool) -> Option<Stat> {
        fn pick<T: Copy>(min: bool, lo: Option<&T>, hi: Option<&T>) -> Option<T> {
            if min {
                lo.copied()
            } else {
                hi.copied()
            }
        }
        Some(match (s, logical) {
            (Statistics::Boolean(v), _) => Stat::Bool(pick(min, v.min_opt(), v.max_opt())?),
            (Statistics::Int32(v), Some(LogicalType::Date)) => {
                let d = pick(min, v.min_opt(), v.max_opt())?;
                Stat::Date(
                    chrono::NaiveDate::from_ymd_opt(1970, 1, 1)? + chrono::Duration::days(d as i64),
                )
            }
            (Statistics::Int32(v), Some(LogicalType::Decimal(d))) => Stat::Decimal {
                value: pick(min, v.min_opt(), v.max_opt())? as f64 / 10f64.powi(d.scale),
                scale: d.scale,
            },
            (Statistics::Int32(v), _) => Stat::Int32(pick(min, v.min_opt(), v.max_opt())?),
            (Statistics::Int64(v), Some(LogicalType::Timestamp(t))) => {
                let v = pick(min, v.min_opt(), v.max_opt())?;
                let adjusted = t.is_adjusted_to_u_t_c;
                let t = match t.unit {
                    TimeUnit::MILLIS => chrono::DateTime::from_timestamp_millis(v),
                    TimeUnit::MICROS => chrono::DateTime::from_timestamp_micros(v),
                    TimeUnit::NANOS => chrono::DateTime::from_timestamp(
                        v.div_euclid(1_000_000_000),
                        v.rem_euclid(1_000_000_000) as u32,
                    ),
                }?
                .naive_utc();
                if adjusted {
                    Stat::Timestamp(t)
                } else {
                    Stat::TimestampNtz(t)
                }
            }
            (Statistics::Int64(v), Some(LogicalType::Decimal(d))) => {
                let v = pick(min, v.min_opt(), v.max_opt())?;
                let scale = d.scale;
                if scale == 0 {
                    Stat::Int64(v)
                } else {
                    Stat::Decimal {
                        value: v as f64 / 10f64.powi(scale),
                        scale,
                    }
                }
            }
            (Statistics::Int64(v), _) => Stat::Int64(pick(min, v.min_opt(), v.max_opt())?),
            (Statistics::Float(v), _) => Stat::Float32(pick(min, v.min_opt(), v.max_opt())?),
            (Statistics::Double(v), _) => Stat::Float64(pick(min, v.min_opt(), v.max_opt())?),
            (Statistics::ByteArray(v), Some(LogicalType::String)) => {
                let b = if min {
                    v.min_bytes_opt()
                } else {
                    v.max_bytes_opt()
                }
                .unwrap_or_default();
                Stat::String(String::from_utf8(b.to_vec()).ok()?)
            }
            // Binary, fixed-length and other statistics: deltalake skips or fails them, and no
            // table of the warehouse has them.
            _ => return None,
        })
    }

    fn json(self) -> Value {
        match self {
            Stat::Bool(v) => Value::Bool(v),
            Stat::Int32(v) => Value::from(v),
            Stat::Int64(v) => Value::from(v),
            Stat::Float32(v) => Value::from(v),
            Stat::Float64(v) => Value::from(v),
            Stat::Date(v) => Value::from(v.format("%Y-%m-%d").to_string()),
            Stat::Timestamp(v) => {
                let format = if v.nanosecond() == 0 {
                    "%Y-%m-%dT%H:%M:%SZ"
                } else {
                    "%Y-%m-%dT%H:%M:%S%.3fZ"
                };
                Value::from(v.format(format).to_string())
            }
            Stat::TimestampNtz(v) => {
                let format = if v.nanosecond() == 0 {
                    "%Y-%m-%d %H:%M:%S"
                } else {
                    "%Y-%m-%d %H:%M:%S%.3f"
                };
                Value::from(v.format(format).to_string())
            }
            Stat::Decimal { value, scale } => {
                if scale == 0 {
                    Value::from(value.round() as i64)
                } else {
                    Value::from(value)
                }
            }
            Stat::String(v) => Value::from(v),
        }
    }
}

#[cfg(test)]
mod tests;
