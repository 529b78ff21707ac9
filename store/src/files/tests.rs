use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, AsArray, BooleanArray, Date32Array, Decimal128Array, Float64Array, Int64Array,
    ListBuilder, StringArray, StringBuilder, TimestampMicrosecondArray,
};
use datafusion::arrow::compute::concat_batches;
use datafusion::arrow::datatypes::Schema;
use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::parquet::arrow::arrow_reader::{
    ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};
use datafusion::parquet::file::metadata::PageIndexPolicy;
use datafusion::parquet::file::page_index::column_index::ColumnIndexMetaData;
use deltalake::writer::{DeltaWriter, RecordBatchWriter};
use deltalake::DeltaTable;
use plsw_schemas::tables::{self, Table};

use super::*;
use crate::store::{coded_lists, dated_and_counted, writer_properties, Warehouse};

/// The columns that hold one value per load.
const CONSTANT: &[&str] = &["as_of", "load_id", "loaded_from", "loaded_at", "feed"];

/// `n` rows of `def`'s stored schema starting at row `first`: every type the tables use, nulls
/// in the nullable columns, text with Chinese, instants below the millisecond, and the
/// constant columns' one value.
fn rows(def: &Table, first: usize, n: usize) -> RecordBatch {
    let schema = def.schema();
    let columns: Vec<ArrayRef> = schema
        .fields()
        .iter()
        .enumerate()
        .map(|(c, f)| column(f, c, first, n))
        .collect();
    RecordBatch::try_new(schema, columns).expect("rows of the schema")
}

fn column(f: &Field, c: usize, first: usize, n: usize) -> ArrayRef {
    let constant = CONSTANT.contains(&f.name().as_str());
    let rows = first..first + n;
    // Every 7th value of a nullable column is null (none of a constant one).
    let null = |i: usize| f.is_nullable() && !constant && (i + c) % 7 == 3;
    let k = |i: usize| {
        if constant {
            0
        } else {
            (i * 7919 + c * 31) % 997
        }
    };
    match f.data_type() {
        DataType::Utf8 => {
            Arc::new(StringArray::from_iter(rows.map(|i| {
                (!null(i)).then(|| format!("{}值{:04}", f.name(), k(i)))
            })))
        }
        DataType::Int64 => Arc::new(Int64Array::from_iter(
            rows.map(|i| (!null(i)).then(|| k(i) as i64 - 400)),
        )),
        DataType::Float64 => Arc::new(Float64Array::from_iter(
            rows.map(|i| (!null(i)).then(|| k(i) as f64 * 0.37 - 100.0)),
        )),
        DataType::Boolean => Arc::new(BooleanArray::from_iter(
            rows.map(|i| (!null(i)).then(|| k(i) % 3 == 0)),
        )),
        DataType::Date32 => Arc::new(Date32Array::from_iter(
            rows.map(|i| (!null(i)).then(|| 19_000 + k(i) as i32)),
        )),
        DataType::Timestamp(_, tz) => {
            Arc::new(
                TimestampMicrosecondArray::from_iter(rows.map(|i| {
                    (!null(i)).then(|| 1_700_000_000_000_000 + k(i) as i64 * 1_234_567_891)
                }))
                .with_timezone_opt(tz.clone()),
            )
        }
        DataType::Decimal128(p, s) => Arc::new(
            Decimal128Array::from_iter(
                rows.map(|i| (!null(i)).then(|| k(i) as i128 * 12_345 - 5_000_000)),
            )
            .with_precision_and_scale(*p, *s)
            .expect("decimal"),
        ),
        DataType::List(item) => {
            let mut b = ListBuilder::new(StringBuilder::new()).with_field(item.clone());
            for i in rows {
                if null(i) {
                    b.append(false);
                } else {
                    for j in 0..k(i) % 3 {
                        b.values().append_value(format!("项{j}"));
                    }
                    b.append(true);
                }
            }
            Arc::new(b.finish())
        }
        other => panic!("no test values for {other}"),
    }
}

/// A warehouse in a directory of its own (kept while the directory lives).
async fn warehouse() -> (tempfile::TempDir, Warehouse) {
    let dir = tempfile::tempdir().expect("tempdir");
    let wh = Warehouse::open(dir.path().to_str().expect("utf-8 path"))
        .await
        .expect("warehouse");
    (dir, wh)
}

/// A writer of `schema` into `table`'s store, with row groups of `rows` rows and files rolled
/// over past `target` bytes.
fn writer(
    table: &DeltaTable,
    name: &'static str,
    schema: SchemaRef,
    props: WriterProperties,
    rows: usize,
    target: usize,
) -> FileWriter {
    FileWriter::new(
        name,
        schema,
        props,
        table.object_store(),
        &HashMap::new(),
        rows,
        target,
    )
    .expect("writer")
}

