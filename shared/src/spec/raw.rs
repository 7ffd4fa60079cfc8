//! The raw form of a spec: every key optional and every list element as written, so that
//! validation can report everything at once; the keys each table may have; and reading
//! text into that form, a syntax error becoming one diagnostic with its line and column.
//!
//! Must never: judge a value (that is the checker's), or accept an unknown key.

use serde::Deserialize;
use serde_json::Value;

use super::Format;
use crate::diagnostic::Diagnostic;

/// The text as a tree of values, unknown keys and all.
pub(super) fn tree(text: &str, format: Format) -> Result<Value, Diagnostic> {
    match format {
        Format::Toml => toml::from_str::<Value>(text).map_err(|e| toml_diagnostic(text, &e)),
        Format::Json => serde_json::from_str::<Value>(text).map_err(|e| json_diagnostic(text, &e)),
    }
}

/// The raw spec read from the text, so that a wrong type is reported at its line.
pub(super) fn from_text(text: &str, format: Format) -> Result<RawSpec, Diagnostic> {
    match format {
        Format::Toml => toml::from_str::<RawSpec>(text).map_err(|e| toml_diagnostic(text, &e)),
        Format::Json => serde_json::from_str::<RawSpec>(text).map_err(|e| json_diagnostic(text, &e)),
    }
}

/// The raw spec read from a tree whose unknown keys were already reported and removed.
pub(super) fn from_tree(tree: Value) -> Result<RawSpec, Diagnostic> {
    serde_json::from_value::<RawSpec>(tree)
        .map_err(|e| Diagnostic::new("spec", "a value of the wrong type", format!("a valid sweep spec: {e}")))
}

/// The keys each table of a spec may have (hardware selectors and excludes are checked
/// entry by entry later, with their own paths).
pub(super) const KNOWN_KEYS: &[(&str, &[&str])] = &[
    ("", &["name", "matrix", "measure", "policy", "weights"]),
    (
        "matrix",
        &[
            "models",
            "hardware",
            "fan_out",
            "batch_sizes",
            "sequence_lengths",
            "precisions",
            "modes",
            "engines",
            "exclude",
        ],
    ),
    ("measure", &["warmup", "min_iterations", "min_seconds", "max_seconds", "target_relative_ci"]),
    ("measure.warmup", &["iterations", "min_seconds"]),
    ("policy", &["priority", "max_attempts", "lease_seconds"]),
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSpec {
    pub(super) name: Option<String>,
    pub(super) matrix: Option<RawMatrix>,
    #[serde(default)]
    pub(super) measure: RawMeasure,
    #[serde(default)]
    pub(super) policy: RawPolicy,
    /// `[[weights]]` entries; each one's keys are checked by serde, with its line.
    #[serde(default)]
    pub(super) weights: Vec<super::weights::RawWeights>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMatrix {
    pub(super) models: Option<Vec<String>>,
    /// Strings or tables: checked by hand to report each entry's problems.
    pub(super) hardware: Option<Vec<Value>>,
    pub(super) fan_out: Option<String>,
    pub(super) batch_sizes: Option<Vec<i64>>,
    pub(super) sequence_lengths: Option<Vec<i64>>,
    pub(super) precisions: Option<Vec<String>>,
    pub(super) modes: Option<Vec<String>>,
    pub(super) engines: Option<Vec<String>>,
    /// Tables with any keys: checked by hand so unknown axes get a path.
    #[serde(default)]
    pub(super) exclude: Vec<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMeasure {
    #[serde(default)]
    pub(super) warmup: RawWarmup,
    pub(super) min_iterations: Option<i64>,
    pub(super) min_seconds: Option<f64>,
    pub(super) max_seconds: Option<f64>,
    pub(super) target_relative_ci: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWarmup {
    pub(super) iterations: Option<i64>,
    pub(super) min_seconds: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPolicy {
    pub(super) priority: Option<i64>,
    pub(super) max_attempts: Option<i64>,
    pub(super) lease_seconds: Option<i64>,
}

// ---------------------------------------------------------------------------------
// Syntax errors.

fn toml_diagnostic(text: &str, error: &toml::de::Error) -> Diagnostic {
    let offset = error.span().map_or(0, |span| span.start);
    let (line, column) = line_and_column(text, offset);
    syntax_diagnostic(text, line, column, error.message())
}

fn json_diagnostic(text: &str, error: &serde_json::Error) -> Diagnostic {
    // serde_json appends " at line L column C" to its message; the position goes into
    // the path instead.
    let full = error.to_string();
    let message = full.rsplit_once(" at line ").map_or(full.as_str(), |(m, _)| m);
    syntax_diagnostic(text, error.line(), error.column().max(1), message)
}

fn syntax_diagnostic(text: &str, line: usize, column: usize, message: &str) -> Diagnostic {
    let source_line = text.lines().nth(line.saturating_sub(1)).unwrap_or("").trim();
    let shown: String = source_line.chars().take(60).collect();
    Diagnostic::new(
        format!("line {line}, column {column}"),
        format!("`{shown}`"),
        format!("a valid sweep spec: {}", message.trim()),
    )
}

/// 1-based line and column (in characters) of a byte offset.
fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}
