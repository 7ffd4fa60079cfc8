//! [`apply`]: the one way the replicated [`State`] changes, and the [`Outcome`] that says
//! what happened.
//!
//! Every check that protects the state is made here, again, even when the leader checked
//! before proposing: between proposal and commit other entries may have changed the cell
//! (a lease expired, a sweep was cancelled, another result arrived). A refused command
//! leaves the state exactly as it was.
//!
//! Must never: read the clock, do I/O, panic on any command (commands come from the log,
//! which outlives the code that wrote it), or iterate anything in a non-deterministic order.
//!
//! Over 600 lines on purpose: every rule of the state machine (and every refusal) in one
//! file, read top to bottom beside the `match` in [`apply`]; its tests are in `tests/`.

use std::collections::{BTreeMap, BTreeSet};

use shared::cell::{Cell, CellKey};
use shared::result::Status;
use shared::spec::SweepSpec;

use super::command::{Command, Completion, TraceContext};
use super::{
    Agent, AgentId, CellRecord, CellState, CellStateKind, CommittedResult, DeviceGroup, FileEntry, Lease, PendingIndex,
    State, Sweep, SweepId,
};

/// What applying one command did.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Submitted {
        sweep_id: SweepId,
        n_cells: usize,
    },
    /// `stopped` lists the leases that were running: their agents should stop them.
    Cancelled {
        sweep_id: SweepId,
        n_cells: usize,
        stopped: Vec<(AgentId, SweepId, CellKey)>,
    },
    AgentRegistered {
        agent_id: AgentId,
        known_before: bool,
    },
    /// Each requested lease is either granted or refused with its reason.
    LeasesGranted {
        granted: Vec<Lease>,
        refused: Vec<(SweepId, CellKey, Rejection)>,
    },
    /// The result was committed; the cell is now in `state` (pending again for a retry).
    Completed {
        state: CellStateKind,
    },
    /// This attempt's result was already committed (a re-send): nothing changed, and the
    /// sender may treat it as acknowledged.
    Duplicate {
        status: Status,
    },
    /// The leases an agent no longer holds were ended (`released`, in key order).
    LeasesReleased {
        released: Vec<(SweepId, CellKey)>,
    },
    /// The agent is gone; the leases it held were ended (`released`, in key order).
    AgentRemoved {
        released: Vec<(SweepId, CellKey)>,
    },
    /// Leases whose epoch was still current were ended; the others are `skipped`.
    LeasesExpired {
        n_retried: usize,
        n_failed: usize,
        skipped: Vec<(SweepId, CellKey, Rejection)>,
    },
    FilesCommitted {
        n_new: usize,
        n_already: usize,
    },
    /// Every completion of a `CompleteCells` committed: each cell's state now, in order.
    CellsCompleted {
        states: Vec<CellStateKind>,
    },
    /// A `CompleteCells` changed nothing: the completions at these positions are re-sends
    /// (`Duplicate`) or refused (`Rejected`); without them the rest could commit.
    CompletionsRefused {
        refused: Vec<(usize, Outcome)>,
    },
    /// What each command of a `Batch` did, in order.
    Batch(Vec<Outcome>),
    Rejected(Rejection),
}

