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
    let base = compare::load(&engine, &Selection::parse("s-base").expect("test value")).expect("base");
    let new = compare::load(&engine, &Selection::parse("sweep_id=s-new").expect("test value")).expect("new");
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
    assert!(compare::load(&engine, &Selection::parse("engine_version=9.9").expect("test value"))
        .expect("test value")
        .is_empty());
    assert!(compare::describe_warehouse(&engine).expect("test value").contains("s-base"));
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
    let series = regressions::load(&engine, &Selection::parse("all").expect("test value"), None).expect("series");
    assert_eq!(series.len(), 2);
    assert!(series.iter().all(|s| s.runs.len() == 12));
    let findings = regressions::find(series, &DetectOptions::DEFAULT);
    assert_eq!(findings.found.len(), 1, "one step, one alarm; the flat series none");
    let f = &findings.found[0];
    assert_eq!((f.alarm.first_bad_run, f.first_bad.sweep_id.as_str()), (6, "s06"));
    assert!((f.alarm.ratio - 1.2).abs() < 0.01, "{:?}", f.alarm);
    assert_eq!(f.last_good.provenance.changes_to(&f.first_bad.provenance), "git_commit abc → def");
    let rows = regressions::to_rows(&findings.found, 0, &DetectOptions::DEFAULT).expect("rows match the alarms table");
    assert_eq!(rows.n_rows(), 1);
    // --since after the step: too few runs before it, no alarm.
    let late = records[9].provenance.started_at_ms;
    let series = regressions::load(&engine, &Selection::parse("all").expect("test value"), Some(late)).expect("series");
    assert!(series.iter().all(|s| s.runs.len() == 3));
    assert!(regressions::find(series, &DetectOptions::DEFAULT).found.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_latest_runs_raise_an_alarm_named_by_its_check() {
    // 10 steady runs, then 3 runs 10 % slower: the latest runs' checks confirm it, and
    // the alarm's method says which check found it. Change points need 4 runs a side
    // here, so E-divisive cannot claim a change 3 runs from the end first.
    let key = "e".repeat(64);
    let levels = [1.0, 1.002, 0.998, 1.0, 1.001, 0.999, 1.0, 1.002, 0.998, 1.0, 1.1, 1.098, 1.1];
    let records: Vec<_> = levels
        .iter()
        .enumerate()
        .map(|(i, level)| run(&format!("l{i:02}"), &key, i as i64 * 60, 5e6 * level, "abc"))
        .collect();
    let (_dir, engine) = engine_over(&records).await;
    let mut options = DetectOptions::DEFAULT;
    options.change_points.min_segment = 4;
    let series = regressions::load(&engine, &Selection::parse("all").expect("test value"), None).expect("series");
    let findings = regressions::find(series, &options);
    assert_eq!(findings.found.len(), 1, "{:?}", findings.found.iter().map(|f| f.alarm).collect::<Vec<_>>());
    let alarm = findings.found[0].alarm;
    assert_eq!((alarm.first_bad_run, alarm.found_by), (10, analysis::regressions::FoundBy::LatestRuns));
    let rows = regressions::to_rows(&findings.found, 0, &options).expect("rows match the alarms table");
    let method = rows.batches[0].column_by_name("method").expect("a method column");
    let method = method.as_any().downcast_ref::<arrow::array::StringArray>().expect("text").value(0);
    assert!(method.starts_with("t-test of the latest 3 run medians"), "{method}");
    assert!(method.contains("exact rank test"), "{method}");
    let off = DetectOptions { latest: None, ..options };
    let series = regressions::load(&engine, &Selection::parse("all").expect("test value"), None).expect("series");
    assert!(regressions::find(series, &off).found.is_empty(), "change points alone cannot place it yet");
}

/// A calibration of `class`: fp32 GEMM at `gflops`, bf16 at half, copy at 10 GB/s.
fn calibrations(class: &str, gflops: f64) -> Vec<crate::warehouse::schema::CalibrationRow> {
    use shared::calibration::{Calibration, CalibrationKind};
    use shared::catalog::Precision;
    let figure = |kind, precision, rate: f64| crate::warehouse::schema::CalibrationRow {
        agent_id: "a1".into(),
        fingerprint_hash: "f".into(),
        calibration: Calibration {
            device: "cpu".into(),
            hardware_class: class.into(),
            kind,
            precision,
            size: 512,
            rate,
            n_samples: 10,
            median_seconds: 0.01,
            engine: "candle".into(),
            engine_version: "0.11".into(),
            measured_at_ms: 1_765_000_000_000,
        },
    };
    vec![
        figure(CalibrationKind::Gemm, Precision::Fp32, gflops * 1e9),
        figure(CalibrationKind::Gemm, Precision::Bf16, gflops * 0.5e9),
        figure(CalibrationKind::Copy, Precision::Fp32, 10e9),
    ]
}

/// bert-base and bert-tiny on cpu/test, latency = twice the roofline's compute time at
/// 50 GFLOP/s (a machine at half its GEMM rate), and the same rows on an uncalibrated
/// class.
fn bert_rows() -> Vec<ResultRecord> {
    use shared::catalog::{lookup, Mode};
    let mut records = Vec::new();
    for (i, (model, batch)) in [
        ("bert-base-uncased", 1),
        ("bert-base-uncased", 2),
        ("bert-base-uncased", 8),
        ("bert-tiny", 1),
        ("bert-tiny", 4),
        ("bert-tiny", 16),
    ]
    .into_iter()
    .enumerate()
    {
        let spec = lookup(model).expect("catalog");
        let seconds = 2.0 * spec.flops(batch, 128, Mode::Inference) / 50e9;
        let mut r = run(&format!("s{i}"), &format!("{i:064}"), i as i64, seconds * 1e9, "abc");
        (r.coordinates.model, r.coordinates.batch) = (model.into(), batch);
        r.memory.peak_host_bytes = Some(100_000_000 + u64::from(batch) * 1_000_000);
        records.push(r);
        let mut elsewhere = records[records.len() - 1].clone();
        (elsewhere.cell_key, elsewhere.coordinates.hardware_class) = (format!("e{i:063}"), "cpu/uncalibrated".into());
        elsewhere.provenance.hardware_class = "cpu/uncalibrated".into();
        records.push(elsewhere);
    }
    records
}

/// A warehouse of `records` and the calibrations of each (class, GFLOP/s).
async fn warehouse_with(
    records: &[ResultRecord],
    classes: &[(&str, f64)],
) -> (tempfile::TempDir, Warehouse, QueryEngine) {
    let dir = tempfile::tempdir().expect("tempdir");
    let wh = Warehouse::open(&dir.path().join("wh").to_string_lossy()).await.expect("open");
    wh.write_results(records, Origin::Measured).await.expect("write");
    for (class, gflops) in classes {
        wh.write_calibrations(&calibrations(class, *gflops)).await.expect("calibrations");
    }
    let engine = QueryEngine::open(&wh.sync_to_local(&dir.path().join("cache")).await.expect("sync")).expect("engine");
    (dir, wh, engine)
}

#[tokio::test]
async fn predict_learns_from_measured_rows_of_calibrated_classes_and_answers_with_an_interval() {
    use shared::catalog::{lookup, Mode, Precision};
    let (dir, wh, engine) = warehouse_with(&bert_rows(), &[("cpu/test", 100.0)]).await;

    let k = super::predict::load(&engine, "candle").expect("load");
    assert_eq!(k.rates.keys().collect::<Vec<_>>(), vec!["cpu/test"]);
    let rates = &k.rates["cpu/test"];
    assert_eq!((rates.gemm["fp32"], rates.gemm["bf16"], rates.copy), (100e9, 50e9, Some(10e9)));
    assert_eq!((k.latency.len(), k.memory.len()), (6, 6));
    assert_eq!(k.left_out.get("class not calibrated (cpu/uncalibrated)"), Some(&6), "{:?}", k.left_out);
    // Quantised formats are placed by the fp32 GEMM rate and their block bytes.
    let llama = lookup("llama-tiny").expect("catalog");
    let q = super::predict::point(llama, "cpu/test", rates, 1, 64, Precision::Q4_0, Mode::Inference).expect("point");
    assert_eq!(q.peak_flops, 100e9);
    assert_eq!(q.weight_bytes, llama.parameter_count() as f64 * 18.0 / 32.0);
    assert!(super::predict::point(llama, "cpu/test", rates, 1, 64, Precision::Fp16, Mode::Inference).is_none());

    let fitted = super::predict::fit(&k).expect("fit");
    let bert = lookup("bert-base-uncased").expect("catalog");
    let query = super::predict::point(bert, "cpu/test", rates, 4, 128, Precision::Fp32, Mode::Inference).expect("p");
    let row = super::predict::predict_row(&fitted, &query, "candle", 1_765_000_000_000).expect("predicted");
    let truth_ms = 2.0 * bert.flops(4, 128, Mode::Inference) / 50e9 * 1e3;
    assert!((row.latency_ms.value / truth_ms - 1.0).abs() < 0.05, "{row:?} vs {truth_ms}");
    assert!(row.latency_ms.low <= row.latency_ms.value && row.latency_ms.value <= row.latency_ms.high, "{row:?}");
    assert_eq!((row.latency_basis.as_str(), row.training_rows), ("same-series", 6));
    assert!(row.peak_memory_bytes.is_some_and(|m| (m.value / 104e6 - 1.0).abs() < 0.1), "{row:?}");
    assert_eq!(super::predict::default_seq_len(bert, &k), 128);
    let err = super::predict::calibrated(&k, "cpu/uncalibrated").expect_err("refused").to_string();
    assert!(err.contains("calibrated classes: cpu/test"), "{err}");

    // Stored apart from results, every column readable.
    wh.write_predictions(&[row], 1_765_000_000_000).await.expect("stored");
    let engine = QueryEngine::open(&wh.sync_to_local(&dir.path().join("cache2")).await.expect("sync")).expect("engine");
    let out = engine.query("SELECT * FROM predictions").expect("query");
    assert_eq!(out.n_rows(), 1);
    assert_eq!(out.schema.fields().len(), crate::warehouse::schema::predictions_schema().fields().len());
    let n = engine.query("SELECT count(*) FROM results").expect("query");
    assert_eq!(
        n.batches[0].column(0).as_any().downcast_ref::<arrow::array::Int64Array>().map(|a| a.value(0)),
        Some(12)
    );
}

#[tokio::test]
async fn recommend_ranks_an_unmeasured_calibrated_class_from_predictions_after_the_measured_ones() {
    use super::recommend::{self, Ask, Objective};
    // cpu/fast is calibrated at 10x cpu/test's GEMM rate but has no result of bert-base.
    let (_dir, _wh, engine) = warehouse_with(&bert_rows(), &[("cpu/test", 100.0), ("cpu/fast", 1000.0)]).await;
    let ask = |max_memory_gib| Ask {
        model: "bert-base-uncased".into(),
        mode: "inference".into(),
        objective: Objective::Latency,
        batch: None,
        precision: None,
        max_latency_ms: None,
        max_memory_gib,
        prices: std::collections::BTreeMap::new(),
    };
    let k = super::predict::load(&engine, "candle").expect("load");
    let fitted = super::predict::fit(&k).expect("fit");
    let mut measured = recommend::load(&engine, "bert-base-uncased", "inference").expect("load");
    let not_predicted = recommend::add_predictions(&mut measured, &k, &fitted, &ask(None), "candle");
    assert!(not_predicted.is_empty(), "{not_predicted:?}");
    let predicted: Vec<_> = measured.candidates.iter().filter(|c| c.predicted.is_some()).collect();
    // At the batches bert-base was measured at (1, 2, 8), in fp32, on the one unmeasured class.
    assert_eq!(
        predicted.iter().map(|c| (c.hardware_class.as_str(), c.batch)).collect::<Vec<_>>(),
        vec![("cpu/fast", 1), ("cpu/fast", 2), ("cpu/fast", 8)]
    );
    let (ranked, _) = recommend::rank(measured, &ask(None));
    let order: Vec<(&str, bool)> =
        ranked.iter().map(|r| (r.candidate.hardware_class.as_str(), r.candidate.predicted.is_some())).collect();
    // Measured first even where the prediction is faster; the uncalibrated class's rows
    // are measured too, so it ranks among the measured.
    assert_eq!(order.iter().filter(|(_, p)| !p).count(), 2, "{order:?}");
    assert_eq!(order.last(), Some(&("cpu/fast", true)), "{order:?}");
    let rows = recommend::to_rows(&ranked, Objective::Latency).expect("rows");
    assert_eq!(rows.n_rows(), 3);
    // A memory limit is met by a prediction only at its interval's high end.
    let mut measured = recommend::load(&engine, "bert-base-uncased", "inference").expect("load");
    recommend::add_predictions(&mut measured, &k, &fitted, &ask(Some(0.05)), "candle");
    let (ranked, excluded) = recommend::rank(measured, &ask(Some(0.05)));
    assert!(ranked.is_empty(), "100 MB of memory is over 0.05 GiB everywhere: {ranked:?}");
    assert!(
        excluded.iter().any(|e| e.hardware_class == "cpu/fast" && e.reason.contains("peak memory")),
        "{excluded:?}"
    );
}

#[tokio::test]
async fn the_noise_study_is_every_series_with_enough_runs_each_with_its_samples_in_run_order() {
    let (a, b) = ("a".repeat(64), "b".repeat(64));
    let mut records = Vec::new();
    for i in 0..4i64 {
        // Written out of order: the loader orders runs by their start.
        records.push(run(&format!("s{}", 3 - i), &a, 3 - i, 10e6 + (3 - i) as f64 * 1e6, "abc"));
    }
    let mut short = run("t0", &b, 0, 5e6, "abc");
    short.coordinates.batch = 8;
    records.push(short);
    let (_dir, engine) = engine_over(&records).await;
    let cells = super::scorecard::load_noise(&engine, 3).expect("load");
    assert_eq!(cells.len(), 1, "the batch-8 series has one run: {cells:?}");
    let cell = &cells[0];
    assert!(cell.name.starts_with("bert-base-uncased cpu/test b1 s128 fp32 inference candle"), "{}", cell.name);
    assert_eq!(cell.runs.len(), 4);
    let medians: Vec<f64> = cell.runs.iter().map(|r| shared::stats::percentile(r, 0.5).expect("test value")).collect();
    assert!(medians.windows(2).all(|w| w[0] < w[1]), "oldest first: {medians:?}");
    assert!(cell.runs.iter().all(|r| r.len() == 200));
    assert_eq!(super::scorecard::load_noise(&engine, 5).expect("load").len(), 0);
}

/// `latest_results` picks, per series, the row a `row_number()` window ordered by
/// (finished_at, attempt) descending would: across sweeps, attempts and write order,
/// ties on finish time going to the higher attempt.
#[tokio::test]
async fn latest_results_is_the_newest_row_of_each_series() {
    let mut rows = Vec::new();
    for (sweep, key, attempt, minute, batch) in [
        ("s1", "a", 1, 0, 1),
        ("s1", "a", 2, 5, 1),
        ("s2", "b", 1, 10, 2),
        ("s1", "c", 1, 3, 2),
        ("s3", "d", 1, 7, 4),
        ("s3", "d", 2, 7, 4),
    ] {
        let mut r = record(sweep, &key.repeat(64), attempt, &samples(1e6, 20));
        r.coordinates.batch = batch;
        r.provenance.finished_at_ms += minute * 60_000;
        rows.push(r);
    }
    rows.reverse();
    let (_dir, engine) = engine_over(&rows).await;
    let ids = |sql: &str| {
        let out = engine.query(sql).expect("query");
        let (_, body) = crate::query::render::cells(&out).expect("cells");
        body.into_iter().map(|r| r.join(" ")).collect::<Vec<_>>()
    };
    let window = ids("SELECT batch, sweep_id, attempt FROM results
         QUALIFY row_number() OVER (
             PARTITION BY model, hardware_class, batch, seq_len, precision, mode, engine
             ORDER BY finished_at DESC, attempt DESC) = 1
         ORDER BY batch");
    assert_eq!(window, ["1 s1 2", "2 s2 1", "4 s3 2"]);
    assert_eq!(ids("SELECT batch, sweep_id, attempt FROM latest_results ORDER BY batch"), window);
}
