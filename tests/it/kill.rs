//! Exactly once under `kill -9`: a load killed at any point leaves the warehouse as it was, and
//! the rerun ends with exactly the tables of an uninterrupted load.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::common::*;

fn ingest_cmd(wh: &Path, data: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.args(["ingest", "cases", data.join("cases").to_str().unwrap()])
        .env("PLSW_WAREHOUSE", wh)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    c
}

/// A warehouse with some loads committed, and the same after an uninterrupted cases load.
fn base_and_reference() -> (tempfile::TempDir, PathBuf, String, String) {
    let (tmp, wh) = warehouse();
    let data = generated();
    ok(
        &wh,
        &["ingest", "funding", data.join("funding").to_str().unwrap()],
    );
    ok(
        &wh,
        &[
            "ingest",
            "population",
            data.join("population").to_str().unwrap(),
        ],
    );
    let base = dump(&wh);
    let reference = tmp.path().join("reference");
    copy_dir(&wh, &reference);
    ok(
        &reference,
        &["ingest", "cases", data.join("cases").to_str().unwrap()],
    );
    let after = dump(&reference);
    assert_ne!(base, after);
    (tmp, wh, base, after)
}

#[test]
fn a_load_aborted_at_each_commit_point_is_invisible_and_the_rerun_completes_it() {
    let (tmp, wh, base, reference) = base_and_reference();
    let data = generated();
    for (i, point) in CRASH_POINTS.iter().enumerate() {
        let w = tmp.path().join(format!("crash-{i}"));
        copy_dir(&wh, &w);
        let status = ingest_cmd(&w, &data)
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
            "{point}: the killed load must leave the warehouse as it was"
        );
        ok(
            &w,
            &["ingest", "cases", data.join("cases").to_str().unwrap()],
        );
        assert_eq!(
            dump(&w),
            reference,
            "{point}: the rerun must end as an uninterrupted load"
        );
    }
}

#[test]
fn kill_9_at_random_moments_then_rerun_equals_an_uninterrupted_load() {
    let (tmp, wh, _base, reference) = base_and_reference();
    let data = generated();
    // Kill one process after increasing delays, on the same warehouse, rerunning in between only
    // at the end: each kill may land mid-file, mid-commit or between files.
    let w = tmp.path().join("killed");
    copy_dir(&wh, &w);
    for ms in [150u64, 400, 700, 1000, 1500, 2500] {
        let mut child = ingest_cmd(&w, &data).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(ms));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
    }
    ok(
        &w,
        &["ingest", "cases", data.join("cases").to_str().unwrap()],
    );
    assert_eq!(dump(&w), reference);
}