fn read(dir: &std::path::Path, table: &str, adds: &[Add]) -> Vec<RecordBatch> {
    adds.iter()
        .flat_map(|a| {
            let f = std::fs::File::open(dir.join(table).join(&a.path)).expect("file");
            // With the page index required, as a query reads it: every chunk has its offsets.
            let options =
                ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Required);
            ParquetRecordBatchReaderBuilder::try_new_with_options(f, options)
                .expect("parquet")
                .build()
                .expect("reader")
                .map(|b| b.expect("batch"))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// A writer of `cases` with the warehouse's properties, row groups of 500 rows and files
/// rolled over past `target` bytes.
fn cases_writer(table: &DeltaTable, target: usize) -> FileWriter {
    let def = &tables::CASES;
    writer(
        table,
        def.name,
        def.schema(),
        writer_properties(def),
        500,
        target,
    )
}

/// The rows of the files of `adds`, as one batch.
fn read_back(dir: &std::path::Path, def: &Table, adds: &[Add]) -> RecordBatch {
    concat_batches(&def.schema(), &read(dir, def.name, adds)).expect("concat")
}

fn stats_of(a: &Add) -> Value {
    serde_json::from_str(a.stats.as_deref().expect("stats")).expect("json")
}

/// Every table, written by our writer and by deltalake's with the same properties, gives the
/// same rows back and the same Delta statistics; the constant columns, written by hand, read
/// back as written, with the page index a query reads.
#[tokio::test]
async fn writes_what_deltalakes_writer_writes_with_the_same_statistics() {
    let (dir, wh) = warehouse().await;
    for def in tables::ALL {
        let table = wh.table(def).await.expect("table");
        // The warehouse's properties, with small row groups, so that files hold several, and a
        // partial one last.
        let props = writer_properties(def)
            .into_builder()
            .set_max_row_group_row_count(Some(1_000))
            .build();
        let batches: Vec<RecordBatch> = [(0, 700), (700, 1_500), (2_200, 333)]
            .into_iter()
            .map(|(first, n)| rows(def, first, n))
            .collect();
        let input = concat_batches(&def.schema(), &batches).expect("concat");

        let mut ours = writer(
            &table,
            def.name,
            def.schema(),
            props.clone(),
            1_000,
            usize::MAX,
        );
        let constant: Vec<&str> = CONSTANT
            .iter()
            .copied()
            .filter(|c| def.schema().field_with_name(c).is_ok())
            .collect();
        ours.constant_columns(&constant).expect("constant columns");
        // The code columns, with their lists, and the division codes (the test's values are
        // not in the lists: they join the dictionary as they are met).
        let lists = coded_lists(def);
        let coded: Vec<(&str, &[&str])> = lists.iter().map(|(n, c)| (*n, c.as_slice())).collect();
        ours.coded_columns(&coded).expect("coded columns");
        // The dates, as a dictionary of the days met, and the record positions, as deltas.
        let (dated, counted) = dated_and_counted(def);
        ours.by_hand_columns(&dated, &counted)
            .expect("columns by hand");
        let mut theirs = RecordBatchWriter::for_table(&table)
            .expect("deltalake writer")
            .with_writer_properties(props);
        for b in &batches {
            ours.write(b).await.expect("write");
            theirs.write(b.clone()).await.expect("deltalake write");
        }
        let ours = ours.finish().await.expect("finish");
        let theirs = theirs.flush().await.expect("flush");
        assert_eq!((ours.len(), theirs.len()), (1, 1), "{}", def.name);
        assert_eq!(
            stats_of(&ours[0]),
            stats_of(&theirs[0]),
            "statistics of {}",
            def.name
        );
        assert_eq!(stats_of(&ours[0])["numRecords"], 2_533, "{}", def.name);
        for adds in [&ours, &theirs] {
            let back = read(dir.path(), def.name, adds);
            let back = concat_batches(&back[0].schema(), &back).expect("concat");
            assert_eq!(back.columns(), input.columns(), "rows of {}", def.name);
        }
        let path = dir.path().join(def.name).join(&ours[0].path);
        let on_disk = std::fs::metadata(&path).expect("file").len();
        assert_eq!(ours[0].size as u64, on_disk, "{}", def.name);
        let file = std::fs::File::open(&path).expect("file");
        let meta = ParquetRecordBatchReaderBuilder::try_new(file)
            .expect("parquet")
            .metadata()
            .clone();
        let groups: Vec<i64> = meta.row_groups().iter().map(|g| g.num_rows()).collect();
        assert_eq!(groups, [1_000, 1_000, 533], "{}", def.name);
    }
}

/// A file rolls over once it passes the target size; each file has its own statistics and the
/// rows add up.
#[tokio::test]
async fn rolls_over_to_a_new_file_past_the_target_size() {
    let (dir, wh) = warehouse().await;
    let def = &tables::CASES;
    let table = wh.table(def).await.expect("table");
    let mut w = cases_writer(&table, 1);
    w.constant_columns(&["load_id", "loaded_from", "loaded_at"])
        .expect("constant");
    let input = rows(def, 0, 1_200);
    w.write(&input).await.expect("write");
    let adds = w.finish().await.expect("finish");
    // Every file reads back, the lineage chunks spliced into each.
    assert_eq!(read_back(dir.path(), def, &adds).columns(), input.columns());
    let counts: Vec<i64> = adds
        .iter()
        .map(|a| stats_of(a)["numRecords"].as_i64().expect("count"))
        .collect();
    assert_eq!(counts, [500, 500, 200]);
    let paths: std::collections::HashSet<&str> = adds.iter().map(|a| a.path.as_str()).collect();
    assert_eq!(paths.len(), 3);
    let load_id = &stats_of(&adds[0])["minValues"]["load_id"];
    assert!(load_id.as_str().is_some_and(|v| v.starts_with("load_id")));
    for a in &adds {
        assert_eq!(&stats_of(a)["minValues"]["load_id"], load_id);
        assert_eq!(&stats_of(a)["maxValues"]["load_id"], load_id);
    }
}

/// The files in the table's directory, but the log.
fn files_in(dir: &std::path::Path) -> Vec<(String, u64)> {
    let mut names: Vec<(String, u64)> = std::fs::read_dir(dir)
        .expect("table directory")
        .map(|e| e.expect("entry"))
        .filter(|e| e.file_name() != "_delta_log")
        // A staged file may be removed between the listing and its metadata.
        .filter_map(|e| {
            let size = e.metadata().ok()?.len();
            Some((e.file_name().to_string_lossy().into_owned(), size))
        })
        .collect();
    names.sort();
    names
}

/// A file of several row groups is streamed where parts may be of any size (the local file
/// system): each row group goes to the store as it is flushed (into `<name>#1` beside the file
/// until it is complete), and the writer keeps none of them; a writer dropped halfway leaves
/// nothing behind.
#[tokio::test]
async fn streams_a_file_row_group_by_row_group() {
    let (dir, wh) = warehouse().await;
    let def = &tables::CASES;
    let table = wh.table(def).await.expect("table");
    let root = dir.path().join(def.name);
    let new_writer = || {
        let mut w = cases_writer(&table, usize::MAX);
        w.parts_of_any_size();
        w
    };
    let mut w = new_writer();
    // Within the first row group: held, nothing stored yet.
    w.write(&rows(def, 0, 499)).await.expect("write");
    assert!(files_in(&root).is_empty(), "{:?}", files_in(&root));
    // Two row groups flushed: both are put (the first stored, the second maybe in flight), and
    // the writer holds no bytes of either.
    w.write(&rows(def, 499, 501)).await.expect("write");
    let open = w.open.as_ref().expect("a file open");
    assert_eq!(open.file.inner().len(), 0);
    let staged = files_in(&root);
    assert_eq!(staged.len(), 1, "{staged:?}");
    assert!(staged[0].0.ends_with(".parquet#1"), "{staged:?}");
    assert!(staged[0].1 > 0, "{staged:?}");
    w.write(&rows(def, 1_000, 200)).await.expect("write");
    let adds = w.finish().await.expect("finish");
    assert_eq!(adds.len(), 1);
    assert_eq!(
        files_in(&root),
        [(adds[0].path.clone(), adds[0].size as u64)]
    );
    assert_eq!(
        read_back(dir.path(), def, &adds).columns(),
        rows(def, 0, 1_200).columns()
    );

    // A writer dropped with its file half stored (a load that stopped early) leaves the
    // directory as it was; the staged part is removed on a blocking thread, so it is waited for.
    let before = files_in(&root);
    let mut w = new_writer();
    w.write(&rows(def, 0, 1_000)).await.expect("write");
    assert_eq!(files_in(&root).len(), before.len() + 1);
    drop(w);
    for _ in 0..200 {
        if files_in(&root) == before {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(files_in(&root), before);
}

/// Where a store wants parts of one size, a streamed file is put in parts of exactly that size
/// and the writer holds less than one part; the file reads back whole.
#[tokio::test]
async fn streams_a_file_in_parts_of_one_size() {
    let (dir, wh) = warehouse().await;
    let def = &tables::CASES;
    let table = wh.table(def).await.expect("table");
    let root = dir.path().join(def.name);
    let mut w = cases_writer(&table, usize::MAX);
    w.min_part = 8 * 1024;
    let input = rows(def, 0, 3_200);
    w.write(&input).await.expect("write");
    let open = w.open.as_ref().expect("a file open");
    assert!(open.upload.is_some(), "streamed");
    assert!(open.file.inner().len() < 8 * 1024);
    let put = open.file.bytes_written() - open.file.inner().len();
    assert_eq!(put % (8 * 1024), 0, "{put} bytes put in whole parts");
    assert!(put >= 2 * 8 * 1024, "{put} bytes: more than one part");
    let adds = w.finish().await.expect("finish");
    assert_eq!(
        files_in(&root),
        [(adds[0].path.clone(), adds[0].size as u64)]
    );
    assert_eq!(read_back(dir.path(), def, &adds).columns(), input.columns());
}

/// A column declared constant that is not is refused, not written with the wrong value.
#[tokio::test]
async fn refuses_a_constant_column_that_changes() {
    let (_dir, wh) = warehouse().await;
    let def = &tables::CASES;
    let table = wh.table(def).await.expect("table");
    let new_writer = || cases_writer(&table, usize::MAX);
    let mut w = new_writer();
    // `case_id` differs from row to row.
    w.constant_columns(&["case_id"]).expect("a text column");
    let err = w.write(&rows(def, 0, 10)).await.expect_err("not constant");
    assert!(err.to_string().contains("declared constant"), "{err}");
    // Another batch with another value than the first batch's.
    let mut w = new_writer();
    w.constant_columns(&["load_id"]).expect("constant");
    w.write(&rows(def, 0, 10)).await.expect("first batch");
    let other = rows(def, 10, 10);
    let mut columns = other.columns().to_vec();
    let i = def.schema().index_of("load_id").expect("load_id");
    columns[i] = Arc::new(StringArray::from(vec!["another load"; 10]));
    let other = RecordBatch::try_new(def.schema(), columns).expect("batch");
    let err = w.write(&other).await.expect_err("another load id");
    assert!(err.to_string().contains("declared constant"), "{err}");
    // Nor can a column be declared constant once rows are written.
    assert!(w.constant_columns(&["loaded_from"]).is_err());

    // One row in the middle of a batch differs: its first and last rows are the first batch's
    // value, yet the batch is refused.
    let i = def.schema().index_of("loaded_from").expect("loaded_from");
    {
        let odd = Some("another file");
        let mut w = new_writer();
        w.constant_columns(&["loaded_from"]).expect("constant");
        w.write(&rows(def, 0, 10)).await.expect("first batch");
        let same = rows(def, 10, 10);
        let value = same.column(i).as_string::<i32>().value(0).to_string();
        let mut values = vec![Some(value.as_str()); 10];
        values[4] = odd;
        let mut columns = same.columns().to_vec();
        columns[i] = Arc::new(StringArray::from(values));
        let batch = RecordBatch::try_new(def.schema(), columns).expect("batch");
        let err = w.write(&batch).await.expect_err("a row differs");
        assert!(err.to_string().contains("declared constant"), "{err}");
    }

    // Booleans cannot be declared constant.
    let mut w = new_writer();
    assert!(w.constant_columns(&["migrant_worker"]).is_err());
    assert!(w.constant_columns(&["loaded_at"]).is_ok());
}

/// A table whose column types are not the warehouse's definition is refused when opened: the
/// warehouse writes its files with the types it declares.
#[tokio::test]
async fn refuses_a_table_whose_column_types_differ() {
    use deltalake::kernel::engine::arrow_conversion::TryIntoKernel;
    use deltalake::kernel::StructType;

    let dir = tempfile::tempdir().expect("tempdir");
    let def = &tables::CASES;
    let mut fields: Vec<Field> = def
        .schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    let i = fields
        .iter()
        .position(|f| f.data_type() == &DataType::Utf8)
        .expect("a text column");
    fields[i] = Field::new(fields[i].name(), DataType::Int64, fields[i].is_nullable());
    let changed = fields[i].name().clone();
    let schema: StructType = (&Schema::new(fields))
        .try_into_kernel()
        .expect("kernel schema");
    let path = dir.path().join(def.name);
    std::fs::create_dir_all(&path).expect("table directory");
    let url = url::Url::from_directory_path(&path).expect("url");
    deltalake::DeltaTableBuilder::from_url(url)
        .expect("builder")
        .build()
        .expect("table")
        .create()
        .with_columns(schema.fields().cloned())
        .await
        .expect("created");

    let Err(err) = Warehouse::open(dir.path().to_str().expect("utf-8 path")).await else {
        panic!("a table of other types opened");
    };
    assert!(err.to_string().contains(&changed), "{err}");
    assert!(err.to_string().contains("Long"), "{err}");
}

/// An optional column held constant is written with its definition levels; one whose value is
/// null is written as any column is; both read back as written, page index and all.
#[tokio::test]
async fn writes_optional_and_null_constant_columns() {
    let (dir, wh) = warehouse().await;
    let table = wh.table(&tables::CASES).await.expect("table");
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("tag", DataType::Utf8, true),
        Field::new("gone", DataType::Utf8, true),
        Field::new("day", DataType::Date32, true),
        Field::new(
            "at",
            DataType::Timestamp(ArrowTimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
    ]));
    let batch = |first: i64, n: usize| {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from_iter_values(first..first + n as i64)),
            Arc::new(StringArray::from(vec![Some("河南省郑州市"); n])),
            Arc::new(StringArray::from(vec![None::<&str>; n])),
            Arc::new(Date32Array::from(vec![Some(20_000); n])),
            Arc::new(
                TimestampMicrosecondArray::from(vec![1_764_000_000_123_456; n])
                    .with_timezone("UTC"),
            ),
        ];
        RecordBatch::try_new(schema.clone(), columns).expect("batch")
    };
    let mut w = writer(
        &table,
        "cases",
        schema.clone(),
        WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_max_row_group_row_count(Some(300))
            .build(),
        300,
        usize::MAX,
    );
    w.constant_columns(&["tag", "gone", "day", "at"])
        .expect("constant");
    let batches = [batch(0, 500), batch(500, 200)];
    for b in &batches {
        w.write(b).await.expect("write");
    }
    let adds = w.finish().await.expect("finish");
    assert_eq!(adds.len(), 1);
    let back = read(dir.path(), "cases", &adds);
    let back = concat_batches(&schema, &back).expect("concat");
    let input = concat_batches(&schema, &batches).expect("concat");
    assert_eq!(back.columns(), input.columns());
    let stats = stats_of(&adds[0]);
    assert_eq!(stats["minValues"]["tag"], "河南省郑州市");
    assert_eq!(stats["maxValues"]["day"], "2024-10-04");
    assert_eq!(stats["minValues"]["at"], "2025-11-24T16:00:00.123Z");
    assert_eq!(stats["nullCount"]["gone"], 700);
    assert_eq!(stats["nullCount"]["tag"], 0);

    // The constant chunks are a dictionary page and one data page each, not compressed.
    let file = std::fs::File::open(dir.path().join("cases").join(&adds[0].path)).expect("file");
    let options = ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Required);
    let reader =
        ParquetRecordBatchReaderBuilder::try_new_with_options(file, options).expect("parquet");
    let meta = reader.metadata();
    let groups: Vec<i64> = meta.row_groups().iter().map(|g| g.num_rows()).collect();
    assert_eq!(groups, [300, 300, 100]);
    let offsets = meta.offset_index().expect("offset index");
    for (g, group) in meta.row_groups().iter().enumerate() {
        for c in [1, 3, 4] {
            let chunk = group.column(c);
            assert_eq!(chunk.compression(), Compression::UNCOMPRESSED);
            assert!(chunk.dictionary_page_offset().is_some());
            assert_eq!(offsets[g][c].page_locations().len(), 1);
            assert_eq!(chunk.num_values(), group.num_rows());
        }
        assert_ne!(group.column(2).compression(), Compression::UNCOMPRESSED);
    }

    // A null in the middle of an optional constant column is refused.
    let mut w = writer(
        &table,
        "cases",
        schema.clone(),
        WriterProperties::builder().build(),
        300,
        usize::MAX,
    );
    w.constant_columns(&["tag"]).expect("constant");
    let b = batch(0, 10);
    let mut columns = b.columns().to_vec();
    let mut tags = vec![Some("河南省郑州市"); 10];
    tags[5] = None;
    columns[1] = Arc::new(StringArray::from(tags));
    let b = RecordBatch::try_new(schema.clone(), columns).expect("batch");
    let err = w.write(&b).await.expect_err("a null among the values");
    assert!(err.to_string().contains("declared constant"), "{err}");
}

