//! The state machine over random command sequences: determinism and invariants, and the
//! lease lifecycle against a reference model written from the rules alone.

use super::*;

// ---------------------------------------------------------------------------------
// Determinism and invariants over random command sequences.

/// A step of a random history, in terms of small indexes into a fixed universe.
#[derive(Debug, Clone)]
enum Step {
    Grant {
        agent: usize,
        cell: usize,
    },
    Complete {
        agent: usize,
        cell: usize,
        attempt: u32,
        epoch: u64,
        status: usize,
    },
    Expire {
        cell: usize,
        epoch: u64,
    },
    /// Completes the cell's current lease, if any, as its holder would.
    CompleteHeld {
        cell: usize,
        status: usize,
    },
    Cancel,
    Register {
        agent: usize,
        slots: u32,
    },
    /// The agent says it holds only the lease of `kept` (or nothing).
    Release {
        agent: usize,
        kept: Option<usize>,
    },
}

const AGENTS: [&str; 3] = ["a1", "a2", "a3"];
const STATUSES: [Status; 4] = [Status::Ok, Status::Unsupported, Status::Failed, Status::Timeout];

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0..3usize, 0..2usize).prop_map(|(agent, cell)| Step::Grant { agent, cell }),
        4 => (0..3usize, 0..2usize, 0..4u32, 0..8u64, 0..4usize)
            .prop_map(|(agent, cell, attempt, epoch, status)| Step::Complete { agent, cell, attempt, epoch, status }),
        2 => (0..2usize, 0..8u64).prop_map(|(cell, epoch)| Step::Expire { cell, epoch }),
        4 => (0..2usize, 0..4usize).prop_map(|(cell, status)| Step::CompleteHeld { cell, status }),
        1 => Just(Step::Cancel),
        1 => (0..3usize, 0..3u32).prop_map(|(agent, slots)| Step::Register { agent, slots }),
        2 => (0..3usize, prop::option::of(0..2usize)).prop_map(|(agent, kept)| Step::Release { agent, kept }),
    ]
}

fn to_command(state: &State, step: &Step, keys: &[CellKey], at_ms: i64) -> Command {
    let key = |i: usize| keys[i % keys.len()].clone();
    match step {
        Step::Grant { agent, cell } => Command::GrantLeases {
            agent_id: AGENTS[*agent].parse().unwrap(),
            leases: vec![(sweep_id(1), key(*cell))],
            at_ms,
            lease_seconds: 10,
        },
        Step::Complete { agent, cell, attempt, epoch, status } => Command::CompleteCell(Completion {
            sweep_id: sweep_id(1),
            cell_key: key(*cell),
            agent_id: AGENTS[*agent].parse().unwrap(),
            attempt: *attempt,
            epoch: *epoch,
            status: STATUSES[*status],
            error: Some("boom".into()),
            files: vec![],
            at_ms,
        }),
        Step::Expire { cell, epoch } => {
            Command::ExpireLeases { expired: vec![(sweep_id(1), key(*cell), *epoch)], at_ms }
        }
        Step::CompleteHeld { cell, status } => match state.lease(&sweep_id(1), &key(*cell)) {
            Some(lease) => {
                let holder = state.active_leases().into_iter().find(|l| l.epoch == lease.epoch).map(|l| l.agent_id);
                completion(&lease, holder.as_ref().map_or("", |h| h.as_str()), STATUSES[*status])
            }
            None => Command::CancelSweep { sweep_id: sweep_id(9), at_ms },
        },
        Step::Cancel => Command::CancelSweep { sweep_id: sweep_id(1), at_ms },
        Step::Register { agent, slots } => register_command(AGENTS[*agent], *slots),
        Step::Release { agent, kept } => Command::ReleaseLeases {
            agent_id: AGENTS[*agent].parse().unwrap(),
            keep: kept
                .and_then(|cell| state.lease(&sweep_id(1), &key(cell)))
                .map(|l| (l.sweep_id, l.cell_key, l.epoch))
                .into_iter()
                .collect(),
            reason: "released".into(),
            at_ms,
        },
    }
}

fn run(steps: &[Step]) -> (State, Vec<Outcome>) {
    let (mut state, keys) = setup();
    let mut outcomes = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        let command = to_command(&state, step, &keys, i as i64);
        outcomes.push(apply(&mut state, command));
        check_invariants(&state);
    }
    (state, outcomes)
}

