//! The validation pass of an external engine's cell: before anything is timed, the
//! runner runs its model once on candle's seeded inputs and the outputs are compared
//! with candle's own in fp32 on the CPU, on the same weights. The comparison is over
//! every value: the largest absolute difference, that over the reference's largest
//! magnitude, and the cosine similarity. A result that fails is still measured and
//! stored, with `validation = failed` and the figures, so reports can show it.
//!
//! Tolerances by the cell's precision: fp32 must agree to 1e-3 of the reference's
//! scale (cosine ≥ 0.9999); bf16 and fp16, whose 8- and 11-bit mantissas lose about
//! 1e-2 per value, to 5e-2 (cosine ≥ 0.99); the quantized precisions to 1e-1 (cosine ≥
//! 0.99, see [`tolerance`]). Non-finite values fail at any precision.

use std::collections::HashMap;
use std::path::PathBuf;

use candle_core::{DType, Device, Tensor};
use shared::catalog::{Mode, ModelSpec, Precision};
use shared::result::{Validation, ValidationStatus};

use super::CellRequest;
use crate::engine::{self, export, BuildError, WorkloadSpec};
use crate::runners::RunnerSession;

/// What the outputs are compared with: candle fp32 on the CPU (decoders at a quantized
/// precision: candle's quantized kernels on the CPU, on the same GGUF).
pub const REFERENCE: &str = "candle fp32 cpu";

/// Runs the validation pass of `req` through `session`.
pub fn validate(req: &CellRequest, model: &'static ModelSpec, session: &mut RunnerSession) -> Validation {
    match compare_outputs(req, model, session) {
        Ok(v) => v,
        Err(Outcome::Skipped(why)) => verdict(ValidationStatus::Skipped, Some(why)),
        Err(Outcome::Failed(why)) => verdict(ValidationStatus::Failed, Some(why)),
    }
}

enum Outcome {
    Skipped(String),
    Failed(String),
}

fn verdict(status: ValidationStatus, reason: Option<String>) -> Validation {
    Validation { status, reference: REFERENCE.into(), max_abs_error: None, max_rel_error: None, cosine: None, reason }
}

fn compare_outputs(
    req: &CellRequest,
    model: &'static ModelSpec,
    session: &mut RunnerSession,
) -> Result<Validation, Outcome> {
    let c = &req.coordinates;
    if c.mode != Mode::Inference {
        return Err(Outcome::Skipped("only inference cells are validated".into()));
    }
    if engine::generates(model.family) {
        return compare_tokens(req, model, session);
    }
    let spec = reference_spec(req, model, c.batch as usize, Precision::Fp32);
    let inputs = export::reference_inputs(&spec).map_err(no_reference)?;
    let reference = reference_output(&spec).map_err(no_reference)?;
    let output = pick_output(engine_outputs(session, &inputs)?)?;
    Ok(judge(&output, &reference, c.precision))
}

/// The workload candle runs as the reference of `req`, at `batch` and `precision`.
fn reference_spec(req: &CellRequest, model: &'static ModelSpec, batch: usize, precision: Precision) -> WorkloadSpec {
    WorkloadSpec {
        model,
        batch,
        seq_len: req.coordinates.seq_len as usize,
        precision,
        mode: Mode::Inference,
        weights: req.weights.clone(),
    }
}

fn no_reference(e: BuildError) -> Outcome {
    match e {
        BuildError::Unsupported(why) => Outcome::Skipped(format!("no reference: {why}")),
        BuildError::Failed(e) => Outcome::Skipped(format!("no reference: {e:#}")),
    }
}

/// The runner's `outputs` on `inputs`, through a pair of scratch safetensors files.
fn engine_outputs(
    session: &mut RunnerSession,
    inputs: &HashMap<String, Tensor>,
) -> Result<HashMap<String, Tensor>, Outcome> {
    let files = Scratch::new();
    candle_core::safetensors::save(inputs, &files.inputs)
        .map_err(|e| Outcome::Skipped(format!("writing the inputs: {e}")))?;
    session
        .outputs(&files.inputs, &files.outputs)
        .map_err(|e| Outcome::Failed(format!("the engine's outputs: {e}")))?;
    candle_core::safetensors::load(&files.outputs, &Device::Cpu)
        .map_err(|e| Outcome::Failed(format!("reading the engine's outputs: {e}")))
}

/// Greedy tokens a decoder picks after candle's first prompt, at least this many compared.
pub const GREEDY_TOKENS: usize = 8;

