//! Behaviour tests of the warehouse: commit visibility, dedup, crash between write and
//! commit, gc, compaction, commit races, sync. Most run over an in-memory object store;
//! the local-folder ones use a temporary folder. No network.

use std::sync::Arc;
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use futures::TryStreamExt;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

use super::manifest::{self, ManifestState};
use super::schema::{Origin, ResultKey, Table};
use super::testutil::record;
use super::{writer, Warehouse};

fn memory_warehouse() -> (Warehouse, Arc<dyn ObjectStore>) {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    (Warehouse::from_store(store.clone(), None), store)
}

async fn object_paths(store: &dyn ObjectStore, prefix: &str) -> Vec<String> {
    let listed: Vec<_> = store.list(Some(&Path::from(prefix))).try_collect().await.expect("list");
    let mut paths: Vec<String> = listed.iter().map(|m| m.location.to_string()).collect();
    paths.sort();
    paths
}

/// Every row of every live file of `table`, rendered as text and sorted.
async fn sorted_rows(warehouse: &Warehouse, table: Table) -> Vec<String> {
    let mut rows = Vec::new();
    for file in warehouse.live_files(table).await.expect("live") {
        for batch in warehouse.read_file(table, &file).await.expect("read") {
            rows.extend(render(&batch));
        }
    }
    rows.sort();
    rows
}

fn render(batch: &RecordBatch) -> Vec<String> {
    let options = FormatOptions::default().with_null("NULL");
    let formatters: Vec<_> =
        batch.columns().iter().map(|c| ArrayFormatter::try_new(c.as_ref(), &options).expect("formatter")).collect();
    (0..batch.num_rows())
        .map(|row| formatters.iter().map(|f| f.value(row).to_string()).collect::<Vec<_>>().join("|"))
        .collect()
}

#[tokio::test]
async fn written_results_are_visible_with_their_samples() {
    let (warehouse, _) = memory_warehouse();
    let records = vec![record("s1", "k1", 1, &[1.0, 2.0, 3.0]), record("s1", "k2", 1, &[4.0])];
    let outcome = warehouse.write_results(&records, Origin::Measured).await.expect("write");
    assert_eq!((outcome.new, outcome.duplicate, outcome.sequence), (2, 0, Some(1)));
    let results = warehouse.live_files(Table::Results).await.expect("results");
    assert_eq!(results.len(), 1);
    assert!(results[0].path.starts_with("results/date=2025-03-05/sweep=s1/"), "{}", results[0].path);
    assert_eq!(results[0].rows, 2);
    let samples = warehouse.live_files(Table::Samples).await.expect("samples");
    assert_eq!(samples.iter().map(|f| f.rows).sum::<u64>(), 4);
    assert_eq!(sorted_rows(&warehouse, Table::Samples).await.len(), 4);
}

#[tokio::test]
async fn writing_the_same_result_twice_stores_it_once() {
    let (warehouse, _) = memory_warehouse();
    let records = vec![record("s1", "k1", 1, &[1.0]), record("s1", "k1", 1, &[1.0])];
    let first = warehouse.write_results(&records, Origin::Measured).await.expect("first");
    assert_eq!((first.new, first.duplicate), (1, 1));
    let again = warehouse.write_results(&records[..1], Origin::Measured).await.expect("again");
    assert_eq!((again.new, again.duplicate, again.files.len()), (0, 1, 0));
    let mixed = vec![record("s1", "k1", 1, &[1.0]), record("s1", "k1", 2, &[1.0])];
    let third = warehouse.write_results(&mixed, Origin::Measured).await.expect("third");
    assert_eq!((third.new, third.duplicate), (1, 1));
    assert_eq!(sorted_rows(&warehouse, Table::Results).await.len(), 2);
}

#[tokio::test]
async fn a_second_process_sees_the_first_ones_keys() {
    let (first, store) = memory_warehouse();
    let records = vec![record("s1", "k1", 1, &[1.0])];
    first.write_results(&records, Origin::Measured).await.expect("first");
    let second = Warehouse::from_store(store, None);
    let outcome = second.write_results(&records, Origin::Measured).await.expect("second");
    assert_eq!((outcome.new, outcome.duplicate), (0, 1));
    let key = ResultKey { sweep_id: Some("s1".into()), cell_key: "k1".into(), attempt: 1 };
    assert!(second.is_committed(&key).await.expect("committed"));
}

