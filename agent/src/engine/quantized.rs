//! Quantized decoders (LLaMA, Qwen2) at q8_0 / q4_0 / q4_1 from GGUF files.
//!
//! Real weights come as a `.gguf` file. Random weights take the same road: the seeded
//! float weights are quantized into an in-memory GGUF with llama.cpp's tensor names and
//! metadata, which candle-transformers' `quantized_llama` / `quantized_qwen2` then load
//! exactly as they would load a file. One loading path, whichever the weights.

use std::io::Cursor;

use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
use candle_core::{Device, Shape, Tensor};
use candle_transformers::models::{quantized_llama, quantized_qwen2};
use shared::catalog::{Family, Precision};

use super::decoder::{CausalLm, Generate};
use super::init::SeededInit;
use super::qdecoder::{Kernel, QDecoder};
use super::weights::Weights;
use super::{config, BuildError, Workload, WorkloadSpec};

struct QLlama(quantized_llama::ModelWeights);

impl CausalLm for QLlama {
    fn reset(&mut self) {
        self.0.clear_kv_cache();
    }

    fn forward(&mut self, ids: &Tensor, offset: usize) -> candle_core::Result<Tensor> {
        self.0.forward(ids, offset)
    }
}

struct QQwen2(quantized_qwen2::ModelWeights);

impl CausalLm for QQwen2 {
    fn reset(&mut self) {
        self.0.clear_kv_cache();
    }

    fn forward(&mut self, ids: &Tensor, offset: usize) -> candle_core::Result<Tensor> {
        self.0.forward(ids, offset)
    }
}

pub fn build(spec: &WorkloadSpec, device: &Device) -> Result<Box<dyn Workload>, BuildError> {
    let (arch, content, mut reader) = open(spec)?;
    let lm: Box<dyn CausalLm> = match spec.model.family {
        // Our forward on the CPU (quantized weights on the kernels crate), candle's elsewhere.
        Family::Llama | Family::Qwen2 if device.is_cpu() => {
            Box::new(QDecoder::load(&content, &mut reader, &arch, device, Kernel::Quantized)?)
        }
        Family::Llama => Box::new(QLlama(quantized_llama::ModelWeights::from_gguf(content, &mut reader, device)?)),
        Family::Qwen2 => Box::new(QQwen2(quantized_qwen2::ModelWeights::from_gguf(content, &mut reader, device)?)),
        other => return Err(BuildError::Unsupported(format!("no quantized {other} in candle-transformers"))),
    };
    Generate::new(spec, lm, arch.vocab, arch.max_positions, device)
}

/// The logits after `prompt` and the `steps` tokens greedy decoding then picks, on the
/// CPU through the engine's own forward: for checking the engine's outputs against
/// another engine on the same file (the `vs_llamacpp` bench). `dequantized`: the same
/// model with every weight dequantized to f32, the reference that quantized engines
/// approximate.
pub fn greedy_decode(
    spec: &WorkloadSpec,
    prompt: &[u32],
    steps: usize,
    dequantized: bool,
) -> Result<(Vec<f32>, Vec<u32>), BuildError> {
    let (arch, content, mut reader) = open(spec)?;
    let device = Device::Cpu;
    let kernel = if dequantized { Kernel::Exact } else { Kernel::Quantized };
    let mut lm = QDecoder::load(&content, &mut reader, &arch, &device, kernel)?;
    Ok(super::decoder::greedy(&mut lm, prompt, steps, &device)?)
}

/// The spec's GGUF (its file, or the seeded random model), read and checked against
/// the catalog model and precision: the shape, the parsed header and a reader at it.
fn open(spec: &WorkloadSpec) -> Result<(config::DecoderShape, gguf_file::Content, Cursor<Vec<u8>>), BuildError> {
    let arch = config::DecoderShape::of(spec)?;
    let bytes = match &spec.weights {
        Weights::Gguf { path, .. } => {
            std::fs::read(path).map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?
        }
        Weights::Random { seed } => random_gguf(&arch, spec.precision, *seed)?,
        Weights::Dir { .. } => {
            return Err(BuildError::Unsupported(
                "quantized precisions load a .gguf file, not a safetensors directory".into(),
            ))
        }
        Weights::Named { source, .. } => return Err(BuildError::Unsupported(super::weights::not_found(source))),
    };
    let mut reader = Cursor::new(bytes);
    let content = gguf_file::Content::read(&mut reader).map_err(|e| anyhow::anyhow!("reading gguf: {e}"))?;
    check_gguf(&content, &arch, spec.precision).map_err(|why| {
        BuildError::Unsupported(format!("the .gguf file is not {} at {}: {why}", spec.model.name, spec.precision))
    })?;
    Ok((arch, content, reader))
}