/// A decoder against candle on the same weights (at a quantized precision, candle's
/// quantized kernels on the same GGUF; in float, candle fp32): the logits after the
/// prompt, at the cell precision's tolerance, and the first greedy tokens. Tokens
/// must match exactly on real weights; on seeded weights the logits are nearly flat
/// (near-ties flip with any rounding, docs/PERFORMANCE.md "Outputs against llama.cpp"),
/// so there their agreement is reported, not required.
fn compare_tokens(
    req: &CellRequest,
    model: &'static ModelSpec,
    session: &mut RunnerSession,
) -> Result<Validation, Outcome> {
    let c = &req.coordinates;
    // Quantized: candle's quantized kernels on the same GGUF; float: candle in fp32.
    let reference_precision = if c.precision.is_quantized() { c.precision } else { Precision::Fp32 };
    let spec = reference_spec(req, model, 1, reference_precision);
    let prompt = export::prompt_ids(&spec).map_err(no_reference)?;
    let decoded = if c.precision.is_quantized() {
        engine::greedy_decode(&spec, &prompt, GREEDY_TOKENS, false)
    } else {
        engine::float_greedy_decode(&spec, &prompt, GREEDY_TOKENS)
    };
    let (logits, reference) = decoded.map_err(no_reference)?;
    let ids: Vec<i64> = prompt.iter().map(|&t| i64::from(t)).collect();
    let inputs = Tensor::from_vec(ids, (1, prompt.len()), &Device::Cpu)
        .map(|t| HashMap::from([("input_ids".to_string(), t)]))
        .map_err(|e| Outcome::Skipped(format!("the prompt: {e}")))?;
    let mut written = engine_outputs(session, &inputs)?;
    let theirs = written.remove("logits").ok_or_else(|| Outcome::Failed("the engine wrote no `logits`".into()))?;
    let theirs = theirs
        .to_dtype(DType::F32)
        .and_then(|t| t.flatten_all())
        .map_err(|e| Outcome::Failed(format!("the engine's logits: {e}")))?;
    let ours = Tensor::new(logits.as_slice(), &Device::Cpu).map_err(|e| Outcome::Skipped(format!("logits: {e}")))?;
    let tokens = written
        .remove("tokens")
        .and_then(|t| t.to_dtype(DType::I64).ok())
        .and_then(|t| t.flatten_all().ok())
        .and_then(|t| t.to_vec1::<i64>().ok())
        .ok_or_else(|| Outcome::Failed("the engine wrote no `tokens`".into()))?;
    let mut verdict = judge(&theirs, &ours, c.precision);
    verdict.reference = format!("candle {reference_precision} cpu");
    let by_tokens = judge_tokens(&tokens, &reference);
    let seeded = matches!(req.weights, crate::engine::weights::Weights::Random { .. });
    match (by_tokens.reason, verdict.status) {
        (Some(why), ValidationStatus::Passed) if !seeded => {
            verdict.status = ValidationStatus::Failed;
            verdict.reason = Some(why);
        }
        (Some(why), _) if seeded => {
            let note = format!("{why} (not required on seeded weights, whose logits are nearly flat)");
            verdict.reason = Some(verdict.reason.map_or(note.clone(), |r| format!("{r}; {note}")));
        }
        _ => {}
    }
    Ok(verdict)
}

/// Exact match of the first [`GREEDY_TOKENS`] greedy tokens.
pub fn judge_tokens(tokens: &[i64], reference: &[u32]) -> Validation {
    let n = reference.len().min(GREEDY_TOKENS);
    let mismatch = (0..n).find(|&i| tokens.get(i).copied() != Some(i64::from(reference[i])));
    let reason = mismatch.map(|i| match tokens.get(i) {
        Some(t) => format!("greedy token {i}: the engine picked {t}, the reference {}", reference[i]),
        None => format!("the engine gave {} tokens, {n} expected", tokens.len()),
    });
    let status = if reason.is_some() { ValidationStatus::Failed } else { ValidationStatus::Passed };
    verdict(status, reason)
}

/// candle's output of `spec` (fp32, CPU) on its seeded inputs.
fn reference_output(spec: &WorkloadSpec) -> Result<Tensor, BuildError> {
    let mut workload = engine::build(spec, &Device::Cpu)?;
    workload.iterate()?;
    let out = workload.output().ok_or_else(|| BuildError::Unsupported("candle gives no output here".into()))?;
    Ok(out.to_dtype(DType::F32)?)
}

/// The one output a runner writes (`hidden_states` or `logits`).
fn pick_output(mut written: HashMap<String, Tensor>) -> Result<Tensor, Outcome> {
    for name in ["hidden_states", "logits"] {
        if let Some(t) = written.remove(name) {
            return t.to_dtype(DType::F32).map_err(|e| Outcome::Failed(format!("the engine's {name}: {e}")));
        }
    }
    let names: Vec<&String> = written.keys().collect();
    Err(Outcome::Failed(format!("the engine wrote {names:?}, not hidden_states or logits")))
}