#[tokio::test]
async fn a_crash_between_write_and_commit_leaves_only_garbage_that_gc_removes() {
    let (warehouse, store) = memory_warehouse();
    let committed = vec![record("s1", "k0", 1, &[1.0])];
    warehouse.write_results(&committed, Origin::Measured).await.expect("committed write");
    // The crash: files staged, commit never made.
    let orphan = record("s1", "k1", 1, &[1.0, 2.0]);
    let staged = writer::stage_results(store.as_ref(), &[&orphan], Origin::Measured).await.expect("stage");
    assert_eq!(staged.len(), 2);
    assert_eq!(object_paths(store.as_ref(), "results").await.len(), 2, "the orphan exists in the store");

    let reader = Warehouse::from_store(store.clone(), None);
    let visible = reader.live_files(Table::Results).await.expect("live");
    assert_eq!(visible.len(), 1);
    assert!(staged.iter().all(|s| visible.iter().all(|v| v.path != s.path)));
    let key = ResultKey::of(&orphan);
    assert!(!reader.is_committed(&key).await.expect("keys"));

    let young = reader.gc(Duration::from_secs(3600)).await.expect("gc young");
    assert_eq!((young.deleted.len(), young.kept_young), (0, 2), "a writer in flight is never raced");
    let outcome = reader.gc(Duration::ZERO).await.expect("gc");
    let mut deleted = outcome.deleted.clone();
    deleted.sort();
    let mut expected: Vec<String> = staged.iter().map(|f| f.path.clone()).collect();
    expected.sort();
    assert_eq!(deleted, expected);
    assert_eq!(object_paths(store.as_ref(), "results").await, vec![visible[0].path.clone()]);
    assert_eq!(sorted_rows(&reader, Table::Results).await.len(), 1);

    // The re-sent result is then stored normally.
    let retry = reader.write_results(&[orphan], Origin::Measured).await.expect("retry");
    assert_eq!(retry.new, 1);
}

#[tokio::test]
async fn a_writer_that_loses_the_race_for_a_sequence_number_is_told_so() {
    let (warehouse, store) = memory_warehouse();
    warehouse.write_results(&[record("s1", "k1", 1, &[1.0])], Origin::Measured).await.expect("write");
    let mut stale = ManifestState::default();
    let lost =
        manifest::commit(store.as_ref(), None, &mut stale, Vec::new(), Vec::new(), Vec::new()).await.expect("commit");
    assert_eq!(lost, None);
    assert_eq!(stale.sequence, 0, "a lost commit changes nothing");
    manifest::refresh(store.as_ref(), &mut stale).await.expect("refresh");
    let won =
        manifest::commit(store.as_ref(), None, &mut stale, Vec::new(), Vec::new(), Vec::new()).await.expect("commit");
    assert_eq!(won, Some(2));
}

#[tokio::test]
async fn compaction_keeps_every_row_and_leaves_one_file() {
    let (warehouse, _) = memory_warehouse();
    for i in 0..4 {
        let records =
            vec![record("s1", &format!("k{i}"), 1, &[i as f64, 2.0]), record("s1", &format!("k{i}"), 2, &[5.0])];
        warehouse.write_results(&records, Origin::Measured).await.expect("write");
    }
    let before_results = sorted_rows(&warehouse, Table::Results).await;
    let before_samples = sorted_rows(&warehouse, Table::Samples).await;
    assert_eq!(warehouse.live_files(Table::Results).await.expect("live").len(), 4);
    let partitions = warehouse.partitions(Table::Results).await.expect("partitions");
    assert_eq!(partitions, vec!["date=2025-03-05/sweep=s1".to_string()]);
    for table in [Table::Results, Table::Samples] {
        let outcome = warehouse.compact(table, &partitions[0]).await.expect("compact");
        assert_eq!(outcome.removed.len(), 4);
        assert_eq!(warehouse.live_files(table).await.expect("live").len(), 1);
    }
    assert_eq!(sorted_rows(&warehouse, Table::Results).await, before_results);
    assert_eq!(sorted_rows(&warehouse, Table::Samples).await, before_samples);
    assert_eq!(before_samples.len(), 12);
    // Compaction keeps the keys: the same results still deduplicate.
    let again = warehouse.write_results(&[record("s1", "k0", 1, &[0.0])], Origin::Measured).await.expect("again");
    assert_eq!(again.duplicate, 1);
    // The replaced files are garbage now.
    let gc = warehouse.gc(Duration::ZERO).await.expect("gc");
    assert_eq!(gc.deleted.len(), 8);
    assert_eq!(sorted_rows(&warehouse, Table::Results).await, before_results);
}

