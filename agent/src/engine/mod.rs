//! The built-in candle engine: builds a model of the catalog (or from real weights)
//! and runs one iteration of a cell's workload at a time.
//!
//! Layout:
//! - [`init`]: seeded random weights.
//! - `layout`: linear weights stored transposed, the layout candle's CPU matmul reads
//!   fastest.
//! - `fused`: BERT's and ViT's encoder stacks on the CPU in f32, on the `kernels` crate.
//! - [`config`]: catalog entry → the Hugging Face style config candle expects.
//! - [`weights`]: real weights (a directory, a `.gguf`, the Hugging Face cache), hashed.
//! - [`export`]: seeded weights written in Hugging Face layout for external runners.
//! - `encoder`, `seq2seq`, `decoder`, `quantized`, `vision`: inference per family.
//! - `training`: forward, loss, backward and an AdamW step.
//!
//! What it must never do: time anything itself beyond the per-token split of generative
//! iterations (the measurement loop owns the clock), or print to stdout (the cell
//! protocol owns stdout).

mod bert;
mod bert_train;
pub mod config;
mod decoder;
mod encoder;
pub mod export;
mod fused;
pub mod init;
mod layout;
mod llama_train;
mod qdecoder;
mod quantized;
mod seq2seq;
mod training;
mod vision;
mod vit_train;
pub mod weights;

use std::time::{Duration, Instant};

use candle_core::{DType, Device, Tensor};
use shared::catalog::{Family, Mode, ModelSpec, Precision};
use shared::result::OutputCheck;

/// Engine name as recorded in results.
pub const ENGINE: &str = "candle";
/// candle's version linked into this build (kept in step with Cargo.toml), then the
/// revision of accelbench's own kernels (the `kernels` crate, which the CPU f32 encoders
/// and the CPU 4-bit decoders run on; `.2` added the q4_0/q4_1 products). Bump the revision whenever a kernel changes what it computes or how fast, so
/// that `compare` and `regressions` name it among what changed.
pub const ENGINE_VERSION: &str = "0.11+kernels.2";
/// Tokens generated after the first one in every iteration of a generative family.
pub const DECODE_STEPS: u32 = 16;

/// Everything needed to build a workload.
#[derive(Debug, Clone)]
pub struct WorkloadSpec {
    pub model: &'static ModelSpec,
    pub batch: usize,
    pub seq_len: usize,
    pub precision: Precision,
    pub mode: Mode,
    pub weights: weights::Weights,
}

/// One iteration's internal split for generative families, and its own time when the
/// workload timed itself.
#[derive(Debug, Clone, Default)]
pub struct Iteration {
    /// Prefill plus the first token.
    pub first_token: Option<Duration>,
    /// Each following decode step.
    pub token_steps: Vec<Duration>,
    /// The iteration as the work itself was timed, when the caller's clock would also
    /// count something else: an external runner times around its work and the device's
    /// synchronisation, not the pipe to it. `None`: the caller's clock is the time.
    pub own_time: Option<Duration>,
}

/// A ready-to-run model with its inputs. `iterate` returns only after the device has
/// finished the work (synchronised), so the caller's clock covers all of it.
pub trait Workload {
    fn iterate(&mut self) -> anyhow::Result<Iteration>;
    /// The last iteration's output, for the output check.
    fn output(&self) -> Option<&Tensor>;
    /// Prompt tokens per item and decode steps, for generative families.
    fn generation_shape(&self) -> Option<(u32, u32)> {
        None
    }
}

/// Why a workload could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The combination cannot run in this engine; decided before any work.
    #[error("{0}")]
    Unsupported(String),
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

impl From<candle_core::Error> for BuildError {
    fn from(e: candle_core::Error) -> Self {
        BuildError::Failed(e.into())
    }
}

/// Decides, before any work, whether this engine can run the spec; the reason if not.
pub fn check_supported(spec: &WorkloadSpec, device: &Device) -> Result<(), BuildError> {
    let model = spec.model;
    if !model.supported_precisions().contains(&spec.precision) {
        return Err(BuildError::Unsupported(format!(
            "{} ({}) has no {} variant in candle-transformers",
            model.name, model.family, spec.precision
        )));
    }
    if spec.mode == Mode::Training {
        if let Some(why) = training_gap(model.family) {
            return Err(BuildError::Unsupported(format!("training {} ({}): {why}", model.name, model.family)));
        }
        if spec.precision != Precision::Fp32 {
            return Err(BuildError::Unsupported(
                "training runs in fp32 only in the candle engine (no mixed-precision optimizer)".into(),
            ));
        }
    }
    if let Some(gap) = kernel_gap(model.family, spec.precision, device) {
        return Err(BuildError::Unsupported(gap.into()));
    }
    if is_quantized(spec.precision) && spec.batch > 1 && !device.is_cpu() {
        // Off the CPU the quantized decoders are candle-transformers', which slice the
        // last position without making it contiguous; the quantized matmul refuses that
        // for batch > 1. (Our forward, on the CPU, runs any batch.)
        return Err(BuildError::Unsupported(
            "candle-transformers' quantized decoders run batch 1 only off the CPU (non-contiguous last-token slice)"
                .into(),
        ));
    }
    if matches!(spec.weights, weights::Weights::Gguf { .. }) && !is_quantized(spec.precision) {
        return Err(BuildError::Unsupported("a .gguf file runs at a quantized precision (q8_0, q4_0, q4_1)".into()));
    }
    if let Some(theirs) = spec.weights.config_json()? {
        config::check_same_shape(&theirs, &config::hf_config(model))
            .map_err(|why| BuildError::Unsupported(format!("the weights' config.json is not {}: {why}", model.name)))?;
    }
    Ok(())
}

