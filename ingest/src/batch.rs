//! Accumulating converted rows into Arrow record batches of a table's stored schema, and
//! rejected records into batches of `quarantine`.

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BooleanArray, BooleanBufferBuilder, Date32Array, Decimal128Array, Int64Array,
    ListArray, NullBufferBuilder, RecordBatch, StringArray, StringBuilder,
    TimestampMicrosecondArray,
};
use datafusion::arrow::buffer::{Buffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use datafusion::arrow::datatypes::{ArrowNativeType, DataType, Field, SchemaRef};
use datafusion::arrow::util::bit_util;
use plsw_schemas::tables::{self, Kind, Table, TableKind, MONEY_PRECISION, MONEY_SCALE};

use crate::feeds::{Reject, Row, Value};

/// Rows per record batch handed to the writer.
pub(crate) const BATCH_ROWS: usize = 16 * 1024;

/// Lineage shared by every row of one load.
#[derive(Debug, Clone)]
pub(crate) struct Lineage {
    pub(crate) load_id: String,
    pub(crate) feed: &'static str,
    pub(crate) source: String,
    /// UTC microseconds.
    pub(crate) loaded_at: i64,
    /// Snapshot date, days since the epoch.
    pub(crate) as_of: Option<i32>,
}

/// One column of the rows being batched. A record is converted field by field straight into
/// these (see [`crate::feeds::Feed::convert_into`]), and a record rejected after some of its
/// fields is taken back ([`Columns::take_back`]), which arrow's builders cannot do: the values
/// of fixed width are kept in vectors of our own, handed to arrow without a copy. Text is held
/// as the record's own `&str` until the record is accepted and only then appended to arrow's
/// builder ([`Columns::end_row`]): an array made of text buffers of our own would be checked as
/// UTF-8 once more, and the builder's is not.
#[derive(Debug)]
pub(crate) enum Column {
    Text(StringBuilder),
    Int(Prim<i64>),
    Bool {
        values: BooleanBufferBuilder,
        nulls: NullBufferBuilder,
    },
    /// Days since the epoch.
    Date(Prim<i32>),
    /// UTC microseconds.
    Ts(Prim<i64>),
    /// Fen.
    Money(Prim<i128>),
    /// Each row's items: `ends[r]` is where row `r`'s items end in `items`.
    List {
        ends: Vec<i32>,
        items: Vec<&'static str>,
        nulls: NullBufferBuilder,
    },
}

/// Values of fixed width and their nulls, one per row (a null's value is the default).
#[derive(Debug)]
pub(crate) struct Prim<T> {
    values: Vec<T>,
    nulls: NullBufferBuilder,
}

impl<T: Copy + Default> Prim<T> {
    fn new() -> Self {
        Prim {
            values: Vec::with_capacity(BATCH_ROWS),
            nulls: NullBufferBuilder::new(BATCH_ROWS),
        }
    }

    #[inline]
    pub(crate) fn push(&mut self, v: T) {
        self.values.push(v);
        self.nulls.append_non_null();
    }

    #[inline]
    fn push_null(&mut self) {
        self.values.push(T::default());
        self.nulls.append_null();
    }

    fn get(&self, row: usize) -> Option<T> {
        self.nulls.is_valid(row).then(|| self.values[row])
    }

    fn truncate(&mut self, rows: usize) {
        self.values.truncate(rows);
        self.nulls.truncate(rows);
    }

    fn take(&mut self) -> (ScalarBuffer<T>, Option<NullBuffer>)
    where
        T: ArrowNativeType,
    {
        let values = std::mem::replace(&mut self.values, Vec::with_capacity(BATCH_ROWS));
        (ScalarBuffer::from(values), self.nulls.finish())
    }
}

/// The field of a code-set column's items.
fn list_item() -> Arc<Field> {
    Arc::new(Field::new("element", DataType::Utf8, true))
}

/// Most columns a file feed's table has: a record's text is held on the stack while converted.
pub(crate) const MAX_COLUMNS: usize = 16;

impl Column {
    fn new(kind: Kind) -> Self {
        match kind {
            Kind::Text | Kind::Code(_) | Kind::DivisionCode => {
                Column::Text(StringBuilder::with_capacity(BATCH_ROWS, BATCH_ROWS * 16))
            }
            Kind::Int => Column::Int(Prim::new()),
            Kind::Bool => Column::Bool {
                values: BooleanBufferBuilder::new(BATCH_ROWS),
                nulls: NullBufferBuilder::new(BATCH_ROWS),
            },
            Kind::Date => Column::Date(Prim::new()),
            Kind::Timestamp => Column::Ts(Prim::new()),
            Kind::Money => Column::Money(Prim::new()),
            Kind::Float => unreachable!("no feed column is computed"),
            Kind::CodeSet(_) => Column::List {
                ends: Vec::new(),
                items: Vec::new(),
                nulls: NullBufferBuilder::new(0),
            },
        }
    }

    /// Pushes a null, except into a text column, whose row is appended by
    /// [`Columns::end_row`] (from the record's text, which says none).
    pub(crate) fn push_null(&mut self) {
        match self {
            Column::Text(_) => {}
            Column::Int(c) | Column::Ts(c) => c.push_null(),
            Column::Bool { values, nulls } => {
                values.append(false);
                nulls.append_null();
            }
            Column::Date(c) => c.push_null(),
            Column::Money(c) => c.push_null(),
            Column::List { ends, items, nulls } => {
                ends.push(items.len() as i32);
                nulls.append_null();
            }
        }
    }

    #[inline]
    pub(crate) fn push_bool(&mut self, v: bool) {
        let Column::Bool { values, nulls } = self else {
            unreachable!("a boolean pushed into a column of another kind")
        };
        values.append(v);
        nulls.append_non_null();
    }

    /// Pushes a code set's items as one row.
    pub(crate) fn push_items(&mut self, list: &[&'static str]) {
        let Column::List { ends, items, nulls } = self else {
            unreachable!("items pushed into a column that is not a code set")
        };
        items.extend_from_slice(list);
        ends.push(items.len() as i32);
        nulls.append_non_null();
    }

    /// Pushes `v`, text included: a value of another kind than the column's is pushed as a
    /// null, as arrow's builders were given it.
    fn push_value(&mut self, v: &Value) {
        match (self, v) {
            (Column::Text(c), Value::Text(s)) => c.append_value(s),
            (Column::Text(c), _) => c.append_null(),
            (Column::Int(c), Value::Int(i)) => c.push(*i),
            (c @ Column::Bool { .. }, Value::Bool(x)) => c.push_bool(*x),
            (Column::Date(c), Value::Date(d)) => c.push(*d),
            (Column::Ts(c), Value::Ts(t)) => c.push(*t),
            (Column::Money(c), Value::Money(m)) => c.push(*m),
            (c @ Column::List { .. }, Value::List(items)) => c.push_items(items),
            (c, _) => c.push_null(),
        }
    }

    /// Row `row`'s value (of a row ended in every column).
    fn value(&self, row: usize) -> Value<'static> {
        let or_null = |v: Option<Value<'static>>| v.unwrap_or(Value::Null);
        match self {
            Column::Text(c) => {
                let valid = c.validity_slice().is_none_or(|v| bit_util::get_bit(v, row));
                let o = c.offsets_slice();
                let bytes = &c.values_slice()[o[row] as usize..o[row + 1] as usize];
                let text = String::from_utf8(bytes.to_vec()).expect("appended as text");
                if valid {
                    Value::Text(text.into())
                } else {
                    Value::Null
                }
            }
            Column::Int(c) => or_null(c.get(row).map(Value::Int)),
            Column::Bool { values, nulls } => or_null(
                nulls
                    .is_valid(row)
                    .then(|| Value::Bool(values.get_bit(row))),
            ),
            Column::Date(c) => or_null(c.get(row).map(Value::Date)),
            Column::Ts(c) => or_null(c.get(row).map(Value::Ts)),
            Column::Money(c) => or_null(c.get(row).map(Value::Money)),
            Column::List { ends, items, nulls } => {
                if !nulls.is_valid(row) {
                    return Value::Null;
                }
                let from = if row == 0 { 0 } else { ends[row - 1] as usize };
                Value::List(items[from..ends[row] as usize].to_vec())
            }
        }
    }

    /// Rows pushed (a text column's, appended).
    fn rows(&self) -> usize {
        match self {
            Column::Text(c) => c.offsets_slice().len() - 1,
            Column::Int(c) | Column::Ts(c) => c.values.len(),
            Column::Bool { values, .. } => values.len(),
            Column::Date(c) => c.values.len(),
            Column::Money(c) => c.values.len(),
            Column::List { ends, .. } => ends.len(),
        }
    }

    fn text_bytes(&self) -> usize {
        match self {
            Column::Text(c) => c.values_slice().len(),
            _ => 0,
        }
    }

    fn truncate(&mut self, rows: usize) {
        match self {
            Column::Text(_) => {}
            Column::Int(c) | Column::Ts(c) => c.truncate(rows),
            Column::Bool { values, nulls } => {
                values.truncate(rows);
                nulls.truncate(rows);
            }
            Column::Date(c) => c.truncate(rows),
            Column::Money(c) => c.truncate(rows),
            Column::List { ends, items, nulls } => {
                if rows < ends.len() {
                    items.truncate(if rows == 0 {
                        0
                    } else {
                        ends[rows - 1] as usize
                    });
                }
                ends.truncate(rows);
                nulls.truncate(rows);
            }
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Column::Text(c) => Arc::new(c.finish()),
            Column::Int(c) => {
                let (v, n) = c.take();
                Arc::new(Int64Array::new(v, n))
            }
            Column::Bool { values, nulls } => {
                Arc::new(BooleanArray::new(values.finish(), nulls.finish()))
            }
            Column::Date(c) => {
                let (v, n) = c.take();
                Arc::new(Date32Array::new(v, n))
            }
            Column::Ts(c) => {
                let (v, n) = c.take();
                Arc::new(TimestampMicrosecondArray::new(v, n).with_timezone("UTC"))
            }
            Column::Money(c) => {
                let (v, n) = c.take();
                Arc::new(
                    Decimal128Array::new(v, n)
                        .with_precision_and_scale(MONEY_PRECISION, MONEY_SCALE)
                        .expect("valid decimal type"),
                )
            }
            Column::List { ends, items, nulls } => {
                let mut texts = StringBuilder::new();
                for i in items.drain(..) {
                    texts.append_value(i);
                }
                let offsets = std::iter::once(0).chain(ends.drain(..));
                Arc::new(ListArray::new(
                    list_item(),
                    OffsetBuffer::new(ScalarBuffer::from_iter(offsets)),
                    Arc::new(texts.finish()),
                    nulls.finish(),
                ))
            }
        }
    }
}

/// The columns of a table's feed being batched.
#[derive(Debug)]
pub(crate) struct Columns {
    pub(crate) columns: Vec<Column>,
    /// Rows ended in every column.
    rows: usize,
}

/// A batch ends early once a column holds this much text, well before its offsets (`i32`)
/// could overflow (less in unit tests, which fill it).
#[cfg(not(test))]
const BATCH_TEXT_BYTES: usize = 256 << 20;
#[cfg(test)]
const BATCH_TEXT_BYTES: usize = 8 << 20;

impl Columns {
    pub(crate) fn new(table: &'static Table) -> Self {
        Columns {
            columns: table.columns.iter().map(|c| Column::new(c.kind)).collect(),
            rows: 0,
        }
    }

    /// Ends the row being pushed: appends its text (`texts[i]` for text column `i`; the other
    /// columns have their value already).
    pub(crate) fn end_row(&mut self, texts: &[Option<&str>]) {
        for (c, t) in self.columns.iter_mut().zip(texts) {
            if let Column::Text(b) = c {
                b.append_option(*t);
            }
        }
        self.rows += 1;
        debug_assert!(self.columns.iter().all(|c| c.rows() == self.rows));
    }

    /// Takes back the row being pushed, whichever columns it reached.
    pub(crate) fn take_back(&mut self) {
        let rows = self.rows;
        for c in &mut self.columns {
            c.truncate(rows);
        }
    }

    /// The values of row `row`.
    pub(crate) fn row(&self, row: usize) -> Vec<Value<'static>> {
        self.columns.iter().map(|c| c.value(row)).collect()
    }

    /// Whether the rows pushed make a batch: [`BATCH_ROWS`] of them, or a column's text at
    /// [`BATCH_TEXT_BYTES`].
    pub(crate) fn is_full(&self) -> bool {
        self.rows >= BATCH_ROWS
            || self
                .columns
                .iter()
                .any(|c| c.text_bytes() >= BATCH_TEXT_BYTES)
    }

    /// The rows pushed, one array per column; the columns are left empty.
    fn finish(&mut self) -> Vec<ArrayRef> {
        self.rows = 0;
        self.columns.iter_mut().map(Column::finish).collect()
    }

    /// Rows ended in every column.
    pub(crate) fn len(&self) -> usize {
        self.rows
    }
}

