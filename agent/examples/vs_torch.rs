//! Bench: the candle engine against PyTorch eager on the same machine, in one run.
//!
//! `cargo run -p agent --example vs_torch [-- --rounds N --threads T --cases MODEL:BATCH[:PRECISION],...]`
//!
//! Prints the CPU and the instruction set the kernels dispatch to (machines of this
//! kind differ from day to day). For each case (default: BERT-base, all-MiniLM-L6-v2
//! and ViT-base at batch 1 and 8, seq 128, fp32):
//!
//! 1. Output check: PyTorch writes its seeded model in Hugging Face's layout, accelbench
//!    loads those weights (`--weights DIR`, the real-weights path), runs one forward and
//!    hands PyTorch the exact inputs it ran; PyTorch runs them too. The largest
//!    difference relative to the largest output value must be ≤ 1e-3 in fp32 (3e-2 in
//!    bf16, whose 8-bit mantissa rounds at 4e-3 per op), or the case fails.
//! 2. Timing, interleaved A/B for `--rounds` rounds so that drift of this shared VM hits
//!    both alike: accelbench through the product's own path (a child process per cell,
//!    see `agent::cell`), then PyTorch (`ops/bench/torch_runner.py`, the PyPI wheel,
//!    installed by `ops/bench/setup_torch.sh`). Both on `--threads` threads (default:
//!    every core).
//!
//! Then the median latency of each engine over the rounds, the ratio candle/torch per
//! case (below 1.0: candle is faster) and the worst ratio.

mod common;

use std::collections::HashMap;
use std::process::Command;

use agent::engine::{self, init, weights::Weights, WorkloadSpec};
use anyhow::{bail, ensure, Context};
use candle_core::{Device, Tensor};
use shared::catalog::{self, Family, Mode, Precision};
use shared::stats;

const SEQ: usize = 128;

/// The output check's bound on max |candle − torch| / max |torch|.
fn tolerance(p: Precision) -> f64 {
    if p == Precision::Bf16 {
        3e-2
    } else {
        1e-3
    }
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    // The engine's runner re-executes this binary to run a cell in a child process.
    if args.get(1).map(String::as_str) == Some("exec-cell") {
        return agent::cell::child::exec_cell(std::io::stdin().lock(), std::io::stdout().lock());
    }
    let (rounds, threads) = common::rounds_and_threads(&args)?;
    let cases = common::flag(&args, "--cases").unwrap_or(
        "bert-base-uncased:1,bert-base-uncased:8,all-MiniLM-L6-v2:1,all-MiniLM-L6-v2:8,\
         vit-base-patch16-224:1,vit-base-patch16-224:8"
            .into(),
    );
    let python = common::setup(&common::repo_root()?, "setup_torch.sh")?;
    let torch = Torch { python, script: common::repo_root()?.join("ops/bench/torch_runner.py"), threads };
    println!(
        "cpu: {} | kernels: {} | threads: {threads} | rounds: {rounds}",
        common::cpu_name(),
        kernels::Isa::best_name()
    );

    println!(
        "{:<24} {:>5} {:>5} {:>10} {:>12} {:>12} {:>8}",
        "case", "batch", "prec", "out diff", "candle ms", "torch ms", "ratio"
    );
    let mut worst: f64 = 0.0;
    for case in cases.split(',') {
        let mut parts = case.split(':');
        let (Some(model), Some(batch)) = (parts.next(), parts.next()) else {
            bail!("--cases wants MODEL:BATCH[:PRECISION],..., got `{case}`")
        };
        let batch: usize = batch.parse().with_context(|| format!("batch of `{case}`"))?;
        let precision: Precision =
            parts.next().unwrap_or("fp32").parse().map_err(|e| anyhow::anyhow!("{case}: {e}"))?;
        let diff = output_difference(&torch, model, batch, precision)?;
        let bound = tolerance(precision);
        ensure!(diff <= bound, "{case}: outputs differ from PyTorch's by {diff:.2e} (> {bound})");
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        for round in 0..rounds {
            eprintln!("{case}: round {}/{rounds}", round + 1);
            ours.push(candle_p50(model, batch, precision)?);
            theirs.push(torch.p50(model, batch, precision)?);
        }
        let (c, t) = (median(&ours), median(&theirs));
        worst = worst.max(c / t);
        println!(
            "{model:<24} {batch:>5} {precision:>5} {diff:>10.1e} {:>12.1} {:>12.1} {:>8.2}",
            c / 1e6,
            t / 1e6,
            c / t
        );
    }
    println!("worst ratio: {worst:.2}");
    Ok(())
}

/// The PyTorch side: `torch_runner.py` under the bench's virtualenv.
struct Torch {
    python: String,
    script: std::path::PathBuf,
    threads: usize,
}

