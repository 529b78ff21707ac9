//! The rules of each file feed (feeds.md): how a record's text becomes a typed row, and which
//! records are quarantined, with which reason.
//!
//! Conversion is driven by the column kinds declared in `plsw-schemas`; each feed adds its
//! cross-field rules in a `check` function.

use std::borrow::Cow;

use plsw_schemas::codes;
use plsw_schemas::tables::{self, Kind, Table};
use plsw_store::Divisions;

pub use crate::batch::Fields;
use crate::batch::{Column, Columns, MAX_COLUMNS};
use crate::parse;

/// A typed value of one column. Text is borrowed from the record it was read from (or from the
/// code lists) where it can be, and owned where it is made (a pulled JSON item).
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    Null,
    Text(Cow<'a, str>),
    Int(i64),
    Bool(bool),
    /// Days since the epoch.
    Date(i32),
    /// UTC microseconds.
    Ts(i64),
    /// Fen (yuan × 100).
    Money(i128),
    List(Vec<&'static str>),
}

/// Why a record was quarantined: a stable reason code and a readable message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    pub reason: String,
    pub message: String,
}

fn reject(reason: impl Into<String>, message: impl Into<String>) -> Reject {
    Reject {
        reason: reason.into(),
        message: message.into(),
    }
}

/// A converted record, in the table's column order.
#[derive(Debug, Default)]
pub struct Row<'a> {
    pub values: Vec<Value<'a>>,
    /// Warnings of an accepted row (an unknown topic kept as `other`).
    pub warnings: u32,
    table: Option<&'static Table>,
}

impl<'a> Row<'a> {
    /// A row of `table` from values in its column order.
    pub fn new(table: &'static Table, values: Vec<Value<'a>>) -> Row<'a> {
        debug_assert_eq!(values.len(), table.columns.len());
        Row {
            values,
            warnings: 0,
            table: Some(table),
        }
    }

    fn idx(&self, name: &str) -> usize {
        let t = self.table.expect("row of a table");
        t.columns
            .iter()
            .position(|c| c.name == name)
            .unwrap_or_else(|| panic!("{} has no column {name}", t.name))
    }

    pub fn get(&self, name: &str) -> &Value<'a> {
        &self.values[self.idx(name)]
    }
}

/// The position of column `name` in `table`, computed at compile time (a name that is not a
/// column of the table fails the build).
const fn col(table: &Table, name: &str) -> usize {
    let mut i = 0;
    while i < table.columns.len() {
        if same(table.columns[i].name, name) {
            return i;
        }
        i += 1;
    }
    panic!("no such column")
}

const fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// A file feed: its table and its rules.
#[derive(Debug)]
pub struct Feed {
    /// The feed's code in `loads` and `quarantine` (`hotline`, `cases`, …).
    pub name: &'static str,
    pub table: &'static Table,
    /// Columns a file may leave out (their values are then empty); any other missing column
    /// rejects the file.
    pub optional_headers: &'static [&'static str],
    /// Code columns whose empty or unknown values become a default; an unknown one is a warning.
    pub lenient: &'static [(&'static str, &'static str)],
    /// `(column, other, value)`: `column` is ignored (stored null, whatever it holds) unless the
    /// earlier column `other` has `value` (feeds.md: an outcome on a case that is not a mediation
    /// is ignored).
    pub ignored_unless: &'static [(&'static str, &'static str, &'static str)],
    pub check: fn(&mut Fields, &Divisions) -> Result<(), Reject>,
}

impl Feed {
    pub fn is_snapshot(&self) -> bool {
        self.table.kind == tables::TableKind::Snapshot
    }

