//! The Raft node: one thread that owns raft-rs's `RawNode` and the redb store, and runs
//! the loop of raft-rs's `five_mem_node` example: drain the mailbox (`step`, proposals,
//! reads), `tick()` on a timer, then handle the Ready in exactly the documented order, one
//! function per step (see [`Node::on_ready`]).
//!
//! A proposal's caller is answered only after its entry is committed, fsynced and applied:
//! the answer is the [`Outcome`] apply returned. A proposal is matched to its entry by
//! (index, term); if another entry lands at that index, the proposal was lost and says so.
//!
//! Reads use ReadIndex: a batch of waiting reads gets one `read_index` request; when raft
//! returns its read state (for a single voter at once, for a cluster after a heartbeat
//! round confirms leadership), the reads are released as soon as the applied index reaches
//! the read index. A leader only serves reads once it has committed an entry of its own
//! term (raft-rs silently drops read requests before that), so reads wait for that and are
//! re-requested on every tick until answered.
//!
//! The loop runs on a plain thread, not a tokio task: every Ready fsyncs, which blocks.
//!
//! Must never: send `persisted_messages` before the fsync that precedes them returns,
//! answer a proposal before its entry is applied, retry a failed write (any storage error
//! stops the node and fails every waiting caller), or read the clock inside apply.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use protobuf::Message as _;
use raft::eraftpb::{ConfChange, ConfChangeV2, Entry, EntryType, Message, Snapshot};
use raft::{LightReady, RawNode, ReadState, StateRole, INVALID_ID};
use tokio::sync::oneshot;

use super::apply::{apply_entry, restore, snapshot_bytes, Applied, ApplyError};
use super::storage::{LogStore, StoreError};
use super::transport::Transport;
use super::RaftError;
use crate::state::{Command, Outcome, State};

/// The Raft timing every coordinator runs with, and the simulation too so that its seeds
/// exercise the same elections: a tick every 50 ms, a heartbeat every 100 ms, and an
/// election after 0.6–1.2 s without one. Most of a failover is this election timeout
/// (docs/RELIABILITY.md); 6 missed heartbeats keep a loaded 2-core machine from calling
/// spurious elections.
pub const TICK_INTERVAL: Duration = Duration::from_millis(50);
pub const ELECTION_TICK: usize = 12;
pub const MAX_ELECTION_TICK: usize = 24;
pub const HEARTBEAT_TICK: usize = 2;

/// How a node runs. No `Default`: every deployment says what it wants.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// This node's Raft id (non-zero).
    pub id: u64,
    /// The voters a new store starts with: `[id]` for a single node, every node's id for
    /// a cluster bootstrapped together, empty for a node that joins an existing cluster
    /// (it learns the configuration from the leader). A store that exists keeps its own.
    pub voters: Vec<u64>,
    /// The redb file holding the log, hard state and snapshots.
    pub path: PathBuf,
    /// How often the node ticks; elections and heartbeats are counted in ticks.
    pub tick_interval: Duration,
    pub election_tick: usize,
    /// Elections time out after a random count of ticks in `[election_tick,
    /// max_election_tick)`; 0 means raft-rs's default, `2 × election_tick`. (raft-rs draws
    /// from an unseeded RNG; the simulation overwrites each draw with its own.)
    pub max_election_tick: usize,
    pub heartbeat_tick: usize,
    /// Applied entries between two snapshots (each snapshot compacts the log).
    pub snapshot_every: u64,
    /// Proposals and reads waiting at once; further callers wait for a slot.
    pub max_in_flight: usize,
}

