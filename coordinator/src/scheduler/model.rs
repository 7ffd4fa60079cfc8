//! The scheduling problem in plain ordinals: the sweeps with pending cells, the devices of
//! the one agent asking for work, and which devices each cell can run on.
//!
//! Hardware matching is decided while building the problem (see `mod.rs`), so the solver
//! never sees a hardware class, only `fits` lists.
//!
//! Must never: refer to domain types; the solver is tested on this model alone.

/// One agent's request for up to `max_cells` cells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Sweeps with pending cells.
    pub sweeps: Vec<SweepDemand>,
    /// The agent's device groups, in the agent's order: a cell goes to the first one in
    /// its `fits` with a free slot (the same rule apply checks grants with).
    pub devices: Vec<DeviceSupply>,
    pub max_cells: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweepDemand {
    /// Higher runs first.
    pub priority: i32,
    /// Older runs first among sweeps of one priority.
    pub submitted_at_ms: i64,
    /// The sweep's runnable cells, in the order the sweep should run them.
    pub cells: Vec<CellDemand>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CellDemand {
    /// Ordinals of the devices that can run this cell, ascending.
    pub fits: Vec<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceSupply {
    /// Slots not taken by the agent's current leases.
    pub free_slots: u32,
}

/// Cell `cell` of sweep `sweep` runs on device `device`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Assignment {
    pub sweep: usize,
    pub cell: usize,
    pub device: usize,
}
