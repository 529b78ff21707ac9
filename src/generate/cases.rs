//! Monthly case exports (F3), one file per case type and month. A case appears in the month it
//! was accepted (open, unless it also closed that month) and again in the month it closed.
//! Mediation: UTF-8 CSV, English headers. Notarization: XLSX, Chinese headers, date cells.
//! Legal aid: GB18030 CSV, Chinese headers. Judicial appraisal: UTF-8 CSV with BOM, Chinese.

use std::path::Path;

use anyhow::Context;
use plsw_schemas::tables::CASES;
use rust_xlsxwriter::{DocProperties, ExcelDateTime, Format, Workbook};

use super::rng::Rng;
use super::world::{date_of, days, fmt_date, World};
use super::{headers, write_text, Args, CsvDoc, TextEncoding, Written};

/// (type, Chinese label, id mark, cases per province-year, mean days to close)
const TYPES: [(&str, &str, &str, f64, f64); 4] = [
    ("mediation", "人民调解", "调", 890_000.0, 18.0),
    ("notarization", "公证", "证", 210_000.0, 6.0),
    ("legal_aid", "法律援助", "援", 100_000.0, 55.0),
    ("judicial_appraisal", "司法鉴定", "鉴", 10_000.0, 40.0),
];

const BAD_KINDS: [&str; 8] = [
    "missing_case_id",
    "unknown_case_type",
    "unknown_county",
    "bad_date",
    "closed_before_accepted",
    "unknown_outcome",
    "negative_amount",
    "bad_boolean",
];

#[derive(Debug, Clone)]
struct Case {
    id: String,
    kind: usize,
    county: String,
    accepted: i32,
    closed: Option<i32>,
    outcome: Option<bool>,
    migrant: bool,
    /// Fen.
    amount: Option<i64>,
}

pub(super) fn write(world: &World, args: &Args, dir: &Path) -> anyhow::Result<Written> {
    let mut written = Written {
        feed: "cases",
        ..Default::default()
    };
    let year = world.year;
    let year_end = days(year, 12, 31);
    for (t, (kind, _, mark, per_year, mean_days)) in TYPES.iter().enumerate() {
        let mut rng = Rng::derive(world.seed, &format!("cases-{kind}"));
        let mut pending: Vec<Vec<Case>> = vec![Vec::new(); 13];
        let mut seq = 0usize;
        for month in 1..=12u32 {
            let m_first = days(year, month, 1);
            let m_last = if month == 12 {
                year_end
            } else {
                days(year, month + 1, 1) - 1
            };
            let jitter = rng.uniform(0.9, 1.1);
            let n = rng.count(per_year * args.scale / 12.0 * jitter);
            let mut rows: Vec<Case> = std::mem::take(&mut pending[month as usize]);
            for _ in 0..n {
                seq += 1;
                let city_level = rng.chance(0.03);
                let county = world.county_by_pop(&mut rng);
                let code = if city_level {
                    world.cities[world.counties[county].city].code.clone()
                } else {
                    world.counties[county].code.clone()
                };
                let quality = world.counties[county].quality;
                let accepted = rng.int(m_first as i64, m_last as i64) as i32;
                let closes = accepted + rng.exp(*mean_days) as i32;
                let closed = (closes <= year_end).then_some(closes);
                let migrant = *kind == "legal_aid" && rng.chance(0.15);
                let amount = if migrant {
                    Some((rng.exp(16_000.0) * 100.0) as i64 + 50_000)
                } else if *kind == "mediation" && rng.chance(0.2) {
                    Some((rng.exp(8_000.0) * 100.0) as i64)
                } else {
                    None
                };
                let case = Case {
                    id: format!("豫{}{mark}{year}{seq:07}", &code[2..6]),
                    kind: t,
                    county: code,
                    accepted,
                    closed,
                    outcome: (*kind == "mediation").then(|| rng.chance(0.78 + 0.18 * quality)),
                    migrant,
                    amount,
                };
                match closed {
                    Some(c) if c > m_last => {
                        let close_month = date_of(c)
                            .format("%m")
                            .to_string()
                            .parse::<usize>()
                            .unwrap_or(12);
                        let mut open = case.clone();
                        open.closed = None;
                        rows.push(open);
                        pending[close_month].push(case);
                    }
                    _ => rows.push(case),
                }
            }
            rows.sort_by(|a, b| a.accepted.cmp(&b.accepted).then_with(|| a.id.cmp(&b.id)));
            let file_no = t * 12 + month as usize - 1;
            let bad = BAD_KINDS[file_no % BAD_KINDS.len()];
            let name = format!("{year}-{month:02}-{kind}");
            let path = match *kind {
                "notarization" => dir.join(format!("{name}.xlsx")),
                _ => dir.join(format!("{name}.csv")),
            };
            let records: Vec<Vec<String>> = rows
                .iter()
                .map(|c| fields(c, *kind != "mediation", &mut rng))
                .chain(std::iter::once(bad_row(
                    bad,
                    t,
                    year,
                    month,
                    &world.counties[0].code,
                )))
                .collect();
            match *kind {
                "notarization" => write_xlsx(&path, &records)?,
                "mediation" => write_csv(&path, &records, false, TextEncoding::Utf8)?,
                "legal_aid" => write_csv(&path, &records, true, TextEncoding::Gb18030)?,
                _ => write_csv(&path, &records, true, TextEncoding::Utf8Bom)?,
            }
            written.files += 1;
            written.rows += records.len();
            written.bad_rows += 1;
        }
    }
    Ok(written)
}

