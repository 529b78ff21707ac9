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
pub(super) const MAX_ENTRIES: usize = 1 << 12;

/// Entries up to which a value is looked for by comparing it with each; past them, in a hash
/// table (keyed at random, as the values come from files).
const SCAN: usize = 16;

/// The batch did not fit: the column's dictionary would pass [`MAX_ENTRIES`]. The column is
/// left as it was before the batch.
#[derive(Debug)]
pub(super) struct Full;

/// Each entry's index, for lookups past [`SCAN`] entries (keyed at random, as the values come
/// from files). A value of up to 7 bytes (a division code, most codes) is keyed by its bytes
/// packed in one word ([`Words`]); a longer one by its bytes.
#[derive(Default)]
struct Index {
    short: Words,
    long: HashMap<Box<[u8]>, u16, ahash::RandomState>,
}

/// A value of up to 7 bytes as a word: its bytes, and its length in the last byte (so that
/// values ending in zero bytes stay apart). Never [`EMPTY`]: the last byte is at most 7.
fn packed(v: &[u8]) -> Option<u64> {
    if v.len() > 7 {
        return None;
    }
    let bytes = v
        .iter()
        .enumerate()
        .fold(0u64, |w, (i, b)| w | u64::from(*b) << (8 * i));
    Some(bytes | (v.len() as u64) << 56)
}

/// An empty slot of [`Words`].
const EMPTY: u64 = u64::MAX;

/// Words and their entries' indices in one open-addressed table (linear probing, at most half
/// full): a lookup is a multiplication, a load and a comparison, where a hash map hashed the
/// value and probed in groups (a year of cases looks 3 M county codes up). The multiplier is
/// drawn at random for each table, so that no file can choose codes that collide.
pub(super) struct Words {
    slots: Vec<(u64, u16)>,
    /// 64 less the log2 of the slots: a product's top bits pick the slot.
    shift: u32,
    multiplier: u64,
    len: usize,
}

impl Default for Words {
    fn default() -> Self {
        let multiplier = ahash::RandomState::new().hash_one(0x5eed_u64) | 1;
        Words {
            slots: vec![(EMPTY, 0); 64],
            shift: 64 - 6,
            multiplier,
            len: 0,
        }
    }
}

impl Words {
    fn slot(&self, word: u64) -> usize {
        (word.wrapping_mul(self.multiplier) >> self.shift) as usize
    }

    pub(super) fn get(&self, word: u64) -> Option<u16> {
        let mask = self.slots.len() - 1;
        let mut i = self.slot(word);
        loop {
            match self.slots[i] {
                (w, k) if w == word => return Some(k),
                (EMPTY, _) => return None,
                _ => i = (i + 1) & mask,
            }
        }
    }

    /// Adds a word that is not in the table yet.
    pub(super) fn insert(&mut self, word: u64, k: u16) {
        if (self.len + 1) * 2 > self.slots.len() {
            let grown = vec![(EMPTY, 0); self.slots.len() * 2];
            let old = std::mem::replace(&mut self.slots, grown);
            self.shift -= 1;
            self.len = 0;
            for (w, k) in old.into_iter().filter(|(w, _)| *w != EMPTY) {
                self.insert(w, k);
            }
        }
        let mask = self.slots.len() - 1;
        let mut i = self.slot(word);
        while self.slots[i].0 != EMPTY {
            i = (i + 1) & mask;
        }
        self.slots[i] = (word, k);
        self.len += 1;
    }
}

impl Index {
    fn of(entries: &[Box<[u8]>]) -> Index {
        let mut index = Index::default();
        for (k, e) in entries.iter().enumerate() {
            index.insert(e, k as u16);
        }
        index
    }

    /// Adds a value that is not in the index yet.
    fn insert(&mut self, v: &[u8], k: u16) {
        match packed(v) {
            Some(word) => self.short.insert(word, k),
            None => {
                self.long.insert(v.into(), k);
            }
        }
    }