/// What candle lacks for a family at a precision, found by running every family at
/// every precision on this engine (see docs/PERFORMANCE.md).
fn kernel_gap(family: Family, precision: Precision, device: &Device) -> Option<&'static str> {
    match (family, precision) {
        (Family::Whisper, Precision::Fp16 | Precision::Bf16) => Some(
            "candle-transformers' whisper adds f32 sinusoidal positions to the audio stem, so it runs in fp32 only",
        ),
        (Family::Vit | Family::Clip, Precision::Bf16) if device.is_cpu() => {
            Some("candle's cpu conv2d has no bf16 kernel (the patch embedding of vit and clip)")
        }
        _ => None,
    }
}

/// Builds the workload of `spec` on `device`.
pub fn build(spec: &WorkloadSpec, device: &Device) -> Result<Box<dyn Workload>, BuildError> {
    check_supported(spec, device)?;
    if spec.mode == Mode::Training {
        return training::build(spec, device);
    }
    if is_quantized(spec.precision) {
        return quantized::build(spec, device);
    }
    match spec.model.family {
        Family::Bert => encoder::build(spec, device),
        Family::T5 => seq2seq::build_t5(spec, device),
        Family::Whisper => seq2seq::build_whisper(spec, device),
        Family::Llama | Family::Qwen2 => decoder::build(spec, device),
        Family::Vit => vision::build_vit(spec, device),
        Family::Clip => vision::build_clip(spec, device),
    }
}

pub use decoder::float_greedy_decode;
pub use quantized::{greedy_decode, random_gguf_of};

/// Families whose iterations generate tokens: prefill, then [`DECODE_STEPS`] decode steps.
pub fn generates(f: Family) -> bool {
    matches!(f, Family::Llama | Family::Qwen2 | Family::T5 | Family::Whisper)
}

/// Families with a training mode in this engine.
pub fn trains(f: Family) -> bool {
    training_gap(f).is_none()
}

/// Why a family does not train in this engine; `None` when it does.
fn training_gap(f: Family) -> Option<&'static str> {
    match f {
        Family::Bert | Family::Vit | Family::Llama | Family::Qwen2 => None,
        Family::T5 | Family::Whisper | Family::Clip => Some("not implemented in this engine"),
    }
}

pub fn is_quantized(p: Precision) -> bool {
    p.is_quantized()
}

/// The candle dtype of a float precision.
pub fn dtype(p: Precision) -> DType {
    match p {
        Precision::Fp16 => DType::F16,
        Precision::Bf16 => DType::BF16,
        _ => DType::F32,
    }
}

/// Output check over a tensor: every value finite, plus mean and L2 norm.
pub fn output_check(t: &Tensor) -> anyhow::Result<OutputCheck> {
    let values: Vec<f32> = t.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?;
    let finite: Vec<f64> = values.iter().filter(|v| v.is_finite()).map(|&v| f64::from(v)).collect();
    let n = finite.len().max(1) as f64;
    Ok(OutputCheck {
        all_finite: finite.len() == values.len(),
        n_values: values.len() as u64,
        mean: finite.iter().sum::<f64>() / n,
        l2_norm: finite.iter().map(|v| v * v).sum::<f64>().sqrt(),
    })
}

/// Runs `f` and waits for the device before returning its elapsed time.
fn timed<T>(device: &Device, f: impl FnOnce() -> candle_core::Result<T>) -> anyhow::Result<(T, Duration)> {
    let start = Instant::now();
    let out = f()?;
    device.synchronize()?;
    Ok((out, start.elapsed()))
}

/// The decode phase of a generative iteration, the same for every family:
/// [`DECODE_STEPS`] steps, each timed until the device is idle. `step` picks the next
/// token greedily from the previous step's logits (the prefill's, first), runs the model
/// on it and returns the new logits; the last logits are returned with the step times.
/// Time to first token is therefore the prefill up to its logits, in every family.
fn decode_phase(
    device: &Device,
    prefill_logits: Tensor,
    mut step: impl FnMut(&Tensor) -> candle_core::Result<Tensor>,
) -> anyhow::Result<(Vec<Duration>, Tensor)> {
    let mut logits = prefill_logits;
    let mut times = Vec::with_capacity(DECODE_STEPS as usize);
    for _ in 0..DECODE_STEPS {
        let (next, d) = timed(device, || step(&logits))?;
        logits = next;
        times.push(d);
    }
    Ok((times, logits))
}

/// Seeded token ids of shape (batch, len) below `vocab`.
fn token_ids(
    seed: u64,
    name: &str,
    batch: usize,
    len: usize,
    vocab: usize,
    device: &Device,
) -> candle_core::Result<Tensor> {
    let ids = init::seeded_ids(seed, name, batch * len, vocab as u32);
    Tensor::from_vec(ids, (batch, len), device)
}

/// Seeded standard-normal input of `shape` in `dtype` (pixels, mel frames).
fn normal_input(seed: u64, name: &str, shape: &[usize], dtype: DType, device: &Device) -> candle_core::Result<Tensor> {
    let n = shape.iter().product();
    Tensor::from_vec(init::seeded_normal(seed, name, n), shape, device)?.to_dtype(dtype)
}

/// Greedy next token of each row of `logits` (batch, vocab) as a (batch, 1) id tensor.
fn greedy_next(logits: &Tensor) -> candle_core::Result<Tensor> {
    logits.to_dtype(DType::F32)?.argmax_keepdim(candle_core::D::Minus1)?.to_dtype(DType::U32)
}
