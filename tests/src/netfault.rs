//! Network faults between real processes, without `tc netem` (these machines have none):
//! every connection one process makes to a coordinator goes through a TCP
//! proxy of ours, one proxy per (from, to) pair, so a link can be cut, slowed or reset on
//! its own and in one direction.
//!
//! A proxy forwards bytes untouched (TLS passes through end to end). Its [`Mode`] applies
//! to the connections it holds and to new ones at once:
//! - [`Mode::Hold`] is a blackhole as a dropped-packet partition makes one: bytes (and
//!   new connections) wait, nothing is answered, and they flow again on heal the way
//!   TCP's retransmissions would deliver them;
//! - [`Mode::Reject`] resets every connection and refuses new ones (a REJECT rule, a
//!   peer's host down);
//! - [`Mode::Delay`] holds each chunk this long before passing it on.
//!
//! A link `(from, to)` carries what `from` sends to node `to` over connections it opens,
//! requests and their answers: Raft's messages travel on the sender's connections, so
//! holding `(n1, 2)` alone is the one-way partition "node 1 cannot reach node 2" while
//! node 2 still reaches node 1.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What a link does with its traffic now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Pass,
    Delay(Duration),
    Hold,
    Reject,
}

/// The proxies of one test: each node's real address, and a proxy per (from, to) link,
/// made on first use.
pub struct Net {
    runtime: tokio::runtime::Runtime,
    targets: BTreeMap<u64, SocketAddr>,
    /// The address the proxies listen on.
    listen: IpAddr,
    links: Mutex<BTreeMap<(String, u64), Link>>,
}

struct Link {
    addr: SocketAddr,
    mode: watch::Sender<Mode>,
}

impl Net {
    /// Proxies on loopback for nodes at `targets` (id → the address the node listens on).
    pub fn new(targets: BTreeMap<u64, SocketAddr>) -> Net {
        Net::listening_on(targets, IpAddr::from([127, 0, 0, 1]))
    }

    /// Proxies listening on `listen` (in the fault runs' namespaces: [`crate::netns::PROXY_IP`]).
    pub fn listening_on(targets: BTreeMap<u64, SocketAddr>, listen: IpAddr) -> Net {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("the proxies' runtime");
        Net { runtime, targets, listen, links: Mutex::new(BTreeMap::new()) }
    }

    /// The URL through which `from` (a name: `n1`, `a2`) reaches node `to`.
    pub fn url(&self, from: &str, to: u64) -> String {
        let mut links = self.lock();
        let key = (from.to_string(), to);
        if let Some(link) = links.get(&key) {
            return format!("https://{}", link.addr);
        }
        let target = self.targets[&to];
        let listener = self.runtime.block_on(TcpListener::bind((self.listen, 0))).expect("a proxy port");
        let addr = listener.local_addr().expect("proxy addr");
        let (mode, watching) = watch::channel(Mode::Pass);
        self.runtime.spawn(accept(listener, target, watching));
        links.insert(key, Link { addr, mode });
        format!("https://{addr}")
    }

    /// Sets `mode` on every link made so far for which `chosen(from, to)` holds.
    pub fn set(&self, chosen: impl Fn(&str, u64) -> bool, mode: Mode) {
        for ((from, to), link) in self.lock().iter() {
            if chosen(from, *to) {
                link.mode.send_replace(mode);
            }
        }
    }

