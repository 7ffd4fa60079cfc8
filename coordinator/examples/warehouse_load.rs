//! Load bench of the warehouse: generated rows, clearly marked, never measured data.
//!
//! `cargo run -p coordinator --example warehouse_load [-- --results 1000000 --samples-per-result 10]`
//!
//! Writes N generated result rows (origin `load-test`, weights source
//! `load-test:generated`) with M samples each into a scratch warehouse in a temporary
//! folder, prints ingest rows/s, then runs each standard report's SQL twice on the same
//! committed files: through accelbench's confined query engine, and through a plain
//! DuckDB connection with the same views and no confinement, printing both latencies
//! and their ratio (median of 5 runs each, interleaved).

use std::time::Instant;

use coordinator::query::QueryEngine;
use coordinator::report::{self, Kind};
use coordinator::warehouse::schema::{Origin, Table};
use coordinator::warehouse::Warehouse;
use shared::catalog::{Family, Precision};
use shared::result::ResultRecord;

const BATCH: usize = 20_000;

/// Warehouse ingest and report load on a scratch warehouse.
#[derive(clap::Parser)]
struct Args {
    /// Generated result rows to write.
    #[arg(long, default_value_t = 1_000_000)]
    results: usize,
    /// Latency samples per result.
    #[arg(long, default_value_t = 10)]
    samples_per_result: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = <Args as clap::Parser>::parse();
    let (n_results, per) = (args.results, args.samples_per_result);
    let dir = tempfile::tempdir()?;
    let wh = Warehouse::open(&dir.path().to_string_lossy()).await?;

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

    let files = wh.sync_to_local(dir.path()).await?;
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
    let classes = ["cpu/load-test", "cuda/load-test A", "cuda/load-test B"];
    let m = i % models.len();
    let batch = 1u32 << (i / 7 % 6);
    let base = 1e6 * (1.0 + (i % 97) as f64);
    let samples: Vec<f64> = (0..per).map(|k| base * (1.0 + 0.01 * (k % 5) as f64)).collect();
    let mut r = shared::fixtures::ok_record(&format!("load-test-{}", i / 100_000), &format!("{i:064x}"), &samples);
    let class = classes[i % classes.len()];
    let c = &mut r.coordinates;
    (c.model, c.family, c.hardware_class, c.batch) = (models[m].into(), families[m], class.into(), batch);
    c.precision = if i % 2 == 0 { Precision::Fp32 } else { Precision::Bf16 };
    r.throughput_items_per_s = r.latency_ns.as_ref().map(|s| f64::from(batch) / (s.p50 / 1e9));
    r.warmup_iterations = 1;
    let p = &mut r.provenance;
    p.agent_id = None;
    (p.agent_version, p.git_commit, p.engine_version, p.fingerprint_hash) =
        ("load-test".into(), "load-test".into(), "load-test".into(), "load-test".into());
    (p.hardware_class, p.weights_source) = (class.into(), "load-test:generated".into());
    (p.started_at_ms, p.finished_at_ms) = (1_767_225_600_000 + i as i64, 1_767_225_600_000 + i as i64 + 1);
    r
}
