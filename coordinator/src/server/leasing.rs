//! Lease requests served in batches: every request waiting when the batcher comes round
//! is planned in one Raft read ([`scheduler::plan_batch`]) and granted in one proposal (a
//! [`Command::Batch`] of `GrantLeases`, one per agent and sweep), so a thousand agents
//! asking at once cost one read, one log entry and one fsync instead of a thousand.
//!
//! Batching adds no waiting: the batcher takes whatever queued while the previous batch
//! was in Raft, and a lone request is served at once.
//!
//! Must never: grant a cell to two agents (apply re-checks every grant), or answer a
//! request before its grants are applied.

use std::collections::BTreeMap;

use proto::v1::{Lease as WireLease, LeaseRef};
use shared::cell::CellKey;
use tokio::sync::{mpsc, oneshot};
use tonic::Status;

use super::errors::{raft_status, shutting_down, unexpected};
use super::{now_ms, Ctx};
use crate::scheduler;
use crate::state::command::TraceContext;
use crate::state::{AgentId, CellState, Command, Lease, Outcome, SweepId};

/// Most requests planned together: bounds the time one batch holds the state's lock.
const MAX_BATCH: usize = 1024;
/// Requests queued beyond the batch in progress before callers wait.
const QUEUE: usize = 8192;

type Reply = oneshot::Sender<Result<Vec<WireLease>, Status>>;

/// What one agent asks for.
pub(crate) struct Want {
    pub agent_id: AgentId,
    pub max_cells: usize,
    /// The leases the agent says it holds (sweep, cell, epoch); the others it has on
    /// record are ended before planning.
    pub held: Vec<(SweepId, CellKey, u64)>,
}

struct Request {
    want: Want,
    reply: Reply,
}

/// The handle RPCs use; cheap to clone.
#[derive(Clone)]
pub struct Leasing {
    tx: mpsc::Sender<Request>,
}

impl Leasing {
    /// Starts the batcher task; it ends when every handle is dropped.
    pub fn start(ctx: Ctx) -> Leasing {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(ctx, rx));
        Leasing { tx }
    }

    /// Up to `max_cells` new leases for a registered agent (possibly none);
    /// `NotFound` for an agent that never registered.
    pub async fn lease(
        &self,
        agent_id: AgentId,
        max_cells: usize,
        held: Vec<(SweepId, CellKey, u64)>,
    ) -> Result<Vec<WireLease>, Status> {
        let (reply, answer) = oneshot::channel();
        let stopped = shutting_down;
        self.tx.send(Request { want: Want { agent_id, max_cells, held }, reply }).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

async fn run(ctx: Ctx, mut rx: mpsc::Receiver<Request>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        serve_batch(&ctx, std::mem::take(&mut batch)).await;
    }
}

/// What one Raft read decides for a batch: each request's plan (`None`: unknown agent)
/// and, for each sweep planned from, its lease time, measure policy as JSON and trace.
pub(crate) struct Planned {
    pub plans: Vec<Option<Vec<(SweepId, CellKey)>>>,
    sweeps: BTreeMap<SweepId, SweepInfo>,
    /// `ReleaseLeases` for the agents whose request leaves out a lease they have on record.
    pub releases: Vec<Command>,
}

/// What a lease carries from its sweep.
#[derive(Clone, Default)]
struct SweepInfo {
    lease_seconds: u32,
    measure_json: String,
    trace: Option<TraceContext>,
    weights: Vec<shared::spec::ModelWeights>,
}

async fn serve_batch(ctx: &Ctx, batch: Vec<Request>) {
    let now = now_ms();
    let wants: Vec<&Want> = batch.iter().map(|r| &r.want).collect();
    let mut planned = match ctx.raft.read(|s| plan(s, &wants, now)).await {
        Ok(planned) => planned,
        Err(e) => return reply_all(batch, &raft_status(e)),
    };
    // Rare: some agent holds less than the state says. End those leases first, then
    // plan again, so the slots they took are free for this very request.
    if !planned.releases.is_empty() {
        match ctx.raft.propose(Command::Batch { commands: std::mem::take(&mut planned.releases) }).await {
            Ok(Outcome::Batch(outcomes)) => log_releases(&outcomes),
            Ok(other) => return reply_all(batch, &unexpected(&other)),
            Err(e) => return reply_all(batch, &raft_status(e)),
        }
        planned = match ctx.raft.read(|s| plan(s, &wants, now)).await {
            Ok(planned) => planned,
            Err(e) => return reply_all(batch, &raft_status(e)),
        };
    }
    let (commands, owners) = grant_commands(&wants, &planned, now);
    let mut leases: Vec<Vec<WireLease>> = batch.iter().map(|_| Vec::new()).collect();
    if !commands.is_empty() {
        match ctx.raft.propose(Command::Batch { commands }).await {
            Ok(Outcome::Batch(outcomes)) => {
                for (outcome, &owner) in outcomes.into_iter().zip(&owners) {
                    collect_grants(outcome, wants[owner].agent_id.as_str(), &planned.sweeps, &mut leases[owner]);
                }
            }
            Ok(other) => return reply_all(batch, &unexpected(&other)),
            Err(e) => return reply_all(batch, &raft_status(e)),
        }
    }
    for ((request, plan), leases) in batch.into_iter().zip(&planned.plans).zip(leases) {
        let answer = match plan {
            None => {
                Err(Status::not_found(format!("agent_id {:?}: unknown agent, register first", request.want.agent_id)))
            }
            Some(_) => Ok(leases),
        };
        let _ = request.reply.send(answer);
    }
}

