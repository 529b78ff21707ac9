//! The administrative divisions that define the universe of the warehouse.
//!
//! The project ships the real divisions of Henan in `seeds/divisions/` (built into the binary);
//! `plsw seeds load DIR` replaces them in the warehouse with another set (a few cities for a
//! test, say), and every rule that asks "is this a county of the province?" follows that set.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, OnceLock};

use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringArray, StringBuilder};
use datafusion::arrow::compute::concat;
use datafusion::arrow::datatypes::DataType;
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

/// The four division levels, each held as its table's record batch (a few string buffers per
/// level, not a string per field: 52k villages cost one command's start 20 ms as rows of
/// strings), with the code sets every check asks.
#[derive(Debug, Clone)]
pub struct Divisions {
    /// Cities and counties, in [`tables::DIVISION_TABLES`]' order.
    upper: [RecordBatch; 2],
    city_codes: HashSet<String>,
    county_city: HashMap<String, String>,
    /// The city and county codes again, as bits: every record of a file is checked against
    /// them, and a bit costs less than hashing a string.
    city_bits: CodeBits,
    county_bits: CodeBits,
    /// Townships and villages: set when the divisions are made, except the built-in ones,
    /// which are parsed when first asked for (shared by the clones). A load of calls or cases
    /// checks only cities and counties, and parsing 55k townships and villages was a fifth of
    /// its start (docs/benchmarks-history.md).
    lower: Arc<OnceLock<Lower>>,
}

/// Townships and villages.
#[derive(Debug)]
struct Lower {
    levels: [RecordBatch; 2],
    /// The 9- and 12-digit codes as numbers (52k villages: a word each instead of a string).
    township_codes: CodeSet,
    village_codes: CodeSet,
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
/// command's start (docs/benchmarks-history.md).
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

impl Lower {
    /// Townships and villages, checked: each code once and of its level's digits, and every
    /// parent (a county of `county_city`, a township) exists.
    fn of(
        townships: RecordBatch,
        villages: RecordBatch,
        county_city: &HashMap<String, String>,
    ) -> std::result::Result<Lower, String> {
        for (township, county) in col(&townships, 0).zip(col(&townships, 2)) {
            if !county_city.contains_key(county) {
                return Err(format!("township {township} names unknown county {county}"));
            }
        }
        // Each code once: a level read from the warehouse is checked as one read from files.
        let numbers = |level: &RecordBatch, len: usize, name: &str| {
            let mut set = CodeSet::default();
            set.reserve(level.num_rows());
            for c in col(level, 0) {
                let n = code_number(c, len)
                    .ok_or_else(|| format!("{name} code {c:?} is not {len} digits"))?;
                if !set.insert(n) {
                    return Err(format!("{name} code {c} twice"));
                }
            }
            Ok::<_, String>(set)
        };
        let township_codes = numbers(&townships, 9, "township")?;
        for (village, township) in col(&villages, 0).zip(col(&villages, 2)) {
            if !code_number(township, 9).is_some_and(|n| township_codes.contains(&n)) {
                return Err(format!(
                    "village {village} names unknown township {township}"
                ));
            }
        }
        let village_codes = numbers(&villages, 12, "village")?;
        Ok(Lower {
            levels: [townships, villages],
            township_codes,
            village_codes,
        })
    }
}

/// The texts of column `c` of a level.
fn col(level: &RecordBatch, c: usize) -> impl Iterator<Item = &str> + '_ {
    level
        .column(c)
        .as_string::<i32>()
        .iter()
        .map(|v| v.unwrap_or(""))
}

/// One level of the built-in divisions, parsed.
fn parse_builtin(&(name, text): &(&str, &str)) -> RecordBatch {
    let def = tables::by_name(name).expect("division table");
    parse(def, text, Path::new(name)).expect("the built-in seeds parse")
}

impl Divisions {
    /// The divisions shipped with plsw (`seeds/divisions/`): their townships and villages are
    /// parsed when first asked for.
    pub fn builtin() -> Divisions {
        let [cities, counties] = [&BUILTIN[0], &BUILTIN[1]].map(parse_builtin);
        Self::upper([cities, counties], Arc::default()).expect("the built-in seeds are consistent")
    }

