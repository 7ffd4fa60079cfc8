//! The simulated world: coordinator nodes (the real [`Node`] on [`SimStorage`]), agents,
//! the network between them, and virtual time, driven by one event queue and one seeded
//! RNG. Nothing here reads the clock or spawns a thread, so a seed replays exactly.
//!
//! Each node plays the real coordinator's part for agents: it plans leases with the
//! real `leasing::plan` and `scheduler`, proposes the real commands, and expires leases
//! of agents silent for their lease time, counting silence from when it last heard the
//! agent or from when it became leader, whichever is later (a new leader's grace).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, RwLock};

use raft::eraftpb::Message;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use shared::cell::CellKey;
use shared::result::Status;
use tokio::sync::oneshot;

use super::check::Checker;
use super::disk::{Disk, SimStorage};
use super::{Config, Counts, Fault, Violation};
use crate::raft::node::{Delivery, Msg, Node, NodeConfig};
use crate::raft::transport::Transport;
use crate::raft::{RaftError, Status as RaftStatus};
use crate::server::leasing::{grant_commands, plan, Want};
use crate::state::command::Completion;
use crate::state::{AgentId, Command, DeviceGroup, Outcome, State, SweepId};
use crate::warehouse::file::FileEntry;
use crate::warehouse::schema::Table;

/// Virtual milliseconds since the start of the run.
pub type Ms = u64;

const TICK_MS: Ms = crate::raft::node::TICK_INTERVAL.as_millis() as Ms;
const EXPIRY_EVERY_MS: Ms = 1_000;
const RPC_TIMEOUT_MS: Ms = 2_000;
pub const LEASE_SECONDS: u32 = 3;

/// Collects what the node sends; the world routes it.
#[derive(Clone, Default)]
struct Outbox(Arc<Mutex<Vec<Message>>>);

impl Transport for Outbox {
    fn send(&mut self, messages: Vec<Message>) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).extend(messages);
    }
}

type SimNode = Node<SimStorage, Outbox>;

/// What an agent asks a node.
#[derive(Debug, Clone)]
enum Request {
    Register,
    Lease { held: Vec<(SweepId, CellKey, u64)>, max_cells: usize },
    Complete(Completion),
}

/// What a node answers.
#[derive(Debug)]
enum Reply {
    NotLeader(Option<u64>),
    Failed,
    Registered,
    Leases(Vec<crate::state::Lease>),
    /// Leases the agent does not hold were ended; ask again.
    Again,
    Completion(Outcome),
}

enum Event {
    Tick(u64),
    Raft(Message),
    /// The sender of a snapshot learns whether it arrived.
    Delivered {
        from: u64,
        to: u64,
        delivery: Delivery,
    },
    AgentWake(usize),
    Request {
        node: u64,
        agent: usize,
        rpc: u64,
        request: Request,
    },
    Reply {
        agent: usize,
        rpc: u64,
        reply: Reply,
    },
    Submit,
    Fault(Fault),
    Restart(u64),
    Heal,
}

/// A proposal whose answer goes back to someone.
struct Waiting {
    to: Asker,
    kind: WaitKind,
    rx: oneshot::Receiver<Result<Outcome, RaftError>>,
}

enum Asker {
    Agent { agent: usize, rpc: u64 },
    Submitter,
    Expiry,
}

#[derive(Clone, Copy, PartialEq)]
enum WaitKind {
    Register,
    Release,
    Grant,
    Complete,
    Other,
}

struct Coordinator {
    id: u64,
    node: Option<SimNode>,
    state: Arc<RwLock<State>>,
    status: Arc<RaftStatus>,
    outbox: Outbox,
    disk: Arc<Mutex<Disk>>,
    waiting: Vec<Waiting>,
    /// Soft state: when each agent was last heard from, by this node's clock.
    last_seen: HashMap<usize, Ms>,
    leader_since: Option<Ms>,
    expiring: bool,
    /// Added to virtual time for the wall clock this node stamps on commands.
    clock_offset_ms: i64,
    last_applied: u64,
}

struct Held {
    lease: crate::state::Lease,
    done_at: Ms,
    status: Status,
}

