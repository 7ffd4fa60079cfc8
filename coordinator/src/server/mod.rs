//! `accelbench serve`: the coordinator process.
//!
//! One Raft node (single voter for now) orders every change; two gRPC services
//! ([`agents`], [`sweeps`]) translate requests into commands and reads; a background
//! task expires the leases of agents that stopped heartbeating ([`liveness`] is leader
//! soft state). Results are staged as Parquet, committed through Raft (fenced by the
//! lease epoch), then mirrored into the warehouse manifest, and only then acknowledged.
//! On start, files Raft committed but the warehouse manifest lacks (a crash between the
//! two) are mirrored first. Every RPC runs in a span that continues the caller's trace
//! ([`telemetry::propagate`]).

pub mod agents;
pub mod auth;
pub mod committer;
pub mod config;
pub mod errors;
pub mod fleet;
pub mod leasing;
pub mod live;
pub mod liveness;
pub mod metrics;
pub mod peer_rate;
pub mod peers;
pub mod sweeps;
pub mod tables;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use proto::v1::agent_service_server::AgentServiceServer;
use proto::v1::fleet_service_server::FleetServiceServer;
use proto::v1::raft_service_server::RaftServiceServer;
use proto::v1::sweep_service_server::SweepServiceServer;
use telemetry::propagate::{self, TraceParent};
use tokio::net::TcpListener;

pub use config::ServeConfig;
use liveness::Liveness;

use crate::raft::node::NodeConfig;
use crate::raft::transport::NoPeers;
use crate::raft::RaftHandle;
use crate::state::{Command, SweepId};
use crate::warehouse::file::FileEntry;
use crate::warehouse::schema::Table;
use crate::warehouse::Warehouse;

/// What every request handler shares.
#[derive(Clone)]
pub struct Ctx {
    pub raft: RaftHandle,
    pub warehouse: Arc<Warehouse>,
    pub liveness: Arc<Liveness>,
    pub config: Arc<ServeConfig>,
    pub metrics: Arc<metrics::Metrics>,
}

impl Ctx {
    /// Whether an agent last heard from `ago` ago (`None`: not since this coordinator
    /// started) counts as alive: heard within three heartbeat intervals.
    pub fn alive(&self, ago: Option<Duration>) -> bool {
        ago.is_some_and(|d| d < Duration::from_millis(3 * u64::from(self.config.heartbeat_interval_ms)))
    }
}

/// How often the leader looks for expired leases.
const EXPIRY_EVERY: Duration = Duration::from_millis(500);

/// How long a shutdown waits for result groups still committing.
const SHUTDOWN_DRAIN: Duration = Duration::from_secs(30);

/// Serves gRPC on `listener`, and `/metrics` on `http` if given, until `shutdown`
/// resolves; both over TLS unless `security` is `Insecure`.
pub async fn serve(
    config: ServeConfig,
    security: config::Security,
    listener: TcpListener,
    http: Option<TcpListener>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    // Certificates and tokens are read before anything starts: a bad file stops here.
    let (gate, grpc_tls, http_tls) = secure(&security)?;
    std::fs::create_dir_all(&config.data_dir).with_context(|| format!("creating {}", config.data_dir.display()))?;
    let cluster = config.cluster()?;
    let raft = start_raft(&config, &cluster, &security)?;
    let warehouse = Arc::new(
        Warehouse::open(&config.warehouse).await.with_context(|| format!("opening warehouse {}", config.warehouse))?,
    );
    let ctx = Ctx {
        raft,
        warehouse,
        liveness: Arc::new(Liveness::default()),
        config: Arc::new(config),
        metrics: Arc::default(),
    };
    if cluster.is_empty() {
        // A single node leads at once: finish what a crash left before serving. In a
        // cluster this waits for leadership (see `lead`), or no quorum could ever form.
        mirror_manifest(&ctx).await.context("mirroring raft's manifest into the warehouse")?;
    }
    let expiry = tokio::spawn(lead(ctx.clone(), !cluster.is_empty()));
    // The HTTP listener: `/metrics` and the dashboard, with this coordinator's state.
    let http = http.map(|l| {
        let metrics = {
            let ctx = ctx.clone();
            agent::metrics::router(move || ctx.metrics.render(&ctx))
        };
        let warehouse = crate::cli::common::WarehouseArgs { warehouse: ctx.config.warehouse.clone() };
        let dashboard = crate::dashboard::Dashboard::with_live(warehouse, live::source(ctx.clone()));
        let app = metrics.merge(crate::dashboard::router(Arc::new(dashboard)));
        tokio::spawn(agent::metrics::serve_http(l, http_tls, app))
    });

    let addr = listener.local_addr()?;
    tracing::info!(%addr, "coordinator serving");
    // Small request/response messages: without TCP_NODELAY every reply waits for the
    // peer's delayed ACK (~40 ms on Linux).
    let incoming = tokio_stream::StreamExt::map(tokio_stream::wrappers::TcpListenerStream::new(listener), |s| {
        s.and_then(|s| s.set_nodelay(true).map(|()| s))
    });
    let halted = std::sync::OnceLock::new();
    let (committer, committer_done) = committer::Committer::start(ctx.clone());
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = grpc_tls {
        builder = builder.tls_config(tls).context("TLS settings")?;
    }
    let result = builder
        .trace_fn(rpc_span)
        .layer(auth::GateLayer(gate))
        .add_service(
            AgentServiceServer::new(agents::Agents {
                ctx: ctx.clone(),
                leasing: leasing::Leasing::start(ctx.clone()),
                committer,
                registrations: match ctx.config.registrations_per_minute_per_peer {
                    0 => None,
                    n => Some(peer_rate::PeerRate::new(n, ctx.config.registration_burst)),
                },
                report_streams: Arc::new(tokio::sync::Semaphore::new(ctx.config.max_report_streams.max(1))),
            })
            // One result per message, and a result may be this big: agents check the
            // same bound before sending, so none is refused by the transport.
            .max_decoding_message_size(shared::result::MAX_RESULT_JSON_BYTES + (1 << 20)),
        )
        .add_service(SweepServiceServer::new(sweeps::Sweeps { ctx: ctx.clone() }))
        .add_service(FleetServiceServer::new(fleet::Fleet { ctx: ctx.clone() }))
        .add_service(
            RaftServiceServer::new(peers::RaftPeers { node_id: ctx.config.node_id, raft: ctx.raft.clone() })
                .max_decoding_message_size(peers::MAX_MESSAGE_BYTES),
        )
        .serve_with_incoming_shutdown(incoming, until_stopped(shutdown, ctx.raft.clone(), &halted))
        .await;
    expiry.abort();
    if let Some(h) = http {
        h.abort();
    }
    // The service (and its committer handles) is gone: wait for the groups in flight,
    // bounded, since a warehouse commit retries while its store is down.
    if tokio::time::timeout(SHUTDOWN_DRAIN, committer_done).await.is_err() {
        tracing::warn!(
            seconds = SHUTDOWN_DRAIN.as_secs(),
            "result groups still committing at shutdown; the next start mirrors them from Raft"
        );
    }
    ctx.raft.shutdown().await;
    if let Some(reason) = halted.get() {
        anyhow::bail!("{reason}; stopping this coordinator (restart it once its data folder can be written)");
    }
    result.context("grpc server")
}

