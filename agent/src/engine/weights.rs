//! Where a model's weights come from, and how that is recorded.
//!
//! - `random-init:seed=<n>`: built from the catalog config with seeded weights
//!   ([`super::init`]).
//! - `file:sha256=<hex>`: a Hugging Face directory (`config.json` + `*.safetensors`),
//!   one `.safetensors` file (the catalog's config then), a `.gguf` file, or a model id
//!   found in the Hugging Face cache layout
//!   (`$HF_HOME/hub/models--ORG--NAME/snapshots/<rev>/`). For a directory with several
//!   safetensors shards the hash is the sha256 of the shards' own sha256 lines
//!   (`<hex>  <file name>\n`, sorted by name), so one shard changing changes it.
//!
//! A sweep names real weights per model ([`shared::spec::ModelWeights`]); the agent
//! finds them with [`Weights::named`], which hashes what it finds (once per file while
//! it stays unchanged) and refuses anything but the sha256 the sweep names.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use anyhow::{bail, Context};
use candle_core::safetensors::MmapedSafetensors;
use candle_core::{DType, Device};
use candle_nn::VarBuilder;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::init::SeededInit;
use super::layout::GemmLayout;

/// The default seed of random-init weights and synthetic inputs.
pub const DEFAULT_SEED: u64 = 0x5eed;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Weights {
    Random {
        seed: u64,
    },
    /// A Hugging Face folder (`path`) and its shards, or one `.safetensors` file (`path`
    /// is that file; the model's config is then the catalog's).
    Dir {
        path: PathBuf,
        files: Vec<PathBuf>,
        sha256: String,
    },
    Gguf {
        path: PathBuf,
        sha256: String,
    },
    /// Files a sweep names, not found (yet) on this agent: a row about them says which
    /// hash it needed, and no engine runs them.
    Named {
        source: String,
        sha256: String,
    },
}

impl Weights {
    /// What the result row records as its weights source.
    pub fn source(&self) -> String {
        match self {
            Weights::Random { seed } => format!("random-init:seed={seed}"),
            Weights::Dir { sha256, .. } | Weights::Gguf { sha256, .. } | Weights::Named { sha256, .. } => {
                format!("file:sha256={sha256}")
            }
        }
    }

    /// Seed of the random weights (and of the synthetic inputs).
    pub fn seed(&self) -> u64 {
        match self {
            Weights::Random { seed } => *seed,
            _ => DEFAULT_SEED,
        }
    }

    /// Seed of the synthetic inputs: the same inputs for every weights source.
    pub fn input_seed(&self) -> u64 {
        DEFAULT_SEED
    }

    /// The directory's `config.json`, for real weights in Hugging Face layout.
    pub fn config_json(&self) -> anyhow::Result<Option<serde_json::Value>> {
        let Weights::Dir { path, .. } = self else { return Ok(None) };
        if !path.is_dir() {
            return Ok(None);
        }
        let file = path.join("config.json");
        let text = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
        let v = serde_json::from_str(&text).with_context(|| format!("parsing {}", file.display()))?;
        Ok(Some(v))
    }

    pub fn var_builder(&self, dtype: DType, device: &Device) -> anyhow::Result<VarBuilder<'static>> {
        match self {
            Weights::Random { seed } => {
                let backend = GemmLayout::new(SeededInit::new(*seed));
                Ok(VarBuilder::from_backend(Box::new(backend), dtype, device.clone()))
            }
            Weights::Dir { files, .. } => {
                // SAFETY: the files are memory-mapped read-only; like every
                // safetensors reader we rely on no one truncating them meanwhile.
                let tensors = unsafe { MmapedSafetensors::multi(files)? };
                Ok(VarBuilder::from_backend(Box::new(GemmLayout::new(tensors)), dtype, device.clone()))
            }
            Weights::Gguf { path, .. } => bail!("{} is a gguf file: run it at q8_0 or q4_0", path.display()),
            Weights::Named { source, .. } => bail!("{}", not_found(source)),
        }
    }

    /// Resolves `ARG`: a directory, a `.safetensors` or `.gguf` file, or an `ORG/NAME` model id
    /// in the Hugging Face cache under `hf_home` (`$HF_HOME`, else
    /// `~/.cache/huggingface`). Hashes what it finds.
    pub fn resolve(arg: &str, hf_home: Option<&Path>) -> anyhow::Result<Weights> {
        let path = PathBuf::from(arg);
        if path.is_dir() {
            return from_dir(&path);
        }
        if path.is_file() {
            let ext = path.extension().map(|e| e.to_ascii_lowercase());
            if ext.as_ref().is_some_and(|e| e == "gguf") {
                return Ok(Weights::Gguf { sha256: sha256_file(&path)?, path });
            }
            if ext.as_ref().is_some_and(|e| e == "safetensors") {
                return Ok(Weights::Dir { sha256: sha256_file(&path)?, files: vec![path.clone()], path });
            }
            bail!("{arg}: expected a directory with config.json and *.safetensors, a .safetensors or a .gguf file");
        }
        let Some(hub) = hf_home.map(|h| h.join("hub")) else {
            bail!("{arg}: no such file or directory, and no Hugging Face cache to look in");
        };
        let snapshot = hf_snapshot(&hub, arg)?;
        let ggufs = list_with_ext(&snapshot, "gguf")?;
        match ggufs.as_slice() {
            [] => from_dir(&snapshot),
            [one] => Ok(Weights::Gguf { sha256: sha256_file(one)?, path: one.clone() }),
            many => bail!("{arg}: {} holds {} .gguf files; name one of them as a path", snapshot.display(), many.len()),
        }
    }
}