/// A slice of an array already compared is recognised by its memory; any other array is not
/// (and is compared row by row).
#[test]
fn knows_a_slice_of_a_compared_array() {
    let seen: ArrayRef = Arc::new(StringArray::from(vec!["load-1"; 10]));
    assert!(slice_of(seen.slice(2, 5).as_ref(), seen.as_ref()));
    assert!(slice_of(seen.as_ref(), seen.as_ref()));
    let equal: ArrayRef = Arc::new(StringArray::from(vec!["load-1"; 10]));
    assert!(!slice_of(equal.as_ref(), seen.as_ref()));
    assert!(!slice_of(seen.as_ref(), seen.slice(0, 5).as_ref()));
    let seen: ArrayRef = Arc::new(Int64Array::from(vec![7; 10]));
    assert!(slice_of(seen.slice(3, 4).as_ref(), seen.as_ref()));
    assert!(!slice_of(seen.as_ref(), seen.slice(3, 4).as_ref()));
    let equal: ArrayRef = Arc::new(Int64Array::from(vec![7; 10]));
    assert!(!slice_of(equal.as_ref(), seen.as_ref()));
    let date: ArrayRef = Arc::new(Date32Array::from(vec![7; 10]));
    assert!(!slice_of(date.as_ref(), seen.as_ref()));
    // Every row holds the value, or not.
    let v = ScalarValue::Utf8(Some("load-1".into()));
    assert!(holds_only(&StringArray::from(vec!["load-1"; 10]), &v));
    let mut odd = vec!["load-1"; 10];
    odd[9] = "load-2";
    assert!(!holds_only(&StringArray::from(odd), &v));
    assert!(!holds_only(&StringArray::from(vec!["load-"; 12]), &v));
}

