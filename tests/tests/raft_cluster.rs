//! Three `accelbench serve` processes as one Raft cluster on loopback, over mutual TLS
//! with node certificates: they elect one leader, a follower refuses a submit naming the
//! leader's URL, and after the leader is SIGKILLed the other two elect a new one that
//! still holds the sweep; the killed node, restarted at once, catches up as a follower.
//! Given every node's URL, the CLI finds the leader and an agent follows it across the
//! leader's SIGKILL: the sweep completes with one final result per cell in a warehouse on
//! a real S3-compatible server. A fourth node joins and a founder leaves while it serves.

use std::time::{Duration, Instant};

use e2e::raft::{spec_arg, text, Nodes, NODES};
use e2e::tiny_spec;
/// Cells of the sweep the agent runs across a failover: bert-tiny × 4 batches × 2 precisions.
const CELLS: u64 = 8;

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
    let mut agent = nodes.start_agent("a1", &list);
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
