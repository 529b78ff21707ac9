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
