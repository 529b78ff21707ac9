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
        let body = indices_body(
            self.valid.as_deref(),
            self.nulls,
            rows,
            self.entries.len(),
            &self.keys,
            self.used.iter().filter(|u| **u).count() == 1,
        );
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
            Some((plain, self.entries.len() as u32)),
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

/// The data page (v1) of a dictionary-coded chunk of `rows` rows: the definition levels of an
/// optional column (`valid`; bit width 1, length-prefixed), then the indices' bit width (of a
/// dictionary of `entries`) and the indices (`keys`, one per value), bit-packed. Levels and
/// indices that repeat one value (no nulls, all nulls, `one_used` entry: a per-type file's
/// `case_type`) are one RLE run; others one bit-packed run.
pub(super) fn indices_body(
    valid: Option<&[bool]>,
    nulls: u64,
    rows: u32,
    entries: usize,
    keys: &[u16],
    one_used: bool,
) -> Vec<u8> {
    let mut body = Vec::new();
    if let Some(valid) = valid {
        let mut levels = Vec::new();
        match nulls {
            0 => rle_run(&mut levels, rows, 1, 1),
            n if n == u64::from(rows) => rle_run(&mut levels, rows, 0, 1),
            _ => bit_packed(&mut levels, valid.iter().map(|v| u32::from(*v)), 1),
        }
        body.extend_from_slice(&(levels.len() as u32).to_le_bytes());
        body.extend_from_slice(&levels);
    }
    let width = (usize::BITS - (entries.max(1) - 1).leading_zeros()) as u8;
    body.push(width);
    let values = keys.len() as u32;
    if values > 0 {
        if one_used {
            rle_run(&mut body, values, u32::from(keys[0]), width);
        } else {
            bit_packed(&mut body, keys.iter().map(|k| u32::from(*k)), width);
        }
    }
    body
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
