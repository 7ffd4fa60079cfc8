//! Load bench of the warehouse: generated rows, clearly marked, never measured data.
//!
//! `cargo run -p coordinator --example warehouse_load [-- --results 1000000 --samples-per-result 10]`
//!
//! Writes N generated result rows (origin `load-test`, weights source
//! `load-test:generated`) with M samples each into a scratch warehouse in a temporary
//! folder, prints ingest rows/s, then runs each standard report's SQL twice on the same
//! committed files: through accelbench's confined query engine, and through a plain
//! DuckDB connection with the same views and no confinement, printing both latencies
//! and their ratio (median of 5 runs each, interleaved). Last, it times every page of the
//! web dashboard on the same files (the page's queries and HTML, as the server draws it;
//! median of 5), after adding the generated sweeps' `sweeps` and `cells` rows and three
//! generated agents: the goal is at most 200 ms of server time per page.

use std::time::Instant;

use coordinator::query::QueryEngine;
use coordinator::report::{self, Kind};
use coordinator::warehouse::schema::{Origin, Table};
use coordinator::warehouse::Warehouse;
use shared::catalog::{Family, Precision};
use shared::ids::SweepId;
use shared::result::ResultRecord;

const BATCH: usize = 20_000;

const CLASSES: [&str; 3] = ["cpu/load-test", "cuda/load-test A", "cuda/load-test B"];

/// Warehouse ingest and report load on a scratch warehouse.
#[derive(clap::Parser)]
struct Args {
    /// Generated result rows to write.
    #[arg(long, default_value_t = 1_000_000)]
    results: usize,
    /// Latency samples per result.
    #[arg(long, default_value_t = 10)]
    samples_per_result: usize,
    /// Write the scratch warehouse here (a new folder) and keep it, to query it later.
    #[arg(long, value_name = "DIR")]
    keep: Option<std::path::PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = <Args as clap::Parser>::parse();
    let cpu = agent::detect::detect().cpu;
    println!("CPU: {} ({} logical cores)", cpu.model_name, cpu.logical_cores);
    let (n_results, per) = (args.results, args.samples_per_result);
    let scratch = tempfile::tempdir()?;
    let dir = match &args.keep {
        Some(keep) => {
            anyhow::ensure!(!keep.exists(), "--keep {}: already exists", keep.display());
            std::fs::create_dir_all(keep)?;
            keep.clone()
        }
        None => scratch.path().to_path_buf(),
    };
    let wh = Warehouse::open(&dir.to_string_lossy()).await?;

    let start = Instant::now();
    let mut written = 0;
    while written < n_results {
        let n = BATCH.min(n_results - written);
        let records: Vec<ResultRecord> = (written..written + n).map(|i| generated(i, per)).collect();
        wh.write_results(&records, Origin::LoadTest).await?;
        written += n;
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "ingest: {n_results} result rows + {} sample rows in {secs:.1} s = {:.0} result rows/s, {:.0} sample rows/s",
        n_results * per,
        n_results as f64 / secs,
        (n_results * per) as f64 / secs
    );

    // The dashboard's tables, not part of the ingest figure.
    for start in (0..n_results).step_by(BATCH) {
        let records: Vec<ResultRecord> = (start..(start + BATCH).min(n_results)).map(|i| generated(i, per)).collect();
        wh.write_cells(&records.iter().map(coordinator::server::tables::finished_cell_row).collect::<Vec<_>>()).await?;
    }
    write_sweeps_and_agents(&wh, n_results).await?;

