//! The first sheet of an XLSX workbook, cell by cell, as the text a CSV export would hold.
//!
//! calamine read our workbooks until session 11. It holds a workbook's shared strings as one
//! `String` each (a month of notarizations at scale 10 has 218,794 of them, mostly case numbers:
//! 10.9 MiB by heaptrack), and the table must be held whole, since any row may refer to any of
//! its strings. Here they are packed into one buffer with an end offset each (about half of
//! that), and a cell's text is written into a buffer the caller reuses instead of a value of its
//! own. What calamine did is kept where it is right: which number formats are dates (its rules,
//! copied below), the 1900 and 1904 date systems, rich text without its phonetic runs. Where it
//! is not, this follows ECMA-376: a `<si/>` with no text is an empty string (calamine skipped it,
//! which moved every later index by one), `_xHHHH_` escapes are decoded, an error cell keeps its
//! text (`#DIV/0!`), a shared-string index out of range is an error (calamine panicked), and a
//! cell marked as a number that is not one is kept as text, for the feed's rules to judge
//! (calamine failed the file).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{BufReader, Read, Seek};

use quick_xml::events::{BytesStart, Event};
use quick_xml::name::QName;
use zip::read::ZipFile;
use zip::ZipArchive;

type Xml<'z, R> = quick_xml::Reader<BufReader<ZipFile<'z, R>>>;

/// What a cell holds, once read: its text is in the caller's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cell {
    /// Text, a number, a date or a boolean, as text.
    Value,
    /// A spreadsheet error (`#DIV/0!`, `#REF!` …); the buffer holds it.
    Error,
}

/// A workbook opened for its first sheet: the shared strings, the styles that are dates and the
/// date system are read; the sheet is then read cell by cell.
pub(crate) struct Workbook<R: Read + Seek> {
    zip: ZipArchive<R>,
    strings: SharedStrings,
    /// For each cell style (`s`), whether its number format is a date or a time.
    dates: Vec<bool>,
    is_1904: bool,
    /// The first sheet's part, `xl/worksheets/sheet1.xml` say.
    sheet: String,
}

impl<R: Read + Seek> Workbook<R> {
    pub(crate) fn open(reader: R) -> Result<Workbook<R>, String> {
        let mut zip = ZipArchive::new(reader).map_err(|e| format!("not a workbook: {e}"))?;
        let relationships = read_relationships(&mut zip)?;
        let (sheet, is_1904) = read_workbook(&mut zip, &relationships)?;
        let dates = read_styles(&mut zip)?;
        let strings = read_shared_strings(&mut zip)?;
        Ok(Workbook {
            zip,
            strings,
            dates,
            is_1904,
            sheet,
        })
    }

    /// The first sheet's cells, row by row and left to right.
    pub(crate) fn first_sheet(&mut self) -> Result<Sheet<'_, R>, String> {
        let part = self.sheet.clone();
        let mut xml = match part_reader(&mut self.zip, &part)? {
            Some(x) => x,
            None => return Err(format!("the workbook has no part {part}")),
        };
        // Up to the cells.
        let mut buf = Vec::with_capacity(1024);
        loop {
            buf.clear();
            match xml.read_event_into(&mut buf) {
                Ok(Event::Start(e)) if e.local_name().as_ref() == b"sheetData" => break,
                Ok(Event::Eof) => return Err(format!("{part} has no sheetData: not a worksheet")),
                Ok(_) => {}
                Err(e) => return Err(xml_error(&part, &xml, e)),
            }
        }
        Ok(Sheet {
            xml,
            part,
            strings: &self.strings,
            dates: &self.dates,
            is_1904: self.is_1904,
            row: 0,
            col: 0,
            buf,
            inner: Vec::new(),
            value: String::new(),
        })
    }
}

/// A sheet's cells, read as they come.
pub(crate) struct Sheet<'w, R: Read + Seek> {
    xml: Xml<'w, R>,
    part: String,
    strings: &'w SharedStrings,
    dates: &'w [bool],
    is_1904: bool,
    /// Where the next cell is when it does not say (0-based).
    row: u32,
    col: u32,
    buf: Vec<u8>,
    /// Events inside a cell.
    inner: Vec<u8>,
    /// A `<v>`'s text.
    value: String,
}

