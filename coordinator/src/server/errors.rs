//! One mapping from the coordinator's domain errors to gRPC status codes, so the same
//! refusal has the same code on every RPC: a missing thing is `NotFound`, a request
//! that can never succeed is `InvalidArgument`, one that might after the state moves on
//! is `FailedPrecondition`, a passing condition a client should retry is `Unavailable`,
//! and a bug of ours is `Internal`.

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

/// Raft's errors: callers may retry `Unavailable` (no leader yet, shutting down).
pub fn raft_status(e: RaftError) -> Status {
    match e {
        RaftError::NotLeader { .. } | RaftError::Stopped(_) | RaftError::Dropped(_) => {
            Status::unavailable(e.to_string())
        }
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
}
