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
    /// A viewer scoped to the county 中牟县 (410122).
    county_viewer: String,
    revoked: String,
    wh_path: PathBuf,
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
    let (router, admin, analyst, viewer, scoped, county_viewer, revoked) = rt.block_on(async {
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
        let county_viewer = mk(Role::Viewer, "410122").await;
        let revoked = mk(Role::Analyst, "province").await;
        let id = tokens::hash(&revoked)[..12].to_string();
        tokens::revoke(&wh, &id).await.unwrap();
        // Commits are seen by the very next request.
        let router = app(AppState::new(wh, limits).with_refresh(std::time::Duration::ZERO));
        (
            router,
            admin,
            analyst,
            viewer,
            scoped,
            county_viewer,
            revoked,
        )
    });
    Api {
        rt,
        router,
        admin,
        analyst,
        viewer,
        scoped,
        county_viewer,
        revoked,
        wh_path,
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

    /// Any request: the status, the response headers and the body.
    fn raw(
        &self,
        method: &str,
        uri: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> (StatusCode, axum::http::HeaderMap, axum::body::Bytes) {
        let mut req = Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(Body::from(body.to_string())).unwrap();
        self.rt.block_on(async {
            let resp = self.router.clone().oneshot(req).await.unwrap();
            let (parts, body) = resp.into_parts();
            let bytes = axum::body::to_bytes(body, 16 << 20).await.unwrap();
            (parts.status, parts.headers, bytes)
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
    // Bad parameters and methods answer in the one error shape too.
    let auth = Api::bearer(&api.admin);
    let (s, j) = api.call(
        "GET",
        "/v1/assessments/2025Q3?revision=x",
        Some(&auth),
        None,
    );
    assert_eq!(
        (s, j["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("bad_parameter"))
    );
    let (s, j) = api.call(
        "GET",
        "/v1/indicators?quarter=2025Q3&from=",
        Some(&auth),
        None,
    );
    assert_eq!(
        (s, j["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("bad_parameter")),
        "{j}"
    );
    let (s, j) = api.call("DELETE", "/v1/tables", Some(&auth), None);
    assert_eq!(
        (s, j["error"].as_str()),
        (StatusCode::METHOD_NOT_ALLOWED, Some("method_not_allowed"))
    );
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
        county_viewer: String::new(),
        revoked: String::new(),
        wh_path,
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
    let (s, j) = get(&jiyuan, "/v1/indicators?scope=province");
    assert_eq!(
        (s, j["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden")),
        "province rows: province scope only"
    );
    let (s, j) = get(
        &jiyuan,
        "/v1/indicators?indicator=hotline.answer_rate&quarter=2025Q3",
    );
    assert_eq!(s, StatusCode::OK);
    assert!(
        j["rows"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["code"] == "419000"),
        "no province rows unasked either: {j}"
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
    assert_eq!(answer["targets"][0]["value"], 0.9);
    assert_eq!(answer["targets"][0]["comparison"], ">=");
    assert_eq!(answer["name_zh"], "12348热线接听率");
    assert_eq!(
        (answer["unit"].as_str(), answer["format"].as_str()),
        (Some("rate"), Some("percent1"))
    );
    assert!(answer["definition_zh"]
        .as_str()
        .unwrap()
        .contains("短时放弃"));
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
    for (sql, code) in [
        (
            "SELECT * FROM read_csv('/etc/passwd')",
            "forbidden_function",
        ),
        ("DROP VIEW counties", "not_read_only"),
        ("SET TIME ZONE 'UTC'", "not_read_only"),
        ("SELECT * FROM tokens", "bad_sql"),
    ] {
        let (_, j) = api.sql(&api.admin, sql);
        assert_eq!(j["error"], code, "{sql}: {j}");
    }
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

/// A request to every route: (method, path, body).
fn every_route() -> Vec<(&'static str, &'static str, &'static str)> {
    plsw_api::ROUTES
        .iter()
        .map(|(m, p)| {
            let body = match *p {
                "/v1/sql" => r#"{"sql":"SELECT 1 AS one"}"#,
                "/v1/export.xlsx" => r#"{"title":"t","columns":["a","b"],"rows":[["x",1.5]]}"#,
                _ => "",
            };
            // A path parameter gets a real value.
            let path: &'static str = if *p == "/v1/assessments/{quarter}" {
                "/v1/assessments/2025Q3"
            } else {
                p
            };
            (*m, path, body)
        })
        .collect()
}

#[test]
fn the_auth_matrix_holds_on_every_route() {
    let api = api();
    let routes = every_route();
    assert_eq!(routes.len(), 12, "a new route belongs in this matrix");
    let bad: Vec<(&str, Option<String>)> = vec![
        ("no token", None),
        ("another scheme", Some("Token abc".into())),
        ("empty bearer", Some("Bearer ".into())),
        ("malformed", Some("Bearer\tplsw_zz".into())),
        ("wrong", Some(format!("Bearer plsw_{}", "0".repeat(64)))),
        ("revoked", Some(Api::bearer(&api.revoked))),
    ];
    // Expected status per route, for: admin, province analyst, city analyst, province viewer,
    // county viewer.
    let expect = |path: &str| -> [u16; 5] {
        match path {
            "/health"
            | "/v1/openapi.json"
            | "/v1/tables"
            | "/v1/indicators"
            | "/v1/indicators/catalog"
            | "/v1/me"
            | "/v1/export.xlsx"
            | "/v1/assessments" => [200; 5],
            // Past the token: nothing is published in this warehouse.
            "/v1/assessments/2025Q3" => [404; 5],
            "/v1/sql" => [200, 200, 200, 403, 403],
            "/metrics" | "/v1/freshness" => [200, 200, 403, 403, 403],
            other => panic!("no expectation for {other}"),
        }
    };
    let callers = [
        ("admin", &api.admin),
        ("province analyst", &api.analyst),
        ("city analyst", &api.scoped),
        ("province viewer", &api.viewer),
        ("county viewer", &api.county_viewer),
    ];
    for (method, path, body) in &routes {
        let method = method.to_uppercase();
        let ct = [("content-type", "application/json")];
        for (what, auth) in &bad {
            let mut headers = ct.to_vec();
            if let Some(a) = auth {
                headers.push(("authorization", a));
            }
            let (s, _, bytes) = api.raw(&method, path, &headers, body);
            let j: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
            if *path == "/health" {
                assert_eq!(s, StatusCode::OK, "health is open ({what})");
                continue;
            }
            assert_eq!(s, StatusCode::UNAUTHORIZED, "{path} with {what}");
            assert_eq!(j["error"], "unauthorized", "{path} with {what}: {j}");
            assert!(j["message"].as_str().is_some_and(|m| !m.is_empty()));
        }
        for ((who, token), want) in callers.iter().zip(expect(path)) {
            let auth = Api::bearer(token);
            let (s, _, bytes) = api.raw(
                &method,
                path,
                &[
                    ("authorization", &auth),
                    ("content-type", "application/json"),
                ],
                body,
            );
            assert_eq!(
                s.as_u16(),
                want,
                "{path} as {who}: {}",
                String::from_utf8_lossy(&bytes)
            );
            if want == 403 {
                let j: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
                assert_eq!(j["error"], "forbidden", "{path} as {who}");
            }
        }
    }
    // Scope, not only role: scoped callers never see the bookkeeping tables, and asking for a
    // place outside the scope is refused.
    for (who, token) in &callers {
        let (_, j) = api.call("GET", "/v1/tables", Some(&Api::bearer(token)), None);
        let names: Vec<&str> = j["tables"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        let bookkeeping = names.contains(&"loads");
        assert_eq!(
            bookkeeping,
            matches!(*who, "admin" | "province analyst"),
            "{who}: {names:?}"
        );
        assert!(!names.contains(&"tokens"), "{who}");
        assert!(
            names.contains(&"indicators") && names.contains(&"hotline_calls_current"),
            "{who}"
        );
    }
    let get = |token: &str, q: &str| {
        api.call(
            "GET",
            &format!("/v1/indicators?{q}"),
            Some(&Api::bearer(token)),
            None,
        )
        .0
    };
    assert_eq!(get(&api.scoped, "code=410100"), StatusCode::OK, "its city");
    assert_eq!(
        get(&api.scoped, "code=410122"),
        StatusCode::OK,
        "a county of its city"
    );
    assert_eq!(
        get(&api.scoped, "code=419000"),
        StatusCode::FORBIDDEN,
        "another city"
    );
    assert_eq!(get(&api.scoped, "scope=province"), StatusCode::FORBIDDEN);
    assert_eq!(get(&api.county_viewer, "code=410122"), StatusCode::OK);
    assert_eq!(
        get(&api.county_viewer, "code=410100"),
        StatusCode::FORBIDDEN,
        "its city is wider"
    );
    assert_eq!(
        get(&api.viewer, "code=419000"),
        StatusCode::OK,
        "the province sees all"
    );
}

#[test]
fn responses_are_cached_until_the_warehouse_commits() {
    let api = api();
    let auth = Api::bearer(&api.analyst);
    let get = |uri: &str, extra: &[(&str, &str)]| {
        let mut h = vec![("authorization", auth.as_str())];
        h.extend_from_slice(extra);
        api.raw("GET", uri, &h, "")
    };
    let uri = "/v1/indicators?indicator=hotline.inbound&scope=province";
    let (s, h, body) = get(uri, &[]);
    assert_eq!(
        (s, h["x-cache"].to_str().unwrap()),
        (StatusCode::OK, "miss")
    );
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&body).unwrap()["rows"],
        serde_json::json!([])
    );
    let (s, h2, body2) = get(uri, &[]);
    assert_eq!(
        (s, h2["x-cache"].to_str().unwrap()),
        (StatusCode::OK, "hit")
    );
    assert_eq!(body, body2);
    let etag = h["etag"].to_str().unwrap().to_string();
    let (s, _, body) = get(uri, &[("if-none-match", &etag)]);
    assert_eq!((s, body.len()), (StatusCode::NOT_MODIFIED, 0));
    // Another scope is another audience: no hit from the province's entry.
    let other = Api::bearer(&api.scoped);
    let (_, h, _) = api.raw(
        "GET",
        "/v1/indicators?indicator=hotline.inbound",
        &[("authorization", &other)],
        "",
    );
    assert_eq!(&h["x-cache"], &"miss");

    // The warehouse commits (calls loaded, indicators computed): the next request sees them,
    // with no restart.
    let calls = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/indicators/calls.csv");
    ok(
        &api.wh_path,
        &["ingest", "hotline", calls.to_str().unwrap()],
    );
    ok(&api.wh_path, &["transform"]);
    let (s, h, body) = get(uri, &[("if-none-match", &etag)]);
    assert_eq!(
        (s, h["x-cache"].to_str().unwrap()),
        (StatusCode::OK, "miss"),
        "a new state, a new body"
    );
    let j: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let total: f64 = j["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["value"].as_f64().unwrap())
        .sum();
    assert_eq!(total, 9.0, "the fixture's 9 calls: {j}");
    assert_eq!(j["truncated"], false);
    assert_ne!(h["etag"], etag.as_str());
    let (_, h, _) = get(uri, &[]);
    assert_eq!(&h["x-cache"], &"hit");
    // SQL sees the commit too.
    let (s, j) = api.sql(
        &api.analyst,
        "SELECT count(*) AS n FROM hotline_calls_current",
    );
    assert_eq!((s, j["rows"][0]["n"].as_i64()), (StatusCode::OK, Some(9)));
}

#[test]
fn requests_carry_ids_and_are_counted_in_the_metrics() {
    let api = api();
    let auth = Api::bearer(&api.admin);
    let (_, h, _) = api.raw("GET", "/health", &[], "");
    let id = h["x-request-id"].to_str().unwrap();
    assert_eq!(id.len(), 36, "a UUID: {id}");
    let (_, h2, _) = api.raw("GET", "/health", &[], "");
    assert_ne!(h2["x-request-id"], h["x-request-id"]);
    let (_, h, _) = api.raw("GET", "/health", &[("x-request-id", "dash-42")], "");
    assert_eq!(
        &h["x-request-id"], &"dash-42",
        "the caller's own id is kept"
    );

    api.sql(&api.admin, "SELECT 1 AS one");
    api.sql(&api.admin, "DROP VIEW counties");
    api.call("GET", "/v1/indicators?code=419001", Some(&auth), None);
    api.call("GET", "/v1/indicators?code=419001", Some(&auth), None);
    api.call("GET", "/v1/nowhere", Some(&auth), None);
    let (s, h, body) = api.raw("GET", "/metrics", &[("authorization", &auth)], "");
    assert_eq!(s, StatusCode::OK);
    assert!(h["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = String::from_utf8(body.to_vec()).unwrap();
    let value = |line: &str| -> f64 {
        text.lines()
            .find_map(|l| {
                l.strip_prefix(line)
                    .map(|v| v.trim().parse::<f64>().unwrap())
            })
            .unwrap_or_else(|| panic!("no {line} in\n{text}"))
    };
    assert_eq!(
        value(r#"plsw_http_requests_total{route="/health",method="GET",status="200"}"#),
        3.0
    );
    assert_eq!(
        value(r#"plsw_http_requests_total{route="/v1/sql",method="POST",status="200"}"#),
        1.0
    );
    assert_eq!(
        value(r#"plsw_http_requests_total{route="/v1/sql",method="POST",status="400"}"#),
        1.0
    );
    assert_eq!(
        value(r#"plsw_http_requests_total{route="/v1/indicators",method="GET",status="200"}"#),
        2.0
    );
    assert_eq!(
        value(r#"plsw_http_requests_total{route="unmatched",method="GET",status="404"}"#),
        1.0
    );
    assert_eq!(
        value(r#"plsw_http_request_duration_seconds_count{route="/v1/indicators"}"#),
        2.0
    );
    assert_eq!(
        value(r#"plsw_sql_query_duration_seconds_count{outcome="ok"}"#),
        1.0
    );
    assert_eq!(
        value(r#"plsw_sql_query_duration_seconds_count{outcome="refused"}"#),
        1.0
    );
    assert_eq!(value("plsw_cache_hits_total"), 1.0);
    assert_eq!(
        value(r#"plsw_loads_total{feed="hotline"}"#),
        0.0,
        "every feed, 0 before its first load"
    );
    let calls = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/indicators/calls.csv");
    ok(
        &api.wh_path,
        &["ingest", "hotline", calls.to_str().unwrap()],
    );
    let (_, _, body) = api.raw("GET", "/metrics", &[("authorization", &auth)], "");
    let text = String::from_utf8(body.to_vec()).unwrap();
    assert!(
        text.contains("plsw_loads_total{feed=\"hotline\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("plsw_rows_loaded_total{feed=\"hotline\",kind=\"accepted\"} 9\n"),
        "{text}"
    );
    assert!(value(r#"plsw_table_version{table="tokens"}"#) >= 1.0);
}

#[test]
fn openapi_documents_exactly_the_routes_served() {
    let api = api();
    let (s, j) = api.call(
        "GET",
        "/v1/openapi.json",
        Some(&Api::bearer(&api.viewer)),
        None,
    );
    assert_eq!(s, StatusCode::OK);
    assert!(j["openapi"].as_str().unwrap().starts_with("3."));
    let mut documented: Vec<(String, String)> = Vec::new();
    for (path, item) in j["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.push((method.clone(), path.clone()));
        }
    }
    documented.sort();
    let mut served: Vec<(String, String)> = plsw_api::ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    served.sort();
    assert_eq!(documented, served);
    // Every documented route answers (not 404/405) for an admin, and needs the bearer scheme but
    // /health.
    assert_eq!(
        j["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    assert_eq!(
        j["paths"]["/health"]["get"]["security"],
        serde_json::json!([{}])
    );
    let auth = Api::bearer(&api.admin);
    for (m, p, body) in every_route() {
        let (s, _, bytes) = api.raw(
            &m.to_uppercase(),
            p,
            &[
                ("authorization", &auth),
                ("content-type", "application/json"),
            ],
            body,
        );
        let unpublished = p.starts_with("/v1/assessments/")
            && String::from_utf8_lossy(&bytes).contains("not_published");
        assert!(s.is_success() || unpublished, "{m} {p}: {s}");
    }
    assert!(j["paths"]["/v1/indicators"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["name"] == "quarter"));
}

#[test]
fn serve_shuts_down_gracefully_finishing_the_requests_in_flight() {
    let tmp = tempfile::tempdir().unwrap();
    let wh = tmp.path().join("wh");
    ok(&wh, &["seeds", "load", divisions_dir().to_str().unwrap()]);
    let token = ok(
        &wh,
        &["tokens", "create", "--unit", "sfj", "--role", "analyst"],
    )
    .trim()
    .to_string();
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
    let connect = || std::net::TcpStream::connect(("127.0.0.1", port));
    for _ in 0..100 {
        if connect().is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // A statement that takes a few seconds, sent before the signal.
    let sql =
        r#"{"sql":"SELECT count(*) AS n FROM generate_series(1, 60000000) t(x) WHERE x % 7 = 3"}"#;
    let mut s = connect().expect("plsw serve listens");
    write!(
        s,
        "POST /v1/sql HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{sql}",
        sql.len()
    )
    .unwrap();
    let in_flight = std::thread::spawn(move || {
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        (out, std::time::Instant::now())
    });
    std::thread::sleep(std::time::Duration::from_millis(500));
    let signalled = std::time::Instant::now();
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert!(connect().is_err(), "no new connections once shutting down");
    let (response, answered) = in_flight.join().unwrap();
    assert!(
        answered > signalled,
        "the statement must still be running at the signal for this test to mean anything"
    );
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains(r#""n":8571429"#), "{response}");
    let status = child.wait().unwrap();
    assert!(status.success(), "plsw serve exits cleanly: {status:?}");
}

#[test]
fn the_dashboard_is_served_without_a_token_and_holds_no_data() {
    let api = api();
    let (s, h, body) = api.raw("GET", "/", &[], "");
    assert_eq!(s, StatusCode::OK);
    assert!(h["content-type"].to_str().unwrap().starts_with("text/html"));
    assert!(h["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("script-src 'self'"));
    let html = String::from_utf8(body.to_vec()).unwrap();
    assert!(html.contains("领导驾驶舱") && html.contains("/assets/app.js"));
    // Every asset is in the binary: no address outside this server.
    for file in ["app.js", "app.css"] {
        let (s, _, body) = api.raw("GET", &format!("/assets/{file}"), &[], "");
        assert_eq!(s, StatusCode::OK, "{file}");
        // The SVG namespace is a name, not an address.
        let text = String::from_utf8(body.to_vec())
            .unwrap()
            .replace("'http://www.w3.org/2000/svg'", "");
        assert!(
            !text.contains("http://") && !text.contains("https://"),
            "{file} reaches out"
        );
    }
    assert!(!html.contains("https://"));
    let (s, _, _) = api.raw("GET", "/assets/secrets.txt", &[], "");
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[test]
fn me_tells_the_dashboard_who_and_where_and_export_makes_a_workbook() {
    let api = api();
    let (s, j) = api.call("GET", "/v1/me", Some(&Api::bearer(&api.scoped)), None);
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        (j["unit_id"].as_str(), j["unit_name"].as_str()),
        (Some("sfj"), Some("河南省司法厅"))
    );
    assert_eq!(j["role"], "analyst");
    assert_eq!(j["scope"], serde_json::json!(["410100"]));
    assert_eq!(
        j["home"],
        serde_json::json!({"scope": "city", "code": "410100", "name": "郑州市"})
    );
    let counties: Vec<&str> = j["places"]["counties"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["code"].as_str().unwrap())
        .collect();
    assert_eq!(
        counties,
        ["410102", "410104", "410122"],
        "郑州's counties of the fixture, not 济源's"
    );
    assert_eq!(
        j["quarters"],
        serde_json::json!([]),
        "nothing transformed yet"
    );
    let (_, j) = api.call("GET", "/v1/me", Some(&Api::bearer(&api.viewer)), None);
    assert_eq!(j["home"]["code"], "410000");
    assert_eq!(j["places"]["cities"].as_array().unwrap().len(), 2);
    let (_, j) = api.call(
        "GET",
        "/v1/me",
        Some(&Api::bearer(&api.county_viewer)),
        None,
    );
    assert_eq!(
        j["home"],
        serde_json::json!({"scope": "county", "code": "410122", "name": "中牟县"})
    );

    let body = r#"{"title":"县（市、区）指标 2025Q3","columns":["代码","名称","接听率"],"rows":[["410102","中原区",0.925],["410104","管城回族区",null]]}"#;
    let auth = Api::bearer(&api.viewer);
    let (s, h, bytes) = api.raw(
        "POST",
        "/v1/export.xlsx",
        &[
            ("authorization", &auth),
            ("content-type", "application/json"),
        ],
        body,
    );
    assert_eq!(s, StatusCode::OK);
    assert!(h["content-type"]
        .to_str()
        .unwrap()
        .contains("spreadsheetml"));
    use calamine::{Data, Reader};
    let mut wb = calamine::Xlsx::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
    assert_eq!(wb.sheet_names(), vec!["县（市、区）指标 2025Q3"]);
    let range = wb.worksheet_range("县（市、区）指标 2025Q3").unwrap();
    let rows: Vec<Vec<Data>> = range.rows().map(|r| r.to_vec()).collect();
    assert_eq!(rows[0][2], Data::String("接听率".into()));
    assert_eq!(rows[1][2], Data::Float(0.925));
    assert_eq!(rows[2][1], Data::String("管城回族区".into()));
    assert_eq!(rows.len(), 3);
    let (s, _, _) = api.raw(
        "POST",
        "/v1/export.xlsx",
        &[
            ("authorization", &auth),
            ("content-type", "application/json"),
        ],
        r#"{"title":"x","columns":[],"rows":[]}"#,
    );
    assert_eq!(s, StatusCode::BAD_REQUEST);
}
