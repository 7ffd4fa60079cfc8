//! A Raft cluster of real coordinator processes for the end-to-end tests: start, kill,
//! restart, pause and add nodes, run the CLI and agents against them.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::{binary, tiny_spec};

/// Nodes a cluster starts with.
pub const NODES: u64 = 3;

/// What the nodes of [`Nodes::start_with_net`] log: warnings, and each lease granted and
/// result committed, which the fault runs read back to time a lost agent's re-lease.
const LOGGED_EVENTS: &str = "warn,coordinator::server::leasing=info,coordinator::server::committer=info";

/// A CLI call that takes longer is killed: a fault may leave a connection held.
const CLI_LIMIT: Duration = Duration::from_secs(30);

/// A Raft cluster of `accelbench serve` processes on loopback, over mutual TLS with node
/// certificates, killed when dropped.
pub struct Nodes {
    pub dir: tempfile::TempDir,
    pub urls: Vec<String>,
    children: Vec<Option<Child>>,
    /// The shared warehouse: a folder by default, or an S3 bucket.
    pub warehouse: String,
    /// What every process gets besides (the S3 server's settings).
    env: Vec<(String, String)>,
    /// The proxies every connection to a node goes through, when the test cuts links.
    pub net: Option<crate::netfault::Net>,
    /// Each node's disk faults (by node id − 1), when the test fails disks.
    disks: Vec<crate::diskfault::NodeDisk>,
    /// Each node's and agent's network namespace, when the test cuts links and may make
    /// them (root): see [`crate::netns`]. Dropped after the processes are killed.
    spaces: Option<crate::netns::Namespaces>,
}

/// The port every node listens on inside its own namespace.
const PORT_IN_NAMESPACE: u16 = 7443;

impl Nodes {
    pub fn start() -> Nodes {
        Nodes::start_on(None)
    }

    /// The nodes with every connection between them, and from `agents` started with
    /// [`Self::agent_list`], through a [`crate::netfault::Net`] proxy, and each on a disk
    /// that can fail ([`Self::disk`]); the nodes log their lease grants and commits as
    /// JSON lines ([`Self::log_events`]). Each node and agent runs in a network namespace
    /// of its own where this process may make them ([`Self::namespaced`]), else on
    /// loopback.
    pub fn start_with_net(agents: &[&str]) -> Nodes {
        Nodes::start_with(None, Some(agents))
    }

    /// The nodes with their warehouse in `s3`'s bucket rather than a shared folder.
    pub fn start_on(s3: Option<&crate::s3::S3Server>) -> Nodes {
        Nodes::start_with(s3, None)
    }

    /// Whether the nodes and agents run in network namespaces of their own.
    pub fn namespaced(&self) -> bool {
        self.spaces.is_some()
    }

