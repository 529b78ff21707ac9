//! File ingest end to end: counts balance, reloading changes nothing, Chinese text survives,
//! the later row wins, a bad row never replaces a good one, file-level errors.

use std::path::Path;

use crate::common::*;

#[test]
fn a_generated_year_loads_balanced_and_twice_changes_nothing() {
    let (_tmp, wh) = warehouse();
    let data = generated();
    let first = ingest_all(&wh, &data);
    let starts = |out: &str, word: &str| out.lines().filter(|l| l.starts_with(word)).count();
    assert_eq!(starts(&first, "FAILED"), 0, "{first}");
    assert_eq!(starts(&first, "skipped"), 0, "{first}");
    assert!(starts(&first, "loaded") > 400, "{first}");

    let s = Session::open(&wh);
    // Every committed load balances, and the quarantine holds exactly the quarantined rows.
    assert_eq!(
        s.scalar("SELECT count(*) FROM loads WHERE status = 'committed' AND rows_read <> rows_accepted + rows_quarantined"),
        "0"
    );
    assert_eq!(
        scalar(
            &wh,
            "SELECT sum(rows_quarantined) FROM loads WHERE status = 'committed'"
        ),
        s.scalar("SELECT count(*) FROM quarantine")
    );
    for (view, feed) in [
        ("hotline_calls", "hotline"),
        ("cases", "cases"),
        ("platforms", "platforms"),
        ("staff", "staff"),
        ("funding", "funding"),
        ("population", "population"),
    ] {
        assert_eq!(
            s.scalar(&format!("SELECT count(*) FROM {view}")),
            s.scalar(&format!("SELECT sum(rows_accepted) FROM loads WHERE status = 'committed' AND feed = '{feed}'")),
            "{view}"
        );
    }
    // Every feed had its bad rows quarantined, with reasons.
    let reasons = query(
        &wh,
        "SELECT feed, reason, count(*) FROM quarantine GROUP BY 1, 2 ORDER BY 1, 2",
    );
    for want in [
        "hotline,missing_required",
        "hotline,bad_timestamp",
        "hotline,ended_before_queued",
        "hotline,answered_out_of_range",
        "hotline,rating_out_of_range",
        "hotline,rating_unanswered",
        "hotline,unknown_seat_city",
        "hotline,unknown_line",
        "cases,unknown_case_type",
        "cases,unknown_county",
        "cases,bad_date",
        "cases,closed_before_accepted",
        "cases,unknown_outcome",
        "cases,negative_amount",
        "cases,bad_boolean",
        "platforms,unknown_division",
        "platforms,level_mismatch",
        "platforms,unknown_level",
        "staff,unknown_role",
        "funding,bad_quarter",
        "population,unknown_county",
    ] {
        assert!(reasons.contains(want), "no {want} in\n{reasons}");
    }
    // Re-exported calls: the history has more rows than the current state.
    let history: i64 = s
        .scalar("SELECT count(*) FROM hotline_calls")
        .parse()
        .unwrap();
    let current: i64 = s
        .scalar("SELECT count(*) FROM hotline_calls_current")
        .parse()
        .unwrap();
    assert!(current < history && current > 0, "{current} vs {history}");

    // The second time: every file is skipped and no table changes.
    let before = dump(&wh);
    let second = ingest_all(&wh, &data);
    assert_eq!(starts(&second, "loaded"), 0, "{second}");
    assert_eq!(
        starts(&second, "skipped"),
        starts(&first, "loaded"),
        "{second}"
    );
    assert_eq!(dump(&wh), before);

    // Every table stays at Delta protocol (1, 2), readable by every engine (dependencies.md).
    let mut protocols = 0;
    for table in std::fs::read_dir(&wh).unwrap() {
        let log = table.unwrap().path().join("_delta_log");
        for commit in std::fs::read_dir(&log).unwrap() {
            let commit = commit.unwrap().path();
            if commit.extension().is_some_and(|e| e == "json") {
                for line in std::fs::read_to_string(&commit).unwrap().lines() {
                    let action: serde_json::Value = serde_json::from_str(line).unwrap();
                    if let Some(p) = action.get("protocol") {
                        assert_eq!(
                            (
                                p["minReaderVersion"].as_i64(),
                                p["minWriterVersion"].as_i64()
                            ),
                            (Some(1), Some(2)),
                            "{}",
                            commit.display()
                        );
                        protocols += 1;
                    }
                }
            }
        }
    }
    assert_eq!(protocols, plsw_schemas::tables::ALL.len());

    // Record positions are stored as deltas, case ids as shared prefixes and their rests (see
    // Warehouse::table_writer); both are plain Parquet encodings that every engine reads.
    use datafusion::parquet::basic::Encoding;
    use datafusion::parquet::file::reader::{FileReader, SerializedFileReader};
    let file = std::fs::read_dir(wh.join("cases"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "parquet"))
        .expect("a Parquet file of cases");
    let reader = SerializedFileReader::new(std::fs::File::open(&file).unwrap()).unwrap();
    let group = reader.metadata().row_group(0);
    let encodings = |name: &str| {
        (0..group.num_columns())
            .map(|i| group.column(i))
            .find(|c| c.column_path().string() == name)
            .unwrap_or_else(|| panic!("no column {name}"))
            .encodings()
            .collect::<Vec<_>>()
    };
    assert!(
        encodings("case_id").contains(&Encoding::DELTA_BYTE_ARRAY),
        "{:?}",
        encodings("case_id")
    );
    assert!(encodings("record").contains(&Encoding::DELTA_BINARY_PACKED));
    assert!(encodings("county_code").contains(&Encoding::RLE_DICTIONARY));
}