/// A coded column reads back as written, at every bit width (lists of 1 to 9 codes), with
/// nulls, values not in the list, and row groups that use only some entries; its statistics
/// are the entries used.
#[tokio::test]
async fn writes_coded_columns() {
    let (dir, wh) = warehouse().await;
    let table = wh.table(&tables::CASES).await.expect("table");
    let long: Vec<String> = (0..40).map(|i| format!("c{i:02}")).collect();
    let long: Vec<&str> = long.iter().map(String::as_str).collect();
    let lists: [&[&str]; 5] = [
        &["只有"],
        &["a", "b"],
        &["调解", "公证", "援助", "鉴定", "e"],
        &["1", "2", "3", "4", "5", "6", "7", "8", "9"],
        // Looked up in a hash table.
        &long,
    ];
    for (l, list) in lists.iter().enumerate() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("code", DataType::Utf8, false),
            Field::new("maybe", DataType::Utf8, true),
        ]));
        // Row group 0 uses only the list's first entry; later ones all entries, nulls in
        // `maybe` (the last row group nothing else) and a value that is not in the list.
        let value = |i: usize| {
            if i < 300 {
                list[0].to_string()
            } else if i % 97 == 5 {
                format!("不在表中{l}")
            } else {
                list[(i * 7 + l) % list.len()].to_string()
            }
        };
        let batch = |first: usize, n: usize| {
            let rows = first..first + n;
            let columns: Vec<ArrayRef> = vec![
                Arc::new(Int64Array::from_iter_values(rows.clone().map(|i| i as i64))),
                Arc::new(StringArray::from_iter_values(rows.clone().map(value))),
                Arc::new(StringArray::from_iter(
                    rows.map(|i| (i % 5 != 2 && i < 600).then(|| value(i + 3))),
                )),
            ];
            RecordBatch::try_new(schema.clone(), columns).expect("batch")
        };
        let batches = [batch(0, 250), batch(250, 400), batch(650, 77)];
        let input = concat_batches(&schema, &batches).expect("concat");
        // In one file, and rolled over after every row group (the dictionary goes on from
        // file to file).
        let mut files = Vec::new();
        for target in [usize::MAX, 1] {
            let mut w = writer(
                &table,
                "cases",
                schema.clone(),
                WriterProperties::builder()
                    .set_compression(Compression::SNAPPY)
                    .build(),
                300,
                target,
            );
            w.coded_columns(&[("code", list), ("maybe", list)])
                .expect("coded");
            for b in &batches {
                w.write(b).await.expect("write");
            }
            let adds = w.finish().await.expect("finish");
            let back = read(dir.path(), "cases", &adds);
            let back = concat_batches(&schema, &back).expect("concat");
            assert_eq!(back.columns(), input.columns(), "list {l}");
            files.push(adds);
        }
        assert_eq!(files[1].len(), 3);
        let adds = &files[0];

        // The statistics are those of the values written.
        let text = |c: usize| {
            let a = input.column(c).as_string::<i32>();
            let mut v: Vec<&str> = a.iter().flatten().collect();
            v.sort();
            v
        };
        let stats = stats_of(&adds[0]);
        for (c, name) in [(1, "code"), (2, "maybe")] {
            let v = text(c);
            assert_eq!(stats["minValues"][name], v[0], "list {l} {name}");
            assert_eq!(
                stats["maxValues"][name],
                *v.last().expect("values"),
                "list {l}"
            );
        }
        assert_eq!(stats["nullCount"]["maybe"], input.column(2).null_count());
        assert_eq!(stats["nullCount"]["code"], 0);

        // Row group 0 holds the list's first entry alone: its statistics say so.
        let file = std::fs::File::open(dir.path().join("cases").join(&adds[0].path)).expect("file");
        let reader = ParquetRecordBatchReaderBuilder::try_new(file).expect("parquet");
        let meta = reader.metadata();
        let groups: Vec<i64> = meta.row_groups().iter().map(|g| g.num_rows()).collect();
        assert_eq!(groups, [300, 300, 127]);
        let first = meta.row_groups()[0]
            .column(1)
            .statistics()
            .expect("statistics");
        assert_eq!(first.min_bytes_opt(), Some(list[0].as_bytes()));
        assert_eq!(first.max_bytes_opt(), Some(list[0].as_bytes()));
        assert_eq!(
            meta.row_groups()[1].column(1).compression(),
            Compression::SNAPPY
        );
    }
}