    fn start_with(s3: Option<&crate::s3::S3Server>, net_for_agents: Option<&[&str]>) -> Nodes {
        let with_net = net_for_agents.is_some();
        let spaces = net_for_agents.and_then(|agents| {
            let names: Vec<String> =
                (1..=NODES).map(|n| format!("n{n}")).chain(agents.iter().map(|a| a.to_string())).collect();
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            crate::netns::Namespaces::new(&names)
                .map_err(|why| eprintln!("no network namespaces here, so the nodes run on loopback: {why}"))
                .ok()
        });
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = dir.path().join("ca");
        run(Command::new(binary("accelbench")).args(["ca", "init", "--dir"]).arg(&ca));
        for n in 1..=NODES {
            // In namespaces a node is reached at its own address and, through the proxies,
            // at theirs.
            let hosts = match &spaces {
                Some(spaces) => vec![
                    format!("n{n}"),
                    spaces.inner(&format!("n{n}")).to_string(),
                    crate::netns::PROXY_IP.to_string(),
                ],
                None => Vec::new(),
            };
            run(Command::new(binary("accelbench"))
                .args(["ca", "issue", "--dir"])
                .arg(&ca)
                .args(["--node", &format!("n{n}")])
                .args(hosts.iter().flat_map(|h| ["--host", h.as_str()])));
        }
        run(Command::new(binary("accelbench"))
            .args(["ca", "issue", "--dir"])
            .arg(&ca)
            .args(["--user", "admin", "--role", "admin"]));
        // Free ports, taken by the nodes right after; in namespaces, each node has its own.
        let urls: Vec<String> = (1..=NODES)
            .map(|n| match &spaces {
                Some(spaces) => format!("https://{}:{PORT_IN_NAMESPACE}", spaces.inner(&format!("n{n}"))),
                None => {
                    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
                    format!("https://{}", l.local_addr().expect("addr"))
                }
            })
            .collect();
        let (warehouse, env) = match s3 {
            Some(server) => ("s3://bench/cluster".to_string(), server.env()),
            None => (dir.path().join("warehouse").display().to_string(), Vec::new()),
        };
        let mut env = env;
        // Each process's local copy of the warehouse for DuckDB, inside the test's folder.
        env.push(("XDG_CACHE_HOME".into(), dir.path().join("cache").display().to_string()));
        let net = with_net.then(|| {
            env.push(("ACCELBENCH_LOG_FORMAT".into(), "json".into()));
            env.push(("RUST_LOG".into(), LOGGED_EVENTS.into()));
            let targets = urls
                .iter()
                .enumerate()
                .map(|(i, url)| (i as u64 + 1, url.trim_start_matches("https://").parse().expect("a socket address")));
            let listen = match &spaces {
                Some(_) => crate::netns::PROXY_IP.into(),
                None => std::net::IpAddr::from([127, 0, 0, 1]),
            };
            crate::netfault::Net::listening_on(targets.collect(), listen)
        });
        let disks = match with_net {
            true => (1..=NODES)
                .map(|n| crate::diskfault::NodeDisk::prepare(&dir.path().join(format!("node-{n}"))))
                .collect(),
            false => Vec::new(),
        };
        let mut nodes = Nodes { dir, urls, children: Vec::new(), warehouse, env, net, disks, spaces };
        for n in 1..=NODES {
            let child = nodes.spawn(n);
            nodes.children.push(Some(child));
        }
        nodes
    }

    /// Node `n`'s `--peers`: itself at its own URL, the others as `n` reaches them.
    fn peers(&self, n: u64) -> String {
        let url = |to: u64| match &self.net {
            Some(net) if to != n => net.url(&format!("n{n}"), to),
            _ => self.urls[(to - 1) as usize].clone(),
        };
        (1..=self.urls.len() as u64).map(|to| format!("{to}={}", url(to))).collect::<Vec<_>>().join(",")
    }

    /// Starts one more node with `serve --join` (its certificate, a free port, --peers
    /// naming every node so far and itself); its id.
    pub fn start_joining(&mut self) -> u64 {
        let n = self.urls.len() as u64 + 1;
        run(Command::new(binary("accelbench"))
            .args(["ca", "issue", "--dir"])
            .arg(self.dir.path().join("ca"))
            .args(["--node", &format!("n{n}")]));
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        self.urls.push(format!("https://{}", l.local_addr().expect("addr")));
        drop(l);
        let mut child = self.command(n);
        child.arg("--join");
        self.children.push(Some(child.spawn().expect("accelbench serve --join starts")));
        n
    }

    fn spawn(&self, n: u64) -> Child {
        self.command(n).spawn().expect("accelbench serve starts")
    }

