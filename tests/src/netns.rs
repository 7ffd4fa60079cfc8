//! Network namespaces for the cluster fault runs (docs/RELIABILITY.md): every coordinator
//! and agent in a network namespace of its own; the harness, its CLI calls and its
//! proxies ([`crate::netfault`]) in the host's.
//!
//! Each namespace is joined to the host's by a veth pair on a /30 of its own in
//! 10.213.0.0/16. The process inside reaches two addresses: the host end of its pair, and
//! [`PROXY_IP`], which every pair's host end also carries and on which the proxies listen.
//! The host forwards nothing between pairs and no namespace has a route to another's
//! /30, so a process reaches another only through a proxy, whose link the harness cuts:
//! a partition cannot leak through a shared loopback. The harness reaches each process
//! directly at its inner address.
//!
//! Needs root (`ip netns add`). [`Namespaces::new`] says why where it is refused, and the
//! fault runs then stay on loopback and say so.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;

/// The address the proxies listen on, reachable from every namespace.
pub const PROXY_IP: Ipv4Addr = Ipv4Addr::new(10, 213, 255, 1);

/// /30 blocks below `10.213.255.0`: block `b` is `10.213.(b / 64).(b % 64 * 4)`.
const BLOCKS: u32 = 255 * 64;

/// Namespace names start with this and the owning process's id, so a later run can tell
/// (and remove) the namespaces of a run that was killed before it cleaned up.
const PREFIX: &str = "abf";

/// One process's namespace: its name and the address the process has inside.
#[derive(Debug, Clone)]
pub struct Space {
    pub name: String,
    pub inner: Ipv4Addr,
}

/// The namespaces of one test, one per process name (`n1`, `a2`), removed when dropped.
#[derive(Debug)]
pub struct Namespaces {
    spaces: BTreeMap<String, Space>,
}

impl Namespaces {
    /// A namespace for each of `names`, or why they cannot be made here (what `ip` said).
    pub fn new(names: &[&str]) -> Result<Namespaces, String> {
        remove_stale();
        let mut made = Namespaces { spaces: BTreeMap::new() };
        // Each set starts further on, away from the blocks the previous one just freed.
        static SETS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let set = SETS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let start = std::process::id().wrapping_mul(7919).wrapping_add(set.wrapping_mul(64)) % BLOCKS;
        let mut tried = 0;
        for name in names {
            loop {
                if tried == BLOCKS {
                    return Err("no free /30 left in 10.213.0.0/16".into());
                }
                let block = (start + tried) % BLOCKS;
                tried += 1;
                match make(block)? {
                    Some(space) => {
                        made.spaces.insert(name.to_string(), space);
                        break;
                    }
                    None => continue,
                }
            }
        }
        Ok(made)
    }

    /// The address `name`'s process has inside its namespace.
    pub fn inner(&self, name: &str) -> Ipv4Addr {
        self.space(name).inner
    }

    /// `program` to be run inside `name`'s namespace. `ip netns exec` replaces itself with
    /// the program, so the child's pid is the program's (for SIGKILL and SIGSTOP).
    pub fn command(&self, name: &str, program: &Path) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.space(name).name]).arg(program);
        command
    }

    fn space(&self, name: &str) -> &Space {
        self.spaces.get(name).unwrap_or_else(|| panic!("no namespace was made for {name}"))
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        // Removing a namespace removes its end of the pair, and with it the host's end.
        for space in self.spaces.values() {
            let _ = ip(&["netns", "del", &space.name]);
        }
    }
}

