//! An assessment as an XLSX workbook (a sheet per level and one on the method) or as a printable
//! A4 HTML page. Both are rendered from the [`Assessment`] alone, so a published quarter renders
//! the same forever.

use rust_xlsxwriter::{Color, DocProperties, ExcelDateTime, Format, FormatBorder, Workbook};

use crate::error::{Error, Result};
use crate::{Assessment, Entry, ScoredIndicator, Status};

/// `2025Q3` → `2025年第三季度`.
pub fn quarter_zh(q: &str) -> String {
    let (y, n) = q.split_once('Q').unwrap_or((q, ""));
    let n = match n {
        "1" => "一",
        "2" => "二",
        "3" => "三",
        "4" => "四",
        other => other,
    };
    format!("{y}年第{n}季度")
}

fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

/// A value as people read it, by the indicator's display format.
pub fn display(format: &str, value: Option<f64>) -> String {
    let Some(v) = value else {
        return "—".into();
    };
    match format {
        "percent1" => format!("{:.1}%", v * 100.0),
        "int" | "yuan0" => thousands(v.round() as i64),
        "dec1" => format!("{v:.1}"),
        _ => format!("{v:.2}"),
    }
}

fn excel_format(format: &str) -> &'static str {
    match format {
        "percent1" => "0.0%",
        "int" | "yuan0" => "#,##0",
        "dec1" => "0.0",
        _ => "0.00",
    }
}

/// Fill and font colours of a status.
fn colours(s: Status) -> (u32, u32) {
    match s {
        Status::Green => (0xC6EFCE, 0x006100),
        Status::Amber => (0xFFEB9C, 0x9C5700),
        Status::Red => (0xFFC7CE, 0x9C0006),
        Status::None => (0xF2F2F2, 0x808080),
    }
}

fn status_zh(s: Status) -> &'static str {
    match s {
        Status::Green => "达标",
        Status::Amber => "接近",
        Status::Red => "未达标",
        Status::None => "无数据",
    }
}

fn level_indicators<'a>(a: &'a Assessment, level: &str) -> Vec<&'a ScoredIndicator> {
    a.method
        .indicators
        .iter()
        .filter(|i| i.levels.iter().any(|l| l == level))
        .collect()
}

