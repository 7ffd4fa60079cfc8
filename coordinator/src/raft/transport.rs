//! The seam through which the Raft node sends messages to its peers.
//!
//! Today the coordinator runs a single voter: it has no peers and [`NoPeers`] drops (and
//! logs) anything addressed to one, which raft-rs never produces for a one-voter group.
//!
//! A multi-node cluster plugs in here without touching the node loop: an implementation
//! encodes each [`Message`] with rust-protobuf (`write_to_bytes`) and carries the bytes as
//! an opaque `bytes` field of our own tonic message (a `RaftService.Send` RPC between
//! coordinators, over mutual TLS), so raft-rs's generated types never enter `proto/`. The
//! receiving coordinator checks the peer's certificate *before* decoding (rust-protobuf 2
//! can crash on deeply nested input, RUSTSEC-2024-0437) and passes the bytes to
//! [`super::RaftHandle::step`]. Sending must not block the node loop: queue per peer and
//! drop on overflow (Raft retransmits), reporting unreachable peers to the node.
//!
//! Must never: block, retry inline, or decode messages from an unauthenticated peer.

use raft::eraftpb::Message;

/// Sends Raft messages to peers, best effort.
pub trait Transport: Send + 'static {
    fn send(&mut self, messages: Vec<Message>);
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
