//! The invariants of a simulated run, checked as it goes and at its end.
//!
//! - **Log agreement**: every node that applies index `i` applies the same entry.
//! - **Replica agreement**: every node that has applied up to `i` holds the same state
//!   (compared by a hash of its JSON, the bytes of a snapshot).
//! - **Reference replica**: the committed entries, in index order, are applied to a
//!   state of the checker's own; after each entry every cell of the sweep is compared
//!   with the cell before it:
//!   - cell states only move forward: a final cell never changes, attempts never go
//!     down, a committed result is never changed or removed;
//!   - none unexpected: a new result names an (attempt, epoch, agent) that was leased;
//!   - none duplicated: at most one final (`ok`/`unsupported`) result per cell.
//! - **Nothing acknowledged lost**: every result an agent got an acknowledgement for is,
//!   at the end, in every replica's state and its file in the manifest.
//! - **Liveness**: after the faults heal, every cell is final within the bound.
//!
//! Must never: trust what a node says about itself; the checker sees entries and states.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{Hash, Hasher};

use raft::eraftpb::Entry;
use shared::cell::CellKey;
use shared::result::Status;

use super::Violation;
use crate::raft::apply::apply_entry;
use crate::state::{AgentId, CellRecord, CellState, Lease, State, SweepId};

/// (sweep, cell, attempt, epoch, agent)
type Grant = (SweepId, CellKey, u32, u64, AgentId);

#[derive(Default)]
pub(super) struct Checker {
    /// index → (term, hash of the data) of the entry applied there.
    entries: HashMap<u64, (u64, u64)>,
    /// applied index → hash of the state after it.
    states: HashMap<u64, u64>,
    reference: State,
    next: u64,
    buffered: BTreeMap<u64, Entry>,
    cells: BTreeMap<(SweepId, CellKey), CellRecord>,
    grants: HashSet<Grant>,
    acked: Vec<(Grant, Status)>,
    pub n_checked_entries: u64,
}

impl Checker {
    /// Entries node `node` applied, in order.
    pub(super) fn applied(&mut self, node: u64, entries: &[Entry]) -> Result<(), Violation> {
        for entry in entries {
            let seen = (entry.term, hash(&entry.data));
            match self.entries.get(&entry.index) {
                Some(first) if *first != seen => {
                    return Err(Violation::new(
                        "log divergence",
                        format!(
                            "node {node} applied (term {}) at index {}, another node term {}",
                            seen.0, entry.index, first.0
                        ),
                    ));
                }
                Some(_) => {}
                None => {
                    self.entries.insert(entry.index, seen);
                }
            }
            if entry.index >= self.next.max(1) {
                self.buffered.insert(entry.index, entry.clone());
            }
        }
        self.feed_reference()
    }

    /// The state node `node` holds after applying up to `index`.
    pub(super) fn state_at(&mut self, node: u64, index: u64, state: &State) -> Result<(), Violation> {
        let h = state_hash(state);
        match self.states.get(&index) {
            Some(first) if *first != h => Err(Violation::new(
                "replica divergence",
                format!("node {node} at applied index {index} holds another state"),
            )),
            Some(_) => Ok(()),
            None => {
                self.states.insert(index, h);
                Ok(())
            }
        }
    }

    /// An agent was told its result was committed.
    pub(super) fn acknowledged(&mut self, lease: &Lease, agent: &AgentId, status: Status) {
        let grant = (lease.sweep_id, lease.cell_key.clone(), lease.attempt, lease.epoch, agent.clone());
        self.acked.push((grant, status));
    }

    fn feed_reference(&mut self) -> Result<(), Violation> {
        self.next = self.next.max(1);
        while let Some(entry) = self.buffered.remove(&self.next) {
            apply_entry(&mut self.reference, &entry)
                .map_err(|e| Violation::new("undecodable entry", format!("index {}: {e}", entry.index)))?;
            self.n_checked_entries += 1;
            self.check_cells(entry.index)?;
            self.next += 1;
        }
        // What is below `next` was fed already; an entry re-applied after a restart is
        // checked for agreement above and needs nothing more.
        let next = self.next;
        self.buffered.retain(|index, _| *index >= next);
        Ok(())
    }