impl Weights {
    /// The files a sweep names (`source`, as in [`shared::spec::ModelWeights`]) on this
    /// agent, if their sha256 is the one named. `Err` says why the cell cannot run here
    /// (its row is then `unsupported`).
    pub fn named(source: &str, sha256: &str, hf_home: Option<&Path>) -> Result<Weights, String> {
        let found =
            Weights::resolve(source, hf_home).map_err(|e| format!("weights not present on this agent: {e:#}"))?;
        let (path, found_sha256) = match &found {
            Weights::Dir { path, sha256, .. } | Weights::Gguf { path, sha256, .. } => (path, sha256),
            Weights::Random { .. } | Weights::Named { .. } => return Err("weights not present on this agent".into()),
        };
        if found_sha256 != sha256 {
            return Err(format!(
                "weights at {} have sha256 {found_sha256}, the sweep names {sha256} (other files under the same name)",
                path.display(),
            ));
        }
        Ok(found)
    }
}

fn from_dir(dir: &Path) -> anyhow::Result<Weights> {
    if !dir.join("config.json").is_file() {
        bail!("{}: no config.json (expected Hugging Face layout)", dir.display());
    }
    let files = list_with_ext(dir, "safetensors")?;
    if files.is_empty() {
        bail!("{}: no *.safetensors files", dir.display());
    }
    let sha256 = if let [one] = files.as_slice() {
        sha256_file(one)?
    } else {
        let mut lines = String::new();
        for f in &files {
            let name = f.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            lines.push_str(&format!("{}  {name}\n", sha256_file(f)?));
        }
        hex::encode(Sha256::digest(lines.as_bytes()))
    };
    Ok(Weights::Dir { path: dir.to_path_buf(), files, sha256 })
}

/// The newest snapshot of `ORG/NAME` in a Hugging Face hub cache.
fn hf_snapshot(hub: &Path, id: &str) -> anyhow::Result<PathBuf> {
    let looks_like_an_id = |part: &str| !part.is_empty() && !part.starts_with('.') && !part.contains('/');
    let Some((org, name)) = id.split_once('/').filter(|(o, n)| looks_like_an_id(o) && looks_like_an_id(n)) else {
        bail!("{id}: no such file or directory, and not an ORG/NAME model id");
    };
    let snapshots = hub.join(format!("models--{org}--{name}")).join("snapshots");
    let entries = std::fs::read_dir(&snapshots).with_context(|| {
        format!("{id}: no such file or directory, and not in the Hugging Face cache ({})", snapshots.display())
    })?;
    let mut best: Option<(std::time::SystemTime, PathBuf)> = None;
    for e in entries.flatten() {
        let p = e.path();
        let t = e.metadata().and_then(|m| m.modified()).unwrap_or(std::time::UNIX_EPOCH);
        if p.is_dir() && best.as_ref().is_none_or(|(bt, _)| t > *bt) {
            best = Some((t, p));
        }
    }
    best.map(|(_, p)| p).with_context(|| format!("{}: no snapshot", snapshots.display()))
}

fn list_with_ext(dir: &Path, ext: &str) -> anyhow::Result<Vec<PathBuf>> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    out.sort();
    Ok(out)
}

/// Runs `accelbench-agent weights …`.
pub fn command(command: &crate::cli::WeightsCommand, out: &mut impl std::io::Write) -> anyhow::Result<()> {
    use crate::cli::WeightsCommand;
    match command {
        WeightsCommand::Hash { source } => {
            let (path, sha256) = match Weights::resolve(source, hf_home().as_deref())? {
                Weights::Dir { path, sha256, .. } | Weights::Gguf { path, sha256, .. } => (path, sha256),
                Weights::Random { .. } | Weights::Named { .. } => bail!("{source}: no weights found"),
            };
            writeln!(out, "{sha256}  {}", path.display())?;
        }
        WeightsCommand::Export { model, seed, precision, out: folder } => {
            let Some(model) = shared::catalog::lookup(model) else {
                bail!("--model {model}: unknown model (`accelbench-agent models` lists them)");
            };
            let spec = super::WorkloadSpec {
                model,
                batch: 1,
                seq_len: 1,
                precision: *precision,
                mode: shared::catalog::Mode::Inference,
                weights: Weights::Random { seed: *seed },
            };
            let written = if precision.is_quantized() {
                super::export::seeded_gguf(&spec, folder)
            } else {
                super::export::seeded_hf_folder(model, *seed, folder)
            };
            let written = written.map_err(|e| match e {
                super::BuildError::Unsupported(why) => anyhow::anyhow!("--precision {precision}: {why}"),
                super::BuildError::Failed(e) => e,
            })?;
            writeln!(out, "{}", written.display())?;
        }
    }
    Ok(())
}