#[tokio::test]
async fn files_a_compaction_removed_are_never_committed_again() {
    let (warehouse, store) = memory_warehouse();
    // Staged and committed as the coordinator does (what a restart mirrors from Raft).
    let mut committed = Vec::new();
    for i in 0..2 {
        let r = record("s1", &format!("k{i}"), 1, &[1.0]);
        let files = warehouse.stage(&[&r], Origin::Measured).await.expect("stage");
        warehouse.commit_staged(files.clone(), vec![ResultKey::of(&r)]).await.expect("commit");
        committed.extend(files);
    }
    let before = sorted_rows(&warehouse, Table::Results).await;
    let partition = warehouse.partitions(Table::Results).await.expect("partitions").remove(0);
    for table in [Table::Results, Table::Samples] {
        warehouse.compact(table, &partition).await.expect("compact");
    }
    // The restart mirror: every file Raft ever listed, committed again.
    warehouse.commit_staged(committed.clone(), Vec::new()).await.expect("mirror");
    assert_eq!(sorted_rows(&warehouse, Table::Results).await, before, "rows came back twice");
    // Also from a process that starts from a checkpoint written after the compaction.
    let state = {
        let mut state = ManifestState::default();
        manifest::refresh(store.as_ref(), &mut state).await.expect("refresh");
        state
    };
    manifest::write_checkpoint(store.as_ref(), &state).await.expect("checkpoint");
    let fresh = Warehouse::from_store(store.clone(), None);
    fresh.commit_staged(committed, Vec::new()).await.expect("mirror");
    assert_eq!(sorted_rows(&fresh, Table::Results).await, before, "rows came back twice");
}

#[tokio::test]
async fn gc_keeps_staged_files_an_intent_names_until_it_is_cleared() {
    let (warehouse, store) = memory_warehouse();
    let r = record("s1", "k1", 1, &[1.0]);
    let files = warehouse.stage(&[&r], Origin::Measured).await.expect("stage");
    let intent = warehouse.record_intent(&files).await.expect("intent");
    // However old: Raft may have committed them while the coordinator is down.
    let gc = warehouse.gc(Duration::ZERO).await.expect("gc");
    assert!(gc.deleted.is_empty(), "deleted files an intent names: {:?}", gc.deleted);
    assert_eq!(object_paths(store.as_ref(), "_pending").await, vec![intent.clone()]);
    // A restart mirrors them and clears every intent; then only garbage is collected.
    warehouse.commit_staged(files.clone(), vec![ResultKey::of(&r)]).await.expect("mirror");
    assert_eq!(warehouse.clear_all_intents().await.expect("clear"), 1);
    assert!(warehouse.gc(Duration::ZERO).await.expect("gc").deleted.is_empty(), "committed files are live");
    let refused = warehouse.stage(&[&record("s1", "k2", 1, &[2.0])], Origin::Measured).await.expect("stage");
    let intent = warehouse.record_intent(&refused).await.expect("intent");
    warehouse.clear_intent(&intent).await;
    let gc = warehouse.gc(Duration::ZERO).await.expect("gc");
    assert_eq!(gc.deleted.len(), refused.len(), "{gc:?}");
}

#[tokio::test]
async fn a_mirror_finds_the_result_keys_inside_the_files_raft_listed() {
    let (warehouse, _) = memory_warehouse();
    let records = [record("s1", "k1", 1, &[1.0]), record("s1", "k2", 3, &[2.0])];
    let refs: Vec<&_> = records.iter().collect();
    let files = warehouse.stage(&refs, Origin::Measured).await.expect("stage");
    let results = files.iter().find(|f| f.table == Table::Results).expect("a results file");
    let keys = warehouse.result_keys_in(results).await.expect("keys");
    assert_eq!(keys, records.iter().map(ResultKey::of).collect::<Vec<_>>());
    let paths: Vec<String> = files.iter().map(|f| f.path.clone()).collect();
    assert_eq!(warehouse.never_committed(paths.clone()).await.expect("paths").len(), files.len());
    warehouse.commit_staged(files, keys).await.expect("mirror");
    assert!(warehouse.is_committed(&ResultKey::of(&records[1])).await.expect("read"), "re-sends are duplicates now");
    assert!(warehouse.never_committed(paths).await.expect("paths").is_empty());
}

