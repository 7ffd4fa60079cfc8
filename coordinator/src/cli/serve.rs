//! `accelbench serve`: run the coordinator.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use crate::server::{self, ServeConfig};

#[derive(Debug, Args)]
#[command(long_about = "Run the coordinator: it takes sweeps from `accelbench sweep submit`, leases \
their cells to agents (`accelbench-agent run --coordinator URL`), and commits their results to \
the warehouse. Its state (sweeps, cells, leases, the manifest of committed files) is a \
Raft-replicated log on disk in --data-dir: a restart replays it, nothing is lost.\n\n\
Settings come from --config FILE (TOML: listen, http_listen, data_dir, warehouse, max_cells, \
heartbeat_interval_ms, max_spec_bytes, registrations_per_minute_per_peer (default 600, 0 for \
no limit), registration_burst (default 100), max_report_streams (default 1024), tls_ca, tls_cert, tls_key, tokens_file, \
insecure, node_id, peers), and flags override them.\n\n\
A cluster: three or five coordinators, each started with the same --peers and its own --node-id, \
sharing one warehouse; they elect a leader, which serves sweeps and agents, and a follower \
answers with the leader's URL. `accelbench cluster status` shows who leads.\n\n\
Security: every listener is TLS (rustls). Agents and coordinator nodes present certificates from \
the lab CA (`accelbench ca init`, `accelbench ca issue`); people and scripts present a certificate \
or a bearer token (`accelbench token issue`) carrying a role: admin, submitter or reader. Without \
TLS settings the coordinator refuses to start; --insecure serves plain text to everyone and says \
so on every start. The first line on stdout \
is `listening on ADDR`; with --http-listen the second is `metrics on http://ADDR/metrics` \
(Prometheus text format: cells by state, sweeps, agents by hardware class and liveness, leases \
granted and expired, lease latency, results by answer, group commits, warehouse files and \
bytes) and the third `dashboard on http://ADDR/`: the web dashboard (as `accelbench dashboard`, \
plus what only the coordinator knows: pending and leased cells, which agents are alive and what \
each runs now, updated in the page every two seconds). Over TLS both need a client certificate \
of a reading role (reader, submitter, admin, node).\n\nExample:\n  accelbench serve --listen 0.0.0.0:7070 --warehouse s3://lab-bench/warehouse \\\n    \
--tls-ca lab-ca/ca.pem --tls-cert lab-ca/node-coord1.pem --tls-key lab-ca/node-coord1.key")]
pub struct ServeArgs {
    /// TOML configuration file
    #[arg(long, value_name = "FILE", env = "ACCELBENCH_SERVE_CONFIG")]
    pub config: Option<PathBuf>,
    /// gRPC listen address (port 0 picks a free port)
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// HTTP listen address for Prometheus metrics at /metrics and the web dashboard at /
    /// (off unless given; port 0 picks a free port)
    #[arg(long, value_name = "ADDR")]
    pub http_listen: Option<SocketAddr>,
    /// Folder of the Raft log and snapshots
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Warehouse folder or URL results are committed to
    #[arg(long, value_name = "URL")]
    pub warehouse: Option<String>,
    /// The lab CA's certificate: clients must present one it signed, or a token
    #[arg(long, value_name = "FILE", env = "ACCELBENCH_TLS_CA")]
    pub tls_ca: Option<PathBuf>,
    /// This node's certificate (`accelbench ca issue --node NAME`)
    #[arg(long, value_name = "FILE", env = "ACCELBENCH_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// This node's private key
    #[arg(long, value_name = "FILE", env = "ACCELBENCH_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// Bearer tokens for people and scripts (`accelbench token issue`); re-read on change
    #[arg(long, value_name = "FILE")]
    pub tokens_file: Option<PathBuf>,
    /// Plain text, no authentication: anyone who reaches the port may submit, cancel and
    /// report results. Only for a network you trust entirely; warns on every start
    #[arg(long)]
    pub insecure: bool,
    /// This node's id in a cluster (see --peers)
    #[arg(long, value_name = "N", env = "ACCELBENCH_NODE_ID")]
    pub node_id: Option<u64>,
    /// Every node of a Raft cluster, this one included, comma-separated ID=URL:
    /// `1=https://coord1:7070,2=https://coord2:7070,3=https://coord3:7070`. Each node runs
    /// `serve` with the same --peers and its own --node-id; all share one warehouse (an
    /// object store every node reaches). Without it the coordinator is a single node
    #[arg(long, value_name = "ID=URL,...", value_delimiter = ',', env = "ACCELBENCH_PEERS")]
    pub peers: Vec<String>,
    /// Join a running cluster instead of founding one: start this node (a new --node-id,
    /// an empty --data-dir, --peers naming the running nodes and this one), then run
    /// `accelbench cluster add-node --node-id N --url URL` against the cluster
    #[arg(long)]
    pub join: bool,
}

pub async fn execute(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let mut config = match &args.config {
        Some(p) => ServeConfig::load(p)?,
        None => ServeConfig::default(),
    };
    if let Some(l) = args.listen {
        config.listen = l;
    }
    if let Some(h) = args.http_listen {
        config.http_listen = Some(h);
    }
    if let Some(d) = args.data_dir {
        config.data_dir = d;
    }
    if let Some(w) = args.warehouse {
        config.warehouse = w;
    }
    config.tls_ca = args.tls_ca.or(config.tls_ca);
    config.tls_cert = args.tls_cert.or(config.tls_cert);
    config.tls_key = args.tls_key.or(config.tls_key);
    config.tokens_file = args.tokens_file.or(config.tokens_file);
    config.insecure |= args.insecure;
    if let Some(id) = args.node_id {
        config.node_id = id;
    }
    if !args.peers.is_empty() {
        config.peers = args.peers;
    }
    config.join |= args.join;
    config.cluster()?;
    // Checked before binding: a misconfigured node never listens.
    let security = config.security()?;
    let scheme = match security {
        server::config::Security::Insecure => {
            eprintln!(
                "accelbench serve: WARNING: --insecure: plain-text gRPC and no authentication; anyone who \
                 reaches this port may submit and cancel sweeps, register agents and report results"
            );
            "http"
        }
        server::config::Security::Tls { .. } => "https",
    };
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("listening on {}", config.listen))?;
    println!("listening on {}", listener.local_addr()?);
    let http = match config.http_listen {
        Some(addr) => {
            let l = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("listening on {addr} (http)"))?;
            println!("metrics on {scheme}://{}/metrics", l.local_addr()?);
            println!("dashboard on {scheme}://{}/", l.local_addr()?);
            Some(l)
        }
        None => None,
    };
    server::serve(config, security, listener, http, stop_signal()?).await?;
    Ok(ExitCode::SUCCESS)
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM (`systemctl stop`, `kill`, a container stop):
/// either stops the server gracefully, draining the result groups in flight.
pub(crate) fn stop_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
    Ok(async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: stopping"),
            _ = term.recv() => tracing::info!("SIGTERM: stopping"),
        }
    })
}