    pub fn by_name(name: &str) -> Option<&'static Feed> {
        FILE_FEEDS.iter().copied().find(|f| f.name == name)
    }

    /// Converts one record's values (in table column order) into a row, or says why not.
    pub fn convert<'a>(
        &self,
        values: impl Iterator<Item = &'a str>,
        divisions: &Divisions,
    ) -> Result<Row<'a>, Reject> {
        let mut columns = Columns::new(self.table);
        let warnings = self.convert_into(&mut self.plan(), &mut columns, values, divisions)?;
        Ok(Row {
            values: columns.row(0),
            warnings,
            table: Some(self.table),
        })
    }

    /// The feed's per-column rules resolved to column positions, once per file.
    pub fn plan(&self) -> Plan {
        let position = |name: &str| self.table.columns.iter().position(|c| c.name == name);
        Plan {
            columns: self
                .table
                .columns
                .iter()
                .map(|col| ColumnRule {
                    lenient: self
                        .lenient
                        .iter()
                        .find(|(c, _)| *c == col.name)
                        .map(|(_, d)| {
                            // A default is a code, held as text.
                            assert!(
                                matches!(col.kind, Kind::Code(_)),
                                "{}: {} is lenient but not a code column",
                                self.name,
                                col.name
                            );
                            *d
                        }),
                    ignored_unless: self
                        .ignored_unless
                        .iter()
                        .find(|(c, ..)| *c == col.name)
                        .map(|(_, other, value)| {
                            let at = position(other).expect("a column of the feed");
                            // Read while converting: it must be converted already, or it would
                            // read as empty.
                            assert!(
                                at < position(col.name).expect("a column of the feed"),
                                "{}: {} is ignored unless {other}, which must come before it",
                                self.name,
                                col.name
                            );
                            (at, *value)
                        }),
                    last_code: Memo::default(),
                    last_date: Memo::default(),
                })
                .collect(),
        }
    }

    /// Converts one record's values (in table column order) straight into `columns` as their
    /// next row and returns its warnings, or says why not and leaves `columns` as they were.
    pub(crate) fn convert_into<'a>(
        &self,
        plan: &mut Plan,
        columns: &mut Columns,
        values: impl Iterator<Item = &'a str>,
        divisions: &Divisions,
    ) -> Result<u32, Reject> {
        let mut texts = [None; MAX_COLUMNS];
        let checked = self
            .push_fields(plan, columns, &mut texts, values)
            .and_then(|warnings| {
                (self.check)(&mut Fields::new(columns, &mut texts), divisions).map(|()| warnings)
            });
        match checked {
            Ok(warnings) => {
                columns.end_row(&texts);
                Ok(warnings)
            }
            Err(reject) => {
                columns.take_back();
                Err(reject)
            }
        }
    }

    /// Pushes each field of a record into its column, converted by the column's kind and rules,
    /// except text, which is left in `texts` (see [`Columns::end_row`]); a record with fewer
    /// values (none comes from a file) leaves the rest null. On a reject the fields before it
    /// stay pushed.
    fn push_fields<'a>(
        &self,
        plan: &mut Plan,
        columns: &mut Columns,
        texts: &mut [Option<&'a str>; MAX_COLUMNS],
        values: impl Iterator<Item = &'a str>,
    ) -> Result<u32, Reject> {
        let mut warnings = 0;
        let mut pushed = 0;
        for (((i, col), raw), rule) in self
            .table
            .columns
            .iter()
            .enumerate()
            .zip(values)
            .zip(&mut plan.columns)
        {
            pushed = i + 1;
            let text = parse::trim(raw);
            let column = &mut columns.columns[i];
            if let Some((other, value)) = rule.ignored_unless {
                if !texts[other].is_some_and(|t| parse::same(t, value)) {
                    column.push_null();
                    continue;
                }
            }
            let lenient = rule.lenient;
            if text.is_empty() {
                match (col.kind, lenient) {
                    // A default is a code: only a text column has one.
                    (_, Some(default)) if matches!(column, Column::Text(_)) => {
                        texts[i] = Some(default)
                    }
                    (Kind::Bool, _) => column.push_bool(false),
                    _ if col.required => {
                        return Err(reject(
                            "missing_required",
                            format!("{} is required but empty", col.name),
                        ))
                    }
                    _ => column.push_null(),
                }
                continue;
            }
            let bad = |reason: &str, what: &str| {
                reject(reason, format!("{}: {text:?} is not {what}", col.name))
            };
            match (col.kind, column) {
                (Kind::Text | Kind::DivisionCode, Column::Text(_)) => texts[i] = Some(text),
                (Kind::Code(list), Column::Text(_)) => match (rule.code(list, text), lenient) {
                    (Some(code), _) => texts[i] = Some(code),
                    (None, Some(default)) => {
                        warnings += 1;
                        texts[i] = Some(default);
                    }
                    (None, None) => {
                        return Err(reject(
                            format!("unknown_{}", col.name),
                            format!("{}: {text:?} is not one of {}", col.name, codes_of(list)),
                        ))
                    }
                },
                (Kind::Int, Column::Int(c)) => {
                    c.push(parse::integer(text).ok_or_else(|| bad("bad_number", "an integer"))?)
                }
                (Kind::Bool, c @ Column::Bool { .. }) => {
                    c.push_bool(parse::boolean(text).ok_or_else(|| {
                        bad("bad_boolean", "a boolean (true/false, 1/0, 是/否, Y/N)")
                    })?)
                }
                (Kind::Date, Column::Date(c)) => c.push(
                    rule.date(text)
                        .ok_or_else(|| bad("bad_date", "a date (YYYY-MM-DD or YYYY/M/D)"))?,
                ),
                (Kind::Timestamp, Column::Ts(c)) => {
                    c.push(parse::local_timestamp(text).ok_or_else(|| {
                        bad("bad_timestamp", "a local timestamp (YYYY-MM-DD HH:MM:SS)")
                    })?)
                }
                (Kind::Money, Column::Money(c)) => {
                    let fen = parse::money_fen(text).ok_or_else(|| {
                        bad("bad_amount", "an amount in yuan with at most 2 decimals")
                    })?;
                    if fen < 0 {
                        return Err(reject(
                            "negative_amount",
                            format!("{}: {text} is negative", col.name),
                        ));
                    }
                    c.push(fen)
                }
                (Kind::CodeSet(list), c) => {
                    let mut items = Vec::new();
                    for item in text
                        .split([';', '；'])
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                    {
                        let code = list.parse(item).ok_or_else(|| {
                            reject(
                                format!("unknown_{}", col.name),
                                format!("{}: {item:?} is not one of {}", col.name, codes_of(list)),
                            )
                        })?;
                        if !items.contains(&code) {
                            items.push(code);
                        }
                    }
                    c.push_items(&items)
                }
                (Kind::Float, _) => unreachable!("feeds deliver no computed columns"),
                (kind, _) => unreachable!("a column of kind {kind:?} is built for its kind"),
            }
        }
        for c in &mut columns.columns[pushed..] {
            c.push_null();
        }
        Ok(warnings)
    }
}

