//! The seam through which the Raft node sends messages to its peers.
//!
//! A single coordinator has no peers: [`NoPeers`] drops (and logs) anything addressed to
//! one, which raft-rs never produces for a one-voter group. A cluster uses
//! `server::peers::PeerTransport`: each message encoded with rust-protobuf
//! (`write_to_bytes`) and carried as opaque bytes in our own `RaftService.Send` RPC over
//! mutual TLS, so raft-rs's generated types never enter `proto/`; the receiving node's
//! gate checks the peer's certificate *before* decoding (rust-protobuf 2 can crash on
//! deeply nested input, RUSTSEC-2024-0437) and hands the bytes to
//! [`super::RaftHandle::step`].
//!
//! A transport reports back through [`super::RaftHandle::report`]: a peer it could not
//! reach, and whether a snapshot arrived (raft-rs keeps a peer paused after a snapshot
//! until told; the simulation found a follower stuck forever without this).
//!
//! Must never: block, retry inline, or decode messages from an unauthenticated peer.

use raft::eraftpb::Message;

/// Sends Raft messages to peers, best effort.
pub trait Transport: Send + 'static {
    fn send(&mut self, messages: Vec<Message>);

    /// Node `id` joined the group at `url` (a committed membership change, or one
    /// restored from a snapshot), or left it (`None`). Transports with a fixed set of
    /// peers ignore it.
    fn learn(&mut self, _id: u64, _url: Option<&str>) {}
}

/// The transport of a single-voter group: there is nobody to send to.
#[derive(Debug, Default)]
pub struct NoPeers;

impl Transport for NoPeers {
    fn send(&mut self, messages: Vec<Message>) {
        for message in messages {
            tracing::warn!(to = message.to, kind = ?message.get_msg_type(), "dropping a raft message: no peers");
        }
    }
}