/// The namespace of /30 block `block`, or `None` if another run holds that block (its
/// host-side link exists: the kernel makes the choice atomic between processes).
fn make(block: u32) -> Result<Option<Space>, String> {
    let (host_link, inner_link) = (format!("{PREFIX}h{block}"), format!("{PREFIX}n{block}"));
    // Taken: by another run, or by one of ours whose pair the kernel is still tearing down
    // (removing a namespace frees its links a moment later).
    match ip(&["link", "add", &host_link, "type", "veth", "peer", "name", &inner_link]) {
        Err(why) if why.contains("File exists") => return Ok(None),
        Err(why) => return Err(format!("ip link add (veth): {why}")),
        Ok(_) => {}
    }
    let net = [10, 213, (block / 64) as u8, (block % 64 * 4) as u8];
    let at = |last: u8| Ipv4Addr::new(net[0], net[1], net[2], net[3] + last);
    let space = Space { name: format!("{PREFIX}{}-{block}", std::process::id()), inner: at(2) };
    let ns = space.name.as_str();
    let steps: [&[&str]; 9] = [
        &["netns", "add", ns],
        &["link", "set", &inner_link, "netns", ns],
        &["addr", "add", &format!("{}/30", at(1)), "dev", &host_link],
        &["addr", "add", &format!("{PROXY_IP}/32"), "dev", &host_link],
        &["link", "set", &host_link, "up"],
        &["-n", ns, "addr", "add", &format!("{}/30", at(2)), "dev", &inner_link],
        &["-n", ns, "link", "set", &inner_link, "up"],
        &["-n", ns, "link", "set", "lo", "up"],
        &["-n", ns, "route", "add", &format!("{PROXY_IP}/32"), "via", &at(1).to_string()],
    ];
    for step in steps {
        if let Err(why) = ip(step) {
            let _ = ip(&["netns", "del", ns]);
            let _ = ip(&["link", "del", &host_link]);
            return Err(format!("ip {}: {why}", step.join(" ")));
        }
    }
    Ok(Some(space))
}

/// Removes the namespaces of runs whose process is gone (killed before its drop ran).
fn remove_stale() {
    let Ok(list) = ip(&["netns", "list"]) else { return };
    for line in list.lines() {
        let name = line.split_whitespace().next().unwrap_or_default();
        let owner = name.strip_prefix(PREFIX).and_then(|rest| rest.split('-').next()?.parse::<u32>().ok());
        if owner.is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists()) {
            let _ = ip(&["netns", "del", name]);
        }
    }
}

/// Runs `ip ARGS`; its stdout, or its stderr as the error.
fn ip(args: &[&str]) -> Result<String, String> {
    let o = Command::new("ip").args(args).output().map_err(|e| format!("cannot run ip: {e}"))?;
    match o.status.success() {
        true => Ok(String::from_utf8_lossy(&o.stdout).to_string()),
        false => Err(String::from_utf8_lossy(&o.stderr).trim().to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Where namespaces can be made: a process inside reaches a listener on the proxy
    /// address, and nothing on the host's loopback nor inside another namespace.
    #[test]
    fn a_namespace_reaches_the_proxy_address_and_nothing_else() {
        let spaces = match Namespaces::new(&["x", "y"]) {
            Ok(spaces) => spaces,
            Err(why) => {
                eprintln!("skipped: no network namespaces here ({why})");
                return;
            }
        };
        let proxy = std::net::TcpListener::bind((PROXY_IP, 0)).expect("bind the proxy address");
        let on_loopback = std::net::TcpListener::bind(("127.0.0.1", 0)).expect("bind loopback");
        let connects = |name: &str, addr: std::net::SocketAddr| {
            let script = format!("exec 3<>/dev/tcp/{}/{}", addr.ip(), addr.port());
            spaces
                .command(name, Path::new("timeout"))
                .args(["2", "bash", "-c", &script])
                .stderr(std::process::Stdio::null())
                .status()
                .expect("ip netns exec runs")
                .success()
        };
        assert!(connects("x", proxy.local_addr().expect("addr")), "the proxy address is unreachable");
        assert!(!connects("x", on_loopback.local_addr().expect("addr")), "the host's loopback leaks in");
        // A listener inside y: the host reaches it at y's address, x does not.
        let listen = "import socket, time\ns = socket.socket()\ns.bind(('0.0.0.0', 7000))\ns.listen()\ntime.sleep(10)";
        let mut inside_y =
            spaces.command("y", Path::new("python3")).args(["-c", listen]).spawn().expect("python3 runs");
        let y = std::net::SocketAddr::from((spaces.inner("y"), 7000));
        let start = std::time::Instant::now();
        while std::net::TcpStream::connect(&y).is_err() {
            assert!(start.elapsed() < std::time::Duration::from_secs(5), "the host cannot reach y's listener at {y}");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        assert!(!connects("x", y), "one namespace reaches another directly");
        let _ = inside_y.kill();
        let _ = inside_y.wait();
        let names: Vec<String> = spaces.spaces.values().map(|s| s.name.clone()).collect();
        drop(spaces);
        let left = ip(&["netns", "list"]).unwrap_or_default();
        assert!(names.iter().all(|n| !left.contains(n.as_str())), "namespaces left behind: {left}");
    }
}
