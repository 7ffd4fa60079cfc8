//! Local runs: `accelbench-agent bench` runs a matrix on this machine, one child
//! process per cell, with a progress bar per cell on a terminal, a table at the end,
//! and full result records as JSON lines with `--json` / `--out`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use comfy_table::{presets::UTF8_FULL_CONDENSED, Cell as TCell, Table};
use indicatif::{ProgressBar, ProgressStyle};
use shared::catalog::{self, Mode, Precision};
use shared::hardware::{HardwareClass, HardwareKind};
use shared::result::{Coordinates, ResultRecord, Status};
use shared::spec::{self, Engine, FanOut, HardwareSelector, Matrix, MeasurePolicy, Policy, SweepSpec};

use crate::cell::runner::{run_cell, RunnerConfig};
use crate::cell::{CellEvent, CellRequest};
use crate::engine::weights::Weights;

/// The sweep name local runs key their cells under.
pub const LOCAL_SWEEP: &str = "local";

/// What a local run measures: the matrix on this machine's device, and how. Built by the
/// `bench` command from its flags and by `quickstart` from its built-in sweep.
#[derive(Debug, Clone)]
pub struct LocalRun {
    /// Catalog model names.
    pub models: Vec<String>,
    pub batch: Vec<u32>,
    pub seq: u32,
    pub precision: Vec<Precision>,
    pub mode: Vec<Mode>,
    /// Real weights (a directory, a .gguf, ORG/NAME in the HF cache); random otherwise.
    pub weights: Option<String>,
    /// Seed of random weights and synthetic inputs.
    pub seed: u64,
    /// `cpu` or `cuda:N`.
    pub device: String,
    pub measure: MeasurePolicy,
    /// The engines to run each cell in: candle, and any whose runner is in `runners`.
    pub engines: Vec<Engine>,
    /// The runners of external engines, by engine (the agent config's `runners`).
    pub runners: std::collections::BTreeMap<String, Vec<String>>,
}

/// Where a local run's records go besides the table.
#[derive(Debug, Clone, Default)]
pub struct Output {
    /// Records as JSON lines on stdout instead of the table.
    pub json: bool,
    /// Records as JSON lines into this file too.
    pub out: Option<PathBuf>,
}

/// The cells of a local run. Every run is its own one-off sweep: `run_id` (a fresh
/// UUIDv7 from [`new_run_id`]) is its sweep id, so two runs of the same matrix are two
/// sets of results, never deduplicated into one; cell keys come from `sweep_name`.
pub fn plan(
    args: &LocalRun,
    hardware_class: &str,
    fingerprint_hash: &str,
    sweep_name: &str,
    run_id: &str,
) -> anyhow::Result<Vec<CellRequest>> {
    // The spec's own bounds: a local run measures by the same rules as a sweep.
    spec::check_measure(&args.measure).map_err(|problems| anyhow::anyhow!("measurement: {problems}"))?;
    let policy = args.measure.clone();
    if args.batch.contains(&0) {
        bail!("--batch: 0 is not a batch size (expected integers >= 1)");
    }
    if let Some(e) = args.engines.iter().find(|e| **e != Engine::Candle && !args.runners.contains_key(e.as_str())) {
        bail!(
            "--engine {e}: no runner for it in the agent config (give --config FILE with runners.{e}; see docs/RUNNERS.md)"
        );
    }
    let weights = match &args.weights {
        Some(w) => Weights::resolve(w, crate::engine::weights::hf_home().as_deref()).context("--weights")?,
        None => Weights::Random { seed: args.seed },
    };
    let (kind_name, _) = HardwareClass::split(hardware_class);
    let kind: HardwareKind = kind_name.parse().with_context(|| format!("hardware class {hardware_class}"))?;
    let mut models = Vec::new();
    for name in &args.models {
        let Some(model) = catalog::lookup(name) else {
            let known: Vec<&str> = catalog::all().iter().map(|m| m.name).collect();
            bail!("--model {name}: unknown model (known: {})", known.join(", "));
        };
        models.push(model.name.to_string());
    }
    // The same expansion as a sweep's (one matrix, one set of cell keys; repeated values
    // give one cell): a one-off spec over this machine's class.
    let one_off = SweepSpec {
        name: sweep_name.to_string(),
        matrix: Matrix {
            models,
            hardware: vec![HardwareSelector::of_kind(kind)],
            fan_out: FanOut::EachHardwareClass,
            batch_sizes: args.batch.clone(),
            sequence_lengths: vec![args.seq],
            precisions: args.precision.clone(),
            modes: args.mode.clone(),
            engines: args.engines.clone(),
            exclude: Vec::new(),
        },
        measure: policy.clone(),
        policy: Policy::default(),
        // `--weights` applies to every cell of the run, below.
        weights: Vec::new(),
    };
    let mut cells = Vec::new();
    for cell in shared::cell::expand(&one_off, &[hardware_class.to_string()]) {
        let coordinates = Coordinates::of(&cell, hardware_class).context("model left the catalog")?;
        cells.push(CellRequest {
            sweep_id: Some(run_id.to_string()),
            cell_key: cell.key(sweep_name).to_string(),
            attempt: 1,
            agent_id: None,
            coordinates,
            measure: policy.clone(),
            weights: weights.clone(),
            device: args.device.clone(),
            fingerprint_hash: fingerprint_hash.to_string(),
            runner: args.runners.get(cell.engine.as_str()).cloned(),
        });
    }
    Ok(cells)
}