    fn check_cells(&mut self, index: u64) -> Result<(), Violation> {
        let fail =
            |what: &'static str, detail: String| Err(Violation::new(what, format!("at index {index}: {detail}")));
        for sweep in self.reference.sweeps() {
            for (key, record) in &sweep.cells {
                let id = (sweep.id, key.clone());
                if let CellState::Leased { agent_id, attempt, epoch, .. } = &record.state {
                    self.grants.insert((sweep.id, key.clone(), *attempt, *epoch, agent_id.clone()));
                }
                if let Some(before) = self.cells.get(&id) {
                    if before == record {
                        continue;
                    }
                    if before.state.is_final() {
                        return fail(
                            "cell moved backwards",
                            format!("final cell {key} changed from {:?} to {:?}", before.state, record.state),
                        );
                    }
                    if record.attempts < before.attempts {
                        return fail(
                            "cell moved backwards",
                            format!("cell {key} attempts {} → {}", before.attempts, record.attempts),
                        );
                    }
                    for (attempt, result) in &before.results {
                        if record.results.get(attempt) != Some(result) {
                            return fail("result lost or changed", format!("cell {key} attempt {attempt}"));
                        }
                    }
                }
                for (attempt, result) in &record.results {
                    let new = self.cells.get(&id).is_none_or(|b| !b.results.contains_key(attempt));
                    let grant = (sweep.id, key.clone(), *attempt, result.epoch, result.agent_id.clone());
                    if new && !self.grants.contains(&grant) {
                        return fail(
                            "unexpected result",
                            format!(
                                "cell {key} attempt {attempt} epoch {} by `{}` was never leased so",
                                result.epoch, result.agent_id
                            ),
                        );
                    }
                }
                let n_final =
                    record.results.values().filter(|r| matches!(r.status, Status::Ok | Status::Unsupported)).count();
                if n_final > 1 {
                    return fail("duplicated result", format!("cell {key} has {n_final} final results"));
                }
                self.cells.insert(id, record.clone());
            }
        }
        Ok(())
    }

    /// The end of a run whose cells are all final and whose nodes all caught up.
    pub(super) fn finish(&mut self, finals: &[(u64, State)], sweep_id: SweepId) -> Result<(), Violation> {
        let Some((_, first)) = finals.first() else { return Err(Violation::new("setup", "no nodes".into())) };
        for (node, state) in finals {
            if state != first {
                return Err(Violation::new(
                    "replica divergence",
                    format!("node {node} ends with another state than node {}", finals[0].0),
                ));
            }
        }
        if &self.reference != first {
            return Err(Violation::new(
                "replica divergence",
                format!("the replicas differ from the committed log replayed in order (up to index {})", self.next - 1),
            ));
        }
        self.nothing_lost(first, sweep_id, true)
    }

    /// Every acknowledged result (and the sweep, once its submit was acknowledged) is in
    /// `state`, with its file in the manifest.
    pub(super) fn nothing_lost(&self, state: &State, sweep_id: SweepId, submitted: bool) -> Result<(), Violation> {
        let Some(sweep) = state.sweep(&sweep_id) else {
            if submitted {
                return Err(Violation::new("sweep lost", format!("sweep {sweep_id} was acknowledged and is gone")));
            }
            return Ok(());
        };
        let manifest: HashSet<&str> = state.manifest().map(|f| f.path.as_str()).collect();
        for ((_, key, attempt, epoch, agent), status) in &self.acked {
            let result = sweep.cells.get(key).and_then(|c| c.results.get(attempt));
            let kept = result.is_some_and(|r| r.epoch == *epoch && &r.agent_id == agent && r.status == *status);
            if !kept {
                return Err(Violation::new(
                    "acknowledged result lost",
                    format!("cell {key} attempt {attempt} epoch {epoch} by `{agent}`: state has {result:?}"),
                ));
            }
            let path = format!("results/{key}-{attempt}-{epoch}.parquet");
            if !manifest.contains(path.as_str()) {
                return Err(Violation::new("acknowledged result lost", format!("file {path} is not in the manifest")));
            }
        }
        Ok(())
    }

    pub(super) fn liveness(&self, now: u64, summary: String) -> Violation {
        Violation::new("liveness", format!("not every cell final by {now} ms of virtual time: {summary}"))
    }
}