#[test]
fn chinese_text_survives_gb18030_and_xlsx() {
    let (_tmp, wh) = warehouse();
    let data = generated();
    let out = ok(
        &wh,
        &["ingest", "cases", data.join("cases").to_str().unwrap()],
    );
    assert!(
        out.contains("[gb18030]") && out.contains("[xlsx]") && out.contains("[utf-8-bom]"),
        "{out}"
    );
    // legal aid comes as GB18030 CSV, notarization as XLSX: the case numbers start with 豫.
    for kind in ["legal_aid", "notarization"] {
        let id = scalar(
            &wh,
            &format!("SELECT min(case_id) FROM cases WHERE case_type = '{kind}'"),
        );
        assert!(id.starts_with("豫"), "{kind}: {id}");
    }
    // An XLSX date cell and a text date both read as dates.
    assert_ne!(
        scalar(
            &wh,
            "SELECT count(*) FROM cases WHERE case_type = 'notarization' AND closed_on IS NOT NULL"
        ),
        "0"
    );
    // The raw values of a quarantined GB18030 row keep their Chinese headers.
    let raw = scalar(
        &wh,
        "SELECT raw FROM quarantine WHERE source LIKE '%legal_aid%' LIMIT 1",
    );
    assert!(raw.contains("案件编号"), "{raw}");
    // The divisions: 中牟县 is not in the test divisions, 鹤壁's 浚县 is.
    assert_eq!(
        scalar(&wh, "SELECT name FROM counties WHERE code = '410621'"),
        "浚县"
    );
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

const HEADER: &str =
    "call_id,line,seat_city_code,caller_county_code,queued_at,answered_at,ended_at,topic,rating\n";

#[test]
fn the_later_row_wins_and_a_bad_row_never_replaces_a_good_one() {
    let (tmp, wh) = warehouse();
    let d = tmp.path().join("in");
    std::fs::create_dir_all(&d).unwrap();
    write(
        &d.join("a.csv"),
        &format!(
            "{HEADER}A,12348,410600,410621,2025-03-01 10:00:00,2025-03-01 10:00:05,2025-03-01 10:03:00,labor,3\n\
             B,12348,410600,,2025-03-01 11:00:00,,2025-03-01 11:00:30,,\n\
             C,12348,410600,,2025-03-01 11:00:00,,2025-03-01 11:00:30,debt,\n\
             C,12348,410600,,2025-03-01 11:00:00,2025-03-01 11:00:10,2025-03-01 11:00:30,debt,\n"
        ),
    );
    write(
        &d.join("b.csv"),
        &format!(
            "{HEADER}A,12348,410600,410621,2025-03-01 10:00:00,2025-03-01 10:00:05,2025-03-01 10:03:00,labor,5\n\
             B,12348,410600,,2025-03-01 11:00:00,,2025-03-01 10:00:00,,\n"
        ),
    );
    let out = ok(&wh, &["ingest", "hotline", d.to_str().unwrap()]);
    assert!(out.contains("read=4 accepted=4 quarantined=0"), "{out}");
    assert!(out.contains("read=2 accepted=1 quarantined=1"), "{out}");
    // A: b.csv (loaded last) wins. B: b.csv's row is bad, a.csv's stays. C: the later record of the file.
    let cur = query(&wh, "SELECT call_id, rating, answered_at IS NOT NULL AS answered, record FROM hotline_calls_current ORDER BY call_id");
    assert_eq!(
        cur,
        "call_id,rating,answered,record\nA,5,true,1\nB,,false,2\nC,,true,4\n"
    );
    let q = query(
        &wh,
        "SELECT record, reason, source LIKE '%b.csv' AS from_b FROM quarantine",
    );
    assert_eq!(q, "record,reason,from_b\n2,ended_before_queued,true\n");
    // Quarters are local: 2025-03-01 10:00 +08:00 is 02:00 UTC.
    assert_eq!(
        scalar(
            &wh,
            "SELECT queued_at FROM hotline_calls_current WHERE call_id = 'A'"
        ),
        "2025-03-01T02:00:00Z"
    );
}

#[test]
fn file_level_errors_reject_the_file_and_the_others_go_on() {
    let (tmp, wh) = warehouse();
    let d = tmp.path().join("in");
    std::fs::create_dir_all(&d).unwrap();
    write(
        &d.join("1-good.csv"),
        &format!("{HEADER}G1,12348,410600,,2025-03-01 11:00:00,,2025-03-01 11:00:30,,\n"),
    );
    // no ended_at column
    write(&d.join("2-missing.csv"), "call_id,line,seat_city_code,caller_county_code,queued_at,answered_at,topic,rating\nX,12348,410600,,2025-03-01 11:00:00,,,\n");
    // neither UTF-8 nor GB18030
    std::fs::write(
        d.join("3-garbled.csv"),
        b"call_id,line\n\x81\x20\xff\xfe,1\n",
    )
    .unwrap();
    write(
        &d.join("4-good.csv"),
        // a good row, and a record with too few fields (quarantined; the file goes on)
        &format!("{HEADER}G2,12345,410000,,2025-03-01 11:00:00,,2025-03-01 11:00:30,,\nG3,12348,410600\n"),
    );
    let out = plsw(&wh, &["ingest", "hotline", d.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("missing required column(s) ended_at (结束时间)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("3-garbled.csv") && stdout.contains("not valid UTF-8 nor GB18030"),
        "{stdout}"
    );
    assert_eq!(scalar(&wh, "SELECT count(*) FROM hotline_calls"), "2");
    assert_eq!(
        query(&wh, "SELECT record, reason, message FROM quarantine"),
        "record,reason,message\n2,malformed_record,\"the record has 3 fields, the header 9\"\n"
    );
    assert_eq!(
        query(
            &wh,
            "SELECT status, count(*) AS n FROM loads GROUP BY status ORDER BY status"
        ),
        "status,n\ncommitted,2\nfailed,2\n"
    );
}

#[test]
fn xlsx_with_chinese_headers_and_date_cells() {
    use rust_xlsxwriter::{ExcelDateTime, Format, Workbook};
    let (tmp, wh) = warehouse();
    let path = tmp.path().join("cases.xlsx");
    let mut wb = Workbook::new();
    let ws = wb.add_worksheet();
    // columns in another order, an unknown extra column
    for (c, h) in [
        "受理日期",
        "案件编号",
        "备注",
        "案件类型",
        "区县代码",
        "结案日期",
        "结果",
        "农民工",
        "挽回金额(元)",
    ]
    .iter()
    .enumerate()
    {
        ws.write_string(0, c as u16, *h).unwrap();
    }
    let fmt = Format::new().set_num_format("yyyy-mm-dd");
    ws.write_datetime_with_format(1, 0, ExcelDateTime::from_ymd(2025, 6, 30).unwrap(), &fmt)
        .unwrap();
    ws.write_string(1, 1, "(2025)豫0621民调第12号").unwrap();
    ws.write_string(1, 2, "备注不入库").unwrap();
    ws.write_string(1, 3, "人民调解").unwrap();
    ws.write_string(1, 4, "410621").unwrap();
    ws.write_string(1, 5, "2025/7/1").unwrap();
    ws.write_string(1, 6, "调解成功").unwrap();
    ws.write_boolean(1, 7, true).unwrap();
    ws.write_number(1, 8, 1234.5).unwrap();
    ws.write_string(2, 1, "豫坏行").unwrap();
    wb.save(&path).unwrap();
    let out = ok(&wh, &["ingest", "cases", path.to_str().unwrap()]);
    assert!(out.contains("read=2 accepted=1 quarantined=1"), "{out}");
    assert_eq!(
        query(&wh, "SELECT case_id, case_type, county_code, accepted_on, closed_on, outcome, migrant_worker, amount_recovered_yuan, record FROM cases"),
        "case_id,case_type,county_code,accepted_on,closed_on,outcome,migrant_worker,amount_recovered_yuan,record\n\
         (2025)豫0621民调第12号,mediation,410621,2025-06-30,2025-07-01,success,true,1234.50,2\n"
    );
    assert_eq!(scalar(&wh, "SELECT record FROM quarantine"), "3");
}

#[test]
fn a_snapshot_reloaded_for_its_date_is_replaced_whole_and_keyed_facts_by_key() {
    let (tmp, wh) = warehouse();
    let d = tmp.path().join("in");
    std::fs::create_dir_all(&d).unwrap();
    let head =
        "platform_id,level,division_code,name,built_on,operating,services,equipment,star_rating\n";
    write(
        &d.join("p1.csv"),
        &format!(
            "{head}PX410621,county,410621,浚县公共法律服务中心,2020-01-01,是,notarization;mediation,,\n\
             PX410622,county,410622,淇县公共法律服务中心,2020-01-01,是,,,\n"
        ),
    );
    // the same date delivered again: one platform gone, one bad row (absent, not kept from p1)
    write(
        &d.join("p2.csv"),
        &format!(
            "{head}PX410621,county,410621,浚县公共法律服务中心,2020-01-01,否,notarization,,\n\
             PX410622,county,999999,淇县公共法律服务中心,2020-01-01,是,,,\n"
        ),
    );
    let p1 = d.join("p1.csv");
    let p2 = d.join("p2.csv");
    let snapshot = |as_of: &str, file: &Path| {
        ok(
            &wh,
            &[
                "ingest",
                "platforms",
                "--as-of",
                as_of,
                file.to_str().unwrap(),
            ],
        )
    };
    snapshot("2025-03-31", &p1);
    snapshot("2025-06-30", &p1);
    snapshot("2025-03-31", &p2);
    // the same bytes for the same date: already loaded
    let again = snapshot("2025-03-31", &p2);
    assert!(again.starts_with("skipped"), "{again}");
    let s = Session::open(&wh);
    assert_eq!(
        s.query("SELECT as_of, platform_id, operating, array_to_string(services, ';') AS services FROM platforms_current ORDER BY 1, 2"),
        "as_of,platform_id,operating,services\n\
         2025-03-31,PX410621,false,notarization\n\
         2025-06-30,PX410621,true,notarization;mediation\n\
         2025-06-30,PX410622,true,\n"
    );
    // history keeps every accepted row of every load
    assert_eq!(s.scalar("SELECT count(*) FROM platforms"), "5");

    // keyed facts: a later file replaces the rows of its keys only
    let fhead = "county_code,year,quarter,source,program,amount_yuan,in_budget\n";
    write(
        &d.join("f1.csv"),
        &format!("{fhead}410621,2025,1,county_budget,legal_aid,100.00,是\n410622,2025,1,county_budget,legal_aid,200.00,是\n"),
    );
    write(
        &d.join("f2.csv"),
        &format!("{fhead}410621,2025,1,county_budget,legal_aid,150.50,是\n410622,2025,1,county_budget,legal_aid,-1,是\n"),
    );
    ok(
        &wh,
        &["ingest", "funding", d.join("f*.csv").to_str().unwrap()],
    );
    assert_eq!(
        query(
            &wh,
            "SELECT county_code, amount_yuan FROM funding_current ORDER BY 1"
        ),
        "county_code,amount_yuan\n410621,150.50\n410622,200.00\n"
    );
}

#[test]
fn paths_on_an_object_store_load_like_local_files() {
    let (_tmp, wh) = warehouse();
    let data = generated();
    let url = |rel: &str| format!("file://{}/{rel}", data.display());
    // a glob, a prefix and one object
    let out = ok(&wh, &["ingest", "cases", &url("cases/*-notarization.xlsx")]);
    assert!(out.contains("12 file(s): 12 loaded"), "{out}");
    ok(&wh, &["ingest", "funding", &url("funding/")]);
    ok(
        &wh,
        &["ingest", "population", &url("population/population.csv")],
    );
    let s = Session::open(&wh);
    assert_eq!(
        s.scalar(
            "SELECT count(DISTINCT loaded_from) FROM cases WHERE loaded_from LIKE 'file:///%'"
        ),
        "12"
    );
    assert_eq!(
        s.scalar("SELECT count(*) FROM loads WHERE status = 'committed'"),
        "15"
    );
    // the same objects again are already loaded
    let again = ok(&wh, &["ingest", "funding", &url("funding/")]);
    assert!(again.contains("2 skipped"), "{again}");
    let missing = plsw(&wh, &["ingest", "population", &url("population/nope.csv")]);
    assert!(!missing.status.success());
}

#[test]
fn generated_work_order_versions_follow_f2_with_one_bad_item_of_each_kind() {
    let data = generated();
    let divisions = plsw_store::Divisions::from_dir(&data.join("divisions")).unwrap();
    let mut reasons = Vec::new();
    let mut accepted = 0;
    let mut last: Option<(i64, String)> = None;
    let mut files: Vec<_> = std::fs::read_dir(data.join("work_orders"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for f in files {
        for line in std::fs::read_to_string(f).unwrap().lines() {
            let item: serde_json::Value = serde_json::from_str(line).unwrap();
            match plsw_ingest::work_orders::convert_item(&item, &divisions) {
                Ok(_) => accepted += 1,
                Err(r) => reasons.push(r.reason),
            }
            // ascending (updated_at, order_id), as the API serves them
            let key = (
                item["updated_at"]
                    .as_str()
                    .and_then(plsw_ingest::work_orders::rfc3339_micros)
                    .unwrap(),
                item["order_id"].as_str().unwrap_or_default().to_string(),
            );
            if let Some(prev) = &last {
                assert!(prev <= &key, "{prev:?} then {key:?}");
            }
            last = Some(key);
        }
    }
    reasons.sort();
    assert_eq!(
        reasons,
        [
            "bad_number",
            "closed_mismatch",
            "missing_required",
            "unknown_channel",
            "unknown_division"
        ]
    );
    assert!(accepted > 100, "{accepted}");
}

#[test]
fn columns_that_may_be_empty_may_be_absent() {
    let (tmp, wh) = warehouse();
    let f = tmp.path().join("short.csv");
    // no caller_county_code, answered_at, topic or rating column
    write(&f, "通话编号,热线号码,接听城市代码,进线时间,结束时间\nS1,12348,410600,2025-03-01 11:00:00,2025-03-01 11:00:30\n");
    let out = ok(&wh, &["ingest", "hotline", f.to_str().unwrap()]);
    assert!(out.contains("read=1 accepted=1 quarantined=0"), "{out}");
    assert_eq!(
        query(&wh, "SELECT call_id, topic, answered_at IS NULL AS unanswered, rating FROM hotline_calls_current"),
        "call_id,topic,unanswered,rating\nS1,other,true,\n"
    );
}
