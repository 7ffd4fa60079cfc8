//! Expansion: a validated spec's matrix points, fanned out to hardware classes (or to
//! registered agents), as sorted, deduplicated cells.
//!
//! Must never: drop a selector that matches no known class (its cell waits, unresolved,
//! for hardware that has not registered yet).

use super::Cell;
use crate::catalog::{Mode, Precision};
use crate::spec::points::{self, any_agent, Point, Target};
use crate::spec::{Engine, FanOut, SweepSpec};

/// All cells of `spec`, sorted by (model, selector, class, batch, seq_len, precision,
/// mode, engine), without duplicates.
///
/// Hardware fan-out, per [`FanOut`]:
/// - `any`: one cell per selector, class unresolved; any matching agent runs it.
/// - `each_hardware_class`: one cell per class in `hardware_classes` that the selector
///   matches ([`crate::spec::HardwareSelector::matches_class`]). A selector that matches
///   none of them, including when none are given, keeps one unresolved cell, so work
///   waiting for hardware that has not registered yet is not silently dropped.
/// - `each_agent`: like `each_hardware_class`, but one cell per matching class *of each
///   agent*, pinned to that agent ([`expand_for_agents`]); given classes alone (offline
///   `sweep plan`), one cell per class, as `each_hardware_class`.
///
/// Models with a fixed input length (ViT) get one cell per other coordinates, with
/// `seq_len` set to that length, instead of one per sequence length.
pub fn expand(spec: &SweepSpec, hardware_classes: &[String]) -> Vec<Cell> {
    expand_targets(spec, &any_agent(hardware_classes))
}

/// One registered agent and the hardware classes of its devices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentClasses {
    pub agent_id: String,
    pub classes: Vec<String>,
}

/// [`expand`] against the registered agents: for `each_agent`, one cell per (agent,
/// matching class), pinned to the agent; for the other fan-outs, the agents' classes.
pub fn expand_for_agents(spec: &SweepSpec, agents: &[AgentClasses]) -> Vec<Cell> {
    expand_targets(spec, &agent_targets(spec, agents))
}

/// The number of cells [`expand_for_agents`] returns, without building them: a submit
/// checks its size limit with this first, so a fleet of many (or fake) classes cannot
/// make it allocate a huge fan-out before refusing it.
pub fn count_for_agents(spec: &SweepSpec, agents: &[AgentClasses]) -> usize {
    points::count(spec, &agent_targets(spec, agents))
}

fn agent_targets<'a>(spec: &SweepSpec, agents: &'a [AgentClasses]) -> Vec<Target<'a>> {
    let pin = spec.matrix.fan_out == FanOut::EachAgent;
    agents
        .iter()
        .flat_map(|a| a.classes.iter().map(move |class| Target { class, agent: pin.then_some(a.agent_id.as_str()) }))
        .collect()
}

fn expand_targets(spec: &SweepSpec, targets: &[Target]) -> Vec<Cell> {
    let mut cells = Vec::new();
    points::for_each_point(spec, targets, |p| cells.push(cell_at(p)));
    cells.sort_by(|a, b| sort_key(a).cmp(&sort_key(b)));
    cells.dedup();
    cells
}

/// The number of cells [`expand`] returns, without building them (the spec's size
/// limit). Assumes axes without duplicates, which validation guarantees.
pub fn count(spec: &SweepSpec, hardware_classes: &[String]) -> usize {
    points::count(spec, &any_agent(hardware_classes))
}

type SortKey<'a> = (&'a str, String, Option<&'a str>, Option<&'a str>, u32, u32, Precision, Mode, Engine);

fn sort_key(c: &Cell) -> SortKey<'_> {
    let class = c.hardware_class.as_deref();
    (&c.model, c.hardware.to_string(), class, c.agent_id.as_deref(), c.batch, c.seq_len, c.precision, c.mode, c.engine)
}

/// The cell at a point of the matrix.
fn cell_at(p: &Point) -> Cell {
    Cell {
        model: p.model.to_owned(),
        hardware: p.hardware.clone(),
        hardware_class: p.class.map(str::to_owned),
        agent_id: p.agent.map(str::to_owned),
        batch: p.batch,
        seq_len: p.seq_len,
        precision: p.precision,
        mode: p.mode,
        engine: p.engine,
    }
}