/// `shutdown`, or the Raft node stopping on an error of its own (its reason kept in
/// `halted`), whichever comes first.
async fn until_stopped(
    shutdown: impl Future<Output = ()>,
    raft: crate::raft::RaftHandle,
    halted: &std::sync::OnceLock<String>,
) {
    tokio::select! {
        () = shutdown => {}
        reason = raft.halted() => {
            tracing::error!(%reason, "stopping: the raft node cannot go on");
            let _ = halted.set(reason);
        }
    }
}

type Secured = (auth::Gate, Option<tonic::transport::ServerTlsConfig>, Option<Arc<tokio_rustls::rustls::ServerConfig>>);

/// The gate, the gRPC listener's TLS and the HTTP listener's TLS for `security`.
fn secure(security: &config::Security) -> anyhow::Result<Secured> {
    use tonic::transport::{Certificate, Identity, ServerTlsConfig};
    let config::Security::Tls { ca, cert, key, tokens } = security else {
        tracing::warn!("insecure: plain text, no authentication");
        return Ok((auth::Gate::insecure(), None, None));
    };
    proto::connect::install_crypto();
    let read = |p: &std::path::PathBuf| std::fs::read(p).with_context(|| format!("reading {}", p.display()));
    // Checked here, so a wrong file is named (tonic's own error says only "invalid").
    let files = agent::tls::TlsFiles { ca: ca.clone(), cert: cert.clone(), key: key.clone() };
    let http = agent::tls::server_config(&files)?;
    let grpc = ServerTlsConfig::new()
        .identity(Identity::from_pem(read(cert)?, read(key)?))
        .client_ca_root(Certificate::from_pem(read(ca)?))
        // A token instead of a certificate is allowed; the gate refuses a call with neither.
        .client_auth_optional(true);
    let tokens = tokens.as_deref().map(auth::TokenFile::open).transpose()?;
    Ok((auth::Gate::secure(tokens), Some(grpc), Some(http)))
}

/// Every RPC's span, named by its method and parented on the caller's span when the
/// request carries a valid `traceparent` (anything else is ignored: the span is a root).
fn rpc_span(req: &tonic::codegen::http::Request<()>) -> tracing::Span {
    let path = req.uri().path();
    let span = tracing::info_span!("rpc", otel.name = path, otel.kind = "server", rpc.system = "grpc", path);
    propagate::set_parent(&span, TraceParent::from_headers(req.headers()).as_ref());
    span
}

