//! The answers over a real warehouse: Parquet files written by the warehouse, read by a
//! real DuckDB through the confined query engine, judged by `analysis`.

use analysis::compare::{CompareOptions, Verdict};
use analysis::regressions::DetectOptions;
use shared::result::ResultRecord;

use super::compare;
use super::regressions;
use super::selection::Selection;
use crate::query::QueryEngine;
use crate::warehouse::schema::Origin;
use crate::warehouse::testutil::record;
use crate::warehouse::Warehouse;

/// `n` samples around `center` ns, deterministic: ±1 % in a fixed pattern.
fn samples(center: f64, n: usize) -> Vec<f64> {
    (0..n).map(|i| center * (1.0 + 0.01 * (((i * 7919) % 201) as f64 / 100.0 - 1.0))).collect()
}

/// A result of `cell_key` in `sweep`, started at `minute` minutes past a fixed time.
fn run(sweep: &str, cell_key: &str, minute: i64, center: f64, git_commit: &str) -> ResultRecord {
    let mut r = record(sweep, cell_key, 1, &samples(center, 200));
    r.provenance.started_at_ms += minute * 60_000;
    r.provenance.finished_at_ms += minute * 60_000;
    r.provenance.git_commit = git_commit.into();
    r
}

async fn engine_over(records: &[ResultRecord]) -> (tempfile::TempDir, QueryEngine) {
    let dir = tempfile::tempdir().expect("tempdir");
    let wh = Warehouse::open(&dir.path().join("wh").to_string_lossy()).await.expect("open");
    wh.write_results(records, Origin::Measured).await.expect("write");
    let files = wh.sync_to_local(&dir.path().join("cache")).await.expect("sync");
    (dir, QueryEngine::open(&files).expect("engine"))
}

#[tokio::test]
async fn compare_matches_cells_judges_them_and_names_what_changed() {
    let key_a = "a".repeat(64);
    let key_b = "b".repeat(64);
    let mut only_base = run("s-base", &key_b, 0, 5e6, "abc");
    only_base.coordinates.batch = 8;
    let records = vec![run("s-base", &key_a, 0, 10e6, "abc"), only_base, run("s-new", &key_a, 10, 12e6, "def")];
    let (_dir, engine) = engine_over(&records).await;
    let base = compare::load(&engine, &Selection::parse("s-base").unwrap()).expect("base");
    let new = compare::load(&engine, &Selection::parse("sweep_id=s-new").unwrap()).expect("new");
    assert_eq!((base.len(), new.len()), (2, 1));
    let matched = compare::judge(base, new, &CompareOptions::DEFAULT);
    assert_eq!((matched.pairs.len(), matched.only_base.len(), matched.only_new.len()), (1, 1, 0));
    let pair = &matched.pairs[0];
    let c = pair.outcome.as_ref().expect("judged");
    assert_eq!(c.verdict, Verdict::Slower);
    assert!((c.ratio - 1.2).abs() < 0.01, "{c:?}");
    assert!(c.ratio_ci.low() > 1.15 && c.ratio_ci.high() < 1.25, "{c:?}");
    assert_eq!(pair.changes(), "git_commit abc → def");
    assert_eq!(pair.base.samples.len(), 200);
    // Every column renders.
    let rows = compare::to_rows(&matched.pairs).expect("rows");
    assert_eq!(rows.n_rows(), 1);
    // A selection that matches nothing loads nothing (the CLI then says what exists).
    assert!(compare::load(&engine, &Selection::parse("engine_version=9.9").unwrap()).unwrap().is_empty());
    assert!(compare::describe_warehouse(&engine).unwrap().contains("s-base"));
}

#[tokio::test]
async fn regressions_find_the_first_slower_run_and_what_changed_there() {
    let key = "c".repeat(64);
    let mut records = Vec::new();
    for i in 0..12i64 {
        let (center, commit) = if i < 6 { (10e6, "abc") } else { (12e6, "def") };
        // A little run-to-run noise, so the series is not a perfect step.
        let center = center * (1.0 + 0.002 * ((i % 3) as f64 - 1.0));
        records.push(run(&format!("s{i:02}"), &key, i * 60, center, commit));
    }
    let flat_key = "d".repeat(64);
    for i in 0..12i64 {
        let mut r = run(&format!("f{i:02}"), &flat_key, i * 60, 7e6 * (1.0 + 0.002 * ((i % 3) as f64 - 1.0)), "abc");
        r.coordinates.batch = 4;
        records.push(r);
    }
    let (_dir, engine) = engine_over(&records).await;
    let series = regressions::load(&engine, &Selection::parse("all").unwrap(), None).expect("series");
    assert_eq!(series.len(), 2);
    assert!(series.iter().all(|s| s.runs.len() == 12));
    let findings = regressions::find(series, &DetectOptions::DEFAULT);
    assert_eq!(findings.found.len(), 1, "one step, one alarm; the flat series none");
    let f = &findings.found[0];
    assert_eq!((f.alarm.first_bad_run, f.first_bad.sweep_id.as_str()), (6, "s06"));
    assert!((f.alarm.ratio - 1.2).abs() < 0.01, "{:?}", f.alarm);
    assert_eq!(f.last_good.provenance.changes_to(&f.first_bad.provenance), "git_commit abc → def");
    let rows = regressions::to_rows(&findings.found, 0, "m").expect("rows match the alarms table");
    assert_eq!(rows.n_rows(), 1);
    // --since after the step: too few runs before it, no alarm.
    let late = records[9].provenance.started_at_ms;
    let series = regressions::load(&engine, &Selection::parse("all").unwrap(), Some(late)).expect("series");
    assert!(series.iter().all(|s| s.runs.len() == 3));
    assert!(regressions::find(series, &DetectOptions::DEFAULT).found.is_empty());
}
