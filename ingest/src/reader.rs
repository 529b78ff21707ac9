//! Reading a file's records as text, with its header mapped onto a table's columns.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use std::sync::mpsc::{sync_channel, Receiver};

use calamine::{Data, Reader as _, Xlsx};
use plsw_schemas::tables::Table;

use crate::error::{Error, Result};
use crate::source::{Encoding, Gb18030Reader};

/// One record of a file: its position (1-based CSV data record, or XLSX sheet row) and its
/// fields as text, in the file's own column order.
#[derive(Debug, Default, Clone)]
pub(crate) struct RawRecord {
    pub(crate) position: i64,
    pub(crate) fields: Vec<String>,
}

enum Inner {
    Csv(Box<csv::Reader<Box<dyn Read>>>, csv::StringRecord),
    /// The first sheet's rows (1-based sheet row, cells as text), read cell by cell on a thread
    /// of its own: the sheet is never held whole, and its XML is parsed beside the checks.
    Xlsx {
        rows: Receiver<std::result::Result<(i64, Vec<String>), String>>,
        width: usize,
    },
}

/// Sheet rows that may wait for the reader of an XLSX file.
const XLSX_QUEUE: usize = 1024;

/// A file's records, with the header resolved against a table's columns.
pub(crate) struct Records {
    inner: Inner,
    headers: Vec<String>,
    /// For each table column, the index of its field in the file, if present.
    map: Vec<Option<usize>>,
    count: i64,
}

impl Records {
    /// Opens a file and resolves its header. A missing column that `header_required` names is a
    /// file-level error; unknown extra columns are ignored.
    pub(crate) fn open(
        path: &Path,
        encoding: Encoding,
        table: &Table,
        header_required: &dyn Fn(&str) -> bool,
    ) -> Result<Records> {
        let (inner, headers) = match encoding {
            Encoding::Xlsx => open_xlsx(path)?,
            _ => open_csv(path, encoding)?,
        };
        let map: Vec<Option<usize>> = table
            .columns
            .iter()
            .map(|c| {
                headers.iter().position(|h| {
                    let h = h.trim().trim_start_matches('\u{feff}');
                    h.eq_ignore_ascii_case(c.name) || c.zh.contains(&h)
                })
            })
            .collect();
        let missing: Vec<String> = table
            .columns
            .iter()
            .zip(&map)
            .filter(|(c, m)| m.is_none() && header_required(c.name))
            .map(|(c, _)| match c.zh.first() {
                Some(zh) => format!("{} ({zh})", c.name),
                None => c.name.to_string(),
            })
            .collect();
        if !missing.is_empty() {
            return Err(Error::MissingColumns {
                path: path.to_path_buf(),
                columns: missing.join(", "),
                found: headers.join(", "),
            });
        }
        Ok(Records {
            inner,
            headers,
            map,
            count: 0,
        })
    }

    /// The next record, or `None` at the end. A read error (I/O, malformed encoding) is
    /// file-level: the load of this file stops and nothing of it is committed.
    pub(crate) fn next_into(&mut self, rec: &mut RawRecord, path: &Path) -> Result<bool> {
        match &mut self.inner {
            Inner::Csv(rdr, buf) => {
                let more = rdr.read_record(buf).map_err(|e| Error::Read {
                    path: path.to_path_buf(),
                    message: e.to_string(),
                })?;
                if !more {
                    return Ok(false);
                }
                self.count += 1;
                rec.position = self.count;
                // The record's strings are reused: no allocation per field once they are grown.
                rec.fields.truncate(buf.len());
                for (i, f) in buf.iter().enumerate() {
                    match rec.fields.get_mut(i) {
                        Some(s) => {
                            s.clear();
                            s.push_str(f);
                        }
                        None => rec.fields.push(f.to_string()),
                    }
                }
                Ok(true)
            }
            Inner::Xlsx { rows, width } => {
                let Ok(row) = rows.recv() else {
                    return Ok(false);
                };
                let (position, mut fields) = row.map_err(|message| Error::Read {
                    path: path.to_path_buf(),
                    message,
                })?;
                // As wide as the header at least (a row's trailing empty cells are absent).
                if fields.len() < *width {
                    fields.resize(*width, String::new());
                }
                rec.position = position;
                rec.fields = fields;
                self.count += 1;
                Ok(true)
            }
        }
    }

