//! Real weights a spec names: `[[weights]]` entries, each a model of the matrix, where
//! its files are on the agents (a Hugging Face folder, a `.safetensors` or `.gguf` file,
//! or an `ORG/NAME` id in the agents' Hugging Face cache), their sha256, and the
//! precisions they serve. Cells of that model at those precisions run on exactly those
//! files, in every engine; an agent without them answers `unsupported`.
//!
//! Must never: let two entries serve one (model, precision), or accept a hash that is
//! not 64 hex digits (the agent compares it byte for byte with what it reads).

use serde::{Deserialize, Serialize};

use super::check::{named, refuse, Checker, Refusal};
use super::model;
use crate::catalog::Precision;

/// One `[[weights]]` entry, validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelWeights {
    /// Catalog name, in the catalog's spelling; one of `matrix.models`.
    pub model: String,
    /// Where the files are, as every agent sees them: a path or an `ORG/NAME` id.
    pub source: String,
    /// Lowercase hex: of the file, or for a folder of several shards of their
    /// `<sha256>  <name>` lines (`accelbench-agent weights hash` prints it).
    pub sha256: String,
    /// The precisions these files serve: as written, or by default the quantized ones
    /// for a `.gguf` source and the float ones for any other.
    pub precisions: Vec<Precision>,
}

/// Most `[[weights]]` entries a spec may hold.
pub const MAX_WEIGHTS_ENTRIES: usize = 1_000;
/// Longest `source` accepted (a path, with room to spare).
pub const MAX_SOURCE_CHARS: usize = 4_096;

impl ModelWeights {
    /// Whether these are the files of `model`'s cells at `precision`.
    pub fn serves(&self, model: &str, precision: Precision) -> bool {
        self.model == model && self.precisions.contains(&precision)
    }
}

/// Whether a source names a GGUF file (by its extension, any case).
fn is_gguf(source: &str) -> bool {
    source.to_ascii_lowercase().ends_with(".gguf")
}

/// The raw form of one entry: every key optional so that all problems are reported.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWeights {
    model: Option<String>,
    source: Option<String>,
    sha256: Option<String>,
    precisions: Option<Vec<String>>,
}

impl Checker {
    /// The `[[weights]]` entries, against the matrix's models.
    pub(super) fn weights(&mut self, raw: &[RawWeights], models: &[String]) -> Vec<ModelWeights> {
        if raw.len() > MAX_WEIGHTS_ENTRIES {
            self.report("weights", format!("{} entries", raw.len()), format!("at most {MAX_WEIGHTS_ENTRIES} entries"));
            return Vec::new();
        }
        let mut out: Vec<ModelWeights> = Vec::new();
        for (i, entry) in raw.iter().enumerate() {
            let path = format!("weights[{i}]");
            let Some(w) = self.weights_entry(&path, entry, models) else { continue };
            let taken = out.iter().find_map(|o| {
                let shared = w.precisions.iter().find(|p| o.precisions.contains(p));
                (o.model == w.model).then_some(shared).flatten()
            });
            match taken {
                Some(p) => self.report(
                    format!("{path}.precisions"),
                    format!("`{p}` of {} again", w.model),
                    "one weights entry per model and precision",
                ),
                None => out.push(w),
            }
        }
        out
    }

    fn weights_entry(&mut self, path: &str, raw: &RawWeights, models: &[String]) -> Option<ModelWeights> {
        let before = self.diagnostics.len();
        let model = self.required(&format!("{path}.model"), raw.model.as_ref(), |m| in_matrix(m, models));
        let source = self.required(&format!("{path}.source"), raw.source.as_ref(), source);
        let sha256 = self.required(&format!("{path}.sha256"), raw.sha256.as_ref(), sha256);
        let gguf = source.as_deref().is_some_and(is_gguf);
        let precisions = match &raw.precisions {
            None => Precision::ALL.iter().copied().filter(|p| p.is_quantized() == gguf).collect(),
            Some(list) => {
                let path = format!("{path}.precisions");
                let served = |raw: &String| {
                    let p: Precision = named(raw)?;
                    match (gguf, p.is_quantized()) {
                        (true, false) => {
                            Err(refuse(format!("`{p}`"), "a quantized precision (the source is a .gguf file)"))
                        }
                        _ => Ok(p),
                    }
                };
                self.axis(&path, Some(list.as_slice()), None, served)
            }
        };
        if self.diagnostics.len() > before {
            return None;
        }
        Some(ModelWeights { model: model?, source: source?, sha256: sha256?, precisions })
    }

    /// A key every entry must have, parsed; reported when missing or refused.
    fn required<T>(
        &mut self,
        path: &str,
        raw: Option<&String>,
        parse: impl Fn(&String) -> Result<T, Refusal>,
    ) -> Option<T> {
        let Some(raw) = raw else {
            self.report(path, "nothing", "a value (see docs/SPEC.md, real weights)");
            return None;
        };
        match parse(raw) {
            Ok(value) => Some(value),
            Err(refusal) => {
                self.report(path, refusal.value, refusal.expected);
                None
            }
        }
    }
}

fn in_matrix(raw: &String, models: &[String]) -> Result<String, Refusal> {
    let name = model::model(raw)?;
    if !models.contains(&name) {
        return Err(refuse(format!("`{raw}`"), format!("one of matrix.models ({})", models.join(", "))));
    }
    Ok(name)
}

fn source(raw: &String) -> Result<String, Refusal> {
    let ok = !raw.trim().is_empty() && raw.chars().count() <= MAX_SOURCE_CHARS && !raw.chars().any(char::is_control);
    if !ok {
        return Err(refuse(
            format!("{:?}", raw.chars().take(60).collect::<String>()),
            format!("a path or ORG/NAME id, 1 to {MAX_SOURCE_CHARS} characters, no control characters"),
        ));
    }
    Ok(raw.clone())
}

fn sha256(raw: &String) -> Result<String, Refusal> {
    if raw.len() != 64 || !raw.chars().all(|c| c.is_ascii_hexdigit()) {
        let shown: String = raw.chars().take(70).collect();
        return Err(refuse(format!("`{shown}`"), "64 hex digits (`accelbench-agent weights hash SOURCE` prints them)"));
    }
    Ok(raw.to_ascii_lowercase())
}
