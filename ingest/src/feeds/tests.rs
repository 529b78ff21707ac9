//! One test per quarantine reason of F1, F3 and the registries, on the real divisions.

use super::*;

fn run<'a>(feed: &Feed, values: &[&'a str]) -> Result<Row<'a>, Reject> {
    assert_eq!(
        values.len(),
        feed.table.columns.len(),
        "fixture of {}",
        feed.name
    );
    feed.convert(values.iter().copied(), &Divisions::builtin())
}

fn reason(feed: &Feed, values: &[&str]) -> String {
    match run(feed, values) {
        Ok(_) => "accepted".into(),
        Err(r) => r.reason,
    }
}

// call_id, line, seat, caller, queued, answered, ended, topic, rating
const CALL: [&str; 9] = [
    "C1",
    "12348",
    "410100",
    "410122",
    "2025-09-30 23:59:50",
    "2025-09-30 23:59:59",
    "2025-10-01 00:05:00",
    "劳动争议",
    "5",
];

fn call(changes: &[(usize, &str)]) -> Vec<&'static str> {
    let mut v = CALL.to_vec();
    for (i, s) in changes {
        v[*i] = Box::leak(s.to_string().into_boxed_str());
    }
    v
}

#[test]
fn a_good_call_is_typed() {
    let row = run(&HOTLINE, &CALL).unwrap();
    assert_eq!(row.get("topic"), &Value::Text("labor".into()));
    assert_eq!(row.get("rating"), &Value::Int(5));
    assert_eq!(row.warnings, 0);
}

#[test]
fn hotline_quarantine_reasons() {
    let cases: &[(&[(usize, &str)], &str)] = &[
        (&[(0, "")], "missing_required"),
        (&[(1, "")], "missing_required"),
        (&[(1, "110")], "unknown_line"),
        (&[(2, "")], "missing_required"),
        (&[(2, "410122")], "unknown_seat_city"),
        (&[(2, "510100")], "unknown_seat_city"),
        (&[(4, "")], "missing_required"),
        (&[(4, "2025-09-31 10:00:00")], "bad_timestamp"),
        (&[(5, "2025-09-30 25:10:00")], "bad_timestamp"),
        (&[(6, "")], "missing_required"),
        (&[(6, "2025-09-30 23:59:00")], "ended_before_queued"),
        (&[(5, "2025-09-30 23:59:49")], "answered_out_of_range"),
        (&[(5, "2025-10-01 00:05:01")], "answered_out_of_range"),
        (&[(8, "6")], "rating_out_of_range"),
        (&[(8, "0")], "rating_out_of_range"),
        (&[(8, "4.5")], "bad_number"),
        (&[(5, ""), (8, "3")], "rating_unanswered"),
    ];
    for (changes, want) in cases {
        assert_eq!(reason(&HOTLINE, &call(changes)), *want, "{changes:?}");
    }
}

#[test]
fn hotline_lenient_fields() {
    // the provincial backstop answers too
    assert!(run(&HOTLINE, &call(&[(2, "410000")])).is_ok());
    // 济源 is a city as the divisions write it
    assert!(run(&HOTLINE, &call(&[(2, "419000")])).is_ok());
    // an unknown caller county is kept as unknown, not quarantined
    let row = run(&HOTLINE, &call(&[(3, "999999")])).unwrap();
    assert_eq!(row.get("caller_county_code"), &Value::Null);
    // empty topic is other; an unknown label is other with a warning
    let row = run(&HOTLINE, &call(&[(7, "")])).unwrap();
    assert_eq!(
        (row.get("topic"), row.warnings),
        (&Value::Text("other".into()), 0)
    );
    let row = run(&HOTLINE, &call(&[(7, "赡养纠纷")])).unwrap();
    assert_eq!(
        (row.get("topic"), row.warnings),
        (&Value::Text("other".into()), 1)
    );
    // 4.0 is the integer 4; an unanswered call without rating is fine
    assert_eq!(
        run(&HOTLINE, &call(&[(8, "4.0")])).unwrap().get("rating"),
        &Value::Int(4)
    );
    assert!(run(&HOTLINE, &call(&[(5, ""), (8, "")])).is_ok());
    // answered at the very edges of [queued, ended]
    assert!(run(&HOTLINE, &call(&[(5, "2025-09-30 23:59:50")])).is_ok());
    assert!(run(&HOTLINE, &call(&[(5, "2025-10-01 00:05:00")])).is_ok());
}

// case_id, case_type, county, accepted, closed, outcome, migrant, amount
const CASE: [&str; 8] = [
    "豫0122民调2025001",
    "人民调解",
    "410122",
    "2025-03-01",
    "2025/5/2",
    "调解成功",
    "否",
    "",
];