impl<R: Read + Seek> Sheet<'_, R> {
    /// The next cell that is present (0-based row and column), its text written into `text`;
    /// `None` after the last.
    pub(crate) fn next_cell(
        &mut self,
        text: &mut String,
    ) -> Result<Option<(u32, u32, Cell)>, String> {
        loop {
            self.buf.clear();
            let event = self
                .xml
                .read_event_into(&mut self.buf)
                .map_err(|e| xml_error(&self.part, &self.xml, e))?;
            match event {
                Event::Start(e) if e.local_name().as_ref() == b"row" => {
                    if let Some(r) = attribute(&e, b"r") {
                        self.row = parse_row(&r).ok_or_else(|| {
                            format!(
                                "{}: a row numbered {:?}",
                                self.part,
                                String::from_utf8_lossy(&r)
                            )
                        })?;
                    }
                    self.col = 0;
                }
                Event::End(e) if e.local_name().as_ref() == b"row" => {
                    self.row += 1;
                    self.col = 0;
                }
                Event::Start(e) if e.local_name().as_ref() == b"c" => {
                    let mut kind = Kind::Number; // `n`, the default
                    let mut style = 0usize;
                    for a in e.attributes().with_checks(false) {
                        let a = a.map_err(|e| format!("{}: {e}", self.part))?;
                        match a.key {
                            QName(b"r") => {
                                let (row, col) = parse_reference(&a.value).ok_or_else(|| {
                                    format!(
                                        "{}: a cell at {:?}",
                                        self.part,
                                        String::from_utf8_lossy(&a.value)
                                    )
                                })?;
                                self.row = row;
                                self.col = col;
                            }
                            QName(b"t") => kind = Kind::of(&a.value),
                            QName(b"s") => style = ascii_number(&a.value).unwrap_or(0),
                            _ => {}
                        }
                    }
                    let at = (self.row, self.col);
                    self.col += 1;
                    text.clear();
                    let cell = self.read_cell(kind, style, text)?;
                    return Ok(Some((at.0, at.1, cell)));
                }
                Event::End(e) if e.local_name().as_ref() == b"sheetData" => return Ok(None),
                Event::Eof => return Err(format!("{} ends inside its sheetData", self.part)),
                _ => {}
            }
        }
    }

    /// The rest of a `<c>`: its value (`<v>`), inline string (`<is>`) or formula (`<f>`, whose
    /// cached `<v>` is the value).
    fn read_cell(&mut self, kind: Kind, style: usize, text: &mut String) -> Result<Cell, String> {
        let mut inline = false;
        let mut has_value = false;
        loop {
            self.buf.clear();
            let event = self
                .xml
                .read_event_into(&mut self.buf)
                .map_err(|e| xml_error(&self.part, &self.xml, e))?;
            match event {
                Event::Start(e) => match e.local_name().as_ref() {
                    b"v" => {
                        self.value.clear();
                        read_text(
                            &mut self.xml,
                            &self.part,
                            b"v",
                            &mut self.inner,
                            &mut self.value,
                        )?;
                        has_value = true;
                    }
                    b"is" => {
                        read_string(&mut self.xml, &self.part, b"is", &mut self.inner, text)?;
                        inline = true;
                    }
                    b"f" => skip(&mut self.xml, &self.part, b"f", &mut self.inner)?,
                    b"extLst" => skip(&mut self.xml, &self.part, b"extLst", &mut self.inner)?,
                    other => {
                        return Err(format!(
                            "{}: a cell holds <{}>",
                            self.part,
                            String::from_utf8_lossy(other)
                        ))
                    }
                },
                Event::End(e) if e.local_name().as_ref() == b"c" => break,
                Event::Eof => return Err(format!("{} ends inside a cell", self.part)),
                _ => {}
            }
        }
        if inline || !has_value {
            return Ok(Cell::Value);
        }
        let v = self.value.as_str();
        match kind {
            Kind::Shared => {
                let i = ascii_number(v.as_bytes())
                    .ok_or_else(|| format!("{}: a shared string numbered {v:?}", self.part))?;
                let s = self.strings.get(i).ok_or_else(|| {
                    format!(
                        "{}: shared string {i} of a table of {}",
                        self.part,
                        self.strings.len()
                    )
                })?;
                text.push_str(s);
            }
            Kind::Bool => text.push_str(if v != "0" { "true" } else { "false" }),
            Kind::Error => {
                text.push_str(v);
                return Ok(Cell::Error);
            }
            Kind::Text => text.push_str(v),
            Kind::Number => match v.parse::<f64>() {
                Ok(n) if self.dates.get(style).copied().unwrap_or(false) => {
                    date_text(n, self.is_1904, text)
                }
                Ok(n) => number_text(n, text),
                // Not a number after all: its text, for the feed's rules to judge (calamine
                // failed the file on such a cell when it said `t="n"`).
                Err(_) => text.push_str(v),
            },
        }
        Ok(Cell::Value)
    }
}

