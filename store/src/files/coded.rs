//! Text columns of few distinct values: a feed's code columns (a case's type and outcome, a
//! work order's status), each with its code list, and its division-code columns (a county),
//! whose dictionary fills as codes are met. Each value is looked up in the column's dictionary
//! (a few comparisons of a few bytes, or a hash table past 16 entries) and its index kept, and
//! a row group's chunk is written by hand as the dictionary (a dictionary page) and the
//! indices, bit-packed. Parquet's own encoder would hash and intern every value and compare it
//! with the chunk's minimum and maximum; here the minimum and maximum come from the entries
//! used, once per row group. A column that turns out to have more than 4,096 distinct values
//! is handed back to parquet's encoder ([`Full`]).

use std::collections::HashMap;

use datafusion::arrow::array::{Array, StringArray};
use datafusion::parquet::basic::Compression;
use datafusion::parquet::column::writer::ColumnCloseResult;
use datafusion::parquet::data_type::ByteArray;
use datafusion::parquet::errors::ParquetError;
use datafusion::parquet::file::statistics::{Statistics, ValueStatistics};
use datafusion::parquet::schema::types::ColumnDescPtr;

use bytes::Bytes;

use super::{bit_packed, dictionary_chunk, rle_run};

/// Entries a coded column's dictionary may grow to (the list, and values met that are not in
/// it): past it, the column is written by parquet's own encoder from then on
/// ([`Full`]).
const MAX_ENTRIES: usize = 1 << 12;

/// Entries up to which a value is looked for by comparing it with each; past them, in a hash
/// table (keyed at random, as the values come from files).
const SCAN: usize = 16;

/// The batch did not fit: the column's dictionary would pass [`MAX_ENTRIES`]. The column is
/// left as it was before the batch.
#[derive(Debug)]
pub(super) struct Full;

/// Each entry's index, for lookups past [`SCAN`] entries (keyed at random, as the values come
/// from files). A value of up to 7 bytes (a division code, most codes) is keyed by its bytes
/// packed in one word, so that a lookup hashes and compares an integer: hashing the bytes and
/// comparing them with `memcmp` was most of a coded column's cost.
#[derive(Default)]
struct Index {
    short: HashMap<u64, u16, ahash::RandomState>,
    long: HashMap<Box<[u8]>, u16, ahash::RandomState>,
}

/// A value of up to 7 bytes as a word: its bytes, and its length in the last byte (so that
/// values ending in zero bytes stay apart).
fn packed(v: &[u8]) -> Option<u64> {
    if v.len() > 7 {
        return None;
    }
    let mut word = [0u8; 8];
    word[..v.len()].copy_from_slice(v);
    word[7] = v.len() as u8;
    Some(u64::from_le_bytes(word))
}

impl Index {
    fn of(entries: &[Box<[u8]>]) -> Index {
        let mut index = Index::default();
        for (k, e) in entries.iter().enumerate() {
            index.insert(e, k as u16);
        }
        index
    }

    fn insert(&mut self, v: &[u8], k: u16) {
        match packed(v) {
            Some(word) => self.short.insert(word, k),
            None => self.long.insert(v.into(), k),
        };
    }

    fn get(&self, v: &[u8]) -> Option<u16> {
        match packed(v) {
            Some(word) => self.short.get(&word).copied(),
            None => self.long.get(v).copied(),
        }
    }
}