fn fields(c: &Case, chinese: bool, rng: &mut Rng) -> Vec<String> {
    let (kind, label, ..) = TYPES[c.kind];
    let outcome = match (c.outcome, c.closed.is_some() || rng.chance(0.05)) {
        (Some(true), true) => {
            if chinese {
                "调解成功"
            } else {
                "success"
            }
        }
        (Some(false), true) => {
            if chinese {
                "调解不成功"
            } else {
                "failed"
            }
        }
        _ => "",
    };
    let migrant = match (c.migrant, chinese) {
        (true, true) => "是",
        (true, false) => "Y",
        (false, true) => "否",
        (false, false) => "",
    };
    let amount = match (c.amount, c.closed) {
        (Some(fen), Some(_)) => format!("{}.{:02}", fen / 100, fen % 100),
        _ => String::new(),
    };
    vec![
        c.id.clone(),
        if chinese {
            label.to_string()
        } else {
            kind.to_string()
        },
        c.county.clone(),
        fmt_date(c.accepted),
        c.closed.map(fmt_date).unwrap_or_default(),
        outcome.to_string(),
        migrant.to_string(),
        amount,
    ]
}

fn bad_row(kind: &str, t: usize, year: i32, month: u32, county: &str) -> Vec<String> {
    let mut f = vec![
        format!("BAD{year}{month:02}{t}"),
        TYPES[t].0.to_string(),
        county.to_string(),
        format!("{year}-{month:02}-10"),
        format!("{year}-{month:02}-20"),
        String::new(),
        String::new(),
        String::new(),
    ];
    match kind {
        "missing_case_id" => f[0].clear(),
        "unknown_case_type" => f[1] = "仲裁".into(),
        "unknown_county" => f[2] = "999999".into(),
        "bad_date" => f[3] = format!("{year}-02-30"),
        "closed_before_accepted" => f[4] = format!("{year}-{month:02}-01"),
        "unknown_outcome" => {
            f[1] = "mediation".into();
            f[5] = "和解".into();
        }
        "negative_amount" => f[7] = "-100.00".into(),
        _ => f[6] = "maybe".into(),
    }
    f
}

fn write_csv(
    path: &Path,
    records: &[Vec<String>],
    chinese: bool,
    enc: TextEncoding,
) -> anyhow::Result<()> {
    let mut doc = CsvDoc::new(&headers(&CASES, chinese));
    for r in records {
        doc.row(r);
    }
    write_text(path, &doc.finish(), enc)
}

/// XLSX with Chinese headers; accepted_on as a date cell, closed_on as a date cell or as text.
fn write_xlsx(path: &Path, records: &[Vec<String>]) -> anyhow::Result<()> {
    let mut wb = Workbook::new();
    // A fixed creation time (rust_xlsxwriter stamps the clock otherwise): the same seed gives
    // the same bytes.
    let created = ExcelDateTime::from_ymd(2000, 1, 1)?;
    wb.set_properties(&DocProperties::new().set_creation_datetime(&created));
    let ws = wb.add_worksheet();
    let date_format = Format::new().set_num_format("yyyy-mm-dd");
    for (c, h) in headers(&CASES, true).iter().enumerate() {
        ws.write_string(0, c as u16, *h)?;
    }
    for (i, rec) in records.iter().enumerate() {
        let r = i as u32 + 1;
        for (c, v) in rec.iter().enumerate() {
            let col = c as u16;
            let date = (c == 3 || (c == 4 && i % 3 != 0))
                .then(|| plsw_ingest::parse::date(v))
                .flatten();
            match date {
                Some(d) => {
                    let nd = date_of(d);
                    use chrono::Datelike;
                    let dt = ExcelDateTime::from_ymd(
                        nd.year() as u16,
                        nd.month() as u8,
                        nd.day() as u8,
                    )?;
                    ws.write_datetime_with_format(r, col, &dt, &date_format)?;
                }
                None if c == 4 && !v.is_empty() => {
                    // a date as text, the other form XLSX exports use
                    let nd = plsw_ingest::parse::date(v).map(date_of);
                    let text = nd
                        .map(|d| d.format("%Y/%-m/%-d").to_string())
                        .unwrap_or_else(|| v.clone());
                    ws.write_string(r, col, &text)?;
                }
                None if v.is_empty() => {}
                None => {
                    ws.write_string(r, col, v)?;
                }
            }
        }
    }
    wb.save(path)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
