//! The bridge from committed Raft entries to the state machine: decodes each normal entry's
//! payload as a [`Command`] and hands it to [`state::apply`], and turns a [`State`] into a
//! snapshot's bytes and back.
//!
//! Must never: skip an entry it cannot decode (a replica that skips what another applies
//! diverges from it; stopping is the only safe answer), or read anything but the entry.

use raft::eraftpb::{Entry, EntryType};

use crate::state::command::{Command, DecodeError};
use crate::state::{self, Outcome, State};

/// A committed entry that cannot be applied.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("entry {index} (term {term}): {source}")]
    Undecodable { index: u64, term: u64, source: DecodeError },
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

/// Applies one committed entry to `state`.
pub fn apply_entry(state: &mut State, entry: &Entry) -> Result<Applied, ApplyError> {
    match entry.get_entry_type() {
        EntryType::EntryConfChange | EntryType::EntryConfChangeV2 => Ok(Applied::ConfChange),
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
