//! One mapping from the coordinator's domain errors to gRPC status codes, so the same
//! refusal has the same code on every RPC: a missing thing is `NotFound`, a request
//! that can never succeed is `InvalidArgument`, one that might after the state moves on
//! is `FailedPrecondition`, a passing condition a client should retry is `Unavailable`,
//! and a bug of ours is `Internal`.

use proto::connect::{ELECTION_HEADER, LEADER_HEADER};
use tonic::{Code, Status};

use crate::raft::RaftError;
use crate::state::{Outcome, Rejection};

/// The code a refusal by the state machine gets on the wire.
pub fn rejection_code(why: &Rejection) -> Code {
    use Rejection::*;
    match why {
        UnknownSweep(_) | UnknownCell { .. } | UnknownAgent(_) => Code::NotFound,
        SweepExists(_) => Code::AlreadyExists,
        Full(_) => Code::ResourceExhausted,
        NoCells(_) | CellKeyMismatch(_) | DuplicateCellKey(_) | InvalidAgent { .. } | WrongLabel { .. } => {
            Code::InvalidArgument
        }
        SweepCancelled(_)
        | NotPending { .. }
        | NoAttemptsLeft { .. }
        | NoFreeDevice { .. }
        | NotLeased { .. }
        | WrongAgent { .. }
        | StaleEpoch { .. }
        | WrongAttempt { .. } => Code::FailedPrecondition,
        // The coordinator built these commands itself: a refusal is our bug.
        ConflictingFile { .. } | DuplicateFile { .. } | CompletedTwice(_) | NestedBatch => Code::Internal,
    }
}

pub fn rejected(why: &Rejection) -> Status {
    Status::new(rejection_code(why), why.to_string())
}

/// An outcome the handler did not expect from its own command: our bug.
pub fn unexpected(outcome: &Outcome) -> Status {
    Status::internal(format!("unexpected outcome {outcome:?}"))
}

/// Raft's errors: callers may retry `Unavailable` (no leader yet, shutting down). A
/// follower that knows the leader's URL says it in [`LEADER_HEADER`] too, so clients
/// move there without parsing the message.
pub fn raft_status(e: RaftError) -> Status {
    match e {
        RaftError::NotLeader { ref leader_url, leader_id } => {
            let mut status = Status::unavailable(e.to_string());
            if let Some(value) = leader_url.as_deref().and_then(|u| u.parse().ok()) {
                status.metadata_mut().insert(LEADER_HEADER, value);
            } else if leader_id.is_none() {
                // No leader known: an election is under way; say so, so clients retry
                // soon rather than back off as from a dead node.
                status.metadata_mut().insert(ELECTION_HEADER, tonic::metadata::MetadataValue::from_static("1"));
            }
            status
        }
        RaftError::Stopped(_) | RaftError::Dropped(_) => Status::unavailable(e.to_string()),
        RaftError::Encode(_) | RaftError::BadMessage { .. } => Status::internal(e.to_string()),
    }
}

/// The coordinator is stopping: the client should retry against it (or its successor).
pub fn shutting_down() -> Status {
    Status::unavailable("the coordinator is shutting down")
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::cell::CellKey;

    #[test]
    fn refusals_map_to_codes_by_kind() {
        let key: CellKey = "ab".repeat(32).parse().unwrap();
        let sweep = "0190c6a2-7a3e-7d1c-9a55-3c2b1e0f4d8a".parse().unwrap();
        assert_eq!(rejection_code(&Rejection::UnknownSweep(sweep)), Code::NotFound);
        assert_eq!(rejection_code(&Rejection::SweepCancelled(sweep)), Code::FailedPrecondition);
        assert_eq!(
            rejection_code(&Rejection::StaleEpoch { cell_key: key.clone(), current: 2, got: 1 }),
            Code::FailedPrecondition
        );
        assert_eq!(
            rejection_code(&Rejection::WrongLabel { cell_key: key, problem: "x".into() }),
            Code::InvalidArgument
        );
        assert_eq!(rejection_code(&Rejection::NestedBatch), Code::Internal);
        let status = rejected(&Rejection::UnknownSweep(sweep));
        assert_eq!((status.code(), status.message()), (Code::NotFound, format!("unknown sweep {sweep}").as_str()));
    }

    #[test]
    fn a_follower_names_the_leader_in_a_header_clients_read() {
        let url = "https://10.0.0.2:7070";
        let e = RaftError::NotLeader { leader_id: Some(2), leader_url: Some(url.into()) };
        let status = raft_status(e);
        assert_eq!(status.code(), Code::Unavailable);
        assert_eq!(proto::connect::leader_hint(&status), Some(url));
        // During an election there is no leader to name: no header, still retryable.
        let status = raft_status(RaftError::NotLeader { leader_id: None, leader_url: None });
        assert_eq!((status.code(), proto::connect::leader_hint(&status)), (Code::Unavailable, None));
        assert!(status.metadata().contains_key(ELECTION_HEADER), "an election is said to be under way");
        let known = raft_status(RaftError::NotLeader { leader_id: Some(2), leader_url: None });
        assert!(!known.metadata().contains_key(ELECTION_HEADER), "a known leader is no election");
    }
}
