//! The coordinator's Raft group (raft-rs 0.7), today a single voter, with its log and hard
//! state durable in redb, and the async [`RaftHandle`] the services use.
//!
//! Layout:
//! - [`node`]: the thread that runs raft-rs's Ready loop, step by step.
//! - [`storage`]: raft-rs `Storage` on redb: log, hard state, conf state, snapshot.
//! - [`apply`](mod@apply): committed entries → [`crate::state::apply`]; snapshots of the state.
//! - [`transport`]: the seam for sending messages to peers (none yet).
//!
//! Reads: [`RaftHandle::read`] goes through ReadIndex and then waits for the applied index
//! to reach the read index, so what it sees includes every write acknowledged before the
//! read began (linearizable), on a single voter and on a cluster alike. A sole voter that
//! leads and has applied all it committed reads its state directly: ReadIndex would
//! answer at once, and the round through the node thread (which may be in an fsync) is
//! what the hot path paid for.
//! [`RaftHandle::read_local`] reads this node's copy as it is: for displays only, never to
//! decide anything.
//!
//! Must never: acknowledge a proposal before its entry is fsynced and applied, or let
//! raft-rs's protobuf types leak out of this module (peers exchange them as opaque bytes).

pub mod apply;
pub mod node;
pub mod storage;
pub mod transport;

#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, RwLock};

use protobuf::Message as _;
use tokio::sync::{oneshot, Semaphore};

use crate::state::{Command, Outcome, State};
use node::{Msg, Node, NodeConfig, NodeError};
use transport::Transport;

/// Why a proposal or read got no answer from the state machine.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RaftError {
    #[error("not the raft leader; the leader is {}{}",
        leader_id.map_or("unknown (an election is under way)".to_owned(), |id| format!("node {id}")),
        leader_url.as_ref().map_or(String::new(), |url| format!(" at {url}")))]
    NotLeader { leader_id: Option<u64>, leader_url: Option<String> },
    /// The outcome is unknown: the command may still be applied later (after a restart,
    /// from the log). Commands are idempotent or fenced, so retrying is safe.
    #[error("{0}")]
    Stopped(String),
    #[error("proposal dropped: {0}")]
    Dropped(String),
    #[error("command could not be encoded: {0}")]
    Encode(String),
    #[error("undecodable raft message of {n_bytes} bytes from a peer")]
    BadMessage { n_bytes: usize },
}

/// Where this node stands in its Raft group, as the node thread last published it after
/// a Ready (for metrics and displays; never to decide anything).
#[derive(Debug, Default)]
pub struct Status(std::sync::Mutex<StatusNow>);

/// A copy of [`Status`] at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusNow {
    pub node_id: u64,
    /// `leader`, `follower`, `candidate` or `pre-candidate`.
    pub role: &'static str,
    pub term: u64,
    pub commit_index: u64,
    pub applied_index: u64,
    /// The leader this node knows; 0 when none (during an election).
    pub leader_id: u64,
    /// The group's voters, by id.
    pub voters: Vec<u64>,
}

impl StatusNow {
    pub fn is_leader(&self) -> bool {
        self.role == "leader"
    }
}

impl Status {
    pub(crate) fn publish(&self, now: StatusNow) {
        // A poisoned lock only means a reader panicked mid-copy; the value is whole.
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = now;
    }

