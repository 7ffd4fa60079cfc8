//! Decoder-only inference (LLaMA, Qwen2) in float precisions: a prefill of `seq_len`
//! prompt tokens, then [`DECODE_STEPS`](super::DECODE_STEPS) greedy steps with the KV
//! cache. The KV cache is emptied at the start of every iteration.

use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use candle_transformers::models::{llama, qwen2};
use shared::catalog::Family;

use super::{
    config, decode_phase, dtype, greedy_next, token_ids, BuildError, Iteration, Workload, WorkloadSpec, DECODE_STEPS,
};

/// A causal LM that maps (batch, n) ids at `offset` to last-position logits.
pub(super) trait CausalLm {
    fn reset(&mut self);
    fn forward(&mut self, ids: &Tensor, offset: usize) -> candle_core::Result<Tensor>;
}

struct Llama {
    model: llama::Llama,
    fresh: llama::Cache,
    cache: llama::Cache,
}

impl CausalLm for Llama {
    fn reset(&mut self) {
        self.cache = self.fresh.clone();
    }

    fn forward(&mut self, ids: &Tensor, offset: usize) -> candle_core::Result<Tensor> {
        self.model.forward(ids, offset, &mut self.cache)
    }
}

struct Qwen2(qwen2::ModelForCausalLM);

impl CausalLm for Qwen2 {
    fn reset(&mut self) {
        self.0.clear_kv_cache();
    }

    fn forward(&mut self, ids: &Tensor, offset: usize) -> candle_core::Result<Tensor> {
        self.0.forward(ids, offset)?.squeeze(1)
    }
}

/// Prefill + greedy decode over any [`CausalLm`]; shared with the quantized builds.
pub(super) struct Generate {
    pub lm: Box<dyn CausalLm>,
    pub prompt: Tensor,
    pub device: Device,
    pub output: Option<Tensor>,
}

pub fn build(spec: &WorkloadSpec, device: &Device) -> Result<Box<dyn Workload>, BuildError> {
    let (lm, vocab, max_pos) = causal_lm(spec, device)?;
    Generate::new(spec, lm, vocab, max_pos, device)
}

/// The float model of `spec` on `device`, its vocabulary and longest sequence.
fn causal_lm(spec: &WorkloadSpec, device: &Device) -> Result<(Box<dyn CausalLm>, usize, usize), BuildError> {
    let dt = dtype(spec.precision);
    let vb = spec.weights.var_builder(dt, device)?;
    Ok(match spec.model.family {
        Family::Llama => {
            let cfg: llama::LlamaConfig = config::candle_config(spec)?;
            let cfg = cfg.into_config(false);
            let fresh = llama::Cache::new(true, dt, &cfg, device)?;
            let model = llama::Llama::load(vb, &cfg)?;
            (Box::new(Llama { model, cache: fresh.clone(), fresh }), cfg.vocab_size, cfg.max_position_embeddings)
        }
        Family::Qwen2 => {
            let cfg: qwen2::Config = config::candle_config(spec)?;
            let model = qwen2::ModelForCausalLM::new(&cfg, vb)?;
            (Box::new(Qwen2(model)), cfg.vocab_size, cfg.max_position_embeddings)
        }
        other => return Err(BuildError::Unsupported(format!("{other} is not a decoder family"))),
    })
}

/// The logits after `prompt` and the `steps` tokens greedy decoding then picks, on the
/// CPU at the spec's float precision: the reference other engines' decoders are
/// checked against.
pub fn float_greedy_decode(
    spec: &WorkloadSpec,
    prompt: &[u32],
    steps: usize,
) -> Result<(Vec<f32>, Vec<u32>), BuildError> {
    let device = Device::Cpu;
    let (mut lm, _, _) = causal_lm(spec, &device)?;
    Ok(greedy(lm.as_mut(), prompt, steps, &device)?)
}

/// Greedy decoding of one prompt through any [`CausalLm`]: the logits after the prompt,
/// and each token picked, the first from those logits.
pub(super) fn greedy(
    lm: &mut dyn CausalLm,
    prompt: &[u32],
    steps: usize,
    device: &Device,
) -> candle_core::Result<(Vec<f32>, Vec<u32>)> {
    lm.reset();
    let ids = Tensor::new(prompt, device)?.unsqueeze(0)?;
    let last = |t: Tensor| t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>();
    let first = last(lm.forward(&ids, 0)?)?;
    let (mut logits, mut tokens) = (first.clone(), Vec::with_capacity(steps));
    for step in 0..steps {
        let next = logits.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map_or(0, |(i, _)| i as u32);
        tokens.push(next);
        if step + 1 < steps {
            let ids = Tensor::new(&[[next]], device)?;
            logits = last(lm.forward(&ids, prompt.len() + step)?)?;
        }
    }
    Ok((first, tokens))
}

impl Generate {
    pub fn new(
        spec: &WorkloadSpec,
        lm: Box<dyn CausalLm>,
        vocab: usize,
        max_positions: usize,
        device: &Device,
    ) -> Result<Box<dyn Workload>, BuildError> {
        let needed = spec.seq_len + DECODE_STEPS as usize + 1;
        if needed > max_positions {
            return Err(BuildError::Unsupported(format!(
                "seq_len {} + {DECODE_STEPS} decode steps exceeds max_position_embeddings {max_positions}",
                spec.seq_len
            )));
        }
        let prompt = token_ids(spec.weights.input_seed(), "input_ids", spec.batch, spec.seq_len, vocab, device)?;
        Ok(Box::new(Generate { lm, prompt, device: device.clone(), output: None }))
    }
}

impl Workload for Generate {
    fn iterate(&mut self) -> anyhow::Result<Iteration> {
        self.lm.reset();
        let prompt_len = self.prompt.dim(1)?;
        let start = Instant::now();
        let logits = self.lm.forward(&self.prompt, 0)?;
        self.device.synchronize()?;
        let first_token = start.elapsed();
        let lm = &mut self.lm;
        let mut position = prompt_len;
        let (token_steps, logits) = decode_phase(&self.device, logits, |prev| {
            let l = lm.forward(&greedy_next(prev)?, position)?;
            position += 1;
            Ok(l)
        })?;
        self.output = Some(logits.to_dtype(DType::F32)?);
        Ok(Iteration { first_token: Some(first_token), token_steps, own_time: None })
    }

    fn output(&self) -> Option<&Tensor> {
        self.output.as_ref()
    }

    fn generation_shape(&self) -> Option<(u32, u32)> {
        Some((self.prompt.dim(1).unwrap_or(0) as u32, DECODE_STEPS))
    }
}