    fn get(&self, v: &[u8]) -> Option<u16> {
        match packed(v) {
            Some(word) => self.short.get(word),
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
    indices: Indices,
}

/// A dictionary-coded column's row group in progress, less its dictionary: the entry of each
/// value, which rows have one, and which entries the row group uses. The code columns
/// ([`Coded`]) and the date columns (`days.rs`) differ only in their dictionaries.
#[derive(Default)]
pub(super) struct Indices {
    /// The dictionary index of each value that is not null, in row order.
    keys: Vec<u16>,
    /// Per row, whether it has a value (kept only for an optional column).
    valid: Option<Vec<bool>>,
    /// Whether each entry is used in the row group (marked for every value pushed).
    used: Vec<bool>,
    nulls: u64,
    rows: usize,
}

impl Indices {
    pub(super) fn new(optional: bool) -> Indices {
        Indices {
            keys: Vec::new(),
            valid: optional.then(Vec::new),
            used: Vec::new(),
            nulls: 0,
            rows: 0,
        }
    }

    /// Takes a batch of `len` rows, `nulls` of them null: row `i` has a value if `valid(i)`,
    /// whose entry `key(i)` finds. When an entry cannot be found (the dictionary is full), the
    /// indices are left as they were before the batch.
    pub(super) fn push(
        &mut self,
        len: usize,
        nulls: usize,
        valid: impl Fn(usize) -> bool,
        mut key: impl FnMut(usize) -> Result<u16, Full>,
    ) -> Result<(), Full> {
        let (keys, rows) = (self.keys.len(), self.valid.as_ref().map(Vec::len));
        let pushed = self.push_values(len, nulls, &valid, &mut key);
        if pushed.is_err() {
            self.keys.truncate(keys);
            if let (Some(v), Some(n)) = (&mut self.valid, rows) {
                v.truncate(n);
            }
            return pushed;
        }
        self.rows += len;
        self.nulls += nulls as u64;
        Ok(())
    }

    fn push_values(
        &mut self,
        len: usize,
        nulls: usize,
        valid: &impl Fn(usize) -> bool,
        key: &mut impl FnMut(usize) -> Result<u16, Full>,
    ) -> Result<(), Full> {
        self.keys.reserve(len - nulls);
        // A required column has no nulls: the batch's schema is the writer's.
        if let Some(v) = &mut self.valid {
            match nulls {
                0 => v.extend(std::iter::repeat_n(true, len)),
                _ => v.extend((0..len).map(valid)),
            }
        }
        for i in 0..len {
            if nulls == 0 || valid(i) {
                let k = key(i)?;
                let at = usize::from(k);
                if at >= self.used.len() {
                    self.used.resize(at + 1, false);
                }
                self.used[at] = true;
                self.keys.push(k);
            }
        }
        Ok(())
    }

    /// The row group's rows so far, each as `entry` of its key (when the column stops being
    /// coded halfway).
    pub(super) fn rows_of<T>(&self, mut entry: impl FnMut(u16) -> T) -> Vec<Option<T>> {
        let mut keys = self.keys.iter();
        let mut value = || entry(*keys.next().expect("a key per valid row"));
        match &self.valid {
            Some(valid) => valid.iter().map(|v| v.then(&mut value)).collect(),
            None => (0..self.rows).map(|_| Some(value())).collect(),
        }
    }

    pub(super) fn rows(&self) -> usize {
        self.rows
    }

    pub(super) fn nulls(&self) -> u64 {
        self.nulls
    }

    /// The entries of `entries` that the row group uses.
    fn used<'e, E>(&'e self, entries: &'e [E]) -> impl Iterator<Item = &'e E> + 'e {
        entries
            .iter()
            .zip(&self.used)
            .filter(|(_, u)| **u)
            .map(|(e, _)| e)
    }

    /// The row group's length, as a page counts it.
    fn row_count(&self) -> Result<u32, ParquetError> {
        u32::try_from(self.rows)
            .ok()
            .filter(|n| *n < 1 << 30)
            .ok_or_else(|| ParquetError::General("a row group too long".into()))
    }

    /// The data page (v1) of the row group's chunk, of a dictionary of `entries`: the
    /// definition levels of an optional column (bit width 1, length-prefixed), then the
    /// indices' bit width and the indices, bit-packed. Levels and indices that repeat one value
    /// (no nulls, all nulls, one entry used: a per-type file's `case_type`) are one RLE run;
    /// others one bit-packed run.
    fn body(&self, entries: usize) -> Result<Vec<u8>, ParquetError> {
        let rows = self.row_count()?;
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
        let width = (usize::BITS - (entries.max(1) - 1).leading_zeros()) as u8;
        body.push(width);
        let values = self.keys.len() as u32;
        if values > 0 {
            if self.used.iter().filter(|u| **u).count() == 1 {
                rle_run(&mut body, values, u32::from(self.keys[0]), width);
            } else {
                bit_packed(&mut body, self.keys.iter().map(|k| u32::from(*k)), width);
            }
        }
        Ok(body)
    }

    /// The least and the greatest entry the row group uses (none when all its rows are null).
    pub(super) fn min_max<'e, E: Ord>(
        &'e self,
        entries: &'e [E],
    ) -> (Option<&'e E>, Option<&'e E>) {
        (self.used(entries).min(), self.used(entries).max())
    }

