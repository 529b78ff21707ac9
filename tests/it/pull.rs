//! `plsw pull work-orders` against the API stand-in: every fault of the server ends with exactly
//! the distinct versions it holds; pulls are incremental and exactly once, also under `kill -9`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use plsw::upstream::{Fault, FaultPlan, Item, Upstream};
use plsw_ingest::feeds::Value;
use plsw_store::Divisions;

use crate::common::*;

/// The generated versions, served by a fresh stand-in.
fn upstream() -> Upstream {
    Upstream::from_dir(&generated().join("work_orders")).expect("generated work orders")
}

fn divisions() -> Divisions {
    Divisions::from_dir(&generated().join("divisions")).expect("test divisions")
}

/// Runs `plsw pull work-orders` with small pages and fast retries, plus `extra` flags.
fn pull(wh: &Path, url: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "pull",
        "work-orders",
        "--url",
        url,
        "--page-size",
        "25",
        "--retry-base",
        "10ms",
    ];
    args.extend_from_slice(extra);
    plsw(wh, &args)
}

fn pull_ok(wh: &Path, url: &str, extra: &[&str]) -> String {
    let out = pull(wh, url, extra);
    assert!(
        out.status.success(),
        "pull failed ({:?}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// One line per version: `order_id|updated_at µs|status|green_channel|rating|closed_at µs`.
const VERSION_SQL: &str =
    "SELECT concat_ws('|', order_id, CAST(CAST(updated_at AS BIGINT) AS VARCHAR), status,
        CAST(green_channel AS VARCHAR), COALESCE(CAST(rating AS VARCHAR), ''),
        COALESCE(CAST(CAST(closed_at AS BIGINT) AS VARCHAR), '')) AS v";

/// The versions the warehouse holds: every stored row, and the current content per version.
fn stored(wh: &Path) -> (Vec<String>, Vec<String>) {
    let s = Session::open(wh);
    let lines = |view: &str| -> Vec<String> {
        s.query(&format!("{VERSION_SQL} FROM {view} ORDER BY v"))
            .lines()
            .skip(1)
            .map(str::to_string)
            .collect()
    };
    (
        lines("work_order_versions"),
        lines("work_order_versions_current"),
    )
}

/// The distinct valid versions the upstream holds now, as [`stored`] renders them.
fn expected(up: &Upstream) -> Vec<String> {
    let d = divisions();
    let mut out: Vec<String> = up
        .items()
        .iter()
        .filter_map(|it| {
            let v: serde_json::Value = serde_json::from_str(&it.json).unwrap();
            let row = plsw_ingest::work_orders::convert_item(&v, &d).ok()?;
            let f = |c: &str| match row.get(c) {
                Value::Null => String::new(),
                Value::Text(s) => s.to_string(),
                Value::Ts(t) | Value::Int(t) => t.to_string(),
                Value::Bool(b) => b.to_string(),
                other => panic!("unexpected {other:?}"),
            };
            Some(
                [
                    "order_id",
                    "updated_at",
                    "status",
                    "green_channel",
                    "rating",
                    "closed_at",
                ]
                .map(f)
                .join("|"),
            )
        })
        .collect();
    out.sort();
    out
}

/// The bad items quarantined, with their reasons (each once).
fn quarantined(wh: &Path) -> String {
    query(
        wh,
        "SELECT reason, raw FROM quarantine WHERE feed = 'work_orders' ORDER BY reason, raw",
    )
}

/// Asserts the warehouse holds each distinct valid version of the upstream exactly once, with
/// its current content, and each of the five bad items once.
fn assert_exactly_upstream(wh: &Path, up: &Upstream) {
    let want = expected(up);
    let (history, current) = stored(wh);
    assert!(want.len() > 100, "the test data has versions");
    assert_eq!(current, want, "current versions = the upstream's");
    assert_eq!(history, want, "each version stored once");
    let q = quarantined(wh);
    assert_eq!(
        q.lines().count(),
        1 + 5,
        "the five bad items, once each:\n{q}"
    );
}

fn count(text: &str, key: &str) -> i64 {
    let at = text
        .find(&format!(" {key}="))
        .unwrap_or_else(|| panic!("{key}= in {text}"));
    text[at + key.len() + 2..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn a_pull_stores_every_distinct_version_once_and_a_second_pull_changes_nothing() {
    let (_tmp, wh) = warehouse();
    let up = upstream();
    let server = up.spawn();
    let out = pull_ok(&wh, &server.url(), &[]);
    assert_exactly_upstream(&wh, &up);
    let n = up.items().len() as i64;
    assert_eq!(count(&out, "read"), n, "{out}");
    assert_eq!(count(&out, "accepted") + count(&out, "quarantined"), n);
    assert_eq!(count(&out, "quarantined"), 5);
    assert_eq!(count(&out, "repeated"), 0);
    // The loads rows carry the counts and the watermark: the greatest updated_at served.
    let max_ts = up.items().iter().map(|i| i.updated_at).max().unwrap();
    assert_eq!(
        scalar(
            &wh,
            "SELECT concat_ws('/', sum(rows_read), sum(rows_accepted) + sum(rows_quarantined), CAST(max(CAST(watermark AS BIGINT)) AS VARCHAR))
             FROM loads WHERE feed = 'work_orders'"
        ),
        format!("{n}/{n}/{max_ts}")
    );

    let before = dump(&wh);
    let again = pull_ok(&wh, &server.url(), &[]);
    assert!(again.contains("nothing new, nothing committed"), "{again}");
    assert_eq!(dump(&wh), before, "pulling twice changes nothing");
}

#[test]
fn a_later_pull_stores_exactly_the_new_versions_including_one_at_the_watermark() {
    let (_tmp, wh) = warehouse();
    let up = upstream();
    let server = up.spawn();
    pull_ok(&wh, &server.url(), &[]);
    let (history_before, _) = stored(&wh);
    let max_ts = up.items().iter().map(|i| i.updated_at).max().unwrap();
    let template: serde_json::Value = up
        .items()
        .iter()
        .rev()
        .map(|i| serde_json::from_str::<serde_json::Value>(&i.json).unwrap())
        .find(|v| v["status"] == "submitted" && v["platform_level"] == "county")
        .expect("a submitted county order");
    let at = |id: &str, micros: i64| {
        let mut v = template.clone();
        v["order_id"] = id.into();
        v["updated_at"] = plsw_ingest::pull::rfc3339_utc(micros).into();
        Item::from_json(&v)
    };
    // "WO0" sorts before every generated id: at the watermark's instant, it is served before
    // the versions already stored there.
    let new = vec![
        at("WO0-AT-WATERMARK", max_ts),
        at("WO9-LATER-1", max_ts + 1),
        at("WO9-LATER-2", max_ts + 60_000_000),
    ];
    up.upsert(new.clone());
    let out = pull_ok(&wh, &server.url(), &[]);
    assert_eq!(count(&out, "stored"), 3, "{out}");
    assert_exactly_upstream(&wh, &up);
    let (history, _) = stored(&wh);
    assert_eq!(history.len(), history_before.len() + 3);
    for it in &new {
        assert!(history
            .iter()
            .any(|l| l.starts_with(&format!("{}|", it.order_id))));
    }
    // Resumed from the watermark, inclusive: the first request asked for updated_at >= it.
    let log = up.log();
    let first_of_second_pull = log
        .iter()
        .rev()
        .find(|s| s.cursor.is_none())
        .expect("a first page");
    assert!(first_of_second_pull.items >= 1);
}

/// Pulls from a stand-in with `plan`, and checks the warehouse ends with exactly its versions.
fn pull_with_faults(plan: FaultPlan, extra: &[&str]) -> (Upstream, String) {
    pull_with_faults_then(plan, extra, true)
}

fn pull_with_faults_then(
    plan: FaultPlan,
    extra: &[&str],
    second_pull_changes_nothing: bool,
) -> (Upstream, String) {
    let (_tmp, wh) = warehouse();
    let up = upstream();
    up.set_faults(plan);
    let server = up.spawn();
    let out = pull_ok(&wh, &server.url(), extra);
    assert_exactly_upstream(&wh, &up);
    if second_pull_changes_nothing {
        // A second pull, with the faults still on, changes nothing.
        let before = dump(&wh);
        pull_ok(&wh, &server.url(), extra);
        assert_eq!(dump(&wh), before);
    }
    drop(server);
    (up, out)
}

#[test]
fn fault_429_waits_as_long_as_retry_after_says() {
    let (up, out) = pull_with_faults(
        FaultPlan::none().times(3, 2, Fault::TooMany { retry_after: 1 }),
        &[],
    );
    assert!(count(&out, "retries") >= 2, "{out}");
    let log = up.log();
    let mut seen = 0;
    for (i, s) in log.iter().enumerate() {
        if s.status == 429 {
            seen += 1;
            let next = &log[i + 1];
            assert!(
                next.at.duration_since(s.at) >= Duration::from_millis(950),
                "the retry came {:?} after a 429 with Retry-After: 1",
                next.at.duration_since(s.at)
            );
        }
    }
    assert_eq!(seen, 2);
}

#[test]
fn fault_500_and_503_are_retried() {
    let (up, out) = pull_with_faults(
        FaultPlan::none()
            .every(4, Fault::Status(503))
            .every(7, Fault::Status(500)),
        &[],
    );
    assert!(count(&out, "retries") >= 3, "{out}");
    assert!(up.log().iter().any(|s| s.status == 500));
    assert!(up.log().iter().any(|s| s.status == 503));
}

#[test]
fn fault_the_same_page_served_twice() {
    let (up, out) = pull_with_faults(FaultPlan::none().every(3, Fault::RepeatPage), &[]);
    assert!(count(&out, "repeated") >= 25, "{out}");
    assert!(up.log().iter().any(|s| s.fault == Some(Fault::RepeatPage)));
}

#[test]
fn fault_versions_repeated_across_pages() {
    let (_, out) = pull_with_faults(FaultPlan::none().every(2, Fault::Overlap(5)), &[]);
    assert!(count(&out, "repeated") >= 5, "{out}");
}

#[test]
fn fault_a_connection_dropped_mid_body() {
    let (up, out) = pull_with_faults(FaultPlan::none().every(3, Fault::DropMidBody), &[]);
    assert!(count(&out, "retries") >= 1, "{out}");
    assert!(up.log().iter().any(|s| s.fault == Some(Fault::DropMidBody)));
}

#[test]
fn fault_a_stalled_response_times_out_and_is_retried() {
    let (_, out) = pull_with_faults(
        FaultPlan::none().times(2, 2, Fault::Stall(Duration::from_secs(3))),
        &["--read-timeout", "300ms"],
    );
    assert!(count(&out, "retries") >= 2, "{out}");
}

#[test]
fn fault_a_version_re_sent_with_changed_content_replaces_it() {
    let up_before = upstream().items();
    let (up, out) =
        pull_with_faults_then(FaultPlan::none().every(3, Fault::ResendChanged), &[], false);
    // Each changed content is a distinct item.
    assert!(count(&out, "read") > up.items().len() as i64, "{out}");
    let changed = up
        .items()
        .iter()
        .zip(&up_before)
        .filter(|(a, b)| a.json != b.json)
        .count();
    assert!(changed >= 2, "the stand-in changed some versions");
}

#[test]
fn a_changed_version_in_a_later_pull_replaces_the_stored_content() {
    let (_tmp, wh) = warehouse();
    let up = upstream();
    let server = up.spawn();
    pull_ok(&wh, &server.url(), &[]);
    // Upstream corrects the last version (same order, same instant) after it was pulled.
    let last = up.items().last().unwrap().clone();
    let mut v: serde_json::Value = serde_json::from_str(&last.json).unwrap();
    v["green_channel"] = (!v["green_channel"].as_bool().unwrap()).into();
    up.upsert(vec![Item::from_json(&v)]);
    let out = pull_ok(&wh, &server.url(), &[]);
    assert_eq!(count(&out, "stored"), 1, "{out}");
    let (history, current) = stored(&wh);
    assert_eq!(current, expected(&up));
    assert_eq!(
        history.len(),
        current.len() + 1,
        "the earlier content stays as history"
    );
}

#[test]
fn when_retries_run_out_the_pull_fails_and_the_watermark_stays_with_the_committed_data() {
    let (_tmp, wh) = warehouse();
    let up = upstream();
    // Ten pages succeed (two commits of 100 items), then the server is down.
    up.set_faults(FaultPlan::none().after(10, Fault::Status(503)));
    let server = up.spawn();
    let out = pull(
        &wh,
        &server.url(),
        &["--commit-every", "100", "--max-retries", "3"],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("giving up after 4 attempts: HTTP 503"),
        "{err}"
    );
    let watermark: i64 = scalar(
        &wh,
        "SELECT CAST(max(CAST(watermark AS BIGINT)) AS VARCHAR) FROM loads WHERE feed = 'work_orders'",
    )
    .parse()
    .unwrap();
    let shown = plsw_ingest::pull::rfc3339_utc(watermark);
    assert!(
        err.contains(&format!("the watermark stays at {shown}")),
        "{err}"
    );
    // Two groups of 100 committed (pages 1-8); pages 9 and 10 were not.
    let (history, _) = stored(&wh);
    let bad = quarantined(&wh).lines().count() - 1;
    assert_eq!(history.len() + bad, 200);
    assert_eq!(
        scalar(
            &wh,
            "SELECT CAST(sum(rows_read) AS VARCHAR) FROM loads WHERE feed = 'work_orders'"
        ),
        "200"
    );
    assert!(history
        .iter()
        .all(|l| l.split('|').nth(1).unwrap().parse::<i64>().unwrap() <= watermark));
    // The server comes back: the rerun completes exactly.
    up.set_faults(FaultPlan::none());
    pull_ok(&wh, &server.url(), &[]);
    assert_exactly_upstream(&wh, &up);
}

#[test]
fn the_token_is_sent_from_the_environment_or_plsw_toml_and_never_shown() {
    let (tmp, wh) = warehouse();
    let up = upstream().with_token("tok-3f9a7c");
    let server = up.spawn();
    // Without a token, or with a wrong one: a clear error at once, no retries.
    let out = pull(&wh, &server.url(), &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(err.contains("refused the token (HTTP 401"), "{err}");
    assert_eq!(up.log().len(), 1);
    let out = Command::new(BIN)
        .args([
            "pull",
            "work-orders",
            "--url",
            &server.url(),
            "--token-env",
            "WO_TOKEN",
        ])
        .env("PLSW_WAREHOUSE", &wh)
        .env("WO_TOKEN", "wrong-7d1e")
        .env("PLSW_LOG", "debug")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !all.contains("wrong-7d1e"),
        "the token appears in the output:\n{all}"
    );
    // The right token, from plsw.toml.
    let config = tmp.path().join("plsw.toml");
    std::fs::write(
        &config,
        format!(
            "[pull.work_orders]\nurl = \"{}\"\ntoken = \"tok-3f9a7c\"\n",
            server.url()
        ),
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["pull", "work-orders"])
        .env("PLSW_WAREHOUSE", &wh)
        .env("PLSW_CONFIG", &config)
        .env("PLSW_LOG", "debug")
        .output()
        .unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{all}");
    assert!(
        !all.contains("tok-3f9a7c"),
        "the token appears in the output"
    );
    assert_exactly_upstream(&wh, &up);
}

fn pull_cmd(wh: &Path, url: &str, extra: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.args(["pull", "work-orders", "--url", url, "--retry-base", "10ms"])
        .args(extra)
        .env("PLSW_WAREHOUSE", wh)
        .env_remove("PLSW_CRASH_AT")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    c
}

/// What must equal between an interrupted-then-rerun pull and an uninterrupted one.
fn pulled_state(wh: &Path) -> (Vec<String>, Vec<String>, String) {
    let (h, c) = stored(wh);
    (h, c, quarantined(wh))
}

#[test]
fn a_pull_aborted_at_each_commit_point_then_rerun_ends_as_an_uninterrupted_pull() {
    let (tmp, wh) = warehouse();
    let up = upstream();
    let server = up.spawn();
    let flags = ["--page-size", "20", "--commit-every", "60"];
    let reference: PathBuf = tmp.path().join("reference");
    copy_dir(&wh, &reference);
    assert!(pull_cmd(&reference, &server.url(), &flags)
        .status()
        .unwrap()
        .success());
    let want = pulled_state(&reference);
    let base = dump(&wh);
    for (i, point) in CRASH_POINTS.iter().enumerate() {
        let w = tmp.path().join(format!("crash-{i}"));
        copy_dir(&wh, &w);
        let status = pull_cmd(&w, &server.url(), &flags)
            .env("PLSW_CRASH_AT", point)
            .status()
            .unwrap();
        assert!(
            !status.success(),
            "{point}: the process should have aborted"
        );
        assert_eq!(
            dump(&w),
            base,
            "{point}: nothing of the killed group is visible"
        );
        assert!(pull_cmd(&w, &server.url(), &flags)
            .status()
            .unwrap()
            .success());
        assert_eq!(pulled_state(&w), want, "{point}");
    }
}

#[test]
fn kill_9_during_pulls_then_rerun_ends_as_an_uninterrupted_pull() {
    let (tmp, wh) = warehouse();
    let up = upstream();
    let server = up.spawn();
    let flags = ["--page-size", "10", "--commit-every", "40"];
    let reference = tmp.path().join("reference");
    copy_dir(&wh, &reference);
    assert!(pull_cmd(&reference, &server.url(), &flags)
        .status()
        .unwrap()
        .success());
    let want = pulled_state(&reference);
    assert_exactly_upstream(&reference, &up);
    // Slow pages, so that kills land mid-page, mid-commit and between commits.
    up.set_faults(FaultPlan::none().every(1, Fault::Stall(Duration::from_millis(30))));
    let last = up.items().iter().map(|i| i.updated_at).max().unwrap();
    let mut partial = 0;
    for ms in [300u64, 600, 900, 1200, 1600, 2200] {
        let mut child = pull_cmd(&wh, &server.url(), &flags).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(ms));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        let w = scalar(
            &wh,
            "SELECT CAST(max(CAST(watermark AS BIGINT)) AS VARCHAR) FROM loads",
        );
        partial += i32::from(w.parse::<i64>().is_ok_and(|w| w < last));
    }
    // The premise: some kills landed after a commit and before the end, so the rerun resumed
    // from a watermark mid-way.
    assert!(partial > 0, "no kill landed mid-pull; adjust the delays");
    up.set_faults(FaultPlan::none());
    assert!(pull_cmd(&wh, &server.url(), &flags)
        .status()
        .unwrap()
        .success());
    assert_eq!(pulled_state(&wh), want);
}
