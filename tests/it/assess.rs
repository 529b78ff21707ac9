//! `plsw assess` and `/v1/assessments` on the indicators fixture (two cities, four counties):
//! scores and ranks, the XLSX and HTML reports, and publications that stay byte-identical.

use std::path::Path;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use plsw_api::tokens::{self, Role, Scope};
use plsw_api::{app, AppState, Limits};
use plsw_store::Warehouse;
use tower::ServiceExt;

use crate::common::*;

fn assess_json(wh: &Path, args: &[&str]) -> (String, serde_json::Value) {
    let mut all = vec!["assess", "--quarter", "2025Q3", "--format", "json"];
    all.extend_from_slice(args);
    let text = ok(wh, &all);
    let json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    (text, json)
}

fn entry<'a>(a: &'a serde_json::Value, level: &str, code: &str) -> &'a serde_json::Value {
    a[level]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["code"] == code)
        .unwrap_or_else(|| panic!("no {code} in {level}"))
}

#[test]
fn the_fixture_is_scored_ranked_and_rendered() {
    let (tmp, wh) = crate::indicators::fixture_warehouse();
    let (_, a) = assess_json(&wh, &[]);
    assert_eq!(a["quarter"], "2025Q3");
    assert_eq!(a["previous_quarter"], "2025Q2");
    let (cities, counties) = (
        a["cities"].as_array().unwrap(),
        a["counties"].as_array().unwrap(),
    );
    assert_eq!((cities.len(), counties.len()), (2, 4));
    // Every value is the indicators table's, and every change is score − previous score.
    let sql = ok(
        &wh,
        &[
            "sql",
            "--format",
            "json",
            "SELECT scope, code, indicator, value FROM indicators WHERE quarter = '2025Q3' AND scope IN ('county', 'city')",
        ],
    );
    let rows: Vec<serde_json::Value> = serde_json::from_str(&sql).unwrap();
    let mut checked = 0;
    for (level, scope) in [("cities", "city"), ("counties", "county")] {
        for e in a[level].as_array().unwrap() {
            for c in e["indicators"].as_array().unwrap() {
                let row = rows
                    .iter()
                    .find(|r| {
                        r["scope"] == scope && r["code"] == e["code"] && r["indicator"] == c["id"]
                    })
                    .unwrap_or_else(|| panic!("{} {}", e["code"], c["id"]));
                assert_eq!(row.get("value").cloned().unwrap_or_default(), c["value"]);
                checked += 1;
            }
            if let (Some(s), Some(p)) = (e["score"].as_f64(), e["previous_score"].as_f64()) {
                assert_eq!(
                    e["score_change"].as_f64(),
                    Some(((s - p) * 100.0).round() / 100.0)
                );
            }
        }
    }
    // 2 cities × 14 indicators with a target + 4 counties × 10 (no hotline, no city center).
    assert_eq!(checked, 2 * 14 + 4 * 10);
    // 中原区 (410102) in 2025Q3 (expected.slt): its center, township and village stations,
    // adviser, notary and equipment all meet their targets (8 × attainment 1); 3 of its 4 orders
    // closed on time (0.75 → 0.75/0.95, red) and 2 of 3 ratings satisfied (2/3 → (2/3)/0.95,
    // red). Score = 100 × (8 + 0.75/0.95 + (2/3)/0.95) / 10 = 94.912… → 94.91, first in the
    // province and in 郑州 (the other counties lack stations, advisers or a center).
    let zy = entry(&a, "counties", "410102");
    assert_eq!(zy["score"], 94.91, "{zy}");
    assert_eq!(
        (
            zy["green"].as_u64(),
            zy["amber"].as_u64(),
            zy["red"].as_u64()
        ),
        (Some(8), Some(0), Some(2))
    );
    assert_eq!(
        (zy["rank"].as_u64(), zy["rank_in_city"].as_u64()),
        (Some(1), Some(1))
    );
    // Ranks are competition ranks over the rounded scores, in the order of the list.
    let ranks: Vec<(f64, u64)> = counties
        .iter()
        .filter_map(|e| Some((e["score"].as_f64()?, e["rank"].as_u64()?)))
        .collect();
    for (s, r) in &ranks {
        let above = ranks.iter().filter(|(o, _)| o > s).count() as u64;
        assert_eq!(*r, above + 1);
    }

    // The workbook.
    let xlsx = tmp.path().join("a.xlsx");
    ok(
        &wh,
        &[
            "assess",
            "--quarter",
            "2025Q3",
            "--format",
            "xlsx",
            "--out",
            xlsx.to_str().unwrap(),
        ],
    );
    use calamine::{open_workbook, Data, Reader, Xlsx};
    let mut wb: Xlsx<_> = open_workbook(&xlsx).unwrap();
    assert_eq!(wb.sheet_names(), vec!["省辖市", "县（市、区）", "说明"]);
    let sheet = wb.worksheet_range("县（市、区）").unwrap();
    let header: Vec<String> = sheet
        .rows()
        .next()
        .unwrap()
        .iter()
        .map(|c| c.to_string())
        .collect();
    assert_eq!(
        &header[..6],
        &["排名", "市内排名", "代码", "名称", "所属市", "得分"]
    );
    assert!(
        header.iter().any(|h| h.starts_with("按期办结率")),
        "{header:?}"
    );
    let row = sheet
        .rows()
        .find(|r| r.get(2) == Some(&Data::String("410102".into())))
        .unwrap();
    assert_eq!(row[3], Data::String("中原区".into()));
    assert_eq!(row[4], Data::String("郑州市".into()));
    assert_eq!(row[5], Data::Float(94.91));
    let col = header
        .iter()
        .position(|h| h.starts_with("按期办结率"))
        .unwrap();
    let on_time = zy["indicators"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "workorders.on_time_rate")
        .unwrap();
    match on_time["value"].as_f64() {
        Some(v) => assert_eq!(row[col], Data::Float(v)),
        None => assert_eq!(row[col], Data::Empty),
    }
    let cities_sheet = wb.worksheet_range("省辖市").unwrap();
    assert_eq!(cities_sheet.rows().count(), 3, "a header and two cities");

    // The printable page.
    let html = ok(&wh, &["assess", "--quarter", "2025Q3", "--format", "html"]);
    assert!(html.contains("size: A4 landscape") && html.contains("<html lang=\"zh-CN\">"));
    assert!(html.contains("河南省公共法律服务考核 · 2025年第三季度"));
    for e in cities.iter().chain(counties) {
        assert!(html.contains(&format!(
            "<tr data-code=\"{}\">",
            e["code"].as_str().unwrap()
        )));
    }
    let greens: u64 = cities
        .iter()
        .chain(counties)
        .map(|e| e["green"].as_u64().unwrap())
        .sum();
    assert_eq!(html.matches("class=\"num green\"").count() as u64, greens);
    let reds: u64 = cities
        .iter()
        .chain(counties)
        .map(|e| e["red"].as_u64().unwrap())
        .sum();
    assert_eq!(html.matches("class=\"num red\"").count() as u64, reds);

    // Method files: replaced from a folder, refused with the file and the reason.
    let seeds = tmp.path().join("seeds");
    std::fs::create_dir(&seeds).unwrap();
    std::fs::write(
        seeds.join("assessment.toml"),
        std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds/assessment.toml"),
        )
        .unwrap()
        .replace(
            "\"coverage.township_build_rate\" = 1",
            "\"coverage.township_build_rate\" = 0",
        ),
    )
    .unwrap();
    let (_, b) = assess_json(&wh, &["--seeds", seeds.to_str().unwrap()]);
    assert_ne!(
        a["method"]["assessment_toml_sha256"],
        b["method"]["assessment_toml_sha256"]
    );
    assert_eq!(
        a["method"]["targets_csv_sha256"],
        b["method"]["targets_csv_sha256"]
    );
    std::fs::write(seeds.join("targets.csv"), "indicator,comparison,target,from_year\nhotline.answer_rate,>=,0.9,2020\nhotline.answer_rate,=,0.5,2022\n").unwrap();
    let out = plsw(
        &wh,
        &[
            "assess",
            "--quarter",
            "2025Q3",
            "--seeds",
            seeds.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("targets.csv, line 3") && err.contains("must be 1 (everything) or 0"),
        "{err}"
    );
    let out = plsw(&wh, &["assess", "--quarter", "2031Q1"]);
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("no indicators for 2031Q1 (the warehouse has 2025Q2 to 2025Q4)"));
}

