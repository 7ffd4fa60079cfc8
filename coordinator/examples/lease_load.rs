//! Load bench of the coordinator: many agent clients on loopback that lease and
//! complete cells without running models.
//!
//! `cargo run -p coordinator --example lease_load [-- --agents 1000 --cells 20000 --nodes 3]`
//!
//! Starts `accelbench serve` as its own process with `load_test = true` and a scratch
//! data folder and warehouse (every result it stores is marked `origin = load-test`,
//! weights source `load-test:generated`), registers N generated agents, submits one
//! sweep, and lets every agent lease one cell at a time and report a generated result
//! until the sweep is done. Prints leases/s, the p50/p99 latency of a lease request,
//! and the CPU time per lease of the coordinator process and of the load generator
//! itself (from /proc): on a small machine the two share the cores, so the sum says
//! how much of the rate the machine, rather than the coordinator, sets.
//!
//! `--nodes 3` runs the coordinator as a Raft cluster of three processes on this machine
//! (plain-text peers) and drives its leader; `--kill-follower-after SECS` SIGKILLs one
//! follower that long into the run. The coordinator CPU is then the surviving nodes'.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use proto::v1::agent_service_client::AgentServiceClient;
use proto::v1::fleet_service_client::FleetServiceClient;
use proto::v1::sweep_service_client::SweepServiceClient;
use proto::v1::{
    ClusterStatusRequest, LeaseCellsRequest, RegisterRequest, ReportResultsRequest, SpecFormat, SubmitSweepRequest,
};
use tokio::sync::Mutex;

/// Lease load on a scratch coordinator.
#[derive(clap::Parser)]
struct Args {
    /// Generated agents, each leasing one cell at a time.
    #[arg(long, default_value_t = 1000)]
    agents: usize,
    /// Cells in the sweep (rounded down to batch sizes × sequence lengths × 2 precisions).
    #[arg(long, default_value_t = 20_000)]
    cells: usize,
    /// Coordinator processes: 1 (a single voter), or 3 or 5 (a Raft cluster).
    #[arg(long, default_value_t = 1)]
    nodes: u64,
    /// With --nodes 3 or 5: SIGKILL one follower this many seconds into the run.
    #[arg(long, value_name = "SECS")]
    kill_follower_after: Option<f64>,
}

/// One coordinator process of the bench.
struct Node {
    id: u64,
    url: String,
    child: std::process::Child,
}

/// Starts `n` coordinator processes (a Raft cluster when n > 1) in `dir`.
fn start_nodes(dir: &std::path::Path, accelbench: &std::path::Path, n: u64) -> anyhow::Result<Vec<Node>> {
    let ports: Vec<u16> = (0..n)
        .map(|_| Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port()))
        .collect::<anyhow::Result<_>>()?;
    let peers: Vec<String> = ports.iter().enumerate().map(|(i, p)| format!("{}=http://127.0.0.1:{p}", i + 1)).collect();
    let mut nodes = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        let id = i as u64 + 1;
        let mut cmd = Command::new(accelbench);
        cmd.args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--config"])
            .arg(dir.join("serve.toml"))
            .arg("--data-dir")
            .arg(dir.join(format!("coordinator-{id}")))
            .arg("--warehouse")
            .arg(dir.join("warehouse"))
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if n > 1 {
            cmd.args(["--node-id", &id.to_string(), "--peers", &peers.join(",")]);
        }
        let child = cmd.spawn().with_context(|| format!("starting {}", accelbench.display()))?;
        nodes.push(Node { id, url: format!("http://127.0.0.1:{port}"), child });
    }
    Ok(nodes)
}