    fn command(&self, n: u64) -> Command {
        let url = &self.urls[(n - 1) as usize];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join(format!("node-{n}.log")))
            .expect("log file");
        let mut command = self.program(&format!("n{n}"), "accelbench");
        command
            .args(["serve", "--listen", url.trim_start_matches("https://"), "--data-dir"])
            .arg(self.dir.path().join(format!("node-{n}")))
            .args(["--warehouse", &self.warehouse])
            .envs(self.env.iter().cloned())
            .envs(self.disks.get((n - 1) as usize).map(|d| d.env()).into_iter().flatten())
            .args(self.identity(["--tls-ca", "--tls-cert", "--tls-key"], &format!("node-n{n}")))
            .args(["--node-id", &n.to_string(), "--peers", &self.peers(n)])
            .stdout(Stdio::null())
            .stderr(Stdio::from(log));
        command
    }

    /// Every node's URL, comma-separated, `first` first: what `--coordinator` takes.
    pub fn list_from(&self, first: u64) -> String {
        let mut urls = self.urls.clone();
        urls.rotate_left((first - 1) as usize);
        urls.join(",")
    }

    /// Every node's URL as agent `name` reaches it: through its links when the cluster
    /// runs behind proxies, else [`Self::list_from`] node 1.
    pub fn agent_list(&self, name: &str) -> String {
        match &self.net {
            Some(net) => (1..=self.urls.len() as u64).map(|to| net.url(name, to)).collect::<Vec<_>>().join(","),
            None => self.list_from(1),
        }
    }

    /// Agent `name`, given `coordinators`, with its own certificate (issued on its first
    /// start), spool and log (appended to on a restart).
    pub fn start_agent(&self, name: &str, coordinators: &str) -> Child {
        let ca = self.dir.path().join("ca");
        if !ca.join(format!("agent-{name}.pem")).exists() {
            run(Command::new(binary("accelbench")).args(["ca", "issue", "--dir"]).arg(&ca).args(["--agent", name]));
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join(format!("agent-{name}.log")))
            .expect("agent log");
        self.program(name, "accelbench-agent")
            .args(["run", "--no-calibrate", "--coordinator", coordinators, "--spool"])
            .arg(self.dir.path().join(format!("spool-{name}")))
            .args(self.identity(["--ca", "--cert", "--key"], &format!("agent-{name}")))
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("accelbench-agent starts")
    }

    /// Sweep `id`'s counts by cell state, as the nodes in `coordinators` answer.
    pub fn sweep_counts(&self, id: &str, coordinators: &str) -> Option<serde_json::Value> {
        let o = self.cli(&["sweep", "status", id, "--format", "json", "--coordinator", coordinators]);
        let text = String::from_utf8_lossy(&o.stdout).to_string();
        let all = text.lines().filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok()).next();
        all.filter(|row| row["hardware_class"] == "all")
    }

    /// Node `n`'s disk faults: see [`Self::start_with_net`].
    pub fn disk(&self, n: u64) -> &crate::diskfault::NodeDisk {
        &self.disks[(n - 1) as usize]
    }

    /// How node `n` ended, once it has exited on its own (and forgets it: [`Self::restart`]
    /// starts it again); `None` while it runs or after [`Self::kill`].
    pub fn exited(&mut self, n: u64) -> Option<std::process::ExitStatus> {
        let slot = &mut self.children[(n - 1) as usize];
        let status = slot.as_mut()?.try_wait().ok()??;
        *slot = None;
        Some(status)
    }

    pub fn kill(&mut self, n: u64) {
        if let Some(mut child) = self.children[(n - 1) as usize].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Freezes (SIGSTOP) or thaws (SIGCONT) node `n`: a paused leader wakes up stale.
    pub fn pause(&self, n: u64, paused: bool) {
        if let Some(child) = &self.children[(n - 1) as usize] {
            let signal = if paused { "-STOP" } else { "-CONT" };
            run(Command::new("kill").args([signal, &child.id().to_string()]));
        }
    }

    /// The node that says it leads, among those that answer.
    pub fn leader(&self) -> Option<u64> {
        (1..=self.children.len() as u64)
            .filter(|&n| self.children[(n - 1) as usize].is_some())
            .find(|&n| self.status(n).is_some_and(|s| s["role"] == "leader"))
    }

    pub fn restart(&mut self, n: u64) {
        let child = self.spawn(n);
        self.children[(n - 1) as usize] = Some(child);
    }

    /// Runs `accelbench ARGS` as the admin; killed after [`CLI_LIMIT`] (its output so far,
    /// with a failed status, is what comes back then).
    pub fn cli(&self, args: &[&str]) -> Output {
        let ca = self.dir.path().join("ca");
        let child = Command::new(binary("accelbench"))
            .args(args)
            .env("ACCELBENCH_CA", ca.join("ca.pem"))
            .env("ACCELBENCH_CERT", ca.join("admin-admin.pem"))
            .env("ACCELBENCH_KEY", ca.join("admin-admin.key"))
            .envs(self.env.iter().cloned())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("accelbench runs");
        let pid = child.id().to_string();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || tx.send(child.wait_with_output()));
        let done = rx.recv_timeout(CLI_LIMIT).or_else(|_| {
            let _ = Command::new("kill").args(["-KILL", &pid]).status();
            rx.recv()
        });
        done.expect("the CLI's waiter").expect("accelbench's output")
    }

    /// Every event the nodes logged as JSON (each line's `fields`, with the node's id as
    /// `node` and the RFC 3339 time as `at`), oldest first per node: see [`Self::start_with_net`].
    pub fn log_events(&self) -> Vec<serde_json::Value> {
        (1..=self.urls.len() as u64)
            .flat_map(|n| {
                let text = std::fs::read_to_string(self.dir.path().join(format!("node-{n}.log"))).unwrap_or_default();
                text.lines()
                    .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                    .filter_map(|mut line| {
                        let mut fields = line.get_mut("fields")?.take();
                        fields["node"] = n.into();
                        fields["at"] = line["timestamp"].take();
                        Some(fields)
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// Node `n`'s `cluster status` as JSON, or `None` while it does not answer.
    pub fn status(&self, n: u64) -> Option<serde_json::Value> {
        let url = &self.urls[(n - 1) as usize];
        let o = self.cli(&["cluster", "status", "--format", "json", "--coordinator", url]);
        o.status.success().then(|| serde_json::from_slice(&o.stdout).ok()).flatten()
    }

    /// Waits until every node in `alive` names the same leader (one of them); that leader.
    pub fn agreed_leader(&self, alive: &[u64], limit: Duration) -> u64 {
        let start = Instant::now();
        loop {
            let statuses: Vec<Option<serde_json::Value>> = alive.iter().map(|&n| self.status(n)).collect();
            let leaders: Vec<u64> =
                statuses.iter().map(|s| s.as_ref().and_then(|s| s["leader_id"].as_u64()).unwrap_or(0)).collect();
            if leaders.iter().all(|&l| l != 0 && l == leaders[0]) && alive.contains(&leaders[0]) {
                return leaders[0];
            }
            assert!(start.elapsed() < limit, "no agreed leader among {alive:?}: {statuses:?}\n{}", self.logs());
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The last lines of every node's and agent's log.
    pub fn logs(&self) -> String {
        let mut agents: Vec<String> = std::fs::read_dir(self.dir.path())
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok()?.file_name().to_str().map(str::to_string))
            .filter(|name| name.starts_with("agent-") && name.ends_with(".log"))
            .collect();
        agents.sort();
        (1..=self.children.len() as u64)
            .map(|n| format!("node-{n}.log"))
            .chain(agents)
            .map(|name| {
                let text = std::fs::read_to_string(self.dir.path().join(&name)).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(30).collect();
                format!("--- {name}\n{}", tail.into_iter().rev().collect::<Vec<_>>().join("\n"))
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Our binary `program`, to run as process `name` (`n1`, `a2`): in its namespace
    /// when there are namespaces.
    fn program(&self, name: &str, program: &str) -> Command {
        match &self.spaces {
            Some(spaces) => spaces.command(name, &binary(program)),
            None => Command::new(binary(program)),
        }
    }

    /// `flags` (CA, certificate, key) with the lab CA and the certificate `ca issue` wrote
    /// as `{stem}.pem` / `{stem}.key`.
    fn identity(&self, flags: [&str; 3], stem: &str) -> Vec<String> {
        let ca = self.dir.path().join("ca");
        let files = [ca.join("ca.pem"), ca.join(format!("{stem}.pem")), ca.join(format!("{stem}.key"))];
        flags.iter().zip(files).flat_map(|(flag, file)| [flag.to_string(), file.display().to_string()]).collect()
    }

    pub fn spec(&self) -> PathBuf {
        let path = self.dir.path().join("spec.toml");
        std::fs::write(&path, tiny_spec("raft-cluster", &["bert-tiny"], &[1, 2], 30)).expect("spec");
        path
    }
}

impl Drop for Nodes {
    fn drop(&mut self) {
        for n in 1..=self.children.len() as u64 {
            self.kill(n);
        }
        // Unmounted before the test's folder (a field declared earlier) is removed.
        self.disks.clear();
    }
}

pub fn run(cmd: &mut Command) {
    let o = cmd.output().expect("runs");
    assert!(o.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&o.stderr));
}

/// An output's stdout and stderr, for messages.
pub fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

pub fn spec_arg(p: &Path) -> String {
    p.display().to_string()
}
