//! Three `accelbench serve` processes as one Raft cluster on loopback, over mutual TLS
//! with node certificates: they elect one leader, a follower refuses a submit naming the
//! leader's URL, and after the leader is SIGKILLed the other two elect a new one that
//! still holds the sweep; the killed node, restarted at once, catches up as a follower.
//! Given every node's URL, the CLI finds the leader and an agent follows it across the
//! leader's SIGKILL: the sweep completes with one final result per cell in a warehouse on
//! a real S3-compatible server. A fourth node joins and a founder leaves while it serves.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use e2e::{binary, tiny_spec};

const NODES: u64 = 3;
/// Cells of the sweep the agent runs across a failover: bert-tiny × 4 batches × 2 precisions.
const CELLS: u64 = 8;

struct Nodes {
    dir: tempfile::TempDir,
    urls: Vec<String>,
    children: Vec<Option<Child>>,
    /// The shared warehouse: a folder by default, or an S3 bucket.
    warehouse: String,
    /// What every process gets besides (the S3 server's settings).
    env: Vec<(String, String)>,
}

impl Nodes {
    fn start() -> Nodes {
        Nodes::start_on(None)
    }

    /// The nodes with their warehouse in `s3`'s bucket rather than a shared folder.
    fn start_on(s3: Option<&e2e::s3::S3Server>) -> Nodes {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = dir.path().join("ca");
        run(Command::new(binary("accelbench")).args(["ca", "init", "--dir"]).arg(&ca));
        for n in 1..=NODES {
            run(Command::new(binary("accelbench"))
                .args(["ca", "issue", "--dir"])
                .arg(&ca)
                .args(["--node", &format!("n{n}")]));
        }
        run(Command::new(binary("accelbench"))
            .args(["ca", "issue", "--dir"])
            .arg(&ca)
            .args(["--user", "admin", "--role", "admin"]));
        // Free ports, taken by the nodes right after.
        let urls = (0..NODES)
            .map(|_| {
                let l = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
                format!("https://{}", l.local_addr().expect("addr"))
            })
            .collect();
        let (warehouse, env) = match s3 {
            Some(server) => ("s3://bench/cluster".to_string(), server.env()),
            None => (dir.path().join("warehouse").display().to_string(), Vec::new()),
        };
        let mut env = env;
        // Each process's local copy of the warehouse for DuckDB, inside the test's folder.
        env.push(("XDG_CACHE_HOME".into(), dir.path().join("cache").display().to_string()));
        let mut nodes = Nodes { dir, urls, children: Vec::new(), warehouse, env };
        for n in 1..=NODES {
            let child = nodes.spawn(n);
            nodes.children.push(Some(child));
        }
        nodes
    }

    fn peers(&self) -> String {
        self.urls.iter().enumerate().map(|(i, url)| format!("{}={url}", i + 1)).collect::<Vec<_>>().join(",")
    }

