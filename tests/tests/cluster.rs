//! The coordinator and agents as real processes on loopback: a sweep runs to the end,
//! nothing is lost or duplicated when an agent or the coordinator is SIGKILLed, and
//! hostile requests are refused while the server keeps serving.

use std::time::Duration;

use e2e::{tiny_spec, Cluster};
use proto::v1::{
    AckStatus, CancelSweepRequest, GetSweepRequest, HeartbeatRequest, LeaseCellsRequest, LeaseRef, RegisterRequest,
    ReportResultsRequest, SpecFormat, SubmitSweepRequest, SweepState,
};

const LIMIT: Duration = Duration::from_secs(600);

/// Asserts the warehouse holds exactly one row per (cell, attempt) and one final row
/// per cell, and returns the number of cells with a final result.
fn assert_one_result_per_cell(c: &Cluster, sweep_id: &str, n_cells: u64) {
    let dups = c
        .query(&format!(
            "SELECT count(*) AS n FROM (SELECT cell_key, attempt FROM results WHERE sweep_id = '{sweep_id}' \
             GROUP BY cell_key, attempt HAVING count(*) > 1)"
        ))
        .expect("query");
    assert_eq!(dups[0]["n"], 0, "duplicate results");
    let finals = c
        .query(&format!(
            "SELECT count(DISTINCT cell_key) AS n FROM results WHERE sweep_id = '{sweep_id}' \
             AND status IN ('ok', 'unsupported')"
        ))
        .expect("query");
    assert_eq!(finals[0]["n"], n_cells, "cells without a final result; logs: {}", c.logs());
}