/// A coded column with more distinct values than a dictionary takes is handed to parquet's
/// encoder halfway through a row group, and reads back as written.
#[tokio::test]
async fn hands_a_column_of_too_many_values_to_parquet() {
    let (dir, wh) = warehouse().await;
    let table = wh.table(&tables::CASES).await.expect("table");
    let schema = Arc::new(Schema::new(vec![
        Field::new("code", DataType::Utf8, false),
        Field::new("maybe", DataType::Utf8, true),
    ]));
    let batch = |first: usize, n: usize| {
        let rows = first..first + n;
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(
                rows.clone().map(|i| format!("{:06}", 410000 + i)),
            )),
            Arc::new(StringArray::from_iter(
                rows.map(|i| (i % 3 != 0).then(|| format!("{i}"))),
            )),
        ];
        RecordBatch::try_new(schema.clone(), columns).expect("batch")
    };
    let mut w = writer(
        &table,
        "cases",
        schema.clone(),
        WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .build(),
        3_000,
        usize::MAX,
    );
    w.coded_columns(&[("code", &[]), ("maybe", &["1", "2"])])
        .expect("coded");
    // 4,096 distinct codes fill the dictionary in the second row group, in the middle of the
    // batch that starts at 3,500; `maybe` fills it later (two of three rows have a value).
    let batches: Vec<RecordBatch> = (0..8).map(|b| batch(b * 1_000, 1_000)).collect();
    for b in &batches {
        w.write(b).await.expect("write");
    }
    let adds = w.finish().await.expect("finish");
    let back = read(dir.path(), "cases", &adds);
    let back = concat_batches(&schema, &back).expect("concat");
    let input = concat_batches(&schema, &batches).expect("concat");
    assert_eq!(back.columns(), input.columns());
    let stats = stats_of(&adds[0]);
    assert_eq!(stats["minValues"]["code"], "410000");
    assert_eq!(stats["maxValues"]["code"], "417999");
    assert_eq!(stats["nullCount"]["maybe"], input.column(1).null_count());
    // The first row group is coded (no page index of its own); the last is parquet's.
    let file = std::fs::File::open(dir.path().join("cases").join(&adds[0].path)).expect("file");
    let options = ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Optional);
    let reader =
        ParquetRecordBatchReaderBuilder::try_new_with_options(file, options).expect("parquet");
    let meta = reader.metadata();
    let groups: Vec<i64> = meta.row_groups().iter().map(|g| g.num_rows()).collect();
    assert_eq!(groups, [3_000, 3_000, 2_000]);
    let indexed = |g: usize| {
        !matches!(
            meta.column_index().expect("column index")[g][0],
            ColumnIndexMetaData::NONE
        )
    };
    assert!(!indexed(0), "written by hand, without page statistics");
    assert!(
        indexed(2),
        "written by parquet's encoder, with page statistics"
    );
}

