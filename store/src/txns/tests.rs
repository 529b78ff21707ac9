use super::*;

use crate::store::Warehouse;
use datafusion::arrow::array::RecordBatch;
use plsw_schemas::tables;

#[test]
fn sorts_the_logs_files() {
    let names = [
        "00000000000000000000.json",
        "00000000000000000001.json",
        "00000000000000000002.checkpoint.parquet",
        "00000000000000000002.json",
        "00000000000000000003.json",
        "00000000000000000004.checkpoint.0000000001.0000000002.parquet",
        "00000000000000000004.json",
        "00000000000000000001.00000000000000000003.compacted.json",
        "_last_checkpoint",
        "_commit_a1b2.json.tmp",
        "０0000000000000000005.json",
    ];
    let l = listing(names.into_iter());
    assert_eq!(l.commits, [0, 1, 2, 3, 4]);
    assert_eq!(l.checkpoints, [2]);
    assert_eq!(l.other_checkpoints, [4]);
    // At version 3: the checkpoint of 2, then commit 3.
    assert_eq!(plan(&l, 3), Some((Some(2), vec![3])));
    assert_eq!(plan(&l, 1), Some((None, vec![0, 1])));
    // A multi-part checkpoint at 4 is left to the kernel.
    assert_eq!(plan(&l, 4), None);
    // A commit missing after the checkpoint: the kernel's.
    let gap = listing(["00000000000000000000.json", "00000000000000000002.json"].into_iter());
    assert_eq!(plan(&gap, 2), None);
}

#[test]
fn reads_a_commits_transactions_only() {
    let commit = concat!(
        r#"{"commitInfo":{"operation":"WRITE","plsw.load_ids":["x"]}}"#,
        "\n",
        r#"{"txn":{"appId":"a1","version":1,"lastUpdated":5}}"#,
        "\n",
        r#"{"add":{"path":"p.parquet","txn":"not an action"}}"#,
        "\n",
        r#"{"txn":{"appId":"b2","version":1}}"#,
        "\n",
        r#"{ "txn" : { "version": 1, "appId": "c3" } }"#,
        "\n",
        r#"{"add":{"path":"\"txn\".parquet"}}"#,
        "\n"
    );
    let mut ids = HashSet::new();
    assert_eq!(commit_ids(commit.as_bytes(), &mut ids), Some(()));
    let want = ["a1", "b2", "c3"].map(String::from);
    assert_eq!(ids, HashSet::from(want));
    assert_eq!(commit_ids(b"{\"txn\":{\"version\":1}}", &mut ids), None);
}

/// Commits a load's (empty) staged rows to `cases` as the load `id`.
async fn commit_load(wh: &Warehouse, id: &str) {
    let mut w = wh
        .writer(&tables::CASES, id)
        .await
        .expect("writer")
        .expect("not loaded yet");
    w.write(RecordBatch::new_empty(tables::CASES.schema()))
        .await
        .expect("write");
    wh.commit_staged(vec![w.finish().await.expect("staged")])
        .await
        .expect("commit");
}