/// 济源 (419001) gets its county center in a registry snapshot that arrives after publishing:
/// the 2025Q3 indicators change, the publication does not.
#[test]
fn a_published_quarter_stays_byte_identical_after_later_loads() {
    let (tmp, wh) = crate::indicators::fixture_warehouse();
    let (fresh_before, _) = assess_json(&wh, &[]);
    let out = plsw(
        &wh,
        &[
            "assess",
            "--quarter",
            "2025Q3",
            "--publish",
            "--format",
            "json",
        ],
    );
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("published 2025Q3 revision 1"));
    let published_then = String::from_utf8(out.stdout).unwrap();
    assert_eq!(published_then, fresh_before, "published what it computed");

    let snapshot = tmp.path().join("2025-09-30.csv");
    let base = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/indicators/platforms/2025-09-15.csv"),
    )
    .unwrap();
    std::fs::write(
        &snapshot,
        format!("{base}PC4,county,419001,济源市公共法律服务中心,2025-01-01,true,notarization,cctv;id_reader;doc_camera;rating_device,\n"),
    )
    .unwrap();
    ok(
        &wh,
        &[
            "ingest",
            "platforms",
            "--as-of",
            "2025-09-30",
            snapshot.to_str().unwrap(),
        ],
    );
    ok(&wh, &["transform"]);

    let (published_now, _) = assess_json(&wh, &["--published"]);
    assert_eq!(
        published_now, published_then,
        "byte-identical after the load"
    );
    let (fresh_now, fresh) = assess_json(&wh, &[]);
    let (_, then) = assess_json(&wh, &["--published"]);
    let score = |a: &serde_json::Value| entry(a, "counties", "419001")["score"].as_f64();
    assert!(
        score(&fresh) > score(&then),
        "the new center raises 济源's score: {:?} → {:?}",
        score(&then),
        score(&fresh)
    );
    assert_ne!(fresh_now, published_now);
    // Time travel: recomputing at the recorded versions gives the same bytes.
    let out = plsw(
        &wh,
        &[
            "assess",
            "--quarter",
            "2025Q3",
            "--published",
            "--verify",
            "--format",
            "json",
        ],
    );
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("reproduced"));

    // A second publication is a new revision; the first stays.
    ok(&wh, &["assess", "--quarter", "2025Q3", "--publish"]);
    let (r2, _) = assess_json(&wh, &["--published"]);
    assert_eq!(r2, fresh_now);
    let (r1, _) = assess_json(&wh, &["--published", "--revision", "1"]);
    assert_eq!(r1, published_then);

    // The API serves it: the province byte for byte, a city only its places.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let w = Warehouse::open(wh.to_str().unwrap()).await.unwrap();
        let province = tokens::create(&w, "sfj", Role::Viewer, Scope::Province)
            .await
            .unwrap()
            .0;
        let jiyuan = tokens::create(&w, "sfj", Role::Viewer, Scope::parse("419000"))
            .await
            .unwrap()
            .0;
        let router = app(AppState::new(w, Limits::default()));
        let get = |uri: &str, token: &str| {
            let req = Request::builder()
                .uri(uri)
                .header("authorization", format!("Bearer {token}"))
                .body(Body::empty())
                .unwrap();
            let router = router.clone();
            async move {
                let resp = router.oneshot(req).await.unwrap();
                let (parts, body) = resp.into_parts();
                let bytes = axum::body::to_bytes(body, 64 << 20).await.unwrap();
                (parts.status, parts.headers, bytes)
            }
        };
        let (s, h, body) = get("/v1/assessments/2025Q3?revision=1", &province).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(&h["x-revision"], "1");
        assert_eq!(String::from_utf8(body.to_vec()).unwrap(), published_then);
        let (_, h, body) = get("/v1/assessments/2025Q3", &province).await;
        assert_eq!(
            (&h["x-revision"], body.to_vec()),
            (&"2".parse().unwrap(), r2.clone().into_bytes())
        );
        // Live: computed now, the same figures as a fresh `plsw assess`.
        let (s, h, body) = get("/v1/assessments/2025Q3?live=true", &province).await;
        assert_eq!((s, h["x-live"].to_str().unwrap()), (StatusCode::OK, "true"));
        let mut live: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let mut fresh: serde_json::Value = serde_json::from_str(&r2).unwrap();
        live["table_versions"] = serde_json::Value::Null;
        fresh["table_versions"] = serde_json::Value::Null;
        assert_eq!(live, fresh);
        let (s, _, body) = get("/v1/assessments/2025Q3.json", &jiyuan).await;
        assert_eq!(s, StatusCode::OK);
        let mine: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let codes = |level: &str| -> Vec<String> {
            mine[level]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["code"].as_str().unwrap().to_string())
                .collect()
        };
        assert_eq!(
            (codes("cities"), codes("counties")),
            (vec!["419000".to_string()], vec!["419001".to_string()])
        );
        let (s, h, body) = get("/v1/assessments/2025Q3.xlsx", &jiyuan).await;
        assert_eq!(s, StatusCode::OK);
        assert!(h["content-type"]
            .to_str()
            .unwrap()
            .contains("spreadsheetml"));
        let mut wb = calamine::Xlsx::new(std::io::Cursor::new(body.to_vec())).unwrap();
        use calamine::Reader;
        let counties = wb.worksheet_range("县（市、区）").unwrap();
        assert_eq!(counties.rows().count(), 2, "a header and 济源市 only");
        let (s, _, body) = get("/v1/assessments/2025Q3.html", &jiyuan).await;
        assert_eq!(s, StatusCode::OK);
        let html = String::from_utf8(body.to_vec()).unwrap();
        assert!(html.contains("data-code=\"419001\"") && !html.contains("data-code=\"410102\""));
        let (s, _, body) = get("/v1/assessments", &jiyuan).await;
        assert_eq!(s, StatusCode::OK);
        let list: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(list["assessments"].as_array().unwrap().len(), 2);
        let (s, _, body) = get("/v1/assessments/2024Q1", &province).await;
        let e: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            (s, e["error"].as_str()),
            (StatusCode::NOT_FOUND, Some("not_published"))
        );
        let (s, _, _) = get("/v1/assessments/2025Q3.pdf", &province).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
    });
}