fn hash(bytes: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

fn state_hash(state: &State) -> u64 {
    hash(&crate::raft::apply::snapshot_bytes(state).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    //! The checks fail when they should: each is shown a history that breaks it.

    use shared::result::Status;

    use super::*;
    use crate::sim::sweep_command;
    use crate::state::command::{Command, Completion};
    use crate::state::DeviceGroup;
    use crate::warehouse::file::FileEntry;
    use crate::warehouse::schema::Table;

    fn entry(index: u64, term: u64, command: &Command) -> Entry {
        Entry { index, term, data: command.encode().expect("encodes").into(), ..Entry::default() }
    }

    /// Entries 1–3: submit a 2-cell sweep, register agent `a`, lease it the first cell;
    /// and the state after each.
    fn history() -> (Vec<Entry>, Vec<State>, SweepId) {
        let sweep_id = SweepId::from_u128(9);
        let devices = vec![DeviceGroup::new("cpu/sim".into(), None, 2)];
        let register =
            Command::RegisterAgent { agent_id: "a".parse().unwrap(), devices, labels: Default::default(), at_ms: 1 };
        let mut state = State::default();
        let mut entries = Vec::new();
        let mut states = Vec::new();
        let mut push = |state: &mut State, command: Command| {
            entries.push(entry(entries.len() as u64 + 1, 1, &command));
            crate::state::apply(state, command);
            states.push(state.clone());
        };
        push(&mut state, sweep_command(sweep_id, 2, 1).expect("builds"));
        push(&mut state, register);
        let key = state.sweep(&sweep_id).unwrap().cells.keys().next().unwrap().clone();
        let grant = Command::GrantLeases {
            agent_id: "a".parse().unwrap(),
            leases: vec![(sweep_id, key)],
            at_ms: 2,
            lease_seconds: 3,
        };
        push(&mut state, grant);
        (entries, states, sweep_id)
    }

    fn completion(state: &State, sweep_id: SweepId) -> Command {
        let lease = state.leases_of("a").into_iter().next().expect("a holds a lease");
        Command::CompleteCell(Completion {
            sweep_id,
            cell_key: lease.cell_key,
            agent_id: "a".parse().unwrap(),
            attempt: lease.attempt,
            epoch: lease.epoch,
            status: Status::Ok,
            error: None,
            files: vec![FileEntry { path: "results/x.parquet".into(), table: Table::Results, rows: 1, bytes: 1 }],
            at_ms: 3,
        })
    }

    fn what(result: Result<(), Violation>) -> &'static str {
        result.err().map_or("passed", |v| v.what)
    }

    #[test]
    fn a_result_under_the_leased_epoch_passes() {
        let (mut entries, states, sweep_id) = history();
        entries.push(entry(4, 1, &completion(&states[2], sweep_id)));
        let mut checker = Checker::default();
        assert_eq!(what(checker.applied(1, &entries)), "passed");
        assert_eq!(checker.n_checked_entries, 4);
    }

    #[test]
    fn two_entries_at_one_index_are_a_divergence() {
        let (entries, _, _) = history();
        let mut checker = Checker::default();
        checker.applied(1, &entries).expect("one node's log is fine");
        let mut other = entries[2].clone();
        other.term = 2;
        assert_eq!(what(checker.applied(2, &[other])), "log divergence");
    }

    #[test]
    fn two_states_at_one_index_are_a_divergence() {
        let (_, states, _) = history();
        let mut checker = Checker::default();
        checker.state_at(1, 3, &states[2]).expect("first");
        assert_eq!(what(checker.state_at(2, 3, &states[1])), "replica divergence");
    }

    #[test]
    fn a_result_nobody_was_leased_is_unexpected() {
        let (entries, states, sweep_id) = history();
        let mut checker = Checker::default();
        checker.applied(1, &entries[..2]).expect("submit and register");
        // The reference jumps to a state with a result whose lease it never saw.
        let mut forged = states[2].clone();
        crate::state::apply(&mut forged, completion(&states[2], sweep_id));
        checker.reference = forged;
        assert_eq!(what(checker.check_cells(3)), "unexpected result");
    }

    #[test]
    fn a_final_cell_that_changes_moved_backwards() {
        let (entries, states, sweep_id) = history();
        let mut done = states[2].clone();
        crate::state::apply(&mut done, completion(&states[2], sweep_id));
        let mut checker = Checker::default();
        checker.applied(1, &entries).expect("fine");
        checker.reference = done;
        checker.check_cells(4).expect("the cell is done");
        checker.reference = states[2].clone();
        assert_eq!(what(checker.check_cells(5)), "cell moved backwards");
    }

    #[test]
    fn an_acknowledged_result_missing_at_the_end_is_lost() {
        let (entries, states, sweep_id) = history();
        let mut checker = Checker::default();
        checker.applied(1, &entries).expect("fine");
        let lease = states[2].leases_of("a").into_iter().next().unwrap();
        checker.acknowledged(&lease, &"a".parse().unwrap(), Status::Ok);
        let finals = vec![(1, states[2].clone())];
        assert_eq!(what(checker.finish(&finals, sweep_id)), "acknowledged result lost");
    }
}