/// A feed's rules per column, resolved to positions (see [`Feed::plan`]).
#[derive(Debug)]
pub struct Plan {
    columns: Vec<ColumnRule>,
}

#[derive(Debug)]
struct ColumnRule {
    /// The default of a lenient code column.
    lenient: Option<&'static str>,
    /// A code column's last text and what it parsed to: a file's code column mostly repeats a
    /// few values (a legal-aid file says 法律援助 in every record), and parsing a label compares
    /// it with every code and label of the list.
    last_code: Memo<&'static str>,
    /// A date column's last text and its day: a file's dates repeat (a month's cases were
    /// accepted on some thirty days).
    last_date: Memo<i32>,
    /// The column is ignored unless the column at this position holds this value.
    ignored_unless: Option<(usize, &'static str)>,
}

impl ColumnRule {
    /// `list.parse(text)`, remembering the last text parsed.
    fn code(&mut self, list: &codes::CodeList, text: &str) -> Option<&'static str> {
        self.last_code.get(text, |t| list.parse(t))
    }

    /// `parse::date(text)`, remembering the last text parsed.
    fn date(&mut self, text: &str) -> Option<i32> {
        self.last_date.get(text, parse::date)
    }
}

/// The last text a column parsed, and what it parsed to.
#[derive(Debug, Default)]
struct Memo<T>(String, Option<T>);

