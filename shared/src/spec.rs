//! The sweep spec: what a user submits (TOML, or JSON), read into a permissive raw form
//! and then validated into a typed [`SweepSpec`], reporting every problem at once as a
//! [`Diagnostic`] that names the field path, the bad value and what is allowed.
//!
//! The typed [`SweepSpec`] is a stored format (the coordinator replicates it), so its
//! serde shape is stable: change it only with a migration.
//!
//! Must never: do I/O, read the clock, expand the matrix (that is [`crate::cell`]), or
//! accept a spec with any diagnostic.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::catalog::{self, Mode, Precision};
use crate::cell;
use crate::diagnostic::{named_enum, Diagnostic, Diagnostics};

named_enum! {
    /// The kind of accelerator (or none) a cell runs on: the part of a hardware class
    /// before the `/`.
    pub enum HardwareKind as "hardware kind" {
        Cpu = "cpu",
        Cuda = "cuda",
        Rocm = "rocm",
        Metal = "metal",
        /// Qualcomm AI Engine (Snapdragon NPU) through QNN.
        Qnn = "qnn",
    }
}

named_enum! {
    /// What executes the model: the built-in candle engine or an external runner.
    pub enum Engine as "engine" {
        Candle = "candle",
        Torch = "torch",
        Onnxruntime = "onnxruntime",
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

/// Longest time any measure setting may ask for: a day, like the longest lease. A cell
/// that measures longer is stuck, not slow.
pub const MAX_MEASURE_SECONDS: f64 = 86_400.0;

/// A validated sweep spec.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepSpec {
    pub name: String,
    pub matrix: Matrix,
    pub measure: MeasurePolicy,
    pub policy: Policy,
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

/// Which machines a cell may run on: a kind plus optional constraints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HardwareSelector {
    pub kind: HardwareKind,
    /// Least device memory; checked against an agent's fingerprint by the scheduler
    /// (a hardware class string does not carry it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_memory_gib: Option<f64>,
    /// Glob over the device name, the part of a hardware class after the `/`
    /// (case-insensitive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// Removes every cell for which each named axis matches one of its values. An empty
/// list means the axis is not named (validation refuses an entry naming none, which
/// would remove every cell). String axes hold globs (case-insensitive); the
/// hardware axis matches a selector's kind or a resolved hardware class.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exclude {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub models: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hardware: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub batch_sizes: Vec<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sequence_lengths: Vec<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub precisions: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub modes: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub engines: Vec<String>,
}

/// How the engine measures one cell (see DESIGN.md, "Measurement").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeasurePolicy {
    pub warmup_iterations: u32,
    pub warmup_min_seconds: f64,
    pub min_iterations: u32,
    pub min_seconds: f64,
    pub max_seconds: f64,
    /// Stop early once half the 95% CI of the median, relative to it, is below this.
    pub target_relative_ci: f64,
}