impl Torch {
    fn run(&self, model: &str, batch: usize, precision: Precision, extra: &[&str]) -> anyhow::Result<Vec<u8>> {
        let out = Command::new(&self.python)
            .arg(&self.script)
            .args(["--model", model, "--batch", &batch.to_string(), "--seq", &SEQ.to_string()])
            .args(["--precision", &precision.to_string()])
            .args(["--threads", &self.threads.to_string()])
            .args(extra)
            .output()
            .context("running torch_runner.py")?;
        if !out.status.success() {
            bail!("torch_runner.py: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(out.stdout)
    }

    /// Median latency (ns) of PyTorch eager.
    fn p50(&self, model: &str, batch: usize, precision: Precision) -> anyhow::Result<f64> {
        let v: serde_json::Value =
            serde_json::from_slice(&self.run(model, batch, precision, &["--min-seconds", "2"])?)?;
        let samples: Vec<f64> = serde_json::from_value(v["samples_ns"].clone())?;
        Ok(stats::summarize(&samples).context("torch gave no samples")?.p50)
    }
}

/// max |candle − torch| / max |torch| over one forward pass on the same weights and
/// inputs.
fn output_difference(torch: &Torch, model: &str, batch: usize, precision: Precision) -> anyhow::Result<f64> {
    let dir = tempfile::tempdir()?;
    let folder = dir.path().to_str().context("utf-8 temp path")?;
    torch.run(model, batch, Precision::Fp32, &["--save-weights", folder])?;
    let weights = Weights::resolve(folder, None)?;
    let spec = WorkloadSpec {
        model: catalog::lookup(model).with_context(|| format!("{model} is not in the catalog"))?,
        batch,
        seq_len: SEQ,
        precision,
        mode: Mode::Inference,
        weights: weights.clone(),
    };
    let mut workload = engine::build(&spec, &Device::Cpu).map_err(|e| anyhow::anyhow!("{model}: {e}"))?;
    workload.iterate()?;
    let ours = workload.output().context("the workload kept no output")?.to_dtype(candle_core::DType::F32)?;
    // The inputs the workload ran: the engine's seeded inputs, recomputed here.
    let seed = weights.input_seed();
    let mut inputs = HashMap::new();
    match spec.model.family {
        Family::Vit => {
            let shape = (batch, 3, 224, 224);
            let values = init::seeded_normal(seed, "pixel_values", batch * 3 * 224 * 224);
            inputs.insert("pixel_values", Tensor::from_vec(values, shape, &Device::Cpu)?);
        }
        Family::Bert => {
            let vocab = weights.config_json()?.and_then(|c| c["vocab_size"].as_u64()).context("vocab_size")? as u32;
            let ids = init::seeded_ids(seed, "input_ids", batch * SEQ, vocab);
            inputs.insert(
                "input_ids",
                Tensor::from_vec(ids, (batch, SEQ), &Device::Cpu)?.to_dtype(candle_core::DType::I64)?,
            );
        }
        other => bail!("the output check covers BERT and ViT, not {other}"),
    }
    candle_core::safetensors::save(&inputs, dir.path().join("inputs.safetensors"))?;
    torch.run(model, batch, precision, &["--outputs", folder])?;
    let theirs = candle_core::safetensors::load(dir.path().join("outputs.safetensors"), &Device::Cpu)?;
    let theirs = theirs.get("output").context("outputs.safetensors has no `output`")?;
    ensure!(ours.dims() == theirs.dims(), "shapes differ: {:?} against {:?}", ours.dims(), theirs.dims());
    let diff: f32 = ours.sub(theirs)?.abs()?.max_all()?.to_scalar()?;
    let scale: f32 = theirs.abs()?.max_all()?.to_scalar()?;
    Ok(f64::from(diff) / f64::from(scale.max(f32::MIN_POSITIVE)))
}

/// Median latency (ns) of one cell run through the product's own cell runner.
fn candle_p50(model: &str, batch: usize, precision: Precision) -> anyhow::Result<f64> {
    let (batch_s, seq, prec) = (batch.to_string(), SEQ.to_string(), precision.to_string());
    let record = common::run_cell(&[
        "--model",
        model,
        "--batch",
        &batch_s,
        "--seq",
        &seq,
        "--precision",
        &prec,
        "--warmup-iterations",
        "2",
        "--min-iterations",
        "10",
        "--min-seconds",
        "2",
        "--max-seconds",
        "60",
    ])?;
    let s = record
        .latency_ns
        .with_context(|| format!("candle {model} b{batch}: {:?} {:?}", record.status, record.error))?;
    Ok(s.p50)
}

fn median(v: &[f64]) -> f64 {
    stats::percentile(v, 0.5).unwrap_or(f64::NAN)
}
