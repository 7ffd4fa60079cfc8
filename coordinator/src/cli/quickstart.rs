//! `accelbench quickstart`: the embedded default. Fingerprints this machine, runs a
//! small built-in sweep on it (each cell in a child process, as an agent would), writes
//! the results into a local warehouse, and prints the performance report and what to
//! try next. Everything it prints was measured here, now.

use std::process::ExitCode;
use std::time::Instant;

use clap::Args;
use shared::catalog::{Mode, Precision};

use agent::bench::{self, LocalRun};
use shared::spec::MeasurePolicy;

use super::common::WarehouseArgs;
use crate::report::{self, Format, Kind};
use crate::server::tables;
use crate::warehouse::schema::{CalibrationRow, Origin, SweepRow};

/// The built-in sweep: small models of three families, three batch sizes, two
/// precisions, inference; sized to finish in a few minutes on a 2-core machine.
const MODELS: &[&str] = &["bert-tiny", "vit-tiny", "llama-tiny"];
const BATCHES: &[u32] = &[1, 4, 16];
const SEQ_LEN: u32 = 64;

#[derive(Debug, Args)]
#[command(long_about = "Run accelbench's built-in sweep on this machine and start a warehouse.\n\n\
It fingerprints the machine, benchmarks bert-tiny, vit-tiny and llama-tiny (test-size \
configs with seeded random weights) at batch 1, 4 and 16 in fp32 and bf16 with the built-in \
candle engine, each cell in its own child process, writes the results as Parquet into DIR, \
and prints the performance report and the next commands to try. Combinations the engine \
cannot run are reported as unsupported, with the reason.")]
pub struct QuickstartArgs {
    /// Warehouse to create or add to: a folder, or a URL (s3://, gs://, az://, file://)
    #[arg(long, value_name = "DIR_OR_URL", default_value = "./accelbench-data")]
    pub data: String,
}

