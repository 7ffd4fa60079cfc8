//! Encoder-only inference (BERT): one forward pass over (batch, seq_len) token ids.

use candle_core::{Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::Config;

use super::bert::Bert as BertModel;

use super::{config, dtype, timed, token_ids, BuildError, Iteration, Workload, WorkloadSpec};

struct Bert {
    model: BertModel,
    input_ids: Tensor,
    token_type_ids: Tensor,
    device: Device,
    output: Option<Tensor>,
}

pub fn build(spec: &WorkloadSpec, device: &Device) -> Result<Box<dyn Workload>, BuildError> {
    let (model, cfg) = load(spec, device)?;
    let seed = spec.weights.input_seed();
    let input_ids = token_ids(seed, "input_ids", spec.batch, spec.seq_len, cfg.vocab_size, device)?;
    let token_type_ids = input_ids.zeros_like()?;
    Ok(Box::new(Bert { model, input_ids, token_type_ids, device: device.clone(), output: None }))
}

/// The BERT of `spec` with its config, from the catalog or from real weights.
fn load(spec: &WorkloadSpec, device: &Device) -> Result<(BertModel, Config), BuildError> {
    let cfg: Config = config::candle_config(spec)?;
    if spec.seq_len > cfg.max_position_embeddings {
        return Err(BuildError::Unsupported(format!(
            "seq_len {} exceeds max_position_embeddings {}",
            spec.seq_len, cfg.max_position_embeddings
        )));
    }
    let vb = bert_root(spec.weights.var_builder(dtype(spec.precision), device)?);
    let model = BertModel::load(vb, &cfg)?;
    Ok((model, cfg))
}

/// Where a BERT's tensors start: checkpoints of BertForMaskedLM nest the encoder under
/// `bert.`, bare BertModel files do not. Seeded weights answer every name, so they take
/// the nested layout (and their seeds are those of the `bert.` names; the export for
/// runners goes through here too, so that it writes the very tensors candle runs).
pub(super) fn bert_root(vb: VarBuilder<'static>) -> VarBuilder<'static> {
    if vb.contains_tensor("bert.embeddings.word_embeddings.weight") {
        vb.pp("bert")
    } else {
        vb
    }
}

impl Workload for Bert {
    fn iterate(&mut self) -> anyhow::Result<Iteration> {
        let (out, _) = timed(&self.device, || self.model.forward(&self.input_ids, &self.token_type_ids))?;
        self.output = Some(out);
        Ok(Iteration::default())
    }

    fn output(&self) -> Option<&Tensor> {
        self.output.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::weights::Weights;
    use shared::catalog::{self, Mode, Precision};

    /// candle, through our weights and config path, against Hugging Face transformers
    /// (PyTorch) on the same files: `agent/tests/fixtures/tiny-bert`, made by
    /// `ops/fixtures/make_tiny_bert.py`. Tolerance: 1e-4 absolute on values of order 1,
    /// room for f32 summation-order differences between the two GEMMs, far below any
    /// real bug (a wrong layer or transposed weight changes values by O(1)).
    #[test]
    fn matches_transformers() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny-bert");
        let weights = Weights::resolve(dir.to_str().expect("utf-8 path"), None).expect("fixture resolves");
        let spec = WorkloadSpec {
            model: catalog::lookup("bert-tiny").expect("bert-tiny in catalog"),
            batch: 2,
            seq_len: 8,
            precision: Precision::Fp32,
            mode: Mode::Inference,
            weights,
        };
        let (model, _) = load(&spec, &Device::Cpu).expect("loads");
        let expected: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).expect("expected.json"))
                .expect("json");
        let ids: Vec<Vec<u32>> = serde_json::from_value(expected["input_ids"].clone()).expect("ids");
        let want: Vec<Vec<Vec<f32>>> = serde_json::from_value(expected["last_hidden_state"].clone()).expect("hidden");
        let input = Tensor::new(ids, &Device::Cpu).expect("tensor");
        let got: Vec<Vec<Vec<f32>>> =
            model.forward(&input, &input.zeros_like().expect("zeros")).expect("forward").to_vec3().expect("vec3");
        let mut max_diff = 0f32;
        for (g, w) in got.iter().flatten().flatten().zip(want.iter().flatten().flatten()) {
            max_diff = max_diff.max((g - w).abs());
        }
        assert_eq!(got.len() * got[0].len() * got[0][0].len(), 2 * 8 * 32);
        assert!(max_diff < 1e-4, "candle differs from transformers by {max_diff}");
    }

    /// candle-transformers' own mask turns every half-precision output into NaN; ours
    /// must not (the output check is what caught it).
    #[test]
    fn half_precisions_give_finite_outputs() {
        for precision in [Precision::Fp32, Precision::Fp16, Precision::Bf16] {
            let spec = WorkloadSpec {
                model: catalog::lookup("bert-tiny").expect("bert-tiny"),
                batch: 2,
                seq_len: 16,
                precision,
                mode: Mode::Inference,
                weights: Weights::Random { seed: 3 },
            };
            let mut w = build(&spec, &Device::Cpu).expect("builds");
            w.iterate().expect("runs");
            let check = crate::engine::output_check(w.output().expect("output")).expect("check");
            assert!(check.all_finite, "{precision}: non-finite output");
            assert!(check.l2_norm > 0.0, "{precision}: all zeros");
        }
    }
}
