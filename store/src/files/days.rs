//! Date columns (a case's `accepted_on` and `closed_on`), written by hand as a dictionary of the
//! days met and their indices. A file's dates repeat (a month's cases were accepted on some
//! thirty days), so parquet's own writer gives each a dictionary too, but it hashes and interns
//! every value and compares it with the chunk's minimum and maximum; here a value is compared
//! with the day before, else looked up in a table of one multiplication, and the minimum and
//! maximum come from the entries used, once per row group. A column that turns out to have more
//! than [`MAX_ENTRIES`] distinct days is handed back to parquet's encoder ([`Full`]).

use datafusion::arrow::array::{Array, Date32Array};
use datafusion::parquet::basic::Compression;
use datafusion::parquet::column::writer::ColumnCloseResult;
use datafusion::parquet::errors::ParquetError;
use datafusion::parquet::file::statistics::{Statistics, ValueStatistics};
use datafusion::parquet::schema::types::ColumnDescPtr;

use bytes::Bytes;

use super::coded::{Full, Indices, Words, MAX_ENTRIES};

/// A date column's row group in progress.
pub(super) struct Days {
    /// The dictionary: every day met, in the order met (kept from row group to row group).
    entries: Vec<i32>,
    /// Each entry's index, by the day's bits.
    index: Words,
    /// The entry found last, compared first.
    last: Option<(i32, u16)>,
    indices: Indices,
}

/// A day as a word of [`Words`]: its bits, never the table's empty word.
fn word(day: i32) -> u64 {
    u64::from(day as u32)
}

impl Days {
    pub(super) fn new(optional: bool) -> Days {
        Days {
            entries: Vec::new(),
            index: Words::default(),
            last: None,
            indices: Indices::new(optional),
        }
    }

    /// Takes a batch's column. When its days do not fit in the dictionary, the column is left
    /// as it was before the batch.
    pub(super) fn push(&mut self, a: &Date32Array) -> Result<(), Full> {
        // Taken out for the batch, so that the lookup may have the column's dictionary.
        let mut indices = std::mem::take(&mut self.indices);
        let days = a.values();
        let pushed = indices.push(
            a.len(),
            a.null_count(),
            |i| a.is_valid(i),
            |i| self.key(days[i]),
        );
        self.indices = indices;
        pushed
    }

    fn key(&mut self, day: i32) -> Result<u16, Full> {
        if let Some((d, k)) = self.last {
            if d == day {
                return Ok(k);
            }
        }
        let k = match self.index.get(word(day)) {
            Some(k) => k,
            None if self.entries.len() < MAX_ENTRIES => {
                let k = self.entries.len() as u16;
                self.entries.push(day);
                self.index.insert(word(day), k);
                k
            }
            None => return Err(Full),
        };
        self.last = Some((day, k));
        Ok(k)
    }

    /// The row group's rows so far (when the column stops being coded halfway).
    pub(super) fn rows_as_array(&self) -> Date32Array {
        Date32Array::from(self.indices.rows_of(|k| self.entries[usize::from(k)]))
    }

    pub(super) fn rows(&self) -> usize {
        self.indices.rows()
    }

    /// The row group's chunk, and the column made ready for the next row group.
    pub(super) fn chunk(
        &mut self,
        descr: ColumnDescPtr,
        compression: Compression,
    ) -> Result<(Bytes, ColumnCloseResult), ParquetError> {
        let plain: Vec<u8> = self.entries.iter().flat_map(|d| d.to_le_bytes()).collect();
        let (min, max) = self.indices.min_max(&self.entries);
        let (min, max) = (min.copied(), max.copied());
        let stats = Statistics::Int32(
            ValueStatistics::new(min, max, None, Some(self.indices.nulls()), false)
                .with_min_is_exact(min.is_some())
                .with_max_is_exact(max.is_some())
                // As parquet's writer does for a signed sort order: the old fields too.
                .with_backwards_compatible_min_max(true),
        );
        self.indices
            .chunk(descr, compression, plain, self.entries.len(), stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Days before and after the epoch, the extremes and a repeat each get their own entry.
    #[test]
    fn tells_days_apart() {
        let days = [0, -1, 1, i32::MIN, i32::MAX, 20_000, 20_000, -20_000, 1];
        let mut d = Days::new(false);
        let keys: Vec<u16> = days.iter().map(|v| d.key(*v).expect("room")).collect();
        assert_eq!(keys, [0, 1, 2, 3, 4, 5, 5, 6, 2]);
        assert_eq!(d.entries, [0, -1, 1, i32::MIN, i32::MAX, 20_000, -20_000]);
    }

    /// Past [`MAX_ENTRIES`] distinct days a batch is refused and the column left as it was.
    #[test]
    fn refuses_a_batch_past_the_dictionary() {
        let mut d = Days::new(true);
        let fits = Date32Array::from_iter((0..MAX_ENTRIES as i32).map(Some));
        d.push(&fits).expect("fits");
        let more = Date32Array::from(vec![Some(5), None, Some(-7)]);
        assert!(d.push(&more).is_err());
        assert_eq!(d.rows(), MAX_ENTRIES);
        assert_eq!(d.rows_as_array(), fits);
    }
}
