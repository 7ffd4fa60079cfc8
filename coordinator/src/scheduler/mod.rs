//! The leader's scheduler: which pending cells an agent that asks for work gets.
//!
//! Layout (quickwit style):
//! - [`model`]: the problem in ordinals.
//! - [`solve`](mod@solve): the pure solver and its post-conditions.
//! - this file: builds the problem from the replicated [`State`] and maps the answer back.
//! - `README.md`: the algorithm.
//!
//! The plan is only a proposal: it becomes leases through a `GrantLeases` command, whose
//! apply re-checks every cell (still pending, hardware, free slot) against the state as it
//! is at commit time.
//!
//! Must never: change the state, read the clock (the caller passes `now_ms`), or plan for
//! an agent on a follower's stale state (plan on the leader, after a Raft read).

pub mod model;
pub mod solve;

use std::collections::BTreeMap;
use std::ops::Bound;

use shared::cell::CellKey;

use crate::state::{Agent, CellState, State, Sweep, SweepId};
use model::{CellDemand, DeviceSupply, Problem, SweepDemand};

/// For each lease request, `(agent_id, max_cells)` in the order they are served, up to
/// `max_cells` (sweep, cell) pairs to lease now, in the order to propose them (empty for
/// an unknown agent): one Raft read and one proposal serve a whole batch of requests.
/// The plans do not overlap: a cell planned for one request is not offered to a later
/// one, although it stays pending in `state` until the grants apply.
pub fn plan_batch(state: &State, requests: &[(&str, usize)], now_ms: i64) -> Vec<Vec<(SweepId, CellKey)>> {
    let mut cursors = Cursors::default();
    requests.iter().map(|(agent_id, max_cells)| plan_for(state, agent_id, *max_cells, now_ms, &mut cursors)).collect()
}

/// Where each (sweep, hardware-need group) was left off by the plans made so far in one
/// batch: the next plan offers only keys after it. Cells are offered in key order, and a
/// plan takes a prefix of what fits, so nothing already planned is offered twice; a
/// cell skipped over waits for the next batch.
#[derive(Debug, Default)]
struct Cursors(BTreeMap<(SweepId, usize), CellKey>);

fn plan_for(
    state: &State,
    agent_id: &str,
    max_cells: usize,
    now_ms: i64,
    cursors: &mut Cursors,
) -> Vec<(SweepId, CellKey)> {
    let Some(agent) = state.agent(agent_id) else { return Vec::new() };
    let (problem, keys) = build_problem(state, agent, max_cells, now_ms, cursors);
    let mut plan = Vec::new();
    for a in solve::solve(&problem) {
        let (sweep_id, candidates) = &keys[a.sweep];
        let (key, group) = &candidates[a.cell];
        let cursor = cursors.0.entry((*sweep_id, *group)).or_insert_with(|| key.clone());
        if *cursor < *key {
            *cursor = key.clone();
        }
        plan.push((*sweep_id, key.clone()));
    }
    plan
}

/// The candidate cells of one sweep: key and hardware-need group.
type Candidates = Vec<(CellKey, usize)>;

/// The problem for one agent, and for each sweep ordinal its id and its candidates.
fn build_problem(
    state: &State,
    agent: &Agent,
    max_cells: usize,
    now_ms: i64,
    cursors: &Cursors,
) -> (Problem, Vec<(SweepId, Candidates)>) {
    let used = slots_in_use(state, agent);
    let devices = agent
        .devices
        .iter()
        .map(|g| DeviceSupply { free_slots: g.slots.saturating_sub(used.get(g.class.as_str()).copied().unwrap_or(0)) })
        .collect();
    let mut sweeps = Vec::new();
    let mut keys = Vec::new();
    for sweep in state.sweeps().filter(|s| s.cancelled_at_ms.is_none() && !s.pending.is_empty()) {
        let (demand, candidates) = sweep_demand(sweep, agent, max_cells, now_ms, cursors);
        if !demand.cells.is_empty() {
            sweeps.push(demand);
            keys.push((sweep.id, candidates));
        }
    }
    (Problem { sweeps, devices, max_cells }, keys)
}

/// Up to `max_cells` cells per hardware-need group of the sweep that this agent could run
/// now: pending, past any retry backoff, after the batch's cursor, and fitting at least
/// one of its device groups (tested once per group: its cells all need the same).
fn sweep_demand(
    sweep: &Sweep,
    agent: &Agent,
    max_cells: usize,
    now_ms: i64,
    cursors: &Cursors,
) -> (SweepDemand, Candidates) {
    let mut cells = Vec::new();
    let mut candidates = Vec::new();
    for (group, keys) in sweep.pending.groups().enumerate() {
        let Some(sample) = keys.first().and_then(|k| sweep.cells.get(k)) else { continue };
        let fits: Vec<usize> =
            agent.devices.iter().enumerate().filter(|(_, g)| agent.can_run(g, &sample.cell)).map(|(i, _)| i).collect();
        if fits.is_empty() {
            continue;
        }
        let after = match cursors.0.get(&(sweep.id, group)) {
            Some(cursor) => keys.range((Bound::Excluded(cursor), Bound::Unbounded)),
            None => keys.range::<CellKey, _>(..),
        };
        let ready = after.filter(|k| {
            sweep
                .cells
                .get(*k)
                .is_some_and(|r| r.state == CellState::Pending && r.retry_after_ms.is_none_or(|t| t <= now_ms))
        });
        for key in ready.take(max_cells) {
            cells.push(CellDemand { fits: fits.clone() });
            candidates.push((key.clone(), group));
        }
    }
    let demand = SweepDemand { priority: sweep.spec.policy.priority, submitted_at_ms: sweep.submitted_at_ms, cells };
    (demand, candidates)
}