struct Agent {
    id: AgentId,
    slots: u32,
    guess: u64,
    registered: bool,
    held: BTreeMap<(SweepId, CellKey), Held>,
    in_flight: Option<InFlight>,
    paused_until: Ms,
}

/// The one request an agent waits on.
struct InFlight {
    rpc: u64,
    sent: Ms,
    /// The finished lease it reports, for a completion.
    reporting: Option<(SweepId, CellKey)>,
}

struct Net {
    /// Links that drop everything, as (from, to).
    cut: Vec<(u64, u64)>,
    drop_per_mille: u32,
    dup_per_mille: u32,
}

pub(super) struct World {
    config: Config,
    pub now: Ms,
    rng: ChaCha8Rng,
    queue: BinaryHeap<Reverse<(Ms, u64)>>,
    events: HashMap<u64, Event>,
    next_seq: u64,
    next_rpc: u64,
    nodes: Vec<Coordinator>,
    agents: Vec<Agent>,
    net: Net,
    sweep_id: SweepId,
    submitted: bool,
    healed_at: Option<Ms>,
    checker: Checker,
    pub counts: Counts,
}

impl World {
    pub(super) fn new(seed: u64, config: Config, faults: Vec<(Ms, Fault)>) -> Result<World, Violation> {
        let voters: Vec<u64> = (1..=config.nodes).collect();
        let mut world = World {
            rng: ChaCha8Rng::seed_from_u64(seed ^ 0x0005_eed0_fa11),
            now: 0,
            queue: BinaryHeap::new(),
            events: HashMap::new(),
            next_seq: 0,
            next_rpc: 0,
            nodes: Vec::new(),
            agents: Vec::new(),
            net: Net { cut: Vec::new(), drop_per_mille: 0, dup_per_mille: 0 },
            sweep_id: SweepId::from_u128(u128::from(seed) + 1),
            submitted: false,
            healed_at: None,
            checker: Checker::default(),
            counts: Counts::default(),
            config,
        };
        for &id in &voters {
            let disk = Arc::new(Mutex::new(Disk::new(&voters)));
            lock(&disk).lying = world.config.lying_disks;
            world.nodes.push(Coordinator {
                id,
                node: None,
                state: Arc::default(),
                status: Arc::default(),
                outbox: Outbox::default(),
                disk,
                waiting: Vec::new(),
                last_seen: HashMap::new(),
                leader_since: None,
                expiring: false,
                clock_offset_ms: 0,
                last_applied: 0,
            });
            world.start_node(id)?;
        }
        for i in 0..world.config.agents {
            let guess = world.rng.random_range(1..=world.config.nodes);
            let slots = world.rng.random_range(1..=3);
            world.agents.push(Agent {
                id: format!("sim-agent-{i}").parse().map_err(|e| Violation::setup(format!("agent id: {e}")))?,
                slots,
                guess,
                registered: false,
                held: BTreeMap::new(),
                in_flight: None,
                paused_until: 0,
            });
            let at = world.rng.random_range(0..500);
            world.schedule(at, Event::AgentWake(i));
        }
        let submit_at = world.rng.random_range(0..1_000);
        world.schedule(submit_at, Event::Submit);
        for (at, fault) in faults {
            world.schedule(at, Event::Fault(fault));
        }
        let heal_at = world.config.fault_ms;
        world.schedule(heal_at, Event::Heal);
        Ok(world)
    }

    /// Runs until every cell is final after the faults healed, or the liveness bound.
    pub(super) fn run(&mut self) -> Result<(), Violation> {
        let deadline = self.config.fault_ms + self.config.liveness_ms;
        while let Some(Reverse((at, seq))) = self.queue.pop() {
            if at > deadline {
                break;
            }
            self.now = at;
            let Some(event) = self.events.remove(&seq) else { continue };
            self.counts.events += 1;
            self.handle(event)?;
            if self.healed_at.is_some() && self.submitted && self.all_final() && self.all_caught_up() {
                return self.checker.finish(&self.final_states(), self.sweep_id);
            }
        }
        // Safety first: what was acknowledged must be there even if the run is stuck.
        let furthest = self.nodes.iter().filter(|c| c.node.is_some()).max_by_key(|c| c.last_applied);
        if let Some(c) = furthest {
            let state = c.state.read().unwrap_or_else(|p| p.into_inner());
            self.checker.nothing_lost(&state, self.sweep_id, self.submitted)?;
        }
        Err(self.checker.liveness(self.now, self.summary()))
    }

