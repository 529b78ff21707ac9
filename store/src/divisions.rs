//! The administrative divisions that define the universe of the warehouse.
//!
//! The project ships the real divisions of Henan in `seeds/divisions/` (built into the binary);
//! `plsw seeds load DIR` replaces them in the warehouse with another set (a few cities for a
//! test, say), and every rule that asks "is this a county of the province?" follows that set.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray};
use plsw_schemas::tables::{self, Table};

use crate::error::{Error, Result};
use crate::store::Warehouse;

/// The province's own code, used for province scope and the hotline backstop.
pub const PROVINCE_CODE: &str = "410000";

const BUILTIN: [(&str, &str); 4] = [
    ("cities", include_str!("../../seeds/divisions/cities.csv")),
    (
        "counties",
        include_str!("../../seeds/divisions/counties.csv"),
    ),
    (
        "townships",
        include_str!("../../seeds/divisions/townships.csv"),
    ),
    (
        "villages",
        include_str!("../../seeds/divisions/villages.csv"),
    ),
];

/// Rows of the four division levels, each row as the table's columns in order.
#[derive(Debug, Clone, Default)]
pub struct Divisions {
    pub cities: Vec<Vec<String>>,
    pub counties: Vec<Vec<String>>,
    pub townships: Vec<Vec<String>>,
    pub villages: Vec<Vec<String>>,
    city_codes: HashSet<String>,
    county_city: HashMap<String, String>,
    /// The 9- and 12-digit codes as numbers (52k villages: a word each instead of a string).
    township_codes: CodeSet,
    village_codes: CodeSet,
    /// The city and county codes again, as bits: every record of a file is checked against
    /// them, and a bit costs less than hashing a string.
    city_bits: CodeBits,
    county_bits: CodeBits,
}

/// A set of 6-digit codes as one bit per possible code (125 KiB).
#[derive(Debug, Clone, Default)]
struct CodeBits(Vec<u64>);

impl CodeBits {
    fn of<'a>(codes: impl Iterator<Item = &'a String>) -> CodeBits {
        let mut bits = vec![0u64; 1_000_000 / 64 + 1];
        for n in codes.filter_map(|c| six_digit_index(c)) {
            bits[n / 64] |= 1 << (n % 64);
        }
        CodeBits(bits)
    }

    /// Whether the set holds `code`; `None` when `code` is not 6 digits (not for this set).
    fn contains(&self, code: &str) -> Option<bool> {
        let n = six_digit_index(code)?;
        Some(self.0.get(n / 64).is_some_and(|w| (w >> (n % 64)) & 1 == 1))
    }
}

/// A 6-digit code as its bit's index.
fn six_digit_index(code: &str) -> Option<usize> {
    code_number(code, 6).and_then(|n| usize::try_from(n).ok())
}

/// Codes of one length as numbers, hashed by [`CodeHasher`].
type CodeSet = HashSet<u64, std::hash::BuildHasherDefault<CodeHasher>>;

/// A hasher for codes, which are not chosen by an attacker: one multiplication and a fold per
/// code. Cloning the codes as strings and hashing them with SipHash was a large part of every
/// command's start (docs/benchmarks.md).
#[derive(Debug, Default, Clone, Copy)]
struct CodeHasher(u64);

impl std::hash::Hasher for CodeHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }

    fn finish(&self) -> u64 {
        self.0 ^ (self.0 >> 32)
    }
}

/// A code of exactly `len` ASCII digits as a number (codes of one level have one length, so
/// the number names the code).
fn code_number(code: &str, len: usize) -> Option<u64> {
    let b = code.as_bytes();
    if b.len() != len || len > 19 {
        return None;
    }
    b.iter().try_fold(0u64, |n, &c| {
        c.is_ascii_digit().then(|| n * 10 + u64::from(c - b'0'))
    })
}

impl Divisions {
    /// The divisions shipped with plsw (`seeds/divisions/`).
    pub fn builtin() -> Divisions {
        let mut levels = Vec::new();
        for (name, text) in BUILTIN {
            let def = tables::by_name(name).expect("division table");
            levels.push(parse(def, text, Path::new(name)).expect("the built-in seeds parse"));
        }
        Self::from_levels(levels).expect("the built-in seeds are consistent")
    }

    /// Reads `cities.csv`, `counties.csv`, `townships.csv` and `villages.csv` from a directory.
    pub fn from_dir(dir: &Path) -> Result<Divisions> {
        let mut levels = Vec::new();
        for def in tables::DIVISION_TABLES {
            let path = dir.join(format!("{}.csv", def.name));
            let text = std::fs::read_to_string(&path).map_err(|source| Error::Io {
                path: path.clone(),
                source,
            })?;
            levels.push(parse(def, &text, &path)?);
        }
        Self::from_levels(levels).map_err(|message| Error::Divisions {
            path: dir.to_path_buf(),
            message,
        })
    }

    /// The divisions in force: those loaded into the warehouse, or the built-in ones.
    pub async fn load(wh: &Warehouse) -> Result<Divisions> {
        Self::from_context(&wh.raw_context().await?, wh).await
    }