/// Slots each of the agent's device groups has taken by its current leases.
fn slots_in_use<'a>(state: &'a State, agent: &Agent) -> BTreeMap<&'a str, u32> {
    let mut used = BTreeMap::new();
    for (sweep_id, key) in &agent.leases {
        if let Some(CellState::Leased { device_class, .. }) = state.cell(sweep_id, key).map(|r| &r.state) {
            *used.entry(device_class.as_str()).or_insert(0) += 1;
        }
    }
    used
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use shared::cell;
    use shared::spec::{self, Limits};

    use super::*;
    use crate::state::command::Command;
    use crate::state::{apply, DeviceGroup, Outcome, Rejection};

    fn submit(state: &mut State, n: u128, priority: i32, hardware: &str, at_ms: i64) {
        let text = format!(
            "name = \"s{n}\"\n[matrix]\nmodels = [\"bert-tiny\"]\nhardware = [{hardware}]\nfan_out = \"any\"\nbatch_sizes = [1, 2, 4]\n[policy]\npriority = {priority}\n"
        );
        let spec = spec::parse_toml(&text, &Limits::default()).expect("a valid spec");
        let cells = cell::expand(&spec, &[]).into_iter().map(|c| (c.key(&spec.name), c)).collect();
        let command = Command::SubmitSweep {
            sweep_id: SweepId::from_u128(n),
            submitted_at_ms: at_ms,
            spec,
            cells,
            trace: None,
            submitted_by: None,
        };
        assert!(matches!(apply(state, command), Outcome::Submitted { .. }));
    }

    fn register(state: &mut State, agent: &str, devices: Vec<DeviceGroup>) {
        let command =
            Command::RegisterAgent { agent_id: agent.parse().unwrap(), devices, labels: BTreeMap::new(), at_ms: 0 };
        assert!(matches!(apply(state, command), Outcome::AgentRegistered { .. }));
    }

    fn group(class: &str, memory_gib: u64, slots: u32) -> DeviceGroup {
        DeviceGroup::new(class.into(), Some(memory_gib << 30), slots)
    }

    /// One request's plan.
    fn plan_leases(state: &State, agent_id: &str, max_cells: usize, now_ms: i64) -> Vec<(SweepId, CellKey)> {
        plan_batch(state, &[(agent_id, max_cells)], now_ms).remove(0)
    }

    fn sweeps_of(plan: &[(SweepId, CellKey)]) -> Vec<u128> {
        plan.iter().map(|(id, _)| id.as_u128()).collect()
    }

    #[test]
    fn plans_follow_priority_age_and_hardware_and_pass_apply() {
        let mut state = State::default();
        submit(&mut state, 1, 0, "\"cpu\"", 100);
        submit(&mut state, 2, 0, "\"cpu\"", 50);
        submit(&mut state, 3, 9, "{ kind = \"cuda\", min_memory_gib = 40 }", 200);
        submit(&mut state, 4, 9, "\"cuda\"", 300);
        register(&mut state, "a", vec![group("cpu/x", 64, 3), group("cuda/NVIDIA A10", 24, 1)]);
        let plan = plan_leases(&state, "a", 10, 0);
        // The A10 is too small for sweep 3; sweep 4 takes it; then the CPU in turns, oldest first.
        assert_eq!(sweeps_of(&plan), [4, 2, 1, 2]);
        let command =
            Command::GrantLeases { agent_id: "a".parse().unwrap(), leases: plan, at_ms: 0, lease_seconds: 60 };
        let Outcome::LeasesGranted { granted, refused } = apply(&mut state, command) else { panic!("expected grants") };
        assert_eq!((granted.len(), refused.len()), (4, 0));
        assert!(plan_leases(&state, "a", 10, 0).is_empty(), "every slot is taken");
        assert!(plan_leases(&state, "nobody", 10, 0).is_empty());
    }

    #[test]
    fn a_batch_of_plans_never_offers_a_cell_twice() {
        let mut state = State::default();
        submit(&mut state, 1, 0, "\"cpu\"", 0);
        submit(&mut state, 2, 5, "\"cuda\"", 0);
        for agent in ["a", "b", "c"] {
            register(&mut state, agent, vec![group("cpu/x", 64, 1)]);
        }
        register(&mut state, "g", vec![group("cuda/NVIDIA A10", 24, 2), group("cpu/x", 64, 1)]);
        let plans = plan_batch(&state, &[("a", 1), ("g", 4), ("b", 1), ("nobody", 1), ("c", 1)], 0);
        assert_eq!(plans.iter().map(Vec::len).collect::<Vec<_>>(), [1, 3, 1, 0, 0], "{plans:?}");
        assert_eq!(sweeps_of(&plans[1]), [2, 2, 1], "the GPU agent takes the urgent sweep first");
        let all: Vec<_> = plans.iter().flatten().collect();
        let distinct: std::collections::BTreeSet<_> = all.iter().collect();
        assert_eq!(distinct.len(), all.len(), "no cell planned twice: {plans:?}");
        let commands = [("a", 0), ("g", 1), ("b", 2)]
            .into_iter()
            .map(|(agent, i)| Command::GrantLeases {
                agent_id: agent.parse().unwrap(),
                leases: plans[i].clone(),
                at_ms: 0,
                lease_seconds: 60,
            })
            .collect();
        let Outcome::Batch(outcomes) = apply(&mut state, Command::Batch { commands }) else { panic!("a batch") };
        for outcome in outcomes {
            assert!(matches!(outcome, Outcome::LeasesGranted { ref refused, .. } if refused.is_empty()), "{outcome:?}");
        }
    }

    #[test]
    fn a_cell_pinned_to_an_agent_goes_to_that_agent_only() {
        let mut state = State::default();
        register(&mut state, "a", vec![group("cpu/x", 64, 4)]);
        register(&mut state, "b", vec![group("cpu/x", 64, 4)]);
        let text = "name = \"pinned\"\n[matrix]\nmodels = [\"bert-tiny\"]\nhardware = [\"cpu\"]\nfan_out = \"each_agent\"\nbatch_sizes = [1]\n";
        let spec = spec::parse_toml(text, &Limits::default()).expect("a valid spec");
        let cells: Vec<_> = cell::expand_for_agents(&spec, &state.agent_classes())
            .into_iter()
            .map(|c| (c.key(&spec.name), c))
            .collect();
        assert_eq!(cells.len(), 2, "one cell per agent");
        let command = Command::SubmitSweep {
            sweep_id: SweepId::from_u128(1),
            submitted_at_ms: 0,
            spec,
            cells,
            trace: None,
            submitted_by: None,
        };
        assert!(matches!(apply(&mut state, command), Outcome::Submitted { .. }));
        let plans = plan_batch(&state, &[("a", 4), ("b", 4)], 0);
        for (agent, plan) in ["a", "b"].iter().zip(&plans) {
            assert_eq!(plan.len(), 1, "{agent} gets its own cell: {plans:?}");
            let pinned = state.cell(&plan[0].0, &plan[0].1).and_then(|r| r.cell.agent_id.clone());
            assert_eq!(pinned.as_deref(), Some(*agent));
        }
        // Apply refuses a pinned cell to anyone else, whatever a scheduler proposed.
        let command = Command::GrantLeases {
            agent_id: "b".parse().unwrap(),
            leases: plans[0].clone(),
            at_ms: 0,
            lease_seconds: 60,
        };
        let Outcome::LeasesGranted { granted, refused } = apply(&mut state, command) else { panic!("grant outcome") };
        assert!(granted.is_empty());
        assert!(matches!(refused[..], [(_, _, Rejection::NoFreeDevice { .. })]), "{refused:?}");
    }

    #[test]
    fn cells_in_backoff_wait_and_cancelled_sweeps_are_skipped() {
        let mut state = State::default();
        submit(&mut state, 1, 0, "\"cpu\"", 0);
        submit(&mut state, 2, 0, "\"cpu\"", 1);
        register(&mut state, "a", vec![group("cpu/x", 64, 1)]);
        let plan = plan_leases(&state, "a", 1, 0);
        let key = plan[0].1.clone();
        // Lease the cell and let the lease expire at `at_ms`.
        let lose = |state: &mut State, at_ms: i64| {
            let leases = vec![(SweepId::from_u128(1), key.clone())];
            let command = Command::GrantLeases { agent_id: "a".parse().unwrap(), leases, at_ms, lease_seconds: 60 };
            let Outcome::LeasesGranted { granted, .. } = apply(state, command) else { panic!("expected grants") };
            let expired = vec![(SweepId::from_u128(1), key.clone(), granted[0].epoch)];
            apply(state, Command::ExpireLeases { expired, at_ms: at_ms + 1_000 });
        };
        // A first lost lease is leased again at once; a second waits out a backoff.
        lose(&mut state, 0);
        assert!(plan_leases(&state, "a", 5, 1_000).iter().any(|(_, k)| *k == key), "a lost first attempt runs again");
        lose(&mut state, 1_000);
        apply(&mut state, Command::CancelSweep { sweep_id: SweepId::from_u128(2), at_ms: 2_000 });
        let soon = plan_leases(&state, "a", 5, 3_000);
        assert!(soon.iter().all(|(_, k)| *k != key), "the cell waits out its backoff");
        assert_eq!(sweeps_of(&soon), [1]);
        let later = plan_leases(&state, "a", 5, 7_000);
        assert!(later.iter().any(|(_, k)| *k == key), "{later:?}");
    }
}