/// A cell's type (`t`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `n` (or none, or one unknown): a number, or a date by its style; text that is not a
    /// number is kept as text.
    Number,
    /// `s`: an index into the shared strings.
    Shared,
    /// `str` (a formula's text), `d` (an ISO 8601 date, kept as written), `inlineStr`.
    Text,
    Bool,
    Error,
}

impl Kind {
    fn of(t: &[u8]) -> Kind {
        match t {
            b"s" => Kind::Shared,
            b"b" => Kind::Bool,
            b"e" => Kind::Error,
            b"str" | b"d" | b"inlineStr" => Kind::Text,
            _ => Kind::Number,
        }
    }
}

/// The workbook's strings, back to back, and where each ends.
#[derive(Debug, Default)]
struct SharedStrings {
    text: String,
    ends: Vec<u32>,
}

impl SharedStrings {
    fn get(&self, i: usize) -> Option<&str> {
        let end = *self.ends.get(i)? as usize;
        let start = match i {
            0 => 0,
            _ => self.ends[i - 1] as usize,
        };
        self.text.get(start..end)
    }

    fn len(&self) -> usize {
        self.ends.len()
    }

    fn push_end(&mut self) -> Result<(), String> {
        let end = u32::try_from(self.text.len())
            .map_err(|_| "the workbook's shared strings exceed 4 GiB".to_string())?;
        self.ends.push(end);
        Ok(())
    }
}

/// A whole floating-point number without its fraction (as Excel shows `4`, not `4.0`), others as
/// Rust writes them (the shortest text that reads back as the same number).
fn number_text(n: f64, text: &mut String) {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        let _ = write!(text, "{}", n as i64);
    } else {
        let _ = write!(text, "{n}");
    }
}

/// A date cell as `YYYY-MM-DD` (at midnight) or `YYYY-MM-DD HH:MM:SS`. Serial day 60 is Excel's
/// 29 February 1900, a day that did not exist: days before it are moved by one, as Excel and
/// calamine count them. Milliseconds are rounded, then dropped.
fn date_text(serial: f64, is_1904: bool, text: &mut String) {
    let mut days = serial;
    if is_1904 {
        days += 1462.0;
    }
    if days < 60.0 {
        days += 1.0;
    }
    let ms = (days * 86_400_000.0).round();
    let epoch = chrono::NaiveDate::from_ymd_opt(1899, 12, 30)
        .unwrap_or_default()
        .and_time(chrono::NaiveTime::MIN);
    let at = (ms.abs() < 1e17)
        .then(|| epoch.checked_add_signed(chrono::Duration::milliseconds(ms as i64)))
        .flatten();
    match at {
        Some(d) if d.time() == chrono::NaiveTime::MIN => {
            let _ = write!(text, "{}", d.format("%Y-%m-%d"));
        }
        Some(d) => {
            let _ = write!(text, "{}", d.format("%Y-%m-%d %H:%M:%S"));
        }
        None => {
            let _ = write!(text, "#DATE?{serial}");
        }
    }
}

/// The zip entry of a part, whatever the case of its name and its separators.
fn part_reader<'z, R: Read + Seek>(
    zip: &'z mut ZipArchive<R>,
    part: &str,
) -> Result<Option<Xml<'z, R>>, String> {
    let name = zip
        .file_names()
        .find(|n| n.replace('\\', "/").eq_ignore_ascii_case(part))
        .map(str::to_string);
    let Some(name) = name else {
        return Ok(None);
    };
    let file = zip
        .by_name(&name)
        .map_err(|e| format!("reading {part}: {e}"))?;
    let mut xml = quick_xml::Reader::from_reader(BufReader::new(file));
    let config = xml.config_mut();
    config.check_end_names = false;
    config.check_comments = false;
    config.expand_empty_elements = true;
    config.trim_text(false);
    Ok(Some(xml))
}

fn xml_error<B>(part: &str, xml: &quick_xml::Reader<B>, e: quick_xml::Error) -> String {
    format!("{part}: bad XML near byte {}: {e}", xml.error_position())
}

fn ends_inside(part: &str, name: &[u8]) -> String {
    format!("{part} ends inside <{}>", String::from_utf8_lossy(name))
}

