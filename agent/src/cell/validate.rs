//! The validation pass of an external engine's cell: before anything is timed, the
//! runner runs its model once on candle's seeded inputs and the outputs are compared
//! with candle's own in fp32 on the CPU, on the same weights. The comparison is over
//! every value: the largest absolute difference, that over the reference's largest
//! magnitude, and the cosine similarity. A result that fails is still measured and
//! stored, with `validation = failed` and the figures, so reports can show it.
//!
//! Tolerances by the cell's precision: fp32 must agree to 1e-3 of the reference's
//! scale (cosine ≥ 0.9999); bf16 and fp16, whose 8- and 11-bit mantissas lose about
//! 1e-2 per value, to 5e-2 (cosine ≥ 0.99). Non-finite values fail at any precision.

use std::collections::HashMap;
use std::path::PathBuf;

use candle_core::{DType, Device, Tensor};
use shared::catalog::{Mode, ModelSpec, Precision};
use shared::result::{Validation, ValidationStatus};

use super::CellRequest;
use crate::engine::{self, export, BuildError, WorkloadSpec};
use crate::runners::RunnerSession;

/// What the outputs are compared with.
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
    let spec = WorkloadSpec {
        model,
        batch: c.batch as usize,
        seq_len: c.seq_len as usize,
        precision: Precision::Fp32,
        mode: Mode::Inference,
        weights: req.weights.clone(),
    };
    let skip = |e: BuildError| match e {
        BuildError::Unsupported(why) => Outcome::Skipped(format!("no reference: {why}")),
        BuildError::Failed(e) => Outcome::Skipped(format!("no reference: {e:#}")),
    };
    let inputs = export::reference_inputs(&spec).map_err(skip)?;
    let reference = reference_output(&spec).map_err(skip)?;
    let files = Scratch::new();
    candle_core::safetensors::save(&inputs, &files.inputs)
        .map_err(|e| Outcome::Skipped(format!("writing the inputs: {e}")))?;
    session
        .outputs(&files.inputs, &files.outputs)
        .map_err(|e| Outcome::Failed(format!("the engine's outputs: {e}")))?;
    let theirs = candle_core::safetensors::load(&files.outputs, &Device::Cpu)
        .map_err(|e| Outcome::Failed(format!("reading the engine's outputs: {e}")))?;
    let output = pick_output(theirs)?;
    Ok(judge(&output, &reference, c.precision))
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

/// Largest relative error and least cosine similarity accepted at `precision`.
fn tolerance(precision: Precision) -> (f64, f64) {
    match precision {
        Precision::Fp32 => (1e-3, 0.9999),
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

        let nan = Tensor::new(&[[1.0f32, f32::NAN, 4.0], [0.5, 0.0, -4.0]], &Device::Cpu).expect("tensor");
        let v = judge(&nan, &reference, Precision::Bf16);
        assert_eq!((v.status, v.reason.as_deref()), (ValidationStatus::Failed, Some("value 1 of the output is NaN")));
        let flipped = (&reference * -1.0).expect("neg");
        assert_eq!(judge(&flipped, &reference, Precision::Fp16).status, ValidationStatus::Failed);
        let v = judge(&reference.reshape((3, 2)).expect("reshape"), &reference, Precision::Fp32);
        assert!(v.reason.as_deref().is_some_and(|r| r.starts_with("output shape [3, 2]")), "{v:?}");
    }
}