/// The leader's URL, once a node names one (within a minute).
async fn leader_url(nodes: &[Node]) -> anyhow::Result<String> {
    let start = Instant::now();
    while start.elapsed() < std::time::Duration::from_secs(60) {
        for node in nodes {
            let Ok(channel) = tonic::transport::Channel::from_shared(node.url.clone())?.connect().await else {
                continue;
            };
            let status = FleetServiceClient::new(channel).cluster_status(ClusterStatusRequest {}).await;
            if let Ok(s) = status.map(|s| s.into_inner()) {
                if s.node.is_some_and(|n| n.role == "leader") {
                    return Ok(node.url.clone());
                }
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    anyhow::bail!("no leader elected within a minute")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = <Args as clap::Parser>::parse();
    let n_agents = args.agents;
    // A spec takes at most 1 000 batch sizes: beyond 10 000 cells, more sequence lengths.
    let n_batches = (args.cells / 10).clamp(1, 1000);
    let n_seqs = (args.cells / (2 * n_batches)).max(1);
    let dir = tempfile::tempdir()?;
    std::fs::write(
        dir.path().join("serve.toml"),
        // Plain text: the bench measures the scheduler and Raft, not TLS, and its
        // simulated agents all share one id space (no certificate each).
        "load_test = true\nmax_cells = 1000000\nregistrations_per_minute_per_peer = 0\ninsecure = true\n",
    )?;
    let exe = std::env::current_exe()?;
    let accelbench = exe.parent().and_then(|p| p.parent()).context("target dir")?.join("accelbench");
    anyhow::ensure!(matches!(args.nodes, 1 | 3 | 5), "--nodes {}: expected 1, 3 or 5", args.nodes);
    let mut nodes = start_nodes(dir.path(), &accelbench, args.nodes)?;
    let url = leader_url(&nodes).await?;
    let leader = nodes.iter().position(|n| n.url == url).context("the leader is one of ours")?;
    println!(
        "{} coordinator process(es); leader node {}; CPU: {}",
        nodes.len(),
        nodes[leader].id,
        agent::detect::detect().cpu.model_name
    );

    let channel = tonic::transport::Channel::from_shared(url.clone())?.connect().await?;
    let fp = generated_fingerprint();
    let mut ids = Vec::with_capacity(n_agents);
    for _ in 0..n_agents {
        let mut c = AgentServiceClient::new(channel.clone());
        ids.push(
            c.register(RegisterRequest { fingerprint_json: fp.clone(), ..Default::default() })
                .await?
                .into_inner()
                .agent_id,
        );
    }
    let batches: Vec<String> = (1..=n_batches).map(|b| b.to_string()).collect();
    let seqs: Vec<String> = (1..=n_seqs).map(|i| (8 * i).to_string()).collect();
    let spec = format!(
        "name = \"lease-load\"\n[matrix]\nmodels = [\"bert-tiny\"]\nhardware = [\"cpu\"]\nbatch_sizes = [{}]\n\
         sequence_lengths = [{}]\nprecisions = [\"fp32\", \"bf16\"]\n[policy]\nlease_seconds = 600\n",
        batches.join(", "),
        seqs.join(", ")
    );
    let sweep = SweepServiceClient::new(channel.clone())
        .submit(SubmitSweepRequest { spec, format: SpecFormat::Toml as i32 })
        .await?
        .into_inner();
    println!("{n_agents} agents, {} cells", sweep.n_cells);

    let pids: Vec<u32> = nodes.iter().map(|n| n.child.id()).collect();
    let cpu_before: Vec<f64> = pids.iter().map(|&p| cpu_seconds(p)).collect::<anyhow::Result<_>>()?;
    let own_cpu_before = cpu_seconds(std::process::id())?;
    let follower = nodes.iter().position(|n| n.url != url);
    let kill_at = args.kill_follower_after.map(std::time::Duration::from_secs_f64);
    let latencies = Arc::new(Mutex::new(Vec::<f64>::new()));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for id in ids {
        let (channel, latencies) = (channel.clone(), latencies.clone());
        tasks.push(tokio::spawn(async move { agent_loop(channel, id, latencies).await }));
    }
    if let (Some(after), Some(f)) = (kill_at, follower) {
        let (pid, id) = (pids[f], nodes[f].id);
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            // SAFETY: kill(2) has no memory preconditions; the pid is our child's.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            println!("follower node {id} SIGKILLed {:.1} s into the run", start.elapsed().as_secs_f64());
        });
    }
    let mut n_leases = 0usize;
    for t in tasks {
        n_leases += t.await??;
    }
    let secs = start.elapsed().as_secs_f64();
    let killed = follower.filter(|_| kill_at.is_some_and(|after| start.elapsed() >= after));
    // The surviving nodes' CPU (a killed process's counters are gone with it).
    let cpu: f64 = (0..nodes.len())
        .filter(|&i| Some(i) != killed)
        .map(|i| Ok(cpu_seconds(pids[i])? - cpu_before[i]))
        .sum::<anyhow::Result<f64>>()?;
    let own_cpu = cpu_seconds(std::process::id())? - own_cpu_before;
    let mut l = latencies.lock().await.clone();
    l.sort_by(f64::total_cmp);
    let pct = |q: f64| l.get(((l.len() as f64 - 1.0) * q) as usize).copied().unwrap_or(f64::NAN);
    println!(
        "{n_leases} leases completed in {secs:.1} s: {:.0} leases/s; lease latency p50 {:.1} ms, p99 {:.1} ms; \
         coordinator cpu {cpu:.1} s ({:.0} us per lease, {:.0}% of one core); \
         load generator cpu {own_cpu:.1} s ({:.0} us per lease)",
        n_leases as f64 / secs,
        pct(0.5) * 1e3,
        pct(0.99) * 1e3,
        cpu / n_leases.max(1) as f64 * 1e6,
        cpu / secs * 100.0,
        own_cpu / n_leases.max(1) as f64 * 1e6,
    );
    for node in &mut nodes {
        let _ = node.child.kill();
    }
    Ok(())
}

/// Leases one cell at a time and completes it with a generated result until none is left.
async fn agent_loop(
    channel: tonic::transport::Channel,
    agent_id: String,
    latencies: Arc<Mutex<Vec<f64>>>,
) -> anyhow::Result<usize> {
    let mut c = AgentServiceClient::new(channel);
    let mut n = 0;
    loop {
        let t = Instant::now();
        let leases = c
            .lease_cells(LeaseCellsRequest { agent_id: agent_id.clone(), max_cells: 1, held: Vec::new() })
            .await?
            .into_inner();
        latencies.lock().await.push(t.elapsed().as_secs_f64());
        let Some(granted) = leases.leases.into_iter().next() else { return Ok(n) };
        let Some(lease) = granted.lease else { return Ok(n) };
        n += 1;
        // The coordinator refuses a result whose coordinates are not the leased cell's.
        let cell: shared::cell::Cell = serde_json::from_str(&granted.cell_json)?;
        let class = cell.hardware_class.clone().unwrap_or_else(|| "cpu/load-test generator".into());
        let coordinates =
            shared::result::Coordinates::of(&cell, &class).ok_or_else(|| anyhow::anyhow!("unknown model"))?;
        let record = generated_result(&lease.sweep_id, &lease.cell_key, lease.attempt, &coordinates)?;
        c.report_results(tokio_stream::iter(vec![ReportResultsRequest {
            agent_id: agent_id.clone(),
            lease: Some(lease),
            result_json: record,
        }]))
        .await?;
    }
}

fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let fields: Vec<&str> = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("").split_whitespace().collect();
    let ticks: f64 =
        fields.get(11).context("utime")?.parse::<f64>()? + fields.get(12).context("stime")?.parse::<f64>()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Ok(ticks / hz)
}