impl Default for MeasurePolicy {
    fn default() -> MeasurePolicy {
        MeasurePolicy {
            warmup_iterations: 3,
            warmup_min_seconds: 1.0,
            min_iterations: 20,
            min_seconds: 2.0,
            max_seconds: 120.0,
            target_relative_ci: 0.02,
        }
    }
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
    let tree = match format {
        Format::Toml => toml::from_str::<Value>(text).map_err(|e| toml_diagnostic(text, &e)),
        Format::Json => serde_json::from_str::<Value>(text).map_err(|e| json_diagnostic(text, &e)),
    };
    let mut tree = tree.map_err(|d| Diagnostics(vec![d]))?;
    let mut checker = Checker::default();
    checker.unknown_keys(&mut tree);
    let raw = if checker.diagnostics.is_empty() {
        // Parsed from the text again, so that a wrong type is reported at its line.
        match format {
            Format::Toml => toml::from_str::<RawSpec>(text).map_err(|e| toml_diagnostic(text, &e)),
            Format::Json => serde_json::from_str::<RawSpec>(text).map_err(|e| json_diagnostic(text, &e)),
        }
    } else {
        serde_json::from_value::<RawSpec>(tree)
            .map_err(|e| Diagnostic::new("spec", "a value of the wrong type", format!("a valid sweep spec: {e}")))
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

/// Checks a measure policy given outside a spec (a local run's flags) against the very
/// bounds a spec's `[measure]` has, every problem at once, with the spec's paths
/// (`measure.max_seconds`, …).
pub fn check_measure(policy: &MeasurePolicy) -> Result<(), Diagnostics> {
    let raw = RawMeasure {
        warmup: RawWarmup {
            iterations: Some(i64::from(policy.warmup_iterations)),
            min_seconds: Some(policy.warmup_min_seconds),
        },
        min_iterations: Some(i64::from(policy.min_iterations)),
        min_seconds: Some(policy.min_seconds),
        max_seconds: Some(policy.max_seconds),
        target_relative_ci: Some(policy.target_relative_ci),
    };
    let mut checker = Checker::default();
    checker.measure(&raw);
    if checker.diagnostics.is_empty() {
        Ok(())
    } else {
        Err(Diagnostics(checker.diagnostics))
    }
}

/// The keys each table of a spec may have (hardware selectors and excludes are checked
/// entry by entry later, with their own paths).
const KNOWN_KEYS: &[(&str, &[&str])] = &[
    ("", &["name", "matrix", "measure", "policy"]),
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

impl HardwareSelector {
    /// A selector of `kind` with no constraints.
    pub fn of_kind(kind: HardwareKind) -> HardwareSelector {
        HardwareSelector { kind, min_memory_gib: None, name: None }
    }

    /// Whether a hardware class (`kind/device name`, e.g. `cuda/NVIDIA H100 80GB HBM3`)
    /// satisfies the kind and the name glob. `min_memory_gib` is not in a class string
    /// and is left to the scheduler.
    pub fn matches_class(&self, class: &str) -> bool {
        let (kind, device) = class.split_once('/').unwrap_or((class, ""));
        kind.eq_ignore_ascii_case(self.kind.as_str())
            && self.name.as_deref().is_none_or(|pattern| glob_matches(pattern, device))
    }
}

/// `cuda`, or `cuda[min_memory_gib=24,name=*H100*]`: how selectors are shown.
impl fmt::Display for HardwareSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind.as_str())?;
        let mut constraints = Vec::new();
        if let Some(gib) = self.min_memory_gib {
            constraints.push(format!("min_memory_gib={gib}"));
        }
        if let Some(name) = &self.name {
            constraints.push(format!("name={name}"));
        }
        if !constraints.is_empty() {
            write!(f, "[{}]", constraints.join(","))?;
        }
        Ok(())
    }
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

// ---------------------------------------------------------------------------------
// Raw form: every key optional and every list element as written, so that validation
// can report everything at once. Unknown keys are refused by serde.

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    name: Option<String>,
    matrix: Option<RawMatrix>,
    #[serde(default)]
    measure: RawMeasure,
    #[serde(default)]
    policy: RawPolicy,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMatrix {
    models: Option<Vec<String>>,
    /// Strings or tables: checked by hand to report each entry's problems.
    hardware: Option<Vec<Value>>,
    fan_out: Option<String>,
    batch_sizes: Option<Vec<i64>>,
    sequence_lengths: Option<Vec<i64>>,
    precisions: Option<Vec<String>>,
    modes: Option<Vec<String>>,
    engines: Option<Vec<String>>,
    /// Tables with any keys: checked by hand so unknown axes get a path.
    #[serde(default)]
    exclude: Vec<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMeasure {
    #[serde(default)]
    warmup: RawWarmup,
    min_iterations: Option<i64>,
    min_seconds: Option<f64>,
    max_seconds: Option<f64>,
    target_relative_ci: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWarmup {
    iterations: Option<i64>,
    min_seconds: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    priority: Option<i64>,
    max_attempts: Option<i64>,
    lease_seconds: Option<i64>,
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

// ---------------------------------------------------------------------------------
// Validation. Each check records diagnostics and returns the valid part, so that later
// checks (duplicates, the size limit) still run on what is left.

#[derive(Default)]
struct Checker {
    diagnostics: Vec<Diagnostic>,
}

/// Why one element was refused: its rendering and what was expected.
struct Refusal {
    value: String,
    expected: String,
}

fn refuse(value: impl Into<String>, expected: impl Into<String>) -> Refusal {
    Refusal { value: value.into(), expected: expected.into() }
}

impl Checker {
    fn report(&mut self, path: impl Into<String>, value: impl Into<String>, expected: impl Into<String>) {
        self.diagnostics.push(Diagnostic::new(path, value, expected));
    }

    fn spec(&mut self, raw: &RawSpec, limits: &Limits) -> SweepSpec {
        let name = self.name(raw.name.as_deref());
        let matrix = match &raw.matrix {
            Some(m) => self.matrix(m),
            None => {
                self.report("matrix", "nothing", "a [matrix] table with models, hardware and batch_sizes");
                empty_matrix()
            }
        };
        let spec = SweepSpec { name, matrix, measure: self.measure(&raw.measure), policy: self.policy(&raw.policy) };
        self.size(&spec, limits);
        spec
    }

    fn name(&mut self, raw: Option<&str>) -> String {
        let Some(name) = raw else {
            self.report("name", "nothing", "a sweep name");
            return String::new();
        };
        let ok = !name.trim().is_empty() && name.chars().count() <= 128 && !name.chars().any(char::is_control);
        if !ok {
            self.report("name", format!("{name:?}"), "1 to 128 characters, not blank, no control characters");
        }
        name.to_owned()
    }

    fn matrix(&mut self, raw: &RawMatrix) -> Matrix {
        let models = self.axis("matrix.models", raw.models.as_deref(), None, model);
        let hardware = self.axis("matrix.hardware", raw.hardware.as_deref(), None, hardware_selector);
        let fan_out = match raw.fan_out.as_deref().map(str::parse::<FanOut>) {
            None => FanOut::EachHardwareClass,
            Some(Ok(f)) => f,
            Some(Err(e)) => {
                self.diagnostics.push(e.at("matrix.fan_out"));
                FanOut::EachHardwareClass
            }
        };
        let batch_sizes = self.axis("matrix.batch_sizes", raw.batch_sizes.as_deref(), None, axis_integer);
        let sequence_lengths =
            self.axis("matrix.sequence_lengths", raw.sequence_lengths.as_deref(), Some(vec![128]), axis_integer);
        let precisions =
            self.axis("matrix.precisions", raw.precisions.as_deref(), Some(vec![Precision::Fp32]), named::<Precision>);
        let modes = self.axis("matrix.modes", raw.modes.as_deref(), Some(vec![Mode::Inference]), named::<Mode>);
        let engines = self.axis("matrix.engines", raw.engines.as_deref(), Some(vec![Engine::Candle]), named::<Engine>);
        let exclude = raw
            .exclude
            .iter()
            .enumerate()
            .filter_map(|(i, entry)| self.exclude(&format!("matrix.exclude[{i}]"), entry))
            .collect();
        Matrix { models, hardware, fan_out, batch_sizes, sequence_lengths, precisions, modes, engines, exclude }
    }

    /// One axis: present (or defaulted), not empty, every element valid and unique.
    fn axis<R, T: PartialEq + fmt::Display>(
        &mut self,
        path: &str,
        raw: Option<&[R]>,
        default: Option<Vec<T>>,
        parse: impl Fn(&R) -> Result<T, Refusal>,
    ) -> Vec<T> {
        let Some(raw) = raw else {
            if default.is_none() {
                self.report(path, "nothing", "a list with at least one value");
            }
            return default.unwrap_or_default();
        };
        if raw.is_empty() {
            self.report(path, "[]", "a list with at least one value");
        }
        let mut values: Vec<T> = Vec::new();
        for (i, element) in raw.iter().enumerate() {
            match parse(element) {
                Err(refusal) => self.report(format!("{path}[{i}]"), refusal.value, refusal.expected),
                Ok(value) if values.contains(&value) => {
                    self.report(format!("{path}[{i}]"), format!("`{value}` again"), "each value once")
                }
                Ok(value) => values.push(value),
            }
        }
        values
    }

    fn exclude(&mut self, path: &str, raw: &Value) -> Option<Exclude> {
        let Value::Object(axes) = raw else {
            self.report(path, render(raw), "a table of axis = [values]");
            return None;
        };
        if axes.is_empty() {
            self.report(path, "{}", "at least one axis (an empty exclude would remove every cell)");
            return None;
        }
        let mut entry = Exclude::default();
        // Sorted: serde_json's map order depends on a cargo feature some other crate
        // may turn on, and the diagnostics must come out the same everywhere.
        let mut axes: Vec<(&String, &Value)> = axes.iter().collect();
        axes.sort_by_key(|(axis, _)| *axis);
        for (axis, values) in axes {
            let axis_path = format!("{path}.{axis}");
            let Some(values) = self.exclude_values(&axis_path, values) else {
                continue;
            };
            match axis.as_str() {
                "batch_sizes" => entry.batch_sizes = self.axis(&axis_path, Some(values), None, json_axis_integer),
                "sequence_lengths" => {
                    entry.sequence_lengths = self.axis(&axis_path, Some(values), None, json_axis_integer)
                }
                other => match glob_axis(&mut entry, other) {
                    Some((slot, known, expected)) => *slot = self.patterns(&axis_path, values, known, expected),
                    None => self.report(
                        path,
                        format!("axis `{axis}`"),
                        "only the axes models, hardware, batch_sizes, sequence_lengths, \
                         precisions, modes, engines",
                    ),
                },
            }
        }
        Some(entry)
    }

    /// An exclude axis must be a non-empty list.
    fn exclude_values<'v>(&mut self, path: &str, values: &'v Value) -> Option<&'v [Value]> {
        match values {
            Value::Array(list) if !list.is_empty() => Some(list),
            other => {
                self.report(path, render(other), "a non-empty list");
                None
            }
        }
    }

    /// Glob patterns on one exclude axis, each valid and matching some known value.
    fn patterns(
        &mut self,
        path: &str,
        values: &[Value],
        known: impl Fn(&glob::Pattern) -> bool,
        expected: &str,
    ) -> Vec<String> {
        self.axis(path, Some(values), None, |value| {
            let Value::String(text) = value else {
                return Err(refuse(render(value), expected));
            };
            let pattern = compile_glob(text)?;
            if known(&pattern) {
                Ok(text.clone())
            } else {
                Err(refuse(format!("`{text}`"), expected))
            }
        })
    }

    fn measure(&mut self, raw: &RawMeasure) -> MeasurePolicy {
        let default = MeasurePolicy::default();
        let policy = MeasurePolicy {
            warmup_iterations: self.integer(
                "measure.warmup.iterations",
                raw.warmup.iterations,
                0,
                1_000_000,
                default.warmup_iterations,
            ),
            warmup_min_seconds: self.seconds(
                "measure.warmup.min_seconds",
                raw.warmup.min_seconds,
                false,
                default.warmup_min_seconds,
            ),
            min_iterations: self.integer(
                "measure.min_iterations",
                raw.min_iterations,
                1,
                crate::result::MAX_SAMPLES as u32,
                default.min_iterations,
            ),
            min_seconds: self.seconds("measure.min_seconds", raw.min_seconds, false, default.min_seconds),
            max_seconds: self.seconds("measure.max_seconds", raw.max_seconds, true, default.max_seconds),
            target_relative_ci: self.fraction(
                "measure.target_relative_ci",
                raw.target_relative_ci,
                default.target_relative_ci,
            ),
        };
        if policy.min_seconds > policy.max_seconds {
            self.report(
                "measure.min_seconds",
                format!("{} (max_seconds is {})", policy.min_seconds, policy.max_seconds),
                "at most measure.max_seconds",
            );
        }
        policy
    }

    fn policy(&mut self, raw: &RawPolicy) -> Policy {
        let default = Policy::default();
        let priority = match raw.priority {
            None => default.priority,
            Some(p) => i32::try_from(p).unwrap_or_else(|_| {
                self.report("policy.priority", p.to_string(), "a 32-bit signed integer");
                default.priority
            }),
        };
        Policy {
            priority,
            max_attempts: self.integer("policy.max_attempts", raw.max_attempts, 1, 100, default.max_attempts),
            // A day: a lease longer than that is a stuck cell, not a slow one.
            lease_seconds: self.integer("policy.lease_seconds", raw.lease_seconds, 1, 86_400, default.lease_seconds),
        }
    }

    /// Reports every unknown key of the spec's tables, with its path, and removes it.
    fn unknown_keys(&mut self, tree: &mut Value) {
        for (path, known) in KNOWN_KEYS {
            let mut table = Some(&mut *tree);
            for part in path.split('.').filter(|p| !p.is_empty()) {
                table = table.and_then(|t| t.get_mut(part));
            }
            let Some(Value::Object(map)) = table else { continue };
            let unknown: Vec<String> = map.keys().filter(|k| !known.contains(&k.as_str())).cloned().collect();
            for key in unknown {
                map.remove(&key);
                let at = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
                self.report(at, format!("key `{key}`"), format!("only the keys {}", known.join(", ")));
            }
        }
    }

    fn integer(&mut self, path: &str, raw: Option<i64>, min: u32, max: u32, default: u32) -> u32 {
        let Some(value) = raw else { return default };
        match u32::try_from(value) {
            Ok(v) if (min..=max).contains(&v) => v,
            _ => {
                self.report(path, value.to_string(), format!("an integer from {min} to {max}"));
                default
            }
        }
    }

    /// Finite and non-negative; `positive` also refuses 0.
    /// A time in seconds, at most [`MAX_MEASURE_SECONDS`]: larger values are not a
    /// measurement policy but a cell that never ends (and overflow a `Duration`).
    fn seconds(&mut self, path: &str, raw: Option<f64>, positive: bool, default: f64) -> f64 {
        let Some(value) = raw else { return default };
        let ok = value.is_finite() && (value > 0.0 || (!positive && value == 0.0)) && value <= MAX_MEASURE_SECONDS;
        if ok {
            return value;
        }
        let expected = if positive {
            format!("a number of seconds > 0 and <= {MAX_MEASURE_SECONDS}")
        } else {
            format!("a number of seconds >= 0 and <= {MAX_MEASURE_SECONDS}")
        };
        self.report(path, value.to_string(), expected);
        default
    }

    fn fraction(&mut self, path: &str, raw: Option<f64>, default: f64) -> f64 {
        let Some(value) = raw else { return default };
        if value > 0.0 && value < 1.0 {
            return value;
        }
        self.report(path, value.to_string(), "a number strictly between 0 and 1");
        default
    }

    /// The matrix must expand to at least one cell and at most `limits.max_cells`,
    /// counted with hardware classes unresolved (one per selector).
    fn size(&mut self, spec: &SweepSpec, limits: &Limits) {
        let m = &spec.matrix;
        let upper_bound = [
            m.models.len(),
            m.hardware.len(),
            m.batch_sizes.len(),
            m.sequence_lengths.len(),
            m.precisions.len(),
            m.modes.len(),
            m.engines.len(),
        ]
        .iter()
        .fold(1usize, |product, n| product.saturating_mul(*n));
        // Counting walks every combination; beyond a few times the limit the product
        // before excludes is size enough for the message.
        let exact_count_up_to = limits.max_cells.saturating_mul(4).max(1_000_000);
        if upper_bound > exact_count_up_to {
            self.report(
                "matrix",
                format!("{upper_bound} cells before excludes"),
                format!("at most {} cells", limits.max_cells),
            );
            return;
        }
        let cells = cell::count(spec, &[]);
        if cells > limits.max_cells {
            self.report("matrix", format!("{cells} cells"), format!("at most {} cells", limits.max_cells));
        } else if cells == 0 && self.diagnostics.is_empty() {
            self.report("matrix", "0 cells", "at least one cell (every combination is excluded or unsupported)");
        }
    }
}

fn empty_matrix() -> Matrix {
    Matrix {
        models: Vec::new(),
        hardware: Vec::new(),
        fan_out: FanOut::EachHardwareClass,
        batch_sizes: Vec::new(),
        sequence_lengths: Vec::new(),
        precisions: Vec::new(),
        modes: Vec::new(),
        engines: Vec::new(),
        exclude: Vec::new(),
    }
}

// ---------------------------------------------------------------------------------
// Element parsers: one raw element to a typed value, or why not.

fn model(raw: &String) -> Result<String, Refusal> {
    match catalog::lookup(raw) {
        Some(m) => Ok(m.name.to_owned()),
        None => {
            Err(refuse(format!("`{raw}`"), format!("a catalog model; closest: {}", closest_models(raw).join(", "))))
        }
    }
}

fn named<T: std::str::FromStr<Err = crate::diagnostic::UnknownName>>(raw: &String) -> Result<T, Refusal> {
    raw.parse::<T>().map_err(|e| refuse(format!("`{raw}`"), format!("one of {}", e.allowed.join(", "))))
}

fn axis_integer(raw: &i64) -> Result<u32, Refusal> {
    if *raw < 1 {
        Err(refuse(raw.to_string(), "an integer >= 1"))
    } else if *raw > MAX_AXIS_VALUE {
        Err(refuse(raw.to_string(), format!("an integer <= {MAX_AXIS_VALUE}")))
    } else {
        u32::try_from(*raw).map_err(|_| refuse(raw.to_string(), "a 32-bit integer"))
    }
}

fn json_axis_integer(raw: &Value) -> Result<u32, Refusal> {
    match raw.as_i64() {
        Some(n) => axis_integer(&n),
        None => Err(refuse(render(raw), "an integer >= 1")),
    }
}

const SELECTOR_KEYS: &str = "kind, min_memory_gib, name";

fn hardware_selector(raw: &Value) -> Result<HardwareSelector, Refusal> {
    match raw {
        Value::String(kind) => Ok(HardwareSelector::of_kind(hardware_kind(kind)?)),
        Value::Object(table) => selector_table(table),
        other => Err(refuse(
            render(other),
            format!("a hardware kind ({}) or a table {{ {SELECTOR_KEYS} }}", HardwareKind::NAMES.join(", ")),
        )),
    }
}

fn hardware_kind(raw: &str) -> Result<HardwareKind, Refusal> {
    raw.parse::<HardwareKind>()
        .map_err(|e| refuse(format!("`{raw}`"), format!("a hardware kind, one of {}", e.allowed.join(", "))))
}

/// A table selector. Problems inside one table are reported together in one refusal,
/// since the path already names the table.
fn selector_table(table: &serde_json::Map<String, Value>) -> Result<HardwareSelector, Refusal> {
    if let Some(unknown) = table.keys().filter(|k| !["kind", "min_memory_gib", "name"].contains(&k.as_str())).min() {
        return Err(refuse(format!("key `{unknown}`"), format!("only the keys {SELECTOR_KEYS}")));
    }
    let kind = match table.get("kind") {
        Some(Value::String(kind)) => hardware_kind(kind)?,
        Some(other) => return Err(refuse(format!("kind = {}", render(other)), "a hardware kind")),
        None => return Err(refuse(render(&Value::Object(table.clone())), "a table with a `kind`")),
    };
    let min_memory_gib = match table.get("min_memory_gib") {
        None => None,
        Some(v) => match v.as_f64() {
            Some(gib) if gib.is_finite() && gib > 0.0 => Some(gib),
            _ => return Err(refuse(format!("min_memory_gib = {}", render(v)), "a number of GiB > 0")),
        },
    };
    let name = match table.get("name") {
        None => None,
        Some(Value::String(pattern)) if !pattern.is_empty() => {
            compile_glob(pattern)?;
            Some(pattern.clone())
        }
        Some(other) => {
            return Err(refuse(format!("name = {}", render(other)), "a non-empty glob over the device name"))
        }
    };
    Ok(HardwareSelector { kind, min_memory_gib, name })
}

/// A glob axis of an exclude entry: where its patterns go, which patterns mean
/// something on it, and how to say so.
type GlobAxis<'e> = (&'e mut Vec<String>, fn(&glob::Pattern) -> bool, &'static str);

fn glob_axis<'e>(entry: &'e mut Exclude, axis: &str) -> Option<GlobAxis<'e>> {
    let axis: GlobAxis<'e> = match axis {
        "models" => (&mut entry.models, matches_a_model, "a glob matching a catalog model"),
        "hardware" => {
            (&mut entry.hardware, matches_a_hardware_kind, "a glob matching a hardware kind or class (kind/device)")
        }
        "precisions" => (&mut entry.precisions, |p| matches_a_name(p, Precision::NAMES), "a glob matching a precision"),
        "modes" => (&mut entry.modes, |p| matches_a_name(p, Mode::NAMES), "a glob matching a mode"),
        "engines" => (&mut entry.engines, |p| matches_a_name(p, Engine::NAMES), "a glob matching an engine"),
        _ => return None,
    };
    Some(axis)
}

