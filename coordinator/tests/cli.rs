//! End-to-end tests of the `accelbench` binary on a real warehouse: real Parquet files,
//! a real DuckDB, real processes. Import (with dedup and a corrupt file), the confined
//! SQL sandbox attacked from the user's side, the reports, and quickstart itself.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn accelbench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_accelbench")).args(args).output().expect("accelbench runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/legacy-json")
}

fn n_commits(wh: &Path) -> usize {
    std::fs::read_dir(wh.join("_manifest")).map(|d| d.count()).unwrap_or(0)
}

/// `SELECT … ` as JSON lines → the first row's `n`.
fn count(wh: &str, sql: &str) -> i64 {
    let o = accelbench(&["query", sql, "--warehouse", wh, "--format", "json"]);
    assert!(o.status.success(), "{sql}: {}", stderr(&o));
    let first = stdout(&o).lines().next().unwrap_or("{}").to_string();
    let v: serde_json::Value = serde_json::from_str(&first).expect("json row");
    v["n"].as_i64().expect("n")
}

fn imported_warehouse() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let wh = dir.path().join("wh");
    let whs = wh.to_string_lossy().into_owned();
    let o = accelbench(&["import", fixtures().to_str().expect("utf-8"), "--warehouse", &whs]);
    assert!(o.status.success(), "import failed: {}", stderr(&o));
    (dir, whs)
}

#[test]
fn import_dedups_and_skips_bad_files_whole() {
    let (dir, wh) = imported_warehouse();
    assert_eq!(count(&wh, "SELECT count(*) AS n FROM results"), 31);
    assert_eq!(count(&wh, "SELECT count(*) AS n FROM results WHERE origin = 'imported'"), 31);
    assert_eq!(count(&wh, "SELECT count(*) AS n FROM samples"), 2 * 5 + 27 * 20);
    let commits = n_commits(Path::new(&wh));

    // Re-importing adds nothing.
    let o = accelbench(&["import", fixtures().to_str().expect("utf-8"), "--warehouse", &wh]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("0 new"), "{}", stdout(&o));
    assert_eq!(count(&wh, "SELECT count(*) AS n FROM results"), 31);

    // A corrupt file is named, skipped, and changes nothing.
    let bad = dir.path().join("broken.json");
    std::fs::write(&bad, "{\"results\": [1, 2").expect("write");
    let o = accelbench(&["import", bad.to_str().expect("utf-8"), "--warehouse", &wh]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("broken.json"), "{}", stderr(&o));
    assert_eq!(n_commits(Path::new(&wh)), commits);
}

#[test]
fn user_sql_cannot_escape_the_warehouse() {
    let (dir, wh) = imported_warehouse();
    let stolen = dir.path().join("stolen.csv");
    let stray = dir.path().join("wh/results/stray.parquet");
    std::fs::write(&stray, b"PAR1").expect("stray file");
    let attacks = [
        "SELECT * FROM read_csv('/etc/passwd')".to_string(),
        "SELECT * FROM read_text('/etc/hostname')".to_string(),
        format!("COPY results TO '{}'", stolen.display()),
        format!("COPY (SELECT 1) TO '{}' (FORMAT csv)", stolen.display()),
        format!("ATTACH '{}' AS x", dir.path().join("x.db").display()),
        "ATTACH ':memory:' AS m".to_string(),
        "INSTALL httpfs".to_string(),
        "LOAD httpfs".to_string(),
        "CREATE TABLE t AS SELECT 1".to_string(),
        "PRAGMA threads=1".to_string(),
        "SET enable_external_access = true".to_string(),
        "SELECT 1; SELECT 2".to_string(),
        format!("SELECT * FROM read_parquet('{}')", stray.display()),
        "SELECT * FROM glob('/etc/*')".to_string(),
    ];
    for sql in &attacks {
        let o = accelbench(&["query", sql, "--warehouse", &wh]);
        assert_eq!(o.status.code(), Some(2), "{sql} was not refused: {}", stdout(&o));
        assert!(stderr(&o).starts_with("accelbench: "), "{sql}: {}", stderr(&o));
    }
    assert!(!stolen.exists(), "COPY wrote a file");
    assert!(!dir.path().join("x.db").exists(), "ATTACH created a database");
    let o = accelbench(&["query", "CREATE TABLE t AS SELECT 1", "--warehouse", &wh]);
    assert!(stderr(&o).contains("only a single read-only SELECT"), "{}", stderr(&o));
    // And plain reading still works after all that.
    assert!(count(&wh, "SELECT count(*) AS n FROM compatibility_matrix WHERE status = 'ok'") >= 1);
}