/// Plans a batch on the leader's state (the real server after a Raft read; the simulation
/// on its node's state): what to release first, and what to grant.
pub(crate) fn plan(s: &crate::state::State, batch: &[&Want], now_ms: i64) -> Planned {
    let refs: Vec<(&str, usize)> = batch.iter().map(|r| (r.agent_id.as_str(), r.max_cells)).collect();
    let plans: Vec<_> = scheduler::plan_batch(s, &refs, now_ms)
        .into_iter()
        .zip(&refs)
        .map(|(plan, (id, _))| s.agent(id).is_some().then_some(plan))
        .collect();
    let mut sweeps = BTreeMap::new();
    for (sweep_id, _) in plans.iter().flatten().flatten() {
        if let (false, Some(sweep)) = (sweeps.contains_key(sweep_id), s.sweep(sweep_id)) {
            let info = SweepInfo {
                lease_seconds: sweep.spec.policy.lease_seconds,
                measure_json: serde_json::to_string(&sweep.spec.measure).unwrap_or_default(),
                trace: sweep.trace.clone(),
                weights: sweep.spec.weights.clone(),
            };
            sweeps.insert(*sweep_id, info);
        }
    }
    let releases = batch.iter().filter(|r| holds_unlisted(s, r)).map(|r| release_unheld(r, now_ms)).collect();
    Planned { plans, sweeps, releases }
}

/// Whether the state has a lease on record for the request's agent that the request
/// does not list.
fn holds_unlisted(s: &crate::state::State, r: &Want) -> bool {
    let Some(agent) = s.agent(r.agent_id.as_str()) else { return false };
    agent.leases.iter().any(|(sweep_id, key)| match s.cell(sweep_id, key).map(|c| &c.state) {
        Some(CellState::Leased { epoch, .. }) => {
            !r.held.iter().any(|(s, k, e)| s == sweep_id && k == key && e == epoch)
        }
        _ => false,
    })
}

fn release_unheld(r: &Want, at_ms: i64) -> Command {
    Command::ReleaseLeases {
        agent_id: r.agent_id.clone(),
        keep: r.held.clone(),
        reason: "the agent asked for work without listing it (a lost reply, or a lease taken in its name)".into(),
        at_ms,
    }
}

fn log_releases(outcomes: &[Outcome]) {
    for outcome in outcomes {
        if let Outcome::LeasesReleased { released } = outcome {
            for (sweep_id, cell_key) in released {
                tracing::warn!(%sweep_id, %cell_key, "ended a lease its agent does not hold");
            }
        }
    }
}

/// One `GrantLeases` per agent and sweep (each sweep has its own lease time), in plan
/// order, and for each command the position of the request it serves.
pub(crate) fn grant_commands(batch: &[&Want], planned: &Planned, now: i64) -> (Vec<Command>, Vec<usize>) {
    let mut commands = Vec::new();
    let mut owners = Vec::new();
    for (i, plan) in planned.plans.iter().enumerate() {
        let Some(plan) = plan else { continue };
        let mut by_sweep: Vec<(SweepId, Vec<(SweepId, CellKey)>)> = Vec::new();
        for (sweep_id, key) in plan {
            match by_sweep.iter_mut().find(|(id, _)| id == sweep_id) {
                Some((_, leases)) => leases.push((*sweep_id, key.clone())),
                None => by_sweep.push((*sweep_id, vec![(*sweep_id, key.clone())])),
            }
        }
        for (sweep_id, leases) in by_sweep {
            let lease_seconds = planned.sweeps.get(&sweep_id).map_or(120, |info| info.lease_seconds);
            commands.push(Command::GrantLeases {
                agent_id: batch[i].agent_id.clone(),
                leases,
                at_ms: now,
                lease_seconds,
            });
            owners.push(i);
        }
    }
    (commands, owners)
}

fn collect_grants(outcome: Outcome, agent_id: &str, sweeps: &BTreeMap<SweepId, SweepInfo>, into: &mut Vec<WireLease>) {
    let granted = match outcome {
        Outcome::LeasesGranted { granted, refused } => {
            if !refused.is_empty() {
                // The plan was made on the state this batch's earlier grants then changed;
                // rare, harmless: those cells stay pending for the next request.
                tracing::debug!(agent_id, n = refused.len(), "planned leases refused at apply");
            }
            granted
        }
        other => {
            tracing::warn!(agent_id, ?other, "a grant was refused");
            return;
        }
    };
    for lease in granted {
        tracing::info!(agent_id, sweep_id = %lease.sweep_id, cell_key = %lease.cell_key, attempt = lease.attempt, "lease granted");
        into.push(wire(lease, sweeps));
    }
}

fn wire(l: Lease, sweeps: &BTreeMap<SweepId, SweepInfo>) -> WireLease {
    let SweepInfo { lease_seconds, measure_json, trace, weights } =
        sweeps.get(&l.sweep_id).cloned().unwrap_or_default();
    let weights = weights.iter().find(|w| w.serves(&l.cell.model, l.cell.precision));
    WireLease {
        lease: Some(LeaseRef {
            sweep_id: l.sweep_id.to_string(),
            cell_key: l.cell_key.to_string(),
            attempt: l.attempt,
            epoch: l.epoch,
        }),
        cell_json: serde_json::to_string(&l.cell).unwrap_or_default(),
        measure_json,
        lease_seconds,
        traceparent: trace.as_ref().map(|t| t.traceparent.clone()).unwrap_or_default(),
        tracestate: trace.map(|t| t.tracestate).unwrap_or_default(),
        device_class: l.device_class,
        weights_json: weights.and_then(|w| serde_json::to_string(w).ok()).unwrap_or_default(),
    }
}

fn reply_all(batch: Vec<Request>, status: &Status) {
    for request in batch {
        let _ = request.reply.send(Err(status.clone()));
    }
}
