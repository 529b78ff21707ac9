use std::io::{Cursor, Write};

use zip::write::SimpleFileOptions;

use super::*;

/// A workbook of the given parts, zipped.
fn zipped(parts: &[(&str, &str)]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, text) in parts {
        zip.start_file(*name, options).unwrap();
        zip.write_all(text.as_bytes()).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

const RELS: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">
<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet2.xml"/>
<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="/xl/worksheets/sheet1.xml"/>
</Relationships>"#;

fn workbook(pr: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:rel="http://schemas.openxmlformats.org/officeDocument/2006/relationships">
{pr}<sheets><sheet name="案件" sheetId="1" rel:id="rId1"/><sheet name="Other" sheetId="2" rel:id="rId2"/></sheets></workbook>"#
    )
}

const STYLES: &str = r#"<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">
<numFmts count="2"><numFmt numFmtId="164" formatCode="yyyy/mm/dd hh:mm"/><numFmt numFmtId="165" formatCode="0.00&quot;元&quot;"/></numFmts>
<cellStyleXfs count="1"><xf numFmtId="14"/></cellStyleXfs>
<cellXfs count="4"><xf numFmtId="0"/><xf numFmtId="14"/><xf numFmtId="164"/><xf numFmtId="165"/></cellXfs>
</styleSheet>"#;

const STRINGS: &str = r#"<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="5" uniqueCount="5">
<si><t>豫0100调2025</t></si>
<si><r><rPr><b/></rPr><t xml:space="preserve">郑州 </t></r><r><t>&amp; 开封</t></r><rPh sb="0" eb="2"><t>ていしゅう</t></rPh></si>
<si/>
<si><t>line one_x000D_
line two, _x005F_x0041_ kept</t></si>
<si><t>last</t></si>
</sst>"#;

const SHEET1: &str = r#"<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><dimension ref="A1:F4"/>
<sheetData>
<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c><c r="C1" t="s"><v>2</v></c><c r="D1" t="s"><v>3</v></c><c r="F1" t="s"><v>4</v></c></row>
<row r="2"><c r="A2"><v>4</v></c><c r="B2" t="n"><v>1234.5</v></c><c r="C2" s="1"><v>45292</v></c><c r="D2" s="2"><v>45292.75</v></c><c r="E2" s="3"><v>12</v></c><c r="F2" t="b"><v>1</v></c></row>
<row r="4"><c r="A4" t="e"><v>#DIV/0!</v></c><c r="B4" t="inlineStr"><is><t>内联</t></is></c><c r="C4" t="str"><f>A2&amp;"x"</f><v>4x</v></c><c s="1"/><c><v>not a number</v></c></row>
<row><c><v>-0.5</v></c><c r="c5"><v>1e20</v></c></row>
</sheetData></worksheet>"#;

fn cells(book: &[u8]) -> Result<Vec<(u32, u32, Cell, String)>, String> {
    let mut wb = Workbook::open(Cursor::new(book))?;
    let mut sheet = wb.first_sheet()?;
    let mut out = Vec::new();
    let mut text = String::new();
    while let Some((r, c, cell)) = sheet.next_cell(&mut text)? {
        out.push((r, c, cell, text.clone()));
    }
    Ok(out)
}

fn book(pr: &str, sheet: &str) -> Vec<u8> {
    zipped(&[
        ("[Content_Types].xml", "<Types/>"),
        ("xl/workbook.xml", &workbook(pr)),
        ("xl/_rels/workbook.xml.rels", RELS),
        ("xl/styles.xml", STYLES),
        ("xl/sharedStrings.xml", STRINGS),
        ("xl/worksheets/sheet1.xml", sheet),
        (
            "xl/worksheets/sheet2.xml",
            "<worksheet><sheetData/></worksheet>",
        ),
    ])
}

#[test]
fn the_first_sheets_cells_as_text() {
    let got = cells(&book("", SHEET1)).unwrap();
    let v = |r, c, t: &str| (r, c, Cell::Value, t.to_string());
    assert_eq!(
        got,
        vec![
            v(0, 0, "豫0100调2025"),
            // Runs one after another, without the phonetic run; entities decoded.
            v(0, 1, "郑州 & 开封"),
            // An empty item is an empty string, and the items after it keep their index.
            v(0, 2, ""),
            v(0, 3, "line one\r\nline two, _x0041_ kept"),
            v(0, 5, "last"),
            v(1, 0, "4"),
            v(1, 1, "1234.5"),
            v(1, 2, "2024-01-01"),
            v(1, 3, "2024-01-01 18:00:00"),
            // A number format that is not a date.
            v(1, 4, "12"),
            v(1, 5, "true"),
            (3, 0, Cell::Error, "#DIV/0!".to_string()),
            v(3, 1, "内联"),
            // A formula's cached value.
            v(3, 2, "4x"),
            // Cells without a reference follow the one before; a cell without a value is empty.
            v(3, 3, ""),
            v(3, 4, "not a number"),
            // A row without a number follows the one before.
            v(4, 0, "-0.5"),
            v(4, 2, "100000000000000000000"),
        ]
    );
}