/// Why the node stopped on its own.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("raft: {0}")]
    Raft(#[from] raft::Error),
    #[error(transparent)]
    Apply(#[from] ApplyError),
    #[error("snapshot of the state could not be encoded: {0}")]
    Snapshot(serde_json::Error),
    #[error("raft node thread could not start: {0}")]
    Spawn(std::io::Error),
    #[error("state lock poisoned by a panic during apply")]
    Poisoned,
}

/// What callers send to the node thread.
pub(crate) enum Msg {
    Propose {
        command: Box<Command>,
        reply: oneshot::Sender<Result<Outcome, RaftError>>,
    },
    Read {
        reply: oneshot::Sender<Result<(), RaftError>>,
    },
    /// A membership change (`cluster add-node`/`remove-node`); answered with the voters
    /// once it is applied.
    ChangeMembership {
        change: ConfChange,
        reply: oneshot::Sender<Result<Vec<u64>, RaftError>>,
    },
    Step(Box<Message>),
    /// What the transport learnt about a peer (see [`Delivery`]).
    Report {
        peer: u64,
        delivery: Delivery,
    },
    Stop {
        done: oneshot::Sender<()>,
    },
}

/// The transport's news about messages to one peer, which raft-rs must hear: a leader
/// that sent a snapshot waits (its peer paused) until told the snapshot arrived or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Messages to the peer could not be sent; raft probes it again more slowly.
    Unreachable,
    SnapshotDone,
    SnapshotFailed,
}

/// A proposal waiting for its entry to be applied.
struct Pending {
    term: u64,
    reply: Reply,
}

/// Whom to answer when a proposed entry is applied.
enum Reply {
    Command(oneshot::Sender<Result<Outcome, RaftError>>),
    /// With the voters after the change.
    Membership(oneshot::Sender<Result<Vec<u64>, RaftError>>),
}

impl Reply {
    fn fail(self, error: RaftError) {
        match self {
            Reply::Command(reply) => drop(reply.send(Err(error))),
            Reply::Membership(reply) => drop(reply.send(Err(error))),
        }
    }
}

type ReadReply = oneshot::Sender<Result<(), RaftError>>;

/// Reads on their way through ReadIndex.
#[derive(Default)]
struct Reads {
    next_ctx: u64,
    /// Not yet requested from raft.
    waiting: Vec<ReadReply>,
    /// Requested under a context, waiting for raft's read state.
    requested: BTreeMap<u64, Vec<ReadReply>>,
    /// Answered by raft with a read index, waiting for apply to reach it.
    ready: Vec<(u64, Vec<ReadReply>)>,
}

pub(crate) struct Node<S: LogStore, T: Transport> {
    raw: RawNode<S>,
    state: Arc<RwLock<State>>,
    transport: T,
    pending: BTreeMap<u64, Pending>,
    reads: Reads,
    applied: u64,
    last_snapshot: u64,
    snapshot_every: u64,
    /// Shared with the handles: whether a read may skip ReadIndex (see [`Node::local_reads_safe`]).
    local_reads: Arc<AtomicBool>,
    /// Shared with the handles: term, indexes and role after each Ready.
    status: Arc<super::Status>,
    /// The simulation's window on what this node applied, in order; `None` elsewhere.
    applied_log: Option<Vec<Entry>>,
}

/// How the loop ended.
pub(crate) enum Exit {
    /// Every handle is gone.
    Disconnected,
    Stop(oneshot::Sender<()>),
}

impl<S: LogStore, T: Transport> Node<S, T> {
    /// Restores the store's latest snapshot and builds the raw node; entries after the
    /// snapshot are replayed by the first Readys (raft hands every committed entry above
    /// `applied` back as committed entries).
    pub(crate) fn new(
        config: &NodeConfig,
        storage: S,
        transport: T,
        local_reads: Arc<AtomicBool>,
        status: Arc<super::Status>,
    ) -> Result<(Self, Arc<RwLock<State>>), NodeError> {
        let snapshot = storage.latest_snapshot();
        let restored = restore(&snapshot.data)?;
        let mut transport = transport;
        for (&id, url) in restored.node_urls() {
            transport.learn(id, Some(url));
        }
        let state = Arc::new(RwLock::new(restored));
        let applied = snapshot.get_metadata().index;
        let raft_config = raft::Config {
            id: config.id,
            election_tick: config.election_tick,
            max_election_tick: config.max_election_tick,
            heartbeat_tick: config.heartbeat_tick,
            applied,
            check_quorum: true,
            pre_vote: true,
            max_size_per_msg: 1 << 20,
            max_inflight_msgs: 256,
            ..raft::Config::default()
        };
        raft_config.validate()?;
        let logger = slog::Logger::root(slog::Discard, slog::o!());
        let mut raw = RawNode::new(&raft_config, storage, &logger)?;
        if raw.raft.prs().is_singleton() {
            // A lone voter need not wait out an election timeout to lead.
            raw.campaign()?;
        }
        let node = Node {
            raw,
            state: Arc::clone(&state),
            transport,
            pending: BTreeMap::new(),
            reads: Reads::default(),
            applied,
            last_snapshot: applied,
            snapshot_every: config.snapshot_every.max(1),
            local_reads,
            status,
            applied_log: None,
        };
        Ok((node, state))
    }