/// The Raft node for `config`: a single voter, or one node of `cluster` (id → URL) with
/// a transport to the others that uses this node's certificate as its client identity.
fn start_raft(
    config: &ServeConfig,
    cluster: &std::collections::BTreeMap<u64, String>,
    security: &config::Security,
) -> anyhow::Result<RaftHandle> {
    let node = NodeConfig {
        id: config.node_id,
        voters: match (cluster.is_empty(), config.join) {
            (true, _) => vec![config.node_id],
            // The leader's snapshot brings the voters, this node among them.
            (false, true) => Vec::new(),
            (false, false) => cluster.keys().copied().collect(),
        },
        path: config.data_dir.join("raft.redb"),
        tick_interval: crate::raft::node::TICK_INTERVAL,
        election_tick: crate::raft::node::ELECTION_TICK,
        max_election_tick: crate::raft::node::MAX_ELECTION_TICK,
        heartbeat_tick: crate::raft::node::HEARTBEAT_TICK,
        snapshot_every: 1000,
        max_in_flight: 4096,
    };
    if cluster.is_empty() {
        return crate::raft::start(node, NoPeers).context("starting the raft node");
    }
    let auth = match security {
        config::Security::Insecure => proto::connect::ClientAuth::default(),
        config::Security::Tls { ca, cert, key, .. } => proto::connect::ClientAuth {
            ca: Some(ca.clone()),
            cert: Some(cert.clone()),
            key: Some(key.clone()),
            ..Default::default()
        },
    };
    let others = cluster.iter().filter(|(id, _)| **id != config.node_id).map(|(id, url)| (*id, url.clone())).collect();
    let transport = peers::PeerTransport::start(config.node_id, &others, &auth)?;
    let raft =
        crate::raft::start(node, transport.sender()).context("starting the raft node")?.with_urls(cluster.clone());
    transport.node_started(raft.clone());
    Ok(raft)
}

/// The leader's duties, done while this node leads: on gaining leadership, give every
/// agent a full lease of grace (this node has not heard them yet) and, in a cluster,
/// finish the warehouse commits a former leader left; then end leases whose agents have
/// been silent for the lease's time.
async fn lead(ctx: Ctx, cluster: bool) {
    let mut led_term = None;
    loop {
        tokio::time::sleep(EXPIRY_EVERY).await;
        let status = ctx.raft.status();
        if !status.is_leader() {
            led_term = None;
            continue;
        }
        if led_term != Some(status.term) {
            led_term = Some(status.term);
            ctx.liveness.grace_from_now();
            tracing::info!(term = status.term, node = status.node_id, "leading");
            if cluster {
                if let Err(e) = mirror_manifest(&ctx).await {
                    tracing::error!(error = %format!("{e:#}"), "mirroring raft's manifest after gaining leadership");
                    led_term = None;
                }
            }
            continue;
        }
        expire_leases(&ctx).await;
    }
}

/// Ends leases whose agents have been silent for the lease's time.
async fn expire_leases(ctx: &Ctx) {
    let Ok(leases) = ctx.raft.read(|s| s.active_leases()).await else { return };
    let expired: Vec<(SweepId, shared::cell::CellKey, u64)> = leases
        .into_iter()
        .filter(|l| ctx.liveness.silent_for(l.agent_id.as_str()) > Duration::from_secs(u64::from(l.lease_seconds)))
        .map(|l| (l.sweep_id, l.cell_key, l.epoch))
        .collect();
    if expired.is_empty() {
        return;
    }
    tracing::warn!(n = expired.len(), "expiring leases of silent agents");
    let n = expired.len();
    match ctx.raft.propose(Command::ExpireLeases { expired, at_ms: now_ms() }).await {
        Ok(_) => ctx.metrics.expired(n),
        Err(e) => tracing::error!(error = %e, "expiring leases"),
    }
}

/// Commits into the warehouse manifest every file Raft's manifest holds that the
/// warehouse lacks: what a crash between the two commits left behind.
async fn mirror_manifest(ctx: &Ctx) -> anyhow::Result<()> {
    let files = ctx.raft.read(|s| s.manifest().cloned().collect::<Vec<_>>()).await?;
    let missing: std::collections::HashSet<String> =
        ctx.warehouse.never_committed(files.iter().map(|f| f.path.clone()).collect()).await?.into_iter().collect();
    let mut entries = Vec::new();
    let mut keys = Vec::new();
    for f in files.into_iter().filter(|f| missing.contains(&f.path)) {
        match ctx.warehouse.object_size(&f.path).await {
            Some(bytes) => entries.push(FileEntry { bytes, ..f }),
            None => tracing::error!(path = f.path, "a file raft committed is missing from the warehouse"),
        }
    }
    // The keys of the mirrored results, so that their re-sends are answered DUPLICATE
    // (which needs the rows visible) rather than asked to come back later forever.
    for entry in entries.iter().filter(|e| e.table == Table::Results) {
        keys.extend(ctx.warehouse.result_keys_in(entry).await?);
    }
    if !entries.is_empty() {
        tracing::warn!(n = entries.len(), "mirroring files raft committed into the warehouse");
    }
    ctx.warehouse.commit_staged(entries, keys).await?;
    // Everything Raft committed is in the warehouse now: no staged file needs keeping.
    let n = ctx.warehouse.clear_all_intents().await?;
    if n > 0 {
        tracing::info!(n, "cleared staging intents left by the previous run");
    }
    Ok(())
}

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