/// Dates written as a dictionary of the days met and record positions as deltas read back as
/// written: positions with gaps, a jump, negative and extreme values (whose deltas wrap); days
/// before the epoch, nulls, and more distinct days than a dictionary takes, which hands the
/// column to parquet's encoder in the middle of a row group. Each row group's statistics are
/// its values'.
#[tokio::test]
async fn writes_dates_and_positions_by_hand() {
    let (dir, wh) = warehouse().await;
    let table = wh.table(&tables::CASES).await.expect("table");
    let schema = Arc::new(Schema::new(vec![
        Field::new("record", DataType::Int64, false),
        Field::new("day", DataType::Date32, false),
        Field::new("maybe", DataType::Date32, true),
    ]));
    let record = |i: usize| -> i64 {
        match i {
            0 => i64::MIN,
            1 => i64::MAX,
            2 => -5,
            _ if i < 2_000 => i as i64 + (i as i64 / 37) * 3,
            _ => 1 << 40 | i as i64,
        }
    };
    // A month's days (some before the epoch) until row 2,000, then a new day every row: the
    // dictionaries fill in the third row group.
    let day = |i: usize| -> i32 {
        if i < 2_000 {
            (i % 31) as i32 - 10
        } else {
            20_000 + i as i32
        }
    };
    let batch = |first: usize, n: usize| {
        let rows = first..first + n;
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from_iter_values(rows.clone().map(record))),
            Arc::new(Date32Array::from_iter_values(rows.clone().map(day))),
            Arc::new(Date32Array::from_iter(
                rows.map(|i| (i % 4 != 1).then(|| day(i * 3) + 1)),
            )),
        ];
        RecordBatch::try_new(schema.clone(), columns).expect("batch")
    };
    let batches: Vec<RecordBatch> = (0..9).map(|b| batch(b * 1_000, 1_000)).collect();
    let input = concat_batches(&schema, &batches).expect("concat");
    let mut w = writer(
        &table,
        "cases",
        schema.clone(),
        WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .build(),
        3_000,
        usize::MAX,
    );
    w.by_hand_columns(&["day", "maybe"], &["record"])
        .expect("by hand");
    for b in &batches {
        w.write(b).await.expect("write");
    }
    let adds = w.finish().await.expect("finish");
    let back = read(dir.path(), "cases", &adds);
    let back = concat_batches(&schema, &back).expect("concat");
    assert_eq!(back.columns(), input.columns());

    let file = std::fs::File::open(dir.path().join("cases").join(&adds[0].path)).expect("file");
    let options = ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Optional);
    let reader =
        ParquetRecordBatchReaderBuilder::try_new_with_options(file, options).expect("parquet");
    let meta = reader.metadata();
    for (g, group) in meta.row_groups().iter().enumerate() {
        let part = input.slice(g * 3_000, 3_000);
        let records = part
            .column(0)
            .as_primitive::<datafusion::arrow::datatypes::Int64Type>();
        let stats = group.column(0).statistics().expect("statistics");
        let (lo, hi) = match stats {
            Statistics::Int64(s) => (s.min_opt().copied(), s.max_opt().copied()),
            other => panic!("{other:?}"),
        };
        assert_eq!(lo, records.iter().flatten().min(), "row group {g}");
        assert_eq!(hi, records.iter().flatten().max(), "row group {g}");
        assert!(group
            .column(0)
            .encodings()
            .any(|e| e == Encoding::DELTA_BINARY_PACKED));
        for c in [1, 2] {
            let days = part.column(c).as_primitive::<Date32Type>();
            let stats = group.column(c).statistics().expect("statistics");
            let (lo, hi, nulls) = match stats {
                Statistics::Int32(s) => (
                    s.min_opt().copied(),
                    s.max_opt().copied(),
                    s.null_count_opt(),
                ),
                other => panic!("{other:?}"),
            };
            assert_eq!(lo, days.iter().flatten().min(), "row group {g} column {c}");
            assert_eq!(hi, days.iter().flatten().max(), "row group {g} column {c}");
            assert_eq!(
                nulls,
                Some(days.null_count() as u64),
                "row group {g} column {c}"
            );
        }
    }
    // The first row group's dates are written by hand (no page index of their own); the last
    // one's `day` by parquet's encoder, which took it when its dictionary filled.
    let indexed = |g: usize, c: usize| {
        !matches!(
            meta.column_index().expect("column index")[g][c],
            ColumnIndexMetaData::NONE
        )
    };
    assert!(!indexed(0, 1) && !indexed(0, 2) && !indexed(0, 0));
    assert!(
        indexed(2, 1) && indexed(2, 2),
        "handed to parquet's encoder"
    );
    let stats = stats_of(&adds[0]);
    assert_eq!(stats["minValues"]["record"], i64::MIN);
    assert_eq!(stats["maxValues"]["day"], "2049-05-25");
}