fn case(changes: &[(usize, &str)]) -> Vec<&'static str> {
    let mut v = CASE.to_vec();
    for (i, s) in changes {
        v[*i] = Box::leak(s.to_string().into_boxed_str());
    }
    v
}

#[test]
fn case_quarantine_reasons() {
    let cases: &[(&[(usize, &str)], &str)] = &[
        (&[], "accepted"),
        (&[(0, " ")], "missing_required"),
        (&[(1, "")], "missing_required"),
        (&[(1, "仲裁")], "unknown_case_type"),
        (&[(2, "")], "missing_required"),
        (&[(2, "999999")], "unknown_county"),
        (&[(2, "4101")], "unknown_county"),
        (&[(3, "")], "missing_required"),
        (&[(3, "2025-02-30")], "bad_date"),
        (&[(4, "2025-13-01")], "bad_date"),
        (&[(4, "2025-02-28")], "closed_before_accepted"),
        (&[(5, "和解")], "unknown_outcome"),
        (&[(6, "maybe")], "bad_boolean"),
        (&[(7, "-5")], "negative_amount"),
        (&[(7, "12.345")], "bad_amount"),
        (&[(7, "一百")], "bad_amount"),
        (&[(2, "410100")], "accepted"),
    ];
    for (changes, want) in cases {
        assert_eq!(reason(&CASES, &case(changes)), *want, "{changes:?}");
    }
}

#[test]
fn an_outcome_on_a_case_that_is_not_a_mediation_is_ignored_whatever_it_holds() {
    let row = run(&CASES, &case(&[(1, "公证"), (5, "和解")])).unwrap();
    assert_eq!(row.get("outcome"), &Value::Null);
    assert_eq!(reason(&CASES, &case(&[(5, "和解")])), "unknown_outcome");
}

#[test]
fn case_outcome_only_for_mediation() {
    let row = run(&CASES, &case(&[(1, "legal_aid"), (6, "是"), (7, "3200.5")])).unwrap();
    assert_eq!(row.get("outcome"), &Value::Null);
    assert_eq!(row.get("migrant_worker"), &Value::Bool(true));
    assert_eq!(row.get("amount_recovered_yuan"), &Value::Money(320_050));
    let row = run(&CASES, &CASE).unwrap();
    assert_eq!(row.get("case_id"), &Value::Text("豫0122民调2025001".into()));
    assert_eq!(row.get("outcome"), &Value::Text("success".into()));
}

#[test]
fn records_converted_into_one_batch_come_out_as_if_converted_alone() {
    // The ingest converts every record of a file straight into the columns of its batch: a
    // record after a rejected one (whose fields up to the reject were pushed, then taken back),
    // or after one that left a column empty or ignored, must come out as if converted alone.
    let d = Divisions::builtin();
    let mut plan = CASES.plan();
    let mut columns = crate::batch::Columns::new(CASES.table);
    let records = [
        case(&[]),
        case(&[(4, "2025-02-28")]),
        case(&[(1, "公证"), (5, "调解成功"), (7, "12.5")]),
        case(&[(0, "豫0122民调2025002"), (3, "2025-04-01"), (4, "")]),
        case(&[(1, "仲裁")]),
        // The same code column text again: remembered, as accepted or as rejected.
        case(&[(1, "仲裁"), (0, "豫0122民调2025003")]),
        case(&[(1, "legal_aid"), (6, "是")]),
        case(&[(1, "legal_aid"), (6, "否")]),
        case(&[(1, "LEGAL_AID")]),
        case(&[]),
        // Dates remembered too, as read or as refused.
        case(&[(3, "2025-02-30")]),
        case(&[(3, "2025-02-30"), (0, "豫0122民调2025004")]),
        case(&[(3, "2025/3/1"), (4, "")]),
        case(&[(3, "2025/3/1"), (4, "2025-03-01")]),
        case(&[(6, "否")]),
        case(&[(6, "N")]),
    ];
    let mut accepted = Vec::new();
    for values in &records {
        let fresh = run(&CASES, values);
        let before = columns.len();
        let reused = CASES.convert_into(&mut plan, &mut columns, values.iter().copied(), &d);
        match (fresh, reused) {
            (Ok(fresh), Ok(warnings)) => {
                assert_eq!(columns.len(), before + 1);
                assert_eq!(fresh.values, columns.row(before), "{values:?}");
                assert_eq!(fresh.warnings, warnings);
                accepted.push(fresh.values);
            }
            (Err(a), Err(b)) => {
                assert_eq!(a, b, "{values:?}");
                assert_eq!(columns.len(), before, "a rejected record is taken back");
            }
            (a, b) => panic!("{values:?}: alone {a:?}, reused {b:?}"),
        }
    }
    // The records rejected between them left the accepted rows as they were.
    assert!(accepted.len() >= 8 && accepted.len() < records.len());
    for (r, values) in accepted.iter().enumerate() {
        assert_eq!(&columns.row(r), values);
    }
}