/// A query that would run until killed, fill memory or return the whole universe stops
/// at its bound with a message naming it (exit 2, nothing printed), and DuckDB's spill
/// files live in a private directory, not in a `.tmp/` the query could read back.
#[test]
fn queries_stop_at_their_time_memory_and_row_limits() {
    let (dir, wh) = imported_warehouse();
    let forever =
        accelbench(&["query", "SELECT count(*) FROM range(1e13::BIGINT)", "--warehouse", &wh, "--timeout", "2"]);
    assert_eq!(forever.status.code(), Some(2), "{}", stdout(&forever));
    assert!(stderr(&forever).contains("the time limit"), "{}", stderr(&forever));
    let rows = accelbench(&["query", "SELECT * FROM range(5000)", "--warehouse", &wh, "--max-rows", "1000"]);
    assert_eq!(rows.status.code(), Some(2));
    assert!(stderr(&rows).contains("more than 1000 rows"), "{}", stderr(&rows));
    assert!(stdout(&rows).is_empty(), "a refused result printed rows");
    let big = "SELECT list(range) FROM range(200000000) GROUP BY range % 2";
    let memory = accelbench(&["query", big, "--warehouse", &wh, "--memory-limit", "64", "--timeout", "120"]);
    assert_eq!(memory.status.code(), Some(2), "{}", stdout(&memory));
    assert!(stderr(&memory).to_lowercase().contains("memory"), "{}", stderr(&memory));
    // Run from a folder with a `.tmp/`: DuckDB's default spill directory is readable
    // through the allowed paths; ours is elsewhere, so the file stays out of reach.
    std::fs::create_dir_all(dir.path().join(".tmp")).expect(".tmp");
    std::fs::write(dir.path().join(".tmp/secret.csv"), "a\n1\n").expect("secret");
    let o = Command::new(env!("CARGO_BIN_EXE_accelbench"))
        .args(["query", "SELECT * FROM read_csv('.tmp/secret.csv')", "--warehouse", &wh])
        .current_dir(dir.path())
        .output()
        .expect("runs");
    assert_eq!(o.status.code(), Some(2), "read a file in .tmp/: {}", stdout(&o));
    // Ordinary queries are unaffected.
    assert!(count(&wh, "SELECT count(*) AS n FROM results") >= 1);
}