/// A file written before nullable columns were added (`device`, then the six
/// `validation*`) still reads, and compacts, with those columns null.
#[tokio::test]
async fn files_written_before_the_device_and_validation_columns_still_read_and_compact() {
    let (warehouse, store) = memory_warehouse();
    let r = record("s1", "k1", 1, &[1.0]);
    let batch = super::schema::results_batch(&[&r], Origin::Measured).expect("batch");
    let old = batch.project(&(0..batch.num_columns() - 7).collect::<Vec<_>>()).expect("without the newer columns");
    assert_eq!(old.schema().fields().last().map(|f| f.name().as_str()), Some("finished_at"));
    let mut bytes = Vec::new();
    let mut w = parquet::arrow::ArrowWriter::try_new(&mut bytes, old.schema(), None).expect("writer");
    w.write(&old).expect("write");
    w.close().expect("close");
    let path = "results/date=2025-03-05/sweep=s1/old.parquet";
    let n_bytes = bytes.len() as u64;
    store.put(&Path::from(path), bytes.into()).await.expect("put");
    let entry = super::manifest::FileEntry { path: path.into(), table: Table::Results, rows: 1, bytes: n_bytes };
    warehouse.commit_staged(vec![entry.clone()], vec![ResultKey::of(&r)]).await.expect("commit");
    let read = warehouse.read_file(Table::Results, &entry).await.expect("reads");
    for name in ["device", "validation", "validation_reference", "validation_cosine", "validation_reason"] {
        let column = read[0].column_by_name(name).unwrap_or_else(|| panic!("a {name} column"));
        assert_eq!(column.null_count(), 1, "{name}");
    }
    warehouse.write_results(&[record("s1", "k2", 1, &[2.0])], Origin::Measured).await.expect("a new file");
    let out = warehouse.compact(Table::Results, "date=2025-03-05/sweep=s1").await.expect("compacts");
    assert_eq!(out.removed.len(), 2);
}

#[tokio::test]
async fn imported_rows_cannot_be_written_as_measured() {
    let (warehouse, _) = memory_warehouse();
    let mut imported = record("s1", "k1", 1, &[1.0]);
    imported.provenance.weights_source = "imported:legacy-json:abc".into();
    let err = warehouse.write_results(&[imported.clone()], Origin::Measured).await.expect_err("refused");
    assert!(err.to_string().contains("k1"), "{err}");
    let outcome = warehouse.write_results(&[imported], Origin::Imported).await.expect("imported");
    assert_eq!(outcome.new, 1);
    let rows = sorted_rows(&warehouse, Table::Results).await;
    assert!(rows[0].contains("|imported|"), "{}", rows[0]);
}

#[tokio::test]
async fn a_reader_starts_from_the_newest_checkpoint() {
    let (warehouse, store) = memory_warehouse();
    for i in 0..manifest::CHECKPOINT_EVERY + 2 {
        warehouse.write_results(&[record("s1", &format!("k{i}"), 1, &[1.0])], Origin::Measured).await.expect("write");
    }
    assert_eq!(object_paths(store.as_ref(), manifest::CHECKPOINT_DIR).await.len(), 1);
    // Without the early commits, a reader can only get there through the checkpoint.
    for sequence in 1..=manifest::CHECKPOINT_EVERY {
        store.delete(&manifest::commit_path(sequence)).await.expect("delete");
    }
    let reader = Warehouse::from_store(store, None);
    assert_eq!(reader.live_files(Table::Results).await.expect("live").len(), manifest::CHECKPOINT_EVERY as usize + 2);
}

#[tokio::test]
async fn the_small_tables_are_written_and_committed() {
    let (warehouse, _) = memory_warehouse();
    let row = super::schema::AgentRow {
        agent_id: "a1".into(),
        hostname: Some("box".into()),
        hardware_class: "cpu/x".into(),
        fingerprint_hash: "f".into(),
        fingerprint_json: "{}".into(),
        agent_version: "0.1.0".into(),
        registered_at_ms: 1_741_204_633_297,
        last_seen_at_ms: 1_741_204_633_297,
    };
    let outcome = warehouse.write_agents(&[row]).await.expect("agents");
    assert_eq!(outcome.new, 1);
    let files = warehouse.live_files(Table::Agents).await.expect("live");
    assert_eq!(files.len(), 1);
    assert!(files[0].path.starts_with("agents/date=2025-03-05/"), "{}", files[0].path);
}