/// Why a command, or one part of it, was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Rejection {
    #[error("unknown sweep {0}")]
    UnknownSweep(SweepId),
    #[error("sweep {0} already exists")]
    SweepExists(SweepId),
    #[error("sweep {0} has no cells")]
    NoCells(SweepId),
    #[error("cell key {0} does not match its cell")]
    CellKeyMismatch(CellKey),
    #[error("cell key {0} appears twice")]
    DuplicateCellKey(CellKey),
    #[error("sweep {0} is cancelled")]
    SweepCancelled(SweepId),
    #[error("unknown cell {cell_key} in sweep {sweep_id}")]
    UnknownCell { sweep_id: SweepId, cell_key: CellKey },
    #[error("unknown agent `{0}`")]
    UnknownAgent(AgentId),
    #[error("agent `{agent_id}`: {problem}")]
    InvalidAgent { agent_id: AgentId, problem: String },
    #[error("refused: {0}")]
    Full(String),
    #[error("cell {cell_key} is {state:?}, expected pending")]
    NotPending { cell_key: CellKey, state: CellStateKind },
    #[error("cell {cell_key} has used all {max_attempts} attempts")]
    NoAttemptsLeft { cell_key: CellKey, max_attempts: u32 },
    #[error("agent `{agent_id}` has no free device that can run cell {cell_key}")]
    NoFreeDevice { agent_id: AgentId, cell_key: CellKey },
    #[error("cell {cell_key} is {state:?}, not leased")]
    NotLeased { cell_key: CellKey, state: CellStateKind },
    #[error("cell {cell_key} is leased to `{holder}`, not to `{got}`")]
    WrongAgent { cell_key: CellKey, holder: AgentId, got: AgentId },
    #[error("cell {cell_key}: stale epoch {got}, the current lease has epoch {current}")]
    StaleEpoch { cell_key: CellKey, current: u64, got: u64 },
    #[error("cell {cell_key}: attempt {got} does not match the leased attempt {current}")]
    WrongAttempt { cell_key: CellKey, current: u32, got: u32 },
    #[error("file `{path}` is already committed with another table or row count")]
    ConflictingFile { path: String },
    #[error("file `{path}` appears twice in one commit")]
    DuplicateFile { path: String },
    #[error("cell {0} has two results in one commit")]
    CompletedTwice(CellKey),
    #[error("a batch inside a batch")]
    NestedBatch,
    #[error("cell {cell_key}: the result does not describe the leased cell: {problem}")]
    WrongLabel { cell_key: CellKey, problem: String },
}

/// Applies one command. Deterministic: the same state and command give the same result.
pub fn apply(state: &mut State, command: Command) -> Outcome {
    match command {
        Command::SubmitSweep { sweep_id, submitted_at_ms, spec, cells, trace, submitted_by } => {
            submit(state, sweep_id, submitted_at_ms, spec, cells, (trace, submitted_by))
        }
        Command::CancelSweep { sweep_id, at_ms } => cancel(state, sweep_id, at_ms),
        Command::RegisterAgent { agent_id, devices, labels, at_ms } => {
            register(state, agent_id, devices, labels, at_ms)
        }
        Command::GrantLeases { agent_id, leases, at_ms: _, lease_seconds } => {
            grant(state, &agent_id, &leases, lease_seconds)
        }
        Command::CompleteCell(completion) => complete(state, completion),
        Command::ExpireLeases { expired, at_ms } => expire(state, &expired, at_ms),
        Command::ReleaseLeases { agent_id, keep, reason, at_ms } => {
            release_unheld(state, &agent_id, &keep, &reason, at_ms)
        }
        Command::RemoveAgent { agent_id, at_ms } => remove_agent(state, &agent_id, at_ms),
        Command::CommitFiles { files, at_ms: _ } => commit_files(state, files),
        Command::CompleteCells { completions, files } => complete_all(state, completions, files),
        Command::Batch { commands } => Outcome::Batch(
            commands
                .into_iter()
                .map(|command| match command {
                    Command::Batch { .. } => Outcome::Rejected(Rejection::NestedBatch),
                    command => apply(state, command),
                })
                .collect(),
        ),
    }
}

fn submit(
    state: &mut State,
    sweep_id: SweepId,
    at_ms: i64,
    spec: SweepSpec,
    cells: Vec<(CellKey, Cell)>,
    (trace, submitted_by): (Option<TraceContext>, Option<String>),
) -> Outcome {
    if state.sweeps.contains_key(&sweep_id) {
        return Outcome::Rejected(Rejection::SweepExists(sweep_id));
    }
    if cells.is_empty() {
        return Outcome::Rejected(Rejection::NoCells(sweep_id));
    }
    let mut records = BTreeMap::new();
    for (key, cell) in cells {
        // The key is the result's idempotency key: one that does not follow from the
        // cell would let two different cells share results.
        if cell.key(&spec.name) != key {
            return Outcome::Rejected(Rejection::CellKeyMismatch(key));
        }
        let record = CellRecord {
            cell,
            state: CellState::Pending,
            attempts: 0,
            reasons: Vec::new(),
            results: BTreeMap::new(),
            retry_after_ms: None,
        };
        if let Some(previous) = records.insert(key, record) {
            let key = previous.cell.key(&spec.name);
            return Outcome::Rejected(Rejection::DuplicateCellKey(key));
        }
    }
    let n_cells = records.len();
    let mut pending = PendingIndex::default();
    for (key, record) in &records {
        pending.sync(key, record);
    }
    let sweep = Sweep {
        id: sweep_id,
        name: spec.name.clone(),
        spec,
        submitted_at_ms: at_ms,
        cancelled_at_ms: None,
        cells: records,
        pending,
        trace,
        submitted_by,
    };
    state.sweeps.insert(sweep_id, sweep);
    Outcome::Submitted { sweep_id, n_cells }
}

