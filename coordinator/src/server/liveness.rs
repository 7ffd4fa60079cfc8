//! Agent liveness: leader soft state, never a Raft write per heartbeat. A lease is
//! expired when its agent has not been heard from for the lease's time, counted from
//! the later of the agent's last call and the moment this node began to lead
//! ([`Liveness::grace_from_now`]): a restarted coordinator, or a follower that just
//! became leader, has not heard from anyone yet, and must not expire leases whose
//! agents are fine (they talked to the old leader).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct Liveness {
    grace_from: Mutex<Instant>,
    last_seen: Mutex<HashMap<String, Instant>>,
}

impl Default for Liveness {
    fn default() -> Self {
        Liveness { grace_from: Mutex::new(Instant::now()), last_seen: Mutex::new(HashMap::new()) }
    }
}

impl Liveness {
    pub fn saw(&self, agent_id: &str) {
        if let Ok(mut m) = self.last_seen.lock() {
            m.insert(agent_id.to_string(), Instant::now());
        }
    }

    /// This node has just begun to lead: every agent gets a full lease from now.
    pub fn grace_from_now(&self) {
        *self.grace_from.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
    }

    /// Time since the agent was last heard from, or since this node began to lead if
    /// that is later.
    pub fn silent_for(&self, agent_id: &str) -> Duration {
        let grace_from = *self.grace_from.lock().unwrap_or_else(|p| p.into_inner());
        let seen = self.last_seen.lock().ok().and_then(|m| m.get(agent_id).copied());
        seen.map_or(grace_from, |seen| seen.max(grace_from)).elapsed()
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