/// The workbook: sheets 省辖市, 县（市、区） and 说明.
pub fn xlsx(a: &Assessment) -> Result<Vec<u8>> {
    let err = |e: rust_xlsxwriter::XlsxError| Error::Report(e.to_string());
    let mut wb = Workbook::new();
    // A fixed creation time: the same assessment gives the same bytes.
    let created = ExcelDateTime::from_ymd(2000, 1, 1).map_err(err)?;
    wb.set_properties(
        &DocProperties::new()
            .set_title(format!("河南省公共法律服务考核 {}", quarter_zh(&a.quarter)))
            .set_creation_datetime(&created),
    );
    let header = Format::new()
        .set_bold()
        .set_text_wrap()
        .set_background_color(Color::RGB(0xDDEBF7))
        .set_border(FormatBorder::Thin);
    let score_fmt = Format::new().set_num_format("0.00");
    let change_fmt = Format::new().set_num_format("+0.00;-0.00;0.00");
    let rank_change_fmt = Format::new().set_num_format("+0;-0;0");
    for (level, sheet, entries) in [
        ("city", "省辖市", &a.cities),
        ("county", "县（市、区）", &a.counties),
    ] {
        let inds = level_indicators(a, level);
        let ws = wb.add_worksheet();
        ws.set_name(sheet).map_err(err)?;
        let mut cols: Vec<String> = vec!["排名".into()];
        if level == "county" {
            cols.push("市内排名".into());
        }
        cols.extend(["代码", "名称"].map(String::from));
        if level == "county" {
            cols.push("所属市".into());
        }
        cols.extend(["得分", "得分变化", "排名变化", "达标", "接近", "未达标"].map(String::from));
        let fixed = cols.len();
        for i in &inds {
            cols.push(format!(
                "{}\n(目标 {}{})",
                i.short_zh,
                i.comparison,
                display(&i.format, Some(i.target))
            ));
        }
        for (c, h) in cols.iter().enumerate() {
            ws.write_string_with_format(0, c as u16, h, &header)
                .map_err(err)?;
        }
        ws.set_row_height(0, 45).map_err(err)?;
        ws.set_freeze_panes(1, if level == "county" { 5 } else { 3 })
            .map_err(err)?;
        for (r, e) in entries.iter().enumerate() {
            let row = r as u32 + 1;
            let mut c: u16 = 0;
            let opt_num = |ws: &mut rust_xlsxwriter::Worksheet,
                           c: u16,
                           v: Option<f64>,
                           f: &Format|
             -> Result<()> {
                if let Some(v) = v {
                    ws.write_number_with_format(row, c, v, f).map_err(err)?;
                }
                Ok(())
            };
            opt_num(ws, c, e.rank.map(f64::from), &Format::new())?;
            c += 1;
            if level == "county" {
                opt_num(ws, c, e.rank_in_city.map(f64::from), &Format::new())?;
                c += 1;
            }
            ws.write_string(row, c, &e.code).map_err(err)?;
            ws.write_string(row, c + 1, &e.name).map_err(err)?;
            c += 2;
            if level == "county" {
                ws.write_string(row, c, e.city_name.as_deref().unwrap_or_default())
                    .map_err(err)?;
                c += 1;
            }
            opt_num(ws, c, e.score, &score_fmt)?;
            opt_num(ws, c + 1, e.score_change, &change_fmt)?;
            opt_num(ws, c + 2, e.rank_change.map(|v| v as f64), &rank_change_fmt)?;
            ws.write_number(row, c + 3, e.green).map_err(err)?;
            ws.write_number(row, c + 4, e.amber).map_err(err)?;
            ws.write_number(row, c + 5, e.red).map_err(err)?;
            for (k, ind) in inds.iter().enumerate() {
                let col = (fixed + k) as u16;
                let Some(cell) = e.indicators.iter().find(|x| x.id == ind.id) else {
                    continue;
                };
                let (bg, fg) = colours(cell.status);
                let f = Format::new()
                    .set_num_format(excel_format(&ind.format))
                    .set_background_color(Color::RGB(bg))
                    .set_font_color(Color::RGB(fg));
                match cell.value {
                    Some(v) => ws.write_number_with_format(row, col, v, &f).map_err(err)?,
                    None => ws.write_blank(row, col, &f).map_err(err)?,
                };
            }
        }
        ws.set_column_width(if level == "county" { 3 } else { 2 }, 14)
            .map_err(err)?;
        for k in 0..inds.len() {
            ws.set_column_width((fixed + k) as u16, 11).map_err(err)?;
        }
    }
    let ws = wb.add_worksheet();
    ws.set_name("说明").map_err(err)?;
    let bold = Format::new().set_bold();
    let mut row = 0u32;
    let mut line = |ws: &mut rust_xlsxwriter::Worksheet, k: &str, v: &str| -> Result<()> {
        ws.write_string_with_format(row, 0, k, &bold).map_err(err)?;
        ws.write_string(row, 1, v).map_err(err)?;
        row += 1;
        Ok(())
    };
    line(
        ws,
        "考核季度",
        &format!("{} ({})", quarter_zh(&a.quarter), a.quarter),
    )?;
    line(ws, "比较季度", &a.previous_quarter)?;
    line(ws, "得分", "100 × Σ 权重 × 达成度 ÷ Σ 权重（有数值的指标），保留两位小数；排名按得分由高到低，并列同名次（1, 1, 3）")?;
    line(
        ws,
        "达成度",
        "≥ 目标与 = 1 目标：min(数值 ÷ 目标, 1)；= 0 目标（空白）：1 − 数值",
    )?;
    line(
        ws,
        "状态",
        &format!(
            "达标：达到目标；接近：达成度 ≥ {}；未达标：其余",
            a.method.amber_from
        ),
    )?;
    line(ws, "targets.csv SHA-256", &a.method.targets_csv_sha256)?;
    line(
        ws,
        "assessment.toml SHA-256",
        &a.method.assessment_toml_sha256,
    )?;
    row += 1;
    for (c, h) in ["指标", "名称", "目标", "权重", "层级"].iter().enumerate() {
        ws.write_string_with_format(row, c as u16, *h, &header)
            .map_err(err)?;
    }
    row += 1;
    for i in &a.method.indicators {
        ws.write_string(row, 0, &i.id).map_err(err)?;
        ws.write_string(row, 1, &i.name_zh).map_err(err)?;
        ws.write_string(
            row,
            2,
            format!("{} {}", i.comparison, display(&i.format, Some(i.target))),
        )
        .map_err(err)?;
        ws.write_number(row, 3, i.weight).map_err(err)?;
        ws.write_string(row, 4, i.levels.join(", ")).map_err(err)?;
        row += 1;
    }
    row += 1;
    ws.write_string_with_format(row, 0, "数据表版本（Delta）", &bold)
        .map_err(err)?;
    row += 1;
    for (t, v) in &a.table_versions {
        ws.write_string(row, 0, t).map_err(err)?;
        ws.write_number(row, 1, *v as f64).map_err(err)?;
        row += 1;
    }
    ws.set_column_width(0, 30).map_err(err)?;
    ws.set_column_width(1, 40).map_err(err)?;
    wb.save_to_buffer().map_err(err)
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn signed(v: Option<f64>, decimals: usize) -> String {
    match v {
        None => "—".into(),
        Some(v) if v > 0.0 => format!("+{v:.decimals$}"),
        Some(v) => format!("{v:.decimals$}"),
    }
}

fn html_table(a: &Assessment, level: &str, entries: &[Entry]) -> String {
    let inds = level_indicators(a, level);
    let county = level == "county";
    let mut h = String::new();
    h.push_str("<table>\n<thead><tr><th>排名</th>");
    if county {
        h.push_str("<th>市内<br>排名</th>");
    }
    h.push_str("<th>名称</th>");
    if county {
        h.push_str("<th>所属市</th>");
    }
    h.push_str("<th>得分</th><th>变化</th><th>名次<br>变化</th>");
    for i in &inds {
        h.push_str(&format!(
            "<th title=\"{}\">{}<br><small>{}{}</small></th>",
            esc(&i.name_zh),
            esc(&i.short_zh),
            esc(&i.comparison),
            esc(&display(&i.format, Some(i.target)))
        ));
    }
    h.push_str("</tr></thead>\n<tbody>\n");
    for e in entries {
        h.push_str(&format!(
            "<tr data-code=\"{}\"><td class=\"num\">{}</td>",
            esc(&e.code),
            e.rank.map_or("—".into(), |r| r.to_string())
        ));
        if county {
            h.push_str(&format!(
                "<td class=\"num\">{}</td>",
                e.rank_in_city.map_or("—".into(), |r| r.to_string())
            ));
        }
        h.push_str(&format!("<td>{}</td>", esc(&e.name)));
        if county {
            h.push_str(&format!(
                "<td>{}</td>",
                esc(e.city_name.as_deref().unwrap_or_default())
            ));
        }
        h.push_str(&format!(
            "<td class=\"num score\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>",
            e.score.map_or("—".into(), |s| format!("{s:.2}")),
            signed(e.score_change, 2),
            signed(e.rank_change.map(|v| v as f64), 0)
        ));
        for i in &inds {
            match e.indicators.iter().find(|c| c.id == i.id) {
                Some(c) => h.push_str(&format!(
                    "<td class=\"num {}\" title=\"{}\">{}</td>",
                    c.status.as_str(),
                    status_zh(c.status),
                    esc(&display(&i.format, c.value))
                )),
                None => h.push_str("<td></td>"),
            }
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</tbody>\n</table>\n");
    h
}

/// A printable page (A4 landscape), Chinese throughout, status colours kept in print.
pub fn html(a: &Assessment) -> String {
    let title = format!("河南省公共法律服务考核 · {}", quarter_zh(&a.quarter));
    let mut h = String::new();
    h.push_str(&format!(
        r#"<!DOCTYPE html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>
@page {{ size: A4 landscape; margin: 10mm; }}
body {{ font-family: "Noto Sans CJK SC", "Source Han Sans SC", "Microsoft YaHei", "PingFang SC", sans-serif; font-size: 9pt; color: #222; margin: 0; }}
h1 {{ font-size: 15pt; margin: 0 0 4pt; }}
h2 {{ font-size: 12pt; margin: 12pt 0 4pt; break-after: avoid; }}
p.meta {{ margin: 0 0 6pt; color: #555; }}
table {{ border-collapse: collapse; width: 100%; }}
thead {{ display: table-header-group; }}
tr {{ break-inside: avoid; }}
th, td {{ border: 0.5pt solid #bbb; padding: 1.5pt 3pt; }}
th {{ background: #ddebf7; font-weight: 600; }}
td.num {{ text-align: right; font-variant-numeric: tabular-nums; }}
td.score {{ font-weight: 600; }}
td.green {{ background: #c6efce; color: #006100; }}
td.amber {{ background: #ffeb9c; color: #9c5700; }}
td.red {{ background: #ffc7ce; color: #9c0006; }}
td.none {{ background: #f2f2f2; color: #808080; }}
* {{ -webkit-print-color-adjust: exact; print-color-adjust: exact; }}
.legend span {{ padding: 0 4pt; margin-right: 6pt; }}
</style>
</head>
<body>
<h1>{title}</h1>
<p class="meta">得分 = 100 × Σ 权重 × 达成度 ÷ Σ 权重（有数值的指标）；排名按得分由高到低，并列同名次。变化与 {prev} 相比。
<span class="legend"><span class="green" style="background:#c6efce">达标</span><span style="background:#ffeb9c">接近（达成度 ≥ {amber}）</span><span style="background:#ffc7ce">未达标</span><span style="background:#f2f2f2">无数据</span></span></p>
"#,
        prev = esc(&a.previous_quarter),
        amber = a.method.amber_from,
    ));
    h.push_str(&format!("<h2>省辖市（{}个）</h2>\n", a.cities.len()));
    h.push_str(&html_table(a, "city", &a.cities));
    h.push_str(&format!(
        "<h2>县（市、区）（{}个）</h2>\n",
        a.counties.len()
    ));
    h.push_str(&html_table(a, "county", &a.counties));
    h.push_str(&format!(
        "<p class=\"meta\">数据表版本：{}；targets.csv {}；assessment.toml {}</p>\n</body>\n</html>\n",
        esc(&a
            .table_versions
            .iter()
            .map(|(t, v)| format!("{t} v{v}"))
            .collect::<Vec<_>>()
            .join("，")),
        &a.method.targets_csv_sha256[..12],
        &a.method.assessment_toml_sha256[..12],
    ));
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_display_by_format() {
        assert_eq!(display("percent1", Some(0.9)), "90.0%");
        assert_eq!(display("percent1", Some(0.86666)), "86.7%");
        assert_eq!(display("int", Some(1234567.0)), "1,234,567");
        assert_eq!(display("yuan0", Some(-1500.4)), "-1,500");
        assert_eq!(display("dec2", Some(1.23456)), "1.23");
        assert_eq!(display("dec1", None), "—");
        assert_eq!(quarter_zh("2025Q3"), "2025年第三季度");
        assert_eq!(esc("<a&b>"), "&lt;a&amp;b&gt;");
    }
}
