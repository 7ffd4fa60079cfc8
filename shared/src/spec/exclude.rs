//! Exclude entries: the [`Exclude`] type, its check (axis by axis, each glob valid and
//! matching something on its axis), and the compiled [`Rule`] that removes points.
//!
//! Must never: accept an entry naming no axis (it would remove every cell).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::check::{compile_glob, json_axis_integer, matches_a_name, refuse, render, Checker};
use super::hardware::matches_a_hardware_kind;
use super::model::matches_a_model;
use super::points::Point;
use super::{Engine, GLOB_OPTIONS, MAX_AXIS_VALUES};
use crate::catalog::{Mode, Precision};

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

impl Exclude {
    /// How many values the entry lists over all its axes.
    pub fn values(&self) -> usize {
        self.models.len()
            + self.hardware.len()
            + self.batch_sizes.len()
            + self.sequence_lengths.len()
            + self.precisions.len()
            + self.modes.len()
            + self.engines.len()
    }
}

impl Checker {
    pub(super) fn exclude(&mut self, path: &str, raw: &Value) -> Option<Exclude> {
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
            self.exclude_axis(path, &mut entry, axis, values);
        }
        Some(entry)
    }

    /// One axis of the exclude entry at `path`, into `entry`.
    fn exclude_axis(&mut self, path: &str, entry: &mut Exclude, axis: &str, values: &Value) {
        let axis_path = format!("{path}.{axis}");
        let Some(values) = self.exclude_values(&axis_path, values) else {
            return;
        };
        match axis {
            "batch_sizes" => entry.batch_sizes = self.axis(&axis_path, Some(values), None, json_axis_integer),
            "sequence_lengths" => entry.sequence_lengths = self.axis(&axis_path, Some(values), None, json_axis_integer),
            other => match glob_axis(entry, other) {
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

    /// An exclude axis must be a non-empty list.
    fn exclude_values<'v>(&mut self, path: &str, values: &'v Value) -> Option<&'v [Value]> {
        match values {
            Value::Array(list) if list.len() > MAX_AXIS_VALUES => {
                self.report(path, format!("{} values", list.len()), format!("at most {MAX_AXIS_VALUES} values"));
                None
            }
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

/// An exclude entry with its globs compiled once per expansion.
pub(super) struct Rule<'a> {
    models: Vec<glob::Pattern>,
    hardware: Vec<glob::Pattern>,
    batch_sizes: &'a [u32],
    sequence_lengths: &'a [u32],
    precisions: Vec<glob::Pattern>,
    modes: Vec<glob::Pattern>,
    engines: Vec<glob::Pattern>,
}

impl<'a> Rule<'a> {
    pub(super) fn new(entry: &'a Exclude) -> Rule<'a> {
        Rule {
            models: compile(&entry.models),
            hardware: compile(&entry.hardware),
            batch_sizes: &entry.batch_sizes,
            sequence_lengths: &entry.sequence_lengths,
            precisions: compile(&entry.precisions),
            modes: compile(&entry.modes),
            engines: compile(&entry.engines),
        }
    }

    /// Every named axis matches (an unnamed axis, an empty list, matches anything).
    pub(super) fn removes(&self, c: &Point) -> bool {
        let hardware = self.hardware.is_empty()
            || self.hardware.iter().any(|p| {
                p.matches_with(c.hardware.kind.as_str(), GLOB_OPTIONS)
                    || c.class.is_some_and(|class| p.matches_with(class, GLOB_OPTIONS))
            });
        hardware
            && any_glob(&self.models, c.model)
            && any_value(self.batch_sizes, c.batch)
            && any_value(self.sequence_lengths, c.seq_len)
            && any_glob(&self.precisions, c.precision.as_str())
            && any_glob(&self.modes, c.mode.as_str())
            && any_glob(&self.engines, c.engine.as_str())
    }
}

/// Validated specs hold valid globs; a stored spec that does not falls back to a
/// literal match rather than failing the expansion.
fn compile(patterns: &[String]) -> Vec<glob::Pattern> {
    patterns
        .iter()
        .map(|p| glob::Pattern::new(p).or_else(|_| glob::Pattern::new(&glob::Pattern::escape(p))).unwrap_or_default())
        .collect()
}

fn any_glob(patterns: &[glob::Pattern], text: &str) -> bool {
    patterns.is_empty() || patterns.iter().any(|p| p.matches_with(text, GLOB_OPTIONS))
}

fn any_value(values: &[u32], value: u32) -> bool {
    values.is_empty() || values.contains(&value)
}