fn cancel(state: &mut State, sweep_id: SweepId, at_ms: i64) -> Outcome {
    let State { sweeps, agents, .. } = state;
    let Some(sweep) = sweeps.get_mut(&sweep_id) else {
        return Outcome::Rejected(Rejection::UnknownSweep(sweep_id));
    };
    if sweep.cancelled_at_ms.is_some() {
        return Outcome::Rejected(Rejection::SweepCancelled(sweep_id));
    }
    sweep.cancelled_at_ms = Some(at_ms);
    let mut n_cells = 0;
    let mut stopped = Vec::new();
    for (key, record) in sweep.cells.iter_mut().filter(|(_, r)| !r.state.is_final()) {
        if let CellState::Leased { agent_id, .. } = &record.state {
            release(agents, agent_id, sweep_id, key);
            stopped.push((agent_id.clone(), sweep_id, key.clone()));
        }
        record.state = CellState::Cancelled;
        n_cells += 1;
    }
    sweep.pending = PendingIndex::default();
    Outcome::Cancelled { sweep_id, n_cells, stopped }
}

fn register(
    state: &mut State,
    agent_id: AgentId,
    devices: Vec<DeviceGroup>,
    labels: BTreeMap<String, String>,
    at_ms: i64,
) -> Outcome {
    if let Err(problem) = check_devices(&devices) {
        return Outcome::Rejected(Rejection::InvalidAgent { agent_id, problem });
    }
    if agent_id.as_str().trim().is_empty() {
        return Outcome::Rejected(Rejection::InvalidAgent { agent_id, problem: "empty agent id".into() });
    }
    if let Err(full) = check_room(state, &agent_id, &devices) {
        return Outcome::Rejected(Rejection::Full(full));
    }
    let known_before = match state.agents.get_mut(&agent_id) {
        Some(agent) => {
            agent.devices = devices;
            agent.labels = labels;
            true
        }
        None => {
            let agent =
                Agent { id: agent_id.clone(), devices, labels, registered_at_ms: at_ms, leases: BTreeSet::new() };
            state.agents.insert(agent_id.clone(), agent);
            false
        }
    };
    Outcome::AgentRegistered { agent_id, known_before }
}

/// Most agents the state holds: beyond, a registration from a new id is refused (the
/// state, every sweep's fan-out and every lease round grow with the fleet).
pub const MAX_AGENTS: usize = 10_000;
/// Most distinct hardware classes across the fleet: each is a target every matching
/// sweep fans out to.
pub const MAX_HARDWARE_CLASSES: usize = 1_000;

/// Whether `agent_id` registering `devices` keeps the fleet within [`MAX_AGENTS`] and
/// [`MAX_HARDWARE_CLASSES`]. A known agent re-registering is never refused for the
/// agent count; its old devices do not count against its new ones.
fn check_room(state: &State, agent_id: &AgentId, devices: &[DeviceGroup]) -> Result<(), String> {
    if !state.agents.contains_key(agent_id) && state.agents.len() >= MAX_AGENTS {
        return Err(format!("{MAX_AGENTS} agents are registered, the most this coordinator holds"));
    }
    let others = || state.agents.values().filter(|a| &a.id != agent_id).flat_map(|a| a.devices.iter());
    let new_class = devices.iter().any(|d| !others().any(|o| o.class == d.class));
    if new_class {
        let classes: BTreeSet<&str> =
            others().map(|d| d.class.as_str()).chain(devices.iter().map(|d| d.class.as_str())).collect();
        if classes.len() > MAX_HARDWARE_CLASSES {
            return Err(format!(
                "{} hardware classes with this agent's, at most {MAX_HARDWARE_CLASSES}",
                classes.len()
            ));
        }
    }
    Ok(())
}