    /// The value of table column `col` in a record ("" when the file lacks the column).
    pub(crate) fn value<'r>(&self, rec: &'r RawRecord, col: usize) -> &'r str {
        match self.map[col] {
            Some(i) => rec.fields.get(i).map(String::as_str).unwrap_or(""),
            None => "",
        }
    }

    pub(crate) fn header_len(&self) -> usize {
        self.headers.len()
    }

    /// Whether the record has as many fields as the header.
    pub(crate) fn well_formed(&self, rec: &RawRecord) -> bool {
        match self.inner {
            Inner::Csv(..) => rec.fields.len() == self.headers.len(),
            Inner::Xlsx { .. } => true,
        }
    }

    /// The raw values of a record as a JSON object `{header: value}` (text), for quarantine.
    pub(crate) fn raw_json(&self, rec: &RawRecord) -> String {
        let mut obj = serde_json::Map::new();
        for (i, v) in rec.fields.iter().enumerate() {
            let key = self
                .headers
                .get(i)
                .cloned()
                .unwrap_or_else(|| format!("_extra_{}", i + 1));
            obj.insert(key, serde_json::Value::String(v.clone()));
        }
        serde_json::Value::Object(obj).to_string()
    }

    /// Whether a record has no cell at all (a blank trailing XLSX row), which is skipped. A row
    /// with a space in a cell is a record (and is quarantined if that breaks a rule).
    pub(crate) fn is_blank(rec: &RawRecord) -> bool {
        rec.fields.iter().all(|f| f.is_empty())
    }

    /// The first XLSX cell holding an error (`#DIV/0!`, `#REF!` …) of a record, if any.
    pub(crate) fn cell_error(&self, rec: &RawRecord) -> Option<String> {
        let Inner::Xlsx { .. } = self.inner else {
            return None;
        };
        rec.fields.iter().enumerate().find_map(|(i, f)| {
            f.strip_prefix(CELL_ERROR).map(|e| {
                format!(
                    "column {}: the cell holds the error {e}",
                    self.headers.get(i).map(String::as_str).unwrap_or("?")
                )
            })
        })
    }
}

