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

use super::coded::{indices_body, Full, Words, MAX_ENTRIES};
use super::dictionary_chunk;

/// A date column's row group in progress.
pub(super) struct Days {
    /// The dictionary: every day met, in the order met (kept from row group to row group).
    entries: Vec<i32>,
    /// Each entry's index, by the day's bits.
    index: Words,
    /// The entry found last, compared first.
    last: Option<(i32, u16)>,
    /// The dictionary index of each value that is not null, in row order.
    keys: Vec<u16>,
    /// Per row, whether it has a value (kept only for an optional column).
    valid: Option<Vec<bool>>,
    /// Whether each entry is used in the row group.
    used: Vec<bool>,
    nulls: u64,
    rows: usize,
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
            keys: Vec::new(),
            valid: optional.then(Vec::new),
            used: Vec::new(),
            nulls: 0,
            rows: 0,
        }
    }

    /// Takes a batch's column. When its days do not fit in the dictionary, the column is left
    /// as it was before the batch.
    pub(super) fn push(&mut self, a: &Date32Array) -> Result<(), Full> {
        let (keys, valid) = (self.keys.len(), self.valid.as_ref().map(Vec::len));
        let pushed = self.push_values(a);
        if pushed.is_err() {
            self.keys.truncate(keys);
            if let (Some(v), Some(n)) = (&mut self.valid, valid) {
                v.truncate(n);
            }
            return pushed;
        }
        self.rows += a.len();
        self.nulls += a.null_count() as u64;
        Ok(())
    }

    fn push_values(&mut self, a: &Date32Array) -> Result<(), Full> {
        self.keys.reserve(a.len() - a.null_count());
        if a.null_count() == 0 {
            if let Some(valid) = &mut self.valid {
                valid.extend(std::iter::repeat_n(true, a.len()));
            }
            for day in a.values() {
                let k = self.key(*day)?;
                self.keys.push(k);
            }
            return Ok(());
        }
        // A required column has no nulls: the batch's schema is the writer's.
        if let Some(valid) = &mut self.valid {
            valid.extend((0..a.len()).map(|i| a.is_valid(i)));
        }
        for (i, day) in a.values().iter().enumerate() {
            if a.is_valid(i) {
                let k = self.key(*day)?;
                self.keys.push(k);
            }
        }
        Ok(())
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
                self.used.push(false);
                self.index.insert(word(day), k);
                k
            }
            None => return Err(Full),
        };
        self.last = Some((day, k));
        self.used[usize::from(k)] = true;
        Ok(k)
    }

    /// The row group's rows so far (when the column stops being coded halfway).
    pub(super) fn rows_as_array(&self) -> Date32Array {
        let mut keys = self.keys.iter();
        let mut value = || self.entries[usize::from(*keys.next().expect("a key per valid row"))];
        match &self.valid {
            Some(valid) => valid.iter().map(|v| v.then(&mut value)).collect(),
            None => (0..self.rows).map(|_| Some(value())).collect(),
        }
    }

    pub(super) fn rows(&self) -> usize {
        self.rows
    }

    /// The row group's chunk, and the column made ready for the next row group.
    pub(super) fn chunk(
        &mut self,
        descr: ColumnDescPtr,
        compression: Compression,
    ) -> Result<(Bytes, ColumnCloseResult), ParquetError> {
        let rows = u32::try_from(self.rows)
            .ok()
            .filter(|n| *n < 1 << 30)
            .ok_or_else(|| ParquetError::General("a row group too long".into()))?;
        let plain: Vec<u8> = self.entries.iter().flat_map(|d| d.to_le_bytes()).collect();
        let body = indices_body(
            self.valid.as_deref(),
            self.nulls,
            rows,
            self.entries.len(),
            &self.keys,
            self.used.iter().filter(|u| **u).count() == 1,
        );
        let mut used = self
            .entries
            .iter()
            .zip(&self.used)
            .filter(|(_, u)| **u)
            .map(|(d, _)| *d);
        let first = used.next();
        let (min, max) = used.fold((first, first), |(lo, hi), d| {
            (lo.map(|l| l.min(d)), hi.map(|h| h.max(d)))
        });
        let stats = Statistics::Int32(
            ValueStatistics::new(min, max, None, Some(self.nulls), false)
                .with_min_is_exact(min.is_some())
                .with_max_is_exact(max.is_some())
                // As parquet's writer does for a signed sort order: the old fields too.
                .with_backwards_compatible_min_max(true),
        );
        let chunk = dictionary_chunk(
            descr,
            Some((plain, self.entries.len() as u32)),
            body,
            rows,
            compression,
            stats,
            None,
        )?;
        self.keys.clear();
        if let Some(valid) = &mut self.valid {
            valid.clear();
        }
        self.used.iter_mut().for_each(|u| *u = false);
        // The day found last is not used in the next row group until it is met there (and then
        // looked up again, which marks it).
        self.last = None;
        self.nulls = 0;
        self.rows = 0;
        Ok(chunk)
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