fn check_devices(devices: &[DeviceGroup]) -> Result<(), String> {
    if devices.is_empty() {
        return Err("no devices".into());
    }
    let mut seen = BTreeSet::new();
    for group in devices {
        if group.slots == 0 {
            return Err(format!("device group `{}` has 0 slots, expected at least 1", group.class));
        }
        if !seen.insert(group.class.as_str()) {
            return Err(format!("device group `{}` appears twice", group.class));
        }
    }
    Ok(())
}

fn grant(state: &mut State, agent_id: &AgentId, wanted: &[(SweepId, CellKey)], lease_seconds: u32) -> Outcome {
    let State { sweeps, agents, last_epoch, .. } = state;
    let Some(agent) = agents.get_mut(agent_id) else {
        return Outcome::Rejected(Rejection::UnknownAgent(agent_id.clone()));
    };
    let mut used = slots_in_use(sweeps, agent);
    let mut granted = Vec::new();
    let mut refused = Vec::new();
    for (sweep_id, cell_key) in wanted {
        match grant_one(sweeps, agent, &mut used, *sweep_id, cell_key) {
            Ok((record, pending, device_class)) => {
                *last_epoch += 1;
                record.attempts += 1;
                record.state = CellState::Leased {
                    agent_id: agent.id.clone(),
                    attempt: record.attempts,
                    epoch: *last_epoch,
                    lease_seconds,
                    device_class: device_class.clone(),
                };
                pending.sync(cell_key, record);
                agent.leases.insert((*sweep_id, cell_key.clone()));
                granted.push(Lease {
                    sweep_id: *sweep_id,
                    cell_key: cell_key.clone(),
                    cell: record.cell.clone(),
                    attempt: record.attempts,
                    epoch: *last_epoch,
                    lease_seconds,
                    device_class,
                });
            }
            Err(rejection) => refused.push((*sweep_id, cell_key.clone(), rejection)),
        }
    }
    Outcome::LeasesGranted { granted, refused }
}

/// How many of each device group's slots the agent's current leases occupy.
fn slots_in_use(sweeps: &BTreeMap<SweepId, Sweep>, agent: &Agent) -> BTreeMap<String, u32> {
    let mut used = BTreeMap::new();
    for (sweep_id, key) in &agent.leases {
        let record = sweeps.get(sweep_id).and_then(|s| s.cells.get(key));
        if let Some(CellRecord { state: CellState::Leased { device_class, .. }, .. }) = record {
            *used.entry(device_class.clone()).or_insert(0) += 1;
        }
    }
    used
}

/// Checks one requested lease and reserves a device slot for it: the first device group,
/// in the agent's order, that can run the cell and has a free slot. The scheduler plans
/// with the same rule, so its plans pass here unless the state moved in between.
fn grant_one<'s>(
    sweeps: &'s mut BTreeMap<SweepId, Sweep>,
    agent: &Agent,
    used: &mut BTreeMap<String, u32>,
    sweep_id: SweepId,
    cell_key: &CellKey,
) -> Result<(&'s mut CellRecord, &'s mut PendingIndex, String), Rejection> {
    let sweep = sweeps.get_mut(&sweep_id).ok_or(Rejection::UnknownSweep(sweep_id))?;
    if sweep.cancelled_at_ms.is_some() {
        return Err(Rejection::SweepCancelled(sweep_id));
    }
    let max_attempts = sweep.spec.policy.max_attempts;
    let Sweep { cells, pending, .. } = sweep;
    let record =
        cells.get_mut(cell_key).ok_or_else(|| Rejection::UnknownCell { sweep_id, cell_key: cell_key.clone() })?;
    if record.state != CellState::Pending {
        return Err(Rejection::NotPending { cell_key: cell_key.clone(), state: record.state.kind() });
    }
    if record.attempts >= max_attempts {
        return Err(Rejection::NoAttemptsLeft { cell_key: cell_key.clone(), max_attempts });
    }
    let group = agent
        .devices
        .iter()
        .find(|g| agent.can_run(g, &record.cell) && used.get(&g.class).copied().unwrap_or(0) < g.slots)
        .ok_or_else(|| Rejection::NoFreeDevice { agent_id: agent.id.clone(), cell_key: cell_key.clone() })?;
    *used.entry(group.class.clone()).or_insert(0) += 1;
    Ok((record, pending, group.class.clone()))
}

