//! The bridge from committed Raft entries to the state machine: decodes each normal entry's
//! payload as a [`Command`] and hands it to [`state::apply`], and turns a [`State`] into a
//! snapshot's bytes and back.
//!
//! Must never: skip an entry it cannot decode (a replica that skips what another applies
//! diverges from it; stopping is the only safe answer), or read anything but the entry.

use protobuf::Message as _;
use raft::eraftpb::{ConfChange, ConfChangeType, Entry, EntryType};

use crate::state::command::{Command, DecodeError};
use crate::state::{self, Outcome, State};

/// A committed entry that cannot be applied.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("entry {index} (term {term}): {source}")]
    Undecodable { index: u64, term: u64, source: DecodeError },
    #[error("entry {index} (term {term}): not a membership change: {why}")]
    BadConfChange { index: u64, term: u64, why: String },
    #[error("snapshot of {n_bytes} bytes is not a state: {source}")]
    BadSnapshot { n_bytes: usize, source: serde_json::Error },
}

/// What an entry asks of the node besides the state machine.
#[derive(Debug)]
pub enum Applied {
    /// An empty entry (a new leader's first) or a command, with its outcome.
    Normal(Option<Outcome>),
    /// A membership change: the node applies it to raft and stores the new conf state.
    ConfChange,
}

/// Applies one committed entry to `state`. A membership change records the URL it
/// carries in its context (added node) or forgets it (removed node).
pub fn apply_entry(state: &mut State, entry: &Entry) -> Result<Applied, ApplyError> {
    match entry.get_entry_type() {
        EntryType::EntryConfChange => {
            let change = ConfChange::parse_from_bytes(&entry.data).map_err(|e| ApplyError::BadConfChange {
                index: entry.index,
                term: entry.term,
                why: e.to_string(),
            })?;
            let url = String::from_utf8(change.context.to_vec()).ok().filter(|u| !u.is_empty());
            match change.get_change_type() {
                ConfChangeType::AddNode | ConfChangeType::AddLearnerNode => {
                    if url.is_some() {
                        state.set_node_url(change.node_id, url);
                    }
                }
                ConfChangeType::RemoveNode => state.set_node_url(change.node_id, None),
            }
            Ok(Applied::ConfChange)
        }
        // We never propose these (no joint consensus); raft applies them to itself.
        EntryType::EntryConfChangeV2 => Ok(Applied::ConfChange),
        EntryType::EntryNormal if entry.data.is_empty() => Ok(Applied::Normal(None)),
        EntryType::EntryNormal => {
            let command = Command::decode(&entry.data).map_err(|source| ApplyError::Undecodable {
                index: entry.index,
                term: entry.term,
                source,
            })?;
            Ok(Applied::Normal(Some(state::apply(state, command))))
        }
    }
}

/// The bytes of a snapshot of `state`.
pub fn snapshot_bytes(state: &State) -> Result<Vec<u8>, serde_json::Error> {
    serde_json::to_vec(state)
}

/// The state a snapshot holds; an empty snapshot (none taken yet) is the empty state.
pub fn restore(bytes: &[u8]) -> Result<State, ApplyError> {
    if bytes.is_empty() {
        return Ok(State::default());
    }
    serde_json::from_slice(bytes).map_err(|source| ApplyError::BadSnapshot { n_bytes: bytes.len(), source })
}