    /// The row group's chunk: `plain`, the dictionary of `entries` entries, as its dictionary
    /// page and the indices as its data page, with `stats`; the indices are then made ready for
    /// the next row group (the dictionary stays, so its entries stay in later row groups').
    pub(super) fn chunk(
        &mut self,
        descr: ColumnDescPtr,
        compression: Compression,
        plain: Vec<u8>,
        entries: usize,
        stats: Statistics,
    ) -> Result<(Bytes, ColumnCloseResult), ParquetError> {
        let rows = self.row_count()?;
        let body = self.body(entries)?;
        let chunk = dictionary_chunk(
            descr,
            Some((plain, entries as u32)),
            body,
            rows,
            compression,
            stats,
            None,
        )?;
        self.reset();
        Ok(chunk)
    }

    /// Made ready for the next row group (the dictionary stays).
    fn reset(&mut self) {
        self.keys.clear();
        if let Some(valid) = &mut self.valid {
            valid.clear();
        }
        self.used.iter_mut().for_each(|u| *u = false);
        self.nulls = 0;
        self.rows = 0;
    }
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
            entries,
            indices: Indices::new(optional),
        }
    }

    /// Takes a batch's column (text). When its values do not fit in the dictionary, the column
    /// is left as it was before the batch.
    pub(super) fn push(&mut self, a: &StringArray) -> Result<(), Full> {
        // Taken out for the batch, so that the lookup may have the column's dictionary.
        let mut indices = std::mem::take(&mut self.indices);
        let pushed = indices.push(
            a.len(),
            a.null_count(),
            |i| a.is_valid(i),
            |i| self.key(a.value(i).as_bytes()),
        );
        self.indices = indices;
        pushed
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
        Ok(k as u16)
    }

    /// The row group's rows so far, as text (when the column stops being coded halfway).
    pub(super) fn rows_as_text(&self) -> StringArray {
        let text =
            |k: u16| std::str::from_utf8(&self.entries[usize::from(k)]).expect("entries are text");
        StringArray::from(self.indices.rows_of(text))
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
        let mut plain = Vec::new();
        for e in &self.entries {
            plain.extend_from_slice(&(e.len() as u32).to_le_bytes());
            plain.extend_from_slice(e);
        }
        let (min, max) = self.indices.min_max(&self.entries);
        let value = |e: Option<&Box<[u8]>>| e.map(|e| ByteArray::from(e.to_vec()));
        let stats = Statistics::ByteArray(
            ValueStatistics::new(
                value(min),
                value(max),
                None,
                Some(self.indices.nulls()),
                false,
            )
            .with_min_is_exact(min.is_some())
            .with_max_is_exact(max.is_some()),
        );
        // The values met that are not in the list stay in the dictionary of later row groups.
        self.indices
            .chunk(descr, compression, plain, self.entries.len(), stats)
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
        assert_ne!(packed(b""), Some(EMPTY));
        assert_ne!(packed(b"\xff\xff\xff\xff\xff\xff\xff"), Some(EMPTY));
        assert_ne!(packed(b"41"), packed(b"41\0"));
        assert_eq!(packed(b"41010000"), None);
    }

    /// The open-addressed table finds every word it holds as it grows, and no other.
    #[test]
    fn words_find_what_they_hold_as_they_grow() {
        let mut words = Words::default();
        let word = |i: u32| packed(format!("{:06}", 410000 + i * 7).as_bytes()).expect("short");
        for i in 0..4096 {
            assert_eq!(words.get(word(i)), None);
            words.insert(word(i), i as u16);
        }
        assert_eq!(words.slots.len(), 8192, "at most half full");
        for i in 0..4096 {
            assert_eq!(words.get(word(i)), Some(i as u16), "{i}");
        }
        assert_eq!(words.get(word(5000)), None);
        assert_eq!(words.get(packed(b"").expect("short")), None);
    }
}
