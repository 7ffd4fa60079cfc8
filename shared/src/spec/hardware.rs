//! Hardware selectors: which machines a cell may run on (a [`HardwareKind`] plus optional
//! memory and device-name constraints), how one matches a hardware class, and their
//! check. Kinds and classes themselves are [`crate::hardware`]'s.
//!
//! Must never: accept a selector whose name glob does not compile.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::check::{compile_glob, matches_a_name, refuse, render, Refusal};
use super::glob_matches;
use crate::hardware::{HardwareClass, HardwareKind};

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

impl HardwareSelector {
    /// A selector of `kind` with no constraints.
    pub fn of_kind(kind: HardwareKind) -> HardwareSelector {
        HardwareSelector { kind, min_memory_gib: None, name: None }
    }

    /// Whether a hardware class (`kind/device name`, e.g. `cuda/NVIDIA H100 80GB HBM3`)
    /// satisfies the kind and the name glob. `min_memory_gib` is not in a class string
    /// and is left to the scheduler.
    pub fn matches_class(&self, class: &str) -> bool {
        let (kind, device) = HardwareClass::split(class);
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

const SELECTOR_KEYS: &str = "kind, min_memory_gib, name";

/// One element of `matrix.hardware`: a kind, or a table.
pub(super) fn selector(raw: &Value) -> Result<HardwareSelector, Refusal> {
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
    let kind = table_kind(table)?;
    let min_memory_gib = table_min_memory(table.get("min_memory_gib"))?;
    let name = table_name(table.get("name"))?;
    Ok(HardwareSelector { kind, min_memory_gib, name })
}

fn table_kind(table: &serde_json::Map<String, Value>) -> Result<HardwareKind, Refusal> {
    match table.get("kind") {
        Some(Value::String(kind)) => hardware_kind(kind),
        Some(other) => Err(refuse(format!("kind = {}", render(other)), "a hardware kind")),
        None => Err(refuse(render(&Value::Object(table.clone())), "a table with a `kind`")),
    }
}

fn table_min_memory(raw: Option<&Value>) -> Result<Option<f64>, Refusal> {
    let Some(v) = raw else { return Ok(None) };
    match v.as_f64() {
        Some(gib) if gib.is_finite() && gib > 0.0 => Ok(Some(gib)),
        _ => Err(refuse(format!("min_memory_gib = {}", render(v)), "a number of GiB > 0")),
    }
}

fn table_name(raw: Option<&Value>) -> Result<Option<String>, Refusal> {
    match raw {
        None => Ok(None),
        Some(Value::String(pattern)) if !pattern.is_empty() => {
            compile_glob(pattern)?;
            Ok(Some(pattern.clone()))
        }
        Some(other) => Err(refuse(format!("name = {}", render(other)), "a non-empty glob over the device name")),
    }
}

/// A kind (`cuda`, `c*`), or a class pattern whose part before the `/` matches a kind.
pub(super) fn matches_a_hardware_kind(pattern: &glob::Pattern) -> bool {
    let (kind_part, _) = HardwareClass::split(pattern.as_str());
    glob::Pattern::new(kind_part).is_ok_and(|k| matches_a_name(&k, HardwareKind::NAMES))
}