    let files = wh.sync_to_local(&dir).await?;
    let ours = QueryEngine::open(&files)?;
    let plain = duckdb::Connection::open_in_memory()?;
    for table in Table::ALL {
        let paths = files.files.get(&table).cloned().unwrap_or_default();
        if paths.is_empty() {
            continue;
        }
        let list: Vec<String> = paths.iter().map(|p| format!("'{}'", p.display())).collect();
        plain.execute_batch(&format!(
            "CREATE VIEW {} AS SELECT * FROM read_parquet([{}], union_by_name = true);",
            table.as_str(),
            list.join(", ")
        ))?;
    }
    for sql in coordinator::query::views::DERIVED {
        plain.execute_batch(sql)?;
    }
    println!("{:<14} {:>12} {:>12} {:>7}", "report", "accelbench", "plain duckdb", "ratio");
    for kind in [Kind::Performance, Kind::Hardware, Kind::Compatibility] {
        let sql = report::sql(kind, None);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for _ in 0..5 {
            let t = Instant::now();
            let rows = ours.query(&sql)?;
            a.push(t.elapsed().as_secs_f64());
            let t = Instant::now();
            let mut stmt = plain.prepare(&sql)?;
            let n: usize = stmt.query_arrow([])?.map(|b| b.num_rows()).sum();
            b.push(t.elapsed().as_secs_f64());
            anyhow::ensure!(n == rows.n_rows(), "row counts differ: {n} vs {}", rows.n_rows());
        }
        let (ma, mb) = (median(&mut a), median(&mut b));
        println!("{:<14} {:>10.1}ms {:>10.1}ms {:>7.2}", report::name(kind), ma * 1e3, mb * 1e3, ma / mb);
    }
    dashboard_pages(&ours, n_results)
}

/// Times each dashboard page over the generated rows: the functions its handlers call.
fn dashboard_pages(e: &QueryEngine, n_results: usize) -> anyhow::Result<()> {
    use coordinator::answers::compare::Coordinates;
    use coordinator::answers::selection::Selection;
    use coordinator::dashboard::{answers, pages};
    let sweep = SweepId::from_u128(sweep_number(n_results.saturating_sub(1)));
    let older = SweepId::from_u128(sweep_number(0));
    let result_id = e.query("SELECT result_id FROM results LIMIT 1")?;
    let result_id = coordinator::query::render::cells(&result_id)?.1.first().and_then(|r| r.first().cloned());
    let result_id = result_id.unwrap_or_default();
    let series = Coordinates {
        model: "bert-tiny".into(),
        hardware_class: "cpu/load-test".into(),
        batch: 1,
        seq_len: 128,
        precision: "fp32".into(),
        mode: "inference".into(),
        engine: "candle".into(),
        weights_source: "load-test:generated".into(),
    };
    let filtered = pages::Filters::parse(&[("model".into(), "bert-tiny".into()), ("batch".into(), "8".into())])
        .map_err(anyhow::Error::msg)?;
    let found_now = Selection::parse("model=bert-tiny,hardware_class=cpu/load-test")?;
    let compare = Some((Selection::parse(&older.to_string())?, Selection::parse(&sweep.to_string())?));
    let pages: Vec<(&str, Box<dyn Fn() -> anyhow::Result<usize>>)> = vec![
        ("/", Box::new(|| Ok(pages::overview(&pages::sweeps(e)?, &pages::agents(e)?, &pages::newest(e)?).len()))),
        ("/results", Box::new(|| Ok(pages::results(e, &pages::Filters::default())?.len()))),
        ("/results?model&batch", Box::new(|| Ok(pages::results(e, &filtered)?.len()))),
        ("/results/{id}", Box::new(|| Ok(pages::result(e, &result_id)?.map_or(0, |p| p.len())))),
        ("/sweeps/{id}", Box::new(|| Ok(pages::sweep(e, sweep, None)?.map_or(0, |p| p.len())))),
        ("/agents/{id}", Box::new(|| Ok(pages::agent(e, "load-test-agent-0", None)?.map_or(0, |p| p.len())))),
        ("/compatibility", Box::new(|| Ok(pages::compatibility(e)?.len()))),
        ("/regressions", Box::new(|| Ok(answers::regressions(e, None)?.len()))),
        ("/regressions?series=…", Box::new(|| Ok(answers::regressions(e, Some(&found_now))?.len()))),
        ("/regressions/series", Box::new(|| Ok(answers::series(e, &series)?.map_or(0, |p| p.len())))),
        (
            "/compare?base&new",
            Box::new(|| Ok(answers::compare(e, compare.clone(), &analysis::compare::CompareOptions::DEFAULT)?.len())),
        ),
    ];
    println!("dashboard pages over {n_results} generated results, median of 5 (goal <= 200 ms):");
    for (path, draw) in &pages {
        let mut times = Vec::new();
        let mut bytes = 0;
        for _ in 0..5 {
            let t = Instant::now();
            bytes = draw()?;
            times.push(t.elapsed().as_secs_f64());
        }
        anyhow::ensure!(bytes > 0, "{path} drew nothing");
        println!("{path:<22} {:>9.1} ms {:>9} bytes", median(&mut times) * 1e3, bytes);
    }
    Ok(())
}