/// Why no engine runs `Named` weights: the agent did not find them (the worker swaps
/// found ones in before a cell starts).
pub fn not_found(source: &str) -> String {
    format!("weights `{source}` were not found on this agent")
}

/// The Hugging Face cache folder: `$HF_HOME`, else `~/.cache/huggingface`.
pub fn hf_home() -> Option<PathBuf> {
    std::env::var_os("HF_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/huggingface")))
}

/// Streaming sha256 of a file (weights can be many GiB), remembered for the life of
/// the process while the file keeps its length and modification time, so a sweep's
/// cells hash each file once.
pub fn sha256_file(path: &Path) -> anyhow::Result<String> {
    static KNOWN: Mutex<Option<HashMap<(PathBuf, u64, SystemTime), String>>> = Mutex::new(None);
    let meta = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
    let key = (path.to_path_buf(), meta.len(), meta.modified().unwrap_or(SystemTime::UNIX_EPOCH));
    if let Some(hex) = KNOWN.lock().ok().and_then(|k| k.as_ref()?.get(&key).cloned()) {
        return Ok(hex);
    }
    let hex = hash_file(path)?;
    if let Ok(mut known) = KNOWN.lock() {
        known.get_or_insert_with(HashMap::new).insert(key, hex.clone());
    }
    Ok(hex)
}

fn hash_file(path: &Path) -> anyhow::Result<String> {
    let mut f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_dirs_gguf_and_the_hf_cache() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("m");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("config.json"), "{}").unwrap();
        let err = Weights::resolve(dir.to_str().unwrap(), None).unwrap_err();
        assert!(format!("{err:#}").contains("no *.safetensors"), "{err:#}");
        std::fs::write(dir.join("model.safetensors"), b"abc").unwrap();
        let w = Weights::resolve(dir.to_str().unwrap(), None).unwrap();
        // sha256("abc")
        assert_eq!(w.source(), "file:sha256=ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");

        let snap = tmp.path().join("hf/hub/models--acme--tiny/snapshots/rev1");
        std::fs::create_dir_all(&snap).unwrap();
        std::fs::write(snap.join("model.gguf"), b"abc").unwrap();
        let w = Weights::resolve("acme/tiny", Some(&tmp.path().join("hf"))).unwrap();
        assert!(matches!(w, Weights::Gguf { .. }));
        let err = Weights::resolve("acme/missing", Some(&tmp.path().join("hf"))).unwrap_err();
        assert!(format!("{err:#}").contains("models--acme--missing"), "{err:#}");
        assert_eq!(Weights::Random { seed: 3 }.source(), "random-init:seed=3");
    }

    #[test]
    fn named_weights_run_only_with_the_hash_the_sweep_names() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("bert.safetensors");
        std::fs::write(&file, b"abc").unwrap();
        let source = file.to_str().unwrap();
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        // One .safetensors file: found, hashed, and run with the catalog's config.
        let w = Weights::named(source, abc, None).expect("the named file with its hash");
        assert!(matches!(&w, Weights::Dir { path, files, .. } if path == &file && files == &[file.clone()]));
        assert_eq!(w.config_json().unwrap(), None, "a lone file has no config.json");
        // Other bytes under the same name: refused, naming both hashes.
        std::fs::write(&file, b"abcd").unwrap();
        let err = Weights::named(source, abc, None).unwrap_err();
        assert!(
            err.contains(abc) && err.contains("88d4266fd4e6338d13b845fcf289579d209c897823b9217da3e161936f031589"),
            "{err}"
        );
        // Missing: not present, never other weights.
        let err = Weights::named("/nowhere/bert", abc, None).unwrap_err();
        assert!(err.starts_with("weights not present on this agent: /nowhere/bert: no such file"), "{err}");
        let err = Weights::named("acme/bert", abc, Some(tmp.path())).unwrap_err();
        assert!(err.contains("models--acme--bert"), "{err}");
        // The row of a cell whose weights are missing names the hash it needed.
        let missing = Weights::Named { source: "/nowhere/bert".into(), sha256: abc.into() };
        assert_eq!(missing.source(), format!("file:sha256={abc}"));
        assert!(missing.var_builder(DType::F32, &Device::Cpu).is_err());
    }
}
