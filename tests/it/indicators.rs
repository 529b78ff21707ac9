//! Indicators on a hand-made fixture (`tests/fixtures/indicators/`) whose every expected value
//! is worked out by hand in `expected.slt`, and on the generated data.

use std::path::{Path, PathBuf};

use plsw::upstream::Upstream;

use crate::common::*;

/// Every indicator id of `indicators.md`, copied from the spec.
const SPEC_IDS: [&str; 45] = [
    "hotline.inbound",
    "hotline.answered",
    "hotline.short_abandoned",
    "hotline.answer_rate",
    "hotline.evaluation_rate",
    "hotline.satisfaction_rate",
    "hotline.service_level_20s",
    "hotline.avg_wait_s",
    "hotline.avg_talk_s",
    "hotline.calls_per_10k",
    "workorders.created",
    "workorders.green_channel",
    "workorders.closed",
    "workorders.on_time_rate",
    "workorders.median_close_hours",
    "workorders.backlog",
    "workorders.satisfaction_rate",
    "cases.accepted.mediation",
    "cases.accepted.notarization",
    "cases.accepted.legal_aid",
    "cases.accepted.judicial_appraisal",
    "cases.mediation_success_rate",
    "cases.migrant_legal_aid",
    "cases.wage_recovered_yuan",
    "cases.per_10k",
    "coverage.county_center",
    "coverage.city_center",
    "coverage.township_build_rate",
    "coverage.township_operating_rate",
    "coverage.village_build_rate",
    "coverage.village_adviser_rate",
    "coverage.notary_settled",
    "coverage.equipment_complete",
    "staff.mediators",
    "staff.full_time_mediator_share",
    "staff.lawyers_per_10k",
    "staff.village_advisers",
    "staff.notary_blank",
    "funding.total_yuan",
    "funding.per_capita_yuan",
    "funding.in_budget_share",
    "funding.legal_aid_per_case_yuan",
    "balance.lawyers_per_10k_cv",
    "balance.cases_per_10k_cv",
    "balance.urban_rural_lawyer_ratio",
];

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/indicators")
}

/// A warehouse with the fixture loaded (files ingested, work orders pulled) and transformed.
fn fixture_warehouse() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let wh = tmp.path().join("wh");
    let f = fixture();
    let p = |name: &str| f.join(name).to_str().unwrap().to_string();
    ok(&wh, &["seeds", "load", &p("divisions")]);
    ok(&wh, &["ingest", "hotline", &p("calls.csv")]);
    ok(&wh, &["ingest", "cases", &p("cases.csv")]);
    ok(&wh, &["ingest", "population", &p("population.csv")]);
    ok(&wh, &["ingest", "funding", &p("funding.csv")]);
    for feed in ["platforms", "staff"] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(f.join(feed))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for file in files {
            let as_of = file.file_stem().unwrap().to_str().unwrap().to_string();
            ok(
                &wh,
                &["ingest", feed, "--as-of", &as_of, file.to_str().unwrap()],
            );
        }
    }
    let up = Upstream::from_dir(&f.join("work_orders")).unwrap();
    let server = up.spawn();
    ok(&wh, &["pull", "work-orders", "--url", &server.url()]);
    drop(server);
    ok(&wh, &["transform"]);
    (tmp, wh)
}

/// One `query` block of an `.slt` file: a title, SQL, and the expected rows as CSV lines.
struct Case {
    line: usize,
    title: String,
    sql: String,
    expected: Vec<String>,
}

/// Reads `query TITLE`, the SQL, `----`, the rows, a blank line; `#` starts a comment.
fn parse_slt(text: &str) -> Vec<Case> {
    let mut cases = Vec::new();
    let mut lines = text.lines().enumerate().peekable();
    while let Some((i, line)) = lines.next() {
        let Some(title) = line.strip_prefix("query ") else {
            assert!(
                line.trim().is_empty() || line.starts_with('#'),
                "line {}: expected `query TITLE`, found {line:?}",
                i + 1
            );
            continue;
        };
        let mut sql = String::new();
        for (_, l) in lines.by_ref() {
            if l == "----" {
                break;
            }
            sql.push_str(l);
            sql.push('\n');
        }
        let mut expected = Vec::new();
        while let Some((_, l)) = lines.peek() {
            if l.trim().is_empty() {
                break;
            }
            if !l.starts_with('#') {
                expected.push(l.to_string());
            }
            lines.next();
        }
        cases.push(Case {
            line: i + 1,
            title: title.to_string(),
            sql,
            expected,
        });
    }
    cases
}

#[test]
fn hand_checked_values_of_the_fixture() {
    let (_tmp, wh) = fixture_warehouse();
    let text = std::fs::read_to_string(fixture().join("expected.slt")).unwrap();
    let cases = parse_slt(&text);
    assert!(cases.len() >= 5);
    let s = Session::open(&wh);
    let mut failures = Vec::new();
    for c in &cases {
        let got: Vec<String> = s
            .query(&c.sql)
            .lines()
            .skip(1)
            .map(str::to_string)
            .collect();
        if got != c.expected {
            failures.push(format!(
                "expected.slt:{} {}\n  expected:\n    {}\n  got:\n    {}",
                c.line,
                c.title,
                c.expected.join("\n    "),
                got.join("\n    ")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn every_indicator_has_every_quarter_and_applicable_scope_on_generated_data() {
    let (_tmp, wh) = warehouse();
    let data = generated();
    ingest_all(&wh, &data);
    let up = Upstream::from_dir(&data.join("work_orders")).unwrap();
    let server = up.spawn();
    ok(&wh, &["pull", "work-orders", "--url", &server.url()]);
    drop(server);
    let out = ok(&wh, &["transform"]);
    assert!(out.contains("indicators:"), "{out}");
    let s = Session::open(&wh);
    let quarters: usize = s
        .scalar("SELECT count(*) FROM (SELECT DISTINCT quarter FROM indicators)")
        .parse()
        .unwrap();
    assert_eq!(quarters, 4, "2025Q1-2025Q4");
    let counties: usize = s.scalar("SELECT count(*) FROM counties").parse().unwrap();
    let cities: usize = s.scalar("SELECT count(*) FROM cities").parse().unwrap();
    // Per quarter: city+province indicators, county+city+province indicators.
    let models = ok(&wh, &["models"]);
    let ids: Vec<&str> = models
        .lines()
        .filter_map(|l| l.trim().strip_prefix("computes: "))
        .flat_map(|l| l.split(", "))
        .collect();
    // The spec's table of scopes: these at city and province scope, the rest at all three.
    let city_and_province = ids
        .iter()
        .filter(|i| {
            (i.starts_with("hotline.") && **i != "hotline.calls_per_10k")
                || **i == "coverage.city_center"
                || i.starts_with("balance.")
        })
        .count();
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    let mut spec = SPEC_IDS.to_vec();
    spec.sort_unstable();
    assert_eq!(
        sorted, spec,
        "the models compute exactly the spec's indicator ids"
    );
    let all_scopes = ids.len() - city_and_province;
    let expected =
        quarters * (city_and_province * (cities + 1) + all_scopes * (counties + cities + 1));
    assert_eq!(
        s.scalar("SELECT count(*) FROM indicators"),
        expected.to_string()
    );
    // Rates stay within [0, 1]; numerators never exceed denominators.
    assert_eq!(
        s.scalar(
            "SELECT count(*) FROM indicators WHERE indicator LIKE '%rate%' AND (value < 0 OR value > 1 OR numerator > denominator)"
        ),
        "0"
    );
}