pub async fn execute(args: QuickstartArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    // Detection and the cells (child processes, waited on) block: off the async runtime.
    let (run_id, records, calibrations, machine) = tokio::task::spawn_blocking(run_cells).await??;

    // The same opening and reading path as every other command: a remote warehouse is
    // read through a local copy of its committed files, never by DuckDB itself.
    let location = args.data;
    let warehouse = WarehouseArgs { warehouse: location.clone() };
    let wh = warehouse.open().await?;
    let out = wh.write_results(&records, Origin::Measured).await?;
    wh.write_calibrations(&calibrations).await?;
    let class = records.first().map_or_else(String::new, |r| r.coordinates.hardware_class.clone());
    // The run as a sweep with its cells, and this machine as the agent that ran them, so
    // the dashboard and queries see it as they see a coordinator's sweeps.
    let now_ms = chrono::Utc::now().timestamp_millis();
    wh.write_sweeps(&[SweepRow {
        sweep_id: run_id.clone(),
        name: QUICKSTART.into(),
        submitted_by: None,
        submitted_at_ms: now_ms,
        priority: 0,
        max_attempts: 1,
        n_cells: records.len() as u64,
        spec_json: serde_json::json!({ "local_run": QUICKSTART, "models": MODELS, "batch_sizes": BATCHES }).to_string(),
    }])
    .await?;
    wh.write_cells(&records.iter().map(tables::finished_cell_row).collect::<Vec<_>>()).await?;
    wh.write_agents(&[tables::agent_row(QUICKSTART, &machine, &class, env!("CARGO_PKG_VERSION"), now_ms)]).await?;
    let engine = warehouse.query_engine().await?;
    let md = tokio::task::spawn_blocking({
        let run_id = run_id.clone();
        move || report::render(&engine, Kind::Performance, Some(&run_id), Format::Md)
    })
    .await??;
    println!("{}", String::from_utf8_lossy(&md));
    println!(
        "{} results written to {} in {:.0} s.\n\nNext:\n  \
         accelbench dashboard --warehouse {location}   # then open http://127.0.0.1:8080/\n  \
         accelbench query --warehouse {location} \"SELECT model, batch, precision, latency_p50_ns/1e6 AS p50_ms FROM latest_results ORDER BY p50_ms\"\n  \
         accelbench report performance --warehouse {location} --format html --output performance.html\n  \
         accelbench report compatibility --warehouse {location}\n  \
         accelbench compare {run_id} <ANOTHER_RUN_ID> --warehouse {location}   # run quickstart again, then compare\n  \
         accelbench regressions --warehouse {location}\n  \
         accelbench predict --model bert-tiny --hardware-class \"{class}\" --batch 64 --warehouse {location}\n  \
         accelbench recommend --model bert-tiny --objective latency --warehouse {location}\n  \
         accelbench-agent bench --model bert-base-uncased --batch 1,8 --precision fp32,bf16",
        out.new,
        location,
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

/// The agent id and sweep name the quickstart's rows carry.
const QUICKSTART: &str = "quickstart";

type Run = (String, Vec<shared::result::ResultRecord>, Vec<CalibrationRow>, shared::fingerprint::Fingerprint);

/// Fingerprints this machine, calibrates its CPU and runs the built-in sweep on it, one
/// child process per cell, with progress; returns the run id, the results (run by agent
/// `quickstart`), the calibration rows and the fingerprint.
fn run_cells() -> anyhow::Result<Run> {
    let fp = agent::detect::detect();
    let class = bench::device_class(&fp, "cpu")?;
    eprintln!(
        "this machine: {class}, {} logical cores, {:.1} GiB memory (fingerprint {})",
        fp.cpu.logical_cores,
        fp.memory.total_bytes as f64 / (1u64 << 30) as f64,
        &fp.hash()[..12]
    );
    let run_id = bench::new_run_id();
    let calibrations = calibrate(&fp, &class)?;
    let mut requests = bench::plan(&builtin_sweep(), &class, &fp.hash(), QUICKSTART, &run_id)?;
    for r in &mut requests {
        r.agent_id = Some(QUICKSTART.into());
    }
    eprintln!("running {} cells (sweep {run_id})", requests.len());
    let mut records = Vec::with_capacity(requests.len());
    for (i, req) in requests.iter().enumerate() {
        records.push(bench::run_with_progress(req, i + 1, requests.len())?);
    }
    Ok((run_id, records, calibrations, fp))
}

/// The CPU's GEMM rates and copy bandwidth (what `accelbench predict` reads), in a child
/// process as an agent measures them, printed as they are.
fn calibrate(fp: &shared::fingerprint::Fingerprint, class: &str) -> anyhow::Result<Vec<CalibrationRow>> {
    eprintln!("calibrating: GEMM per precision and memory copy");
    let exe = std::env::current_exe()?;
    // Without calibrations the benchmark still stands; only `predict` will say so.
    let found = agent::calibrate::calibrate_device(&exe, "cpu", class).unwrap_or_else(|e| {
        eprintln!("  calibration failed: {e:#}");
        Vec::new()
    });
    for c in &found {
        eprintln!("  {} {}: {}", c.kind, c.precision, agent::calibrate::human_rate(c));
    }
    Ok(tables::calibration_rows(QUICKSTART, fp, found))
}

fn builtin_sweep() -> LocalRun {
    LocalRun {
        models: MODELS.iter().map(|s| s.to_string()).collect(),
        batch: BATCHES.to_vec(),
        seq: SEQ_LEN,
        precision: vec![Precision::Fp32, Precision::Bf16],
        mode: vec![Mode::Inference],
        weights: None,
        seed: agent::engine::weights::DEFAULT_SEED,
        device: "cpu".into(),
        engines: vec![shared::spec::Engine::Candle],
        runners: Default::default(),
        measure: MeasurePolicy {
            warmup_iterations: 1,
            warmup_min_seconds: 0.2,
            min_iterations: 5,
            min_seconds: 0.5,
            max_seconds: 3.0,
            target_relative_ci: 0.05,
        },
    }
}