/// The row being converted, as a feed's checks read it: its text still the record's, its other
/// values pushed into their columns.
pub struct Fields<'f, 'a> {
    texts: &'f mut [Option<&'a str>],
    columns: &'f mut [Column],
    row: usize,
}

impl<'f, 'a> Fields<'f, 'a> {
    pub(crate) fn new(columns: &'f mut Columns, texts: &'f mut [Option<&'a str>]) -> Self {
        Fields {
            row: columns.rows,
            columns: &mut columns.columns,
            texts,
        }
    }

    pub(crate) fn text_at(&self, i: usize) -> Option<&'a str> {
        self.texts[i]
    }

    pub(crate) fn int_at(&self, i: usize) -> Option<i64> {
        match &self.columns[i] {
            Column::Int(c) => c.get(self.row),
            _ => None,
        }
    }

    /// A timestamp's microseconds, a date's days or an integer.
    pub(crate) fn instant_at(&self, i: usize) -> Option<i64> {
        match &self.columns[i] {
            Column::Ts(c) | Column::Int(c) => c.get(self.row),
            Column::Date(c) => c.get(self.row).map(i64::from),
            _ => None,
        }
    }

    /// Makes column `i` of the row null (a value the rules drop).
    pub(crate) fn set_null(&mut self, i: usize) {
        self.texts[i] = None;
        let c = &mut self.columns[i];
        c.truncate(self.row);
        c.push_null();
    }
}

