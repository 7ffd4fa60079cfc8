//! The candle engine's seeded weights, written out in Hugging Face layout
//! (`config.json` + `model.safetensors`) so that an external runner (docs/RUNNERS.md)
//! loads exactly the weights candle runs: the same values, tensor by tensor, so rows of
//! different engines compare.
//!
//! The tensors are found by loading the family's model exactly as candle's cells load it
//! (same names, so same seeds) through a recording [`SimpleBackend`] over
//! [`SeededInit`]: every tensor the model asks for is made by the same rule (name and
//! shape → values) that candle's cells use, in the `[out, in]` layout Hugging Face
//! stores. Written into a temporary folder and renamed, so
//! a reader never sees half a folder and two cells exporting at once do not clash.
//!
//! Families without an exporter yet answer [`BuildError::Unsupported`]: never other
//! weights in their place.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use candle_core::{DType, Device, Shape, Tensor};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::{Init, VarBuilder};
use candle_transformers::models::{bert, llama, qwen2, vit};
use shared::catalog::{Family, Mode, ModelSpec, Precision};

use super::init::SeededInit;
use super::weights::Weights;
use super::{config, BuildError, WorkloadSpec};

/// Bump when what an export writes changes, so stale cached folders are not reused.
const FORMAT: u32 = 1;

/// The folder holding `model`'s weights of `seed` in Hugging Face layout under `cache`,
/// written there first if it is not yet.
pub fn seeded_hf_folder(model: &'static ModelSpec, seed: u64, cache: &Path) -> Result<PathBuf, BuildError> {
    let name = format!("{}-seed{seed}-v{FORMAT}", model.name);
    write_folder(cache, &name, || {
        let (config, tensors) = seeded_tensors(model, seed)?;
        Ok((config, Box::new(move |file: &Path| Ok(candle_core::safetensors::save(&tensors, file)?))))
    })
}

/// A Hugging Face folder for one real `.safetensors` file (which has no `config.json`
/// beside it): the catalog's config for `model` and a link to the very file, so that an
/// external runner loads the same bytes candle hashed.
pub fn folder_for_file(
    model: &'static ModelSpec,
    file: &Path,
    sha256: &str,
    cache: &Path,
) -> Result<PathBuf, BuildError> {
    let short = sha256.get(..16).unwrap_or(sha256);
    let name = format!("{}-file-{short}-v{FORMAT}", model.name);
    let target = file.canonicalize().with_context(|| format!("finding {}", file.display()))?;
    write_folder(cache, &name, || {
        let config = runner_config(model).ok_or_else(|| {
            BuildError::Unsupported(format!(
                "a lone .safetensors file of the {} family has no config an external runner reads yet; \
                 give a Hugging Face folder with its config.json",
                model.family
            ))
        })?;
        Ok((config, Box::new(move |link: &Path| Ok(std::os::unix::fs::symlink(&target, link)?))))
    })
}

/// Writes `config.json` and `model.safetensors` (by `write`) into `cache/name`, unless a
/// complete folder is there already: into a temporary folder first, then renamed.
fn write_folder(
    cache: &Path,
    name: &str,
    contents: impl FnOnce() -> Result<(serde_json::Value, WriteWeights), BuildError>,
) -> Result<PathBuf, BuildError> {
    let dir = cache.join(name);
    if dir.join("model.safetensors").exists() {
        return Ok(dir);
    }
    let (config, write) = contents()?;
    std::fs::create_dir_all(cache).with_context(|| format!("creating {}", cache.display()))?;
    let tmp = cache.join(format!(".{name}.{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let written = (|| -> anyhow::Result<()> {
        std::fs::write(tmp.join("config.json"), serde_json::to_vec_pretty(&config)?)?;
        write(&tmp.join("model.safetensors"))
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(BuildError::Failed(e.context(format!("writing weights into {}", tmp.display()))));
    }
    if let Err(e) = std::fs::rename(&tmp, &dir) {
        let _ = std::fs::remove_dir_all(&tmp);
        // Another cell finished the same export first: theirs is the same bytes.
        if !dir.join("model.safetensors").exists() {
            return Err(BuildError::Failed(anyhow::anyhow!("moving {} to {}: {e}", tmp.display(), dir.display())));
        }
    }
    Ok(dir)
}

/// Writes the weights file at the path given.
type WriteWeights = Box<dyn FnOnce(&Path) -> anyhow::Result<()>>;

/// The `config.json` an external runner reads for `model`: the catalog's, plus what
/// transformers needs to build the class candle's cells run. `None` for families no
/// runner loads from a folder yet.
fn runner_config(model: &'static ModelSpec) -> Option<serde_json::Value> {
    let mut config = config::hf_config(model);
    match model.family {
        Family::Bert => config["architectures"] = serde_json::json!(["BertModel"]),
        Family::Vit => {
            config["model_type"] = "vit".into();
            config["architectures"] = serde_json::json!(["ViTForImageClassification"]);
            let labels: serde_json::Map<String, serde_json::Value> =
                (0..super::vision::VIT_LABELS).map(|i| (i.to_string(), format!("LABEL_{i}").into())).collect();
            config["id2label"] = labels.into();
        }
        Family::Llama => {
            config["model_type"] = "llama".into();
            config["architectures"] = serde_json::json!(["LlamaForCausalLM"]);
        }
        Family::Qwen2 => {
            config["model_type"] = "qwen2".into();
            config["architectures"] = serde_json::json!(["Qwen2ForCausalLM"]);
        }
        _ => return None,
    }
    Some(config)
}

/// The GGUF file of a quantized cell's seeded decoder (the very file candle's cell of
/// the same spec builds in memory), written under `cache` first if it is not yet.
pub fn seeded_gguf(spec: &WorkloadSpec, cache: &Path) -> Result<PathBuf, BuildError> {
    let Weights::Random { seed } = spec.weights else {
        return Err(BuildError::Unsupported("only seeded weights are exported".into()));
    };
    let name = format!("{}-{}-seed{seed}-v{FORMAT}.gguf", spec.model.name, spec.precision);
    let file = cache.join(&name);
    if file.is_file() {
        return Ok(file);
    }
    let bytes = super::random_gguf_of(spec)?;
    std::fs::create_dir_all(cache).with_context(|| format!("creating {}", cache.display()))?;
    let tmp = cache.join(format!(".{name}.{}", std::process::id()));
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &file).with_context(|| format!("moving {} to {}", tmp.display(), file.display()))?;
    Ok(file)
}

