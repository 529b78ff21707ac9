//! Accumulating converted rows into Arrow record batches of a table's stored schema, and
//! rejected records into batches of `quarantine`.

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BooleanBuilder, Date32Array, Date32Builder, Decimal128Builder, Int64Array,
    Int64Builder, ListBuilder, RecordBatch, StringArray, StringBuilder, TimestampMicrosecondArray,
    TimestampMicrosecondBuilder,
};
use datafusion::arrow::buffer::{Buffer, OffsetBuffer};
use datafusion::arrow::datatypes::{DataType, SchemaRef};
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

enum ColumnBuilder {
    Text(StringBuilder),
    Int(Int64Builder),
    Bool(BooleanBuilder),
    Date(Date32Builder),
    Ts(TimestampMicrosecondBuilder),
    Money(Decimal128Builder),
    List(ListBuilder<StringBuilder>),
}

impl ColumnBuilder {
    fn new(kind: Kind) -> Self {
        match kind {
            Kind::Text | Kind::Code(_) | Kind::DivisionCode => {
                ColumnBuilder::Text(StringBuilder::new())
            }
            Kind::Int => ColumnBuilder::Int(Int64Builder::new()),
            Kind::Bool => ColumnBuilder::Bool(BooleanBuilder::new()),
            Kind::Date => ColumnBuilder::Date(Date32Builder::new()),
            Kind::Timestamp => ColumnBuilder::Ts(TimestampMicrosecondBuilder::new()),
            Kind::Money => ColumnBuilder::Money(Decimal128Builder::new()),
            Kind::Float => unreachable!("no feed column is computed"),
            Kind::CodeSet(_) => {
                ColumnBuilder::List(ListBuilder::new(StringBuilder::new()).with_field(Arc::new(
                    datafusion::arrow::datatypes::Field::new("element", DataType::Utf8, true),
                )))
            }
        }
    }

    fn append(&mut self, v: &Value) {
        match (self, v) {
            (ColumnBuilder::Text(b), Value::Text(s)) => b.append_value(s),
            (ColumnBuilder::Text(b), _) => b.append_null(),
            (ColumnBuilder::Int(b), Value::Int(i)) => b.append_value(*i),
            (ColumnBuilder::Int(b), _) => b.append_null(),
            (ColumnBuilder::Bool(b), Value::Bool(x)) => b.append_value(*x),
            (ColumnBuilder::Bool(b), _) => b.append_null(),
            (ColumnBuilder::Date(b), Value::Date(d)) => b.append_value(*d),
            (ColumnBuilder::Date(b), _) => b.append_null(),
            (ColumnBuilder::Ts(b), Value::Ts(t)) => b.append_value(*t),
            (ColumnBuilder::Ts(b), _) => b.append_null(),
            (ColumnBuilder::Money(b), Value::Money(m)) => b.append_value(*m),
            (ColumnBuilder::Money(b), _) => b.append_null(),
            (ColumnBuilder::List(b), Value::List(items)) => {
                for i in items {
                    b.values().append_value(i);
                }
                b.append(true);
            }
            (ColumnBuilder::List(b), _) => b.append(false),
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            ColumnBuilder::Text(b) => Arc::new(b.finish()),
            ColumnBuilder::Int(b) => Arc::new(b.finish()),
            ColumnBuilder::Bool(b) => Arc::new(b.finish()),
            ColumnBuilder::Date(b) => Arc::new(b.finish()),
            ColumnBuilder::Ts(b) => Arc::new(b.finish().with_timezone("UTC")),
            ColumnBuilder::Money(b) => Arc::new(
                b.finish()
                    .with_precision_and_scale(MONEY_PRECISION, MONEY_SCALE)
                    .expect("valid decimal type"),
            ),
            ColumnBuilder::List(b) => Arc::new(b.finish()),
        }
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
    columns: Vec<ColumnBuilder>,
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
            columns: table
                .columns
                .iter()
                .map(|c| ColumnBuilder::new(c.kind))
                .collect(),
            records: Vec::with_capacity(BATCH_ROWS),
            lineage,
            constant: None,
        }
    }

    pub(crate) fn push(&mut self, row: &Row, record: i64) {
        for (b, v) in self.columns.iter_mut().zip(&row.values) {
            b.append(v);
        }
        self.records.push(record);
    }

    pub(crate) fn len(&self) -> usize {
        self.records.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The rows pushed since the last call, as a batch of the table's stored schema.
    pub(crate) fn finish(&mut self) -> RecordBatch {
        let n = self.records.len();
        let mut arrays: Vec<ArrayRef> =
            self.columns.iter_mut().map(ColumnBuilder::finish).collect();
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
    use datafusion::arrow::array::{Array, AsArray};

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