/// `value` `n` times: its bytes copied by doubling and the offsets computed, rather than each
/// value appended to a builder (a load's lineage is built so for every file).
fn repeated(value: &str, n: usize) -> StringArray {
    let offsets = OffsetBuffer::from_lengths(std::iter::repeat_n(value.len(), n));
    StringArray::new(offsets, Buffer::from(value.repeat(n).into_bytes()), None)
}

/// Builds batches of a raw table: the feed's columns, then `as_of` and lineage.
pub(crate) struct RowBatcher {
    table: &'static Table,
    /// The table's stored schema, built once rather than for every batch.
    schema: SchemaRef,
    columns: Columns,
    records: Vec<i64>,
    lineage: Lineage,
    /// `as_of`, `load_id`, `source` and `loaded_at`, which hold one value per load: built once
    /// as long as a full batch, and sliced for each batch.
    constant: Option<Constant>,
}

struct Constant {
    as_of: ArrayRef,
    load_id: ArrayRef,
    source: ArrayRef,
    loaded_at: ArrayRef,
}

impl Constant {
    fn new(l: &Lineage, n: usize) -> Constant {
        Constant {
            as_of: Arc::new(Date32Array::from(vec![l.as_of; n])),
            load_id: Arc::new(repeated(&l.load_id, n)),
            source: Arc::new(repeated(&l.source, n)),
            loaded_at: Arc::new(
                TimestampMicrosecondArray::from(vec![l.loaded_at; n]).with_timezone("UTC"),
            ),
        }
    }
}