/// A GGUF file brings its own architecture and quantization: it must be the catalog
/// model's, at the precision asked for, or the row would carry another model's numbers
/// under this model's name. Compares llama.cpp's metadata and the type of the first
/// attention weight.
fn check_gguf(content: &gguf_file::Content, arch: &config::DecoderShape, precision: Precision) -> Result<(), String> {
    let mut problems = Vec::new();
    let expected = arch.gguf_metadata();
    for (key, want) in &expected {
        let got = content.metadata.get(key);
        let same = match (want, got) {
            (gguf_file::Value::String(w), Some(g)) => g.to_string().is_ok_and(|g| g == w),
            (gguf_file::Value::U32(w), Some(g)) => g.to_u32().is_ok_and(|g| g == *w),
            // Floats (rope base, norm epsilon) do not change what is computed per token.
            (gguf_file::Value::F32(_), _) => true,
            _ => false,
        };
        if !same {
            problems.push(format!("{key} is {}, expected {}", show(got), show(Some(want))));
        }
    }
    let want = ggml_dtype(precision);
    match content.tensor_infos.get("blk.0.attn_q.weight").map(|t| t.ggml_dtype) {
        Some(got) if got == want => {}
        got => problems.push(format!("blk.0.attn_q.weight is {got:?}, expected {want:?}")),
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

fn show(v: Option<&gguf_file::Value>) -> String {
    match v {
        None => "missing".into(),
        Some(gguf_file::Value::String(s)) => format!("`{s}`"),
        Some(gguf_file::Value::U32(n)) => n.to_string(),
        Some(other) => format!("{other:?}"),
    }
}

fn ggml_dtype(p: Precision) -> GgmlDType {
    match p {
        Precision::Q4_0 => GgmlDType::Q4_0,
        Precision::Q4_1 => GgmlDType::Q4_1,
        _ => GgmlDType::Q8_0,
    }
}

/// The seeded random model of `spec` (a quantized decoder) as a GGUF file image, the
/// one the engine itself would load: for running the very same weights in llama.cpp
/// (the `vs_llamacpp` bench).
pub fn random_gguf_of(spec: &WorkloadSpec) -> Result<Vec<u8>, BuildError> {
    let arch = config::DecoderShape::of(spec)?;
    let Weights::Random { seed } = spec.weights else {
        return Err(BuildError::Unsupported("only random weights are made here".into()));
    };
    Ok(random_gguf(&arch, spec.precision, seed)?)
}

/// A GGUF image of a seeded random model with llama.cpp's names for `arch`.
fn random_gguf(arch: &config::DecoderShape, precision: Precision, seed: u64) -> anyhow::Result<Vec<u8>> {
    let init = SeededInit::new(seed);
    let q = ggml_dtype(precision);
    let (h, kv) = (arch.hidden, arch.head_dim * arch.kv_heads);
    let mut specs: Vec<(String, Vec<usize>, GgmlDType)> = vec![
        ("token_embd.weight".into(), vec![arch.vocab, h], q),
        ("output_norm.weight".into(), vec![h], GgmlDType::F32),
    ];
    if !arch.tied_embeddings {
        specs.push(("output.weight".into(), vec![arch.vocab, h], q));
    }
    for i in 0..arch.layers {
        let p = |n: &str| format!("blk.{i}.{n}");
        specs.extend([
            (p("attn_norm.weight"), vec![h], GgmlDType::F32),
            (p("ffn_norm.weight"), vec![h], GgmlDType::F32),
            (p("attn_q.weight"), vec![h, h], q),
            (p("attn_k.weight"), vec![kv, h], q),
            (p("attn_v.weight"), vec![kv, h], q),
            (p("attn_output.weight"), vec![h, h], q),
            (p("ffn_gate.weight"), vec![arch.intermediate, h], q),
            (p("ffn_up.weight"), vec![arch.intermediate, h], q),
            (p("ffn_down.weight"), vec![h, arch.intermediate], q),
        ]);
        if arch.qkv_bias {
            specs.extend([
                (p("attn_q.bias"), vec![h], GgmlDType::F32),
                (p("attn_k.bias"), vec![kv], GgmlDType::F32),
                (p("attn_v.bias"), vec![kv], GgmlDType::F32),
            ]);
        }
    }
    let mut tensors = Vec::with_capacity(specs.len());
    for (name, dims, dt) in specs {
        let shape = Shape::from(dims);
        let t = init.tensor(&name, &shape, candle_core::DType::F32, &Device::Cpu)?;
        tensors.push((name, QTensor::quantize(&t, dt)?));
    }
    let mut metadata = arch.gguf_metadata();
    // No vocabulary (the engine feeds token ids): llama.cpp then loads the file with
    // `vocab_size` placeholder tokens, so its own tools (llama-bench) run the same file.
    let family = if arch.family == Family::Qwen2 { "qwen2" } else { "llama" };
    metadata.push(("tokenizer.ggml.model".into(), gguf_file::Value::String("none".into())));
    metadata.push((format!("{family}.vocab_size"), gguf_file::Value::U32(arch.vocab as u32)));
    let md: Vec<(&str, &gguf_file::Value)> = metadata.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let ts: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let mut out = Cursor::new(Vec::new());
    gguf_file::write(&mut out, &md, &ts)?;
    Ok(out.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::catalog::{self, Mode};

    /// llama-tiny at `precision`, batch 1, from seeded random weights.
    fn llama_tiny(precision: Precision) -> WorkloadSpec {
        WorkloadSpec {
            model: catalog::lookup("llama-tiny").expect("llama-tiny"),
            batch: 1,
            seq_len: 8,
            precision,
            mode: Mode::Inference,
            weights: Weights::Random { seed: 9 },
        }
    }

    /// A `.gguf` on disk takes the same road as random weights, and is hashed.
    #[test]
    fn loads_a_gguf_file_and_hashes_it() {
        let random = llama_tiny(Precision::Q8_0);
        let arch = config::DecoderShape::of(&random).expect("decoder");
        let bytes = random_gguf(&arch, Precision::Q8_0, 9).expect("gguf");
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("tiny.gguf");
        std::fs::write(&path, &bytes).expect("write");
        let weights = Weights::resolve(path.to_str().expect("utf-8"), None).expect("resolves");
        assert!(weights.source().starts_with("file:sha256="));
        let spec = WorkloadSpec { weights, ..random };
        let mut w = build(&spec, &Device::Cpu).expect("builds from the file");
        let it = w.iterate().expect("runs");
        assert_eq!(it.token_steps.len(), super::super::DECODE_STEPS as usize);
        let check = super::super::output_check(w.output().expect("output")).expect("check");
        assert!(check.all_finite);
        assert_eq!(check.n_values, u64::from(arch.vocab as u32));
    }

    /// Our forward computes what candle-transformers' forwards compute on the same file:
    /// on candle's products (`Kernel::Candle`) the logits are equal; on ours, both
    /// quantize the activations to 8 bits per block (the scale in f32 here, f16 there),
    /// so each is compared with the same model on dequantized f32 weights, and ours
    /// must be as close to it as candle's is (within 1.5×).
    /// LLaMA (interleaved rotary pairs, grouped KV heads) and Qwen2 (rotated halves,
    /// Q/K/V biases, tied output); a prefill, then a cached step.
    #[test]
    fn our_forward_matches_candle_transformers() {
        let llama = config::DecoderShape::of(&llama_tiny(Precision::Q8_0)).expect("decoder");
        assert!(llama.kv_heads < llama.heads, "llama-tiny should exercise grouped KV heads");
        let qwen2 = config::DecoderShape {
            family: Family::Qwen2,
            qkv_bias: true,
            tied_embeddings: true,
            rope_theta: 1_000_000.0,
            ..llama.clone()
        };
        let max_abs = |t: Tensor| t.abs().and_then(|t| t.max_all()).and_then(|t| t.to_scalar::<f32>()).expect("max");
        for (arch, precision) in [
            (&llama, Precision::Q8_0),
            (&llama, Precision::Q4_0),
            (&llama, Precision::Q4_1),
            (&qwen2, Precision::Q8_0),
            (&qwen2, Precision::Q4_0),
        ] {
            let bytes = random_gguf(arch, precision, 11).expect("gguf");
            let ours = |kernel| {
                let mut reader = Cursor::new(bytes.clone());
                let content = gguf_file::Content::read(&mut reader).expect("gguf");
                QDecoder::load(&content, &mut reader, arch, &Device::Cpu, kernel).expect("loads")
            };
            let (mut fast, mut exact) = (ours(Kernel::Quantized), ours(Kernel::Exact));
            let mut on_candle = ours(Kernel::Candle);
            if kernels::quant::Matrix::fast_path_available() {
                assert!(super::super::qdecoder::runs_on_our_kernel(&fast));
            }
            let mut reader = Cursor::new(bytes.clone());
            let content = gguf_file::Content::read(&mut reader).expect("gguf");
            let mut theirs: Box<dyn CausalLm> = match arch.family {
                Family::Qwen2 => Box::new(QQwen2(
                    quantized_qwen2::ModelWeights::from_gguf(content, &mut reader, &Device::Cpu).expect("qwen2"),
                )),
                _ => Box::new(QLlama(
                    quantized_llama::ModelWeights::from_gguf(content, &mut reader, &Device::Cpu).expect("llama"),
                )),
            };
            // Batch 1: candle-transformers' forwards fail on a larger batch (the last
            // position's rows are not contiguous for its QMatMul); ours is checked
            // against itself per row in `a_batch_gives_each_rows_logits`.
            let prompt = Tensor::new(&[[3u32, 17, 250, 9, 1, 77, 5]], &Device::Cpu).expect("ids");
            let step = Tensor::new(&[[12u32]], &Device::Cpu).expect("ids");
            for (ids, offset) in [(&prompt, 0), (&step, 7)] {
                let a = fast.forward(ids, offset).expect("ours");
                let b = theirs.forward(ids, offset).expect("theirs");
                let e = exact.forward(ids, offset).expect("exact");
                let what = format!("{:?} {precision} offset {offset}", arch.family);
                let (ours_err, theirs_err) = (max_abs((&a - &e).expect("diff")), max_abs((&b - &e).expect("diff")));
                assert!(ours_err <= 1.5 * theirs_err, "{what}: ours {ours_err} from exact, candle's {theirs_err}");
                let same = on_candle.forward(ids, offset).expect("on candle");
                assert!(max_abs((&same - &b).expect("diff")) <= 1e-5 * max_abs(b.clone()), "{what}: forwards differ");
                assert!(theirs_err > 0.0 && ours_err < 0.05 * max_abs(e), "{what}: {ours_err}");
            }
        }
    }

    /// A batch is its rows run one by one: prefill and a cached step at batch 2 give
    /// each row's batch-1 logits (the path candle-transformers' forwards fail on).
    #[test]
    fn a_batch_gives_each_rows_logits() {
        let arch = config::DecoderShape::of(&llama_tiny(Precision::Q4_0)).expect("decoder");
        let bytes = random_gguf(&arch, Precision::Q4_0, 5).expect("gguf");
        let mut reader = Cursor::new(bytes);
        let content = gguf_file::Content::read(&mut reader).expect("gguf");
        let mut m = QDecoder::load(&content, &mut reader, &arch, &Device::Cpu, Kernel::Quantized).expect("loads");
        let rows = [[5u32, 6, 7, 8, 9], [100, 3, 3, 40, 2]];
        let mut run = |ids: &[[u32; 5]], next: &[[u32; 1]]| {
            m.reset();
            let ids = Tensor::from_vec(ids.concat(), (ids.len(), 5), &Device::Cpu).expect("ids");
            let next = Tensor::from_vec(next.concat(), (next.len(), 1), &Device::Cpu).expect("ids");
            let a = m.forward(&ids, 0).expect("prefill");
            let b = m.forward(&next, 5).expect("step");
            (a.to_vec2::<f32>().expect("f32"), b.to_vec2::<f32>().expect("f32"))
        };
        let (both_a, both_b) = run(&rows, &[[1], [2]]);
        for (i, next) in [[1u32], [2]].iter().enumerate() {
            let (a, b) = run(&rows[i..i + 1], &[*next]);
            for (x, y) in both_a[i].iter().zip(&a[0]).chain(both_b[i].iter().zip(&b[0])) {
                assert!((x - y).abs() <= 1e-4 * y.abs().max(1.0), "row {i}: {x} vs {y}");
            }
        }
    }

    /// A file of another quantization or another architecture is refused, naming what
    /// differs, instead of being stored under the catalog model's name and precision.
    #[test]
    fn a_gguf_of_another_precision_or_shape_is_refused() {
        let spec = llama_tiny(Precision::Q4_0);
        let arch = config::DecoderShape::of(&spec).expect("decoder");
        let read = |bytes: Vec<u8>| gguf_file::Content::read(&mut Cursor::new(bytes)).expect("gguf");
        let q8 = read(random_gguf(&arch, Precision::Q8_0, 9).expect("gguf"));
        check_gguf(&q8, &arch, Precision::Q8_0).expect("the same model and precision");
        let why = check_gguf(&q8, &arch, Precision::Q4_0).expect_err("another precision");
        assert!(why.contains("attn_q.weight is Some(Q8_0), expected Q4_0"), "{why}");
        let wider = config::DecoderShape { layers: arch.layers + 1, hidden: arch.hidden * 2, ..arch.clone() };
        let why = check_gguf(&q8, &wider, Precision::Q8_0).expect_err("another shape");
        assert!(why.contains("llama.block_count is") && why.contains("llama.embedding_length is"), "{why}");
    }
}