fn compile_glob(text: &str) -> Result<glob::Pattern, Refusal> {
    glob::Pattern::new(text)
        .map_err(|e| refuse(format!("`{text}`"), format!("a valid glob pattern ({} at position {})", e.msg, e.pos)))
}

fn matches_a_model(pattern: &glob::Pattern) -> bool {
    catalog::all().iter().any(|m| pattern.matches_with(m.name, GLOB_OPTIONS))
}

fn matches_a_name(pattern: &glob::Pattern, names: &[&str]) -> bool {
    names.iter().any(|n| pattern.matches_with(n, GLOB_OPTIONS))
}

/// A kind (`cuda`, `c*`), or a class pattern whose part before the `/` matches a kind.
fn matches_a_hardware_kind(pattern: &glob::Pattern) -> bool {
    let kind_part = pattern.as_str().split_once('/').map_or(pattern.as_str(), |(k, _)| k);
    glob::Pattern::new(kind_part).is_ok_and(|k| matches_a_name(&k, HardwareKind::NAMES))
}

/// Values as the user wrote them: strings in backticks, the rest as JSON.
fn render(value: &Value) -> String {
    match value {
        Value::String(s) => format!("`{s}`"),
        other => other.to_string(),
    }
}

/// Up to three catalog names nearest to `name` (case-insensitive): by edit distance to
/// the whole name, or to its prefix of the same length plus one, so that a truncated
/// name (`bert-bas`) finds its model before a short one that happens to be near.
fn closest_models(name: &str) -> Vec<&'static str> {
    let wanted = name.to_ascii_lowercase();
    let score = |candidate: &str| {
        let candidate = candidate.to_ascii_lowercase();
        let prefix: String = candidate.chars().take(wanted.chars().count()).collect();
        edit_distance(&wanted, &candidate).min(edit_distance(&wanted, &prefix) + 1)
    };
    let mut scored: Vec<(usize, &'static str)> = catalog::all().iter().map(|m| (score(m.name), m.name)).collect();
    scored.sort();
    scored.into_iter().take(3).map(|(_, name)| name).collect()
}