// platform_id, level, division_code, name, built_on, operating, services, equipment, star_rating
const PLATFORM: [&str; 9] = [
    "P1",
    "township",
    "410122101",
    "中牟县城关镇公共法律服务工作站",
    "2020-06-01",
    "是",
    "mediation;legal_aid",
    "cctv;id_reader",
    "4",
];

#[test]
fn platform_quarantine_reasons() {
    let cases: &[(&[(usize, &str)], &str)] = &[
        (&[], "accepted"),
        (&[(0, "")], "missing_required"),
        (&[(1, "province")], "unknown_level"),
        (&[(2, "410122199")], "unknown_division"),
        (&[(2, "410122")], "level_mismatch"),
        (&[(3, "")], "missing_required"),
        (&[(4, "2020-06-31")], "bad_date"),
        (&[(5, "运行中")], "bad_boolean"),
        (&[(6, "mediation;tarot")], "unknown_services"),
        (&[(7, "cctv;drone")], "unknown_equipment"),
        (&[(8, "6")], "star_rating_out_of_range"),
        (&[(8, "x")], "bad_number"),
    ];
    for (changes, want) in cases {
        let mut v = PLATFORM.to_vec();
        for (i, s) in *changes {
            v[*i] = s;
        }
        assert_eq!(reason(&PLATFORMS, &v), *want, "{changes:?}");
    }
    let mut v = PLATFORM.to_vec();
    v[4] = "";
    v[6] = "公证；人民调解";
    let row = run(&PLATFORMS, &v).unwrap();
    assert_eq!(row.get("built_on"), &Value::Null);
    assert_eq!(
        row.get("services"),
        &Value::List(vec!["notarization", "mediation"])
    );
}

// staff_id, role, full_time, division_code, active_from, active_to
const STAFF_ROW: [&str; 6] = [
    "S1",
    "village_legal_adviser",
    "N",
    "410122101205",
    "2021-01-01",
    "",
];

#[test]
fn staff_quarantine_reasons() {
    let cases: &[(&[(usize, &str)], &str)] = &[
        (&[], "accepted"),
        (&[(0, "")], "missing_required"),
        (&[(1, "judge")], "unknown_role"),
        (&[(2, "sometimes")], "bad_boolean"),
        (&[(3, "410000")], "unknown_division"),
        (&[(3, "410122101999")], "unknown_division"),
        (&[(4, "")], "missing_required"),
        (&[(5, "2020-12-31")], "active_to_before_from"),
        (&[(3, "410100")], "accepted"),
    ];
    for (changes, want) in cases {
        let mut v = STAFF_ROW.to_vec();
        for (i, s) in *changes {
            v[*i] = s;
        }
        assert_eq!(reason(&STAFF, &v), *want, "{changes:?}");
    }
}

#[test]
fn funding_and_population_quarantine_reasons() {
    // county_code, year, quarter, source, program, amount_yuan, in_budget
    let f = [
        "410122",
        "2025",
        "3",
        "county_budget",
        "legal_aid",
        "120000.00",
        "是",
    ];
    let cases: &[(&[(usize, &str)], &str)] = &[
        (&[], "accepted"),
        (&[(0, "410100")], "unknown_county"),
        (&[(1, "20x5")], "bad_number"),
        (&[(1, "1800")], "bad_year"),
        (&[(2, "5")], "bad_quarter"),
        (&[(3, "lottery")], "unknown_source"),
        (&[(4, "parade")], "unknown_program"),
        (&[(5, "")], "missing_required"),
        (&[(5, "-1")], "negative_amount"),
    ];
    for (changes, want) in cases {
        let mut v = f.to_vec();
        for (i, s) in *changes {
            v[*i] = s;
        }
        assert_eq!(reason(&FUNDING, &v), *want, "{changes:?}");
    }
    assert_eq!(
        reason(&POPULATION, &["410122", "2025", "1200000"]),
        "accepted"
    );
    assert_eq!(
        reason(&POPULATION, &["410199", "2025", "1200000"]),
        "unknown_county"
    );
    assert_eq!(
        reason(&POPULATION, &["410122", "2025", "-3"]),
        "negative_population"
    );
    assert_eq!(
        reason(&POPULATION, &["410122", "2025", ""]),
        "missing_required"
    );
}

#[test]
fn every_feeds_rules_resolve_to_earlier_columns() {
    // plan() panics on a rule naming an unknown column, or an `ignored_unless` whose other
    // column comes later (a reused row would then read the previous record's value).
    for feed in FILE_FEEDS {
        let plan = feed.plan();
        assert_eq!(
            plan.columns.len(),
            feed.table.columns.len(),
            "{}",
            feed.name
        );
    }
}