/// Reads a part to its end, handing each event to `f` (which may read on from the reader: a
/// string item, say).
fn each_event<R: Read + Seek>(
    xml: &mut Xml<'_, R>,
    part: &str,
    mut f: impl FnMut(&mut Xml<'_, R>, Event<'_>) -> Result<(), String>,
) -> Result<(), String> {
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let event = xml
            .read_event_into(&mut buf)
            .map_err(|e| xml_error(part, xml, e))?;
        if let Event::Eof = event {
            return Ok(());
        }
        f(xml, event)?;
    }
}

/// The value of attribute `key` as written (numbers and references need no unescaping).
fn attribute<'a>(e: &'a BytesStart<'_>, key: &[u8]) -> Option<std::borrow::Cow<'a, [u8]>> {
    e.attributes()
        .with_checks(false)
        .filter_map(Result::ok)
        .find(|a| a.key.as_ref() == key)
        .map(|a| a.value)
}

/// An attribute's value, decoded and unescaped.
fn attribute_text<B>(xml: &quick_xml::Reader<B>, e: &BytesStart<'_>, key: &[u8]) -> Option<String> {
    e.attributes()
        .with_checks(false)
        .filter_map(Result::ok)
        .find(|a| a.key.as_ref() == key || a.key.local_name().as_ref() == key)
        .and_then(|a| a.decode_and_unescape_value(xml.decoder()).ok())
        .map(|v| v.into_owned())
}

fn ascii_number(digits: &[u8]) -> Option<usize> {
    if digits.is_empty() || digits.len() > 18 {
        return None;
    }
    digits.iter().try_fold(0usize, |n, &b| {
        b.is_ascii_digit().then(|| n * 10 + usize::from(b - b'0'))
    })
}

/// `17` as row 16 (0-based).
fn parse_row(digits: &[u8]) -> Option<u32> {
    u32::try_from(ascii_number(digits)?).ok()?.checked_sub(1)
}

/// `C7` as (row 6, column 2).
fn parse_reference(r: &[u8]) -> Option<(u32, u32)> {
    let letters = r.iter().take_while(|b| b.is_ascii_alphabetic()).count();
    if letters == 0 || letters > 3 {
        return None;
    }
    let col = r[..letters].iter().fold(0u32, |n, b| {
        n * 26 + u32::from(b.to_ascii_uppercase() - b'A') + 1
    });
    Some((parse_row(&r[letters..])?, col - 1))
}

/// The text up to the end of the element named `name` (its local name), unescaped, appended to
/// `out`.
fn read_text<R: Read + Seek>(
    xml: &mut Xml<'_, R>,
    part: &str,
    name: &[u8],
    buf: &mut Vec<u8>,
    out: &mut String,
) -> Result<(), String> {
    loop {
        buf.clear();
        match xml.read_event_into(buf) {
            Ok(Event::Text(t)) => {
                let t = t.unescape().map_err(|e| format!("{part}: {e}"))?;
                out.push_str(&t);
            }
            Ok(Event::CData(c)) => {
                let c = c.decode().map_err(|e| format!("{part}: {e}"))?;
                out.push_str(&c);
            }
            Ok(Event::End(e)) if e.local_name().as_ref() == name => return Ok(()),
            Ok(Event::Eof) => return Err(ends_inside(part, name)),
            Ok(_) => {}
            Err(e) => return Err(xml_error(part, xml, e)),
        }
    }
}

/// Skips the rest of the element named `name` (its local name).
fn skip<R: Read + Seek>(
    xml: &mut Xml<'_, R>,
    part: &str,
    name: &[u8],
    buf: &mut Vec<u8>,
) -> Result<(), String> {
    let mut depth = 0usize;
    loop {
        buf.clear();
        match xml.read_event_into(buf) {
            Ok(Event::Start(e)) if e.local_name().as_ref() == name => depth += 1,
            Ok(Event::End(e)) if e.local_name().as_ref() == name => match depth {
                0 => return Ok(()),
                _ => depth -= 1,
            },
            Ok(Event::Eof) => return Err(ends_inside(part, name)),
            Ok(_) => {}
            Err(e) => return Err(xml_error(part, xml, e)),
        }
    }
}