/// What the log's files say is what the kernel says, id by id: before and after a checkpoint,
/// and for ids it does not hold; a multi-part checkpoint is left to the kernel.
#[tokio::test]
async fn finds_the_loads_the_kernel_finds() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wh = Warehouse::open(dir.path().to_str().expect("utf-8"))
        .await
        .expect("warehouse");
    let kernel = |table: DeltaTable, id: String| async move {
        table
            .snapshot()
            .expect("snapshot")
            .transaction_version(table.log_store().as_ref(), id)
            .await
            .expect("kernel")
            .is_some()
    };
    let ids: Vec<String> = (0..6).map(|i| format!("load{i}")).collect();
    for id in &ids[..3] {
        commit_load(&wh, id).await;
    }
    let table = wh.table(&tables::CASES).await.expect("table");
    deltalake::checkpoints::create_checkpoint(&table, None)
        .await
        .expect("checkpoint");
    let checkpoint = table.version().expect("version");
    for id in &ids[3..5] {
        commit_load(&wh, id).await;
    }
    let table = wh.table(&tables::CASES).await.expect("table");
    // The commits the checkpoint covers are taken away: their loads must come from it.
    let log = dir.path().join("cases").join("_delta_log");
    for v in 0..=checkpoint {
        std::fs::remove_file(log.join(format!("{v:020}.json"))).expect("old commit");
    }
    let found = app_ids(&table).await.expect("read from the log's files");
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(found.contains(id), i < 5, "{id}");
        assert_eq!(kernel(table.clone(), id.clone()).await, i < 5, "{id}");
    }
    assert_eq!(found.len(), 5);
    // A second load of an id already there is refused by the writer.
    assert!(wh
        .writer(&tables::CASES, &ids[4])
        .await
        .expect("writer")
        .is_none());

    let version = table.version().expect("version");
    std::fs::write(
        log.join(format!(
            "{version:020}.checkpoint.0000000001.0000000001.parquet"
        )),
        b"",
    )
    .expect("odd checkpoint");
    assert_eq!(app_ids(&table).await, None);
}

/// The log is listed from the checkpoint `_last_checkpoint` names when it is at or below the
/// version read; without one, or with one past the version, whole.
#[tokio::test]
async fn lists_the_log_from_the_last_checkpoint() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("_delta_log");
    std::fs::create_dir(&log).expect("log dir");
    let mut all = Vec::new();
    for v in 0..=12u64 {
        all.push(format!("{v:020}.json"));
    }
    all.push(format!("{:020}.checkpoint.parquet", 5));
    all.push(format!("{:020}.checkpoint.parquet", 10));
    all.push(format!("{:020}.crc", 10));
    for name in &all {
        std::fs::write(log.join(name), b"").expect("file");
    }
    let store = object_store::local::LocalFileSystem::new_with_prefix(dir.path()).expect("store");
    let names = |version| {
        let store = &store;
        async move {
            let mut n = log_names(store, version).await.expect("listed");
            n.sort();
            n
        }
    };
    let mut whole = all.clone();
    whole.sort();
    // No hint: every file.
    assert_eq!(names(12).await, whole);
    let hint = |v: u64| {
        std::fs::write(
            log.join("_last_checkpoint"),
            format!(r#"{{"version":{v},"size":3,"sizeInBytes":100}}"#),
        )
        .expect("hint")
    };
    hint(10);
    let from_10: Vec<String> = [
        format!("{:020}.checkpoint.parquet", 10),
        format!("{:020}.crc", 10),
        format!("{:020}.json", 10),
        format!("{:020}.json", 11),
        format!("{:020}.json", 12),
        "_last_checkpoint".to_string(),
    ]
    .into();
    assert_eq!(names(12).await, from_10);
    assert_eq!(
        plan(&listing(from_10.iter().map(String::as_str)), 12),
        Some((Some(10), vec![11, 12]))
    );
    // Read at a version before the hint's checkpoint: the whole log, and the older checkpoint.
    let mut with_hint = whole.clone();
    with_hint.push("_last_checkpoint".into());
    with_hint.sort();
    assert_eq!(names(7).await, with_hint);
    assert_eq!(
        plan(&listing(with_hint.iter().map(String::as_str)), 7),
        Some((Some(5), vec![6, 7]))
    );
    // A hint that cannot be read is no hint.
    std::fs::write(log.join("_last_checkpoint"), b"{not json").expect("hint");
    assert_eq!(names(12).await, with_hint);
    // A hint naming a checkpoint that is not there: the listing from it has neither a
    // checkpoint nor every commit, which leaves the log to the kernel.
    hint(11);
    let from_11 = names(12).await;
    assert_eq!(plan(&listing(from_11.iter().map(String::as_str)), 12), None);
}