fn open_csv(path: &Path, encoding: Encoding) -> Result<(Inner, Vec<String>)> {
    let mut file =
        BufReader::with_capacity(1 << 20, File::open(path).map_err(|e| Error::io(path, e))?);
    if encoding == Encoding::Utf8Bom {
        let mut bom = [0u8; 3];
        file.read_exact(&mut bom).map_err(|e| Error::io(path, e))?;
    }
    let reader: Box<dyn Read> = match encoding {
        Encoding::Gb18030 => Box::new(Gb18030Reader::new(file)),
        _ => Box::new(file),
    };
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .has_headers(true)
        .buffer_capacity(1 << 20)
        .from_reader(reader);
    let headers: Vec<String> = rdr
        .headers()
        .map_err(|e| Error::Read {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?
        .iter()
        .map(str::to_string)
        .collect();
    if headers.iter().all(|h| h.trim().is_empty()) {
        return Err(Error::Read {
            path: path.to_path_buf(),
            message: "no header row".into(),
        });
    }
    Ok((Inner::Csv(Box::new(rdr), csv::StringRecord::new()), headers))
}

fn open_xlsx(path: &Path) -> Result<(Inner, Vec<String>)> {
    let read_err = |message: String| Error::Read {
        path: path.to_path_buf(),
        message,
    };
    let file = BufReader::new(File::open(path).map_err(|e| Error::io(path, e))?);
    let mut book: Xlsx<_> = Xlsx::new(file).map_err(|e| read_err(e.to_string()))?;
    let sheet = book
        .sheet_names()
        .first()
        .cloned()
        .ok_or_else(|| read_err("the workbook has no sheet".into()))?;
    // Opened here, so that a sheet that cannot be read fails the open.
    book.worksheet_cells_reader(&sheet)
        .map_err(|e| read_err(e.to_string()))?;
    let (tx, rows) = sync_channel(XLSX_QUEUE);
    std::thread::spawn(move || {
        let mut cells = match book.worksheet_cells_reader(&sheet) {
            Ok(c) => c,
            Err(e) => {
                let _ = tx.send(Err(e.to_string()));
                return;
            }
        };
        // Cells come row by row, left to right; a row ends where the next one starts.
        let mut current: Option<(u32, Vec<String>)> = None;
        loop {
            let cell = match cells.next_cell() {
                Ok(Some(c)) => c,
                Ok(None) => break,
                Err(e) => {
                    let _ = tx.send(Err(e.to_string()));
                    return;
                }
            };
            let (r, c) = cell.get_position();
            if current.as_ref().is_some_and(|(row, _)| *row != r) {
                let (row, fields) = current.take().expect("a row");
                if tx.send(Ok((i64::from(row) + 1, fields))).is_err() {
                    return; // the load stopped
                }
            }
            let (_, fields) = current.get_or_insert_with(|| (r, Vec::new()));
            let c = c as usize;
            if fields.len() <= c {
                fields.resize(c + 1, String::new());
            }
            fields[c] = cell_text(&Data::from(cell.get_value().clone()));
        }
        if let Some((row, fields)) = current {
            let _ = tx.send(Ok((i64::from(row) + 1, fields)));
        }
    });
    let headers = match rows.recv() {
        Ok(Ok((_, headers))) => headers,
        Ok(Err(message)) => return Err(read_err(message)),
        Err(_) => return Err(read_err("the first sheet is empty".into())),
    };
    let width = headers.len();
    Ok((Inner::Xlsx { rows, width }, headers))
}

/// Marks a cell that held a spreadsheet error, so the record is quarantined (`bad_cell`).
const CELL_ERROR: &str = "\u{0}#CELL_ERROR ";

/// A cell as the text a CSV export would hold: date cells as `YYYY-MM-DD` (midnight) or
/// `YYYY-MM-DD HH:MM:SS`, whole floats without a fraction.
fn cell_text(cell: &Data) -> String {
    match cell {
        Data::Empty => String::new(),
        Data::String(s) => s.clone(),
        Data::Int(i) => i.to_string(),
        Data::Float(f) => {
            if f.fract() == 0.0 && f.abs() < 1e15 {
                format!("{}", *f as i64)
            } else {
                f.to_string()
            }
        }
        Data::Bool(b) => b.to_string(),
        Data::DateTime(dt) => match dt.as_datetime() {
            Some(d) if d.time() == chrono::NaiveTime::MIN => d.format("%Y-%m-%d").to_string(),
            Some(d) => d.format("%Y-%m-%d %H:%M:%S").to_string(),
            None => format!("#DATE?{}", dt.as_f64()),
        },
        Data::DateTimeIso(s) | Data::DurationIso(s) => s.clone(),
        Data::Error(e) => format!("{CELL_ERROR}{e:?}"),
    }
}

#[cfg(test)]
mod tests {
    use calamine::CellErrorType;

    use super::*;

    #[test]
    fn cells_read_as_a_csv_export_would_hold_them() {
        assert_eq!(cell_text(&Data::Float(4.0)), "4");
        assert_eq!(cell_text(&Data::Float(1234.5)), "1234.5");
        assert_eq!(cell_text(&Data::Int(7)), "7");
        assert_eq!(cell_text(&Data::Empty), "");
        assert_eq!(cell_text(&Data::String("豫0621".into())), "豫0621");
        assert!(cell_text(&Data::Error(CellErrorType::Div0)).starts_with(CELL_ERROR));
    }
}