/// A string item (`<si>` or an inline `<is>`, by local name `name`) up to its end: its text, or
/// the text of its runs (`<r><t>`) one after another, without phonetic runs (`<rPh>`), with
/// `_xHHHH_` escapes decoded, appended to `out`.
fn read_string<R: Read + Seek>(
    xml: &mut Xml<'_, R>,
    part: &str,
    name: &[u8],
    buf: &mut Vec<u8>,
    out: &mut String,
) -> Result<(), String> {
    let start = out.len();
    let mut phonetic = 0usize;
    loop {
        buf.clear();
        let event = xml
            .read_event_into(buf)
            .map_err(|e| xml_error(part, xml, e))?;
        match event {
            Event::Start(e) if e.local_name().as_ref() == b"rPh" => phonetic += 1,
            Event::End(e) if e.local_name().as_ref() == b"rPh" => {
                phonetic = phonetic.saturating_sub(1)
            }
            Event::Start(e) if e.local_name().as_ref() == b"t" && phonetic == 0 => {
                read_text(xml, part, b"t", buf, out)?;
            }
            Event::End(e) if e.local_name().as_ref() == name => break,
            Event::Eof => return Err(ends_inside(part, name)),
            _ => {}
        }
    }
    if out[start..].contains("_x") {
        let decoded = decode_escapes(&out[start..]);
        out.truncate(start);
        out.push_str(&decoded);
    }
    Ok(())
}

/// ECMA-376's escapes in string items: `_xHHHH_` is the UTF-16 code unit HHHH (Excel writes a
/// carriage return as `_x000D_`, and a literal `_x` as `_x005F_x`). A pair of surrogates is one
/// character; a lone one, or anything that is not such an escape, is kept as written.
fn decode_escapes(s: &str) -> String {
    fn unit(b: &[u8]) -> Option<u16> {
        if b.len() < 7 || &b[..2] != b"_x" || b[6] != b'_' {
            return None;
        }
        let hex = std::str::from_utf8(&b[2..6]).ok()?;
        u16::from_str_radix(hex, 16).ok()
    }
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    let mut kept = 0;
    while i < bytes.len() {
        let Some(u) = unit(&bytes[i..]) else {
            i += 1;
            continue;
        };
        let (c, len) = match u {
            0xD800..=0xDBFF => match unit(&bytes[i + 7..]) {
                Some(low @ 0xDC00..=0xDFFF) => {
                    (char::decode_utf16([u, low]).next().and_then(Result::ok), 14)
                }
                _ => (None, 7),
            },
            _ => (char::from_u32(u32::from(u)), 7),
        };
        match c {
            Some(c) => {
                out.push_str(&s[kept..i]);
                out.push(c);
                i += len;
                kept = i;
            }
            None => i += 1,
        }
    }
    out.push_str(&s[kept..]);
    out
}

fn read_relationships<R: Read + Seek>(
    zip: &mut ZipArchive<R>,
) -> Result<HashMap<String, String>, String> {
    const PART: &str = "xl/_rels/workbook.xml.rels";
    let Some(mut xml) = part_reader(zip, PART)? else {
        return Err(format!("the workbook has no {PART}"));
    };
    let mut out = HashMap::new();
    each_event(&mut xml, PART, |xml, event| {
        if let Event::Start(e) = event {
            if e.local_name().as_ref() == b"Relationship" {
                if let (Some(id), Some(target)) = (
                    attribute_text(xml, &e, b"Id"),
                    attribute_text(xml, &e, b"Target"),
                ) {
                    out.insert(id, target);
                }
            }
        }
        Ok(())
    })?;
    Ok(out)
}

/// The first sheet's part and whether dates count from 1904.
fn read_workbook<R: Read + Seek>(
    zip: &mut ZipArchive<R>,
    relationships: &HashMap<String, String>,
) -> Result<(String, bool), String> {
    const PART: &str = "xl/workbook.xml";
    let Some(mut xml) = part_reader(zip, PART)? else {
        return Err(format!("the workbook has no {PART}"));
    };
    let mut sheet = None;
    let mut is_1904 = false;
    each_event(&mut xml, PART, |xml, event| {
        let Event::Start(e) = event else {
            return Ok(());
        };
        match e.local_name().as_ref() {
            b"workbookPr" => {
                is_1904 = matches!(
                    attribute_text(xml, &e, b"date1904").as_deref(),
                    Some("1" | "true")
                );
            }
            b"sheet" if sheet.is_none() => {
                // `r:id`, in the relationships' namespace whatever its prefix.
                let id = attribute_text(xml, &e, b"id")
                    .ok_or_else(|| format!("{PART}: a sheet without its relationship"))?;
                let target = relationships
                    .get(&id)
                    .ok_or_else(|| format!("{PART}: a sheet's relationship {id} is not listed"))?;
                sheet = Some(match target.strip_prefix('/') {
                    Some(absolute) => absolute.to_string(),
                    None if target.starts_with("xl/") => target.clone(),
                    None => format!("xl/{target}"),
                });
            }
            _ => {}
        }
        Ok(())
    })?;
    match sheet {
        Some(s) => Ok((s, is_1904)),
        None => Err("the workbook has no sheet".into()),
    }
}