/// Generated sweeps of 100 000 results each, with UUIDs as real sweep ids have.
fn sweep_number(i: usize) -> u128 {
    0x0190_0000_0000_7000_8000_0000_0000_0000 + (i / 100_000) as u128
}

/// A `sweeps` row per generated sweep and three generated agents.
async fn write_sweeps_and_agents(wh: &Warehouse, n_results: usize) -> anyhow::Result<()> {
    use coordinator::warehouse::schema::{AgentRow, SweepRow};
    let n_sweeps = n_results.div_ceil(100_000);
    let sweeps: Vec<SweepRow> = (0..n_sweeps)
        .map(|k| SweepRow {
            sweep_id: SweepId::from_u128(sweep_number(k * 100_000)).to_string(),
            name: format!("load-test {k}"),
            submitted_by: Some("load-test".into()),
            submitted_at_ms: 1_767_225_600_000 + (k * 100_000) as i64,
            priority: 0,
            max_attempts: 1,
            n_cells: 100_000.min(n_results - k * 100_000) as u64,
            spec_json: "{}".into(),
        })
        .collect();
    wh.write_sweeps(&sweeps).await?;
    let agents: Vec<AgentRow> = (0..3)
        .map(|k| AgentRow {
            agent_id: format!("load-test-agent-{k}"),
            hostname: Some("load-test".into()),
            hardware_class: CLASSES[k].into(),
            fingerprint_hash: "load-test".into(),
            fingerprint_json: "{\"generated\": true}".into(),
            agent_version: "load-test".into(),
            registered_at_ms: 1_767_225_600_000,
            last_seen_at_ms: 1_767_225_600_000,
        })
        .collect();
    wh.write_agents(&agents).await?;
    Ok(())
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// A generated row: deterministic values, marked as load-test data everywhere.
fn generated(i: usize, per: usize) -> ResultRecord {
    let models = ["bert-tiny", "bert-base-uncased", "vit-base-patch16-224", "TinyLlama-1.1B"];
    let families = [Family::Bert, Family::Bert, Family::Vit, Family::Llama];
    let classes = CLASSES;
    let m = i % models.len();
    let batch = 1u32 << (i / 7 % 6);
    let base = 1e6 * (1.0 + (i % 97) as f64);
    let samples: Vec<f64> = (0..per).map(|k| base * (1.0 + 0.01 * (k % 5) as f64)).collect();
    let sweep = SweepId::from_u128(sweep_number(i)).to_string();
    let mut r = shared::fixtures::ok_record(&sweep, &format!("{i:064x}"), &samples);
    let class = classes[i % classes.len()];
    let c = &mut r.coordinates;
    (c.model, c.family, c.hardware_class, c.batch) = (models[m].into(), families[m], class.into(), batch);
    c.precision = if i % 2 == 0 { Precision::Fp32 } else { Precision::Bf16 };
    r.throughput_items_per_s = r.latency_ns.as_ref().map(|s| f64::from(batch) / (s.p50 / 1e9));
    r.warmup_iterations = 1;
    let p = &mut r.provenance;
    p.agent_id = Some(format!("load-test-agent-{}", i % classes.len()));
    (p.agent_version, p.git_commit, p.engine_version, p.fingerprint_hash) =
        ("load-test".into(), "load-test".into(), "load-test".into(), "load-test".into());
    (p.hardware_class, p.weights_source) = (class.into(), "load-test:generated".into());
    (p.started_at_ms, p.finished_at_ms) = (1_767_225_600_000 + i as i64, 1_767_225_600_000 + i as i64 + 1);
    r
}