/// A coded column's row group in progress.
pub(super) struct Coded {
    /// The dictionary: the list's codes, then any other value met, in the order met.
    entries: Vec<Box<[u8]>>,
    /// Each entry's index, once there are more than [`SCAN`].
    index: Index,
    /// The entry found last, compared first when looking by scan (a file of one case type
    /// has one value in its `case_type`).
    last: usize,
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
        let mut entries: Vec<Box<[u8]>> = Vec::new();
        for c in codes {
            if !entries.iter().any(|e| **e == *c.as_bytes()) {
                entries.push(c.as_bytes().into());
            }
        }
        entries.truncate(MAX_ENTRIES);
        let index = if entries.len() > SCAN {
            Index::of(&entries)
        } else {
            Index::default()
        };
        Coded {
            index,
            last: 0,
            used: vec![false; entries.len()],
            entries,
            keys: Vec::new(),
            valid: optional.then(Vec::new),
            nulls: 0,
            rows: 0,
        }
    }

    /// Takes a batch's column (text). When its values do not fit in the dictionary, the column
    /// is left as it was before the batch.
    pub(super) fn push(&mut self, a: &StringArray) -> Result<(), Full> {
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

    fn push_values(&mut self, a: &StringArray) -> Result<(), Full> {
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
        // A required column has no nulls: the batch's schema is the writer's.
        if let Some(valid) = &mut self.valid {
            valid.extend((0..a.len()).map(|i| a.is_valid(i)));
        }
        for i in 0..a.len() {
            if a.is_valid(i) {
                let k = self.key(a.value(i).as_bytes())?;
                self.keys.push(k);
            }
        }
        Ok(())
    }

    fn key(&mut self, v: &[u8]) -> Result<u16, Full> {
        let found = if self.entries.len() <= SCAN {
            if self.entries.get(self.last).is_some_and(|e| **e == *v) {
                Some(self.last)
            } else {
                self.entries.iter().position(|e| **e == *v)
            }
        } else {
            self.index.get(v).map(usize::from)
        };
        let k = match found {
            Some(k) => k,
            None if self.entries.len() < MAX_ENTRIES => {
                self.entries.push(v.into());
                self.used.push(false);
                let k = self.entries.len() - 1;
                if self.entries.len() == SCAN + 1 {
                    self.index = Index::of(&self.entries);
                } else if self.entries.len() > SCAN + 1 {
                    self.index.insert(v, k as u16);
                }
                k
            }
            None => return Err(Full),
        };
        self.last = k;
        self.used[k] = true;
        Ok(k as u16)
    }

    /// The row group's rows so far, as text (when the column stops being coded halfway).
    pub(super) fn rows_as_text(&self) -> StringArray {
        let mut keys = self.keys.iter();
        let mut value = || {
            let k = keys.next().expect("a key per valid row");
            std::str::from_utf8(&self.entries[usize::from(*k)]).expect("entries are text")
        };
        match &self.valid {
            Some(valid) => valid
                .iter()
                .map(|v| v.then(&mut value))
                .collect::<StringArray>(),
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
        let mut plain = Vec::new();
        for e in &self.entries {
            plain.extend_from_slice(&(e.len() as u32).to_le_bytes());
            plain.extend_from_slice(e);
        }
        // The data page (v1): the definition levels of an optional column (bit width 1,
        // length-prefixed), then the indices' bit width and the indices, bit-packed.
        // Levels and indices that repeat one value (no nulls, all nulls, one entry used: a
        // per-type file's `case_type`) are one RLE run; others one bit-packed run.
        let mut body = Vec::new();
        if let Some(valid) = &self.valid {
            let mut levels = Vec::new();
            match self.nulls {
                0 => rle_run(&mut levels, rows, 1, 1),
                n if n == u64::from(rows) => rle_run(&mut levels, rows, 0, 1),
                _ => bit_packed(&mut levels, valid.iter().map(|v| u32::from(*v)), 1),
            }
            body.extend_from_slice(&(levels.len() as u32).to_le_bytes());
            body.extend_from_slice(&levels);
        }
        let width = (usize::BITS - (self.entries.len().max(1) - 1).leading_zeros()) as u8;
        body.push(width);
        let values = self.keys.len() as u32;
        if values > 0 {
            if self.used.iter().filter(|u| **u).count() == 1 {
                rle_run(&mut body, values, u32::from(self.keys[0]), width);
            } else {
                bit_packed(&mut body, self.keys.iter().map(|k| u32::from(*k)), width);
            }
        }

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

#[cfg(test)]
mod tests {
    use super::*;

    /// Values that a word could confuse (a shorter one padded with zeros, the empty one, one of
    /// 7 and one of 8 bytes sharing a start) each get their own entry, past the scan as in it.
    #[test]
    fn tells_values_apart_that_a_word_could_confuse() {
        let tricky: [&[u8]; 8] = [
            b"",
            b"\0",
            b"41",
            b"41\0",
            b"41\0\0\0\0\0",
            b"4101000",
            b"41010000",
            b"410100001",
        ];
        for filler in [0, SCAN] {
            let fill: Vec<String> = (0..filler).map(|i| format!("f{i}")).collect();
            let codes: Vec<&str> = fill.iter().map(String::as_str).collect();
            let mut coded = Coded::new(&codes, false);
            let keys: Vec<u16> = tricky.iter().map(|v| coded.key(v).expect("room")).collect();
            let mut distinct = keys.clone();
            distinct.sort();
            distinct.dedup();
            assert_eq!(distinct.len(), tricky.len(), "{filler} fillers: {keys:?}");
            // Asked again (in another order), each value finds its own entry.
            for (v, k) in tricky.iter().zip(&keys).rev() {
                assert_eq!(coded.key(v).expect("room"), *k);
                assert_eq!(&*coded.entries[usize::from(*k)], *v);
            }
        }
        assert_eq!(packed(b"41"), packed(b"41"));
        assert_ne!(packed(b"41"), packed(b"41\0"));
        assert_eq!(packed(b"41010000"), None);
    }
}
