//! The checker: walks the raw spec, records a diagnostic for every problem and keeps
//! the valid part, so that later checks (duplicates, the size limit) still run on what
//! is left. This file holds the spec as a whole, the plain axes, the policy and the
//! size limit; the model, hardware, exclude and measure checks have files of their own.
//!
//! Must never: stop at the first problem, or report one problem twice.

use std::fmt;

use serde_json::Value;

use super::raw::{RawMatrix, RawPolicy, RawSpec, KNOWN_KEYS};
use super::{
    hardware, model, points, Engine, Exclude, FanOut, Limits, Matrix, Policy, SweepSpec, GLOB_OPTIONS, MAX_AXIS_VALUE,
    MAX_AXIS_VALUES, MAX_EXCLUDE_CHECKS, MAX_EXCLUDE_RULES,
};
use crate::catalog::{Mode, Precision};
use crate::diagnostic::{Diagnostic, UnknownName};

/// Collects the diagnostics of one spec (or one measure policy).
#[derive(Default)]
pub(super) struct Checker {
    pub(super) diagnostics: Vec<Diagnostic>,
}

/// Why one element was refused: its rendering and what was expected.
pub(super) struct Refusal {
    pub(super) value: String,
    pub(super) expected: String,
}

pub(super) fn refuse(value: impl Into<String>, expected: impl Into<String>) -> Refusal {
    Refusal { value: value.into(), expected: expected.into() }
}

impl Checker {
    pub(super) fn report(&mut self, path: impl Into<String>, value: impl Into<String>, expected: impl Into<String>) {
        self.diagnostics.push(Diagnostic::new(path, value, expected));
    }

    pub(super) fn spec(&mut self, raw: &RawSpec, limits: &Limits) -> SweepSpec {
        let name = self.name(raw.name.as_deref());
        let matrix = match &raw.matrix {
            Some(m) => self.matrix(m),
            None => {
                self.report("matrix", "nothing", "a [matrix] table with models, hardware and batch_sizes");
                empty_matrix()
            }
        };
        let weights = self.weights(&raw.weights, &matrix.models);
        let measure = self.measure(&raw.measure);
        let spec = SweepSpec { name, matrix, measure, policy: self.policy(&raw.policy), weights };
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
        let models = self.axis("matrix.models", raw.models.as_deref(), None, model::model);
        let hardware = self.axis("matrix.hardware", raw.hardware.as_deref(), None, hardware::selector);
        let fan_out = self.fan_out(raw.fan_out.as_deref());
        let batch_sizes = self.axis("matrix.batch_sizes", raw.batch_sizes.as_deref(), None, axis_integer);
        let sequence_lengths =
            self.axis("matrix.sequence_lengths", raw.sequence_lengths.as_deref(), Some(vec![128]), axis_integer);
        let precisions =
            self.axis("matrix.precisions", raw.precisions.as_deref(), Some(vec![Precision::Fp32]), named::<Precision>);
        let modes = self.axis("matrix.modes", raw.modes.as_deref(), Some(vec![Mode::Inference]), named::<Mode>);
        let engines = self.axis("matrix.engines", raw.engines.as_deref(), Some(vec![Engine::Candle]), named::<Engine>);
        let exclude = if raw.exclude.len() > MAX_EXCLUDE_RULES {
            let got = format!("{} entries", raw.exclude.len());
            self.report("matrix.exclude", got, format!("at most {MAX_EXCLUDE_RULES} entries"));
            Vec::new()
        } else {
            raw.exclude
                .iter()
                .enumerate()
                .filter_map(|(i, entry)| self.exclude(&format!("matrix.exclude[{i}]"), entry))
                .collect()
        };
        Matrix { models, hardware, fan_out, batch_sizes, sequence_lengths, precisions, modes, engines, exclude }
    }