fn complete(state: &mut State, mut c: Completion) -> Outcome {
    if let Err(outcome) = check_completion(state, &c) {
        return outcome;
    }
    let files = std::mem::take(&mut c.files);
    match record_completion(state, c) {
        Ok(kind) => {
            for file in files {
                state.manifest.insert(file.path.clone(), file);
            }
            Outcome::Completed { state: kind }
        }
        Err(rejection) => Outcome::Rejected(rejection),
    }
}

/// All or nothing: every completion is checked against the state before any is recorded.
fn complete_all(state: &mut State, completions: Vec<Completion>, files: Vec<FileEntry>) -> Outcome {
    if let Err(rejection) = check_files(state, &files) {
        return Outcome::Rejected(rejection);
    }
    let mut seen = BTreeSet::new();
    let mut refused = Vec::new();
    for (i, c) in completions.iter().enumerate() {
        if !seen.insert((c.sweep_id, &c.cell_key)) {
            refused.push((i, Outcome::Rejected(Rejection::CompletedTwice(c.cell_key.clone()))));
        } else if let Err(outcome) = check_completion(state, c) {
            refused.push((i, outcome));
        }
    }
    if !refused.is_empty() {
        return Outcome::CompletionsRefused { refused };
    }
    let mut states = Vec::with_capacity(completions.len());
    for c in completions {
        // Checked above, and no two touch the same cell, so none can fail here; were one
        // to, the ones before it stay recorded and its position says which.
        match record_completion(state, c) {
            Ok(kind) => states.push(kind),
            Err(rejection) => return Outcome::Rejected(rejection),
        }
    }
    for file in files {
        state.manifest.insert(file.path.clone(), file);
    }
    Outcome::CellsCompleted { states }
}

/// Whether `c` can be recorded now: `Err` carries what applying it would answer (a
/// duplicate re-send, or a refusal). The leader asks it too, before writing any file.
pub fn check_completion(state: &State, c: &Completion) -> Result<(), Outcome> {
    let sweep = state.sweeps.get(&c.sweep_id).ok_or(Outcome::Rejected(Rejection::UnknownSweep(c.sweep_id)))?;
    let record = sweep.cells.get(&c.cell_key).ok_or_else(|| {
        Outcome::Rejected(Rejection::UnknownCell { sweep_id: c.sweep_id, cell_key: c.cell_key.clone() })
    })?;
    if let Some(previous) = record.results.get(&c.attempt) {
        return Err(resend(previous, c));
    }
    check_holder(record, c).map_err(Outcome::Rejected)
}

/// Records a checked completion: ends the lease, keeps the result, moves the cell on.
fn record_completion(state: &mut State, c: Completion) -> Result<CellStateKind, Rejection> {
    let State { sweeps, agents, .. } = state;
    let sweep = sweeps.get_mut(&c.sweep_id).ok_or(Rejection::UnknownSweep(c.sweep_id))?;
    let max_attempts = sweep.spec.policy.max_attempts;
    let Sweep { cells, pending, .. } = sweep;
    let record = cells
        .get_mut(&c.cell_key)
        .ok_or_else(|| Rejection::UnknownCell { sweep_id: c.sweep_id, cell_key: c.cell_key.clone() })?;
    release(agents, &c.agent_id, c.sweep_id, &c.cell_key);
    record.results.insert(
        c.attempt,
        CommittedResult { agent_id: c.agent_id.clone(), epoch: c.epoch, status: c.status, committed_at_ms: c.at_ms },
    );
    record.state = match c.status {
        Status::Ok | Status::Unsupported => CellState::Done { status: c.status, attempt: c.attempt },
        Status::Failed | Status::Crashed | Status::Oom | Status::Timeout => {
            let error = c.error.as_deref().filter(|e| !e.trim().is_empty()).unwrap_or("no reason given");
            let reason = format!("attempt {} on `{}`: {}: {error}", c.attempt, c.agent_id, c.status);
            let backoff = retry_backoff_ms(record.attempts);
            end_attempt(record, reason, max_attempts, c.at_ms.saturating_add(backoff))
        }
    };
    pending.sync(&c.cell_key, record);
    Ok(record.state.kind())
}

