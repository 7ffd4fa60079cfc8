//! A per-peer-address rate limit (a token bucket per IP address): registrations from one
//! address beyond a steady rate are refused, so a script cannot grow the fleet table at
//! thousands of fake agents a second. The map of addresses is bounded too: when it is
//! full, addresses whose bucket has refilled (they have been quiet) are dropped first.
//!
//! Leader soft state, like liveness: never a Raft write.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

/// Addresses tracked at once.
const MAX_PEERS: usize = 10_000;

pub struct PeerRate {
    /// Tokens added per second.
    per_second: f64,
    /// Bucket size: how many may come at once after a quiet spell.
    burst: f64,
    buckets: Mutex<HashMap<IpAddr, (f64, Instant)>>,
}

impl PeerRate {
    /// `per_minute` steady, up to `burst` at once.
    pub fn new(per_minute: u32, burst: u32) -> PeerRate {
        PeerRate { per_second: f64::from(per_minute) / 60.0, burst: f64::from(burst.max(1)), buckets: Mutex::default() }
    }

    /// Takes one token for `peer`; `false` when its bucket is empty (or the map is full
    /// of busy peers). A request without a peer address (not over TCP) is not limited.
    pub fn allow(&self, peer: Option<IpAddr>, now: Instant) -> bool {
        let Some(peer) = peer else { return true };
        let Ok(mut buckets) = self.buckets.lock() else { return true };
        if buckets.len() >= MAX_PEERS && !buckets.contains_key(&peer) {
            let full = |&(tokens, at): &(f64, Instant)| self.refilled(tokens, at, now) >= self.burst;
            buckets.retain(|_, bucket| !full(bucket));
            if buckets.len() >= MAX_PEERS {
                return false;
            }
        }
        let (tokens, at) = buckets.get(&peer).copied().unwrap_or((self.burst, now));
        let tokens = self.refilled(tokens, at, now);
        let allowed = tokens >= 1.0;
        buckets.insert(peer, (if allowed { tokens - 1.0 } else { tokens }, now));
        allowed
    }

    fn refilled(&self, tokens: f64, at: Instant, now: Instant) -> f64 {
        (tokens + now.saturating_duration_since(at).as_secs_f64() * self.per_second).min(self.burst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_burst_then_the_steady_rate_per_address() {
        let rate = PeerRate::new(60, 5);
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let t0 = Instant::now();
        assert_eq!((0..8).filter(|_| rate.allow(Some(a), t0)).count(), 5, "the burst, then refused");
        assert!(rate.allow(Some(b), t0), "another address has its own bucket");
        assert!(!rate.allow(Some(a), t0 + Duration::from_millis(500)));
        assert!(rate.allow(Some(a), t0 + Duration::from_millis(1100)), "one token per second at 60/min");
        assert_eq!((0..10).filter(|_| rate.allow(Some(a), t0 + Duration::from_secs(3600))).count(), 5);
        assert!(rate.allow(None, t0), "no address, no limit");
    }

    #[test]
    fn the_address_map_stays_bounded_and_quiet_peers_make_room() {
        let rate = PeerRate::new(60, 1);
        let t0 = Instant::now();
        for i in 0..MAX_PEERS as u32 {
            assert!(rate.allow(Some(IpAddr::from(i.to_be_bytes())), t0));
        }
        let newcomer = Some(IpAddr::from([255, 255, 255, 255]));
        assert!(!rate.allow(newcomer, t0), "every tracked peer is busy: refused, not grown");
        assert!(rate.allow(newcomer, t0 + Duration::from_secs(2)), "quiet peers dropped");
        assert!(rate.buckets.lock().expect("lock").len() <= MAX_PEERS);
    }
}