    pub(crate) fn now(&self) -> StatusNow {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// The async face of the Raft node; cheap to clone.
#[derive(Clone)]
pub struct RaftHandle {
    mailbox: mpsc::Sender<Msg>,
    state: Arc<RwLock<State>>,
    in_flight: Arc<Semaphore>,
    /// Set by the node while reading `state` directly is linearizable.
    local_reads: Arc<AtomicBool>,
    status: Arc<Status>,
    /// Each node's URL, to tell a caller where the leader is.
    urls: Arc<std::collections::BTreeMap<u64, String>>,
    /// Why the node stopped on its own (its store failed); `None` while it runs.
    halted: tokio::sync::watch::Receiver<Option<String>>,
}

/// Opens (or creates) the store at `config.path`, replays it, and starts the node thread.
pub fn start(config: NodeConfig, transport: impl Transport) -> Result<RaftHandle, NodeError> {
    let storage = storage::RedbStorage::open(&config.path, &config.voters)?;
    start_on(config, storage, transport)
}

/// [`start`] on a store already open (the tests' stores with injected faults).
pub(crate) fn start_on(
    config: NodeConfig,
    storage: impl storage::LogStore,
    transport: impl Transport,
) -> Result<RaftHandle, NodeError> {
    let local_reads = Arc::new(AtomicBool::new(false));
    let status = Arc::new(Status::default());
    let (node, state) = Node::new(&config, storage, transport, Arc::clone(&local_reads), Arc::clone(&status))?;
    let (mailbox, inbox) = mpsc::channel();
    let (halted_tx, halted) = tokio::sync::watch::channel(None);
    let tick = config.tick_interval;
    std::thread::Builder::new()
        .name(format!("raft-node-{}", config.id))
        .spawn(move || node.run_to_end(inbox, tick, halted_tx))
        .map_err(NodeError::Spawn)?;
    Ok(RaftHandle {
        mailbox,
        state,
        in_flight: Arc::new(Semaphore::new(config.max_in_flight.max(1))),
        local_reads,
        status,
        urls: Arc::default(),
        halted,
    })
}

impl RaftHandle {
    /// The same handle, naming the leader's URL (from `urls`, by node id) in
    /// [`RaftError::NotLeader`].
    pub fn with_urls(mut self, urls: std::collections::BTreeMap<u64, String>) -> RaftHandle {
        self.urls = Arc::new(urls);
        self
    }

    /// Tells the node what the transport learnt about a peer.
    pub fn report(&self, peer: u64, delivery: node::Delivery) {
        let _ = self.send(Msg::Report { peer, delivery });
    }

    /// `e`, with the leader's URL when it is a [`RaftError::NotLeader`] naming a known node.
    fn name_leader(&self, e: RaftError) -> RaftError {
        match e {
            RaftError::NotLeader { leader_id, .. } => {
                let leader_url = leader_id.and_then(|id| self.url_of(id));
                RaftError::NotLeader { leader_id, leader_url }
            }
            other => other,
        }
    }

    /// The client URL of node `id`: from a membership change that added it, else from
    /// `--peers`; `None` for a node running alone.
    pub fn url_of(&self, id: u64) -> Option<String> {
        self.read_local(|state| state.node_urls().get(&id).cloned()).or_else(|| self.urls.get(&id).cloned())
    }

    /// This node's term, commit and applied index and role, as of its last Ready.
    pub fn status(&self) -> StatusNow {
        self.status.now()
    }

    /// Proposes a command; answers with what applying it did, once it is committed,
    /// fsynced and applied.
    pub async fn propose(&self, command: Command) -> Result<Outcome, RaftError> {
        let _permit = self.permit().await?;
        let (reply, answer) = oneshot::channel();
        self.send(Msg::Propose { command: Box::new(command), reply })?;
        answer.await.map_err(|_| stopped())?.map_err(|e| self.name_leader(e))
    }

    /// Adds node `id` (reachable at `url`) to the voters, or removes it (`url` = `None`),
    /// through a Raft membership change; answers with the voters once it is applied.
    pub async fn change_membership(&self, id: u64, url: Option<&str>) -> Result<Vec<u64>, RaftError> {
        let mut change = raft::eraftpb::ConfChange::default();
        change.node_id = id;
        match url {
            Some(url) => {
                change.set_change_type(raft::eraftpb::ConfChangeType::AddNode);
                change.context = url.as_bytes().to_vec().into();
            }
            None => change.set_change_type(raft::eraftpb::ConfChangeType::RemoveNode),
        }
        let _permit = self.permit().await?;
        let (reply, answer) = oneshot::channel();
        self.send(Msg::ChangeMembership { change, reply })?;
        answer.await.map_err(|_| stopped())?.map_err(|e| self.name_leader(e))
    }

    /// Runs `f` on the state once it includes every write acknowledged before this call
    /// (ReadIndex, then wait for apply). Keep `f` short: it holds the state's read lock,
    /// which apply waits for.
    pub async fn read<T>(&self, f: impl FnOnce(&State) -> T) -> Result<T, RaftError> {
        if self.local_reads.load(Ordering::Acquire) {
            return Ok(self.read_local(f));
        }
        {
            let _permit = self.permit().await?;
            let (reply, answer) = oneshot::channel();
            self.send(Msg::Read { reply })?;
            answer.await.map_err(|_| stopped())?.map_err(|e| self.name_leader(e))?;
        }
        Ok(self.read_local(f))
    }

    /// Runs `f` on this node's state as it is now, possibly stale: for displays only.
    pub fn read_local<T>(&self, f: impl FnOnce(&State) -> T) -> T {
        // A poisoned lock means apply panicked; the data is still the last consistent
        // state (apply changes it only after all checks), so reading it is harmless.
        let state = self.state.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&state)
    }

    /// Hands the node a message from a peer, as bytes from the transport. Decode only
    /// messages from authenticated peers (see [`transport`]).
    pub fn step(&self, bytes: &[u8]) -> Result<(), RaftError> {
        let message = raft::eraftpb::Message::parse_from_bytes(bytes)
            .map_err(|_| RaftError::BadMessage { n_bytes: bytes.len() })?;
        self.send(Msg::Step(Box::new(message)))
    }

    /// Stops the node and waits until it has closed its store; waiting callers get
    /// [`RaftError::Stopped`]. Stopping a stopped node is not an error.
    pub async fn shutdown(&self) {
        let (done, stopped) = oneshot::channel();
        if self.send(Msg::Stop { done }).is_ok() {
            let _ = stopped.await;
        }
    }

    /// Resolves, with the reason, once the node has stopped on an error of its own (a
    /// failed write to its store); never after a requested stop. A node that cannot write
    /// its log can take no further part, so its server stops too (fail-stop: a supervisor
    /// restarts it once the disk is mended, from what was synced).
    pub async fn halted(&self) -> String {
        let mut halted = self.halted.clone();
        let reason = match halted.wait_for(Option::is_some).await {
            Ok(reason) => reason.clone(),
            // The node ended without an error of its own: a requested stop.
            Err(_) => None,
        };
        match reason {
            Some(reason) => reason,
            None => std::future::pending().await,
        }
    }

    async fn permit(&self) -> Result<tokio::sync::SemaphorePermit<'_>, RaftError> {
        self.in_flight.acquire().await.map_err(|_| stopped())
    }

    fn send(&self, msg: Msg) -> Result<(), RaftError> {
        self.mailbox.send(msg).map_err(|_| stopped())
    }
}

fn stopped() -> RaftError {
    RaftError::Stopped("raft node stopped".into())
}