fn check_invariants(state: &State) {
    let mut epochs = std::collections::BTreeSet::new();
    for sweep in state.sweeps() {
        for (key, record) in &sweep.cells {
            assert!(record.attempts <= sweep.spec.policy.max_attempts, "{key}: too many attempts");
            match &record.state {
                CellState::Leased { agent_id, attempt, epoch, .. } => {
                    assert_eq!(*attempt, record.attempts, "{key}: leased attempt is the latest");
                    assert!(!record.results.contains_key(attempt), "{key}: leased and done");
                    assert!(epochs.insert(*epoch), "{key}: epoch {epoch} reused");
                    assert!(*epoch <= state.last_epoch());
                    let held =
                        state.agent(agent_id.as_str()).is_some_and(|a| a.leases.contains(&(sweep.id, key.clone())));
                    assert!(held, "{key}: leased cell missing from its agent's index");
                }
                CellState::Done { attempt, .. } => {
                    assert!(record.results.contains_key(attempt), "{key}: done without result")
                }
                CellState::Failed => {
                    assert_eq!(record.reasons.len() as u32, record.attempts, "{key}: a reason per attempt")
                }
                CellState::Pending | CellState::Cancelled => {}
            }
        }
    }
    for sweep in state.sweeps() {
        let indexed: std::collections::BTreeSet<&CellKey> = sweep.pending.groups().flatten().collect();
        let pending: std::collections::BTreeSet<&CellKey> =
            sweep.cells.iter().filter(|(_, r)| r.state == CellState::Pending).map(|(k, _)| k).collect();
        assert_eq!(indexed, pending, "the pending index is the pending cells");
    }
    for agent in state.agents() {
        for (sweep_id, key) in &agent.leases {
            assert!(state.lease(sweep_id, key).is_some(), "{key}: indexed but not leased");
        }
    }
}

proptest! {
    #[test]
    fn applying_the_same_commands_gives_the_same_state(steps in prop::collection::vec(step(), 0..60)) {
        let (first, first_outcomes) = run(&steps);
        let (second, second_outcomes) = run(&steps);
        prop_assert_eq!(&first, &second);
        prop_assert_eq!(first_outcomes, second_outcomes);
        let json = serde_json::to_string(&first).expect("encodes");
        prop_assert_eq!(serde_json::from_str::<State>(&json).expect("decodes"), first);
    }
}

// ---------------------------------------------------------------------------------
// The lease lifecycle against a reference model: the same random histories applied to
// the real state and to a small model written from the rules alone (re-register,
// grant, complete, duplicate, stale epoch, expiry, release, cancel), compared after
// every step.

/// What the model knows of one cell.
#[derive(Debug, Clone, PartialEq)]
enum ModelCell {
    Pending,
    Leased { agent: String, attempt: u32, epoch: u64 },
    Done,
    Failed,
    Cancelled,
}

/// A cell in the model: its state, attempts started, and the committed attempts with the
/// agent and epoch that committed each.
type ModelRecord = (ModelCell, u32, BTreeMap<u32, (String, u64)>);

#[derive(Debug, Clone)]
struct Model {
    cells: Vec<ModelRecord>,
    slots: BTreeMap<String, u32>,
    last_epoch: u64,
    max_attempts: u32,
}

impl Model {
    fn new() -> Model {
        let slots = [("a1".to_string(), 1), ("a2".to_string(), 1)].into_iter().collect();
        Model { cells: vec![(ModelCell::Pending, 0, BTreeMap::new()); 2], slots, last_epoch: 0, max_attempts: 2 }
    }

    fn held_by(&self, agent: &str) -> u32 {
        self.cells.iter().filter(|(c, ..)| matches!(c, ModelCell::Leased { agent: a, .. } if a == agent)).count() as u32
    }

    fn end_attempt(&mut self, cell: usize) {
        let attempts = self.cells[cell].1;
        self.cells[cell].0 = if attempts < self.max_attempts { ModelCell::Pending } else { ModelCell::Failed };
    }