impl RowBatcher {
    pub(crate) fn new(table: &'static Table, lineage: Lineage) -> Self {
        RowBatcher {
            table,
            schema: table.schema(),
            columns: Columns::new(table),
            records: Vec::with_capacity(BATCH_ROWS),
            lineage,
            constant: None,
        }
    }

    pub(crate) fn push(&mut self, row: &Row, record: i64) {
        for (c, v) in self.columns.columns.iter_mut().zip(&row.values) {
            c.push_value(v);
        }
        // The text is appended already.
        self.columns.end_row(&[]);
        self.records.push(record);
    }

    /// The columns, to convert a record into (see [`crate::feeds::Feed::convert_into`]), which
    /// then ends the row there and calls [`RowBatcher::pushed`].
    pub(crate) fn columns(&mut self) -> &mut Columns {
        &mut self.columns
    }

    /// Records the position of the row just ended in the columns.
    pub(crate) fn pushed(&mut self, record: i64) {
        self.records.push(record);
        debug_assert_eq!(self.records.len(), self.columns.len());
    }

    /// Whether the rows pushed make a batch (see [`Columns::is_full`]).
    pub(crate) fn is_full(&self) -> bool {
        self.columns.is_full()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The rows pushed since the last call, as a batch of the table's stored schema.
    pub(crate) fn finish(&mut self) -> RecordBatch {
        let n = self.records.len();
        let mut arrays = self.columns.finish();
        let records: ArrayRef = Arc::new(Int64Array::from(std::mem::replace(
            &mut self.records,
            Vec::with_capacity(BATCH_ROWS),
        )));
        let lineage = &self.lineage;
        let c = match &self.constant {
            Some(c) if c.load_id.len() >= n => c,
            _ => self
                .constant
                .insert(Constant::new(lineage, n.max(BATCH_ROWS))),
        };
        if self.table.kind == TableKind::Snapshot {
            arrays.push(c.as_of.slice(0, n));
        }
        arrays.extend([
            c.load_id.slice(0, n),
            c.source.slice(0, n),
            records,
            c.loaded_at.slice(0, n),
        ]);
        RecordBatch::try_new(self.schema.clone(), arrays).expect("rows match the table schema")
    }
}

/// Builds batches of `quarantine`.
pub(crate) struct QuarantineBatcher {
    lineage: Lineage,
    records: Vec<i64>,
    reasons: StringBuilder,
    messages: StringBuilder,
    raws: StringBuilder,
}

impl QuarantineBatcher {
    pub(crate) fn new(lineage: Lineage) -> Self {
        QuarantineBatcher {
            lineage,
            records: Vec::new(),
            reasons: StringBuilder::new(),
            messages: StringBuilder::new(),
            raws: StringBuilder::new(),
        }
    }