    /// As [`Divisions::load`], from a context holding the warehouse's Delta tables by name.
    pub(crate) async fn from_context(
        ctx: &datafusion::prelude::SessionContext,
        wh: &Warehouse,
    ) -> Result<Divisions> {
        let mut levels = Vec::new();
        for def in tables::DIVISION_TABLES {
            let cols: Vec<&str> = def.columns.iter().map(|c| c.name).collect();
            let batches = ctx
                .sql(&format!("SELECT {} FROM {}", cols.join(", "), def.name))
                .await?
                .collect()
                .await?;
            let mut rows = Vec::new();
            for b in &batches {
                let columns: Vec<StringArray> = b
                    .columns()
                    .iter()
                    .map(crate::store::utf8)
                    .collect::<Result<_>>()?;
                for r in 0..b.num_rows() {
                    rows.push(columns.iter().map(|c| c.value(r).to_string()).collect());
                }
            }
            levels.push(rows);
        }
        if levels.iter().all(|l| l.is_empty()) {
            return Ok(Self::builtin());
        }
        Self::from_levels(levels).map_err(|message| Error::Divisions {
            path: wh.url().to_string().into(),
            message,
        })
    }

    /// Writes these divisions into the warehouse, replacing the set in force.
    pub async fn store(&self, wh: &Warehouse) -> Result<()> {
        for def in tables::DIVISION_TABLES {
            wh.overwrite(def, vec![self.batch(def)]).await?;
        }
        Ok(())
    }

    /// Divisions from rows of the four levels (each row in its table's column order), checked
    /// for consistency: every parent exists.
    pub fn from_rows(
        cities: Vec<Vec<String>>,
        counties: Vec<Vec<String>>,
        townships: Vec<Vec<String>>,
        villages: Vec<Vec<String>>,
    ) -> std::result::Result<Divisions, String> {
        Self::from_levels(vec![cities, counties, townships, villages])
    }

    fn from_levels(mut levels: Vec<Vec<Vec<String>>>) -> std::result::Result<Divisions, String> {
        let villages = levels.pop().unwrap_or_default();
        let townships = levels.pop().unwrap_or_default();
        let counties = levels.pop().unwrap_or_default();
        let cities = levels.pop().unwrap_or_default();
        let city_codes: HashSet<String> = cities.iter().map(|r| r[0].clone()).collect();
        let mut county_city = HashMap::new();
        for r in &counties {
            if !city_codes.contains(&r[2]) {
                return Err(format!("county {} names unknown city {}", r[0], r[2]));
            }
            county_city.insert(r[0].clone(), r[2].clone());
        }
        for r in &townships {
            if !county_city.contains_key(&r[2]) {
                return Err(format!("township {} names unknown county {}", r[0], r[2]));
            }
        }
        let numbers = |rows: &[Vec<String>], len: usize, level: &str| {
            rows.iter()
                .map(|r| {
                    code_number(&r[0], len)
                        .ok_or_else(|| format!("{level} code {:?} is not {len} digits", r[0]))
                })
                .collect::<std::result::Result<CodeSet, String>>()
        };
        let township_codes = numbers(&townships, 9, "township")?;
        for r in &villages {
            if !code_number(&r[2], 9).is_some_and(|n| township_codes.contains(&n)) {
                return Err(format!("village {} names unknown township {}", r[0], r[2]));
            }
        }
        let village_codes = numbers(&villages, 12, "village")?;
        let city_bits = CodeBits::of(city_codes.iter());
        let county_bits = CodeBits::of(county_city.keys());
        Ok(Divisions {
            city_bits,
            county_bits,
            cities,
            counties,
            townships,
            villages,
            city_codes,
            county_city,
            township_codes,
            village_codes,
        })
    }

    pub fn is_city(&self, code: &str) -> bool {
        self.city_bits
            .contains(code)
            .unwrap_or_else(|| self.city_codes.contains(code))
    }

    pub fn is_county(&self, code: &str) -> bool {
        self.county_bits
            .contains(code)
            .unwrap_or_else(|| self.county_city.contains_key(code))
    }

    /// The city of a county.
    pub fn city_of(&self, county: &str) -> Option<&str> {
        self.county_city.get(county).map(String::as_str)
    }

    pub fn is_township(&self, code: &str) -> bool {
        code_number(code, 9).is_some_and(|n| self.township_codes.contains(&n))
    }

    pub fn is_village(&self, code: &str) -> bool {
        code_number(code, 12).is_some_and(|n| self.village_codes.contains(&n))
    }

    /// A 6-, 9- or 12-digit code of a city, county, township or village of the set.
    pub fn is_division(&self, code: &str) -> bool {
        match code.len() {
            6 => self.is_city(code) || self.is_county(code),
            9 => self.is_township(code),
            12 => self.is_village(code),
            _ => false,
        }
    }