/// Levenshtein distance over chars.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    const DESIGN_EXAMPLE: &str = r#"
name = "nightly-text"
[matrix]
models = ["bert-base-uncased", "t5-small", "vit-base-patch16-224"]
hardware = ["cpu", "cuda"]          # selectors; also { kind = "cuda", min_memory_gib = 24 }
fan_out = "each_hardware_class"     # or "any" (one cell per selector) / "each_agent"
batch_sizes = [1, 4, 16, 64]
sequence_lengths = [128]
precisions = ["fp32", "fp16", "bf16", "q8_0", "q4_0"]
modes = ["inference", "training"]
engines = ["candle"]
exclude = [{ models = ["llama-*"], precisions = ["fp32"], hardware = ["cpu"] }]
[measure]
warmup = { iterations = 3, min_seconds = 1.0 }
min_iterations = 20
min_seconds = 2.0
max_seconds = 120
target_relative_ci = 0.02           # stop early once the 95% CI of the median is this tight
[policy]
priority = 0
max_attempts = 3
lease_seconds = 120
"#;

    fn valid(text: &str) -> SweepSpec {
        parse_toml(text, &Limits::default()).expect("a valid spec")
    }

    fn problems(text: &str, format: Format) -> String {
        let diagnostics = parse(text, format, &Limits::default()).expect_err("an invalid spec");
        diagnostics.to_string()
    }

    #[test]
    fn design_example_is_valid_and_has_144_cells() {
        let spec = valid(DESIGN_EXAMPLE);
        assert_eq!(spec.name, "nightly-text");
        assert_eq!(spec.measure, MeasurePolicy::default());
        assert_eq!(spec.policy, Policy::default());
        // 3 models × 2 selectors × 4 batches × 1 length × 3 float precisions (the
        // quantised ones are for decoders only) × 2 modes × 1 engine.
        assert_eq!(cell::count(&spec, &[]), 144);
        assert_eq!(cell::expand(&spec, &[]).len(), 144);
    }

    #[test]
    fn omitted_axes_and_tables_take_their_defaults() {
        let spec = valid(
            r#"
            name = "quick"
            [matrix]
            models = ["Bert-Tiny"]
            hardware = ["cpu", { kind = "cuda", min_memory_gib = 24, name = "*H100*" }]
            batch_sizes = [8, 1]
            "#,
        );
        let m = &spec.matrix;
        assert_eq!(m.models, ["bert-tiny"]);
        assert_eq!(m.hardware[1].to_string(), "cuda[min_memory_gib=24,name=*H100*]");
        assert_eq!(m.batch_sizes, [8, 1]);
        assert_eq!(m.sequence_lengths, [128]);
        assert_eq!(m.precisions, [Precision::Fp32]);
        assert_eq!(m.modes, [Mode::Inference]);
        assert_eq!(m.engines, [Engine::Candle]);
        assert_eq!(m.fan_out, FanOut::EachHardwareClass);
        assert!(m.exclude.is_empty());
        assert_eq!(spec.measure, MeasurePolicy::default());
        assert_eq!(spec.policy, Policy::default());
        assert_eq!(cell::count(&spec, &[]), 4);
    }

    #[test]
    fn a_typo_in_a_key_does_not_hide_the_other_problems() {
        let text = "name = \"x\"\nnmae = \"y\"\n[matrix]\nmodles = [\"bert-tiny\"]\nmodels = [\"bert-bas\"]\n\
                    hardware = [\"cpu\"]\nbatch_sizes = [1]\n[measure]\nmax_second = 5\nmin_seconds = -1\n";
        expect_test::expect![[r#"
            5 problems
              nmae: got key `nmae`, expected only the keys name, matrix, measure, policy
              matrix.modles: got key `modles`, expected only the keys models, hardware, fan_out, batch_sizes, sequence_lengths, precisions, modes, engines, exclude
              measure.max_second: got key `max_second`, expected only the keys warmup, min_iterations, min_seconds, max_seconds, target_relative_ci
              matrix.models[0]: got `bert-bas`, expected a catalog model; closest: bert-base-uncased, bert-tiny, vit-base-patch16-224
              measure.min_seconds: got -1, expected a number of seconds >= 0 and <= 86400"#]].assert_eq(&problems(text, Format::Toml));
        let json = r#"{"name": "x", "matrix": {"models": ["bert-tiny"], "hardware": ["cpu"], "batches": [1]}}"#;
        expect_test::expect![[r#"
            2 problems
              matrix.batches: got key `batches`, expected only the keys models, hardware, fan_out, batch_sizes, sequence_lengths, precisions, modes, engines, exclude
              matrix.batch_sizes: got nothing, expected a list with at least one value"#]].assert_eq(&problems(json, Format::Json));
    }

    #[test]
    fn measure_times_beyond_a_day_are_refused() {
        let text = "name = \"x\"\n[matrix]\nmodels = [\"bert-tiny\"]\nhardware = [\"cpu\"]\nbatch_sizes = [1]\n\
                    [measure]\nmax_seconds = 1e19\nwarmup = { min_seconds = 86401 }\n";
        expect_test::expect![[r#"
            2 problems
              measure.warmup.min_seconds: got 86401, expected a number of seconds >= 0 and <= 86400
              measure.max_seconds: got 10000000000000000000, expected a number of seconds > 0 and <= 86400"#]]
        .assert_eq(&problems(text, Format::Toml));
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let text = r#"
name = ""
[matrix]
models = ["bert-base-uncased", "bert-bas", "BERT-base-uncased", "gpt-5"]
hardware = ["cpu", "tpu", { kind = "cuda", min_memory_gib = -1 }, { kind = "cuda", colour = "red" }, { kind = "metal", name = "[" }, 3, "cpu"]
fan_out = "everywhere"
batch_sizes = [1, 0, -4, 4, 4, 2000000]
sequence_lengths = []
precisions = ["fp32", "int8"]
modes = ["inference", "serving"]
engines = ["candle", "tensorrt"]
exclude = [
  { models = ["lama-*"], colours = ["red"] },
  { },
  { precisions = ["fp64"], batch_sizes = [0], modes = [] },
  "everything",
]
[measure]
warmup = { iterations = -1, min_seconds = -1.0 }
min_iterations = 0
min_seconds = 10.0
max_seconds = 5.0
target_relative_ci = 1.5
[policy]
priority = 3000000000
max_attempts = 0
lease_seconds = 0
"#;
        expect_test::expect![[r#"
            34 problems
              name: got "", expected 1 to 128 characters, not blank, no control characters
              matrix.models[1]: got `bert-bas`, expected a catalog model; closest: bert-base-uncased, bert-tiny, vit-base-patch16-224
              matrix.models[2]: got `bert-base-uncased` again, expected each value once
              matrix.models[3]: got `gpt-5`, expected a catalog model; closest: vit-base-patch16-224, vit-tiny, bert-base-uncased
              matrix.hardware[1]: got `tpu`, expected a hardware kind, one of cpu, cuda, rocm, metal, qnn
              matrix.hardware[2]: got min_memory_gib = -1, expected a number of GiB > 0
              matrix.hardware[3]: got key `colour`, expected only the keys kind, min_memory_gib, name
              matrix.hardware[4]: got `[`, expected a valid glob pattern (invalid range pattern at position 0)
              matrix.hardware[5]: got 3, expected a hardware kind (cpu, cuda, rocm, metal, qnn) or a table { kind, min_memory_gib, name }
              matrix.hardware[6]: got `cpu` again, expected each value once
              matrix.fan_out: got `everywhere`, expected one of any, each_hardware_class, each_agent
              matrix.batch_sizes[1]: got 0, expected an integer >= 1
              matrix.batch_sizes[2]: got -4, expected an integer >= 1
              matrix.batch_sizes[4]: got `4` again, expected each value once
              matrix.batch_sizes[5]: got 2000000, expected an integer <= 1048576
              matrix.sequence_lengths: got [], expected a list with at least one value
              matrix.precisions[1]: got `int8`, expected one of fp32, fp16, bf16, q8_0, q4_0
              matrix.modes[1]: got `serving`, expected one of inference, training
              matrix.engines[1]: got `tensorrt`, expected one of candle, torch, onnxruntime, llamacpp
              matrix.exclude[0]: got axis `colours`, expected only the axes models, hardware, batch_sizes, sequence_lengths, precisions, modes, engines
              matrix.exclude[0].models[0]: got `lama-*`, expected a glob matching a catalog model
              matrix.exclude[1]: got {}, expected at least one axis (an empty exclude would remove every cell)
              matrix.exclude[2].batch_sizes[0]: got 0, expected an integer >= 1
              matrix.exclude[2].modes: got [], expected a non-empty list
              matrix.exclude[2].precisions[0]: got `fp64`, expected a glob matching a precision
              matrix.exclude[3]: got `everything`, expected a table of axis = [values]
              measure.warmup.iterations: got -1, expected an integer from 0 to 1000000
              measure.warmup.min_seconds: got -1, expected a number of seconds >= 0 and <= 86400
              measure.min_iterations: got 0, expected an integer from 1 to 1000000
              measure.target_relative_ci: got 1.5, expected a number strictly between 0 and 1
              measure.min_seconds: got 10 (max_seconds is 5), expected at most measure.max_seconds
              policy.priority: got 3000000000, expected a 32-bit signed integer
              policy.max_attempts: got 0, expected an integer from 1 to 100
              policy.lease_seconds: got 0, expected an integer from 1 to 86400"#]].assert_eq(&problems(text, Format::Toml));
    }

    #[test]
    fn a_missing_matrix_and_name_are_reported_together() {
        expect_test::expect![[r#"
            2 problems
              name: got nothing, expected a sweep name
              matrix: got nothing, expected a [matrix] table with models, hardware and batch_sizes"#]]
        .assert_eq(&problems("", Format::Toml));
    }

    #[test]
    fn syntax_errors_carry_line_and_column() {
        let toml = "name = \"x\"\n[matrix]\nmodels = [\"bert-tiny\"\n";
        expect_test::expect![[r#"
            1 problem
              line 3, column 22: got `models = ["bert-tiny"`, expected a valid sweep spec: unclosed array, expected `]`"#]].assert_eq(&problems(toml, Format::Toml));
        let json = "{\"name\": \"x\",\n \"matrix\": {\"models\": [1]}}";
        expect_test::expect![[r#"
            1 problem
              line 2, column 24: got `"matrix": {"models": [1]}}`, expected a valid sweep spec: invalid type: integer `1`, expected a string"#]].assert_eq(&problems(json, Format::Json));
    }

    #[test]
    fn unknown_keys_are_errors() {
        let text = "name = \"x\"\ncolour = \"red\"\n";
        expect_test::expect![[r#"
            2 problems
              colour: got key `colour`, expected only the keys name, matrix, measure, policy
              matrix: got nothing, expected a [matrix] table with models, hardware and batch_sizes"#]]
        .assert_eq(&problems(text, Format::Toml));
        let text = "name = \"x\"\n[measure]\nwarmup = { iterations = 1, seconds = 2 }\n";
        expect_test::expect![[r#"
            2 problems
              measure.warmup.seconds: got key `seconds`, expected only the keys iterations, min_seconds
              matrix: got nothing, expected a [matrix] table with models, hardware and batch_sizes"#]]
        .assert_eq(&problems(text, Format::Toml));
    }

    #[test]
    fn json_and_toml_give_the_same_spec() {
        let json = r#"{
            "name": "nightly-text",
            "matrix": {
                "models": ["bert-base-uncased", "t5-small", "vit-base-patch16-224"],
                "hardware": ["cpu", "cuda"],
                "fan_out": "each_hardware_class",
                "batch_sizes": [1, 4, 16, 64],
                "sequence_lengths": [128],
                "precisions": ["fp32", "fp16", "bf16", "q8_0", "q4_0"],
                "modes": ["inference", "training"],
                "engines": ["candle"],
                "exclude": [{"models": ["llama-*"], "precisions": ["fp32"], "hardware": ["cpu"]}]
            },
            "measure": {"warmup": {"iterations": 3, "min_seconds": 1.0}, "min_iterations": 20,
                        "min_seconds": 2.0, "max_seconds": 120, "target_relative_ci": 0.02},
            "policy": {"priority": 0, "max_attempts": 3, "lease_seconds": 120}
        }"#;
        assert_eq!(parse_json(json, &Limits::default()).expect("valid"), valid(DESIGN_EXAMPLE));
    }

    #[test]
    fn a_matrix_over_the_limit_is_refused_with_its_size() {
        let limits = Limits { max_cells: 100 };
        let result = parse_toml(DESIGN_EXAMPLE, &limits).expect_err("too large");
        assert_eq!(result.to_string(), "1 problem\n  matrix: got 144 cells, expected at most 100 cells");
        let huge = r#"
            name = "huge"
            [matrix]
            models = ["bert-tiny", "bert-base-uncased", "t5-small"]
            hardware = ["cpu", "cuda", "rocm", "metal", "qnn"]
            batch_sizes = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]
            sequence_lengths = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]
            precisions = ["fp32", "fp16", "bf16"]
            modes = ["inference", "training"]
            engines = ["candle", "torch", "onnxruntime", "llamacpp"]
        "#;
        let limits = Limits { max_cells: 1_000 };
        let result = parse_toml(huge, &limits).expect_err("too large");
        assert_eq!(result.to_string(), "1 problem\n  matrix: got 92160 cells, expected at most 1000 cells");
    }

    #[test]
    fn a_matrix_far_over_the_limit_is_sized_before_excludes() {
        let hundred: Vec<String> = (1..=100).map(|n| n.to_string()).collect();
        let text = format!(
            r#"
            name = "enormous"
            [matrix]
            models = ["bert-tiny", "bert-base-uncased", "t5-small"]
            hardware = ["cpu", "cuda", "rocm", "metal", "qnn"]
            batch_sizes = [{0}]
            sequence_lengths = [{0}]
            exclude = [{{ models = ["t5-*"] }}]
            "#,
            hundred.join(", ")
        );
        let result = parse_toml(&text, &Limits::default()).expect_err("too large");
        assert_eq!(result.to_string(), "1 problem\n  matrix: got 100000 cells, expected at most 10000 cells");
        let limits = Limits { max_cells: 10 };
        let wider = text.replace(
            "exclude",
            "precisions = [\"fp32\", \"fp16\", \"bf16\"]\n\
             modes = [\"inference\", \"training\"]\n\
             engines = [\"candle\", \"torch\", \"onnxruntime\", \"llamacpp\"]\n\
             exclude",
        );
        // 3.6 million combinations: more than counting one by one is worth.
        assert_eq!(
            parse_toml(&wider, &limits).expect_err("too large").to_string(),
            "1 problem\n  matrix: got 3600000 cells before excludes, expected at most 10 cells"
        );
    }

    #[test]
    fn a_matrix_without_cells_is_refused() {
        let text = r#"
            name = "nothing runs"
            [matrix]
            models = ["bert-tiny"]
            hardware = ["cpu"]
            batch_sizes = [1]
            precisions = ["q8_0"]
        "#;
        expect_test::expect![[r#"
            1 problem
              matrix: got 0 cells, expected at least one cell (every combination is excluded or unsupported)"#]]
        .assert_eq(&problems(text, Format::Toml));
    }

    #[test]
    fn the_typed_spec_round_trips_as_a_stored_format() {
        let spec = valid(DESIGN_EXAMPLE);
        let json = serde_json::to_string(&spec).expect("serialises");
        assert_eq!(serde_json::from_str::<SweepSpec>(&json).expect("parses"), spec);
        let tampered = json.replacen("\"name\"", "\"nam\"", 1);
        assert!(serde_json::from_str::<SweepSpec>(&tampered).is_err());
    }

    #[test]
    fn selectors_match_hardware_classes_by_kind_and_name_glob() {
        let h100 = HardwareSelector { kind: HardwareKind::Cuda, min_memory_gib: None, name: Some("*h100*".into()) };
        assert!(h100.matches_class("cuda/NVIDIA H100 80GB HBM3"));
        assert!(!h100.matches_class("cuda/NVIDIA A100-SXM4-40GB"));
        assert!(!h100.matches_class("rocm/NVIDIA H100"));
        let cpu = HardwareSelector::of_kind(HardwareKind::Cpu);
        assert!(cpu.matches_class("cpu/AMD EPYC 7B13"));
        assert!(cpu.matches_class("cpu"));
        assert!(!cpu.matches_class("cuda/NVIDIA H100 80GB HBM3"));
    }

    #[test]
    fn formats_follow_file_extensions() {
        assert_eq!(Format::from_extension("TOML"), Some(Format::Toml));
        assert_eq!(Format::from_extension("json"), Some(Format::Json));
        assert_eq!(Format::from_extension("yaml"), None);
        assert_eq!(ENGINES, ["candle", "torch", "onnxruntime", "llamacpp"]);
    }

    #[test]
    fn closest_models_are_suggested() {
        assert_eq!(closest_models("bert-bas")[0], "bert-base-uncased");
        assert_eq!(closest_models("bert-tiyn")[0], "bert-tiny");
        assert_eq!(closest_models("tinyllama")[0], "TinyLlama-1.1B");
        assert_eq!(closest_models("qwen2-0.5")[0], "Qwen2-0.5B");
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