    fn step(&mut self, step: &Step, keys_len: usize) {
        let at = |i: usize| i % keys_len;
        match step {
            Step::Grant { agent, cell } => {
                let (agent, cell) = (AGENTS[*agent].to_string(), at(*cell));
                let Some(&slots) = self.slots.get(&agent) else { return };
                let (state, attempts, _) = &self.cells[cell];
                if *state == ModelCell::Pending && *attempts < self.max_attempts && self.held_by(&agent) < slots {
                    self.last_epoch += 1;
                    let attempt = attempts + 1;
                    self.cells[cell].1 = attempt;
                    self.cells[cell].0 = ModelCell::Leased { agent, attempt, epoch: self.last_epoch };
                }
            }
            Step::Complete { agent, cell, attempt, epoch, status } => {
                self.complete(AGENTS[*agent], at(*cell), *attempt, *epoch, STATUSES[*status]);
            }
            Step::CompleteHeld { cell, status } => {
                if let ModelCell::Leased { agent, attempt, epoch } = self.cells[at(*cell)].0.clone() {
                    self.complete(&agent, at(*cell), attempt, epoch, STATUSES[*status]);
                }
            }
            Step::Expire { cell, epoch } => {
                if matches!(&self.cells[at(*cell)].0, ModelCell::Leased { epoch: e, .. } if e == epoch) {
                    self.end_attempt(at(*cell));
                }
            }
            Step::Release { agent, kept } => {
                let agent = AGENTS[*agent];
                if !self.slots.contains_key(agent) {
                    return;
                }
                for cell in 0..self.cells.len() {
                    let held = matches!(&self.cells[cell].0, ModelCell::Leased { agent: a, .. } if a == agent);
                    if held && kept.map(at) != Some(cell) {
                        self.end_attempt(cell);
                    }
                }
            }
            Step::Cancel => {
                if self.cells.iter().all(|(c, ..)| *c != ModelCell::Cancelled) {
                    for (c, ..) in &mut self.cells {
                        if matches!(c, ModelCell::Pending | ModelCell::Leased { .. }) {
                            *c = ModelCell::Cancelled;
                        }
                    }
                }
            }
            Step::Register { agent, slots } => {
                // A registration with 0 slots is refused and changes nothing.
                if *slots > 0 {
                    self.slots.insert(AGENTS[*agent].to_string(), *slots);
                }
            }
        }
    }

    fn complete(&mut self, agent: &str, cell: usize, attempt: u32, epoch: u64, status: Status) {
        if self.cells[cell].2.contains_key(&attempt) {
            return; // a duplicate or a stale re-send: nothing changes
        }
        let holds = matches!(&self.cells[cell].0,
            ModelCell::Leased { agent: a, attempt: t, epoch: e } if a == agent && *t == attempt && *e == epoch);
        if !holds {
            return;
        }
        self.cells[cell].2.insert(attempt, (agent.to_string(), epoch));
        match status {
            Status::Ok | Status::Unsupported => self.cells[cell].0 = ModelCell::Done,
            _ => self.end_attempt(cell),
        }
    }
}

fn model_view(state: &State, keys: &[CellKey]) -> Vec<(ModelCell, u32)> {
    keys.iter()
        .map(|key| {
            let record = state.cell(&sweep_id(1), key).expect("known cell");
            let cell = match &record.state {
                CellState::Pending => ModelCell::Pending,
                CellState::Leased { agent_id, attempt, epoch, .. } => {
                    ModelCell::Leased { agent: agent_id.to_string(), attempt: *attempt, epoch: *epoch }
                }
                CellState::Done { .. } => ModelCell::Done,
                CellState::Failed => ModelCell::Failed,
                CellState::Cancelled => ModelCell::Cancelled,
            };
            (cell, record.attempts)
        })
        .collect()
}

proptest! {
    #[test]
    fn the_lease_lifecycle_follows_the_reference_model(steps in prop::collection::vec(step(), 0..80)) {
        let (mut state, keys) = setup();
        let mut model = Model::new();
        for (i, step) in steps.iter().enumerate() {
            let command = to_command(&state, step, &keys, i as i64);
            apply(&mut state, command);
            model.step(step, keys.len());
            let expected: Vec<(ModelCell, u32)> = model.cells.iter().map(|(c, n, _)| (c.clone(), *n)).collect();
            prop_assert_eq!(model_view(&state, &keys), expected, "after step {} ({:?})", i, step);
        }
    }
}
