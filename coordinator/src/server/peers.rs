//! Raft between coordinator processes: the [`Transport`] that carries a node's messages
//! to its peers over our `RaftService`, and the service that hands a peer's messages to
//! this node.
//!
//! Sending never blocks the node loop: each peer has a bounded queue and a task that
//! drains it in batches over one gRPC channel; a full queue drops (raft retransmits).
//! The task tells the node what happened, as raft-rs needs: a peer that could not be
//! reached ([`Delivery::Unreachable`]), and whether a snapshot arrived (raft-rs keeps
//! the peer paused until told).
//!
//! Receiving: the gate has already refused anyone but a node certificate (any caller
//! under `--insecure`) before a byte is decoded; only then does rust-protobuf see the
//! bytes (RUSTSEC-2024-0437: it can crash on hostile nesting).
//!
//! Must never: block or retry inline in `send`, or step a message meant for another node.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use proto::connect::ClientAuth;
use proto::v1::raft_service_client::RaftServiceClient;
use proto::v1::raft_service_server::RaftService;
use proto::v1::{RaftAck, RaftMessages};
use protobuf::Message as _;
use raft::eraftpb::{Message, MessageType};
use tokio::sync::mpsc;
use tonic::{Request, Response, Status};

use crate::raft::node::Delivery;
use crate::raft::transport::Transport;
use crate::raft::{RaftError, RaftHandle};

/// Messages waiting for one peer before new ones are dropped.
const QUEUE: usize = 4096;
/// Messages sent in one RPC at most.
const BATCH: usize = 256;
/// A send that takes longer counts as failed (the peer is unreachable for now).
const SEND_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest RPC between nodes: a snapshot of the whole state travels in one.
pub const MAX_MESSAGE_BYTES: usize = 512 << 20;

struct Outgoing {
    bytes: Vec<u8>,
    snapshot: bool,
}

/// The node this process runs, set once it has started; the peer tasks report to it.
type NodeCell = Arc<OnceLock<RaftHandle>>;

/// The transport of a node with peers: one queue and one sending task per peer. Peers
/// come from `--peers` at start and from membership changes later ([`Transport::learn`]).
pub struct PeerTransport {
    queues: Arc<Mutex<BTreeMap<u64, Queue>>>,
    node: NodeCell,
    self_id: u64,
    auth: ClientAuth,
    /// Where the sending tasks run: `learn` is called from the node's own thread.
    runtime: tokio::runtime::Handle,
}

/// One peer's queue, and the URL its task sends to.
#[derive(Clone)]
struct Queue {
    url: String,
    tx: mpsc::Sender<Outgoing>,
}

impl PeerTransport {
    /// Starts a sending task per peer (`peers`: id → URL, this node excluded) on the
    /// current tokio runtime. `auth` is this node's certificate, used as a client.
    pub fn start(self_id: u64, peers: &BTreeMap<u64, String>, auth: &ClientAuth) -> anyhow::Result<PeerTransport> {
        let transport = PeerTransport {
            queues: Arc::default(),
            node: Arc::default(),
            self_id,
            auth: auth.clone(),
            runtime: tokio::runtime::Handle::current(),
        };
        for (&id, url) in peers {
            transport.connect(id, url)?;
        }
        Ok(transport)
    }