/// A table's id stored as deltas is not compressed; its other columns are, with Snappy.
#[test]
fn ids_stored_as_deltas_are_not_compressed() {
    use datafusion::parquet::schema::types::ColumnPath;
    let props = writer_properties(&tables::CASES);
    let codec = |c: &str| props.compression(&ColumnPath::from(c));
    assert_eq!(codec("case_id"), Compression::UNCOMPRESSED);
    assert_eq!(codec("county_code"), Compression::SNAPPY);
    assert_eq!(codec("record"), Compression::SNAPPY);
}

/// A row group that starts with the day the one before ended on, then another day, reads back
/// as written, with that day in its statistics (the day found last is looked up again in a new
/// row group, which marks it as used there).
#[tokio::test]
async fn a_day_that_runs_across_row_groups_stays_in_both() {
    let (dir, wh) = warehouse().await;
    let table = wh.table(&tables::CASES).await.expect("table");
    let schema = Arc::new(Schema::new(vec![Field::new(
        "day",
        DataType::Date32,
        false,
    )]));
    let days = Date32Array::from(vec![1, 2, 5, 5, 5, 7]);
    let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(days.clone())]).expect("batch");
    let mut w = writer(
        &table,
        "cases",
        schema.clone(),
        WriterProperties::builder().build(),
        3,
        usize::MAX,
    );
    w.by_hand_columns(&["day"], &[]).expect("by hand");
    w.write(&batch).await.expect("write");
    let adds = w.finish().await.expect("finish");
    let back = read(dir.path(), "cases", &adds);
    let back = concat_batches(&schema, &back).expect("concat");
    assert_eq!(back.column(0).as_primitive::<Date32Type>(), &days);
    let file = std::fs::File::open(dir.path().join("cases").join(&adds[0].path)).expect("file");
    let reader = ParquetRecordBatchReaderBuilder::try_new(file).expect("parquet");
    let ranges: Vec<(Option<i32>, Option<i32>)> = reader
        .metadata()
        .row_groups()
        .iter()
        .map(|g| match g.column(0).statistics() {
            Some(Statistics::Int32(s)) => (s.min_opt().copied(), s.max_opt().copied()),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(ranges, [(Some(1), Some(5)), (Some(5), Some(7))]);
}