impl<T: Copy> Memo<T> {
    /// `parse(text)`, or what it gave the last time when `text` is the last text again.
    #[inline]
    fn get(&mut self, text: &str, parse: impl FnOnce(&str) -> Option<T>) -> Option<T> {
        if !parse::same(&self.0, text) {
            self.0.clear();
            self.0.push_str(text);
            self.1 = parse(text);
        }
        self.1
    }
}

fn codes_of(list: &codes::CodeList) -> String {
    list.codes
        .iter()
        .map(|(c, _)| *c)
        .collect::<Vec<_>>()
        .join(", ")
}

pub const HOTLINE: Feed = Feed {
    name: "hotline",
    table: &tables::HOTLINE_CALLS,
    // Columns whose values may be empty may be absent (feeds.md: only a missing *required*
    // column rejects a file).
    optional_headers: &["caller_county_code", "answered_at", "topic", "rating"],
    lenient: &[("topic", "other")],
    ignored_unless: &[],
    check: check_hotline,
};

pub const CASES: Feed = Feed {
    name: "cases",
    table: &tables::CASES,
    optional_headers: &[
        "outcome",
        "migrant_worker",
        "amount_recovered_yuan",
        "closed_on",
    ],
    lenient: &[],
    ignored_unless: &[("outcome", "case_type", "mediation")],
    check: check_case,
};

pub const PLATFORMS: Feed = Feed {
    name: "platforms",
    table: &tables::PLATFORMS,
    optional_headers: &["built_on", "services", "equipment", "star_rating"],
    lenient: &[],
    ignored_unless: &[],
    check: check_platform,
};

pub const STAFF: Feed = Feed {
    name: "staff",
    table: &tables::STAFF,
    optional_headers: &["active_to"],
    lenient: &[],
    ignored_unless: &[],
    check: check_staff,
};

pub const FUNDING: Feed = Feed {
    name: "funding",
    table: &tables::FUNDING,
    optional_headers: &[],
    lenient: &[],
    ignored_unless: &[],
    check: check_funding,
};

pub const POPULATION: Feed = Feed {
    name: "population",
    table: &tables::POPULATION,
    optional_headers: &[],
    lenient: &[],
    ignored_unless: &[],
    check: check_population,
};

/// Every feed that arrives as files.
pub const FILE_FEEDS: &[&Feed] = &[&HOTLINE, &CASES, &PLATFORMS, &STAFF, &FUNDING, &POPULATION];

// A record's text is held on the stack while it is converted (see [`Feed::convert_into`]).
const _: () = {
    let mut i = 0;
    while i < FILE_FEEDS.len() {
        assert!(FILE_FEEDS[i].table.columns.len() <= MAX_COLUMNS);
        i += 1;
    }
};

/// The position of a column of a table, as a constant.
macro_rules! at {
    ($table:expr, $name:literal) => {
        const { col(&$table, $name) }
    };
}

fn check_hotline(row: &mut Fields, d: &Divisions) -> Result<(), Reject> {
    const T: Table = tables::HOTLINE_CALLS;
    let seat = row.text_at(at!(T, "seat_city_code")).unwrap_or_default();
    if !(d.is_city(seat) || seat == plsw_store::PROVINCE_CODE) {
        return Err(reject(
            "unknown_seat_city",
            format!(
                "seat_city_code {seat:?} is not a city of the province nor the backstop 410000"
            ),
        ));
    }
    let caller = at!(T, "caller_county_code");
    if row.text_at(caller).is_some_and(|code| !d.is_county(code)) {
        row.set_null(caller);
    }
    let queued = row.instant_at(at!(T, "queued_at")).unwrap_or_default();
    let ended = row.instant_at(at!(T, "ended_at")).unwrap_or_default();
    if ended < queued {
        return Err(reject(
            "ended_before_queued",
            "ended_at is before queued_at",
        ));
    }
    let answered = row.instant_at(at!(T, "answered_at"));
    if let Some(a) = answered {
        if a < queued || a > ended {
            return Err(reject(
                "answered_out_of_range",
                "answered_at is outside [queued_at, ended_at]",
            ));
        }
    }
    if let Some(r) = row.int_at(at!(T, "rating")) {
        if !(1..=5).contains(&r) {
            return Err(reject(
                "rating_out_of_range",
                format!("rating {r} is not 1-5"),
            ));
        }
        if answered.is_none() {
            return Err(reject(
                "rating_unanswered",
                "a rating on a call that was not answered",
            ));
        }
    }
    Ok(())
}