/// A result for an attempt already committed: the same lease re-sending is a duplicate;
/// anyone else is refused.
fn resend(previous: &CommittedResult, c: &Completion) -> Outcome {
    if previous.agent_id == c.agent_id && previous.epoch == c.epoch {
        Outcome::Duplicate { status: previous.status }
    } else {
        Outcome::Rejected(Rejection::StaleEpoch { cell_key: c.cell_key.clone(), current: previous.epoch, got: c.epoch })
    }
}

/// The cell must be leased to this agent, under this epoch and attempt.
fn check_holder(record: &CellRecord, c: &Completion) -> Result<(), Rejection> {
    let cell_key = c.cell_key.clone();
    let CellState::Leased { agent_id, attempt, epoch, .. } = &record.state else {
        return Err(Rejection::NotLeased { cell_key, state: record.state.kind() });
    };
    if *agent_id != c.agent_id {
        return Err(Rejection::WrongAgent { cell_key, holder: agent_id.clone(), got: c.agent_id.clone() });
    }
    if *epoch != c.epoch {
        return Err(Rejection::StaleEpoch { cell_key, current: *epoch, got: c.epoch });
    }
    if *attempt != c.attempt {
        return Err(Rejection::WrongAttempt { cell_key, current: *attempt, got: c.attempt });
    }
    Ok(())
}

/// Records why an attempt ended without a result and decides what comes next: another
/// attempt, not before `retry_at_ms`, while any are left, else `failed` for good.
fn end_attempt(record: &mut CellRecord, reason: String, max_attempts: u32, retry_at_ms: i64) -> CellState {
    record.reasons.push(reason);
    if record.attempts < max_attempts {
        record.retry_after_ms = Some(retry_at_ms);
        CellState::Pending
    } else {
        CellState::Failed
    }
}

/// 5 s after the first failed attempt, doubling, at most 5 minutes: long enough for a
/// machine that just crashed to come back, short enough not to stall a sweep.
pub fn retry_backoff_ms(n_failed_attempts: u32) -> i64 {
    let doublings = n_failed_attempts.saturating_sub(1).min(6);
    (5_000i64 << doublings).min(300_000)
}

/// The wait before a cell whose lease ended without a result (its agent went silent, or
/// restarted) is leased again: none after its first attempt, since losing an agent is
/// not the cell's failure and the lease time was already waited out (a lost agent's cell
/// runs again within the lease time and a poll); the usual backoff, one step behind,
/// after more, in case the cell is what takes its machines down.
pub fn lost_lease_backoff_ms(n_attempts: u32) -> i64 {
    match n_attempts {
        0 | 1 => 0,
        n => retry_backoff_ms(n - 1),
    }
}

fn expire(state: &mut State, expired: &[(SweepId, CellKey, u64)], at_ms: i64) -> Outcome {
    let ended = end_leases(state, expired, at_ms, &format!("lease expired at {at_ms} ms"));
    Outcome::LeasesExpired { n_retried: ended.n_retried, n_failed: ended.n_failed, skipped: ended.skipped }
}

fn release_unheld(
    state: &mut State,
    agent_id: &AgentId,
    keep: &[(SweepId, CellKey, u64)],
    reason: &str,
    at_ms: i64,
) -> Outcome {
    let Some(agent) = state.agents.get(agent_id) else {
        return Outcome::Rejected(Rejection::UnknownAgent(agent_id.clone()));
    };
    let unheld: Vec<(SweepId, CellKey, u64)> = agent
        .leases
        .iter()
        .filter_map(|(sweep_id, key)| {
            let epoch = match state.cell(sweep_id, key).map(|c| &c.state) {
                Some(CellState::Leased { epoch, .. }) => *epoch,
                _ => return None,
            };
            let held = keep.iter().any(|(s, k, e)| s == sweep_id && k == key && *e == epoch);
            (!held).then(|| (*sweep_id, key.clone(), epoch))
        })
        .collect();
    end_leases(state, &unheld, at_ms, reason);
    Outcome::LeasesReleased { released: unheld.into_iter().map(|(s, k, _)| (s, k)).collect() }
}