    /// The rows of one level as a record batch of its table.
    pub fn batch(&self, def: &Table) -> RecordBatch {
        let rows = match def.name {
            "cities" => &self.cities,
            "counties" => &self.counties,
            "townships" => &self.townships,
            _ => &self.villages,
        };
        let columns: Vec<ArrayRef> = (0..def.columns.len())
            .map(|c| {
                Arc::new(StringArray::from_iter_values(rows.iter().map(|r| &r[c]))) as ArrayRef
            })
            .collect();
        RecordBatch::try_new(def.schema(), columns).expect("division rows match their table")
    }
}

/// Parses one division CSV: the header must hold the table's columns (any order, extra ignored).
fn parse(def: &Table, text: &str, path: &Path) -> Result<Vec<Vec<String>>> {
    let err = |message: String| Error::Divisions {
        path: path.to_path_buf(),
        message,
    };
    let mut rdr =
        csv::ReaderBuilder::new().from_reader(text.trim_start_matches('\u{feff}').as_bytes());
    let header = rdr.headers().map_err(|e| err(e.to_string()))?.clone();
    let idx: Vec<usize> = def
        .columns
        .iter()
        .map(|c| {
            header
                .iter()
                .position(|h| h.trim() == c.name)
                .ok_or_else(|| err(format!("missing column {}", c.name)))
        })
        .collect::<Result<_>>()?;
    let mut rows = Vec::new();
    let mut seen = CodeSet::default();
    for (n, rec) in rdr.records().enumerate() {
        let rec = rec.map_err(|e| err(e.to_string()))?;
        let row: Vec<String> = idx
            .iter()
            .map(|&i| rec.get(i).unwrap_or("").trim().to_string())
            .collect();
        let want = match def.name {
            "cities" | "counties" => 6,
            "townships" => 9,
            _ => 12,
        };
        let Some(number) = code_number(&row[0], want) else {
            return Err(err(format!(
                "record {}: code {:?} is not {want} digits",
                n + 1,
                row[0]
            )));
        };
        if !seen.insert(number) {
            return Err(err(format!("record {}: code {} twice", n + 1, row[0])));
        }
        rows.push(row);
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_holds_the_real_divisions() {
        let d = Divisions::builtin();
        assert_eq!(d.cities.len(), 18);
        assert_eq!(d.counties.len(), 181);
        assert_eq!(d.townships.len(), 2586);
        assert_eq!(d.villages.len(), 52378);
        assert!(d.is_county("410122"), "中牟县");
        assert_eq!(d.city_of("410122"), Some("410100"));
        assert!(d.is_city("419000"), "济源 as the divisions write it");
        assert!(!d.is_county("410100"));
        assert!(d.is_division("410102001"));
        assert!(!d.is_division("41010200"));
        // The bits and the sets agree on every code of every level, and on a few that are
        // none of them.
        let all = [&d.cities, &d.counties, &d.townships, &d.villages];
        for code in all.iter().flat_map(|l| l.iter().map(|r| r[0].as_str())) {
            assert_eq!(d.is_city(code), d.city_codes.contains(code), "{code}");
            assert_eq!(
                d.is_county(code),
                d.county_city.contains_key(code),
                "{code}"
            );
        }
        for code in [
            "",
            "41010",
            "4101000",
            "410000",
            "000000",
            "999999",
            "41010a",
            "４１０１００",
        ] {
            assert!(!d.is_city(code) && !d.is_county(code), "{code}");
        }
    }

    #[test]
    fn township_and_village_codes_are_found_as_written_and_only_so() {
        let d = Divisions::builtin();
        for r in &d.townships {
            assert!(d.is_township(&r[0]) && !d.is_village(&r[0]), "{}", r[0]);
        }
        for r in &d.villages {
            assert!(d.is_village(&r[0]) && !d.is_township(&r[0]), "{}", r[0]);
        }
        let village = d.villages[0][0].clone();
        let township = d.townships[0][0].clone();
        for code in [
            format!("0{township}"),
            township[1..].to_string(),
            format!("{}a", &township[..8]),
            format!(" {}", &township[1..]),
            format!("+{}", &township[1..]),
            format!("0{village}"),
            village[..11].to_string(),
            "000000000".to_string(),
            "000000000000".to_string(),
        ] {
            assert!(!d.is_township(&code) && !d.is_village(&code), "{code:?}");
        }
        assert!(!d.is_division("") && !d.is_division("9999999999999999999999"));
    }

    #[test]
    fn a_code_that_is_not_its_levels_digits_is_refused() {
        let d = Divisions::builtin();
        let mut townships = d.townships.clone();
        townships[0][0] = format!("{}x", &townships[0][0][..8]);
        let refused = Divisions::from_rows(
            d.cities.clone(),
            d.counties.clone(),
            townships,
            d.villages.clone(),
        );
        assert!(refused.unwrap_err().contains("is not 9 digits"));
        let mut villages = d.villages.clone();
        villages[0][0].push('0');
        let refused =
            Divisions::from_rows(d.cities.clone(), d.counties.clone(), d.townships, villages);
        assert!(refused.unwrap_err().contains("is not 12 digits"));
    }
}