    fn schedule(&mut self, after: Ms, event: Event) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.events.insert(seq, event);
        self.queue.push(Reverse((self.now + after, seq)));
    }

    fn handle(&mut self, event: Event) -> Result<(), Violation> {
        match event {
            Event::Tick(id) => self.tick(id)?,
            Event::Raft(message) => {
                let (from, to) = (message.from, message.to);
                let snapshot = message.get_msg_type() == raft::eraftpb::MessageType::MsgSnapshot;
                let arrived = self.node(to).node.is_some();
                if let Some(node) = self.node_mut(to).node.as_mut() {
                    node.handle(Msg::Step(Box::new(message))).map_err(|e| Violation::setup(e.to_string()))?;
                    self.after(to)?;
                }
                if snapshot {
                    let delivery = if arrived { Delivery::SnapshotDone } else { Delivery::SnapshotFailed };
                    let delay = self.delay();
                    self.schedule(delay, Event::Delivered { from, to, delivery });
                }
            }
            Event::Delivered { from, to, delivery } => {
                if let Some(node) = self.node_mut(from).node.as_mut() {
                    node.handle(Msg::Report { peer: to, delivery }).map_err(|e| Violation::setup(e.to_string()))?;
                    self.after(from)?;
                }
            }
            Event::AgentWake(agent) => self.agent_wake(agent),
            Event::Request { node, agent, rpc, request } => self.serve(node, agent, rpc, request)?,
            Event::Reply { agent, rpc, reply } => self.agent_reply(agent, rpc, reply),
            Event::Submit => self.submit()?,
            Event::Fault(fault) => self.inject(fault)?,
            Event::Restart(id) => {
                if self.node(id).node.is_none() && !lock(&self.node(id).disk).full {
                    self.start_node(id)?;
                } else if self.node(id).node.is_none() {
                    self.schedule(500, Event::Restart(id));
                }
            }
            Event::Heal => self.heal()?,
        }
        Ok(())
    }

    // ---- nodes ------------------------------------------------------------------------

    fn node(&self, id: u64) -> &Coordinator {
        &self.nodes[(id - 1) as usize]
    }

    fn node_mut(&mut self, id: u64) -> &mut Coordinator {
        &mut self.nodes[(id - 1) as usize]
    }

    fn start_node(&mut self, id: u64) -> Result<(), Violation> {
        let config = NodeConfig {
            id,
            voters: Vec::new(),
            path: format!("sim://node-{id}").into(),
            tick_interval: std::time::Duration::from_millis(TICK_MS),
            election_tick: crate::raft::node::ELECTION_TICK,
            max_election_tick: crate::raft::node::MAX_ELECTION_TICK,
            heartbeat_tick: crate::raft::node::HEARTBEAT_TICK,
            snapshot_every: self.config.snapshot_every,
            max_in_flight: 1024,
        };
        let c = self.node_mut(id);
        let storage = SimStorage::open(id, Arc::clone(&c.disk));
        c.outbox = Outbox::default();
        c.status = Arc::default();
        let (mut node, state) =
            Node::new(&config, storage, c.outbox.clone(), Arc::new(AtomicBool::new(false)), Arc::clone(&c.status))
                .map_err(|e| Violation::setup(format!("node {id} did not start: {e}")))?;
        node.record_applied();
        c.node = Some(node);
        c.state = state;
        c.waiting.clear();
        c.last_seen.clear();
        c.leader_since = None;
        c.expiring = false;
        c.last_applied = 0;
        let first_tick = self.rng.random_range(1..=TICK_MS);
        self.schedule(first_tick, Event::Tick(id));
        self.after(id)
    }

    fn crash(&mut self, id: u64) {
        let c = self.node_mut(id);
        if c.node.take().is_some() {
            c.waiting.clear();
            self.counts.crashes += 1;
        }
    }

    fn tick(&mut self, id: u64) -> Result<(), Violation> {
        let Some(node) = self.node_mut(id).node.as_mut() else { return Ok(()) };
        node.tick();
        self.schedule(TICK_MS, Event::Tick(id));
        if self.now % EXPIRY_EVERY_MS < TICK_MS {
            self.expire(id)?;
        }
        self.after(id)
    }

    /// After anything happened to a node: its Ready, then route messages, answer
    /// whoever waits, and record what it applied.
    fn after(&mut self, id: u64) -> Result<(), Violation> {
        let now = self.now;
        let c = &mut self.nodes[(id - 1) as usize];
        let Some(node) = c.node.as_mut() else { return Ok(()) };
        if let Err(error) = node.on_ready() {
            // A storage fault stops the real node; here the process is gone, as after a
            // crash, and comes back from what its disk holds.
            tracing::debug!(node = id, %error, "simulated node stopped");
            self.crash(id);
            self.counts.storage_faults += 1;
            let back = self.rng.random_range(200..2_000);
            self.schedule(back, Event::Restart(id));
            return Ok(());
        }
        let applied_entries = node.take_applied();
        let applied = node.applied();
        let mut messages = std::mem::take(&mut *c.outbox.0.lock().unwrap_or_else(|p| p.into_inner()));
        // raft-rs keeps its peers in a HashMap, so a broadcast comes out in a different
        // order each run; each peer's own messages keep their order.
        messages.sort_by_key(|m| m.to);
        let status = c.status.now();
        match (status.is_leader(), c.leader_since) {
            (true, None) => c.leader_since = Some(now),
            (false, Some(_)) => c.leader_since = None,
            _ => {}
        }
        if let Some(raft) = c.node.as_mut().map(|n| n.raft_mut()) {
            if raft.election_elapsed == 0 {
                // raft-rs may have drawn a new timeout from its unseeded RNG in the event
                // just handled (every draw zeroes the elapsed count, and only a later tick
                // compares against it): replace it with a draw from the seed. Deciding on
                // the elapsed count, never on raft's value, keeps the seed's stream exact.
                raft.set_randomized_election_timeout(
                    self.rng.random_range(crate::raft::node::ELECTION_TICK..crate::raft::node::MAX_ELECTION_TICK),
                );
            }
        }
        let hash_due = applied != c.last_applied;
        c.last_applied = applied;
        if !applied_entries.is_empty() {
            self.checker.applied(id, &applied_entries)?;
        }
        if hash_due {
            let state = Arc::clone(&self.node(id).state);
            let state = state.read().unwrap_or_else(|p| p.into_inner());
            self.checker.state_at(id, applied, &state)?;
        }
        for message in messages {
            self.route(message);
        }
        self.answer_waiting(id);
        Ok(())
    }

    fn route(&mut self, message: Message) {
        let (from, to) = (message.from, message.to);
        let snapshot = message.get_msg_type() == raft::eraftpb::MessageType::MsgSnapshot;
        self.counts.messages += 1;
        self.counts.snapshots_sent += u64::from(snapshot);
        if self.net.cut.contains(&(from, to)) || self.rng.random_range(0..1000) < self.net.drop_per_mille {
            self.counts.dropped += 1;
            if snapshot {
                // The snapshot's stream broke: its sender hears so, as from a real transport.
                let delay = self.delay();
                self.schedule(delay, Event::Delivered { from, to, delivery: Delivery::SnapshotFailed });
            }
            return;
        }
        if self.rng.random_range(0..1000) < self.net.dup_per_mille {
            let delay = self.delay();
            self.schedule(delay, Event::Raft(message.clone()));
        }
        let delay = self.delay();
        self.schedule(delay, Event::Raft(message));
    }

    /// One-way latency: mostly short, sometimes long (reorders messages).
    fn delay(&mut self) -> Ms {
        if self.rng.random_range(0..100) < 5 {
            self.rng.random_range(50..400)
        } else {
            self.rng.random_range(1..20)
        }
    }

    fn propose(&mut self, id: u64, command: Command, to: Asker, kind: WaitKind) -> Result<(), Violation> {
        let (reply, rx) = oneshot::channel();
        let c = self.node_mut(id);
        let Some(node) = c.node.as_mut() else { return Ok(()) };
        node.handle(Msg::Propose { command: Box::new(command), reply }).map_err(|e| Violation::setup(e.to_string()))?;
        c.waiting.push(Waiting { to, kind, rx });
        self.after(id)
    }

    fn answer_waiting(&mut self, id: u64) {
        let waiting = std::mem::take(&mut self.node_mut(id).waiting);
        let mut still = Vec::new();
        for mut w in waiting {
            let answer = match w.rx.try_recv() {
                Ok(answer) => answer,
                Err(oneshot::error::TryRecvError::Empty) => {
                    still.push(w);
                    continue;
                }
                Err(oneshot::error::TryRecvError::Closed) => Err(RaftError::Stopped("node gone".into())),
            };
            self.answered(id, w.to, w.kind, answer);
        }
        let c = self.node_mut(id);
        still.append(&mut c.waiting);
        c.waiting = still;
    }

    fn answered(&mut self, id: u64, to: Asker, kind: WaitKind, answer: Result<Outcome, RaftError>) {
        match to {
            Asker::Submitter => match answer {
                Ok(Outcome::Submitted { .. })
                | Ok(Outcome::Rejected(crate::state::apply::Rejection::SweepExists(_))) => {
                    self.submitted = true;
                }
                _ => self.schedule(500, Event::Submit),
            },
            Asker::Expiry => {
                self.node_mut(id).expiring = false;
                if let Ok(Outcome::LeasesExpired { n_retried, n_failed, .. }) = answer {
                    self.counts.expired += (n_retried + n_failed) as u64;
                }
            }
            Asker::Agent { agent, rpc } => {
                let reply = match answer {
                    Err(RaftError::NotLeader { leader_id, .. }) => Reply::NotLeader(leader_id),
                    Err(_) => Reply::Failed,
                    Ok(outcome) => match kind {
                        WaitKind::Register => Reply::Registered,
                        WaitKind::Release => Reply::Again,
                        WaitKind::Grant => Reply::Leases(granted(outcome)),
                        WaitKind::Complete => Reply::Completion(outcome),
                        WaitKind::Other => Reply::Failed,
                    },
                };
                self.reply(agent, rpc, reply);
            }
        }
    }

    fn wall_ms(&self, id: u64) -> i64 {
        1_700_000_000_000 + self.now as i64 + self.node(id).clock_offset_ms
    }

    /// The leader's expiry loop: leases of agents silent longer than their lease time.
    fn expire(&mut self, id: u64) -> Result<(), Violation> {
        let now = self.now;
        let c = self.node(id);
        let (Some(since), false) = (c.leader_since, c.expiring) else { return Ok(()) };
        let leases = c.state.read().unwrap_or_else(|p| p.into_inner()).active_leases();
        let expired: Vec<_> = leases
            .into_iter()
            .filter(|l| {
                let agent = self.agents.iter().position(|a| a.id == l.agent_id);
                let seen = agent.and_then(|a| c.last_seen.get(&a).copied()).unwrap_or(0).max(since);
                now.saturating_sub(seen) > Ms::from(l.lease_seconds) * 1_000
            })
            .map(|l| (l.sweep_id, l.cell_key, l.epoch))
            .collect();
        if expired.is_empty() {
            return Ok(());
        }
        self.node_mut(id).expiring = true;
        let at_ms = self.wall_ms(id);
        self.propose(id, Command::ExpireLeases { expired, at_ms }, Asker::Expiry, WaitKind::Other)
    }

    // ---- the submitter ----------------------------------------------------------------

    fn submit(&mut self) -> Result<(), Violation> {
        if self.submitted {
            return Ok(());
        }
        let leader = self.nodes.iter().find(|c| c.node.is_some() && c.status.now().is_leader()).map(|c| c.id);
        let Some(id) = leader else {
            self.schedule(300, Event::Submit);
            return Ok(());
        };
        let command = super::sweep_command(self.sweep_id, self.config.cells, self.wall_ms(id))?;
        self.propose(id, command, Asker::Submitter, WaitKind::Other)?;
        // Resent until answered: a lost answer, or a crash, must not lose the sweep.
        self.schedule(3_000, Event::Submit);
        Ok(())
    }

    // ---- agents ------------------------------------------------------------------------

    fn agent_wake(&mut self, i: usize) {
        let now = self.now;
        let next = self.rng.random_range(150..400);
        self.schedule(next, Event::AgentWake(i));
        let agent = &mut self.agents[i];
        if agent.paused_until > now {
            return;
        }
        if let Some(sent) = agent.in_flight.as_ref().map(|f| f.sent) {
            if now.saturating_sub(sent) < RPC_TIMEOUT_MS {
                return;
            }
            agent.in_flight = None;
            agent.guess = self.rng.random_range(1..=self.config.nodes);
        }
        let agent = &self.agents[i];
        let mut reporting = None;
        let request = if !agent.registered {
            Request::Register
        } else if let Some((key, done)) = agent.held.iter().find(|(_, h)| h.done_at <= now) {
            reporting = Some(key.clone());
            Request::Complete(self.completion(i, done))
        } else {
            let held =
                agent.held.values().map(|h| (h.lease.sweep_id, h.lease.cell_key.clone(), h.lease.epoch)).collect();
            let max_cells = (agent.slots as usize).saturating_sub(agent.held.len());
            Request::Lease { held, max_cells }
        };
        self.send_request(i, request, reporting);
    }

    fn completion(&self, i: usize, held: &Held) -> Completion {
        let l = &held.lease;
        let path = format!("results/{}-{}-{}.parquet", l.cell_key, l.attempt, l.epoch);
        Completion {
            sweep_id: l.sweep_id,
            cell_key: l.cell_key.clone(),
            agent_id: self.agents[i].id.clone(),
            attempt: l.attempt,
            epoch: l.epoch,
            status: held.status,
            error: (held.status != Status::Ok).then(|| "simulated failure".into()),
            files: vec![FileEntry { path, table: Table::Results, rows: 1, bytes: 100 }],
            at_ms: 1_700_000_000_000 + self.now as i64,
        }
    }

    fn send_request(&mut self, i: usize, request: Request, reporting: Option<(SweepId, CellKey)>) {
        self.next_rpc += 1;
        let rpc = self.next_rpc;
        let node = self.agents[i].guess;
        self.agents[i].in_flight = Some(InFlight { rpc, sent: self.now, reporting });
        if self.rng.random_range(0..1000) < self.net.drop_per_mille {
            return;
        }
        let delay = self.delay();
        self.schedule(delay, Event::Request { node, agent: i, rpc, request });
    }

    fn reply(&mut self, agent: usize, rpc: u64, reply: Reply) {
        if self.rng.random_range(0..1000) < self.net.drop_per_mille {
            return;
        }
        let delay = self.delay();
        self.schedule(delay, Event::Reply { agent, rpc, reply });
    }

    fn agent_reply(&mut self, i: usize, rpc: u64, reply: Reply) {
        let now = self.now;
        let nodes = self.config.nodes;
        let guess = self.rng.random_range(1..=nodes);
        let agent = &mut self.agents[i];
        if agent.in_flight.as_ref().map(|f| f.rpc) != Some(rpc) || agent.paused_until > now {
            return; // an answer to a request the agent gave up on, or a paused process
        }
        let reporting = agent.in_flight.take().and_then(|f| f.reporting);
        match reply {
            Reply::NotLeader(leader) => agent.guess = leader.unwrap_or(guess),
            Reply::Failed => agent.guess = guess,
            Reply::Registered => agent.registered = true,
            Reply::Again => {}
            Reply::Leases(leases) => {
                for lease in leases {
                    let done_at = now + self.rng.random_range(100..2_500);
                    let status = if self.rng.random_range(0..10) == 0 { Status::Failed } else { Status::Ok };
                    let key = (lease.sweep_id, lease.cell_key.clone());
                    self.agents[i].held.insert(key, Held { lease, done_at, status });
                }
            }
            Reply::Completion(outcome) => {
                if let Some(key) = reporting {
                    self.completion_answered(i, key, outcome);
                }
            }
        }
    }

    /// The answer to the result the agent reported for `key`.
    fn completion_answered(&mut self, i: usize, key: (SweepId, CellKey), outcome: Outcome) {
        let Some(held) = self.agents[i].held.remove(&key) else { return };
        match outcome {
            Outcome::Completed { .. } | Outcome::Duplicate { .. } => {
                self.counts.acked += 1;
                self.checker.acknowledged(&held.lease, &self.agents[i].id, held.status);
            }
            Outcome::Rejected(_) => self.counts.refused += 1,
            _ => {
                // Not an answer to a completion: keep the result and report it again.
                self.agents[i].held.insert(key, held);
            }
        }
    }

    // ---- a node serving agents ---------------------------------------------------------

    fn serve(&mut self, id: u64, agent: usize, rpc: u64, request: Request) -> Result<(), Violation> {
        let now = self.now;
        let c = self.node_mut(id);
        if c.node.is_none() {
            return Ok(()); // the connection is refused; the agent times out
        }
        c.last_seen.insert(agent, now);
        let status = c.status.now();
        if !status.is_leader() {
            let leader = (status.leader_id != 0).then_some(status.leader_id);
            self.reply(agent, rpc, Reply::NotLeader(leader));
            return Ok(());
        }
        let to = Asker::Agent { agent, rpc };
        let at_ms = self.wall_ms(id);
        let agent_id = self.agents[agent].id.clone();
        match request {
            Request::Register => {
                let slots = self.agents[agent].slots;
                let devices = vec![DeviceGroup::new("cpu/sim".into(), Some(1 << 34), slots)];
                let command = Command::RegisterAgent { agent_id, devices, labels: BTreeMap::new(), at_ms };
                self.propose(id, command, to, WaitKind::Register)
            }
            Request::Complete(completion) => {
                self.propose(id, Command::CompleteCell(completion), to, WaitKind::Complete)
            }
            Request::Lease { held, max_cells } => {
                let want = Want { agent_id, max_cells, held };
                let planned = {
                    let state = self.node(id).state.read().unwrap_or_else(|p| p.into_inner());
                    plan(&state, &[&want], at_ms)
                };
                if !planned.releases.is_empty() {
                    return self.propose(id, Command::Batch { commands: planned.releases }, to, WaitKind::Release);
                }
                let (commands, _) = grant_commands(&[&want], &planned, at_ms);
                if commands.is_empty() {
                    self.reply(agent, rpc, Reply::Leases(Vec::new()));
                    return Ok(());
                }
                self.propose(id, Command::Batch { commands }, to, WaitKind::Grant)
            }
        }
    }

    // ---- faults ------------------------------------------------------------------------

    fn inject(&mut self, fault: Fault) -> Result<(), Violation> {
        match fault {
            Fault::Crash { node, down_ms } => self.crash_for(node, down_ms),
            Fault::CrashLeader { down_ms } => {
                if let Some(id) = self.leader() {
                    self.crash_for(id, down_ms);
                }
            }
            Fault::CrashAll { down_ms } => {
                for id in 1..=self.config.nodes {
                    self.crash_for(id, down_ms);
                }
            }
            Fault::Partition { minority, heal_ms } => self.partition(&minority, heal_ms),
            Fault::IsolateLeader { heal_ms } => {
                if let Some(id) = self.leader() {
                    self.partition(&[id], heal_ms);
                }
            }
            Fault::OneWay { from, to, heal_ms } => {
                self.net.cut.push((from, to));
                self.schedule(heal_ms, Event::Fault(Fault::Reconnect));
            }
            Fault::Reconnect => self.net.cut.clear(),
            Fault::Lossy { drop_per_mille, dup_per_mille } => {
                self.net.drop_per_mille = drop_per_mille;
                self.net.dup_per_mille = dup_per_mille;
            }
            Fault::FsyncError { node } => {
                let landed = self.rng.random_bool(0.5);
                lock(&self.node(node).disk).fail_next_sync = Some(landed);
            }
            Fault::DiskFull { node, for_ms } => {
                lock(&self.node(node).disk).full = true;
                self.schedule(for_ms, Event::Fault(Fault::DiskFreed { node }));
            }
            Fault::DiskFreed { node } => lock(&self.node(node).disk).full = false,
            Fault::ClockJump { node, by_ms } => self.node_mut(node).clock_offset_ms += by_ms,
            Fault::PauseAgent { agent, for_ms } => {
                let a = &mut self.agents[agent % self.config.agents];
                a.paused_until = self.now + for_ms;
                // Its cells keep "running" while it sleeps; it wakes with stale leases.
            }
        }
        Ok(())
    }

    fn partition(&mut self, minority: &[u64], heal_ms: Ms) {
        for &a in minority {
            for b in (1..=self.config.nodes).filter(|b| !minority.contains(b)) {
                self.net.cut.push((a, b));
                self.net.cut.push((b, a));
            }
        }
        self.schedule(heal_ms, Event::Fault(Fault::Reconnect));
    }

    fn crash_for(&mut self, id: u64, down_ms: Ms) {
        self.crash(id);
        self.schedule(down_ms, Event::Restart(id));
    }

    fn leader(&self) -> Option<u64> {
        self.nodes.iter().filter(|c| c.node.is_some()).find(|c| c.status.now().is_leader()).map(|c| c.id)
    }

    fn heal(&mut self) -> Result<(), Violation> {
        self.healed_at = Some(self.now);
        self.net = Net { cut: Vec::new(), drop_per_mille: 0, dup_per_mille: 0 };
        for id in 1..=self.config.nodes {
            let mut disk = lock(&self.node(id).disk);
            disk.full = false;
            disk.fail_next_sync = None;
            drop(disk);
            if self.node(id).node.is_none() {
                self.start_node(id)?;
            }
        }
        let now = self.now;
        for agent in &mut self.agents {
            agent.paused_until = agent.paused_until.min(now);
        }
        Ok(())
    }

    // ---- the end ------------------------------------------------------------------------

    fn all_final(&self) -> bool {
        let Some(c) = self.nodes.iter().find(|c| c.node.is_some()) else { return false };
        let state = c.state.read().unwrap_or_else(|p| p.into_inner());
        state.sweep(&self.sweep_id).is_some_and(|s| s.cells.values().all(|r| r.state.is_final()))
    }

    /// Every node up and applied as far as the furthest one.
    fn all_caught_up(&self) -> bool {
        let applied: Vec<u64> = self.nodes.iter().filter(|c| c.node.is_some()).map(|c| c.last_applied).collect();
        applied.len() == self.nodes.len() && applied.iter().min() == applied.iter().max()
    }

    pub(super) fn checked_entries(&self) -> u64 {
        self.checker.n_checked_entries
    }

    fn final_states(&self) -> Vec<(u64, State)> {
        self.nodes.iter().map(|c| (c.id, c.state.read().unwrap_or_else(|p| p.into_inner()).clone())).collect()
    }

    fn summary(&self) -> String {
        let Some(c) = self.nodes.iter().find(|c| c.node.is_some()) else { return "no node is up".into() };
        let state = c.state.read().unwrap_or_else(|p| p.into_inner());
        let roles: Vec<String> = self
            .nodes
            .iter()
            .map(|c| {
                let s = c.status.now();
                if c.node.is_none() {
                    format!("{}:down", c.id)
                } else {
                    format!("{}:{}@t{} applied {}", c.id, s.role, s.term, c.last_applied)
                }
            })
            .collect();
        let progress: Vec<String> =
            self.nodes.iter().filter_map(|c| c.node.as_ref()).flat_map(|n| n.progress()).collect();
        let cells = state.sweep(&self.sweep_id).map(|s| {
            let mut by: BTreeMap<String, usize> = BTreeMap::new();
            for r in s.cells.values() {
                *by.entry(format!("{:?}", r.state.kind())).or_default() += 1;
            }
            format!("{by:?}")
        });
        format!(
            "nodes [{}]; leader's view [{}]; cells {}",
            roles.join(", "),
            progress.join(", "),
            cells.unwrap_or_else(|| "(no sweep)".into())
        )
    }
}

/// The leases a batch of one agent's grants gave it.
fn granted(outcome: Outcome) -> Vec<crate::state::Lease> {
    let Outcome::Batch(outcomes) = outcome else { return Vec::new() };
    outcomes
        .into_iter()
        .flat_map(|o| match o {
            Outcome::LeasesGranted { granted, .. } => granted,
            _ => Vec::new(),
        })
        .collect()
}

fn lock(disk: &Mutex<Disk>) -> std::sync::MutexGuard<'_, Disk> {
    disk.lock().unwrap_or_else(|p| p.into_inner())
}
