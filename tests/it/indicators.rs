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
pub(crate) fn fixture_warehouse() -> (tempfile::TempDir, PathBuf) {
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
    assert!(out.contains("full run (first run)"), "{out}");
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

/// `indicators` as CSV lines in key order.
fn indicator_rows(wh: &Path) -> Vec<String> {
    query(
        wh,
        "SELECT quarter, scope, code, indicator, value, numerator, denominator, target, meets_target
         FROM indicators ORDER BY quarter, scope, code, indicator",
    )
    .lines()
    .skip(1)
    .map(str::to_string)
    .collect()
}

/// Equal field by field; numbers within a relative 1e-12 (sums of doubles may be added in
/// another order by parallel aggregation).
fn assert_same_indicators(a: &[String], b: &[String]) {
    assert_eq!(a.len(), b.len(), "row counts differ");
    for (x, y) in a.iter().zip(b) {
        let (fx, fy): (Vec<&str>, Vec<&str>) = (x.split(',').collect(), y.split(',').collect());
        let same = fx.len() == fy.len()
            && fx
                .iter()
                .zip(&fy)
                .all(|(p, q)| match (p.parse::<f64>(), q.parse::<f64>()) {
                    (Ok(p), Ok(q)) => (p - q).abs() <= 1e-12 * p.abs().max(q.abs()).max(1.0),
                    _ => p == q,
                });
        assert!(same, "incremental:\n  {x}\nfull:\n  {y}");
    }
}

fn transform(wh: &Path, extra: &[&str]) -> String {
    let mut args = vec!["transform"];
    args.extend_from_slice(extra);
    let out = ok(wh, &args);
    // The summary line and what follows it (the models left alone).
    let lines: Vec<&str> = out.lines().collect();
    let at = lines
        .iter()
        .position(|l| {
            l.starts_with("full run")
                || l.starts_with("incremental run")
                || l.starts_with("indicators are")
        })
        .unwrap_or(lines.len().saturating_sub(1));
    lines[at..].join("\n")
}

/// A re-export of a day's UTF-8 call file (an even month) with its first call answered by the
/// other city of the generated data.
fn reexport_moving_one_call(data: &Path, day: &str, dir: &Path) -> PathBuf {
    let original = std::fs::read_to_string(data.join(format!("hotline/calls-{day}.csv"))).unwrap();
    let mut lines: Vec<String> = original.lines().map(str::to_string).collect();
    let mut fields: Vec<String> = lines[1].split(',').map(str::to_string).collect();
    fields[2] = if fields[2] == "410600" {
        "419000".into()
    } else {
        "410600".into()
    };
    lines[1] = fields.join(",");
    let reexport = dir.join(format!("calls-{day}-reexport.csv"));
    std::fs::write(&reexport, lines.join("\n") + "\n").unwrap();
    reexport
}

/// The models an incremental run says it left alone.
fn left_alone(out: &str) -> Vec<String> {
    out.lines()
        .find_map(|l| {
            l.strip_prefix("left alone (the new loads reach none of them, and the quarters stay): ")
        })
        .unwrap_or_else(|| panic!("no models left alone: {out}"))
        .split(", ")
        .map(str::to_string)
        .collect()
}

#[test]
fn incremental_runs_in_several_steps_equal_a_full_run() {
    let (tmp, wh) = warehouse();
    let data = generated();
    let d = |p: &str| data.join(p).to_str().unwrap().to_string();
    // 1. The first half-year of calls and cases, the population, the first snapshots.
    ok(
        &wh,
        &["ingest", "hotline", &d("hotline/calls-2025-0[1-6]-*.csv")],
    );
    ok(&wh, &["ingest", "cases", &d("cases/2025-0[1-6]-*")]);
    ok(&wh, &["ingest", "population", &d("population")]);
    ok(
        &wh,
        &[
            "ingest",
            "platforms",
            "--as-of",
            "2025-03-31",
            &d("platforms/2025-03-31.csv"),
        ],
    );
    ok(
        &wh,
        &[
            "ingest",
            "staff",
            "--as-of",
            "2025-03-31",
            &d("staff/2025-03-31.csv"),
        ],
    );
    assert_eq!(assert_states_agree(&wh), 0, "no state before the first run");
    let first = transform(&wh, &[]);
    assert!(first.starts_with("full run (first run)"), "{first}");
    // 2. The second half-year of calls: from 2025Q3 on.
    ok(
        &wh,
        &[
            "ingest",
            "hotline",
            &d("hotline/calls-2025-0[7-9]-*.csv"),
            &d("hotline/calls-2025-1*.csv"),
        ],
    );
    // The states of the last run, and the loads since: read together, as ranked from history
    // (no work orders or funding yet: five feeds have a state).
    assert_eq!(assert_states_agree(&wh), 5);
    let second = transform(&wh, &[]);
    assert!(
        second.starts_with("incremental run (new loads: hotline from 2025Q3)"),
        "{second}"
    );
    assert!(second.contains("recomputed 2025Q3–2025Q4"), "{second}");
    // 3. The work orders, the rest of the cases, funding and later snapshots.
    let up = Upstream::from_dir(&data.join("work_orders")).unwrap();
    let server = up.spawn();
    ok(&wh, &["pull", "work-orders", "--url", &server.url()]);
    drop(server);
    ok(
        &wh,
        &[
            "ingest",
            "cases",
            &d("cases/2025-0[7-9]-*"),
            &d("cases/2025-1*"),
        ],
    );
    ok(&wh, &["ingest", "funding", &d("funding")]);
    for date in ["2025-06-30", "2025-09-30", "2025-12-31"] {
        ok(
            &wh,
            &[
                "ingest",
                "platforms",
                "--as-of",
                date,
                &d(&format!("platforms/{date}.csv")),
            ],
        );
        ok(
            &wh,
            &[
                "ingest",
                "staff",
                "--as-of",
                date,
                &d(&format!("staff/{date}.csv")),
            ],
        );
    }
    assert_eq!(assert_states_agree(&wh), 5);
    let third = transform(&wh, &[]);
    assert!(third.starts_with("incremental run (new loads: "), "{third}");
    assert!(third.contains("work_orders from 2025Q1"), "{third}");
    // 4. A re-export of a February file with one call moved to the other city: 2025Q1 again.
    let reexport = reexport_moving_one_call(&data, "2025-02-03", tmp.path());
    ok(&wh, &["ingest", "hotline", reexport.to_str().unwrap()]);
    assert_eq!(assert_states_agree(&wh), 7);
    let fourth = transform(&wh, &[]);
    assert!(
        fourth.starts_with("incremental run (new loads: hotline from 2025Q1)"),
        "{fourth}"
    );
    // 5. A re-export of a June file with one call answered by the other city: the quarters
    //    cannot move (2025Q2 is inside 2025Q1–2025Q4 and the call was not at an edge), so only
    //    the hotline's models run and only its indicators are replaced.
    let reexport = reexport_moving_one_call(&data, "2025-06-10", tmp.path());
    ok(&wh, &["ingest", "hotline", reexport.to_str().unwrap()]);
    assert_eq!(assert_states_agree(&wh), 7);
    let fifth = transform(&wh, &[]);
    assert!(
        fifth.starts_with("incremental run (new loads: hotline from 2025Q2)"),
        "{fifth}"
    );
    let left = left_alone(&fifth);
    for m in [
        "stg_cases",
        "stg_work_orders",
        "stg_staff_q",
        "snapshots_q",
        "coverage",
        "staffing",
    ] {
        assert!(left.iter().any(|l| l == m), "{m} left alone: {left:?}");
    }
    for m in [
        "stg_hotline",
        "hotline",
        "grid",
        "population_q",
        "indicators",
    ] {
        assert!(!left.iter().any(|l| l == m), "{m} must run: {left:?}");
    }
    // 6. The staff registry of 2025-09-30 reloaded with June's content (a correction): a
    //    snapshot adds no quarter, so only the models reading staff run; `balance` needs the
    //    `cases` mart as an input, which runs but keeps its rows.
    ok(
        &wh,
        &[
            "ingest",
            "staff",
            "--as-of",
            "2025-09-30",
            &d("staff/2025-06-30.csv"),
        ],
    );
    assert_eq!(assert_states_agree(&wh), 7);
    let sixth = transform(&wh, &[]);
    assert!(
        sixth.starts_with("incremental run (new loads: staff from 2025Q3)"),
        "{sixth}"
    );
    let left = left_alone(&sixth);
    for m in [
        "stg_hotline",
        "stg_work_orders",
        "hotline",
        "work_orders",
        "funding",
    ] {
        assert!(left.iter().any(|l| l == m), "{m} left alone: {left:?}");
    }
    for m in [
        "stg_staff_q",
        "snapshots_q",
        "coverage",
        "staffing",
        "balance",
        "cases",
    ] {
        assert!(!left.iter().any(|l| l == m), "{m} must run: {left:?}");
    }
    // 7. Nothing new: nothing to do, nothing committed.
    assert_eq!(
        transform(&wh, &[]),
        "indicators are up to date: no committed load since the last run"
    );
    let incremental = indicator_rows(&wh);
    // A damaged state is passed by (the views rank the history) and written again by the next
    // transform, which has nothing else to do.
    let cases_states = std::fs::read_dir(wh.join(plsw_store::STATES_DIR))
        .unwrap()
        .flatten()
        .find(|e| e.file_name().to_string_lossy().starts_with("cases-"))
        .unwrap()
        .path();
    let newest = std::fs::read_dir(&cases_states)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .max()
        .unwrap();
    std::fs::write(&newest, b"not parquet").unwrap();
    assert_eq!(assert_states_agree(&wh), 7);
    let out = ok(&wh, &["transform"]);
    assert!(out.contains("state    cases"), "{out}");
    let rewritten = std::fs::read_dir(&cases_states)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .max()
        .unwrap();
    assert!(
        std::fs::read(&rewritten).unwrap().starts_with(b"PAR1"),
        "{} rewritten",
        rewritten.display()
    );
    assert_eq!(assert_states_agree(&wh), 7);

    let full = tmp.path().join("full");
    copy_dir(&wh, &full);
    let out = transform(&full, &["--full"]);
    assert!(out.starts_with("full run (asked for (--full))"), "{out}");
    assert_same_indicators(&incremental, &indicator_rows(&full));
    // And the incremental steps did change something at each step: the counts grew.
    assert_eq!(
        scalar(&wh, "SELECT count(*) FROM transforms"),
        "6",
        "six committed runs"
    );
}