    pub(crate) fn push(&mut self, record: i64, reject: &Reject, raw: &str) {
        self.records.push(record);
        self.reasons.append_value(&reject.reason);
        self.messages.append_value(&reject.message);
        self.raws.append_value(raw);
    }

    pub(crate) fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether the records pushed make a batch: [`BATCH_ROWS`] of them, or a text column (the
    /// records' raw text, mostly) at [`BATCH_TEXT_BYTES`].
    pub(crate) fn is_full(&self) -> bool {
        self.records.len() >= BATCH_ROWS
            || [&self.reasons, &self.messages, &self.raws]
                .iter()
                .any(|b| b.values_slice().len() >= BATCH_TEXT_BYTES)
    }

    pub(crate) fn finish(&mut self) -> RecordBatch {
        let l = &self.lineage;
        let n = self.records.len();
        let arrays: Vec<ArrayRef> = vec![
            Arc::new(repeated(&l.load_id, n)),
            Arc::new(repeated(l.feed, n)),
            Arc::new(repeated(&l.source, n)),
            Arc::new(Int64Array::from(std::mem::take(&mut self.records))),
            Arc::new(self.reasons.finish()),
            Arc::new(self.messages.finish()),
            Arc::new(self.raws.finish()),
            Arc::new(TimestampMicrosecondArray::from(vec![l.loaded_at; n]).with_timezone("UTC")),
        ];
        RecordBatch::try_new(tables::QUARANTINE.schema(), arrays).expect("quarantine schema")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feeds::{Feed, Row};
    use datafusion::arrow::array::{
        Array, AsArray, BooleanBuilder, Date32Builder, Decimal128Builder, Int64Builder,
        ListBuilder, TimestampMicrosecondBuilder,
    };

    #[test]
    fn columns_finish_as_arrows_builders_would_and_take_back_a_partial_row() {
        // Platforms has a column of every kind a feed converts but time and money: text,
        // codes, a division, a date, a boolean, code sets and an integer.
        const ITEMS: [&str; 4] = ["甲", "b", "", "丁丁"];
        let mut c = Columns::new(&tables::PLATFORMS);
        let kinds: Vec<Kind> = tables::PLATFORMS.columns.iter().map(|c| c.kind).collect();
        let mut texts = StringBuilder::new();
        let mut days = Date32Builder::new();
        let mut flags = BooleanBuilder::new();
        let mut sets = ListBuilder::new(StringBuilder::new()).with_field(list_item());
        let mut ints = Int64Builder::new();
        let mut times = TimestampMicrosecondBuilder::new();
        let mut money = Decimal128Builder::new();
        let mut ts = Prim::<i64>::new();
        let mut fen = Prim::<i128>::new();
        for r in 0..5i64 {
            // Rows 1 and 4 null, and a partial row taken back after each.
            let null = r % 3 == 1;
            let text = format!("文本{r}");
            let mut row_texts = [None; MAX_COLUMNS];
            for (i, col) in c.columns.iter_mut().enumerate() {
                match (col, null) {
                    (col, true) => col.push_null(),
                    (Column::Text(_), _) => row_texts[i] = Some(text.as_str()),
                    (Column::Date(t), _) => t.push(-3 + r as i32),
                    (col @ Column::Bool { .. }, _) => col.push_bool(r % 2 == 0),
                    (Column::Int(t), _) => t.push(r * 1_000_000_007),
                    (col @ Column::List { .. }, _) => col.push_items(&ITEMS[..r as usize]),
                    (col, _) => panic!("{col:?}"),
                }
            }
            if null {
                texts.append_null();
                days.append_null();
                flags.append_null();
                sets.append(false);
                ints.append_null();
                times.append_null();
                money.append_null();
                ts.push_null();
                fen.push_null();
            } else {
                texts.append_value(&text);
                days.append_value(-3 + r as i32);
                flags.append_value(r % 2 == 0);
                for item in &ITEMS[..r as usize] {
                    sets.values().append_value(item);
                }
                sets.append(true);
                ints.append_value(r * 1_000_000_007);
                times.append_value(r - 2);
                money.append_value(i128::from(r) * 10_000_000_000_000_000_000);
                ts.push(r - 2);
                fen.push(i128::from(r) * 10_000_000_000_000_000_000);
            }
            // The checks see the row's text and values before it ends.
            let fields = Fields::new(&mut c, &mut row_texts);
            assert_eq!(fields.text_at(0), (!null).then_some(text.as_str()));
            assert_eq!(fields.instant_at(4), (!null).then_some(r - 3));
            assert_eq!(fields.int_at(8), (!null).then_some(r * 1_000_000_007));
            c.end_row(&row_texts);
            // A record rejected after some of its fields.
            c.columns[4].push_null();
            c.columns[5].push_bool(true);
            c.columns[6].push_items(&["mediation"]);
            c.take_back();
        }
        assert_eq!(c.len(), 5);
        assert!(c.row(1).iter().all(|v| *v == Value::Null));
        assert_eq!(c.row(3)[0], Value::Text("文本3".into()));
        assert_eq!(c.row(3)[6], Value::List(vec!["甲", "b", ""]));
        assert_eq!(c.row(4)[0], Value::Null);
        let arrays = c.finish();
        assert_eq!(c.len(), 0);
        for (i, (a, kind)) in arrays.iter().zip(&kinds).enumerate() {
            let expected: ArrayRef = match kind {
                Kind::Text | Kind::Code(_) | Kind::DivisionCode => Arc::new(texts.finish_cloned()),
                Kind::Date => Arc::new(days.finish_cloned()),
                Kind::Bool => Arc::new(flags.finish_cloned()),
                Kind::CodeSet(_) => Arc::new(sets.finish_cloned()),
                Kind::Int => Arc::new(ints.finish_cloned()),
                k => panic!("{k:?}"),
            };
            assert_eq!(a.as_ref(), expected.as_ref(), "column {i}");
        }
        let expected = times.finish().with_timezone("UTC");
        let mut t = Column::Ts(ts);
        assert_eq!(t.finish().as_primitive(), &expected);
        let expected = money
            .finish()
            .with_precision_and_scale(MONEY_PRECISION, MONEY_SCALE)
            .unwrap();
        let mut m = Column::Money(fen);
        assert_eq!(m.finish().as_primitive(), &expected);
        // Emptied for the next batch.
        assert!(c.columns.iter().all(|c| c.rows() == 0));
    }

    #[test]
    fn a_fields_null_is_its_columns() {
        // A check that drops a value (a caller's county that is not one) leaves it null, text
        // or not.
        let mut c = Columns::new(&tables::POPULATION);
        let mut texts = [None; MAX_COLUMNS];
        texts[0] = Some("410122");
        let [_, year, people] = &mut c.columns[..] else {
            panic!("population has three columns")
        };
        let (Column::Int(year), Column::Int(people)) = (year, people) else {
            panic!("population's year and count are integers")
        };
        year.push(2025);
        people.push(7);
        let mut fields = Fields::new(&mut c, &mut texts);
        fields.set_null(0);
        fields.set_null(2);
        assert_eq!(fields.text_at(0), None);
        assert_eq!(fields.int_at(1), Some(2025));
        assert_eq!(fields.int_at(2), None);
        c.end_row(&texts);
        assert_eq!(c.row(0), [Value::Null, Value::Int(2025), Value::Null]);
    }

    #[test]
    fn a_batch_ends_at_its_rows_or_at_its_text() {
        let mut c = Columns::new(&tables::POPULATION);
        let long = "x".repeat(1 << 20);
        let mut texts = [None; MAX_COLUMNS];
        texts[0] = Some(long.as_str());
        for _ in 0..BATCH_TEXT_BYTES >> 20 {
            assert!(!c.is_full());
            for col in c.columns.iter_mut() {
                col.push_null();
            }
            c.end_row(&texts);
        }
        assert!(c.is_full(), "{} MiB of text", BATCH_TEXT_BYTES >> 20);
        // Quarantined records too: their raw text is most of it.
        let lineage = Lineage {
            load_id: "L1".into(),
            feed: "population",
            source: "population.csv".into(),
            loaded_at: 7,
            as_of: None,
        };
        let mut q = QuarantineBatcher::new(lineage);
        let reject = Reject {
            reason: "bad_year".into(),
            message: "year 1 is not plausible".into(),
        };
        for r in 0..BATCH_TEXT_BYTES >> 20 {
            assert!(!q.is_full());
            q.push(r as i64, &reject, &long);
        }
        assert!(q.is_full());
        assert_eq!(q.finish().num_rows(), BATCH_TEXT_BYTES >> 20);
        assert!(!q.is_full());
        c.finish();
        for _ in 0..BATCH_ROWS {
            assert!(!c.is_full());
            for col in c.columns.iter_mut() {
                col.push_null();
            }
            c.end_row(&[None; MAX_COLUMNS]);
        }
        assert!(c.is_full());
    }

    #[test]
    fn every_batch_carries_its_loads_lineage_whatever_its_length() {
        let feed = Feed::by_name("population").expect("a feed");
        let lineage = Lineage {
            load_id: "L1".into(),
            feed: feed.name,
            source: "population.csv".into(),
            loaded_at: 7,
            as_of: None,
        };
        let mut b = RowBatcher::new(feed.table, lineage);
        let d = plsw_store::Divisions::builtin();
        let row: Row = feed
            .convert(["410122", "2025", "100"].into_iter(), &d)
            .expect("a good row");
        // A short batch, a long one (longer than the arrays built for the first), a short one.
        for (n, first) in [(3, 1), (BATCH_ROWS, 4), (2, BATCH_ROWS as i64 + 4)] {
            for r in 0..n {
                b.push(&row, first + r as i64);
            }
            let batch = b.finish();
            assert_eq!(batch.num_rows(), n);
            let text = |name: &str| {
                let a = batch.column_by_name(name).expect("column");
                let a = a.as_string::<i32>();
                (a.len(), a.value(0).to_string(), a.value(n - 1).to_string())
            };
            assert_eq!(text("load_id"), (n, "L1".into(), "L1".into()));
            assert_eq!(
                text("loaded_from"),
                (n, "population.csv".into(), "population.csv".into())
            );
            let records = batch.column_by_name("record").expect("record");
            let records = records.as_primitive::<datafusion::arrow::datatypes::Int64Type>();
            assert_eq!(records.value(0), first);
            assert_eq!(records.value(n - 1), first + n as i64 - 1);
        }
    }
}