fn check_case(row: &mut Fields, d: &Divisions) -> Result<(), Reject> {
    const T: Table = tables::CASES;
    let code = row.text_at(at!(T, "county_code")).unwrap_or_default();
    if !(d.is_county(code) || d.is_city(code)) {
        return Err(reject(
            "unknown_county",
            format!("county_code {code:?} is not a county or city of the province"),
        ));
    }
    let accepted = row.instant_at(at!(T, "accepted_on"));
    if let (Some(a), Some(c)) = (accepted, row.instant_at(at!(T, "closed_on"))) {
        if c < a {
            return Err(reject(
                "closed_before_accepted",
                "closed_on is before accepted_on",
            ));
        }
    }
    Ok(())
}

fn check_platform(row: &mut Fields, d: &Divisions) -> Result<(), Reject> {
    const T: Table = tables::PLATFORMS;
    let code = row.text_at(at!(T, "division_code")).unwrap_or_default();
    let level = row.text_at(at!(T, "level")).unwrap_or_default();
    let fits = match level {
        "city" => d.is_city(code),
        "county" => d.is_county(code),
        "township" => d.is_township(code),
        _ => d.is_village(code),
    };
    if !fits {
        let reason = if d.is_division(code) {
            "level_mismatch"
        } else {
            "unknown_division"
        };
        return Err(reject(
            reason,
            format!("division_code {code:?} is not a {level} of the province"),
        ));
    }
    if let Some(s) = row.int_at(at!(T, "star_rating")) {
        if !(0..=5).contains(&s) {
            return Err(reject(
                "star_rating_out_of_range",
                format!("star_rating {s} is not 0-5"),
            ));
        }
    }
    Ok(())
}

fn check_staff(row: &mut Fields, d: &Divisions) -> Result<(), Reject> {
    const T: Table = tables::STAFF;
    let code = row.text_at(at!(T, "division_code")).unwrap_or_default();
    if !d.is_division(code) {
        return Err(reject(
            "unknown_division",
            format!(
                "division_code {code:?} is not a city, county, township or village of the province"
            ),
        ));
    }
    let from = row.instant_at(at!(T, "active_from"));
    if let (Some(from), Some(to)) = (from, row.instant_at(at!(T, "active_to"))) {
        if to < from {
            return Err(reject(
                "active_to_before_from",
                "active_to is before active_from",
            ));
        }
    }
    Ok(())
}

/// The county and year of a funding or population row, at these positions.
fn check_county_year(
    row: &Fields,
    d: &Divisions,
    county: usize,
    year: usize,
) -> Result<(), Reject> {
    let code = row.text_at(county).unwrap_or_default();
    if !d.is_county(code) {
        return Err(reject(
            "unknown_county",
            format!("county_code {code:?} is not a county of the province"),
        ));
    }
    let year = row.int_at(year).unwrap_or_default();
    if !(1949..=2100).contains(&year) {
        return Err(reject("bad_year", format!("year {year} is not plausible")));
    }
    Ok(())
}

fn check_funding(row: &mut Fields, d: &Divisions) -> Result<(), Reject> {
    const T: Table = tables::FUNDING;
    check_county_year(row, d, at!(T, "county_code"), at!(T, "year"))?;
    let q = row.int_at(at!(T, "quarter")).unwrap_or_default();
    if !(1..=4).contains(&q) {
        return Err(reject("bad_quarter", format!("quarter {q} is not 1-4")));
    }
    Ok(())
}

fn check_population(row: &mut Fields, d: &Divisions) -> Result<(), Reject> {
    const T: Table = tables::POPULATION;
    check_county_year(row, d, at!(T, "county_code"), at!(T, "year"))?;
    let p = row.int_at(at!(T, "population")).unwrap_or_default();
    if p < 0 {
        return Err(reject(
            "negative_population",
            format!("population {p} is negative"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
