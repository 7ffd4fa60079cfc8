//! The sweep spec: what a user submits (TOML, or JSON), read into a permissive raw form
//! and then validated into a typed [`SweepSpec`], reporting every problem at once as a
//! [`Diagnostic`](crate::diagnostic::Diagnostic) that names the field path, the bad value
//! and what is allowed.
//!
//! The typed [`SweepSpec`] is a stored format (the coordinator replicates it), so its
//! serde shape is stable: change it only with a migration.
//!
//! Layout: this file holds the typed spec and the [`parse`] entry point; `raw.rs` the
//! permissive raw form and syntax errors; `check.rs` the checker and the plain axes;
//! `model.rs` the model axis and its suggestions; `hardware.rs` hardware selectors;
//! `exclude.rs` exclude entries; `measure.rs` the measure policy and its bounds
//! ([`check_measure`]); `weights.rs` real weights per model; `points.rs` the matrix's points after excludes, which the size
//! limit counts and [`crate::cell`] turns into cells.
//!
//! Must never: do I/O, read the clock, depend on [`crate::cell`] (cells are made from
//! specs, never the other way), or accept a spec with any diagnostic.

use serde::{Deserialize, Serialize};

use crate::catalog::{Mode, Precision};
use crate::diagnostic::{named_enum, Diagnostics};

mod check;
mod exclude;
mod hardware;
mod measure;
mod model;
pub(crate) mod points;
mod raw;
#[cfg(test)]
mod tests;
mod weights;

pub use crate::hardware::HardwareKind;
pub use exclude::Exclude;
pub use hardware::HardwareSelector;
pub use measure::{check_measure, MeasurePolicy, MAX_MEASURE_SECONDS, MAX_SAMPLES};
pub use weights::{ModelWeights, MAX_SOURCE_CHARS, MAX_WEIGHTS_ENTRIES};

use check::Checker;

named_enum! {
    /// What executes the model: the built-in candle engine or an external runner.
    pub enum Engine as "engine" {
        Candle = "candle",
        /// Eager PyTorch.
        Torch = "torch",
        /// PyTorch with the model through `torch.compile` (the same runner, `--compile`).
        TorchCompile = "torch-compile",
        Onnxruntime = "onnxruntime",
        /// ONNX Runtime with its OpenVINO execution provider (the same runner, `--provider openvino`).
        OnnxruntimeOpenvino = "onnxruntime-openvino",
        Openvino = "openvino",
        Llamacpp = "llamacpp",
    }
}

named_enum! {
    /// How one hardware selector becomes cells; see [`crate::cell::expand`].
    pub enum FanOut as "fan-out" {
        /// One cell per selector, run by any one matching agent.
        Any = "any",
        /// One cell per hardware class matching the selector.
        EachHardwareClass = "each_hardware_class",
        /// One cell per registered agent and matching class, pinned to that agent.
        EachAgent = "each_agent",
    }
}

/// Every engine name a spec may use.
pub const ENGINES: &[&str] = Engine::NAMES;

/// Widest batch or sequence length accepted: far beyond any real run, small enough
/// that products of them stay meaningful.
pub const MAX_AXIS_VALUE: i64 = 1 << 20;

/// A validated sweep spec.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepSpec {
    pub name: String,
    pub matrix: Matrix,
    pub measure: MeasurePolicy,
    pub policy: Policy,
    /// Real weights per model and precision; cells not named here run on seeded weights.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub weights: Vec<ModelWeights>,
}

impl SweepSpec {
    /// The real weights the spec names for `model` at `precision`, if any.
    pub fn weights_for(&self, model: &str, precision: Precision) -> Option<&ModelWeights> {
        self.weights.iter().find(|w| w.serves(model, precision))
    }
}

/// The axes of the sweep. Values are unique per axis and kept in the user's order;
/// cell expansion sorts, so the order never matters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Matrix {
    /// Catalog names, in the catalog's spelling.
    pub models: Vec<String>,
    pub hardware: Vec<HardwareSelector>,
    pub fan_out: FanOut,
    pub batch_sizes: Vec<u32>,
    pub sequence_lengths: Vec<u32>,
    pub precisions: Vec<Precision>,
    pub modes: Vec<Mode>,
    pub engines: Vec<Engine>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<Exclude>,
}

/// How the coordinator schedules the sweep's cells.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Higher runs first.
    pub priority: i32,
    pub max_attempts: u32,
    pub lease_seconds: u32,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy { priority: 0, max_attempts: 3, lease_seconds: 120 }
    }
}

/// Most values one axis list may hold (a matrix axis or an exclude entry's).
pub const MAX_AXIS_VALUES: usize = 1_000;
/// Most exclude entries a matrix may hold.
pub const MAX_EXCLUDE_RULES: usize = 1_000;
/// Most (combination, exclude value) tests counting a matrix's cells may take: 5·10⁷,
/// about a second on a slow core. A spec over it is refused by arithmetic, before the walk.
pub const MAX_EXCLUDE_CHECKS: usize = 50_000_000;

/// Limits the coordinator applies to submitted specs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most cells one sweep may expand to, counted after excludes with hardware classes
    /// unresolved (one per selector). The default is 10 000.
    pub max_cells: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { max_cells: 10_000 }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Toml,
    Json,
}

impl Format {
    /// The format a file extension (`"toml"`, `"json"`, any case) names.
    pub fn from_extension(extension: &str) -> Option<Format> {
        match extension.to_ascii_lowercase().as_str() {
            "toml" => Some(Format::Toml),
            "json" => Some(Format::Json),
            _ => None,
        }
    }
}

pub fn parse_toml(text: &str, limits: &Limits) -> Result<SweepSpec, Diagnostics> {
    parse(text, Format::Toml, limits)
}

pub fn parse_json(text: &str, limits: &Limits) -> Result<SweepSpec, Diagnostics> {
    parse(text, Format::Json, limits)
}

/// Reads and validates a spec. A syntax or shape error (bad TOML, an unknown key, a
/// string where a number belongs) stops reading and is the one diagnostic, with its
/// line and column; otherwise every validation problem is reported together.
pub fn parse(text: &str, format: Format, limits: &Limits) -> Result<SweepSpec, Diagnostics> {
    // Unknown keys first, each named, so that a typo does not hide the other problems.
    let mut tree = raw::tree(text, format).map_err(|d| Diagnostics(vec![d]))?;
    let mut checker = Checker::default();
    checker.unknown_keys(&mut tree);
    let raw = if checker.diagnostics.is_empty() {
        // Parsed from the text again, so that a wrong type is reported at its line.
        raw::from_text(text, format)
    } else {
        raw::from_tree(tree)
    };
    match raw {
        Ok(raw) => {
            let spec = checker.spec(&raw, limits);
            if checker.diagnostics.is_empty() {
                return Ok(spec);
            }
        }
        Err(d) => checker.diagnostics.push(d),
    }
    Err(Diagnostics(checker.diagnostics))
}

/// Case-insensitive glob options used for every pattern in a spec: names of models and
/// devices are written with inconsistent case, and `/` is not special.
pub(crate) const GLOB_OPTIONS: glob::MatchOptions =
    glob::MatchOptions { case_sensitive: false, require_literal_separator: false, require_literal_leading_dot: false };

/// Whether `text` matches glob `pattern`; an invalid pattern (only possible in a spec
/// that skipped validation) matches literally.
pub(crate) fn glob_matches(pattern: &str, text: &str) -> bool {
    match glob::Pattern::new(pattern) {
        Ok(p) => p.matches_with(text, GLOB_OPTIONS),
        Err(_) => pattern.eq_ignore_ascii_case(text),
    }
}