/// Waits until at least one cell of sweep `id` has a final result: the moment to fault
/// the coordinator so that its restart has state to replay.
async fn wait_until_one_finished(c: &Cluster, id: &str) {
    let start = std::time::Instant::now();
    loop {
        assert!(start.elapsed() < LIMIT, "nothing finished; logs: {}", c.logs());
        let mut client = c.client().await.expect("client");
        let s = client.get(GetSweepRequest { sweep_id: id.to_string() }).await.expect("get").into_inner();
        if count(&s, "ok") + count(&s, "unsupported") >= 1 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn total(s: &proto::v1::SweepStatus) -> u64 {
    s.cells_by_state.values().sum()
}

fn count(s: &proto::v1::SweepStatus, state: &str) -> u64 {
    s.cells_by_state.get(state).copied().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sweep_runs_to_the_end_on_two_agents() {
    let mut c = Cluster::start().expect("coordinator");
    c.start_agent(0).expect("agent 0");
    c.start_agent(1).expect("agent 1");
    let spec = c.write_spec("s.toml", &tiny_spec("two-agents", &["bert-tiny", "vit-tiny"], &[1, 2], 30)).expect("spec");
    // Let both agents register before submitting (fan-out resolves at submit time).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let id = c.submit(&spec).expect("submit");
    let s = c.wait_done(&id, LIMIT).await.expect("done");
    assert_eq!(s.state, SweepState::Done as i32);
    assert_eq!(total(&s), 8, "{s:?}");
    assert_eq!(count(&s, "ok") + count(&s, "unsupported"), 8, "{s:?}; logs: {}", c.logs());
    assert_eq!(count(&s, "unsupported"), 2, "vit bf16 has no cpu kernel: {s:?}");
    assert_one_result_per_cell(&c, &id, 8);

    // The listing commands for scripts: typed JSON lines and CSV.
    let o = c.cli(&["sweep", "status", &id, "--coordinator", &c.url(), "--format", "json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let first: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&o.stdout).lines().next().unwrap_or("")).expect("a json line");
    assert_eq!((first["type"].as_str(), first["hardware_class"].as_str()), (Some("sweep_status"), Some("all")));
    assert_eq!(first["ok"].as_u64(), Some(count(&s, "ok")), "{first}");
    let o = c.cli(&["agents", "list", "--coordinator", &c.url(), "--format", "csv"]);
    let csv = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(csv.starts_with("agent_id,hardware_classes,alive,last_seen_ms_ago,leases,labels\n"), "{csv}");
    assert_eq!(csv.lines().count(), 3, "a header and two agents: {csv}");

    // fan_out = each_agent: one cell per agent, each run by its own agent.
    let text = tiny_spec("each-agent", &["bert-tiny"], &[1], 30)
        .replace("precisions = [\"fp32\", \"bf16\"]", "precisions = [\"fp32\"]")
        .replace("hardware = [\"cpu\"]", "hardware = [\"cpu\"]\nfan_out = \"each_agent\"");
    assert!(text.contains("each_agent"), "{text}");
    let id = c.submit(&c.write_spec("each.toml", &text).expect("spec")).expect("submit");
    let s = c.wait_done(&id, LIMIT).await.expect("done");
    assert_eq!((total(&s), count(&s, "ok")), (2, 2), "{s:?}; logs: {}", c.logs());
    let ran =
        c.query(&format!("SELECT count(DISTINCT agent_id) AS n FROM results WHERE sweep_id = '{id}'")).expect("query");
    assert_eq!(ran[0]["n"], 2, "each agent ran its own cell");

    // Each agent calibrated its CPU when it started and sent the figures when it
    // registered: one fp32 GEMM rate and one copy bandwidth per agent, measured.
    let cal = c
        .query(
            "SELECT agent_id, count(*) FILTER (WHERE kind = 'gemm' AND precision = 'fp32') AS gemm, \
             count(*) FILTER (WHERE kind = 'copy') AS copy, min(rate) AS slowest, min(n_samples) AS n, \
             count(DISTINCT hardware_class) AS classes FROM calibrations GROUP BY agent_id",
        )
        .expect("query");
    assert_eq!(cal.len(), 2, "both agents calibrated: {cal:?}");
    for row in &cal {
        assert!(row["gemm"].as_u64() >= Some(1) && row["copy"].as_u64() >= Some(1), "{row}");
        assert!(row["slowest"].as_f64().is_some_and(|r| r > 0.0) && row["n"].as_u64() >= Some(3), "{row}");
        assert_eq!(row["classes"], 1, "{row}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_agent_loses_its_lease_and_its_return_duplicates_nothing() {
    let mut c = Cluster::start().expect("coordinator");
    c.start_agent(0).expect("agent 0");
    tokio::time::sleep(Duration::from_secs(2)).await;
    // llama-tiny at batch 8: long enough to be caught running.
    let spec = c.write_spec("s.toml", &tiny_spec("killed-agent", &["llama-tiny"], &[8], 3)).expect("spec");
    let id = c.submit(&spec).expect("submit");
    let start = std::time::Instant::now();
    let agent0 = loop {
        assert!(start.elapsed() < LIMIT, "no lease was ever granted; logs: {}", c.logs());
        let leases = c.leases().await.expect("agents");
        if let Some((a, _)) = leases.iter().find(|(_, n)| *n > 0) {
            break a.clone();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(c.agent_id(0).as_deref(), Some(agent0.as_str()));
    c.kill_agent(0);
    c.start_agent(1).expect("agent 1");
    let s = c.wait_done(&id, LIMIT).await.expect("done");
    assert_eq!(count(&s, "ok") + count(&s, "unsupported"), total(&s), "{s:?}; logs: {}", c.logs());
    // The killed agent comes back with the same spool and id.
    c.start_agent(0).expect("agent 0 again");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_one_result_per_cell(&c, &id, total(&s));
    let retried = c.query(&format!("SELECT max(attempt) AS n FROM results WHERE sweep_id = '{id}'")).expect("query");
    assert!(retried[0]["n"].as_u64().unwrap_or(0) >= 2, "the killed cell was not retried: {retried:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_restarted_at_once_or_impersonated_never_leaves_a_cell_leased() {
    let mut c = Cluster::start().expect("coordinator");
    c.start_agent(0).expect("agent 0");
    tokio::time::sleep(Duration::from_secs(2)).await;
    // An hour-long lease: only the restart itself can end the killed attempt in time.
    let text = tiny_spec("restarted", &["bert-tiny"], &[1, 2, 4, 8], 3600)
        .replace("precisions = [\"fp32\", \"bf16\"]", "precisions = [\"fp32\"]")
        .replace("min_seconds = 0.2\nmax_seconds = 2.0", "min_seconds = 2.0\nmax_seconds = 4.0");
    assert!(text.contains("min_seconds = 2.0"), "{text}");
    let id = c.submit(&c.write_spec("s.toml", &text).expect("spec")).expect("submit");
    let start = std::time::Instant::now();
    while c.agent_children(0).is_empty() {
        assert!(start.elapsed() < LIMIT, "no cell ever started; logs: {}", c.logs());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // SIGKILL mid-cell and start again at once on the same spool: same id, heartbeats
    // go on, so lease expiry never comes. The new process's registration must end it.
    let orphans = c.agent_children(0);
    c.kill_agent(0);
    c.start_agent(0).expect("agent 0 again");
    let log = || std::fs::read_to_string(c.dir.path().join("coordinator.log")).unwrap_or_default();
    let start = std::time::Instant::now();
    while !log().contains("ended the leases of the agent's previous process") {
        assert!(start.elapsed() < Duration::from_secs(60), "the restart did not end the old lease: {}", log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The killed agent's cell died with it rather than running on beside the new one.
    let alive = || -> Vec<u32> { orphans.iter().copied().filter(|p| is_running(*p)).collect() };
    while !alive().is_empty() && start.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(alive().is_empty(), "cell processes {:?} outlived their agent", alive());

    // A lease taken in the agent's name while it runs a cell (only its own certificate
    // may: a reply it never received): the agent never hears of it, and its next
    // request for work must end it.
    let agent_id = c.agent_id(0).expect("the agent's id");
    let mut thief = c.agent_client("agent-0").await.expect("connect");
    let stolen = thief
        .lease_cells(LeaseCellsRequest { agent_id, max_cells: 1, held: Vec::new() })
        .await
        .expect("the coordinator answers")
        .into_inner()
        .leases;
    let s = c.wait_done(&id, Duration::from_secs(120)).await.expect("the sweep ends");
    assert_eq!(count(&s, "ok"), 4, "{s:?}; logs: {}", c.logs());
    assert_one_result_per_cell(&c, &id, 4);
    let attempts = c.query(&format!("SELECT max(attempt) AS n FROM results WHERE sweep_id = '{id}'")).expect("query");
    assert!(attempts[0]["n"].as_u64().unwrap_or(0) >= 2, "the killed attempt was not retried: {attempts:?}");
    if !stolen.is_empty() {
        assert!(log().contains("ended a lease its agent does not hold"), "{}", log());
    }
}

/// Whether process `pid` exists and is not a zombie waiting to be reaped.
fn is_running(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return false };
    // The state is the first field after the parenthesised command name.
    stat.rsplit_once(')').is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z'))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_result_resent_from_the_spool_after_its_commit_is_a_duplicate() {
    let mut c = Cluster::start_with_env(&[("RUST_LOG", "info")]).expect("coordinator");
    c.start_agent(0).expect("agent 0");
    tokio::time::sleep(Duration::from_secs(2)).await;
    // One cell that measures for two seconds: time to freeze the coordinator first.
    let text = tiny_spec("spooled", &["bert-tiny"], &[1], 30)
        .replace("precisions = [\"fp32\", \"bf16\"]", "precisions = [\"fp32\"]")
        .replace("min_seconds = 0.2\nmax_seconds = 2.0", "min_seconds = 2.0\nmax_seconds = 4.0");
    let id = c.submit(&c.write_spec("s.toml", &text).expect("spec")).expect("submit");
    let start = std::time::Instant::now();
    while !c.leases().await.expect("agents").iter().any(|(_, n)| *n > 0) {
        assert!(start.elapsed() < LIMIT, "no lease was ever granted; logs: {}", c.logs());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Frozen, the coordinator cannot acknowledge: the finished result waits in the spool.
    c.pause_coordinator(true).expect("SIGSTOP");
    let file = loop {
        if let Some(file) = e2e::spooled_results(&c.spool(0)).pop() {
            break file;
        }
        assert!(start.elapsed() < LIMIT, "nothing was spooled; logs: {}", c.logs());
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let copy = std::fs::read(&file).expect("read the spooled result");
    c.pause_coordinator(false).expect("SIGCONT");
    let s = c.wait_done(&id, LIMIT).await.expect("done");
    assert_eq!(count(&s, "ok"), 1, "{s:?}; logs: {}", c.logs());
    assert!(e2e::spooled_results(&c.spool(0)).is_empty(), "the acknowledged result left the spool");

    // As if the agent had died before the ack arrived: the result is back in its spool.
    c.kill_agent(0);
    std::fs::write(&file, &copy).expect("restore the spooled result");
    c.start_agent(0).expect("agent 0 again");
    let start = std::time::Instant::now();
    while !e2e::spooled_results(&c.spool(0)).is_empty() {
        assert!(start.elapsed() < Duration::from_secs(60), "the re-sent result stayed spooled; logs: {}", c.logs());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let agent_log = std::fs::read_to_string(c.dir.path().join("agent0.log")).unwrap_or_default();
    assert!(agent_log.contains("re-sent result was already committed"), "no duplicate ack: {}", c.logs());
    assert_one_result_per_cell(&c, &id, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_coordinator_restarts_and_the_sweep_finishes() {
    let mut c = Cluster::start().expect("coordinator");
    let addr = c.addr.clone();
    c.start_agent(0).expect("agent 0");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let spec = c
        .write_spec("s.toml", &tiny_spec("killed-coordinator", &["bert-tiny", "llama-tiny"], &[1, 4], 30))
        .expect("spec");
    let id = c.submit(&spec).expect("submit");
    // Kill it once something has finished, so the restart has state to replay.
    wait_until_one_finished(&c, &id).await;
    c.kill_coordinator();
    tokio::time::sleep(Duration::from_secs(1)).await;
    c.start_coordinator(&addr).expect("restart on the same address");
    let s = c.wait_done(&id, LIMIT).await.expect("done");
    assert_eq!(total(&s), 8);
    assert_eq!(count(&s, "ok") + count(&s, "unsupported"), 8, "{s:?}; logs: {}", c.logs());
    assert_one_result_per_cell(&c, &id, 8);

    // Compaction, then a restart: the restart mirrors Raft's view of the files, which
    // still lists the ones the compaction replaced; none may come back.
    let rows = |c: &Cluster| c.query("SELECT count(*) AS n FROM results").expect("query")[0]["n"].clone();
    let before = rows(&c);
    let o = c.cli(&["warehouse", "compact", "--warehouse", &c.warehouse().to_string_lossy()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    c.kill_coordinator();
    c.start_coordinator(&addr).expect("restart after compaction");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(rows(&c), before, "rows duplicated by compaction and restart; logs: {}", c.logs());
    assert_one_result_per_cell(&c, &id, 8);

    // Stopped as a service manager stops it (SIGTERM) while results flow: it drains and
    // exits cleanly, and after a restart the sweep ends with one result per cell.
    let spec = c.write_spec("t.toml", &tiny_spec("stopped-coordinator", &["bert-tiny"], &[1, 2, 4], 30)).expect("spec");
    let id = c.submit(&spec).expect("submit");
    wait_until_one_finished(&c, &id).await;
    let status = c.stop_coordinator().expect("stop");
    assert!(status.success(), "SIGTERM should stop it cleanly: {status}; logs: {}", c.logs());
    c.start_coordinator(&addr).expect("restart after SIGTERM");
    let s = c.wait_done(&id, LIMIT).await.expect("done");
    assert_eq!(count(&s, "ok") + count(&s, "unsupported"), total(&s), "{s:?}; logs: {}", c.logs());
    assert_one_result_per_cell(&c, &id, total(&s));
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_requests_are_refused_and_the_server_keeps_serving() {
    let c = Cluster::start().expect("coordinator");
    let mut agents = c.agent_client("hostile").await.expect("connect");
    let mut sweeps = c.client().await.expect("client");

    // A malformed fingerprint.
    let e = agents
        .register(RegisterRequest { fingerprint_json: "{not json".into(), ..Default::default() })
        .await
        .expect_err("refused");
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    assert!(e.message().starts_with("fingerprint_json"), "{}", e.message());

    // A hostile agent id: not the certificate's name.
    let fp = std::process::Command::new(e2e::binary("accelbench-agent"))
        .args(["detect", "--json"])
        .output()
        .expect("detect");
    let fp = String::from_utf8(fp.stdout).expect("utf-8");
    let e = agents
        .register(RegisterRequest { fingerprint_json: fp.clone(), agent_id: "../../etc".into(), ..Default::default() })
        .await
        .expect_err("refused");
    assert_eq!(e.code(), tonic::Code::PermissionDenied, "{}", e.message());
    assert!(e.message().contains("certificate names \"hostile\""), "{}", e.message());

    // A fingerprint over its bounds (a 3 MB CPU name; 1 000 fake GPUs, which once made
    // every `cuda` sweep fan out to them) is refused naming the field.
    let mut huge: serde_json::Value = serde_json::from_str(&fp).expect("json");
    huge["cpu"]["model_name"] = serde_json::Value::String("X".repeat(3 << 20));
    let mut fake_gpus: serde_json::Value = serde_json::from_str(&fp).expect("json");
    let gpu = serde_json::json!({"index": 0, "vendor": "nvidia", "backend": "cuda", "name": "Fake"});
    fake_gpus["gpus"] = serde_json::Value::Array(vec![gpu; 1000]);
    for (bad, says) in [(huge, "cpu.model_name: 3145728 bytes"), (fake_gpus, "gpus: 1000 devices")] {
        let e = agents
            .register(RegisterRequest { fingerprint_json: bad.to_string(), ..Default::default() })
            .await
            .expect_err("refused");
        assert_eq!(e.code(), tonic::Code::InvalidArgument, "{}", e.message());
        assert!(e.message().starts_with("fingerprint_json") && e.message().contains(says), "{}", e.message());
    }

    // Calibrations that are malformed, for a class the agent does not have, or not
    // positive are refused by name, and the agent is not registered.
    let class = serde_json::from_str::<serde_json::Value>(&fp).expect("json")["hardware_classes"][0]
        .as_str()
        .map(str::to_string)
        .expect("a cpu class");
    let calibration = |class: &str, rate: f64| {
        format!(
            "[{{\"device\":\"cpu\",\"hardware_class\":\"{class}\",\"kind\":\"gemm\",\"precision\":\"fp32\",\
             \"size\":512,\"rate\":{rate},\"n_samples\":5,\"median_seconds\":0.01,\"engine\":\"candle\",\
             \"engine_version\":\"0.11\",\"measured_at_ms\":1765000000000}}]"
        )
    };
    let before = c.query("SELECT count(*) AS n FROM calibrations").map(|r| r[0]["n"].clone()).ok();
    for (json, says) in [
        ("[{\"device\":".to_string(), "invalid json"),
        (calibration("cuda/NVIDIA H100 80GB HBM3", 1e12), "not one this agent registers"),
        (calibration(&class, -1.0), "rate"),
        (calibration(&class, 0.0), "rate"),
    ] {
        let e = agents
            .register(RegisterRequest { fingerprint_json: fp.clone(), calibrations_json: json, ..Default::default() })
            .await
            .expect_err("refused");
        assert_eq!(e.code(), tonic::Code::InvalidArgument, "{}", e.message());
        assert!(e.message().starts_with("calibrations_json") && e.message().contains(says), "{}", e.message());
    }
    let after = c.query("SELECT count(*) AS n FROM calibrations").map(|r| r[0]["n"].clone()).ok();
    assert_eq!(before, after, "a refused registration stores no calibration");

    // Leasing and heartbeating before registering (every registration above failed).
    let e = agents
        .lease_cells(LeaseCellsRequest { agent_id: "hostile".into(), max_cells: 1, held: Vec::new() })
        .await
        .expect_err("refused");
    assert_eq!(e.code(), tonic::Code::NotFound);
    // The same refusal has the same code on every RPC: an unknown agent, another
    // agent's id or a malformed one, an unknown sweep, a malformed sweep id.
    let e = agents
        .heartbeat(HeartbeatRequest { agent_id: "hostile".into(), ..Default::default() })
        .await
        .expect_err("refused");
    assert_eq!(e.code(), tonic::Code::NotFound);
    for other in ["ghost", "a b"] {
        let e = agents
            .lease_cells(LeaseCellsRequest { agent_id: other.into(), max_cells: 1, held: Vec::new() })
            .await
            .expect_err("refused");
        assert_eq!(e.code(), tonic::Code::PermissionDenied, "{}", e.message());
        let e = agents
            .heartbeat(HeartbeatRequest { agent_id: other.into(), ..Default::default() })
            .await
            .expect_err("refused");
        assert_eq!(e.code(), tonic::Code::PermissionDenied, "{}", e.message());
    }
    let unknown = "0190c6a2-7a3e-7d1c-9a55-3c2b1e0f4d8a".to_string();
    for e in [
        sweeps.get(GetSweepRequest { sweep_id: unknown.clone() }).await.expect_err("refused"),
        sweeps.cancel(CancelSweepRequest { sweep_id: unknown.clone() }).await.expect_err("refused"),
    ] {
        assert_eq!(e.code(), tonic::Code::NotFound, "{}", e.message());
    }
    for e in [
        sweeps.get(GetSweepRequest { sweep_id: "nope".into() }).await.expect_err("refused"),
        sweeps.cancel(CancelSweepRequest { sweep_id: "nope".into() }).await.expect_err("refused"),
    ] {
        assert_eq!(e.code(), tonic::Code::InvalidArgument, "{}", e.message());
        assert!(e.message().starts_with("sweep_id \"nope\": not a sweep id"), "{}", e.message());
    }

    // Enormous specs: over the coordinator's spec limit, and over gRPC's message limit.
    let e = sweeps
        .submit(SubmitSweepRequest { spec: "#".repeat(2 << 20), format: SpecFormat::Toml as i32 })
        .await
        .expect_err("refused");
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    assert!(e.message().contains("at most"), "{}", e.message());
    let e = sweeps
        .submit(SubmitSweepRequest { spec: "#".repeat(8 << 20), format: SpecFormat::Toml as i32 })
        .await
        .expect_err("refused");
    assert_eq!(e.code(), tonic::Code::OutOfRange);
    let e = sweeps
        .submit(SubmitSweepRequest { spec: "name = 3".into(), format: SpecFormat::Toml as i32 })
        .await
        .expect_err("refused");
    assert_eq!(e.code(), tonic::Code::InvalidArgument);

    // A real agent and sweep, then results it should not be able to send.
    let agent_id = agents
        .register(RegisterRequest { fingerprint_json: fp, ..Default::default() })
        .await
        .expect("register")
        .into_inner()
        .agent_id;
    let spec = tiny_spec("hostile", &["bert-tiny"], &[1], 30);
    let sweep_id = sweeps
        .submit(SubmitSweepRequest { spec, format: SpecFormat::Toml as i32 })
        .await
        .expect("submit")
        .into_inner()
        .sweep_id;
    let granted = agents
        .lease_cells(LeaseCellsRequest { agent_id: agent_id.clone(), max_cells: 1, held: Vec::new() })
        .await
        .expect("lease")
        .into_inner()
        .leases
        .into_iter()
        .next()
        .expect("a lease");
    let cell: serde_json::Value = serde_json::from_str(&granted.cell_json).expect("cell json");
    let class = cell["hardware_class"].as_str().expect("a resolved class").to_string();
    let precision = cell["precision"].as_str().expect("precision").to_string();
    let lease = granted.lease.expect("a lease ref");

    // NaN or negative latencies, times no reader can represent.
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_millis();
    let labelled = |samples: &str, cell_key: &str, epoch: u64, started: u128, finished: u128, engine: &str| {
        let lease = LeaseRef { sweep_id: sweep_id.clone(), cell_key: cell_key.into(), attempt: lease.attempt, epoch };
        let json = format!(
            r#"{{"schema_version":1,"sweep_id":"{sweep_id}","cell_key":"{cell_key}","attempt":{},"coordinates":{{"model":"bert-tiny","family":"bert","hardware_class":"{class}","batch":1,"seq_len":16,"precision":"{precision}","mode":"inference","engine":"{engine}"}},"status":"ok","error":null,"stderr_tail":null,"latency_ns":{{"n":1,"mean":1.0,"std":0.0,"min":1.0,"p50":1.0,"p90":1.0,"p95":1.0,"p99":1.0,"max":1.0,"cv":null,"median_ci_low":1.0,"median_ci_high":1.0}},"samples_ns":{samples},"warmup_iterations":0,"stop_reason":null,"throughput_items_per_s":null,"generation":null,"memory":{{}},"energy":{{}},"output_check":null,"provenance":{{"agent_id":null,"agent_version":"x","git_commit":"x","engine":"candle","engine_version":"x","hardware_class":"{class}","fingerprint_hash":"x","weights_source":"random-init:seed=1","started_at_ms":{started},"finished_at_ms":{finished}}}}}"#,
            lease.attempt
        );
        ReportResultsRequest { agent_id: agent_id.clone(), lease: Some(lease), result_json: json }
    };
    let record_at = |samples: &str, cell_key: &str, epoch: u64, started: u128, finished: u128| {
        labelled(samples, cell_key, epoch, started, finished, "candle")
    };
    let record = |samples: &str, cell_key: &str, epoch: u64| record_at(samples, cell_key, epoch, now_ms - 10, now_ms);
    // Each bad result is refused alone, naming the field; the stream goes on.
    let bad = [
        (record("[-5.0]", &lease.cell_key, lease.epoch), "result_json: samples_ns: sample 0 is -5"),
        (record("[null]", &lease.cell_key, lease.epoch), "result_json: invalid json"),
        (record("\"x\"", &lease.cell_key, lease.epoch), "result_json: invalid json"),
        (record_at("[1.0]", &lease.cell_key, lease.epoch, now_ms, 9_000_000_000_000_000_000), "finished_at_ms"),
        (record_at("[1.0]", &lease.cell_key, lease.epoch, 0, 0), "started_at_ms"),
        (record_at("[1.0]", &lease.cell_key, lease.epoch, now_ms + 86_400_000, now_ms + 86_400_000), "clock"),
    ];
    // Another engine than the cell's: refused by the committer, after these.
    let wrong_engine = labelled("[1.0]", &lease.cell_key, lease.epoch, now_ms - 10, now_ms, "torch");
    let expected: Vec<&str> = bad.iter().map(|(_, why)| *why).collect();
    let acks = agents
        .report_results(tokio_stream::iter(bad.into_iter().map(|(r, _)| r)))
        .await
        .expect("answered, one ack each")
        .into_inner()
        .acks;
    assert_eq!(acks.len(), expected.len(), "{acks:?}");
    for (ack, why) in acks.iter().zip(expected) {
        assert_eq!(ack.status, AckStatus::Rejected as i32, "{ack:?}");
        assert!(ack.message.contains(why), "expected {why:?} in {:?}", ack.message);
    }
    let acks = agents.report_results(tokio_stream_once(wrong_engine)).await.expect("answered").into_inner().acks;
    assert_eq!(acks[0].status, AckStatus::Rejected as i32, "{acks:?}");
    assert!(acks[0].message.contains("does not describe the leased cell"), "{acks:?}");
    // A result for a cell it does not hold, and one under a stale epoch.
    let other_key = "0".repeat(64);
    let acks = agents
        .report_results(tokio_stream_once(record("[1.0]", &other_key, lease.epoch)))
        .await
        .expect("answered")
        .into_inner()
        .acks;
    assert_eq!(acks[0].status, AckStatus::Rejected as i32, "{acks:?}");
    let acks = agents
        .report_results(tokio_stream_once(record("[1.0]", &lease.cell_key, lease.epoch + 1000)))
        .await
        .expect("answered")
        .into_inner()
        .acks;
    assert_eq!(acks[0].status, AckStatus::Rejected as i32, "{acks:?}");
    // Under a stale lease the result is not even decoded: its lease is refused first.
    let mut unread = record("[1.0]", &lease.cell_key, lease.epoch + 1000);
    unread.result_json = "{ not json".into();
    let acks = agents.report_results(tokio_stream_once(unread)).await.expect("answered").into_inner().acks;
    assert_eq!(acks[0].status, AckStatus::Rejected as i32, "{acks:?}");
    assert!(acks[0].message.starts_with("lease: ") && acks[0].message.contains("stale epoch"), "{acks:?}");

    // Still serving, and nothing was stored.
    let s = sweeps.get(GetSweepRequest { sweep_id: sweep_id.clone() }).await.expect("still serving").into_inner();
    assert_eq!(count(&s, "leased"), 1);
    let n = c.query("SELECT count(*) AS n FROM results").expect("query");
    assert_eq!(n[0]["n"], 0);

    // The real result, twice in one stream (one group commit), then once more: a
    // re-send is acknowledged DUPLICATE and stores nothing more.
    let good = || record("[1.0, 2.0]", &lease.cell_key, lease.epoch);
    let acks =
        agents.report_results(tokio_stream::iter(vec![good(), good()])).await.expect("answered").into_inner().acks;
    let statuses: Vec<i32> = acks.iter().map(|a| a.status).collect();
    assert_eq!(statuses, [AckStatus::Committed as i32, AckStatus::Duplicate as i32], "{acks:?}");
    let acks = agents.report_results(tokio_stream_once(good())).await.expect("answered").into_inner().acks;
    assert_eq!(acks[0].status, AckStatus::Duplicate as i32, "{acks:?}");
    let n = c.query("SELECT count(*) AS n FROM results").expect("query");
    assert_eq!(n[0]["n"], 1, "one row for the one committed attempt");
    let n = c.query("SELECT count(*) AS n FROM samples").expect("query");
    assert_eq!(n[0]["n"], 2, "its two samples, once");

    // An operator removes the agent (and an id that does not exist): through the CLI,
    // as they would.
    let o = c.cli(&["agents", "remove", &agent_id, "--coordinator", &c.url()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains(&format!("removed agent {agent_id}")));
    let o = c.cli(&["agents", "remove", "no-such-agent", "--coordinator", &c.url()]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown agent `no-such-agent`"), "{o:?}");
    let o = c.cli(&["agents", "list", "--format", "json", "--coordinator", &c.url()]);
    assert!(o.status.success() && !String::from_utf8_lossy(&o.stdout).contains(&agent_id), "{o:?}");
}

fn tokio_stream_once(r: ReportResultsRequest) -> impl tokio_stream::Stream<Item = ReportResultsRequest> {
    tokio_stream::iter(vec![r])
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cancelled_sweep_stops_its_running_cell() {
    let mut c = Cluster::start().expect("coordinator");
    c.start_agent(0).expect("agent 0");
    tokio::time::sleep(Duration::from_secs(2)).await;
    // Cells that measure for at least a minute: only the cancel can end one in time.
    let text = tiny_spec("cancelled", &["llama-tiny"], &[8, 16], 30)
        .replace("min_seconds = 0.2\nmax_seconds = 2.0", "min_seconds = 60.0\nmax_seconds = 120.0");
    assert!(text.contains("min_seconds = 60.0"), "the measure policy was not lengthened: {text}");
    let spec = c.write_spec("s.toml", &text).expect("spec");
    let id = c.submit(&spec).expect("submit");
    let start = std::time::Instant::now();
    while !c.leases().await.expect("agents").iter().any(|(_, n)| *n > 0) {
        assert!(start.elapsed() < LIMIT, "no lease was ever granted; logs: {}", c.logs());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Wait for the cell's child process, so the cancel is seen to stop a running cell.
    while c.agent_children(0).is_empty() {
        assert!(start.elapsed() < LIMIT, "the leased cell never started; logs: {}", c.logs());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let running = c.agent_children(0);
    let o = c.cli(&["sweep", "cancel", &id, "--coordinator", &c.url()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let s = c.wait_done(&id, LIMIT).await.expect("ended");
    assert_eq!(s.state, SweepState::Cancelled as i32, "{s:?}");
    assert!(count(&s, "cancelled") >= 1, "{s:?}");
    // The cancel withdrew the lease, and the agent, hearing it at its next heartbeat,
    // killed the cell's process rather than letting it run to the end.
    let start = std::time::Instant::now();
    while c.leases().await.expect("agents").iter().any(|(_, n)| *n > 0) {
        assert!(start.elapsed() < Duration::from_secs(30), "a lease outlived the cancel; logs: {}", c.logs());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let start = std::time::Instant::now();
    loop {
        let still: Vec<u32> = c.agent_children(0).into_iter().filter(|p| running.contains(p)).collect();
        if still.is_empty() {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "cell {still:?} outlived the cancel; logs: {}", c.logs());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let agent_log = std::fs::read_to_string(c.dir.path().join("agent0.log")).unwrap_or_default();
    assert!(agent_log.contains("withdrew the lease"), "the agent never said it stopped the cell: {agent_log}");
}

/// Registrations from one address beyond its burst are refused until its rate allows
/// more (the attack: 10 000 fake agents registered in 3 s from one host).
#[tokio::test(flavor = "multi_thread")]
async fn registrations_from_one_address_are_rate_limited() {
    let c = Cluster::start_with_config("registrations_per_minute_per_peer = 1\nregistration_burst = 3\n")
        .expect("coordinator");
    let fp = std::process::Command::new(e2e::binary("accelbench-agent"))
        .args(["detect", "--json"])
        .output()
        .expect("detect");
    let fp = String::from_utf8(fp.stdout).expect("utf-8");
    // Four agents with certificates of their own, all on one host.
    for i in 0..3 {
        let mut agents = c.agent_client(&format!("flood-{i}")).await.expect("connect");
        agents
            .register(RegisterRequest { fingerprint_json: fp.clone(), ..Default::default() })
            .await
            .unwrap_or_else(|e| panic!("registration {i} within the burst: {e}"));
    }
    let mut agents = c.agent_client("flood-3").await.expect("connect");
    let e = agents
        .register(RegisterRequest { fingerprint_json: fp, ..Default::default() })
        .await
        .expect_err("over the burst");
    assert_eq!(e.code(), tonic::Code::ResourceExhausted, "{}", e.message());
    assert!(e.message().contains("too many registrations from 127.0.0.1"), "{}", e.message());
    let o = c.cli(&["agents", "list", "--format", "csv", "--coordinator", &c.url()]);
    assert_eq!(String::from_utf8_lossy(&o.stdout).lines().count(), 1 + 3, "three agents, not four: {o:?}");
}

/// Result streams open at once are bounded: beyond `max_report_streams`, a new stream is
/// refused (the agent keeps its results in its spool and retries), and a finished
/// stream frees its place.
#[tokio::test(flavor = "multi_thread")]
async fn open_result_streams_are_bounded() {
    let c = Cluster::start_with_config("max_report_streams = 1\n").expect("coordinator");
    let agents = c.agent_client("streamer").await.expect("connect");
    // A stream that stays open: nothing is sent until `hold` is dropped.
    let (hold, rx) = tokio::sync::mpsc::channel::<ReportResultsRequest>(1);
    let mut first = agents.clone();
    let open = tokio::spawn(async move { first.report_results(tokio_stream::wrappers::ReceiverStream::new(rx)).await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let e = agents.clone().report_results(tokio_stream::iter(Vec::new())).await.expect_err("over the bound");
    assert_eq!(e.code(), tonic::Code::ResourceExhausted, "{}", e.message());
    drop(hold);
    open.await.expect("joined").expect("the open stream ends normally");
    agents.clone().report_results(tokio_stream::iter(Vec::new())).await.expect("its place is free again");
}

/// `--log-format json` (here through its variable, as a service manager would set it):
/// every log line is a JSON object, and the submit's line names the sweep it made.
#[tokio::test(flavor = "multi_thread")]
async fn json_logs_carry_the_ids() {
    let c = Cluster::start_with_env(&[("ACCELBENCH_LOG_FORMAT", "json"), ("RUST_LOG", "info")]).expect("coordinator");
    let spec = c.write_spec("s.toml", &tiny_spec("json-logs", &["bert-tiny"], &[1], 30)).expect("spec");
    let sweep_id = c.submit(&spec).expect("submit");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let log = std::fs::read_to_string(c.dir.path().join("coordinator.log")).expect("coordinator log");
    let lines: Vec<serde_json::Value> = log
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect();
    let submitted = lines
        .iter()
        .find(|l| l["fields"]["message"] == "sweep submitted")
        .unwrap_or_else(|| panic!("no `sweep submitted` line in {log}"));
    assert_eq!(submitted["fields"]["sweep_id"], sweep_id.as_str(), "{submitted}");
    assert!(submitted["level"] == "INFO" && submitted["timestamp"].is_string(), "{submitted}");
}

/// The value of the sample `series` (name and labels as exposed), if present.
fn sample(samples: &[(String, f64)], series: &str) -> Option<f64> {
    samples.iter().find(|(name, _)| name == series).map(|(_, v)| *v)
}

/// `/metrics` tells what happened as it happened: after a sweep, the coordinator's cells by state,
/// the results committed, the leases granted, the agent alive under its hardware
/// class, the group commits and the warehouse's files equal what the sweep did; after
/// a restart at once, the state gauges are the same (read from the replayed state) and
/// the counters start again from zero (they count this process's work). The agent's
/// own metrics count the cells it finished and an empty spool.
#[tokio::test(flavor = "multi_thread")]
async fn metrics_show_what_the_sweep_did_and_survive_a_restart() {
    let mut c = Cluster::start().expect("coordinator");
    let before = c.scrape().expect("scrape an idle coordinator");
    assert_eq!(sample(&before, "accelbench_cells{state=\"done\"}"), Some(0.0), "{before:?}");
    assert_eq!(sample(&before, "accelbench_warehouse_files"), Some(0.0));
    let agent_metrics = c.start_agent_with_metrics(0).expect("agent");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let spec = c.write_spec("s.toml", &tiny_spec("metrics", &["bert-tiny"], &[1, 2], 30)).expect("spec");
    let id = c.submit(&spec).expect("submit");
    let s = c.wait_done(&id, LIMIT).await.expect("done");
    let cells = total(&s) as f64;
    assert_eq!(cells, 4.0, "{s:?}");
    let m = c.scrape().expect("scrape");
    assert_eq!(sample(&m, "accelbench_cells{state=\"done\"}"), Some(cells), "{m:?}");
    assert_eq!(sample(&m, "accelbench_cells{state=\"pending\"}"), Some(0.0));
    assert_eq!(sample(&m, "accelbench_sweeps{state=\"finished\"}"), Some(1.0));
    assert_eq!(sample(&m, "accelbench_results_total{outcome=\"committed\"}"), Some(cells), "{m:?}");
    assert!(sample(&m, "accelbench_leases_granted_total") >= Some(cells), "{m:?}");
    assert!(sample(&m, "accelbench_lease_request_seconds_count") >= Some(1.0));
    assert!(sample(&m, "accelbench_commit_group_size_sum") >= Some(cells), "{m:?}");
    let alive: Vec<&(String, f64)> =
        m.iter().filter(|(n, _)| n.starts_with("accelbench_agents{") && n.contains("liveness=\"alive\"")).collect();
    assert!(
        alive.len() == 1 && alive[0].0.contains("hardware_class=\"cpu/") && alive[0].1 == 1.0,
        "one live agent under its cpu class: {alive:?}"
    );
    assert_eq!(sample(&m, "accelbench_raft_is_leader"), Some(1.0), "the lone node leads");
    let (commit, applied) = (sample(&m, "accelbench_raft_commit_index"), sample(&m, "accelbench_raft_applied_index"));
    assert!(commit >= Some(cells) && applied == commit, "committed and applied: {commit:?} {applied:?}");
    assert!(sample(&m, "accelbench_raft_term") >= Some(1.0));
    // The agent's own: every cell finished ok and acknowledged, none running.
    let a = c.scrape_url(&agent_metrics).expect("scrape the agent");
    // Its listener is TLS too, for readers only.
    let nosy = c.auth(&["--agent", "nosy"]).expect("issue");
    let anonymous = proto::connect::ClientAuth { ca: nosy.ca.clone(), ..Default::default() };
    for (who, auth) in [("an agent certificate", nosy), ("no certificate", anonymous)] {
        assert!(e2e::scrape(&agent_metrics, &auth).is_err(), "{who} read the agent's metrics");
    }
    assert_eq!(sample(&a, "accelbench_agent_cells_total{status=\"ok\"}"), Some(cells), "{a:?}");
    assert_eq!(sample(&a, "accelbench_agent_spooled_results"), Some(0.0), "{a:?}");
    assert!(!a.iter().any(|(n, _)| n.starts_with("accelbench_agent_cell_running{")), "{a:?}");
    let files = sample(&m, "accelbench_warehouse_files").unwrap_or(0.0);
    assert!(files >= 1.0 && sample(&m, "accelbench_warehouse_bytes") > Some(0.0), "{m:?}");

    c.kill_coordinator();
    c.start_coordinator(&c.addr.clone()).expect("restart at once");
    let again = c.scrape().expect("scrape after restart");
    assert_eq!(sample(&again, "accelbench_cells{state=\"done\"}"), Some(cells), "{again:?}");
    assert_eq!(sample(&again, "accelbench_warehouse_files"), Some(files));
    assert_eq!(sample(&again, "accelbench_leases_granted_total"), Some(0.0), "{again:?}");
    assert!(sample(&again, "accelbench_raft_applied_index") >= applied, "the log replayed: {again:?}");
}

/// `accelbench-agent doctor` against a live coordinator says ok for it and the spool
/// (exit 0); against an address nobody serves it fails naming the coordinator and what
/// to check (exit 1).
#[test]
fn doctor_checks_the_coordinator_and_the_spool() {
    let c = Cluster::start().expect("coordinator");
    let agent = c.auth(&["--agent", "agent-0"]).expect("agent certificate");
    let doctor = |url: &str, auth: &proto::connect::ClientAuth| {
        std::process::Command::new(e2e::binary("accelbench-agent"))
            .args(["doctor", "--coordinator", url, "--spool"])
            .arg(c.spool(0))
            .args(Cluster::flags(auth))
            .output()
            .expect("doctor runs")
    };
    let ok = doctor(&c.url(), &agent);
    let text = String::from_utf8_lossy(&ok.stdout).into_owned();
    assert_eq!(ok.status.code(), Some(0), "{text}");
    // An agent's certificate may not list the fleet: the refusal still proves that
    // the coordinator accepts it, and carries its clock.
    assert!(text.contains(&format!("ok    coordinator {}: answered in", c.url())), "{text}");
    assert!(text.contains("it accepts this identity"), "{text}");
    assert!(text.lines().any(|l| l.starts_with("ok    spool ") && l.contains("writable")), "{text}");
    assert!(text.lines().any(|l| l.starts_with("ok    clock: ") && l.contains("ms against the coordinator")), "{text}");
    let certificate = |l: &str| {
        l.starts_with("ok    agent certificate ")
            && (l.ends_with("agent-0 (role agent), 364 days left")
                || l.ends_with("agent-0 (role agent), 365 days left"))
    };
    assert!(text.lines().any(certificate), "{text}");
    assert!(
        text.lines().any(|l| l.starts_with("ok    CA certificate ") && l.contains("accelbench lab CA, 36")),
        "{text}"
    );
    let dead = doctor("https://127.0.0.1:1", &agent);
    let text = String::from_utf8_lossy(&dead.stdout).into_owned();
    assert_eq!(dead.status.code(), Some(1), "{text}");
    assert!(
        text.contains("FAIL  coordinator https://127.0.0.1:1: cannot reach it") && text.contains("--listen"),
        "{text}"
    );
    // The same settings from a `--config` file, as a service would pass them.
    let config = c.dir.path().join("agent.toml");
    let setting = |k: &str, p: &Option<std::path::PathBuf>| {
        format!("{k} = {:?}\n", p.as_ref().map(|p| p.display().to_string()).unwrap_or_default())
    };
    let toml = format!(
        "coordinator = {:?}\nspool = {:?}\n{}{}{}",
        c.url(),
        c.spool(0).display().to_string(),
        setting("ca", &agent.ca),
        setting("cert", &agent.cert),
        setting("key", &agent.key)
    );
    std::fs::write(&config, toml).expect("write");
    let from_file = std::process::Command::new(e2e::binary("accelbench-agent"))
        .args(["doctor", "--config"])
        .arg(&config)
        .output()
        .expect("doctor runs");
    let text = String::from_utf8_lossy(&from_file.stdout).into_owned();
    assert_eq!(from_file.status.code(), Some(0), "{text}");
    assert!(text.contains("it accepts this identity"), "{text}");
    // The CA alone (no certificate, no token): reached, but refused.
    let anonymous = proto::connect::ClientAuth { ca: agent.ca.clone(), ..Default::default() };
    let refused = doctor(&c.url(), &anonymous);
    let text = String::from_utf8_lossy(&refused.stdout).into_owned();
    assert_eq!(refused.status.code(), Some(1), "{text}");
    assert!(text.contains("refuses this identity: no client certificate and no bearer token"), "{text}");
}

/// `accelbench doctor` on the coordinator's host: its state folder, the warehouse and the
/// running coordinator are ok (exit 0); a state folder it cannot create fails, naming
/// the flag to change (exit 1).
#[test]
fn coordinator_doctor_checks_state_warehouse_and_server() {
    let c = Cluster::start().expect("coordinator");
    let state = c.dir.path().join("coordinator");
    let warehouse = c.warehouse();
    let run = |data_dir: &std::path::Path| {
        std::process::Command::new(e2e::binary("accelbench"))
            .args(["doctor", "--coordinator", &c.url(), "--data-dir"])
            .arg(data_dir)
            .args(Cluster::flags(&c.admin()))
            .arg("--tls-cert")
            .arg(c.ca_dir().join("node-coordinator.pem"))
            .arg("--warehouse")
            .arg(&warehouse)
            .output()
            .expect("doctor runs")
    };
    let ok = run(&state);
    let text = String::from_utf8_lossy(&ok.stdout).into_owned();
    assert_eq!(ok.status.code(), Some(0), "{text}");
    for line in [
        "ok    state ",
        "ok    warehouse ",
        "ok    warehouse folder ",
        "ok    node certificate ",
        "ok    CA certificate ",
        "ok    client certificate ",
        "ok    coordinator ",
        "ok    clock: ",
    ] {
        assert!(text.lines().any(|l| l.starts_with(line)), "no {line:?} in {text}");
    }
    let bad = run(std::path::Path::new("/proc/accelbench-cannot-be-here"));
    let text = String::from_utf8_lossy(&bad.stdout).into_owned();
    assert_eq!(bad.status.code(), Some(1), "{text}");
    assert!(
        text.contains("FAIL  state /proc/accelbench-cannot-be-here: not writable") && text.contains("--data-dir"),
        "{text}"
    );
}

/// `accelbench cluster status`: the single voter leads, its applied index catches its
/// commit index after a submit, and a coordinator killed and started again at once comes
/// back leading with nothing committed lost (the commit index never goes back).
#[tokio::test(flavor = "multi_thread")]
async fn cluster_status_shows_the_leader_and_survives_an_immediate_restart() {
    let mut c = Cluster::start().expect("coordinator");
    let status = |c: &Cluster| -> serde_json::Value {
        let o = c.cli(&["cluster", "status", "--format", "json", "--coordinator", &c.url()]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_str(String::from_utf8_lossy(&o.stdout).trim()).expect("one JSON line")
    };
    let spec = c.write_spec("s.toml", &tiny_spec("status", &["bert-tiny"], &[1], 30)).expect("spec");
    c.submit(&spec).expect("submit");
    let before = status(&c);
    assert_eq!(before["type"], "raft_node", "{before}");
    assert_eq!((before["role"].as_str(), before["node_id"].as_u64()), (Some("leader"), Some(1)), "{before}");
    assert_eq!(before["leader_id"], before["node_id"], "{before}");
    assert_eq!(before["voters"], serde_json::json!([1]), "{before}");
    assert!(before["term"].as_u64() >= Some(1) && before["commit_index"].as_u64() >= Some(1), "{before}");
    assert_eq!(before["apply_lag"], 0, "a proposal answers after it is applied: {before}");

    c.kill_coordinator();
    let addr = c.addr.clone();
    c.start_coordinator(&addr).expect("restart at once on the same port");
    let start = std::time::Instant::now();
    let after = loop {
        let s = status(&c);
        if s["role"] == "leader" || start.elapsed() > Duration::from_secs(30) {
            break s;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(after["role"], "leader", "{after}");
    assert!(after["commit_index"].as_u64() >= before["commit_index"].as_u64(), "{before} then {after}");
    assert!(after["term"].as_u64() >= before["term"].as_u64(), "{before} then {after}");
}