    /// Starts the task that sends to peer `id` at `url` (ending one to an older URL).
    fn connect(&self, id: u64, url: &str) -> anyhow::Result<()> {
        // The channel's worker is spawned on the current runtime: enter ours (the node's
        // thread has none).
        let _runtime = self.runtime.enter();
        let channel = proto::connect::endpoint(url, &self.auth)?.connect_lazy();
        let client = RaftServiceClient::new(channel).max_encoding_message_size(MAX_MESSAGE_BYTES);
        let (tx, rx) = mpsc::channel(QUEUE);
        let peer = Peer { self_id: self.self_id, id, url: url.to_string(), client, node: Arc::clone(&self.node) };
        self.runtime.spawn(drain(peer, rx));
        self.lock().insert(id, Queue { url: url.to_string(), tx });
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Queue>> {
        // Inserts and removes are whole under the lock: a poisoned map is still consistent.
        self.queues.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Where the peer tasks send their reports: call once the node has started.
    pub fn node_started(&self, handle: RaftHandle) {
        let _ = self.node.set(handle);
    }

    /// A second handle on the same queues, for the node (this one keeps `node_started`).
    pub fn sender(&self) -> PeerTransport {
        PeerTransport {
            queues: Arc::clone(&self.queues),
            node: Arc::clone(&self.node),
            self_id: self.self_id,
            auth: self.auth.clone(),
            runtime: self.runtime.clone(),
        }
    }
}

impl Transport for PeerTransport {
    fn send(&mut self, messages: Vec<Message>) {
        // Sending only enqueues (`try_send`): holding the lock meanwhile blocks nothing.
        let queues = self.lock();
        for message in messages {
            let to = message.to;
            let Some(queue) = queues.get(&to) else {
                tracing::warn!(to, "raft message for a node that is not a peer; dropped");
                continue;
            };
            let snapshot = message.get_msg_type() == MessageType::MsgSnapshot;
            let bytes = match message.write_to_bytes() {
                Ok(bytes) => bytes,
                Err(error) => {
                    tracing::error!(to, %error, "raft message could not be encoded; dropped");
                    continue;
                }
            };
            if queue.tx.try_send(Outgoing { bytes, snapshot }).is_err() {
                tracing::debug!(to, "peer queue full; raft message dropped (raft retransmits)");
                if snapshot {
                    report(&self.node, to, Delivery::SnapshotFailed);
                }
            }
        }
    }

    fn learn(&mut self, id: u64, url: Option<&str>) {
        if id == self.self_id {
            return;
        }
        let Some(url) = url else {
            // Dropping the queue's sender ends its task.
            if self.lock().remove(&id).is_some() {
                tracing::info!(peer = id, "raft peer removed");
            }
            return;
        };
        if self.lock().get(&id).is_some_and(|q| q.url == url) {
            return;
        }
        match self.connect(id, url) {
            Ok(()) => tracing::info!(peer = id, url, "raft peer added"),
            Err(e) => tracing::error!(peer = id, url, error = %format!("{e:#}"), "raft peer cannot be reached"),
        }
    }
}

struct Peer {
    self_id: u64,
    id: u64,
    url: String,
    client: RaftServiceClient<tonic::transport::Channel>,
    node: NodeCell,
}

/// Sends what queues for one peer, in batches, until the transport is dropped.
async fn drain(mut peer: Peer, mut rx: mpsc::Receiver<Outgoing>) {
    let mut reachable = true;
    let mut batch = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut batch, BATCH).await > 0 {
        let snapshot = batch.iter().any(|m| m.snapshot);
        let request =
            RaftMessages { from: peer.self_id, to: peer.id, messages: batch.drain(..).map(|m| m.bytes).collect() };
        let sent = tokio::time::timeout(SEND_TIMEOUT, peer.client.send(request)).await;
        match sent {
            Ok(Ok(_)) => {
                if !reachable {
                    tracing::info!(peer = peer.id, url = %peer.url, "raft peer reachable again");
                    reachable = true;
                }
                if snapshot {
                    report(&peer.node, peer.id, Delivery::SnapshotDone);
                }
            }
            failed => {
                let why = match failed {
                    Ok(Err(status)) => format!("{}: {}", status.code(), status.message()),
                    _ => format!("no answer in {} s", SEND_TIMEOUT.as_secs()),
                };
                if reachable {
                    tracing::warn!(peer = peer.id, url = %peer.url, error = %why, "raft peer unreachable");
                    reachable = false;
                }
                report(&peer.node, peer.id, Delivery::Unreachable);
                if snapshot {
                    report(&peer.node, peer.id, Delivery::SnapshotFailed);
                }
            }
        }
    }
}

fn report(node: &NodeCell, peer: u64, delivery: Delivery) {
    if let Some(handle) = node.get() {
        handle.report(peer, delivery);
    }
}

/// `RaftService`: a peer's messages, handed to this node.
pub struct RaftPeers {
    pub node_id: u64,
    pub raft: RaftHandle,
}

#[tonic::async_trait]
impl RaftService for RaftPeers {
    async fn send(&self, request: Request<RaftMessages>) -> Result<Response<RaftAck>, Status> {
        let batch = request.into_inner();
        if batch.to != self.node_id {
            return Err(Status::failed_precondition(format!(
                "raft messages for node {} reached node {} (check --peers)",
                batch.to, self.node_id
            )));
        }
        for bytes in &batch.messages {
            self.raft.step(bytes).map_err(|e| match e {
                RaftError::BadMessage { .. } => Status::invalid_argument(e.to_string()),
                other => Status::unavailable(other.to_string()),
            })?;
        }
        Ok(Response::new(RaftAck {}))
    }
}
