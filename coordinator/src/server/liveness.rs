//! Agent liveness: leader soft state, never a Raft write per heartbeat. A lease is
//! expired when its agent has not been heard from for the lease's time; a coordinator
//! that (re)starts gives every agent a full lease period of grace from its start, so a
//! restart does not expire leases whose agents are fine.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct Liveness {
    started: Instant,
    last_seen: Mutex<HashMap<String, Instant>>,
}

impl Default for Liveness {
    fn default() -> Self {
        Liveness { started: Instant::now(), last_seen: Mutex::new(HashMap::new()) }
    }
}

impl Liveness {
    pub fn saw(&self, agent_id: &str) {
        if let Ok(mut m) = self.last_seen.lock() {
            m.insert(agent_id.to_string(), Instant::now());
        }
    }

    /// Time since the agent was last heard from (or since this coordinator started).
    pub fn silent_for(&self, agent_id: &str) -> Duration {
        let seen = self.last_seen.lock().ok().and_then(|m| m.get(agent_id).copied());
        seen.unwrap_or(self.started).elapsed()
    }

    /// Drops what is known of a removed agent (the map would otherwise keep every id
    /// ever seen).
    pub fn forget(&self, agent_id: &str) {
        if let Ok(mut m) = self.last_seen.lock() {
            m.remove(agent_id);
        }
    }

    pub fn last_seen_ago(&self, agent_id: &str) -> Option<Duration> {
        self.last_seen.lock().ok().and_then(|m| m.get(agent_id).map(Instant::elapsed))
    }
}
