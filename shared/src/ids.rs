//! The identifiers every crate passes around: a sweep's id and an agent's id (a cell's
//! key is [`crate::cell::CellKey`]). Each is parsed in exactly one place, here, so a
//! handler, the CLI and the state machine agree on what is valid; `proto` converts wire
//! strings through these `FromStr`s and names the field when one fails.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A sweep's id: a UUID (v7 when the coordinator makes it, so ids sort by submit time).
/// Stored and sent as its hyphenated text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SweepId(uuid::Uuid);

impl SweepId {
    pub fn from_uuid(id: uuid::Uuid) -> SweepId {
        SweepId(id)
    }

    pub fn as_uuid(&self) -> &uuid::Uuid {
        &self.0
    }

    /// The id as a number: tests and deterministic tie-breaks.
    pub const fn from_u128(n: u128) -> SweepId {
        SweepId(uuid::Uuid::from_u128(n))
    }

    pub const fn as_u128(&self) -> u128 {
        self.0.as_u128()
    }
}

impl fmt::Display for SweepId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a sweep id (expected a UUID such as 0190c6a2-7a3e-7d1c-9a55-3c2b1e0f4d8a)")]
pub struct InvalidSweepId;

impl FromStr for SweepId {
    type Err = InvalidSweepId;
    fn from_str(text: &str) -> Result<SweepId, InvalidSweepId> {
        uuid::Uuid::from_str(text).map(SweepId).map_err(|_| InvalidSweepId)
    }
}

/// An agent's id: up to [`AgentId::MAX_LEN`] of `A-Z a-z 0-9 - _`. An agent keeps its
/// id in its spool folder, so a restarted agent is the same agent.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AgentId(String);

impl AgentId {
    pub const MAX_LEN: usize = 64;

    /// A fresh id for an agent that registers without one.
    pub fn from_uuid(id: uuid::Uuid) -> AgentId {
        AgentId(id.to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AgentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an agent id (expected 1 to 64 of A-Z a-z 0-9 - _)")]
pub struct InvalidAgentId;

impl FromStr for AgentId {
    type Err = InvalidAgentId;
    fn from_str(text: &str) -> Result<AgentId, InvalidAgentId> {
        let ok = !text.is_empty()
            && text.len() <= AgentId::MAX_LEN
            && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if ok {
            Ok(AgentId(text.to_owned()))
        } else {
            Err(InvalidAgentId)
        }
    }
}

impl std::borrow::Borrow<str> for AgentId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for AgentId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweep_ids_round_trip_as_text_and_refuse_anything_else() {
        let text = "0190c6a2-7a3e-7d1c-9a55-3c2b1e0f4d8a";
        let id: SweepId = text.parse().expect("test value");
        assert_eq!(id.to_string(), text);
        assert_eq!(serde_json::to_string(&id).expect("test value"), format!("\"{text}\""));
        assert_eq!(serde_json::from_str::<SweepId>(&format!("\"{text}\"")).expect("test value"), id);
        for bad in ["", "x", "0190c6a2", &"0".repeat(10_000), "0190c6a2-7a3e-7d1c-9a55-3c2b1e0f4d8a "] {
            assert_eq!(bad.parse::<SweepId>(), Err(InvalidSweepId), "{bad:?}");
        }
    }

    #[test]
    fn agent_ids_are_short_and_plain() {
        for good in ["a", "gpu-box_07", &"x".repeat(64)] {
            assert_eq!(good.parse::<AgentId>().expect("test value").as_str(), good);
        }
        for bad in ["", &"x".repeat(65), "a b", "a/b", "ä", "a\n", "a;drop"] {
            assert_eq!(bad.parse::<AgentId>(), Err(InvalidAgentId), "{bad:?}");
        }
        let id: AgentId = "box-1".parse().expect("test value");
        assert_eq!(serde_json::to_string(&id).expect("test value"), "\"box-1\"");
    }
}