    fn fan_out(&mut self, raw: Option<&str>) -> FanOut {
        match raw.map(str::parse::<FanOut>) {
            None => FanOut::EachHardwareClass,
            Some(Ok(f)) => f,
            Some(Err(e)) => {
                self.diagnostics.push(e.at("matrix.fan_out"));
                FanOut::EachHardwareClass
            }
        }
    }

    /// One axis: present (or defaulted), not empty, every element valid and unique.
    pub(super) fn axis<R, T: PartialEq + fmt::Display>(
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
        if raw.len() > MAX_AXIS_VALUES {
            // Refused whole, before the duplicate check below (quadratic in the length).
            self.report(path, format!("{} values", raw.len()), format!("at most {MAX_AXIS_VALUES} values"));
            return Vec::new();
        }
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
    pub(super) fn unknown_keys(&mut self, tree: &mut Value) {
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

    pub(super) fn integer(&mut self, path: &str, raw: Option<i64>, min: u32, max: u32, default: u32) -> u32 {
        let Some(value) = raw else { return default };
        match u32::try_from(value) {
            Ok(v) if (min..=max).contains(&v) => v,
            _ => {
                self.report(path, value.to_string(), format!("an integer from {min} to {max}"));
                default
            }
        }
    }

    /// The matrix must expand to at least one cell and at most `limits.max_cells`,
    /// counted with hardware classes unresolved (one per selector).
    fn size(&mut self, spec: &SweepSpec, limits: &Limits) {
        let upper_bound = combinations(&spec.matrix);
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
        // Counting tests every combination against every exclude value: bounded, so
        // that refusing a spec costs time linear in its size, never their product.
        let rule_values: usize = spec.matrix.exclude.iter().map(Exclude::values).sum();
        let checks = upper_bound.saturating_mul(rule_values.max(1));
        if checks > MAX_EXCLUDE_CHECKS {
            self.report(
                "matrix",
                format!("{upper_bound} combinations × {rule_values} exclude values"),
                format!("at most {MAX_EXCLUDE_CHECKS} checks (fewer axis values or exclude entries)"),
            );
            return;
        }
        let cells = points::count(spec, &[]);
        if cells > limits.max_cells {
            self.report("matrix", format!("{cells} cells"), format!("at most {} cells", limits.max_cells));
        } else if cells == 0 && self.diagnostics.is_empty() {
            self.report("matrix", "0 cells", "at least one cell (every combination is excluded or unsupported)");
        }
    }
}

/// The number of combinations of the axes, before excludes and implicit skips.
fn combinations(m: &Matrix) -> usize {
    [
        m.models.len(),
        m.hardware.len(),
        m.batch_sizes.len(),
        m.sequence_lengths.len(),
        m.precisions.len(),
        m.modes.len(),
        m.engines.len(),
    ]
    .iter()
    .fold(1usize, |product, n| product.saturating_mul(*n))
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

pub(super) fn named<T: std::str::FromStr<Err = UnknownName>>(raw: &String) -> Result<T, Refusal> {
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

pub(super) fn json_axis_integer(raw: &Value) -> Result<u32, Refusal> {
    match raw.as_i64() {
        Some(n) => axis_integer(&n),
        None => Err(refuse(render(raw), "an integer >= 1")),
    }
}

pub(super) fn compile_glob(text: &str) -> Result<glob::Pattern, Refusal> {
    glob::Pattern::new(text)
        .map_err(|e| refuse(format!("`{text}`"), format!("a valid glob pattern ({} at position {})", e.msg, e.pos)))
}

pub(super) fn matches_a_name(pattern: &glob::Pattern, names: &[&str]) -> bool {
    names.iter().any(|n| pattern.matches_with(n, GLOB_OPTIONS))
}

/// Values as the user wrote them: strings in backticks, the rest as JSON.
pub(super) fn render(value: &Value) -> String {
    match value {
        Value::String(s) => format!("`{s}`"),
        other => other.to_string(),
    }
}