    /// The thread body: runs the loop, then fails everyone still waiting, closes the store
    /// and only then confirms a stop, so a caller may reopen the same file right away.
    /// A stop on an error of the node's own (its store failed) is also sent on `halted`.
    pub(super) fn run_to_end(
        mut self,
        mailbox: Receiver<Msg>,
        tick: Duration,
        halted: tokio::sync::watch::Sender<Option<String>>,
    ) {
        let result = self.run(&mailbox, tick);
        self.local_reads.store(false, Ordering::Release);
        let (exit, reason) = match result {
            Ok(exit) => (exit, "raft node stopped".to_owned()),
            Err(error) => {
                tracing::error!(%error, "raft node stopped on an error");
                let reason = format!("raft node stopped: {error}");
                halted.send_replace(Some(reason.clone()));
                (Exit::Disconnected, reason)
            }
        };
        self.fail_all(&reason);
        drop(self);
        // Callers that raced the stop get the same answer as the ones failed above.
        while let Ok(msg) = mailbox.try_recv() {
            reject(msg, &reason);
        }
        if let Exit::Stop(done) = exit {
            let _ = done.send(());
        }
    }

    fn run(&mut self, mailbox: &Receiver<Msg>, tick: Duration) -> Result<Exit, NodeError> {
        let mut next_tick = Instant::now() + tick;
        loop {
            match mailbox.recv_timeout(next_tick.saturating_duration_since(Instant::now())) {
                Ok(msg) => {
                    if let Some(exit) = self.handle(msg)? {
                        return Ok(exit);
                    }
                    // Take what else is queued, so one Ready (one fsync) serves a batch.
                    for msg in mailbox.try_iter().take(4096) {
                        if let Some(exit) = self.handle(msg)? {
                            return Ok(exit);
                        }
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return Ok(Exit::Disconnected),
            }
            if Instant::now() >= next_tick {
                self.tick();
                next_tick = Instant::now() + tick;
            }
            self.on_ready()?;
        }
    }

    /// The highest index applied to this node's state.
    pub(crate) fn applied(&self) -> u64 {
        self.applied
    }

    /// A leader's view of each peer's replication (empty on a follower), for diagnostics.
    pub(crate) fn progress(&self) -> Vec<String> {
        if self.raw.raft.state != StateRole::Leader {
            return Vec::new();
        }
        let mut peers: Vec<String> = self
            .raw
            .raft
            .prs()
            .iter()
            .map(|(id, p)| {
                format!(
                    "{id}: {:?} matched {} next {} pending snapshot {}",
                    p.state, p.matched, p.next_idx, p.pending_snapshot
                )
            })
            .collect();
        peers.sort();
        peers
    }

    /// raft-rs's own state, for the simulation (its election timeout draw).
    pub(crate) fn raft_mut(&mut self) -> &mut raft::Raft<S> {
        &mut self.raw.raft
    }

    /// From now on, keeps every entry this node applies for [`Node::take_applied`].
    pub(crate) fn record_applied(&mut self) {
        self.applied_log.get_or_insert_with(Vec::new);
    }

    /// The entries applied since the last call (empty unless recording).
    pub(crate) fn take_applied(&mut self) -> Vec<Entry> {
        self.applied_log.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// One logical clock tick: elections and heartbeats count these; reads raft may have
    /// dropped are asked for again.
    pub(crate) fn tick(&mut self) {
        self.raw.tick();
        self.request_reads(true);
    }

    /// Takes one caller's message; `Some` when it asks the node to stop.
    pub(crate) fn handle(&mut self, msg: Msg) -> Result<Option<Exit>, NodeError> {
        match msg {
            Msg::Propose { command, reply } => self.propose(*command, reply),
            Msg::Read { reply } => self.reads.waiting.push(reply),
            Msg::ChangeMembership { change, reply } => self.propose_membership(change, reply),
            Msg::Step(message) => {
                if let Err(error) = self.raw.step(*message) {
                    tracing::debug!(%error, "raft message refused");
                }
            }
            Msg::Report { peer, delivery } => match delivery {
                Delivery::Unreachable => self.raw.report_unreachable(peer),
                Delivery::SnapshotDone => self.raw.report_snapshot(peer, raft::SnapshotStatus::Finish),
                Delivery::SnapshotFailed => self.raw.report_snapshot(peer, raft::SnapshotStatus::Failure),
            },
            Msg::Stop { done } => return Ok(Some(Exit::Stop(done))),
        }
        Ok(None)
    }

    fn propose(&mut self, command: Command, reply: oneshot::Sender<Result<Outcome, RaftError>>) {
        let reply = Reply::Command(reply);
        let data = match command.encode() {
            Ok(data) => data,
            Err(error) => return reply.fail(RaftError::Encode(error.to_string())),
        };
        self.append(reply, |raw| raw.propose(Vec::new(), data));
    }

    fn propose_membership(&mut self, change: ConfChange, reply: oneshot::Sender<Result<Vec<u64>, RaftError>>) {
        let reply = Reply::Membership(reply);
        if self.raw.raft.has_pending_conf() {
            return reply.fail(RaftError::Dropped("another membership change is in progress; try again".into()));
        }
        self.append(reply, |raw| raw.propose_conf_change(Vec::new(), change));
    }

    /// Appends a proposal on the leader and keeps `reply` for when its entry is applied.
    fn append(&mut self, reply: Reply, propose: impl FnOnce(&mut RawNode<S>) -> raft::Result<()>) {
        if self.raw.raft.state != StateRole::Leader {
            let leader = self.raw.raft.leader_id;
            return reply
                .fail(RaftError::NotLeader { leader_id: (leader != INVALID_ID).then_some(leader), leader_url: None });
        }
        let before = self.raw.raft.raft_log.last_index();
        if let Err(error) = propose(&mut self.raw) {
            return reply.fail(RaftError::Dropped(error.to_string()));
        }
        let index = self.raw.raft.raft_log.last_index();
        if index == before {
            return reply.fail(RaftError::Dropped("raft appended nothing".into()));
        }
        self.pending.insert(index, Pending { term: self.raw.raft.term, reply });
    }

    /// Asks raft for a read index for the waiting reads (and, on a tick, again for those
    /// still unanswered, since raft may have dropped the request).
    fn request_reads(&mut self, retry: bool) {
        if !self.can_read_index() {
            return;
        }
        if retry {
            for ctx in self.reads.requested.keys() {
                self.raw.read_index(ctx.to_be_bytes().to_vec());
            }
        }
        if !self.reads.waiting.is_empty() {
            let ctx = self.reads.next_ctx;
            self.reads.next_ctx += 1;
            self.reads.requested.insert(ctx, std::mem::take(&mut self.reads.waiting));
            self.raw.read_index(ctx.to_be_bytes().to_vec());
        }
    }

    /// A leader must have committed an entry of its term; a follower must know a leader.
    fn can_read_index(&self) -> bool {
        let raft = &self.raw.raft;
        match raft.state {
            StateRole::Leader => raft.raft_log.term(raft.raft_log.committed).ok() == Some(raft.term),
            _ => raft.leader_id != INVALID_ID,
        }
    }

    /// The Ready loop, in raft-rs's documented order.
    pub(crate) fn on_ready(&mut self) -> Result<(), NodeError> {
        self.request_reads(false);
        if !self.raw.has_ready() {
            return Ok(());
        }
        // 1. Take the Ready.
        let mut rd = self.raw.ready();
        // 2. Messages that need no persistence (a leader's appends go out in parallel).
        self.send_messages(rd.take_messages());
        // 3. A snapshot from the leader replaces the state.
        self.apply_snapshot(rd.snapshot())?;
        self.record_read_states(rd.take_read_states());
        // 4. Entries committed earlier.
        self.apply_committed(rd.take_committed_entries())?;
        // 5. New entries and the hard state, fsynced.
        self.persist(rd.entries(), rd.hs())?;
        // 6. Only now may messages that promise persistence (votes, appends acks) go out.
        self.send_messages(rd.take_persisted_messages());
        // 7. Advance; the light ready carries what became committed by our own persistence.
        let light = self.raw.advance(rd);
        self.on_light_ready(light)?;
        // 8. Tell raft everything handed out has been applied.
        self.raw.advance_apply();
        self.release_reads();
        self.local_reads.store(self.local_reads_safe(), Ordering::Release);
        let raft = &self.raw.raft;
        self.status.publish(super::StatusNow {
            node_id: raft.id,
            role: match raft.state {
                StateRole::Leader => "leader",
                StateRole::Follower => "follower",
                StateRole::Candidate => "candidate",
                StateRole::PreCandidate => "pre-candidate",
            },
            term: raft.term,
            commit_index: raft.raft_log.committed,
            applied_index: self.applied,
            leader_id: raft.leader_id,
            voters: {
                // raft keeps them in a hash set: sorted, for people and tests.
                let mut voters: Vec<u64> = raft.prs().conf().voters().ids().iter().collect();
                voters.sort_unstable();
                voters
            },
        });
        self.maybe_snapshot()
    }

    /// Whether this node's applied state already answers every read linearizably: it is
    /// the only voter and the leader, has committed an entry of its term, and has applied
    /// everything committed. Then no other node can commit anything, and every write
    /// acknowledged so far was applied before its answer, so ReadIndex would return at
    /// once anyway; skipping it spares each read a round through this thread.
    fn local_reads_safe(&self) -> bool {
        let raft = &self.raw.raft;
        raft.state == StateRole::Leader
            && raft.prs().is_singleton()
            && self.can_read_index()
            && self.applied >= raft.raft_log.committed
    }

    fn send_messages(&mut self, messages: Vec<Message>) {
        if !messages.is_empty() {
            self.transport.send(messages);
        }
    }

    fn apply_snapshot(&mut self, snapshot: &Snapshot) -> Result<(), NodeError> {
        if snapshot.is_empty() {
            return Ok(());
        }
        let restored = restore(&snapshot.data)?;
        for (&id, url) in restored.node_urls() {
            self.transport.learn(id, Some(url));
        }
        let index = snapshot.get_metadata().index;
        self.raw.mut_store().apply_snapshot(snapshot.clone())?;
        *self.state.write().map_err(|_| NodeError::Poisoned)? = restored;
        self.applied = index;
        self.last_snapshot = index;
        Ok(())
    }

    fn record_read_states(&mut self, states: Vec<ReadState>) {
        for read_state in states {
            let Ok(ctx) = <[u8; 8]>::try_from(read_state.request_ctx.as_slice()) else { continue };
            if let Some(replies) = self.reads.requested.remove(&u64::from_be_bytes(ctx)) {
                self.reads.ready.push((read_state.index, replies));
            }
        }
    }

    fn apply_committed(&mut self, entries: Vec<Entry>) -> Result<(), NodeError> {
        for entry in entries {
            if entry.index <= self.applied {
                continue;
            }
            let applied = {
                let mut state = self.state.write().map_err(|_| NodeError::Poisoned)?;
                apply_entry(&mut state, &entry)?
            };
            self.applied = entry.index;
            match applied {
                Applied::Normal(outcome) => self.answer(&entry, outcome),
                Applied::ConfChange => self.apply_conf_change(&entry)?,
            }
            if let Some(log) = &mut self.applied_log {
                log.push(entry);
            }
        }
        Ok(())
    }

    /// Answers the proposal waiting on this index: with the outcome if the entry is the
    /// one it proposed (same term), else with the news that it was lost.
    fn answer(&mut self, entry: &Entry, outcome: Option<Outcome>) {
        let Some(pending) = self.pending.remove(&entry.index) else { return };
        match (pending.reply, outcome) {
            (Reply::Command(reply), Some(outcome)) if pending.term == entry.term => drop(reply.send(Ok(outcome))),
            (reply, _) => reply.fail(lost(entry)),
        }
    }

    /// Applies a committed membership change to raft and the store, tells the transport
    /// where an added node is, and answers its proposer with the new voters.
    ///
    /// After adding a node, every node snapshots at once: the newcomer must start from a
    /// snapshot whose configuration names it. Fed the log from its first entry instead,
    /// it would never see the voters the group was bootstrapped with (they are in the
    /// store, not the log) and would take itself for the only voter.
    fn apply_conf_change(&mut self, entry: &Entry) -> Result<(), NodeError> {
        let (conf_state, added) = if entry.get_entry_type() == EntryType::EntryConfChangeV2 {
            let change = ConfChangeV2::parse_from_bytes(&entry.data).map_err(raft::Error::CodecError)?;
            (self.raw.apply_conf_change(&change)?, false)
        } else {
            let change = ConfChange::parse_from_bytes(&entry.data).map_err(raft::Error::CodecError)?;
            let url = std::str::from_utf8(&change.context).ok().filter(|u| !u.is_empty());
            let added = change.get_change_type() != raft::eraftpb::ConfChangeType::RemoveNode;
            if change.node_id != self.raw.raft.id {
                self.transport.learn(change.node_id, if added { url } else { None });
            }
            (self.raw.apply_conf_change(&change)?, added)
        };
        let mut voters: Vec<u64> = conf_state.voters.clone();
        voters.sort_unstable();
        self.raw.mut_store().set_conf_state(conf_state)?;
        if added && self.applied > self.last_snapshot {
            self.take_snapshot()?;
        }
        if let Some(pending) = self.pending.remove(&entry.index) {
            match pending.reply {
                Reply::Membership(reply) if pending.term == entry.term => drop(reply.send(Ok(voters))),
                reply => reply.fail(lost(entry)),
            }
        }
        Ok(())
    }

    fn persist(&mut self, entries: &[Entry], hard_state: Option<&raft::eraftpb::HardState>) -> Result<(), NodeError> {
        if entries.is_empty() && hard_state.is_none() {
            return Ok(());
        }
        self.raw.mut_store().persist(entries, hard_state)?;
        Ok(())
    }

    fn on_light_ready(&mut self, mut light: LightReady) -> Result<(), NodeError> {
        if let Some(commit) = light.commit_index() {
            self.raw.mut_store().set_commit(commit)?;
        }
        self.send_messages(light.take_messages());
        self.apply_committed(light.take_committed_entries())
    }

    fn release_reads(&mut self) {
        let applied = self.applied;
        let (due, later): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.reads.ready).into_iter().partition(|(index, _)| *index <= applied);
        self.reads.ready = later;
        for reply in due.into_iter().flat_map(|(_, replies)| replies) {
            let _ = reply.send(Ok(()));
        }
    }

    fn maybe_snapshot(&mut self) -> Result<(), NodeError> {
        if self.applied < self.last_snapshot + self.snapshot_every {
            return Ok(());
        }
        self.take_snapshot()
    }

    /// Snapshots the state at the applied index and compacts the log up to it.
    fn take_snapshot(&mut self) -> Result<(), NodeError> {
        let bytes = {
            let state = self.state.read().map_err(|_| NodeError::Poisoned)?;
            snapshot_bytes(&state).map_err(NodeError::Snapshot)?
        };
        self.raw.mut_store().compact_to_snapshot(self.applied, bytes)?;
        self.last_snapshot = self.applied;
        tracing::debug!(index = self.applied, "raft snapshot taken, log compacted");
        Ok(())
    }

    fn fail_all(&mut self, reason: &str) {
        for (_, pending) in std::mem::take(&mut self.pending) {
            pending.reply.fail(RaftError::Stopped(reason.to_owned()));
        }
        let reads = std::mem::take(&mut self.reads);
        let requested = reads.requested.into_values().flatten();
        let ready = reads.ready.into_iter().flat_map(|(_, replies)| replies);
        for reply in reads.waiting.into_iter().chain(requested).chain(ready) {
            let _ = reply.send(Err(RaftError::Stopped(reason.to_owned())));
        }
    }
}

/// The error of a proposal whose index got another entry (a new leader's).
fn lost(entry: &Entry) -> RaftError {
    RaftError::Dropped(format!("entry {} was replaced by another leader", entry.index))
}

fn reject(msg: Msg, reason: &str) {
    let stopped = || RaftError::Stopped(reason.to_owned());
    match msg {
        Msg::Propose { reply, .. } => {
            let _ = reply.send(Err(stopped()));
        }
        Msg::Read { reply } => {
            let _ = reply.send(Err(stopped()));
        }
        Msg::ChangeMembership { reply, .. } => {
            let _ = reply.send(Err(stopped()));
        }
        Msg::Step(_) | Msg::Report { .. } => {}
        Msg::Stop { done } => {
            let _ = done.send(());
        }
    }
}