/// A fresh run id: a UUIDv7, so ids sort by start time.
pub fn new_run_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// `$HF_HOME`, else `~/.cache/huggingface`.
pub fn run(args: &LocalRun, output: &Output, out: &mut impl Write) -> anyhow::Result<ExitCode> {
    let fp = crate::detect::detect();
    let class = device_class(&fp, &args.device)?;
    let requests = plan(args, &class, &fp.hash(), LOCAL_SWEEP, &new_run_id())?;
    let mut file = match &output.out {
        Some(p) => Some(std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?),
        None => None,
    };
    let mut records = Vec::with_capacity(requests.len());
    for (i, req) in requests.iter().enumerate() {
        let record = run_with_progress(req, i + 1, requests.len())?;
        let line = serde_json::to_string(&record)?;
        if let Some(f) = file.as_mut() {
            writeln!(f, "{line}")?;
        }
        if output.json {
            writeln!(out, "{line}")?;
        }
        records.push(record);
    }
    if !output.json {
        writeln!(out, "{}", results_table(&records))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The hardware class the results of `device` are filed under.
pub fn device_class(fp: &shared::fingerprint::Fingerprint, device: &str) -> anyhow::Result<String> {
    let kind = device.split(':').next().unwrap_or(device);
    kind.parse::<HardwareKind>()
        .ok()
        .and_then(|kind| fp.hardware_class_of(kind))
        .with_context(|| format!("--device {device}: this machine has no such device (see accelbench-agent detect)"))
}

/// Runs one cell in its child process with a progress bar on a terminal.
pub fn run_with_progress(req: &CellRequest, idx: usize, n: usize) -> anyhow::Result<ResultRecord> {
    let c = &req.coordinates;
    let label = format!("[{idx}/{n}] {} b{} s{} {} {} {}", c.model, c.batch, c.seq_len, c.precision, c.mode, c.engine);
    let pb = ProgressBar::new((req.measure.max_seconds * 1000.0) as u64);
    pb.set_style(
        ProgressStyle::with_template("{prefix} {bar:30} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    pb.set_prefix(label.clone());
    pb.set_message("loading");
    let cfg = RunnerConfig::for_request(req)?;
    let record = run_cell(&cfg, req, |ev| match ev {
        CellEvent::Loading => pb.set_message("loading"),
        CellEvent::Warmup => pb.set_message("warming up"),
        CellEvent::Progress { n, last_ns, elapsed_s, .. } => {
            pb.set_position((elapsed_s * 1000.0) as u64);
            pb.set_message(format!("{n} iterations, last {:.2} ms", last_ns / 1e6));
        }
        CellEvent::Result { .. } => {}
    })?;
    pb.finish_and_clear();
    if !pb.is_hidden() {
        eprintln!("{label}: {}", one_line(&record));
    }
    Ok(record)
}

fn one_line(r: &ResultRecord) -> String {
    match (&r.status, &r.latency_ns) {
        (Status::Ok, Some(s)) => format!("ok, p50 {:.2} ms", s.p50 / 1e6),
        (status, _) => format!("{status}: {}", r.error.as_deref().unwrap_or("")),
    }
}

/// The end-of-run table.
pub fn results_table(records: &[ResultRecord]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_header([
        "model",
        "batch",
        "seq",
        "precision",
        "mode",
        "engine",
        "status",
        "outputs",
        "p50 ms",
        "p99 ms",
        "CI ±%",
        "items/s",
        "tok/s",
        "peak MiB",
        "J/iter",
    ]);
    for r in records {
        let c = &r.coordinates;
        let s = r.latency_ns.as_ref();
        let ms = |v: f64| format!("{:.2}", v / 1e6);
        let ci = s.map(|s| format!("{:.1}", s.relative_ci_half_width() * 100.0));
        let status = match &r.error {
            Some(e) if r.status != Status::Ok => format!("{}: {}", r.status, truncate(e, 60)),
            _ => r.status.to_string(),
        };
        t.add_row(vec![
            TCell::new(&c.model),
            TCell::new(c.batch),
            TCell::new(c.seq_len),
            TCell::new(c.precision),
            TCell::new(c.mode),
            TCell::new(&c.engine),
            TCell::new(status),
            // The validation pass against candle fp32: blank where none ran.
            TCell::new(r.validation.as_ref().map(|v| v.status.as_str()).unwrap_or_default()),
            TCell::new(s.map(|s| ms(s.p50)).unwrap_or_default()),
            TCell::new(s.map(|s| ms(s.p99)).unwrap_or_default()),
            TCell::new(ci.unwrap_or_default()),
            TCell::new(r.throughput_items_per_s.map(|v| format!("{v:.1}")).unwrap_or_default()),
            TCell::new(r.generation.as_ref().map(|g| format!("{:.1}", g.decode_tokens_per_s)).unwrap_or_default()),
            TCell::new(r.memory.peak_host_bytes.map(|b| format!("{:.0}", b as f64 / 1048576.0)).unwrap_or_default()),
            TCell::new(r.energy.joules_per_iteration.map(|j| format!("{j:.3}")).unwrap_or_else(|| "-".into())),
        ]);
    }
    t
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n).collect::<String>())
    }
}

/// `accelbench-agent models`.
pub fn print_models(out: &mut impl Write, json: bool) -> anyhow::Result<()> {
    if json {
        for m in catalog::all() {
            let v = serde_json::json!({
                "name": m.name,
                "family": m.family,
                "parameters": m.parameter_count(),
                "precisions": m.supported_precisions(),
            });
            writeln!(out, "{v}")?;
        }
        return Ok(());
    }
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_header(["model", "family", "parameters", "precisions", "training"]);
    for m in catalog::all() {
        let precisions: Vec<String> = m.supported_precisions().iter().map(|p| p.to_string()).collect();
        t.add_row(vec![
            m.name.to_string(),
            m.family.to_string(),
            human_count(m.parameter_count()),
            precisions.join(","),
            if crate::engine::trains(m.family) { "yes" } else { "-" }.to_string(),
        ]);
    }
    writeln!(out, "{t}")?;
    Ok(())
}

fn human_count(n: u64) -> String {
    match n {
        n if n >= 1_000_000_000 => format!("{:.2}B", n as f64 / 1e9),
        n if n >= 1_000_000 => format!("{:.1}M", n as f64 / 1e6),
        n => format!("{:.1}K", n as f64 / 1e3),
    }
}