/// For each cell style, whether its number format shows a date or a time.
fn read_styles<R: Read + Seek>(zip: &mut ZipArchive<R>) -> Result<Vec<bool>, String> {
    const PART: &str = "xl/styles.xml";
    let Some(mut xml) = part_reader(zip, PART)? else {
        return Ok(Vec::new());
    };
    let mut custom: HashMap<String, bool> = HashMap::new();
    let mut dates = Vec::new();
    let mut in_cell_xfs = false;
    each_event(&mut xml, PART, |xml, event| {
        match event {
            Event::Start(e) => match e.local_name().as_ref() {
                b"numFmt" => {
                    if let (Some(id), Some(code)) = (
                        attribute_text(xml, &e, b"numFmtId"),
                        attribute_text(xml, &e, b"formatCode"),
                    ) {
                        if !code.is_empty() {
                            custom.insert(id, is_date_format(&code));
                        }
                    }
                }
                b"cellXfs" => in_cell_xfs = true,
                b"xf" if in_cell_xfs => {
                    let date = match attribute_text(xml, &e, b"numFmtId") {
                        Some(id) => match custom.get(&id) {
                            Some(&d) => d,
                            None => matches!(id.parse::<u16>(), Ok(14..=22 | 45..=47)),
                        },
                        None => false,
                    };
                    dates.push(date);
                }
                _ => {}
            },
            Event::End(e) if e.local_name().as_ref() == b"cellXfs" => in_cell_xfs = false,
            _ => {}
        }
        Ok(())
    })?;
    Ok(dates)
}

/// Whether a custom number format shows a date, a time or a duration: a date or time letter
/// outside quotes, escapes and brackets in its first section, or `[h]`, `[m]`, `[s]`. The rules
/// are calamine's (`detect_custom_number_format`, MIT licence).
fn is_date_format(format: &str) -> bool {
    let mut escaped = false;
    let mut quoted = false;
    let mut brackets = 0u8;
    let mut prev = ' ';
    let mut hms = false;
    let mut ap = false;
    for c in format.chars() {
        match (c, escaped, quoted, ap, brackets) {
            (_, true, ..) => escaped = false,
            ('_' | '\\', ..) => escaped = true,
            ('"', _, true, _, _) => quoted = false,
            (_, _, true, _, _) => (),
            ('"', _, _, _, _) => quoted = true,
            (';', ..) => return false,
            ('[', ..) => brackets += 1,
            (']', .., 1) if hms => return true,
            (']', ..) => brackets = brackets.saturating_sub(1),
            ('a' | 'A', _, _, false, 0) => ap = true,
            ('p' | 'm' | '/' | 'P' | 'M', _, _, true, 0) => return true,
            ('d' | 'm' | 'h' | 'y' | 's' | 'D' | 'M' | 'H' | 'Y' | 'S', _, _, false, 0) => {
                return true
            }
            _ => {
                if !(hms && c.eq_ignore_ascii_case(&prev)) {
                    hms = prev == '[' && matches!(c, 'm' | 'h' | 's' | 'M' | 'H' | 'S');
                }
            }
        }
        prev = c;
    }
    false
}

fn read_shared_strings<R: Read + Seek>(zip: &mut ZipArchive<R>) -> Result<SharedStrings, String> {
    const PART: &str = "xl/sharedStrings.xml";
    let mut out = SharedStrings::default();
    let Some(mut xml) = part_reader(zip, PART)? else {
        return Ok(out);
    };
    let mut inner = Vec::new();
    each_event(&mut xml, PART, |xml, event| {
        let Event::Start(e) = event else {
            return Ok(());
        };
        match e.local_name().as_ref() {
            b"sst" => {
                // As many ends as it says it has (within reason: it is only a hint).
                if let Some(n) = attribute(&e, b"uniqueCount").and_then(|n| ascii_number(&n)) {
                    out.ends.reserve_exact(n.min(1 << 24));
                }
            }
            b"si" => {
                read_string(xml, PART, b"si", &mut inner, &mut out.text)?;
                out.push_end()?;
            }
            _ => {}
        }
        Ok(())
    })?;
    out.text.shrink_to_fit();
    Ok(out)
}

#[cfg(test)]
mod tests;