#[test]
fn every_column_of_every_table_prints_in_every_format() {
    let (_dir, wh) = imported_warehouse();
    for table in ["results", "samples", "latest_results", "speedup_vs_cpu", "compatibility_matrix"] {
        for format in ["table", "csv", "json", "markdown"] {
            let sql = format!("SELECT * FROM {table}");
            let o = accelbench(&["query", &sql, "--warehouse", &wh, "--format", format]);
            assert!(o.status.success(), "{sql} as {format}: {}", stderr(&o));
            // JSON lines of no rows is empty; every other format shows the columns.
            assert!(format == "json" || !stdout(&o).trim().is_empty(), "{sql} as {format} printed nothing");
        }
    }
    // Timestamps come out as times, in UTC.
    let o = accelbench(&["query", "SELECT started_at FROM results LIMIT 1", "--warehouse", &wh, "--format", "csv"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let value = stdout(&o).lines().nth(1).unwrap_or_default().to_string();
    assert!(value.len() >= 19 && value.as_bytes()[4] == b'-' && value.contains(':'), "{value}");
}

#[test]
fn reports_render_in_every_format() {
    let (dir, wh) = imported_warehouse();
    let md = accelbench(&["report", "performance", "--warehouse", &wh]);
    assert!(md.status.success(), "{}", stderr(&md));
    assert!(stdout(&md).starts_with("# accelbench performance report"));
    assert!(stdout(&md).contains("| model | hardware_class |"), "{}", stdout(&md));
    let csv = accelbench(&["report", "compatibility", "--warehouse", &wh, "--format", "csv"]);
    assert!(stdout(&csv).starts_with("family,hardware_class,status"), "{}", stdout(&csv));
    let html = dir.path().join("perf.html");
    let o = accelbench(&[
        "report",
        "performance",
        "--warehouse",
        &wh,
        "--format",
        "html",
        "--output",
        html.to_str().expect("utf-8"),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let page = std::fs::read_to_string(&html).expect("html written");
    assert!(page.contains("<svg") && page.contains("throughput per batch, items/s"), "no chart");
    let o = accelbench(&["report", "performance", "--warehouse", &wh, "--sweep", "x' OR 1=1"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn quickstart_measures_and_fills_a_warehouse() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let o = accelbench(&["quickstart", "--data", data.to_str().expect("utf-8")]);
    assert!(o.status.success(), "quickstart failed: {}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("# accelbench performance report"), "{out}");
    assert!(out.contains("accelbench query"), "no next steps: {out}");
    let wh = data.to_string_lossy().into_owned();
    assert_eq!(count(&wh, "SELECT count(*) AS n FROM results"), 18);
    assert_eq!(count(&wh, "SELECT count(*) AS n FROM results WHERE status NOT IN ('ok', 'unsupported')"), 0);
    assert!(count(&wh, "SELECT count(*) AS n FROM results WHERE status = 'ok'") >= 12);
    assert_eq!(
        count(&wh, "SELECT count(*) AS n FROM results WHERE status = 'ok' AND (latency_p50_ns <= 0 OR n_samples < 1)"),
        0
    );
    // Fewer samples than the policy's minimum only when the time cap came first (a
    // loaded machine), and then the row says so.
    assert_eq!(
        count(
            &wh,
            "SELECT count(*) AS n FROM results WHERE status = 'ok' AND n_samples < 5
             AND stop_reason IS DISTINCT FROM 'max_seconds_before_minimums'"
        ),
        0
    );
    assert_eq!(count(&wh, "SELECT count(*) AS n FROM results WHERE weights_source NOT LIKE 'random-init:seed=%'"), 0);
    assert_eq!(count(&wh, "SELECT count(*) AS n FROM results WHERE status = 'ok' AND error IS NOT NULL"), 0);
    // Every measured output is finite (the check that caught NaN BERT in bf16).
    assert_eq!(count(&wh, "SELECT count(*) AS n FROM results WHERE status = 'ok' AND NOT output_all_finite"), 0);
    let vit_tokens = shared::catalog::lookup("vit-tiny").and_then(|m| m.fixed_sequence_length()).expect("vit-tiny");
    let sql = format!("SELECT count(*) AS n FROM results WHERE family = 'vit' AND seq_len <> {vit_tokens}");
    assert_eq!(count(&wh, &sql), 0);
    assert_eq!(count(&wh, "SELECT count(*) AS n FROM samples"), count(&wh, "SELECT sum(n_samples) AS n FROM results"));
    // The CPU's calibrations, measured before the cells and filed under the results' class.
    assert_eq!(
        count(
            &wh,
            "SELECT count(*) AS n FROM calibrations c WHERE agent_id = 'quickstart' AND rate > 0 \
             AND hardware_class IN (SELECT hardware_class FROM results) AND (kind, precision) IN \
             (('gemm', 'fp32'), ('copy', 'fp32'))"
        ),
        2
    );

    // The run is a sweep with its cells, run by agent `quickstart` (what the dashboard's
    // overview, sweep and agent pages read).
    assert_eq!(
        count(&wh, "SELECT count(*) AS n FROM sweeps WHERE name = 'quickstart' AND n_cells = 18 AND sweep_id IN (SELECT sweep_id FROM results)"),
        1
    );
    assert_eq!(count(&wh, "SELECT count(*) AS n FROM cells c JOIN results r USING (sweep_id, cell_key)"), 18);
    assert_eq!(count(&wh, "SELECT count(*) AS n FROM results WHERE agent_id = 'quickstart'"), 18);
    assert_eq!(
        count(&wh, "SELECT count(*) AS n FROM agents WHERE agent_id = 'quickstart' AND hardware_class IN (SELECT hardware_class FROM results) AND fingerprint_json LIKE '{%'"),
        1
    );

    predict_answers_on_the_quickstart_warehouse(&wh);

    // The scorecard scores what the warehouse holds, and says what it lacks.
    let o = accelbench(&["scorecard", "--warehouse", &wh, "--format", "json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("regressions: no series with 30 or more ok runs"), "{}", stderr(&o));
    let sections: Vec<serde_json::Value> =
        stdout(&o).lines().map(|l| serde_json::from_str(l).expect("a json line")).collect();
    let split = sections.iter().find(|r| r["split"] == "latency, leave one batch size out").expect("scored");
    assert!(split["MdAPE (ours)"].as_str().is_some_and(|m| m.ends_with('%')), "{split}");
    assert!(sections.iter().any(|r| r["section"] == "recommendation"), "{sections:?}");
}

/// `accelbench predict` on what quickstart measured: a batch it did not run, stored as a
/// prediction and never as a result; bad questions are refused naming what exists.
fn predict_answers_on_the_quickstart_warehouse(wh: &str) {
    let o = accelbench(&[
        "query",
        "SELECT DISTINCT hardware_class FROM calibrations",
        "--warehouse",
        wh,
        "--format",
        "csv",
    ]);
    let class = stdout(&o).lines().nth(1).expect("a calibrated class").trim_matches('"').to_string();
    let o = accelbench(&[
        "predict",
        "--model",
        "bert-tiny",
        "--hardware-class",
        &class,
        "--batch",
        "2,64",
        "--warehouse",
        wh,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("predicted") && stdout(&o).contains("80% interval ms"), "{}", stdout(&o));
    assert_eq!(count(wh, "SELECT count(*) AS n FROM predictions WHERE model = 'bert-tiny' AND batch IN (2, 64)"), 2);
    assert_eq!(
        count(
            wh,
            "SELECT count(*) AS n FROM predictions WHERE NOT (latency_low_ms <= latency_ms AND latency_ms <= latency_high_ms \
             AND latency_ms > 0 AND training_rows >= 5 AND latency_basis = 'same-series')"
        ),
        0
    );
    assert_eq!(count(wh, "SELECT count(*) AS n FROM results"), 18, "a prediction is never a result");
    // JSON carries every stored column.
    let o = accelbench(&[
        "predict",
        "--model",
        "vit-tiny",
        "--hardware-class",
        &class,
        "--batch",
        "8",
        "--no-record",
        "--format",
        "json",
        "--warehouse",
        wh,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let row: serde_json::Value = serde_json::from_str(stdout(&o).lines().next().unwrap_or("")).expect("json");
    assert_eq!((row["model"].as_str(), row["batch"].as_u64()), (Some("vit-tiny"), Some(8)));
    assert!(
        row["latency_ms"].as_f64().is_some_and(|v| v > 0.0) && row["peak_memory_bytes"].as_f64().is_some(),
        "{row}"
    );
    assert_eq!(count(wh, "SELECT count(*) AS n FROM predictions"), 2, "--no-record stores nothing");
    for (args, says) in [
        (vec!["--model", "bert-tiny", "--hardware-class", "cuda/Nope", "--batch", "1"], "calibrated classes: "),
        (vec!["--model", "no-such", "--hardware-class", &class, "--batch", "1"], "unknown model (known: bert-tiny"),
        (vec!["--model", "bert-tiny", "--hardware-class", &class, "--batch", "0"], "--batch 0"),
        (vec!["--model", "bert-tiny", "--hardware-class", &class, "--batch", "1", "--precision", "q4_0"], "cannot run"),
    ] {
        let mut all = vec!["predict"];
        all.extend(args);
        all.extend(["--warehouse", wh]);
        let o = accelbench(&all);
        assert_eq!(o.status.code(), Some(2), "{all:?}");
        assert!(stderr(&o).contains(says), "{all:?}: {}", stderr(&o));
    }
}

#[test]
fn sweep_plan_counts_cells_and_names_every_problem() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/sweep.toml");
    let o = accelbench(&["sweep", "plan", example.to_str().expect("utf-8"), "--hardware-class", "cpu/AMD EPYC 7B13"]);
    assert!(o.status.success(), "{}", stderr(&o));
    // 4 models × 2 selectors (cpu fanned to one class, cuda unresolved) × 3 batches ×
    // 1 length × precisions {fp32, bf16, q4_0 only for TinyLlama} × 2 modes (q4_0 has no
    // training), minus TinyLlama fp32 on cpu (excluded): counted by the planner's rules.
    let first = stdout(&o).lines().next().unwrap_or("").to_string();
    assert!(first.ends_with("cells in sweep nightly-text"), "{first}");
    let n: usize = first.split_whitespace().next().and_then(|n| n.parse().ok()).expect("a count");
    let json = accelbench(&[
        "sweep",
        "plan",
        example.to_str().expect("utf-8"),
        "--hardware-class",
        "cpu/AMD EPYC 7B13",
        "--json",
    ]);
    let lines: Vec<serde_json::Value> =
        stdout(&json).lines().map(|l| serde_json::from_str(l).expect("json line")).collect();
    assert_eq!(lines[0]["type"], "plan");
    assert_eq!(lines[0]["n_cells"], n);
    assert_eq!(lines.len(), n + 1);

    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "name = \"bad\"\n[matrix]\nmodels = [\"bert-tiny\", \"no-such-model\"]\nhardware = [\"cpu\"]\n\
         batch_sizes = [0, 4, 4]\nprecisions = [\"fp64\"]\n",
    )
    .expect("write");
    let o = accelbench(&["sweep", "plan", bad.to_str().expect("utf-8")]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    for needle in ["matrix.models[1]", "no-such-model", "matrix.batch_sizes[0]", "matrix.batch_sizes[2]", "fp64"] {
        assert!(err.contains(needle), "{needle} not named in: {err}");
    }
}

/// A measured-looking record of bert-tiny b1 in sweep `sweep`, its 200 samples around
/// `center_ns` (±1 % in a fixed pattern), built from `git_commit`. Test data: only ever
/// written to a test's own warehouse.
fn synthetic_run(sweep: &str, hour: i64, center_ns: f64, git_commit: &str) -> shared::result::ResultRecord {
    let samples: Vec<f64> =
        (0..200).map(|i| center_ns * (1.0 + 0.01 * (((i * 7919) % 201) as f64 / 100.0 - 1.0))).collect();
    let mut r = shared::fixtures::ok_record(sweep, &"e".repeat(64), &samples);
    r.coordinates.model = "bert-tiny".into();
    r.coordinates.seq_len = 8;
    r.throughput_items_per_s = None;
    r.provenance.agent_id = None;
    r.provenance.git_commit = git_commit.into();
    r.provenance.engine_version = "0.9".into();
    r.provenance.started_at_ms = 1_780_000_000_000 + hour * 3_600_000;
    r.provenance.finished_at_ms = r.provenance.started_at_ms + 1_000;
    r
}

/// `compare` and `regressions` from the command line over a real warehouse: verdicts,
/// exit codes for CI, what changed, the alarms table, and bad input named.
#[test]
fn compare_and_regressions_answer_with_exit_codes_a_gate_can_use() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wh = dir.path().join("wh").to_string_lossy().into_owned();
    let lines: Vec<String> = (0..16)
        .map(|i| {
            let (center, commit) = if i < 8 { (10e6, "abc") } else { (12e6, "def") };
            let center = center * (1.0 + 0.002 * ((i % 3) as f64 - 1.0));
            serde_json::to_string(&synthetic_run(&format!("r{i:02}"), i, center, commit)).expect("json")
        })
        .collect();
    let runs = dir.path().join("runs.jsonl");
    std::fs::write(&runs, lines.join("\n")).expect("write");
    let o = accelbench(&["import", runs.to_str().expect("utf-8"), "--warehouse", &wh]);
    assert!(o.status.success(), "{}", stderr(&o));

    let json_rows = |o: &Output| -> Vec<serde_json::Value> {
        stdout(o).lines().map(|l| serde_json::from_str(l).expect("a json row")).collect()
    };
    // Two runs of the same code: the same.
    let o = accelbench(&["compare", "r00", "r03", "--warehouse", &wh, "--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(json_rows(&o)[0]["verdict"], "same");
    // Across the change: slower, exit 1, and the commit named.
    let o = accelbench(&["compare", "r00", "sweep_id=r15", "--warehouse", &wh, "--format", "json"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let row = &json_rows(&o)[0];
    assert_eq!(row["verdict"], "slower");
    assert_eq!(row["changed"], "git_commit abc → def");
    assert!(row["ci_low"].as_f64().expect("ci_low") > 1.1, "{row}");
    // Every format renders.
    for format in ["table", "csv", "markdown"] {
        let o = accelbench(&["compare", "r00", "r15", "--warehouse", &wh, "--format", format]);
        assert_eq!(o.status.code(), Some(1), "{format}: {}", stderr(&o));
        assert!(stdout(&o).contains("slower"), "{format}: {}", stdout(&o));
    }
    // Bad input: named, with what exists; exit 2.
    let o = accelbench(&["compare", "r00", "no-such-run", "--warehouse", &wh]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no-such-run") && stderr(&o).contains("r15"), "{}", stderr(&o));
    let o = accelbench(&["compare", "r00", "latency_p50_ns=1", "--warehouse", &wh]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("cannot be filtered on"), "{}", stderr(&o));

    // The series: one alarm, at the first run of the new commit.
    let o = accelbench(&["regressions", "--warehouse", &wh, "--format", "json", "--record"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let alarms = json_rows(&o);
    assert_eq!(alarms.len(), 1, "{alarms:?}");
    assert_eq!((alarms[0]["first_bad_sweep_id"].as_str(), alarms[0]["run_index"].as_u64()), (Some("r08"), Some(8)));
    assert_eq!(alarms[0]["changed"], "git_commit abc → def");
    assert_eq!(count(&wh, "SELECT count(*) AS n FROM alarms WHERE first_bad_sweep_id = 'r08'"), 1);
    // Every column of the stored alarm reads back, in every format.
    for format in ["json", "csv", "table"] {
        let o = accelbench(&["query", "SELECT * FROM alarms", "--warehouse", &wh, "--format", format]);
        assert!(o.status.success(), "{format}: {}", stderr(&o));
        assert!(stdout(&o).contains("git_commit abc → def") && stdout(&o).contains("e-divisive"), "{}", stdout(&o));
    }
    // Before the change only: nothing to report, exit 0.
    let o = accelbench(&["regressions", "--warehouse", &wh, "--series", "git_commit=abc"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = accelbench(&["regressions", "--warehouse", &wh, "--series", "model=no-such-model"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no-such-model"), "{}", stderr(&o));
    let o = accelbench(&["regressions", "--warehouse", &wh, "--since", "last tuesday"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--since last tuesday"), "{}", stderr(&o));

    // Recommend: the one class, from its newest result; bad questions named.
    let o = accelbench(&[
        "recommend",
        "--model",
        "bert-tiny",
        "--objective",
        "latency",
        "--warehouse",
        &wh,
        "--format",
        "json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let ranked = json_rows(&o);
    assert_eq!(
        (ranked.len(), ranked[0]["hardware_class"].as_str(), ranked[0]["source"].as_str()),
        (1, Some("cpu/test"), Some("measured"))
    );
    let o = accelbench(&["recommend", "--model", "bert-tiny", "--max-latency-ms", "5", "--warehouse", &wh]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("not ranked: cpu/test: p50"), "{}", stderr(&o));
    let o = accelbench(&["recommend", "--model", "gpt-17", "--warehouse", &wh]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("unknown model") && stderr(&o).contains("bert-tiny"), "{}", stderr(&o));
    let o = accelbench(&["recommend", "--model", "bert-base-uncased", "--warehouse", &wh]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("models with ok results: bert-tiny"), "{}", stderr(&o));
    let o = accelbench(&["recommend", "--model", "bert-tiny", "--objective", "cost", "--warehouse", &wh]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--prices"), "{}", stderr(&o));
}
