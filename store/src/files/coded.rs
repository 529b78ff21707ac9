//! Text columns whose values come from a short list known before the write (a feed's code
//! lists: a case's type and outcome, a work order's status): each value is looked up in the
//! list (a few comparisons of a few bytes) and its index kept, and a row group's chunk is
//! written by hand as the list (a dictionary page) and the indices, bit-packed. Parquet's own
//! encoder would hash and intern every value and compare it with the chunk's minimum and
//! maximum; here the minimum and maximum come from the entries used, once per row group.

use datafusion::arrow::array::{Array, AsArray};
use datafusion::parquet::basic::Compression;
use datafusion::parquet::column::writer::ColumnCloseResult;
use datafusion::parquet::data_type::ByteArray;
use datafusion::parquet::errors::ParquetError;
use datafusion::parquet::file::statistics::{Statistics, ValueStatistics};
use datafusion::parquet::schema::types::ColumnDescPtr;

use bytes::Bytes;

use super::{bit_packed, dictionary_chunk};

/// Entries a coded column's dictionary may grow to (the list, and values met that are not in
/// it) before the write is refused: past it, the column is not a coded one.
const MAX_ENTRIES: usize = 1 << 12;

/// A coded column's row group in progress.
pub(super) struct Coded {
    /// The dictionary: the list's codes, then any other value met, in the order met.
    entries: Vec<Box<[u8]>>,
    /// The dictionary index of each value that is not null, in row order.
    keys: Vec<u16>,
    /// Per row, whether it has a value (kept only for an optional column).
    valid: Option<Vec<bool>>,
    /// Whether each entry is used in the row group.
    used: Vec<bool>,
    nulls: u64,
    rows: usize,
}

impl Coded {
    pub(super) fn new(codes: &[&str], optional: bool) -> Coded {
        let entries: Vec<Box<[u8]>> = codes.iter().map(|c| c.as_bytes().into()).collect();
        Coded {
            used: vec![false; entries.len()],
            entries,
            keys: Vec::new(),
            valid: optional.then(Vec::new),
            nulls: 0,
            rows: 0,
        }
    }

    /// Takes a batch's column (text).
    pub(super) fn push(&mut self, column: &dyn Array) -> Result<(), String> {
        let a = column
            .as_string_opt::<i32>()
            .ok_or_else(|| format!("a coded column of {}", column.data_type()))?;
        self.rows += a.len();
        if a.null_count() == 0 {
            if let Some(valid) = &mut self.valid {
                valid.extend(std::iter::repeat_n(true, a.len()));
            }
            for i in 0..a.len() {
                let k = self.key(a.value(i).as_bytes())?;
                self.keys.push(k);
            }
            return Ok(());
        }
        let Some(valid) = &mut self.valid else {
            return Err("nulls in a required coded column".into());
        };
        valid.extend((0..a.len()).map(|i| a.is_valid(i)));
        self.nulls += a.null_count() as u64;
        for i in 0..a.len() {
            if a.is_valid(i) {
                let k = self.key(a.value(i).as_bytes())?;
                self.keys.push(k);
            }
        }
        Ok(())
    }

    fn key(&mut self, v: &[u8]) -> Result<u16, String> {
        let k = match self.entries.iter().position(|e| **e == *v) {
            Some(k) => k,
            None if self.entries.len() < MAX_ENTRIES => {
                self.entries.push(v.into());
                self.used.push(false);
                self.entries.len() - 1
            }
            None => {
                return Err(format!(
                    "more than {MAX_ENTRIES} distinct values in a coded column"
                ))
            }
        };
        self.used[k] = true;
        Ok(k as u16)
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
        let mut plain = Vec::new();
        for e in &self.entries {
            plain.extend_from_slice(&(e.len() as u32).to_le_bytes());
            plain.extend_from_slice(e);
        }
        // The data page (v1): the definition levels of an optional column (bit width 1,
        // length-prefixed), then the indices' bit width and the indices, bit-packed.
        let mut body = Vec::new();
        if let Some(valid) = &self.valid {
            let mut levels = Vec::new();
            bit_packed(&mut levels, valid.iter().map(|v| u32::from(*v)), 1);
            body.extend_from_slice(&(levels.len() as u32).to_le_bytes());
            body.extend_from_slice(&levels);
        }
        let width = (usize::BITS - (self.entries.len().max(1) - 1).leading_zeros()) as u8;
        body.push(width);
        bit_packed(&mut body, self.keys.iter().map(|k| u32::from(*k)), width);

        let mut used = self.entries.iter().zip(&self.used).filter(|(_, u)| **u);
        let (mut min, mut max) = match used.next() {
            Some((e, _)) => (Some(e), Some(e)),
            None => (None, None),
        };
        for (e, _) in used {
            if Some(e) < min {
                min = Some(e);
            }
            if Some(e) > max {
                max = Some(e);
            }
        }
        let value = |e: Option<&Box<[u8]>>| e.map(|e| ByteArray::from(e.to_vec()));
        let stats = Statistics::ByteArray(
            ValueStatistics::new(value(min), value(max), None, Some(self.nulls), false)
                .with_min_is_exact(min.is_some())
                .with_max_is_exact(max.is_some()),
        );
        let chunk = dictionary_chunk(
            descr,
            plain,
            self.entries.len() as u32,
            body,
            rows,
            compression,
            stats,
            None,
        )?;
        // The values met that are not in the list stay in the dictionary of later row groups.
        self.keys.clear();
        if let Some(valid) = &mut self.valid {
            valid.clear();
        }
        self.used.iter_mut().for_each(|u| *u = false);
        self.nulls = 0;
        self.rows = 0;
        Ok(chunk)
    }
}