#[tokio::test]
async fn a_local_folder_warehouse_syncs_in_place() {
    let dir = tempfile::tempdir().expect("tempdir");
    let warehouse = Warehouse::open(dir.path().to_str().expect("utf-8")).await.expect("open");
    warehouse.write_results(&[record("s1", "k1", 1, &[1.0])], Origin::Measured).await.expect("write");
    let local = warehouse.sync_to_local(&dir.path().join("unused-cache")).await.expect("sync");
    let results = &local.files[&Table::Results];
    assert_eq!(results.len(), 1);
    assert!(results[0].is_file(), "{}", results[0].display());
    assert!(!dir.path().join("unused-cache").exists());
}

#[tokio::test]
async fn a_remote_warehouse_syncs_committed_files_into_the_cache() {
    let (warehouse, store) = memory_warehouse();
    warehouse.write_results(&[record("s1", "k1", 1, &[1.0])], Origin::Measured).await.expect("write");
    writer::stage_results(store.as_ref(), &[&record("s1", "k2", 1, &[1.0])], Origin::Measured).await.expect("orphan");
    let cache = tempfile::tempdir().expect("tempdir");
    let local = warehouse.sync_to_local(cache.path()).await.expect("sync");
    assert_eq!(local.root, cache.path());
    let all: Vec<_> = local.files.values().flatten().collect();
    assert_eq!(all.len(), 2, "one results and one samples file, no orphan");
    for path in all {
        assert!(path.starts_with(cache.path()) && path.is_file(), "{}", path.display());
    }
    let again = warehouse.sync_to_local(cache.path()).await.expect("sync again");
    assert_eq!(again, local);
}

#[tokio::test]
async fn reimporting_a_legacy_file_adds_nothing() {
    let bytes = include_bytes!("../../tests/fixtures/legacy-json/performance_embedding_benchmark_results.json");
    let (records, _) = crate::import::legacy::parse(bytes, "perf.json").expect("parse");
    let (warehouse, _) = memory_warehouse();
    let first = warehouse.write_results(&records, Origin::Imported).await.expect("first");
    assert_eq!((first.new, first.duplicate), (27, 0));
    let (again, _) = crate::import::legacy::parse(bytes, "elsewhere/perf.json").expect("parse");
    let second = warehouse.write_results(&again, Origin::Imported).await.expect("second");
    assert_eq!((second.new, second.duplicate, second.sequence), (0, 27, None));
    assert_eq!(sorted_rows(&warehouse, Table::Samples).await.len(), 27 * 20);
    let files = warehouse.live_files(Table::Results).await.expect("live");
    assert!(files.iter().all(|f| f.path.contains("/sweep=imported/")), "{files:?}");
}

#[tokio::test]
async fn two_processes_racing_on_a_local_folder_both_commit_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().to_str().expect("utf-8");
    let (a, b) = (Warehouse::open(root).await.expect("a"), Warehouse::open(root).await.expect("b"));
    let shared_record = record("s1", "both", 1, &[1.0]);
    let batch_a = vec![shared_record.clone(), record("s1", "a", 1, &[1.0])];
    let batch_b = vec![shared_record, record("s1", "b", 1, &[1.0])];
    let (out_a, out_b) =
        tokio::join!(a.write_results(&batch_a, Origin::Measured), b.write_results(&batch_b, Origin::Measured));
    let (out_a, out_b) = (out_a.expect("a"), out_b.expect("b"));
    assert_eq!(out_a.new + out_b.new, 3, "the shared record is stored once");
    assert_eq!(out_a.duplicate + out_b.duplicate, 1);
    let mut sequences = vec![out_a.sequence, out_b.sequence];
    sequences.sort();
    assert_eq!(sequences, vec![Some(1), Some(2)]);
    let reader = Warehouse::open(root).await.expect("reader");
    assert_eq!(sorted_rows(&reader, Table::Results).await.len(), 3);
    // A stale writer is refused the taken sequence number by the file system too.
    let mut stale = ManifestState::default();
    let lost = manifest::commit(reader.store().as_ref(), None, &mut stale, Vec::new(), Vec::new(), Vec::new()).await;
    assert_eq!(lost.expect("no error"), None);
}