fn remove_agent(state: &mut State, agent_id: &AgentId, at_ms: i64) -> Outcome {
    let released = match release_unheld(state, agent_id, &[], "its agent was removed by an operator", at_ms) {
        Outcome::LeasesReleased { released } => released,
        other => return other,
    };
    state.agents.remove(agent_id);
    Outcome::AgentRemoved { released }
}

/// What [`end_leases`] did.
struct Ended {
    n_retried: usize,
    n_failed: usize,
    skipped: Vec<(SweepId, CellKey, Rejection)>,
}

/// Ends each lease whose epoch is still current as a failed attempt (`why` says how it
/// ended): the cell goes back to pending while attempts are left, else to failed.
fn end_leases(state: &mut State, leases: &[(SweepId, CellKey, u64)], at_ms: i64, why: &str) -> Ended {
    let State { sweeps, agents, .. } = state;
    let mut ended = Ended { n_retried: 0, n_failed: 0, skipped: Vec::new() };
    for (sweep_id, cell_key, epoch) in leases {
        let Some(sweep) = sweeps.get_mut(sweep_id) else {
            ended.skipped.push((*sweep_id, cell_key.clone(), Rejection::UnknownSweep(*sweep_id)));
            continue;
        };
        let max_attempts = sweep.spec.policy.max_attempts;
        let Sweep { cells, pending, .. } = sweep;
        let Some(record) = cells.get_mut(cell_key) else {
            let rejection = Rejection::UnknownCell { sweep_id: *sweep_id, cell_key: cell_key.clone() };
            ended.skipped.push((*sweep_id, cell_key.clone(), rejection));
            continue;
        };
        let (holder, attempt) = match &record.state {
            CellState::Leased { agent_id, attempt, epoch: current, .. } if current == epoch => {
                (agent_id.clone(), *attempt)
            }
            CellState::Leased { epoch: current, .. } => {
                let rejection = Rejection::StaleEpoch { cell_key: cell_key.clone(), current: *current, got: *epoch };
                ended.skipped.push((*sweep_id, cell_key.clone(), rejection));
                continue;
            }
            other => {
                let rejection = Rejection::NotLeased { cell_key: cell_key.clone(), state: other.kind() };
                ended.skipped.push((*sweep_id, cell_key.clone(), rejection));
                continue;
            }
        };
        release(agents, &holder, *sweep_id, cell_key);
        let reason = format!("attempt {attempt} on `{holder}`: {why}");
        let retry_at = at_ms.saturating_add(lost_lease_backoff_ms(record.attempts));
        record.state = end_attempt(record, reason, max_attempts, retry_at);
        pending.sync(cell_key, record);
        match record.state {
            CellState::Pending => ended.n_retried += 1,
            _ => ended.n_failed += 1,
        }
    }
    ended
}

fn commit_files(state: &mut State, files: Vec<FileEntry>) -> Outcome {
    // All or nothing: check every file before inserting any.
    let n_already = match check_files(state, &files) {
        Ok(n_already) => n_already,
        Err(rejection) => return Outcome::Rejected(rejection),
    };
    let n_new = files.len() - n_already;
    for file in files {
        state.manifest.insert(file.path.clone(), file);
    }
    Outcome::FilesCommitted { n_new, n_already }
}

/// Files may be committed if none appears twice and none is committed already with other
/// contents; `Ok` counts those committed already, identically.
fn check_files(state: &State, files: &[FileEntry]) -> Result<usize, Rejection> {
    let mut paths = BTreeSet::new();
    let mut n_already = 0;
    for file in files {
        if !paths.insert(file.path.as_str()) {
            return Err(Rejection::DuplicateFile { path: file.path.clone() });
        }
        match state.manifest.get(&file.path) {
            Some(existing) if existing.same_file(file) => n_already += 1,
            Some(_) => return Err(Rejection::ConflictingFile { path: file.path.clone() }),
            None => {}
        }
    }
    Ok(n_already)
}

/// Drops a lease from its agent's index (the agent may have been forgotten meanwhile).
fn release(agents: &mut BTreeMap<AgentId, Agent>, agent_id: &AgentId, sweep_id: SweepId, key: &CellKey) {
    if let Some(agent) = agents.get_mut(agent_id) {
        agent.leases.remove(&(sweep_id, key.clone()));
    }
}
