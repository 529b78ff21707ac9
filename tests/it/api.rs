//! The query API through `app().oneshot(…)` and once on a real socket: tokens, roles, the error
//! shape, read-only SQL.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use plsw_api::tokens::{self, Role, Scope};
use plsw_api::{app, AppState, Limits};
use plsw_store::Warehouse;
use tower::ServiceExt;

use crate::common::*;

struct Api {
    rt: tokio::runtime::Runtime,
    router: axum::Router,
    admin: String,
    analyst: String,
    viewer: String,
    scoped: String,
    revoked: String,
    _tmp: tempfile::TempDir,
}

fn divisions_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/indicators/divisions")
}

fn api() -> Api {
    api_with(Limits::default())
}

fn api_with(limits: Limits) -> Api {
    let tmp = tempfile::tempdir().unwrap();
    let wh_path = tmp.path().join("wh");
    ok(
        &wh_path,
        &["seeds", "load", divisions_dir().to_str().unwrap()],
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (router, admin, analyst, viewer, scoped, revoked) = rt.block_on(async {
        let wh = Warehouse::open(wh_path.to_str().unwrap()).await.unwrap();
        let mk = |role, scope: &str| {
            let wh = &wh;
            let scope = Scope::parse(scope);
            async move { tokens::create(wh, "sfj", role, scope).await.unwrap().0 }
        };
        let admin = mk(Role::Admin, "province").await;
        let analyst = mk(Role::Analyst, "province").await;
        let viewer = mk(Role::Viewer, "province").await;
        let scoped = mk(Role::Analyst, "410100").await;
        let revoked = mk(Role::Analyst, "province").await;
        let id = tokens::hash(&revoked)[..12].to_string();
        tokens::revoke(&wh, &id).await.unwrap();
        let router = app(AppState::new(wh, limits));
        (router, admin, analyst, viewer, scoped, revoked)
    });
    Api {
        rt,
        router,
        admin,
        analyst,
        viewer,
        scoped,
        revoked,
        _tmp: tmp,
    }
}

impl Api {
    fn call(
        &self,
        method: &str,
        uri: &str,
        auth: Option<&str>,
        body: Option<&str>,
    ) -> (StatusCode, serde_json::Value) {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        if body.is_some() {
            req = req.header("content-type", "application/json");
        }
        let req = req
            .body(Body::from(body.unwrap_or_default().to_string()))
            .unwrap();
        self.rt.block_on(async {
            let resp = self.router.clone().oneshot(req).await.unwrap();
            let status = resp.status();
            let bytes = axum::body::to_bytes(resp.into_body(), 16 << 20)
                .await
                .unwrap();
            let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
            (status, json)
        })
    }

    /// POST /v1/sql with an `Accept` header; the status, content type and body bytes.
    fn sql_as(
        &self,
        token: &str,
        sql: &str,
        accept: &str,
    ) -> (StatusCode, String, axum::body::Bytes, String) {
        let body = serde_json::json!({ "sql": sql }).to_string();
        let req = Request::builder()
            .method("POST")
            .uri("/v1/sql")
            .header("authorization", Self::bearer(token))
            .header("content-type", "application/json")
            .header("accept", accept)
            .body(Body::from(body))
            .unwrap();
        self.rt.block_on(async {
            let resp = self.router.clone().oneshot(req).await.unwrap();
            let status = resp.status();
            let header = |n: &str| {
                resp.headers()
                    .get(n)
                    .map(|v| v.to_str().unwrap().to_string())
                    .unwrap_or_default()
            };
            let (ctype, truncated) = (header("content-type"), header("x-truncated"));
            let bytes = axum::body::to_bytes(resp.into_body(), 16 << 20)
                .await
                .unwrap();
            (status, ctype, bytes, truncated)
        })
    }

    fn bearer(t: &str) -> String {
        format!("Bearer {t}")
    }

    fn sql(&self, token: &str, sql: &str) -> (StatusCode, serde_json::Value) {
        let body = serde_json::json!({ "sql": sql }).to_string();
        self.call("POST", "/v1/sql", Some(&Self::bearer(token)), Some(&body))
    }
}

#[test]
fn health_is_open_and_every_other_route_needs_a_valid_token() {
    let api = api();
    let (s, j) = api.call("GET", "/health", None, None);
    assert_eq!((s, j["status"].as_str()), (StatusCode::OK, Some("ok")));
    for (route, method, body) in [
        ("/v1/tables", "GET", None),
        ("/v1/sql", "POST", Some(r#"{"sql":"SELECT 1"}"#)),
    ] {
        let bad = [
            None,
            Some("Token abc".to_string()),
            Some("Bearer ".to_string()),
            Some("Bearer plsw_0000".to_string()),
            Some(Api::bearer(&api.revoked)),
        ];
        for auth in &bad {
            let (s, j) = api.call(method, route, auth.as_deref(), body);
            assert_eq!(s, StatusCode::UNAUTHORIZED, "{route} with {auth:?}");
            assert_eq!(j["error"], "unauthorized", "one error shape: {j}");
            assert!(j["message"].as_str().is_some_and(|m| !m.is_empty()));
        }
    }
    let (s, j) = api.call("GET", "/v1/nowhere", Some(&Api::bearer(&api.admin)), None);
    assert_eq!(
        (s, j["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
}

#[test]
fn roles_decide_who_may_run_sql_and_what_tables_they_see() {
    let api = api();
    let (s, j) = api.sql(&api.analyst, "SELECT count(*) AS n FROM counties");
    assert_eq!(s, StatusCode::OK, "{j}");
    assert_eq!(j["rows"][0]["n"], 4);
    assert_eq!(j["truncated"], false);
    let (s, _) = api.sql(&api.admin, "SELECT 1 AS one");
    assert_eq!(s, StatusCode::OK);
    let (s, j) = api.sql(&api.viewer, "SELECT 1");
    assert_eq!(
        (s, j["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden"))
    );
    // Places are public: a scoped analyst sees every county of the divisions.
    let (s, j) = api.sql(&api.scoped, "SELECT count(*) AS n FROM counties");
    assert_eq!((s, j["rows"][0]["n"].as_i64()), (StatusCode::OK, Some(4)));

    // Viewers may read indicators, not SQL, not the loads.
    let (s, j) = api.call(
        "GET",
        "/v1/indicators",
        Some(&Api::bearer(&api.viewer)),
        None,
    );
    assert_eq!(
        (s, j["rows"].clone()),
        (StatusCode::OK, serde_json::json!([]))
    );
    let (s, _) = api.call(
        "GET",
        "/v1/freshness",
        Some(&Api::bearer(&api.viewer)),
        None,
    );
    assert_eq!(s, StatusCode::FORBIDDEN);
    let names = |token: &str| -> Vec<String> {
        let (s, j) = api.call("GET", "/v1/tables", Some(&Api::bearer(token)), None);
        assert_eq!(s, StatusCode::OK);
        j["tables"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_string())
            .collect()
    };
    let admin = names(&api.admin);
    assert!(admin.contains(&"loads".to_string()) && admin.contains(&"indicators".to_string()));
    assert!(
        !admin.contains(&"tokens".to_string()),
        "tokens are listed for nobody"
    );
    let viewer = names(&api.viewer);
    assert!(viewer.contains(&"indicators".to_string()));
    assert!(!viewer.contains(&"loads".to_string()) && !viewer.contains(&"quarantine".to_string()));
    assert!(!names(&api.scoped).contains(&"quarantine".to_string()));
}

#[test]
fn sql_is_read_only_and_cannot_reach_the_tokens() {
    let api = api();
    for sql in [
        "CREATE TABLE x AS SELECT 1",
        "INSERT INTO counties VALUES ('1', 'x', '2', 'y')",
        "DROP VIEW counties",
        "SET datafusion.execution.batch_size = 1",
        "COPY (SELECT 1) TO '/tmp/plsw-api-test.csv'",
        "CREATE EXTERNAL TABLE t STORED AS CSV LOCATION '/etc/passwd'",
    ] {
        let (s, j) = api.sql(&api.admin, sql);
        assert_eq!(s, StatusCode::BAD_REQUEST, "{sql}: {j}");
        assert_eq!(j["error"], "not_read_only", "{sql}: {j}");
    }
    let (s, j) = api.sql(&api.admin, "SELECT * FROM tokens");
    assert_eq!(s, StatusCode::BAD_REQUEST, "{j}");
    let (s, j) = api.sql(
        &api.admin,
        "SELECT table_name FROM information_schema.tables WHERE table_name LIKE '%token%'",
    );
    assert_eq!(s, StatusCode::OK, "{j}");
    assert_eq!(j["rows"], serde_json::json!([]));
    let (s, j) = api.call(
        "POST",
        "/v1/sql",
        Some(&Api::bearer(&api.admin)),
        Some("not json"),
    );
    assert_eq!(
        (s, j["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("bad_request"))
    );
    let big = format!(r#"{{"sql":"SELECT '{}'"}}"#, "x".repeat(2 << 20));
    let (s, j) = api.call(
        "POST",
        "/v1/sql",
        Some(&Api::bearer(&api.admin)),
        Some(&big),
    );
    assert_eq!(
        (s, j["error"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("payload_too_large"))
    );
}

#[test]
fn tokens_are_created_listed_and_revoked_from_the_cli_and_served_on_a_real_socket() {
    let tmp = tempfile::tempdir().unwrap();
    let wh = tmp.path().join("wh");
    ok(&wh, &["seeds", "load", divisions_dir().to_str().unwrap()]);
    let token = ok(
        &wh,
        &["tokens", "create", "--unit", "sfj", "--role", "analyst"],
    )
    .trim()
    .to_string();
    assert!(
        token.starts_with("plsw_") && token.len() == 5 + 64,
        "{token}"
    );
    let list = ok(&wh, &["tokens", "list"]);
    assert!(
        list.contains("sfj") && list.contains("analyst") && !list.contains(&token),
        "{list}"
    );
    let bad = plsw(
        &wh,
        &["tokens", "create", "--unit", "nobody", "--role", "analyst"],
    );
    assert!(!bad.status.success());
    let bad = plsw(
        &wh,
        &[
            "tokens", "create", "--unit", "sfj", "--role", "viewer", "--scope", "510104",
        ],
    );
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not a city or county"));

    // A real socket: plsw serve on a free port.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = std::process::Command::new(BIN)
        .args(["serve", "--addr", &format!("127.0.0.1:{port}")])
        .env("PLSW_WAREHOUSE", &wh)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let get = |path: &str, auth: Option<&str>| -> String {
        for _ in 0..100 {
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
                let auth = auth
                    .map(|a| format!("Authorization: Bearer {a}\r\n"))
                    .unwrap_or_default();
                write!(
                    s,
                    "GET {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Connection: close\r\n\r\n"
                )
                .unwrap();
                let mut out = String::new();
                s.read_to_string(&mut out).unwrap();
                return out;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("plsw serve did not listen");
    };
    assert!(get("/health", None).starts_with("HTTP/1.1 200"));
    assert!(get("/v1/tables", None).starts_with("HTTP/1.1 401"));
    assert!(get("/v1/tables", Some(&token)).starts_with("HTTP/1.1 200"));
    let id = &list.split_whitespace().next().unwrap().to_string();
    ok(&wh, &["tokens", "revoke", id]);
    std::thread::sleep(std::time::Duration::from_millis(2100)); // the token cache's lifetime
    assert!(get("/v1/tables", Some(&token)).starts_with("HTTP/1.1 401"));
    let _ = child.kill();
    let _ = child.wait();
}

/// The indicators fixture (calls, orders, cases, registries and funding in 郑州 and 济源) behind
/// a token scoped to 济源 (419000, with its county 419001) and one for the province.
#[test]
fn a_city_scoped_token_sees_its_city_and_none_of_another_however_the_sql_is_written() {
    let (tmp, wh_path) = crate::indicators::fixture_warehouse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (router, jiyuan, province) = rt.block_on(async {
        let wh = Warehouse::open(wh_path.to_str().unwrap()).await.unwrap();
        let jiyuan = tokens::create(&wh, "sfj", Role::Analyst, Scope::parse("419000"))
            .await
            .unwrap()
            .0;
        let province = tokens::create(&wh, "sfj", Role::Analyst, Scope::Province)
            .await
            .unwrap()
            .0;
        (app(AppState::new(wh, Limits::default())), jiyuan, province)
    });
    let api = Api {
        rt,
        router,
        admin: province.clone(),
        analyst: province.clone(),
        viewer: String::new(),
        scoped: jiyuan.clone(),
        revoked: String::new(),
        _tmp: tmp,
    };
    let count = |token: &str, sql: &str| -> i64 {
        let (s, j) = api.sql(token, sql);
        assert_eq!(s, StatusCode::OK, "{sql}: {j}");
        j["rows"][0]["n"]
            .as_i64()
            .unwrap_or_else(|| panic!("{sql}: {j}"))
    };
    // Its own rows.
    assert_eq!(
        count(&jiyuan, "SELECT count(*) AS n FROM hotline_calls_current"),
        1,
        "J1"
    );
    assert_eq!(
        count(&jiyuan, "SELECT count(*) AS n FROM cases_current"),
        1,
        "L4"
    );
    assert_eq!(
        count(
            &jiyuan,
            "SELECT count(DISTINCT order_id) AS n FROM work_order_versions"
        ),
        1,
        "G1"
    );
    assert_eq!(
        count(&jiyuan, "SELECT count(*) AS n FROM funding_current"),
        1
    );
    assert!(
        count(
            &jiyuan,
            "SELECT count(*) AS n FROM indicators WHERE code IN ('419000', '419001')"
        ) > 0
    );
    // The province sees more.
    assert_eq!(
        count(&province, "SELECT count(*) AS n FROM hotline_calls_current"),
        9
    );
    // None of 郑州's rows, however the SQL is written.
    for sql in [
        "SELECT count(*) AS n FROM hotline_calls WHERE seat_city_code = '410100'",
        "SELECT count(*) AS n FROM hotline_calls h JOIN cities c ON c.code = h.seat_city_code WHERE c.code = '410100'",
        "SELECT count(*) AS n FROM cities c LEFT JOIN hotline_calls_current h ON h.seat_city_code = c.code WHERE c.code = '410100' AND h.call_id IS NOT NULL",
        "WITH x AS (SELECT * FROM cases_current) SELECT count(*) AS n FROM x WHERE county_code LIKE '4101%'",
        "SELECT count(*) AS n FROM (SELECT code FROM indicators WHERE code LIKE '4101%' UNION ALL SELECT county_code FROM cases WHERE county_code LIKE '4101%' UNION ALL SELECT county_code FROM population WHERE county_code LIKE '4101%')",
        "SELECT count(*) AS n FROM work_order_versions WHERE order_id IN (SELECT order_id FROM work_order_versions_current WHERE division_code LIKE '4101%')",
        "SELECT (SELECT count(*) FROM funding WHERE county_code = '410102') AS n",
        "SELECT count(*) AS n FROM staff_current WHERE division_code LIKE '4101%'",
        "SELECT count(*) AS n FROM platforms WHERE division_code LIKE '4101%'",
        "SELECT count(*) AS n FROM indicators_county WHERE code LIKE '4101%'",
        "SELECT count(*) AS n FROM indicators WHERE scope = 'province'",
        "SELECT count(*) AS n FROM information_schema.tables WHERE table_name IN ('loads', 'quarantine', 'transforms', 'tokens')",
    ] {
        assert_eq!(count(&jiyuan, sql), 0, "{sql}");
    }
    for hidden in [
        "SELECT * FROM loads",
        "SELECT * FROM quarantine",
        "SELECT * FROM transforms",
        "SELECT * FROM tokens",
    ] {
        let (s, j) = api.sql(&jiyuan, hidden);
        assert_eq!(s, StatusCode::BAD_REQUEST, "{hidden}: {j}");
    }
    // The indicator routes answer within the same scope.
    let get = |token: &str, uri: &str| api.call("GET", uri, Some(&Api::bearer(token)), None);
    let (s, j) = get(
        &jiyuan,
        "/v1/indicators?indicator=hotline.answer_rate&scope=city",
    );
    assert_eq!(s, StatusCode::OK, "{j}");
    let rows = j["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 3, "济源 in 2025Q2-Q4: {j}");
    assert!(rows.iter().all(|r| r["code"] == "419000"));
    let (_, j) = get(
        &province,
        "/v1/indicators?indicator=hotline.answer_rate&scope=city&quarter=2025Q3",
    );
    let codes: Vec<&str> = j["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["410100", "419000"]);
    assert_eq!(j["rows"][0]["value"], 0.6);
    assert_eq!(j["rows"][0]["target"], 0.9);
    assert_eq!(j["rows"][0]["meets_target"], false);
    let (_, j) = get(&jiyuan, "/v1/indicators?scope=province");
    assert_eq!(
        j["rows"],
        serde_json::json!([]),
        "province rows: province scope only"
    );
    let (_, j) = get(
        &province,
        "/v1/indicators?code=410000&from=2025Q3&to=2025Q3&indicator=workorders.closed",
    );
    assert_eq!(j["rows"][0]["value"], 7.0);
    for bad in [
        "/v1/indicators?quarter=2025Q5",
        "/v1/indicators?scope=town",
        "/v1/indicators?code=41",
        "/v1/indicators?indicator=x;drop",
    ] {
        let (s, j) = get(&province, bad);
        assert_eq!(
            (s, j["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("bad_parameter")),
            "{bad}"
        );
    }
    let (s, j) = get(&jiyuan, "/v1/indicators/catalog");
    assert_eq!(s, StatusCode::OK);
    let ids = j["indicators"].as_array().unwrap();
    assert_eq!(ids.len(), 45);
    let answer = ids
        .iter()
        .find(|i| i["id"] == "hotline.answer_rate")
        .unwrap();
    assert_eq!(answer["target"]["value"], 0.9);
    assert_eq!(answer["model"], "marts/hotline.sql");
    assert_eq!(answer["scopes"], serde_json::json!(["city", "province"]));
    let (s, j) = get(&province, "/v1/freshness");
    assert_eq!(s, StatusCode::OK, "{j}");
    let feeds = j["feeds"].as_array().unwrap();
    let wo = feeds.iter().find(|f| f["feed"] == "work_orders").unwrap();
    // B4 closed at 2025-10-01 00:00:00+08:00: the last version served.
    assert_eq!(wo["watermark"], "2025-09-30T16:00:00Z", "{wo}");
    let (s, _) = get(&jiyuan, "/v1/freshness");
    assert_eq!(s, StatusCode::FORBIDDEN);
    // EXPLAIN shows the plan, filter included, and no rows.
    let (s, j) = api.sql(&jiyuan, "EXPLAIN SELECT * FROM hotline_calls");
    assert_eq!(s, StatusCode::OK);
    assert!(j.to_string().contains("419000"), "{j}");
    let _ = api.admin.len()
        + api.analyst.len()
        + api.viewer.len()
        + api.revoked.len()
        + api.scoped.len();
}

/// Hostile SQL: every statement is refused with a 4xx and the one JSON error shape, and the
/// warehouse is unchanged.
#[test]
fn hostile_sql_is_refused_with_4xx() {
    let api = api_with(Limits {
        query_time: std::time::Duration::from_secs(2),
        memory_bytes: 64 << 20,
        rows: 1000,
        ..Limits::default()
    });
    let before = {
        let (_, j) = api.sql(&api.admin, "SELECT count(*) AS n FROM counties");
        j["rows"][0]["n"].clone()
    };
    let hostile: Vec<(&str, u16)> = vec![
        // files and URLs
        ("SELECT * FROM '/etc/passwd'", 400),
        ("SELECT * FROM 'file:///etc/passwd'", 400),
        ("SELECT * FROM 'https://example.com/data.csv'", 400),
        ("SELECT * FROM read_csv('/etc/passwd')", 400),
        ("SELECT * FROM read_parquet('/tmp/x.parquet')", 400),
        ("SELECT * FROM read_json('/etc/hosts')", 400),
        ("CREATE EXTERNAL TABLE p STORED AS CSV LOCATION '/etc/passwd'", 400),
        ("COPY (SELECT 1) TO '/tmp/plsw-hostile.csv'", 400),
        ("COPY counties TO '/tmp/plsw-hostile.parquet'", 400),
        // writes and DDL
        ("CREATE TABLE t AS SELECT 1", 400),
        ("CREATE VIEW v AS SELECT 1", 400),
        ("CREATE OR REPLACE VIEW counties AS SELECT 1 AS code", 400),
        ("DROP VIEW counties", 400),
        ("DROP TABLE hotline_calls", 400),
        ("INSERT INTO counties VALUES ('1', 'x', '2', 'y')", 400),
        ("DELETE FROM counties", 400),
        ("UPDATE counties SET name = 'x'", 400),
        ("TRUNCATE counties", 400),
        ("CREATE SCHEMA s", 400),
        ("CREATE FUNCTION f(INT) RETURNS INT RETURN 1", 400),
        // settings and statements
        ("SET datafusion.execution.target_partitions = 1", 400),
        ("SET TIME ZONE 'UTC'", 400),
        ("PREPARE p AS SELECT 1", 400),
        ("BEGIN TRANSACTION", 400),
        // several statements
        ("SELECT 1; SELECT 2", 400),
        ("SELECT 1; DROP VIEW counties", 400),
        // the tokens
        ("SELECT * FROM tokens", 400),
        // limits: time and memory
        ("SELECT count(*) AS n FROM generate_series(1, 100000000) a, generate_series(1, 100000000) b", 422),
        ("SELECT array_agg(x ORDER BY x) AS a FROM generate_series(1, 500000000) t(x)", 422),
    ];
    assert!(hostile.len() >= 25);
    for (sql, status) in &hostile {
        let (s, j) = api.sql(&api.admin, sql);
        assert_eq!(s.as_u16(), *status, "{sql}: {j}");
        assert!(
            j["error"].is_string() && j["message"].is_string(),
            "{sql}: {j}"
        );
    }
    assert!(!std::path::Path::new("/tmp/plsw-hostile.csv").exists());
    let (_, j) = api.sql(&api.admin, "SELECT count(*) AS n FROM counties");
    assert_eq!(j["rows"][0]["n"], before, "nothing changed");
    // Rows beyond the limit are cut, and the answer says so.
    let (s, j) = api.sql(&api.admin, "SELECT * FROM generate_series(1, 5000) t(x)");
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        (j["row_count"].as_i64(), j["truncated"].as_bool()),
        (Some(1000), Some(true))
    );
    assert_eq!(j["rows"].as_array().unwrap().len(), 1000);
}

#[test]
fn sql_answers_in_the_format_accept_asks_for() {
    let api = api();
    let sql = "SELECT code, name FROM counties ORDER BY code";
    let (s, ctype, body, _) = api.sql_as(&api.analyst, sql, "text/csv");
    assert_eq!(
        (s, ctype.as_str()),
        (StatusCode::OK, "text/csv; charset=utf-8")
    );
    let text = String::from_utf8(body.to_vec()).unwrap();
    assert_eq!(text.lines().next(), Some("code,name"));
    assert_eq!(text.lines().nth(1), Some("410102,中原区"));
    assert_eq!(text.lines().count(), 5);

    let (s, ctype, body, truncated) =
        api.sql_as(&api.analyst, sql, "application/vnd.apache.arrow.stream");
    assert_eq!(
        (s, ctype.as_str(), truncated.as_str()),
        (
            StatusCode::OK,
            "application/vnd.apache.arrow.stream",
            "false"
        )
    );
    let reader = datafusion::arrow::ipc::reader::StreamReader::try_new(
        std::io::Cursor::new(body.to_vec()),
        None,
    )
    .unwrap();
    let rows: usize = reader.map(|b| b.unwrap().num_rows()).sum();
    assert_eq!(rows, 4);

    let (s, ctype, body, _) = api.sql_as(&api.analyst, sql, "application/vnd.apache.parquet");
    assert_eq!(
        (s, ctype.as_str()),
        (StatusCode::OK, "application/vnd.apache.parquet")
    );
    let reader =
        datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(body)
            .unwrap()
            .build()
            .unwrap();
    let rows: usize = reader.map(|b| b.unwrap().num_rows()).sum();
    assert_eq!(rows, 4);

    let (s, ctype, _, _) = api.sql_as(&api.analyst, sql, "text/html, application/json;q=0.9");
    assert_eq!((s, ctype.as_str()), (StatusCode::OK, "application/json"));
    let (s, _, body, _) = api.sql_as(&api.analyst, sql, "image/png");
    assert_eq!(s, StatusCode::NOT_ACCEPTABLE);
    let j: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(j["error"], "not_acceptable");
}
