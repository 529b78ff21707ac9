//! `plsw sql`: output formats, every table registered, read-only.

use crate::common::*;

#[test]
fn sql_formats_and_tables() {
    let (_tmp, wh) = warehouse();
    let json = ok(
        &wh,
        &[
            "sql",
            "SELECT code, name FROM cities ORDER BY code",
            "--format",
            "json",
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v[0]["code"], "410600");
    assert_eq!(v[1]["name"], "济源市");
    let csv = ok(
        &wh,
        &[
            "sql",
            "SELECT count(*) AS n FROM villages",
            "--format",
            "csv",
        ],
    );
    assert!(csv.starts_with("n\n") && csv.trim() != "n\n0", "{csv}");
    let table = ok(
        &wh,
        &[
            "sql",
            "SELECT level, count(*) AS n FROM divisions GROUP BY level ORDER BY n",
        ],
    );
    assert!(table.contains("| province |"), "{table}");
    // Every table of the contract is there, empty or not.
    for t in [
        "hotline_calls",
        "cases",
        "work_order_versions",
        "platforms",
        "staff",
        "funding",
        "population",
        "quarantine",
        "loads",
        "hotline_calls_current",
        "platforms_current",
    ] {
        let n = ok(
            &wh,
            &[
                "sql",
                &format!("SELECT count(*) AS n FROM {t}"),
                "--format",
                "csv",
            ],
        );
        assert_eq!(n, "n\n0\n", "{t}");
    }
    // The models' functions, in local time (+08:00): 2025-09-30 16:30 UTC is 1 October there.
    let q = ok(
        &wh,
        &[
            "sql",
            "SELECT quarter_label(date_quarter(DATE '2025-08-01')) AS a,
                    quarter_label(local_quarter(TIMESTAMP '2025-09-30T16:30:00Z')) AS b,
                    quarter_last_day(date_quarter(DATE '2025-02-10')) AS c,
                    ratio(1.0, 0.0) IS NULL AS d",
            "--format",
            "csv",
        ],
    );
    assert_eq!(q, "a,b,c,d\n2025Q3,2025Q4,2025-03-31,true\n", "{q}");
}

#[test]
fn sql_is_read_only() {
    let (_tmp, wh) = warehouse();
    for bad in [
        "CREATE TABLE x AS SELECT 1",
        "CREATE EXTERNAL TABLE x STORED AS CSV LOCATION '/etc/passwd'",
        "DROP VIEW hotline_calls",
        "INSERT INTO loads SELECT * FROM loads",
        "SET datafusion.execution.batch_size = 1",
        "COPY (SELECT 1) TO '/tmp/plsw-copy.csv'",
        "SELECT 1; SELECT 2",
    ] {
        let out = plsw(&wh, &["sql", bad]);
        assert!(!out.status.success(), "{bad} was accepted");
    }
    assert!(!std::path::Path::new("/tmp/plsw-copy.csv").exists());
}
