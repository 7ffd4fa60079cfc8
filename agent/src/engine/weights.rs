//! Where a model's weights come from, and how that is recorded.
//!
//! - `random-init:seed=<n>`: built from the catalog config with seeded weights
//!   ([`super::init`]).
//! - `file:sha256=<hex>`: a Hugging Face directory (`config.json` + `*.safetensors`),
//!   a `.gguf` file, or a model id found in the Hugging Face cache layout
//!   (`$HF_HOME/hub/models--ORG--NAME/snapshots/<rev>/`). For a directory with several
//!   safetensors shards the hash is the sha256 of the shards' own sha256 lines
//!   (`<hex>  <file name>\n`, sorted by name), so one shard changing changes it.

use std::io::Read;
use std::path::{Path, PathBuf};

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
    Random { seed: u64 },
    Dir { path: PathBuf, files: Vec<PathBuf>, sha256: String },
    Gguf { path: PathBuf, sha256: String },
}

impl Weights {
    /// What the result row records as its weights source.
    pub fn source(&self) -> String {
        match self {
            Weights::Random { seed } => format!("random-init:seed={seed}"),
            Weights::Dir { sha256, .. } | Weights::Gguf { sha256, .. } => format!("file:sha256={sha256}"),
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
        }
    }

    /// Resolves `--weights ARG`: a directory, a `.gguf` file, or an `ORG/NAME` model id
    /// in the Hugging Face cache under `hf_home` (`$HF_HOME`, else
    /// `~/.cache/huggingface`). Hashes what it finds.
    pub fn resolve(arg: &str, hf_home: Option<&Path>) -> anyhow::Result<Weights> {
        let path = PathBuf::from(arg);
        if path.is_dir() {
            return from_dir(&path);
        }
        if path.is_file() {
            if path.extension().is_some_and(|e| e == "gguf") {
                return Ok(Weights::Gguf { sha256: sha256_file(&path)?, path });
            }
            bail!("--weights {arg}: expected a directory with config.json and *.safetensors, or a .gguf file");
        }
        let Some(hub) = hf_home.map(|h| h.join("hub")) else {
            bail!("--weights {arg}: no such file or directory, and no Hugging Face cache to look in");
        };
        let snapshot = hf_snapshot(&hub, arg)?;
        let ggufs = list_with_ext(&snapshot, "gguf")?;
        match ggufs.as_slice() {
            [] => from_dir(&snapshot),
            [one] => Ok(Weights::Gguf { sha256: sha256_file(one)?, path: one.clone() }),
            many => bail!(
                "--weights {arg}: {} holds {} .gguf files; pass one of them as a path",
                snapshot.display(),
                many.len()
            ),
        }
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
    let Some((org, name)) = id.split_once('/') else {
        bail!("--weights {id}: not a path, and not an ORG/NAME model id");
    };
    let snapshots = hub.join(format!("models--{org}--{name}")).join("snapshots");
    let entries = std::fs::read_dir(&snapshots).with_context(|| {
        format!("--weights {id}: not a path, and not in the Hugging Face cache ({})", snapshots.display())
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

/// Streaming sha256 of a file (weights can be many GiB).
pub fn sha256_file(path: &Path) -> anyhow::Result<String> {
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
}
