//! Bench: the candle engine's quantized decoders against llama.cpp on the same GGUF file,
//! in one run.
//!
//! `cargo run -p agent --example vs_llamacpp [-- --rounds N --threads T --cases MODEL:PRECISION,...]`
//!
//! For each case (default: TinyLlama-1.1B at q4_0, q4_1 and q8_0) the engine writes its seeded
//! random model as a GGUF file (`engine::random_gguf_of`: llama.cpp's tensor names and
//! metadata, no vocabulary), and both engines load that file:
//!
//! - accelbench: a cell through the product's own path (`--weights FILE`), batch 1, a
//!   128-token prompt, then decode steps; prompt tokens/s = 128 / time to first token,
//!   decode tokens/s = 1 / inter-token latency (medians).
//! - llama.cpp: `llama-bench -p 128 -n 0` (pp128) and `-p 0 -n 64 -d 128` (tg64 after
//!   128 tokens of context, as our decode runs after the prompt), built from the PyPI
//!   sdist of llama-cpp-python by `ops/bench/setup_llamacpp.sh`.
//!
//! Before timing, an output check: both engines read the file and a 32-token prompt of
//! token ids, and the bench prints how far apart their logits are, each one's distance
//! from the same model with f32 (dequantized) weights, and how many of the 16 greedy
//! tokens that follow agree (llama.cpp through llama-cpp-python's bindings
//! over the same build, `ops/bench/llamacpp_greedy.py`).
//!
//! Interleaved for `--rounds` rounds, both on `--threads` threads (default: every core).
//! Prints the CPU and each ratio candle/llama.cpp in tokens/s (above 1.0: candle is
//! faster); the issue's goal is ≥ 0.8 for both.

mod common;

use std::path::Path;
use std::process::Command;

use agent::engine::{self, weights::Weights, WorkloadSpec};
use anyhow::{bail, Context};
use shared::catalog::{self, Mode, Precision};
use shared::stats;

const PROMPT: usize = 128;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    // The engine's runner re-executes this binary to run a cell in a child process.
    if args.get(1).map(String::as_str) == Some("exec-cell") {
        return agent::cell::child::exec_cell(std::io::stdin().lock(), std::io::stdout().lock());
    }
    let (rounds, threads) = common::rounds_and_threads(&args)?;
    let cases =
        common::flag(&args, "--cases").unwrap_or("TinyLlama-1.1B:q4_0,TinyLlama-1.1B:q4_1,TinyLlama-1.1B:q8_0".into());
    let llama_bench = common::setup(&common::repo_root()?, "setup_llamacpp.sh")?;
    println!("cpu: {} | threads: {threads} | rounds: {rounds} | llama-bench: {llama_bench}", common::cpu_name());
    println!(
        "{:<18} {:>6} {:>12} {:>12} {:>7} {:>12} {:>12} {:>7}",
        "model", "prec", "candle pp/s", "llama pp/s", "ratio", "candle tg/s", "llama tg/s", "ratio"
    );
    for case in cases.split(',') {
        let (model, precision) = case.split_once(':').context("--cases wants MODEL:PRECISION,...")?;
        let precision: Precision = precision.parse().map_err(|e| anyhow::anyhow!("{case}: {e}"))?;
        let dir = tempfile::tempdir()?;
        let file = dir.path().join(format!("{model}-{precision}.gguf"));
        let spec = WorkloadSpec {
            model: catalog::lookup(model).with_context(|| format!("{model} is not in the catalog"))?,
            batch: 1,
            seq_len: PROMPT,
            precision,
            mode: Mode::Inference,
            weights: Weights::Random { seed: agent::engine::weights::DEFAULT_SEED },
        };
        std::fs::write(&file, engine::random_gguf_of(&spec).map_err(|e| anyhow::anyhow!("{case}: {e}"))?)?;
        let check =
            output_check(&spec, &file, &llama_bench, threads).with_context(|| format!("{case}: output check"))?;
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        for round in 0..rounds {
            eprintln!("{case}: round {}/{rounds}", round + 1);
            ours.push(candle_rates(model, precision, &file)?);
            theirs.push(llama_rates(&llama_bench, &file, threads)?);
        }
        let med = |v: &[(f64, f64)], pick: fn(&(f64, f64)) -> f64| {
            stats::percentile(&v.iter().map(pick).collect::<Vec<_>>(), 0.5).unwrap_or(f64::NAN)
        };
        let (cp, ct) = (med(&ours, |r| r.0), med(&ours, |r| r.1));
        let (lp, lt) = (med(&theirs, |r| r.0), med(&theirs, |r| r.1));
        println!(
            "{model:<18} {precision:>6} {cp:>12.1} {lp:>12.1} {:>7.2} {ct:>12.1} {lt:>12.1} {:>7.2}",
            cp / lp,
            ct / lt
        );
        println!("{:<25} {check}", "");
    }
    Ok(())
}

/// Prompt length and decode steps of the output check.
const CHECK_PROMPT: usize = 32;
const CHECK_STEPS: usize = 16;

