//! Cells: the points of a sweep's matrix as stored and leased, their stable keys
//! (`key.rs`), and the expansion of a validated
//! [`SweepSpec`](crate::spec::SweepSpec) into cells (`expand.rs`: excludes, implicit
//! skips, hardware fan-out).
//!
//! Expansion is a pure function of the spec and the list of hardware classes known at
//! plan time; its output is sorted, so the order of values in the spec never matters.
//!
//! Must never: do I/O, read the clock, or let anything but a cell's coordinates and its
//! sweep's name into the cell key (keys must agree across machines and versions).

use serde::{Deserialize, Serialize};

use crate::catalog::{self, Mode, ModelSpec, Precision};
use crate::spec::{Engine, HardwareSelector};

mod expand;
mod key;
#[cfg(test)]
mod tests;

pub use expand::{count, count_for_agents, expand, expand_for_agents, AgentClasses};
pub use key::{CellKey, InvalidCellKey, CELL_KEY_VERSION};

// The catalog's rule of which combinations run at all; expansion skips the others.
pub use crate::catalog::is_runnable;

/// One point of a sweep's matrix. A stored format (cells are replicated state).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cell {
    /// Catalog name, in the catalog's spelling (the key depends on the spelling).
    pub model: String,
    pub hardware: HardwareSelector,
    /// The hardware class this cell was fanned out to, e.g. `cuda/NVIDIA H100 80GB HBM3`;
    /// `None` when unresolved (fan-out `any`, or no matching class known at plan time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hardware_class: Option<String>,
    /// The one agent this cell runs on (fan-out `each_agent`); `None`: any agent whose
    /// hardware matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    pub batch: u32,
    pub seq_len: u32,
    pub precision: Precision,
    pub mode: Mode,
    pub engine: Engine,
}

impl Cell {
    /// The catalog entry of the cell's model, if the catalog still has it.
    pub fn model_spec(&self) -> Option<&'static ModelSpec> {
        catalog::lookup(&self.model)
    }
}