/// A machine that does not exist, clearly named: the load generator's agents.
fn generated_fingerprint() -> String {
    let mut fp = agent::detect::detect();
    fp.hostname = "load-test".into();
    fp.cpu.model_name = "load-test generator".into();
    fp.gpus.clear();
    serde_json::to_string(&fp).unwrap_or_default()
}

fn generated_result(
    sweep_id: &str,
    cell_key: &str,
    attempt: u32,
    coordinates: &shared::result::Coordinates,
) -> anyhow::Result<String> {
    let class = &coordinates.hardware_class;
    let coordinates = serde_json::to_string(coordinates)?;
    // The coordinator refuses results far from its clock: stamp them now.
    let now = chrono::Utc::now().timestamp_millis();
    Ok(format!(
        r#"{{"schema_version":1,"sweep_id":"{sweep_id}","cell_key":"{cell_key}","attempt":{attempt},"coordinates":{coordinates},"status":"ok","error":null,"stderr_tail":null,"latency_ns":{{"n":1,"mean":1.0,"std":0.0,"min":1.0,"p50":1.0,"p90":1.0,"p95":1.0,"p99":1.0,"max":1.0,"cv":null,"median_ci_low":1.0,"median_ci_high":1.0}},"samples_ns":[1.0],"warmup_iterations":0,"stop_reason":null,"throughput_items_per_s":null,"generation":null,"memory":{{}},"energy":{{}},"output_check":null,"provenance":{{"agent_id":null,"agent_version":"load-test","git_commit":"load-test","engine":"candle","engine_version":"load-test","hardware_class":"{class}","fingerprint_hash":"load-test","weights_source":"load-test:generated","started_at_ms":{now},"finished_at_ms":{now}}}}}"#
    ))
}