    /// Every link back to [`Mode::Pass`].
    pub fn heal(&self) {
        self.set(|_, _| true, Mode::Pass);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<(String, u64), Link>> {
        self.links.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Whether `from` (a name: `n1`, `a2`) is node `n`.
pub fn is_node(from: &str, n: u64) -> bool {
    from.strip_prefix('n').and_then(|id| id.parse::<u64>().ok()) == Some(n)
}

async fn accept(listener: TcpListener, target: SocketAddr, mode: watch::Receiver<Mode>) {
    loop {
        let inbound = match listener.accept().await {
            Ok((inbound, _)) => inbound,
            // Linux's accept hands over an error already pending on the new connection
            // (accept(2): ECONNABORTED, ENETUNREACH, EHOSTUNREACH... as when a node dies
            // with connections half open), and may find no descriptor free for a moment:
            // the link is fine. Ending the loop cut it for good, a partition no fault asked
            // for: a campaign run (seed 11230) sat 5 minutes without a leader that way.
            Err(e) => {
                eprintln!("proxy to {target}: accept failed ({e}); accepting again");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let mut mode = mode.clone();
        tokio::spawn(async move {
            // A held link answers no new connection until it heals (a SYN into a
            // blackhole); a rejecting one closes it at once.
            if !pass(&mut mode).await {
                return;
            }
            let Ok(outbound) = TcpStream::connect(target).await else { return };
            let _ = inbound.set_nodelay(true);
            let _ = outbound.set_nodelay(true);
            let (in_read, in_write) = inbound.into_split();
            let (out_read, out_write) = outbound.into_split();
            // Either direction ending ends the connection (both halves drop).
            tokio::select! {
                _ = pipe(in_read, out_write, mode.clone()) => {}
                _ = pipe(out_read, in_write, mode) => {}
            }
        });
    }
}

/// Copies `from` to `to`, each chunk as the link's mode says; returns when either side
/// closes or the link rejects.
async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut mode: watch::Receiver<Mode>,
) {
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = tokio::select! {
            read = from.read(&mut buf) => match read {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            },
            _ = rejected(&mut mode) => return,
        };
        if !pass(&mut mode).await || to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// Waits while the link holds, sleeps out a delay; false when the link rejects.
async fn pass(mode: &mut watch::Receiver<Mode>) -> bool {
    loop {
        let now = *mode.borrow_and_update();
        match now {
            Mode::Pass => return true,
            Mode::Delay(d) => {
                tokio::time::sleep(d).await;
                return true;
            }
            Mode::Reject => return false,
            Mode::Hold => {
                if mode.changed().await.is_err() {
                    return false;
                }
            }
        }
    }
}

/// Resolves once the link rejects (never while it stays otherwise).
async fn rejected(mode: &mut watch::Receiver<Mode>) {
    loop {
        if *mode.borrow_and_update() == Mode::Reject {
            return;
        }
        if mode.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    /// An echo server on loopback; its address.
    fn echo() -> SocketAddr {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = l.local_addr().expect("addr");
        std::thread::spawn(move || {
            for s in l.incoming().flatten() {
                std::thread::spawn(move || {
                    let mut s = s;
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = s.read(&mut buf) {
                        if n == 0 || s.write_all(&buf[..n]).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        addr
    }

    fn round_trip(s: &mut std::net::TcpStream, byte: u8) -> std::io::Result<u8> {
        s.write_all(&[byte])?;
        let mut b = [0u8; 1];
        s.read_exact(&mut b)?;
        Ok(b[0])
    }

    #[test]
    fn a_link_passes_holds_until_healed_delays_and_rejects() {
        let net = Net::new(BTreeMap::from([(1, echo())]));
        let addr = net.url("n2", 1).trim_start_matches("https://").to_string();
        let mut s = std::net::TcpStream::connect(&addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_millis(500))).expect("timeout");
        assert_eq!(round_trip(&mut s, 7).expect("passes"), 7);

        net.set(|from, to| is_node(from, 2) && to == 1, Mode::Hold);
        let held = round_trip(&mut s, 8);
        assert!(held.is_err(), "a held link answered: {held:?}");
        net.heal();
        // The held byte arrives after the heal, as TCP would deliver it.
        let mut b = [0u8; 1];
        s.read_exact(&mut b).expect("the held byte after heal");
        assert_eq!(b[0], 8);

        net.set(|_, _| true, Mode::Delay(Duration::from_millis(300)));
        let start = std::time::Instant::now();
        s.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
        assert_eq!(round_trip(&mut s, 9).expect("delayed"), 9);
        assert!(start.elapsed() >= Duration::from_millis(600), "both directions wait: {:?}", start.elapsed());

        net.set(|_, _| true, Mode::Reject);
        let mut b = [0u8; 1];
        let closed = s.read(&mut b);
        assert!(matches!(closed, Ok(0) | Err(_)), "a rejecting link kept the connection: {closed:?}");
        // Another link is untouched by a rule that names only this one.
        let other = net.url("a1", 1).trim_start_matches("https://").to_string();
        net.set(|from, _| from == "n2", Mode::Reject);
        net.set(|from, _| from == "a1", Mode::Pass);
        let mut s = std::net::TcpStream::connect(&other).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
        assert_eq!(round_trip(&mut s, 3).expect("the other link passes"), 3);
    }
}