    /// Townships and villages: the built-in ones parsed and checked the first time.
    fn lower(&self) -> &Lower {
        self.lower.get_or_init(|| {
            let [townships, villages] = [&BUILTIN[2], &BUILTIN[3]].map(parse_builtin);
            Lower::of(townships, villages, &self.county_city)
                .expect("the built-in seeds are consistent")
        })
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

    /// The divisions in force: those loaded into the warehouse, or the built-in ones. Reads
    /// only the four division tables.
    pub async fn load(wh: &Warehouse) -> Result<Divisions> {
        if Self::never_loaded(wh).await? {
            return Ok(Self::builtin());
        }
        Self::read(&wh.context_of(tables::DIVISION_TABLES).await?, wh).await
    }

    /// Whether no divisions were ever loaded into the warehouse: each division table is at the
    /// version that created it, empty. (Then no query need scan them: four queries were most of
    /// a short command's reading of the divisions.)
    async fn never_loaded(wh: &Warehouse) -> Result<bool> {
        for def in tables::DIVISION_TABLES {
            if wh.table(def).await?.version() != Some(0) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// As [`Divisions::load`], from a context holding the warehouse's Delta tables by name.
    pub(crate) async fn from_context(
        ctx: &datafusion::prelude::SessionContext,
        wh: &Warehouse,
    ) -> Result<Divisions> {
        if Self::never_loaded(wh).await? {
            return Ok(Self::builtin());
        }
        Self::read(ctx, wh).await
    }

    /// The divisions of the tables in `ctx`, or the built-in ones when the tables are empty.
    async fn read(ctx: &datafusion::prelude::SessionContext, wh: &Warehouse) -> Result<Divisions> {
        let mut levels = Vec::new();
        for def in tables::DIVISION_TABLES {
            let cols: Vec<&str> = def.columns.iter().map(|c| c.name).collect();
            let batches = ctx
                .sql(&format!("SELECT {} FROM {}", cols.join(", "), def.name))
                .await?
                .collect()
                .await?;
            // Each column as plain UTF-8 (a scan may give views), in one batch per level.
            let mut columns = Vec::with_capacity(def.columns.len());
            for c in 0..def.columns.len() {
                let parts = batches
                    .iter()
                    .map(|b| crate::store::utf8(b.column(c)))
                    .collect::<Result<Vec<_>>>()?;
                let parts: Vec<&dyn Array> = parts.iter().map(|a| a as &dyn Array).collect();
                columns.push(match parts.is_empty() {
                    true => datafusion::arrow::array::new_empty_array(&DataType::Utf8),
                    false => concat(&parts)
                        .map_err(|e| Error::from(datafusion::error::DataFusionError::from(e)))?,
                });
            }
            levels.push(level_batch(def, columns));
        }
        if levels.iter().all(|l| l.num_rows() == 0) {
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
        let levels = [cities, counties, townships, villages]
            .iter()
            .zip(tables::DIVISION_TABLES)
            .map(|(rows, def)| {
                let columns = (0..def.columns.len())
                    .map(|c| {
                        Arc::new(StringArray::from_iter_values(
                            rows.iter().map(|r| r.get(c).map_or("", String::as_str)),
                        )) as ArrayRef
                    })
                    .collect();
                level_batch(def, columns)
            })
            .collect();
        Self::from_levels(levels)
    }

    /// Divisions from the four levels' batches, checked: every code appears once, township and
    /// village codes have their level's digits (a file's codes of every level are checked for
    /// them as it is parsed), and every parent exists.
    fn from_levels(levels: Vec<RecordBatch>) -> std::result::Result<Divisions, String> {
        let [cities, counties, townships, villages]: [RecordBatch; 4] = levels
            .try_into()
            .map_err(|_| "four levels of divisions".to_string())?;
        let d = Self::upper([cities, counties], Arc::default())?;
        let lower = Lower::of(townships, villages, &d.county_city)?;
        d.lower.set(lower).expect("a new cell");
        Ok(d)
    }

    /// Divisions from their cities and counties, checked, and `lower` (set or not).
    fn upper(
        upper: [RecordBatch; 2],
        lower: Arc<OnceLock<Lower>>,
    ) -> std::result::Result<Divisions, String> {
        let col = |level: usize, c: usize| upper[level].column(c).as_string::<i32>();
        let mut city_codes = HashSet::new();
        for city in col(0, 0).iter().map(|c| c.unwrap_or("")) {
            if !city_codes.insert(city.to_string()) {
                return Err(format!("city code {city} twice"));
            }
        }
        let mut county_city = HashMap::new();
        for (county, city) in col(1, 0).iter().zip(col(1, 2).iter()) {
            let (county, city) = (county.unwrap_or(""), city.unwrap_or(""));
            if !city_codes.contains(city) {
                return Err(format!("county {county} names unknown city {city}"));
            }
            if county_city
                .insert(county.to_string(), city.to_string())
                .is_some()
            {
                return Err(format!("county code {county} twice"));
            }
        }
        let city_bits = CodeBits::of(city_codes.iter());
        let county_bits = CodeBits::of(county_city.keys());
        Ok(Divisions {
            upper,
            city_codes,
            county_city,
            city_bits,
            county_bits,
            lower,
        })
    }

    /// The index of a division table among the levels.
    fn level(def: &Table) -> usize {
        tables::DIVISION_TABLES
            .iter()
            .position(|t| t.name == def.name)
            .expect("a division table")
    }

    /// One level's batch.
    fn level_batch(&self, def: &Table) -> &RecordBatch {
        match Self::level(def) {
            l @ (0 | 1) => &self.upper[l],
            l => &self.lower().levels[l - 2],
        }
    }

    /// How many divisions one level (a table of [`tables::DIVISION_TABLES`]) holds.
    pub fn count(&self, def: &Table) -> usize {
        self.level_batch(def).num_rows()
    }

    /// The codes of one level, in the order of its rows.
    pub fn codes(&self, def: &Table) -> impl Iterator<Item = &str> + '_ {
        self.level_batch(def)
            .column(0)
            .as_string::<i32>()
            .iter()
            .map(|c| c.unwrap_or(""))
    }

    /// The rows of one level, each as its table's columns in order (a copy: for the generator
    /// and for tests, not for checks).
    pub fn rows(&self, def: &Table) -> Vec<Vec<String>> {
        let batch = self.level_batch(def);
        let columns: Vec<&StringArray> = batch
            .columns()
            .iter()
            .map(|c| c.as_string::<i32>())
            .collect();
        (0..batch.num_rows())
            .map(|r| columns.iter().map(|c| c.value(r).to_string()).collect())
            .collect()
    }

    /// Every county with its city.
    pub fn county_cities(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.county_city
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
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
        code_number(code, 9).is_some_and(|n| self.lower().township_codes.contains(&n))
    }

    pub fn is_village(&self, code: &str) -> bool {
        code_number(code, 12).is_some_and(|n| self.lower().village_codes.contains(&n))
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
        self.level_batch(def).clone()
    }
}

/// One level's columns (all text, in its table's order) as a batch of its table.
fn level_batch(def: &Table, columns: Vec<ArrayRef>) -> RecordBatch {
    RecordBatch::try_new(def.schema(), columns).expect("division columns match their table")
}

/// Parses one division CSV: the header must hold the table's columns (any order, extra ignored).
fn parse(def: &Table, text: &str, path: &Path) -> Result<RecordBatch> {
    let err = |message: String| Error::Divisions {
        path: path.to_path_buf(),
        message,
    };
    let want = match def.name {
        "cities" | "counties" => 6,
        "townships" => 9,
        _ => 12,
    };
    let mut idx: Vec<usize> = Vec::new();
    let mut columns: Vec<StringBuilder> = Vec::new();
    for_each_record(text.trim_start_matches('\u{feff}'), |n, rec| {
        if n == 0 {
            idx = def
                .columns
                .iter()
                .map(|c| {
                    rec.iter()
                        .position(|h| h.trim() == c.name)
                        .ok_or_else(|| format!("missing column {}", c.name))
                })
                .collect::<std::result::Result<_, _>>()?;
            columns = idx.iter().map(|_| StringBuilder::new()).collect();
            return Ok(());
        }
        let field = |i: usize| rec.get(idx[i]).copied().unwrap_or("").trim();
        let code = field(0);
        if code_number(code, want).is_none() {
            return Err(format!("record {n}: code {code:?} is not {want} digits"));
        }
        for (i, column) in columns.iter_mut().enumerate() {
            column.append_value(field(i));
        }
        Ok(())
    })
    .map_err(err)?;
    if idx.is_empty() {
        return Err(err("no header".into()));
    }
    let columns = columns
        .iter_mut()
        .map(|c| Arc::new(c.finish()) as ArrayRef)
        .collect();
    Ok(level_batch(def, columns))
}

/// Calls `f` with each record of a CSV text and its number (the header is 0), as the csv crate
/// reads them: blank lines skipped, every record as long as the header. A text without a quote
/// or a carriage return (the seeds) is split at its line feeds and commas; the csv crate took 7
/// ms over the 52k villages, a third of a short command.
fn for_each_record(
    text: &str,
    mut f: impl FnMut(usize, &[&str]) -> std::result::Result<(), String>,
) -> std::result::Result<(), String> {
    if memchr::memchr2(b'"', b'\r', text.as_bytes()).is_some() {
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(text.as_bytes());
        let mut rec = csv::StringRecord::new();
        let mut n = 0;
        while rdr.read_record(&mut rec).map_err(|e| e.to_string())? {
            let fields: Vec<&str> = rec.iter().collect();
            f(n, &fields)?;
            n += 1;
        }
        return Ok(());
    }
    let mut fields: Vec<&str> = Vec::new();
    let mut width = None;
    for (n, line) in text.split('\n').filter(|l| !l.is_empty()).enumerate() {
        fields.clear();
        fields.extend(line.split(','));
        match width {
            None => width = Some(fields.len()),
            Some(w) if w != fields.len() => {
                return Err(format!(
                    "record {n} has {} fields, the header {w}",
                    fields.len()
                ))
            }
            Some(_) => {}
        }
        f(n, &fields)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The built-in townships and villages are parsed when first asked for, once for a
    /// divisions value and its clones, and a set made from files or rows holds them at once.
    #[test]
    fn builtin_parses_townships_and_villages_when_first_asked_for() {
        let d = Divisions::builtin();
        assert!(d.is_county("410122") && d.is_city("410100"));
        assert_eq!(d.count(&tables::COUNTIES), 181);
        assert!(
            d.lower.get().is_none(),
            "cities and counties need no townships"
        );
        let clone = d.clone();
        assert!(clone.is_village("410102001002"));
        assert!(!clone.is_village("410102001999"));
        assert!(d.lower.get().is_some(), "the clones share the parse");
        assert!(d.is_township("410102001"));

        let rows = |def: &Table| d.rows(def);
        let made = Divisions::from_rows(
            rows(&tables::CITIES),
            rows(&tables::COUNTIES),
            rows(&tables::TOWNSHIPS),
            rows(&tables::VILLAGES),
        )
        .expect("consistent");
        assert!(made.lower.get().is_some());
        assert_eq!(made.count(&tables::VILLAGES), 52378);
    }

    #[test]
    fn builtin_holds_the_real_divisions() {
        let d = Divisions::builtin();
        assert_eq!(d.count(&tables::CITIES), 18);
        assert_eq!(d.count(&tables::COUNTIES), 181);
        assert_eq!(d.count(&tables::TOWNSHIPS), 2586);
        assert_eq!(d.count(&tables::VILLAGES), 52378);
        assert_eq!(
            d.rows(&tables::COUNTIES)[0],
            ["410102", "中原区", "410100", "district"]
        );
        assert!(d.is_county("410122"), "中牟县");
        assert_eq!(d.city_of("410122"), Some("410100"));
        assert!(d.is_city("419000"), "济源 as the divisions write it");
        assert!(!d.is_county("410100"));
        assert!(d.is_division("410102001"));
        assert!(!d.is_division("41010200"));
        // The bits and the sets agree on every code of every level, and on a few that are
        // none of them.
        for code in tables::DIVISION_TABLES.iter().flat_map(|t| d.codes(t)) {
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
        for code in d.codes(&tables::TOWNSHIPS) {
            assert!(d.is_township(code) && !d.is_village(code), "{code}");
        }
        for code in d.codes(&tables::VILLAGES) {
            assert!(d.is_village(code) && !d.is_township(code), "{code}");
        }
        let village = d.codes(&tables::VILLAGES).next().unwrap().to_string();
        let township = d.codes(&tables::TOWNSHIPS).next().unwrap().to_string();
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
        let level = |t| d.rows(t);
        let (cities, counties) = (level(&tables::CITIES), level(&tables::COUNTIES));
        let (townships, villages) = (level(&tables::TOWNSHIPS), level(&tables::VILLAGES));
        let accepted = Divisions::from_rows(
            cities.clone(),
            counties.clone(),
            townships.clone(),
            villages.clone(),
        )
        .unwrap();
        assert_eq!(accepted.count(&tables::VILLAGES), 52378);
        assert_eq!(
            accepted.batch(&tables::TOWNSHIPS),
            d.batch(&tables::TOWNSHIPS)
        );
        let mut bad = townships.clone();
        bad[0][0] = format!("{}x", &bad[0][0][..8]);
        let refused = Divisions::from_rows(cities.clone(), counties.clone(), bad, villages.clone());
        assert!(refused.unwrap_err().contains("is not 9 digits"));
        let mut bad = villages.clone();
        bad[0][0].push('0');
        let refused =
            Divisions::from_rows(cities.clone(), counties.clone(), townships.clone(), bad);
        assert!(refused.unwrap_err().contains("is not 12 digits"));
        let mut bad = villages.clone();
        bad.push(bad[0].clone());
        let refused =
            Divisions::from_rows(cities.clone(), counties.clone(), townships.clone(), bad);
        assert_eq!(refused.unwrap_err(), "village code 410102001002 twice");
        let mut bad = counties.clone();
        bad.push(bad[0].clone());
        let refused =
            Divisions::from_rows(cities.clone(), bad, townships.clone(), villages.clone());
        assert_eq!(refused.unwrap_err(), "county code 410102 twice");
        let mut bad = villages;
        bad[0][2] = "410102999".into();
        let refused = Divisions::from_rows(cities, counties, townships, bad);
        assert!(refused
            .unwrap_err()
            .contains("names unknown township 410102999"));
    }

    #[test]
    fn division_csv_is_read_as_the_csv_crate_reads_it() {
        let read = |text: &str| {
            let mut out = Vec::new();
            let done = for_each_record(text, |n, rec| {
                out.push((n, rec.iter().map(|f| f.to_string()).collect::<Vec<_>>()));
                Ok(())
            });
            (out, done)
        };
        let plain = "code,name\n410100,郑州市\n\n410200, 开封市 \n";
        let quoted = "code,name\r\n410100,\"郑州市\"\r\n\r\n410200, 开封市 \r\n";
        let (a, b) = (read(plain), read(quoted));
        assert_eq!(a, b);
        assert_eq!(a.0.len(), 3, "blank lines skipped: {a:?}");
        assert_eq!(
            a.0[2],
            (2, vec!["410200".to_string(), " 开封市 ".to_string()])
        );
        // A record of another width, on either path.
        let (_, short) = read("code,name\n410100\n");
        assert_eq!(short.unwrap_err(), "record 1 has 1 fields, the header 2");
        assert!(read("code,name\r\n410100\r\n").1.is_err());
        // The built-in seeds take the plain path, and read as the csv crate reads them.
        for (_, text) in BUILTIN {
            assert!(!text.contains(['"', '\r']));
            let with_crlf = text.replace('\n', "\r\n");
            let (plain, crlf) = (read(text), read(&with_crlf));
            assert_eq!(plain, crlf);
            assert!(plain.0.len() > 10);
        }
        let d = Divisions::builtin();
        assert_eq!(d.count(&tables::VILLAGES), 52378);
    }
}
