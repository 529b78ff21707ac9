//! Helpers: running the binary, generating a small province-year once, reading tables back.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use plsw_store::Warehouse;

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_plsw");

/// Two real cities, small enough for tests: 济源 (one county-level city) and 鹤壁.
pub(crate) const CITIES: &str = "419000,410600";

/// Runs `plsw` on a warehouse.
pub(crate) fn plsw(wh: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("PLSW_WAREHOUSE", wh)
        .env_remove("PLSW_CRASH_AT")
        .output()
        .expect("run plsw")
}

/// Runs `plsw` and asserts it succeeded; returns stdout.
pub(crate) fn ok(wh: &Path, args: &[&str]) -> String {
    let out = plsw(wh, args);
    assert!(
        out.status.success(),
        "plsw {args:?} failed ({:?}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// The generated test data (seed 7, scale 0.01, two cities), made once and shared by every
/// test process: generated into a temporary directory, then renamed into place.
pub(crate) fn generated() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    // Keyed by the binary, so a cache kept between CI runs never serves another generator's data.
    let bin = std::fs::metadata(BIN).expect("plsw binary");
    let stamp = bin
        .modified()
        .unwrap()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let dir = root.join(format!("gen-seed7-s0.01-{stamp}-{}", bin.len()));
    if dir.join("README.txt").exists() {
        return dir;
    }
    let tmp = tempfile::tempdir_in(&root).expect("tempdir");
    let out = tmp.path().join("data");
    generate_into(&out, "0.01", "7", CITIES);
    // Another process may have won the race; its data is byte-identical (same seed).
    let _ = std::fs::rename(&out, &dir);
    assert!(dir.join("README.txt").exists());
    dir
}

/// Runs `plsw generate` into `out`.
pub(crate) fn generate_into(out: &Path, scale: &str, seed: &str, cities: &str) {
    let status = Command::new(BIN)
        .args([
            "generate",
            "--out",
            out.to_str().unwrap(),
            "--scale",
            scale,
            "--seed",
            seed,
            "--cities",
            cities,
        ])
        .status()
        .expect("run generate");
    assert!(status.success());
}

/// A new warehouse with the test divisions loaded.
pub(crate) fn warehouse() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let wh = tmp.path().join("wh");
    let data = generated();
    ok(
        &wh,
        &["seeds", "load", data.join("divisions").to_str().unwrap()],
    );
    (tmp, wh)
}

/// Ingests every feed of the generated data; returns the combined stdout.
pub(crate) fn ingest_all(wh: &Path, data: &Path) -> String {
    let mut out = String::new();
    for feed in ["hotline", "cases", "funding", "population"] {
        out += &ok(wh, &["ingest", feed, data.join(feed).to_str().unwrap()]);
    }
    for feed in ["platforms", "staff"] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(data.join(feed))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for f in files {
            let as_of = f.file_stem().unwrap().to_str().unwrap().to_string();
            out += &ok(
                wh,
                &["ingest", feed, "--as-of", &as_of, f.to_str().unwrap()],
            );
        }
    }
    out
}

/// A read session over a warehouse at its state when opened.
pub(crate) struct Session {
    rt: tokio::runtime::Runtime,
    ctx: datafusion::prelude::SessionContext,
}

impl Session {
    pub(crate) fn open(wh: &Path) -> Session {
        Session::open_with(wh, true)
    }

    /// As [`Session::open`]; `states: false` ranks every `_current` view from the whole
    /// history instead of reading the current states kept on disk.
    pub(crate) fn open_with(wh: &Path, states: bool) -> Session {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let ctx = rt.block_on(async {
            let wh = Warehouse::open(wh.to_str().unwrap())
                .await
                .expect("open warehouse");
            let wh = if states { wh } else { wh.without_states() };
            plsw_query::session(&wh).await.expect("session")
        });
        Session { rt, ctx }
    }

    /// The rows as CSV text (header included).
    pub(crate) fn query(&self, sql: &str) -> String {
        self.rt.block_on(async {
            let batches = plsw_query::run(&self.ctx, sql)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
            plsw_query::render(&batches, plsw_query::Format::Csv).unwrap()
        })
    }

    /// The single value of a one-row, one-column query.
    pub(crate) fn scalar(&self, sql: &str) -> String {
        let csv = self.query(sql);
        csv.lines().nth(1).unwrap_or_default().to_string()
    }
}

/// Runs SQL on the warehouse as it is now; the rows as CSV text (header included).
pub(crate) fn query(wh: &Path, sql: &str) -> String {
    Session::open(wh).query(sql)
}

/// A single value of a one-row, one-column query.
pub(crate) fn scalar(wh: &Path, sql: &str) -> String {
    Session::open(wh).scalar(sql)
}

/// Every `_current` view read through the current states on disk equals the same view ranked
/// from the whole history; returns how many feed tables had a state to compare.
pub(crate) fn assert_states_agree(wh: &Path) -> usize {
    let (with, without) = (Session::open_with(wh, true), Session::open_with(wh, false));
    let mut states = 0;
    for t in plsw_schemas::tables::FEED_TABLES {
        let cols = t.stored_columns();
        let order: Vec<String> = (1..=cols.len()).map(|i| i.to_string()).collect();
        let sql = format!(
            "SELECT * FROM {}_current ORDER BY {}",
            t.name,
            order.join(", ")
        );
        let (a, b) = (with.query(&sql), without.query(&sql));
        assert!(
            a == b,
            "{}_current differs with the state ({} lines) and without ({} lines)",
            t.name,
            a.lines().count(),
            b.lines().count()
        );
        let dir = wh.join(plsw_store::STATES_DIR);
        let has_state = std::fs::read_dir(&dir).is_ok_and(|d| {
            d.flatten().any(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with(&format!("{}-", t.name))
                    && std::fs::read_dir(e.path()).is_ok_and(|f| f.count() > 0)
            })
        });
        states += usize::from(has_state);
    }
    states
}

/// Every visible row of every table, in a canonical order, without the columns that record
/// when a load ran: what must be identical between an interrupted-then-rerun load and an
/// uninterrupted one.
pub(crate) fn dump(wh: &Path) -> String {
    let s = Session::open(wh);
    let mut out = String::new();
    // `tokens` is never reachable from SQL.
    for t in plsw_schemas::tables::ALL
        .iter()
        .filter(|t| t.name != plsw_schemas::tables::TOKENS.name)
    {
        let views: Vec<String> = if plsw_schemas::tables::FEED_TABLES
            .iter()
            .any(|f| f.name == t.name)
        {
            vec![t.name.to_string(), format!("{}_current", t.name)]
        } else {
            vec![t.name.to_string()]
        };
        for v in views {
            let cols: Vec<String> = t
                .schema()
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .filter(|c| !matches!(c.as_str(), "loaded_at" | "started_at"))
                .collect();
            let list = cols.join(", ");
            let order: Vec<String> = (1..=cols.len()).map(|i| i.to_string()).collect();
            out += &format!("== {v}\n");
            out += &s.query(&format!(
                "SELECT {list} FROM {v} ORDER BY {}",
                order.join(", ")
            ));
        }
    }
    out
}

/// The points where `PLSW_CRASH_AT` aborts a load or a pull's commit group.
pub(crate) const CRASH_POINTS: [&str; 4] = [
    "before_raw_commit",
    "after_raw_commit",
    "after_quarantine_commit",
    "before_load_commit",
];

/// Copies a warehouse directory (to run several interrupted loads from one starting state).
pub(crate) fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}