/// The verdict on `output` against `reference` at the cell's precision.
pub fn judge(output: &Tensor, reference: &Tensor, precision: Precision) -> Validation {
    if output.dims() != reference.dims() {
        let why = format!("output shape {:?}, reference {:?}", output.dims(), reference.dims());
        return verdict(ValidationStatus::Failed, Some(why));
    }
    let values = |t: &Tensor| t.flatten_all().and_then(|t| t.to_vec1::<f32>());
    let (Ok(a), Ok(b)) = (values(output), values(reference)) else {
        return verdict(ValidationStatus::Failed, Some("outputs could not be read as f32".into()));
    };
    if let Some(i) = a.iter().position(|v| !v.is_finite()) {
        return verdict(ValidationStatus::Failed, Some(format!("value {i} of the output is {}", a[i])));
    }
    let (mut max_abs, mut scale, mut dot, mut na, mut nb) = (0f64, 0f64, 0f64, 0f64, 0f64);
    for (&x, &y) in a.iter().zip(&b) {
        let (x, y) = (f64::from(x), f64::from(y));
        max_abs = max_abs.max((x - y).abs());
        scale = scale.max(y.abs());
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    let rel = if scale > 0.0 { max_abs / scale } else { max_abs };
    let cosine = if na > 0.0 && nb > 0.0 { dot / (na.sqrt() * nb.sqrt()) } else { f64::from(u8::from(na == nb)) };
    let (rel_limit, cosine_floor) = tolerance(precision);
    let passed = rel <= rel_limit && cosine >= cosine_floor;
    Validation {
        status: if passed { ValidationStatus::Passed } else { ValidationStatus::Failed },
        reference: REFERENCE.into(),
        max_abs_error: Some(max_abs),
        max_rel_error: Some(rel),
        cosine: Some(cosine),
        reason: (!passed).then(|| {
            format!("relative error {rel:.2e} (limit {rel_limit:.0e}), cosine {cosine:.6} (floor {cosine_floor})")
        }),
    }
}

/// Largest relative error and least cosine similarity accepted at `precision`. The
/// quantized precisions get twice the half-precision margin: candle and llama.cpp each
/// quantize activations to 8 bits per block, which on TinyLlama's 22 layers puts each
/// about 4 % of the largest logit from the f32 model (docs/PERFORMANCE.md), so up to
/// about 8 % from each other.
fn tolerance(precision: Precision) -> (f64, f64) {
    match precision {
        Precision::Fp32 => (1e-3, 0.9999),
        p if p.is_quantized() => (1e-1, 0.99),
        _ => (5e-2, 0.99),
    }
}

/// The two files of one pass, removed when it ends.
struct Scratch {
    inputs: PathBuf,
    outputs: PathBuf,
}

impl Scratch {
    fn new() -> Scratch {
        let base = std::env::temp_dir().join(format!("accelbench-validation-{}", std::process::id()));
        Scratch {
            inputs: base.with_extension("inputs.safetensors"),
            outputs: base.with_extension("outputs.safetensors"),
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.inputs);
        let _ = std::fs::remove_file(&self.outputs);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_pass_within_their_precisions_tolerance_and_fail_beyond_it_or_on_nan() {
        let reference = Tensor::new(&[[1.0f32, -2.0, 4.0], [0.5, 0.0, -4.0]], &Device::Cpu).expect("tensor");
        let shifted = |by: f32| (&reference + f64::from(by)).expect("add");
        let v = judge(&shifted(1e-4), &reference, Precision::Fp32);
        assert_eq!(v.status, ValidationStatus::Passed, "{v:?}");
        assert!((v.max_abs_error.expect("abs") - 1e-4).abs() < 1e-6 && v.max_rel_error.expect("rel") < 1e-4, "{v:?}");
        let v = judge(&shifted(0.05), &reference, Precision::Fp32);
        assert_eq!(v.status, ValidationStatus::Failed, "{v:?}");
        assert!(v.reason.as_deref().is_some_and(|r| r.contains("limit 1e-3")), "{v:?}");
        assert_eq!(judge(&shifted(0.05), &reference, Precision::Bf16).status, ValidationStatus::Passed);
        assert_eq!(judge(&shifted(0.3), &reference, Precision::Bf16).status, ValidationStatus::Failed);
        assert_eq!(judge(&shifted(0.3), &reference, Precision::Q4_0).status, ValidationStatus::Passed);

        let nan = Tensor::new(&[[1.0f32, f32::NAN, 4.0], [0.5, 0.0, -4.0]], &Device::Cpu).expect("tensor");
        let v = judge(&nan, &reference, Precision::Bf16);
        assert_eq!((v.status, v.reason.as_deref()), (ValidationStatus::Failed, Some("value 1 of the output is NaN")));
        let flipped = (&reference * -1.0).expect("neg");
        assert_eq!(judge(&flipped, &reference, Precision::Fp16).status, ValidationStatus::Failed);
        let v = judge(&reference.reshape((3, 2)).expect("reshape"), &reference, Precision::Fp32);
        assert!(v.reason.as_deref().is_some_and(|r| r.starts_with("output shape [3, 2]")), "{v:?}");
    }

    #[test]
    fn greedy_tokens_must_match_exactly() {
        let reference: Vec<u32> = (10..20).collect();
        let same: Vec<i64> = (10..20).collect();
        assert_eq!(judge_tokens(&same, &reference).status, ValidationStatus::Passed);
        let mut off = same.clone();
        off[3] = 99;
        let v = judge_tokens(&off, &reference);
        assert_eq!(v.reason.as_deref(), Some("greedy token 3: the engine picked 99, the reference 13"));
        let v = judge_tokens(&same[..2], &reference);
        assert_eq!(v.reason.as_deref(), Some("the engine gave 2 tokens, 8 expected"));
    }
}