/// Both engines on `file` from the same prompt of token ids: the logits after the
/// prompt (max |difference| over max |logit|, cosine) and how many of the greedy tokens
/// that follow agree, in order, before the first that differs.
fn output_check(spec: &WorkloadSpec, file: &Path, llama_bench: &str, threads: usize) -> anyhow::Result<String> {
    let vocab = match &spec.model.config {
        catalog::ModelConfig::Decoder(c) => c.vocab_size,
        _ => bail!("{} is not a decoder", spec.model.name),
    };
    let prompt: Vec<u32> = (0..CHECK_PROMPT as u32).map(|i| (i * 7919 + 13) % vocab).collect();
    let from_file = WorkloadSpec {
        weights: Weights::resolve(file.to_str().context("utf-8 path")?, None)?,
        model: spec.model,
        ..*spec
    };
    let decode = |dequantized| {
        engine::greedy_decode(&from_file, &prompt, CHECK_STEPS, dequantized).map_err(|e| anyhow::anyhow!("engine: {e}"))
    };
    let ((ours, our_tokens), (exact, exact_tokens)) = (decode(false)?, decode(true)?);
    let python = common::setup(&common::repo_root()?, "setup_torch.sh")?;
    let script = common::repo_root()?.join("ops/bench/llamacpp_greedy.py");
    let ids: Vec<String> = prompt.iter().map(u32::to_string).collect();
    let lib = Path::new(llama_bench).parent().context("llama-bench's directory")?;
    let out = Command::new(python)
        .arg(script)
        .args([file.to_str().context("utf-8 path")?, &ids.join(","), &CHECK_STEPS.to_string(), &threads.to_string()])
        .env("LLAMA_CPP_LIB_PATH", lib)
        .output()
        .context("running llamacpp_greedy.py")?;
    if !out.status.success() {
        bail!("llamacpp_greedy.py: {}", String::from_utf8_lossy(&out.stderr));
    }
    #[derive(serde::Deserialize)]
    struct Theirs {
        logits: Vec<f32>,
        tokens: Vec<u32>,
    }
    let theirs: Theirs = serde_json::from_slice(&out.stdout).context("llamacpp_greedy.py's output")?;
    if theirs.logits.len() != ours.len() {
        bail!("llama.cpp gave {} logits, the engine {}", theirs.logits.len(), ours.len());
    }
    let max_abs = theirs.logits.iter().fold(0f32, |m, v| m.max(v.abs())).max(f32::MIN_POSITIVE);
    let diff = |a: &[f32], b: &[f32]| a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs())) / max_abs;
    let dot: f64 = ours.iter().zip(&theirs.logits).map(|(a, b)| f64::from(*a) * f64::from(*b)).sum();
    let norm = |v: &[f32]| v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    let cosine = dot / (norm(&ours) * norm(&theirs.logits));
    let agree = |a: &[u32], b: &[u32]| a.iter().zip(b).take_while(|(x, y)| x == y).count();
    Ok(format!(
        "output check ({CHECK_PROMPT}-token prompt, max |logit| {max_abs:.3}): logits against llama.cpp's max diff \
         {:.1e}, cosine {cosine:.6}; against the f32 model (weights dequantized) ours {:.1e}, llama.cpp's {:.1e}; \
         greedy tokens in agreement, of {CHECK_STEPS}: with llama.cpp {}, ours with f32 {}, llama.cpp's with f32 {}",
        diff(&ours, &theirs.logits),
        diff(&ours, &exact),
        diff(&theirs.logits, &exact),
        agree(&our_tokens, &theirs.tokens),
        agree(&our_tokens, &exact_tokens),
        agree(&theirs.tokens, &exact_tokens),
    ))
}

/// (prompt tokens/s, decode tokens/s) of one cell of the engine on `file`.
fn candle_rates(model: &str, precision: Precision, file: &Path) -> anyhow::Result<(f64, f64)> {
    let (prec, seq) = (precision.to_string(), PROMPT.to_string());
    let record = common::run_cell(&[
        "--model",
        model,
        "--precision",
        &prec,
        "--weights",
        file.to_str().context("utf-8 path")?,
        "--seq",
        &seq,
        "--warmup-iterations",
        "1",
        "--min-iterations",
        "3",
        "--min-seconds",
        "2",
        "--max-seconds",
        "60",
    ])?;
    let g = record
        .generation
        .with_context(|| format!("candle {model} {precision}: {:?} {:?}", record.status, record.error))?;
    Ok((f64::from(g.prompt_tokens) / (g.time_to_first_token_ns.p50 / 1e9), 1e9 / g.inter_token_ns.p50))
}

/// (pp128 tokens/s from an empty context, tg64 tokens/s after 128 tokens of context)
/// from llama-bench's JSON: two runs, as its depth (`-d`) applies to every test.
fn llama_rates(llama_bench: &str, file: &Path, threads: usize) -> anyhow::Result<(f64, f64)> {
    let prompt = PROMPT.to_string();
    let pp = llama_bench_rate(llama_bench, file, threads, &["-p", &prompt, "-n", "0"])?;
    let tg = llama_bench_rate(llama_bench, file, threads, &["-p", "0", "-n", "64", "-d", &prompt])?;
    Ok((pp, tg))
}

fn llama_bench_rate(llama_bench: &str, file: &Path, threads: usize, test: &[&str]) -> anyhow::Result<f64> {
    let out = Command::new(llama_bench)
        .arg("-m")
        .arg(file)
        .args(test)
        .args(["-r", "3", "-t", &threads.to_string(), "-o", "json"])
        .output()
        .context("running llama-bench")?;
    if !out.status.success() {
        bail!("llama-bench {test:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let runs: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).context("llama-bench's JSON")?;
    runs.first().and_then(|r| r["avg_ts"].as_f64()).with_context(|| format!("llama-bench {test:?} gave no rate"))
}
