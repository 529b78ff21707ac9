//! The binary restarts itself once with glibc's mmap threshold fixed (src/malloc.rs).

use std::process::Command;

use crate::common::BIN;

/// Runs `plsw sql "SELECT 1"` on a new warehouse with `GLIBC_TUNABLES` as given; returns its log.
fn log_of_a_query(tunables: Option<&str>) -> String {
    let tmp = tempfile::tempdir().expect("temp dir");
    let mut c = Command::new(BIN);
    c.args(["sql", "SELECT 1"])
        .env("PLSW_WAREHOUSE", tmp.path().join("wh"))
        .env("PLSW_LOG", "plsw=debug")
        .env_remove("PLSW_MALLOC_TUNED")
        .env_remove("MALLOC_MMAP_THRESHOLD_")
        .env_remove("MALLOC_TRIM_THRESHOLD_");
    match tunables {
        Some(t) => c.env("GLIBC_TUNABLES", t),
        None => c.env_remove("GLIBC_TUNABLES"),
    };
    let out = c.output().expect("run plsw");
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains('1'),
        "{out:?}"
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn the_binary_runs_with_a_fixed_mmap_threshold_unless_the_caller_chose_one() {
    let log = log_of_a_query(None);
    assert!(
        log.contains("malloc: restart marker PLSW_MALLOC_TUNED set"),
        "{log}"
    );
    assert!(
        log.contains("glibc.malloc.mmap_threshold=1048576:glibc.malloc.trim_threshold=2097152"),
        "{log}"
    );
    // Started again from /proc/self/exe, it is still `plsw` to ps and pkill, not `exe`.
    assert!(
        log.contains("\"plsw\"") && !log.contains("\"exe\""),
        "{log}"
    );
    // The caller's other tunables are kept beside ours.
    let log = log_of_a_query(Some("glibc.malloc.arena_max=4"));
    assert!(
        log.contains("glibc.malloc.arena_max=4:glibc.malloc.mmap_threshold=1048576"),
        "{log}"
    );
    // A threshold the caller chose is theirs: no restart.
    let log = log_of_a_query(Some("glibc.malloc.mmap_threshold=262144"));
    assert!(
        log.contains("malloc: the caller chose the mmap threshold"),
        "{log}"
    );
    assert!(!log.contains("restart marker"), "{log}");
}