/// Where exported weights are cached: `$ACCELBENCH_WEIGHTS_CACHE`, else
/// `$XDG_CACHE_HOME/accelbench/seeded-weights`, else `~/.cache/accelbench/seeded-weights`.
pub fn default_cache() -> PathBuf {
    if let Some(dir) = std::env::var_os("ACCELBENCH_WEIGHTS_CACHE") {
        return dir.into();
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("accelbench").join("seeded-weights")
}

/// The config.json and every tensor of `model` with seeded values.
fn seeded_tensors(
    model: &'static ModelSpec,
    seed: u64,
) -> Result<(serde_json::Value, HashMap<String, Tensor>), BuildError> {
    let spec = WorkloadSpec {
        model,
        batch: 1,
        seq_len: 1,
        precision: Precision::Fp32,
        mode: Mode::Inference,
        weights: Weights::Random { seed },
    };
    let recorder = Recorder { init: SeededInit::new(seed), seen: Arc::default() };
    let seen = recorder.seen.clone();
    let vb = VarBuilder::from_backend(Box::new(recorder), DType::F32, Device::Cpu);
    match model.family {
        Family::Bert => {
            let cfg: bert::Config = config::candle_config(&spec)?;
            let root = super::encoder::bert_root(vb);
            super::bert::Bert::load(root.clone(), &cfg)?;
            // Hugging Face's BertModel also has a pooler, which candle's does not build:
            // seeded too, so that no weight of the exported model is left to chance.
            let pooler = root.pp("pooler").pp("dense");
            pooler.get((cfg.hidden_size, cfg.hidden_size), "weight")?;
            pooler.get(cfg.hidden_size, "bias")?;
        }
        Family::Vit => {
            let cfg: vit::Config = config::candle_config(&spec)?;
            super::vision::VitModel::load(&cfg, vb)?;
        }
        Family::Llama => {
            let cfg: llama::LlamaConfig = config::candle_config(&spec)?;
            llama::Llama::load(vb, &cfg.into_config(false))?;
        }
        Family::Qwen2 => {
            let cfg: qwen2::Config = config::candle_config(&spec)?;
            qwen2::ModelForCausalLM::new(&cfg, vb)?;
        }
        other => return Err(unexportable(other)),
    }
    let config = runner_config(model).ok_or_else(|| unexportable(model.family))?;
    let tensors = seen.lock().map_err(|_| anyhow::anyhow!("weights recorder poisoned"))?.clone();
    Ok((config, tensors))
}

fn unexportable(family: Family) -> BuildError {
    BuildError::Unsupported(format!(
        "seeded weights of the {family} family cannot be exported for an external runner yet; give real weights"
    ))
}

/// The inputs candle's cell of `spec` runs on, by the names Hugging Face models take
/// (token ids as i64): what a runner is given for the validation pass, so that both
/// engines see the very same values.
pub fn reference_inputs(spec: &WorkloadSpec) -> Result<HashMap<String, Tensor>, BuildError> {
    let seed = spec.weights.input_seed();
    let cpu = Device::Cpu;
    let mut inputs = HashMap::new();
    match spec.model.family {
        Family::Bert => {
            let cfg: bert::Config = config::candle_config(spec)?;
            let ids = super::token_ids(seed, "input_ids", spec.batch, spec.seq_len, cfg.vocab_size, &cpu)?;
            let ids = ids.to_dtype(DType::I64)?;
            inputs.insert("attention_mask".to_string(), ids.ones_like()?);
            inputs.insert("token_type_ids".to_string(), ids.zeros_like()?);
            inputs.insert("input_ids".to_string(), ids);
        }
        Family::Vit => {
            let cfg: vit::Config = config::candle_config(spec)?;
            let shape = [spec.batch, cfg.num_channels, cfg.image_size, cfg.image_size];
            inputs.insert(
                "pixel_values".to_string(),
                super::normal_input(seed, "pixel_values", &shape, DType::F32, &cpu)?,
            );
        }
        other => return Err(BuildError::Unsupported(format!("no validation inputs for the {other} family yet"))),
    }
    Ok(inputs)
}

/// The first prompt (row 0) of candle's cell of the decoder `spec`: the token ids its
/// generation starts from, for comparing greedy tokens.
pub fn prompt_ids(spec: &WorkloadSpec) -> Result<Vec<u32>, BuildError> {
    let vocab = config::DecoderShape::of(spec)?.vocab;
    let ids = super::init::seeded_ids(spec.weights.input_seed(), "input_ids", spec.seq_len, vocab as u32);
    Ok(ids)
}

/// A [`SimpleBackend`] that makes each tensor as [`SeededInit`] does and keeps a copy.
struct Recorder {
    init: SeededInit,
    seen: Arc<Mutex<HashMap<String, Tensor>>>,
}

impl SimpleBackend for Recorder {
    fn get(&self, s: Shape, name: &str, _h: Init, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        let t = self.init.tensor(name, &s, DType::F32, &Device::Cpu)?;
        if let Ok(mut seen) = self.seen.lock() {
            seen.insert(name.to_string(), t.clone());
        }
        t.to_dtype(dtype)?.to_device(dev)
    }

    fn get_unchecked(&self, name: &str, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        self.init.get_unchecked(name, dtype, dev)
    }

    fn contains_tensor(&self, _name: &str) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::catalog;

    #[test]
    fn exported_weights_are_the_seeded_values_candle_runs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let model = catalog::lookup("bert-tiny").expect("bert-tiny");
        let folder = seeded_hf_folder(model, 7, dir.path()).expect("exported");
        let config: serde_json::Value =
            serde_json::from_slice(&std::fs::read(folder.join("config.json")).expect("config")).expect("json");
        assert_eq!(config["model_type"], "bert");
        let tensors = candle_core::safetensors::load(folder.join("model.safetensors"), &Device::Cpu).expect("load");
        let name = "bert.encoder.layer.0.attention.self.query.weight";
        let t = &tensors[name];
        let want = SeededInit::new(7).values(name, t.shape());
        assert_eq!(t.flatten_all().and_then(|t| t.to_vec1::<f32>()).expect("values"), want);
        assert!(
            tensors.contains_key("bert.pooler.dense.weight")
                && tensors.contains_key("bert.embeddings.word_embeddings.weight")
        );
        // A second export finds the folder; nothing half-written is left beside it.
        assert_eq!(seeded_hf_folder(model, 7, dir.path()).expect("cached"), folder);
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .expect("ls")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into())
            .collect();
        assert_eq!(names, vec![folder.file_name().expect("name").to_string_lossy().to_string()]);

        // A decoder in the layout transformers' LlamaForCausalLM reads.
        let llama = catalog::lookup("llama-tiny").expect("llama-tiny");
        let folder = seeded_hf_folder(llama, 7, dir.path()).expect("exported");
        let tensors = candle_core::safetensors::load(folder.join("model.safetensors"), &Device::Cpu).expect("load");
        for name in [
            "model.embed_tokens.weight",
            "model.layers.3.self_attn.q_proj.weight",
            "model.norm.weight",
            "lm_head.weight",
        ] {
            assert!(tensors.contains_key(name), "{name}");
        }
        let config = std::fs::read_to_string(folder.join("config.json")).expect("config");
        assert!(config.contains("LlamaForCausalLM"), "{config}");

        let t5 = catalog::lookup("t5-small").expect("t5-small");
        let why = seeded_hf_folder(t5, 7, dir.path()).expect_err("no exporter");
        assert!(matches!(&why, BuildError::Unsupported(w) if w.contains("give real weights")), "{why}");
    }
}