    /// Starts one more node with `serve --join` (its certificate, a free port, --peers
    /// naming every node so far and itself); its id.
    fn start_joining(&mut self) -> u64 {
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
        let ca = self.dir.path().join("ca");
        let url = &self.urls[(n - 1) as usize];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join(format!("node-{n}.log")))
            .expect("log file");
        let mut command = Command::new(binary("accelbench"));
        command
            .args(["serve", "--listen", url.trim_start_matches("https://"), "--data-dir"])
            .arg(self.dir.path().join(format!("node-{n}")))
            .args(["--warehouse", &self.warehouse])
            .envs(self.env.iter().cloned())
            .arg("--tls-ca")
            .arg(ca.join("ca.pem"))
            .arg("--tls-cert")
            .arg(ca.join(format!("node-n{n}.pem")))
            .arg("--tls-key")
            .arg(ca.join(format!("node-n{n}.key")))
            .args(["--node-id", &n.to_string(), "--peers", &self.peers()])
            .stdout(Stdio::null())
            .stderr(Stdio::from(log));
        command
    }

    /// Every node's URL, comma-separated, `first` first: what `--coordinator` takes.
    fn list_from(&self, first: u64) -> String {
        let mut urls = self.urls.clone();
        urls.rotate_left((first - 1) as usize);
        urls.join(",")
    }

    /// An agent given `coordinators`, with its own certificate and spool.
    fn start_agent(&self, coordinators: &str) -> Child {
        let ca = self.dir.path().join("ca");
        run(Command::new(binary("accelbench")).args(["ca", "issue", "--dir"]).arg(&ca).args(["--agent", "a1"]));
        let log = std::fs::File::create(self.dir.path().join("agent.log")).expect("agent log");
        Command::new(binary("accelbench-agent"))
            .args(["run", "--no-calibrate", "--coordinator", coordinators, "--spool"])
            .arg(self.dir.path().join("spool"))
            .arg("--ca")
            .arg(ca.join("ca.pem"))
            .arg("--cert")
            .arg(ca.join("agent-a1.pem"))
            .arg("--key")
            .arg(ca.join("agent-a1.key"))
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("accelbench-agent starts")
    }

    /// Sweep `id`'s counts by cell state, as the nodes in `coordinators` answer.
    fn sweep_counts(&self, id: &str, coordinators: &str) -> Option<serde_json::Value> {
        let o = self.cli(&["sweep", "status", id, "--format", "json", "--coordinator", coordinators]);
        let text = String::from_utf8_lossy(&o.stdout).to_string();
        let all = text.lines().filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok()).next();
        all.filter(|row| row["hardware_class"] == "all")
    }

    fn kill(&mut self, n: u64) {
        if let Some(mut child) = self.children[(n - 1) as usize].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn restart(&mut self, n: u64) {
        let child = self.spawn(n);
        self.children[(n - 1) as usize] = Some(child);
    }

    fn cli(&self, args: &[&str]) -> Output {
        let ca = self.dir.path().join("ca");
        Command::new(binary("accelbench"))
            .args(args)
            .env("ACCELBENCH_CA", ca.join("ca.pem"))
            .env("ACCELBENCH_CERT", ca.join("admin-admin.pem"))
            .env("ACCELBENCH_KEY", ca.join("admin-admin.key"))
            .envs(self.env.iter().cloned())
            .output()
            .expect("accelbench runs")
    }

    /// Node `n`'s `cluster status` as JSON, or `None` while it does not answer.
    fn status(&self, n: u64) -> Option<serde_json::Value> {
        let url = &self.urls[(n - 1) as usize];
        let o = self.cli(&["cluster", "status", "--format", "json", "--coordinator", url]);
        o.status.success().then(|| serde_json::from_slice(&o.stdout).ok()).flatten()
    }

    /// Waits until every node in `alive` names the same leader (one of them); that leader.
    fn agreed_leader(&self, alive: &[u64], limit: Duration) -> u64 {
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

    fn logs(&self) -> String {
        (1..=self.children.len() as u64)
            .map(|n| {
                let text = std::fs::read_to_string(self.dir.path().join(format!("node-{n}.log"))).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(30).collect();
                format!("--- node {n}\n{}", tail.into_iter().rev().collect::<Vec<_>>().join("\n"))
            })
            .chain(std::fs::read_to_string(self.dir.path().join("agent.log")).ok().map(|text| {
                let tail: Vec<&str> = text.lines().rev().take(30).collect();
                format!("--- agent\n{}", tail.into_iter().rev().collect::<Vec<_>>().join("\n"))
            }))
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn spec(&self) -> PathBuf {
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
    }
}

fn run(cmd: &mut Command) {
    let o = cmd.output().expect("runs");
    assert!(o.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&o.stderr));
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn spec_arg(p: &Path) -> String {
    p.display().to_string()
}

#[test]
fn three_nodes_elect_a_leader_and_survive_its_sigkill() {
    let mut nodes = Nodes::start();
    let all: Vec<u64> = (1..=NODES).collect();
    let leader = nodes.agreed_leader(&all, Duration::from_secs(60));
    let status = nodes.status(leader).expect("the leader answers");
    assert_eq!(status["role"], "leader", "{status}");
    assert_eq!(status["voters"], serde_json::json!([1, 2, 3]), "{status}");

    // A follower refuses a submit and says where the leader is.
    let follower = all.iter().copied().find(|&n| n != leader).expect("a follower");
    let spec = nodes.spec();
    let o = nodes.cli(&["sweep", "submit", &spec_arg(&spec), "--coordinator", &nodes.urls[(follower - 1) as usize]]);
    assert!(!o.status.success(), "a follower accepted a submit: {}", text(&o));
    let leader_url = &nodes.urls[(leader - 1) as usize];
    assert!(text(&o).contains(&format!("the leader is node {leader} at {leader_url}")), "{}", text(&o));

    // The leader takes it.
    let o = nodes.cli(&["sweep", "submit", &spec_arg(&spec), "--coordinator", leader_url]);
    assert!(o.status.success(), "{}\n{}", text(&o), nodes.logs());
    let sweep_id = String::from_utf8_lossy(&o.stdout).trim().to_string();

    // SIGKILL the leader: the other two elect one of themselves, which has the sweep.
    nodes.kill(leader);
    let rest: Vec<u64> = all.iter().copied().filter(|&n| n != leader).collect();
    let killed_at = Instant::now();
    let new_leader = nodes.agreed_leader(&rest, Duration::from_secs(30));
    let failover = killed_at.elapsed();
    let o = nodes.cli(&["sweep", "status", &sweep_id, "--coordinator", &nodes.urls[(new_leader - 1) as usize]]);
    assert!(o.status.success(), "the new leader lost sweep {sweep_id}: {}\n{}", text(&o), nodes.logs());
    assert!(text(&o).contains(&sweep_id) && text(&o).contains("running"), "{}", text(&o));
    eprintln!("leader {leader} killed; node {new_leader} leads after {failover:?} (including CLI start-ups)");

    // The killed node, restarted at once, follows and catches up.
    nodes.restart(leader);
    let start = Instant::now();
    loop {
        let (old, new) = (nodes.status(leader), nodes.status(new_leader));
        if let (Some(old), Some(new)) = (&old, &new) {
            let caught_up = old["applied_index"].as_u64() >= new["commit_index"].as_u64();
            if old["role"] == "follower" && old["leader_id"].as_u64() == Some(new_leader) && caught_up {
                break;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "restarted node {leader}: {old:?} vs {new:?}\n{}",
            nodes.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn the_cli_and_an_agent_follow_the_leader_across_its_sigkill() {
    // The warehouse every node reaches is an S3 bucket on a real S3-compatible server:
    // the old leader committed the first results there, the new one the rest.
    let s3 = e2e::s3::S3Server::start();
    let mut nodes = Nodes::start_on(Some(&s3));
    let all: Vec<u64> = (1..=NODES).collect();
    let leader = nodes.agreed_leader(&all, Duration::from_secs(60));
    let follower = all.iter().copied().find(|&n| n != leader).expect("a follower");
    // Every node's URL, a follower's first: the CLI asks it who leads and submits there.
    let list = nodes.list_from(follower);
    let spec = nodes.dir.path().join("eight.toml");
    std::fs::write(&spec, tiny_spec("follow", &["bert-tiny"], &[1, 2, 4, 8], 30)).expect("spec");
    let o = nodes.cli(&["sweep", "submit", &spec_arg(&spec), "--coordinator", &list]);
    assert!(o.status.success(), "{}\n{}", text(&o), nodes.logs());
    let id = String::from_utf8_lossy(&o.stdout).trim().to_string();

    // `cluster status` over the list: one row per node, one leader that all name.
    let o = nodes.cli(&["cluster", "status", "--format", "json", "--coordinator", &list]);
    assert!(o.status.success(), "{}", text(&o));
    let rows: Vec<serde_json::Value> =
        String::from_utf8_lossy(&o.stdout).lines().map(|l| serde_json::from_str(l).expect("json line")).collect();
    assert_eq!(rows.len(), NODES as usize, "{rows:?}");
    assert_eq!(rows.iter().filter(|r| r["role"] == "leader").count(), 1, "{rows:?}");
    let leader_url = nodes.urls[(leader - 1) as usize].clone();
    assert!(rows.iter().all(|r| r["leader_url"] == leader_url.as_str()), "{rows:?}");

    // The agent, also given the list starting at a follower, works for the leader; once
    // a cell is done, the leader is SIGKILLed mid-sweep.
    let mut agent = nodes.start_agent(&list);
    let start = Instant::now();
    let done_before = loop {
        let ok = nodes.sweep_counts(&id, &list).and_then(|c| c["ok"].as_u64()).unwrap_or(0);
        if ok > 0 {
            break ok;
        }
        assert!(start.elapsed() < Duration::from_secs(300), "no cell done: {}", nodes.logs());
        std::thread::sleep(Duration::from_millis(100));
    };
    nodes.kill(leader);
    assert!(done_before < CELLS, "the sweep ended before the leader was killed: nothing was tested");

    // The agent finds the new leader on its own and the sweep completes there.
    let rest = nodes.list_from(if leader == NODES { 1 } else { leader + 1 });
    let start = Instant::now();
    let counts = loop {
        let counts = nodes.sweep_counts(&id, &rest);
        if counts.as_ref().is_some_and(|c| c["state"] != "running") {
            break counts.expect("counts");
        }
        assert!(start.elapsed() < Duration::from_secs(300), "sweep {id} stuck: {counts:?}\n{}", nodes.logs());
        std::thread::sleep(Duration::from_millis(300));
    };
    let _ = agent.kill();
    let _ = agent.wait();
    // The killed node shows as unreachable; the others still answer (exit 0).
    let o = nodes.cli(&["cluster", "status", "--format", "json", "--coordinator", &list]);
    assert!(o.status.success(), "{}", text(&o));
    let rows: Vec<serde_json::Value> =
        String::from_utf8_lossy(&o.stdout).lines().map(|l| serde_json::from_str(l).expect("json line")).collect();
    let roles: Vec<(&str, &str)> =
        rows.iter().map(|r| (r["url"].as_str().unwrap_or(""), r["role"].as_str().unwrap_or(""))).collect();
    assert!(roles.contains(&(leader_url.as_str(), "unreachable")), "{roles:?}");
    assert_eq!(roles.iter().filter(|(_, role)| *role == "leader").count(), 1, "{roles:?}");
    eprintln!(
        "{done_before} of {CELLS} cells done when leader {leader} was killed; the rest after {:?}",
        start.elapsed()
    );
    assert_eq!(
        (counts["state"].as_str(), counts["ok"].as_u64()),
        (Some("done"), Some(CELLS)),
        "{counts}\n{}",
        nodes.logs()
    );

    // The warehouse holds one final result per cell and no (cell, attempt) twice.
    let sql = format!(
        "SELECT count(*) AS rows, count(DISTINCT cell_key) AS cells, count(DISTINCT (cell_key, attempt)) AS attempts \
         FROM results WHERE sweep_id = '{id}' AND status = 'ok'"
    );
    let o = nodes.cli(&["query", &sql, "--warehouse", &nodes.warehouse, "--format", "json"]);
    assert!(o.status.success(), "{}", text(&o));
    let row: serde_json::Value = serde_json::from_slice(&o.stdout).expect("one json row");
    assert_eq!((row["rows"].as_u64(), row["cells"].as_u64()), (Some(CELLS), Some(CELLS)), "{row}\n{}", nodes.logs());
    assert_eq!(row["attempts"], row["rows"], "{row}");
}

#[test]
fn a_node_is_added_and_another_removed_while_the_cluster_serves() {
    let mut nodes = Nodes::start();
    let founders: Vec<u64> = (1..=NODES).collect();
    let leader = nodes.agreed_leader(&founders, Duration::from_secs(60));
    let list = nodes.list_from(1);
    let o = nodes.cli(&["sweep", "submit", &spec_arg(&nodes.spec()), "--coordinator", &list]);
    assert!(o.status.success(), "{}", text(&o));
    let id = String::from_utf8_lossy(&o.stdout).trim().to_string();

    // A fourth node joins: started with --join, then added through the leader.
    let new = nodes.start_joining();
    let new_url = nodes.urls[(new - 1) as usize].clone();
    let o =
        nodes.cli(&["cluster", "add-node", "--node-id", &new.to_string(), "--url", &new_url, "--coordinator", &list]);
    assert!(o.status.success(), "{}\n{}", text(&o), nodes.logs());
    assert!(text(&o).contains("voters: 1, 2, 3, 4"), "{}", text(&o));
    // It catches up from the leader's snapshot and serves the sweep submitted before it.
    let start = Instant::now();
    loop {
        let s = nodes.status(new);
        if s.as_ref().is_some_and(|s| {
            s["role"] == "follower" && s["voters"] == serde_json::json!([1, 2, 3, 4]) && s["leader_id"] == leader
        }) && nodes.sweep_counts(&id, &new_url).is_some()
        {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "node {new}: {s:?}\n{}", nodes.logs());
        std::thread::sleep(Duration::from_millis(200));
    }
    // Adding it twice, or a bad URL, is refused and changes nothing.
    let o =
        nodes.cli(&["cluster", "add-node", "--node-id", &new.to_string(), "--url", &new_url, "--coordinator", &list]);
    assert!(!o.status.success() && text(&o).contains("is a voter already"), "{}", text(&o));
    let o = nodes.cli(&["cluster", "add-node", "--node-id", "9", "--url", "coord9:7070", "--coordinator", &list]);
    assert!(!o.status.success() && text(&o).contains("coord9:7070"), "{}", text(&o));

    // A founding follower is removed, then stopped: three voters remain, node 4 among them.
    let gone = founders.iter().copied().find(|&n| n != leader).expect("a follower");
    let o = nodes.cli(&["cluster", "remove-node", "--node-id", &gone.to_string(), "--coordinator", &list]);
    assert!(o.status.success(), "{}\n{}", text(&o), nodes.logs());
    nodes.kill(gone);
    // Down to three, a further removal is refused.
    let o = nodes.cli(&["cluster", "remove-node", "--node-id", &new.to_string(), "--coordinator", &list]);
    assert!(!o.status.success() && text(&o).contains("add its replacement first"), "{}", text(&o));

    // The leader dies: the remaining founder and node 4 elect a leader, so node 4 votes.
    nodes.kill(leader);
    let rest: Vec<u64> = (1..=new).filter(|&n| n != leader && n != gone).collect();
    let next = nodes.agreed_leader(&rest, Duration::from_secs(30));
    let o = nodes.cli(&["sweep", "status", &id, "--coordinator", &nodes.urls[(next - 1) as usize]]);
    assert!(o.status.success() && text(&o).contains(&id), "{}\n{}", text(&o), nodes.logs());
    let s = nodes.status(next).expect("the new leader answers");
    let mut voters: Vec<u64> = (1..=new).filter(|&n| n != gone).collect();
    voters.sort();
    assert_eq!(s["voters"], serde_json::json!(voters), "{s}");
}
