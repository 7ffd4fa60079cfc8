//! Bench: the candle engine against PyTorch eager on the same machine, in one run.
//!
//! `cargo run -p agent --example vs_torch [-- --rounds N --cases bert-base-uncased:1,...]`
//!
//! For BERT-base (seq 128) and ViT-base at batch 1 and 8, each round runs the cell in
//! accelbench's engine (the product's own path: a child process per cell, see
//! `agent::cell`) and then in PyTorch (`ops/bench/torch_runner.py`, the PyPI wheel,
//! installed by `ops/bench/setup_torch.sh`), interleaved so that drift of this shared
//! VM hits both alike. It prints the median latency of each engine over the rounds and
//! the ratio candle/torch (below 1.0: candle is faster). Both use all cores.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context};
use shared::hardware::HardwareKind;
use shared::stats;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    // The engine's runner re-executes this binary to run a cell in a child process.
    if args.get(1).map(String::as_str) == Some("exec-cell") {
        return agent::cell::child::exec_cell(std::io::stdin().lock(), std::io::stdout().lock());
    }
    let rounds: usize = flag(&args, "--rounds").map(|v| v.parse()).transpose()?.unwrap_or(3);
    let cases = flag(&args, "--cases")
        .unwrap_or("bert-base-uncased:1,bert-base-uncased:8,vit-base-patch16-224:1,vit-base-patch16-224:8".into());
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().context("workspace root")?.to_path_buf();
    let python = setup_python(&root)?;
    let fp = agent::detect::detect();
    let class = fp.hardware_class_of(HardwareKind::Cpu).context("no cpu class")?;

    println!("{:<24} {:>5} {:>12} {:>12} {:>8}", "case", "batch", "candle ms", "torch ms", "ratio");
    for case in cases.split(',') {
        let (model, batch) = case.split_once(':').context("--cases wants MODEL:BATCH,...")?;
        let batch: u32 = batch.parse()?;
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        for round in 0..rounds {
            eprintln!("{model} b{batch}: round {}/{rounds}", round + 1);
            ours.push(candle_p50(model, batch, &class, &fp.hash())?);
            theirs.push(torch_p50(&python, &root, model, batch)?);
        }
        let (c, t) = (median(&ours), median(&theirs));
        println!("{model:<24} {batch:>5} {:>12.1} {:>12.1} {:>8.2}", c / 1e6, t / 1e6, c / t);
    }
    Ok(())
}

fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned()
}

fn setup_python(root: &Path) -> anyhow::Result<String> {
    let out =
        Command::new("bash").arg(root.join("ops/bench/setup_torch.sh")).output().context("running setup_torch.sh")?;
    if !out.status.success() {
        bail!("setup_torch.sh failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8(out.stdout)?.trim().to_string())
}

/// Median latency (ns) of one cell run through the product's own cell runner.
fn candle_p50(model: &str, batch: u32, class: &str, fingerprint: &str) -> anyhow::Result<f64> {
    use clap::Parser;
    #[derive(Parser)]
    struct A {
        #[command(flatten)]
        bench: agent::cli::BenchArgs,
    }
    let a = A::try_parse_from([
        "x",
        "--model",
        model,
        "--batch",
        &batch.to_string(),
        "--seq",
        "128",
        "--warmup-iterations",
        "2",
        "--min-iterations",
        "10",
        "--min-seconds",
        "2",
        "--max-seconds",
        "60",
    ])?;
    let reqs = agent::bench::plan(&a.bench.local_run().0, class, fingerprint, "vs-torch", &agent::bench::new_run_id())?;
    let req = reqs.first().context("empty plan")?;
    let record = agent::bench::run_with_progress(req, 1, 1)?;
    let s = record
        .latency_ns
        .with_context(|| format!("candle {model} b{batch}: {:?} {:?}", record.status, record.error))?;
    Ok(s.p50)
}

fn torch_p50(python: &str, root: &Path, model: &str, batch: u32) -> anyhow::Result<f64> {
    let out = Command::new(python)
        .arg(root.join("ops/bench/torch_runner.py"))
        .args(["--model", model, "--batch", &batch.to_string(), "--seq", "128", "--min-seconds", "2"])
        .output()
        .context("running torch_runner.py")?;
    if !out.status.success() {
        bail!("torch_runner.py: {}", String::from_utf8_lossy(&out.stderr));
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let samples: Vec<f64> = serde_json::from_value(v["samples_ns"].clone())?;
    Ok(stats::summarize(&samples).context("torch gave no samples")?.p50)
}

fn median(v: &[f64]) -> f64 {
    stats::percentile(v, 0.5).unwrap_or(f64::NAN)
}