#[test]
fn dates_count_from_1904_when_the_workbook_says_so() {
    let sheet = r#"<worksheet><sheetData><row r="1"><c r="A1" s="1"><v>0</v></c><c r="B1" s="1"><v>43830</v></c></row></sheetData></worksheet>"#;
    let texts = |pr: &str| -> Vec<String> {
        cells(&book(pr, sheet))
            .unwrap()
            .into_iter()
            .map(|c| c.3)
            .collect()
    };
    assert_eq!(
        texts(r#"<workbookPr date1904="1"/>"#),
        ["1904-01-01", "2024-01-01"]
    );
    assert_eq!(
        texts(r#"<workbookPr date1904="false"/>"#),
        ["1899-12-31", "2019-12-31"]
    );
}

#[test]
fn serial_days_as_excel_counts_them() {
    let text = |serial: f64| {
        let mut t = String::new();
        date_text(serial, false, &mut t);
        t
    };
    // Day 60 is Excel's 29 February 1900; the days before it are moved by one.
    assert_eq!(text(1.0), "1900-01-01");
    assert_eq!(text(59.0), "1900-02-28");
    assert_eq!(text(61.0), "1900-03-01");
    assert_eq!(text(45658.0), "2025-01-01");
    // Rounded to the millisecond, then shown to the second.
    assert_eq!(text(45658.0 + 0.999_999_999), "2025-01-02");
    assert_eq!(text(45658.0 + 1.0 / 86400.0), "2025-01-01 00:00:01");
    assert!(text(1e300).starts_with("#DATE?"));
}

#[test]
fn a_shared_string_out_of_range_is_an_error() {
    let sheet = r#"<worksheet><sheetData><row r="1"><c r="A1" t="s"><v>5</v></c></row></sheetData></worksheet>"#;
    let e = cells(&book("", sheet)).unwrap_err();
    assert_eq!(
        e,
        "xl/worksheets/sheet1.xml: shared string 5 of a table of 5"
    );
}

#[test]
fn broken_workbooks_are_errors_that_say_what() {
    assert!(cells(b"PK\x03\x04 not really a workbook")
        .unwrap_err()
        .starts_with("not a workbook"));
    let no_sheet = zipped(&[
        ("xl/workbook.xml", "<workbook><sheets/></workbook>"),
        ("xl/_rels/workbook.xml.rels", RELS),
    ]);
    assert_eq!(cells(&no_sheet).unwrap_err(), "the workbook has no sheet");
    let truncated = book(
        "",
        "<worksheet><sheetData><row r=\"1\"><c r=\"A1\"><v>1</v>",
    );
    assert!(cells(&truncated).unwrap_err().contains("ends inside"));
    let bad_ref = book(
        "",
        r#"<worksheet><sheetData><row r="1"><c r="1A"><v>1</v></c></row></sheetData></worksheet>"#,
    );
    assert_eq!(
        cells(&bad_ref).unwrap_err(),
        "xl/worksheets/sheet1.xml: a cell at \"1A\""
    );
}

#[test]
fn references_name_rows_and_columns() {
    assert_eq!(parse_reference(b"A1"), Some((0, 0)));
    assert_eq!(parse_reference(b"Z10"), Some((9, 25)));
    assert_eq!(parse_reference(b"AA3"), Some((2, 26)));
    assert_eq!(parse_reference(b"xfd1048576"), Some((1_048_575, 16_383)));
    assert_eq!(parse_reference(b"A0"), None);
    assert_eq!(parse_reference(b"A"), None);
    assert_eq!(parse_reference(b"7"), None);
    assert_eq!(parse_reference(b"ABCD1"), None);
}

#[test]
fn escapes_of_utf16_units_are_decoded() {
    assert_eq!(decode_escapes("a_x000D_b"), "a\rb");
    assert_eq!(decode_escapes("_x005F_x000D_"), "_x000D_");
    // A pair of surrogates is one character; a lone one, or a near miss, stays as written.
    assert_eq!(decode_escapes("_xD83D__xDE00_"), "😀");
    assert_eq!(decode_escapes("_xD83D_!"), "_xD83D_!");
    assert_eq!(
        decode_escapes("_x00G1_ _x41_ _x0041"),
        "_x00G1_ _x41_ _x0041"
    );
    assert_eq!(decode_escapes("豫_x0041_"), "豫A");
}

#[test]
fn number_formats_that_are_dates() {
    for f in [
        "DD/MM/YY",
        "H:MM:SS;@",
        "m\"M\"d\"D\";@",
        "[h]:mm:ss",
        "yyyy\"年\"m\"月\"d\"日\"",
        "ha/p\\\\m",
    ] {
        assert!(is_date_format(f), "{f}");
    }
    for f in [
        "0.00",
        "#,##0\\ [$\\u20bd-46D]",
        "\"$\"#,##0_);[Red](\"$\"#,##0)",
        "\\Y000000",
        "[>=100][Magenta].00",
        "General",
    ] {
        assert!(!is_date_format(f), "{f}");
    }
}

/// Every cell of a workbook written as the generator writes notarizations reads as calamine
/// reads it, but for the forms this reader keeps on purpose (a whole float without a fraction).
#[test]
fn a_generated_workbook_reads_as_calamine_reads_it() {
    use calamine::{Data, Reader as _};
    use rust_xlsxwriter::{ExcelDateTime, Format};
    let mut wb = rust_xlsxwriter::Workbook::new();
    let ws = wb.add_worksheet();
    let date = Format::new().set_num_format("yyyy-mm-dd");
    let stamp = Format::new().set_num_format("yyyy-mm-dd hh:mm:ss");
    for r in 0..300u32 {
        ws.write_string(r, 0, format!("豫0105公{r:06}")).unwrap();
        ws.write_string(
            r,
            1,
            ["notarization", "郑州 & <开封>", " x "][r as usize % 3],
        )
        .unwrap();
        if r % 4 != 0 {
            let d = ExcelDateTime::from_ymd(2025, 1 + (r % 12) as u8, 1 + (r % 28) as u8).unwrap();
            ws.write_datetime_with_format(r, 3, &d, &date).unwrap();
        }
        let t = ExcelDateTime::from_ymd(2024, 2, 29)
            .unwrap()
            .and_hms((r % 24) as u16, (r % 60) as u8, f64::from((r * 7) % 60))
            .unwrap();
        ws.write_datetime_with_format(r, 4, &t, &stamp).unwrap();
        ws.write_number(r, 5, f64::from(r) * 1.25).unwrap();
        ws.write_boolean(r, 6, r % 2 == 0).unwrap();
    }
    let bytes = wb.save_to_buffer().unwrap();

    let mut theirs = calamine::Xlsx::new(Cursor::new(bytes.clone())).unwrap();
    let range = theirs.worksheet_range("Sheet1").unwrap();
    let mut expected = Vec::new();
    for (r, c, v) in range.used_cells() {
        let text = match v {
            Data::String(s) => s.clone(),
            Data::Float(f) if f.fract() == 0.0 => format!("{}", *f as i64),
            Data::Float(f) => f.to_string(),
            Data::Bool(b) => b.to_string(),
            Data::DateTime(d) => {
                let d = d.as_datetime().unwrap();
                if d.time() == chrono::NaiveTime::MIN {
                    d.format("%Y-%m-%d").to_string()
                } else {
                    d.format("%Y-%m-%d %H:%M:%S").to_string()
                }
            }
            other => panic!("unexpected {other:?}"),
        };
        expected.push((r as u32, c as u32, Cell::Value, text));
    }
    let ours = cells(&bytes).unwrap();
    assert_eq!(ours.len(), 300 * 5 + 225);
    assert_eq!(ours, expected);
}

/// An error cell reaches the checks as a marked value, which quarantines its row as `bad_cell`
/// with the error's own text in the message.
#[test]
fn an_error_cell_is_told_by_the_records_with_its_text() {
    use crate::reader::Records;
    use crate::source::Encoding;
    let sheet = r#"<worksheet><sheetData>
<row r="1"><c r="A1" t="inlineStr"><is><t>案件编号</t></is></c><c r="B1" t="inlineStr"><is><t>挽回金额</t></is></c></row>
<row r="2"><c r="A2" t="inlineStr"><is><t>豫0105公000001</t></is></c><c r="B2" t="e"><f>1/0</f><v>#DIV/0!</v></c></row>
<row r="3"><c r="A3" t="inlineStr"><is><t>豫0105公000002</t></is></c><c r="B3"><v>12.5</v></c></row>
</sheetData></worksheet>"#;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("errors.xlsx");
    std::fs::write(&path, book("", sheet)).unwrap();
    let mut records = Records::open(&path, Encoding::Xlsx, &plsw_schemas::tables::CASES, &|_| {
        false
    })
    .unwrap();
    let rec = records.next(&path).unwrap().expect("row 2");
    assert_eq!(rec.position, 2);
    assert_eq!(
        rec.cell_error().as_deref(),
        Some("column 挽回金额: the cell holds the error #DIV/0!")
    );
    let rec = records.next(&path).unwrap().expect("row 3");
    assert_eq!(rec.cell_error(), None);
    // Column 1 of the file is the table's `amount_recovered_yuan`.
    let amount = plsw_schemas::tables::CASES
        .columns
        .iter()
        .position(|c| c.name == "amount_recovered_yuan")
        .unwrap();
    assert_eq!(rec.value(amount), "12.5");
    assert!(records.next(&path).unwrap().is_none());
}
