//! `accelbench-agent run`: the agent's work loop against a coordinator.
//!
//! Register with the fingerprint, then loop: heartbeat (which also says which leases
//! were withdrawn), lease cells the hardware can run, run each in its child process,
//! spool the result durably, report it, and delete it from the spool only after the
//! coordinator's ack. Anything spooled before a restart is re-sent first. When the
//! coordinator is unreachable the loop backs off and tries again; it never exits for
//! that. One cell runs per device slot at once ([`crate::slots`]): an 8-GPU box runs
//! eight, each child pinned to its GPU.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use proto::connect::{AuthedChannel, ClientAuth, Coordinators, Moved};
use proto::v1::agent_service_client::AgentServiceClient;
use proto::v1::{AckStatus, HeartbeatRequest, LeaseCellsRequest, LeaseRef, RegisterRequest, ReportResultsRequest};
use shared::cell::Cell;
use shared::fingerprint::Fingerprint;
use shared::result::{Coordinates, ResultRecord, Status, MAX_RESULT_JSON_BYTES};
use shared::spec::{MeasurePolicy, ModelWeights};
use tracing::Instrument;

use crate::cell::runner::{run_cell_cancellable, Ran, RunnerConfig};
use crate::cell::CellRequest;
use crate::engine::weights::{hf_home, Weights, DEFAULT_SEED};
use crate::metrics::AgentMetrics;
use crate::placement::{place, NotPlaced};
use crate::runners::Present;
use crate::slots::Slots;
use crate::spool::{Spool, Spooled};
use telemetry::propagate::{SendTraceContext, TraceParent};

/// How the worker runs.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// One coordinator, or a cluster's nodes: the worker follows the leader among them.
    pub coordinators: Arc<Coordinators>,
    /// The lab CA and this agent's certificate (empty for an `--insecure` coordinator).
    pub auth: ClientAuth,
    pub spool_dir: PathBuf,
    pub labels: BTreeMap<String, String>,
    /// How long to wait before asking again when no cell was leased.
    pub idle_poll: Duration,
    /// Whether to send calibrations when registering, and whether cached ones do.
    pub calibration: Calibrate,
    /// The thread limit of CPU cells (`RAYON_NUM_THREADS`, set by the caller), named in
    /// the CPU's hardware class.
    pub cpu_threads: Option<u32>,
    /// Where to serve Prometheus metrics ([`crate::metrics`]); none by default.
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// The configured runners of external engines, by engine (docs/RUNNERS.md).
    pub runners: BTreeMap<String, Vec<String>>,
}

/// What the agent does about calibrations ([`crate::calibrate`]) when it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Calibrate {
    /// Reuse the spool folder's figures when they are this version's on this machine.
    Cached,
    /// Measure again.
    Fresh,
    /// Send none.
    Off,
}

/// The coordinator's agent service; every call carries the caller's trace context.
type Client = AgentServiceClient<AuthedChannel<SendTraceContext>>;

/// The leases running now, each with the flag that stops its cell; shared with the
/// heartbeat task and the metrics.
pub type Running = Arc<Mutex<Vec<(LeaseRef, Arc<AtomicBool>)>>>;

/// What every running cell's task needs; cheap to clone.
#[derive(Clone)]
struct CellCtx {
    client: Client,
    spool: Arc<Spool>,
    agent_id: String,
    running: Running,
    metrics: Arc<AgentMetrics>,
    engines: Arc<Present>,
    /// Spool flushes one at a time: two at once would send the same results twice.
    flushing: Arc<tokio::sync::Mutex<()>>,
    /// A cell task whose report failed hands the error to the lease loop, which ends the
    /// session on it: the connection is likely dead (or the node no longer leads), and
    /// the next session goes elsewhere at once instead of waiting on this channel to
    /// reconnect to the same node (see `lease_loop`).
    lost: tokio::sync::mpsc::Sender<anyhow::Error>,
}

/// A finished cell task: the slot it held.
type CellTasks = tokio::task::JoinSet<usize>;

/// Runs until `shutdown` resolves.
pub async fn run(cfg: WorkerConfig, shutdown: impl std::future::Future<Output = ()>) -> anyhow::Result<()> {
    let spool = Arc::new(Spool::open(&cfg.spool_dir)?);
    let mut fp = crate::detect::detect();
    fp.cpu.threads_limit = cfg.cpu_threads;
    // One table of running leases for the whole process: a session ends only once its
    // cells have, so the next starts with it empty; the metrics read it.
    let running: Running = Arc::new(Mutex::new(Vec::new()));
    let metrics = Arc::new(AgentMetrics::new(running.clone(), spool.clone()));
    let _metrics_task = match cfg.metrics_listen {
        Some(addr) => {
            let listener =
                tokio::net::TcpListener::bind(addr).await.with_context(|| format!("metrics listen address {addr}"))?;
            let tls = metrics_tls(&cfg.auth)?;
            let scheme = if tls.is_some() { "https" } else { "http" };
            println!("metrics on {scheme}://{}/metrics", listener.local_addr()?);
            let m = metrics.clone();
            Some(AbortOnDrop(tokio::spawn(crate::metrics::serve(listener, tls, move || m.render()))))
        }
        None => None,
    };
    // Before registering: only engines whose runner answers are offered to the scheduler.
    let runners = cfg.runners.clone();
    let engines = Arc::new(tokio::task::spawn_blocking(move || Present::discover(&runners)).await?);
    let shared = Shared { spool, running, metrics, engines };
    tokio::select! {
        r = async {
            let calibrations = calibrations(&cfg, &fp).await?;
            work_forever(&cfg, &shared, &fp, &calibrations).await
        } => r,
        () = shutdown => Ok(()),
    }
}

/// The metrics listener's TLS: this agent's own certificate when it has one.
fn metrics_tls(auth: &ClientAuth) -> anyhow::Result<Option<Arc<tokio_rustls::rustls::ServerConfig>>> {
    match (&auth.ca, &auth.cert, &auth.key) {
        (Some(ca), Some(cert), Some(key)) => Ok(Some(crate::tls::server_config(&crate::tls::TlsFiles {
            ca: ca.clone(),
            cert: cert.clone(),
            key: key.clone(),
        })?)),
        _ => Ok(None),
    }
}

/// The agent id a certificate gives this agent (`None` without one: the coordinator
/// assigns an id, kept in the spool folder).
fn certificate_id(auth: &ClientAuth) -> anyhow::Result<Option<String>> {
    let Some(cert) = &auth.cert else { return Ok(None) };
    let id = proto::identity::CertIdentity::read_pem(cert)?;
    anyhow::ensure!(
        id.role == proto::identity::Role::Agent,
        "{}: a certificate for {} with role {}; an agent needs one from `accelbench ca issue --agent NAME`",
        cert.display(),
        id.name,
        id.role
    );
    Ok(Some(id.name))
}

/// What every session of this process shares.
struct Shared {
    spool: Arc<Spool>,
    running: Running,
    metrics: Arc<AgentMetrics>,
    /// The external engines whose runners said hello when the agent started.
    engines: Arc<Present>,
}

/// Ends a background task when the worker returns.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The calibrations to register with, as one JSON array ("" for none).
async fn calibrations(cfg: &WorkerConfig, fp: &Fingerprint) -> anyhow::Result<String> {
    if cfg.calibration == Calibrate::Off {
        return Ok(String::new());
    }
    let exe = std::env::current_exe().context("finding the agent executable")?;
    let (dir, fp2, fresh) = (cfg.spool_dir.clone(), fp.clone(), cfg.calibration == Calibrate::Fresh);
    let found = tokio::task::spawn_blocking(move || crate::calibrate::load_or_measure(&dir, &exe, &fp2, fresh)).await?;
    tracing::info!(n = found.len(), "calibrations ready");
    Ok(if found.is_empty() { String::new() } else { serde_json::to_string(&found)? })
}

async fn work_forever(cfg: &WorkerConfig, shared: &Shared, fp: &Fingerprint, calibrations: &str) -> anyhow::Result<()> {
    let mut backoff = Backoff::default();
    loop {
        match session(cfg, shared, fp, calibrations, &mut backoff).await {
            Ok(()) => backoff.reset(),
            Err(e) => match cfg.coordinators.after(&e) {
                // A follower named the leader: go there soon, not after a growing backoff
                // (a short pause still, should leadership move on again meanwhile).
                Moved::ToLeader(url) => {
                    tracing::info!(leader = url, why = %format!("{e:#}"), "moving to the coordinators' leader");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                // A node said its cluster is electing: the new leader is a second or two
                // away, so try again soon; bounded, as a cluster that lost its quorum
                // answers so for good, and its agents must not poll it hard.
                Moved::InElection(url) if backoff.election_retry() => {
                    tracing::info!(next = url, "the coordinators are electing a leader");
                    tokio::time::sleep(ELECTION_RETRY).await;
                }
                Moved::ToNext(url) | Moved::InElection(url) => {
                    let wait = pause_before(&cfg.coordinators, &url, &mut backoff);
                    tracing::warn!(
                        error = %format!("{e:#}"),
                        retry_in_ms = wait.as_millis() as u64,
                        next = url,
                        "coordinator session ended"
                    );
                    tokio::time::sleep(wait).await;
                }
            },
        }
    }
}

/// One connection's worth of work: register, flush the spool, lease and run.
async fn session(
    cfg: &WorkerConfig,
    shared: &Shared,
    fp: &Fingerprint,
    calibrations: &str,
    backoff: &mut Backoff,
) -> anyhow::Result<()> {
    let spool = &shared.spool;
    let mut client = AgentServiceClient::new(cfg.coordinators.connect(&cfg.auth, SendTraceContext).await?);
    // The id lives beside the spool: a restarted agent is the same agent, so the leases
    // its spooled results ran under are still its own. With a certificate, the id is
    // the certificate's name (the coordinator accepts no other).
    let id_file = cfg.spool_dir.join("agent-id");
    let stored = std::fs::read_to_string(&id_file).map(|s| s.trim().to_string()).unwrap_or_default();
    let previous = match certificate_id(&cfg.auth)? {
        Some(name) => {
            if !stored.is_empty() && stored != name {
                tracing::warn!(
                    stored,
                    certificate = name,
                    "the spool's agent id differs from the certificate's: using the certificate's"
                );
            }
            name
        }
        None => stored,
    };
    let reg = client
        .register(RegisterRequest {
            fingerprint_json: serde_json::to_string(fp)?,
            labels: cfg.labels.clone().into_iter().collect(),
            agent_version: crate::LONG_VERSION.to_string(),
            agent_id: previous,
            // This process holds nothing but its spool: any other lease an earlier
            // process of this agent held (a cell running when it died) ends now.
            held: held(spool, &[])?,
            calibrations_json: calibrations.to_string(),
            engines: shared.engines.registration(fp),
        })
        .await?
        .into_inner();
    let agent_id = reg.agent_id;
    // A coordinator took us: the next failure starts the backoff over. Without this, an
    // agent that lived through a few failovers waited seconds before trying the next
    // URL after the following one (the cluster fault runs found a 4 s failover).
    backoff.reset();
    std::fs::write(&id_file, &agent_id).with_context(|| format!("writing {}", id_file.display()))?;
    tracing::info!(agent_id, "registered");
    flush_spool(&mut client, spool, &agent_id).await?;

    let running = shared.running.clone();
    let heartbeat = tokio::spawn(heartbeat_loop(
        client.clone(),
        cfg.clone(),
        agent_id.clone(),
        running.clone(),
        Duration::from_millis(u64::from(reg.heartbeat_interval_ms.max(100))),
    ));
    let (lost, mut lost_rx) = tokio::sync::mpsc::channel(1);
    let ctx = CellCtx {
        client: client.clone(),
        spool: spool.clone(),
        agent_id: agent_id.clone(),
        running,
        metrics: shared.metrics.clone(),
        engines: shared.engines.clone(),
        flushing: Arc::new(tokio::sync::Mutex::new(())),
        lost,
    };
    let mut tasks = CellTasks::new();
    let result = lease_loop(cfg, &ctx, fp, &mut tasks, &mut lost_rx).await;
    // Cells still running finish and spool their results (heartbeats go on meanwhile);
    // the next session re-sends them.
    while tasks.join_next().await.is_some() {}
    heartbeat.abort();
    result
}

/// Leases cells while slots are free and starts each in its own task; returns when the
/// coordinator cannot be reached, or a cell task could not report (`lost`). The cluster
/// fault runs found why the second matters: after a blackhole took the leader away, a
/// report failed on the dead connection and the loop flushed the spool on the same
/// channel, which reconnected to the same unreachable node and waited out its handshake
/// limit before the agent tried another.
async fn lease_loop(
    cfg: &WorkerConfig,
    ctx: &CellCtx,
    fp: &Fingerprint,
    tasks: &mut CellTasks,
    lost: &mut tokio::sync::mpsc::Receiver<anyhow::Error>,
) -> anyhow::Result<()> {
    let mut slots = Slots::of(fp);
    let mut client = ctx.client.clone();
    loop {
        while let Some(done) = tasks.try_join_next() {
            slots.release(done.context("a cell task failed")?);
        }
        if let Ok(e) = lost.try_recv() {
            return Err(e);
        }
        // A result a cell's task could not report (the coordinator refused it for now)
        // waits in the spool: send it again before anything else. If that fails too, the
        // session ends and starts over with backoff; nothing is left spooled and unsent.
        if !ctx.spool.pending()?.is_empty() {
            // A cell task may be flushing on a dead connection right now (this waits
            // for it): its failure ends the session rather than a second try on the same
            // channel. A flush cut short is safe: the spool sends again, and the
            // coordinator refuses a result it already has.
            tokio::select! {
                flushed = flush(ctx) => flushed?,
                Some(e) = lost.recv() => return Err(e),
            }
        }
        let mut n_started = 0;
        if slots.n_free() > 0 {
            let request = LeaseCellsRequest {
                agent_id: ctx.agent_id.clone(),
                max_cells: slots.n_free() as u32,
                held: held(&ctx.spool, &running_leases(&ctx.running))?,
            };
            for lease in client.lease_cells(request).await?.into_inner().leases {
                n_started += usize::from(start_cell(ctx, fp, &mut slots, tasks, lease).await);
            }
        }
        if n_started > 0 {
            continue;
        }
        // Nothing new: wait for a cell to end (its slot frees) or for the poll interval.
        tokio::select! {
            Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                slots.release(done.context("a cell task failed")?);
            }
            Some(e) = lost.recv() => return Err(e),
            () = tokio::time::sleep(cfg.idle_poll) => {}
        }
    }
}

/// Starts one leased cell on a free slot of its device class; whether a task started.
async fn start_cell(
    ctx: &CellCtx,
    fp: &Fingerprint,
    slots: &mut Slots,
    tasks: &mut CellTasks,
    lease: proto::v1::Lease,
) -> bool {
    let Some(lease_ref) = lease.lease.clone() else { return false };
    let kind = serde_json::from_str::<Cell>(&lease.cell_json).map(|c| c.hardware.kind.as_str()).unwrap_or_default();
    let slot = slots.take(&lease.device_class, kind);
    let (slot_idx, device) = match &slot {
        Some((idx, slot)) => (Some(*idx), Some(slot.device.as_str())),
        None => (None, None),
    };
    let (req, unsupported) = match cell_request(&lease, &lease_ref, &ctx.agent_id, fp, device, &ctx.engines) {
        Ok(r) => r,
        Err(e) => {
            // Not listed as held from now on: the coordinator ends the lease at our next
            // request, and the cell goes to another attempt.
            tracing::error!(error = %format!("{e:#}"), cell_key = lease_ref.cell_key, "unusable lease");
            if let Some(idx) = slot_idx {
                slots.release(idx);
            }
            return false;
        }
    };
    let trace = TraceParent::parse(&lease.traceparent, &lease.tracestate);
    let span = cell_span(&lease_ref, &ctx.agent_id, trace.as_ref());
    // Held from now on, before the task even starts: the next lease request (which may
    // go out at once while other slots are free) must list it.
    let cancel = Arc::new(AtomicBool::new(false));
    if let Ok(mut r) = ctx.running.lock() {
        r.push((lease_ref.clone(), cancel.clone()));
    }
    let ctx = ctx.clone();
    match slot_idx {
        Some(idx) => {
            tasks.spawn(async move {
                let (req, unsupported) = find_weights(req, unsupported).await;
                if let Err(e) = run_leased(&ctx, &lease_ref, req, unsupported, cancel, trace).instrument(span).await {
                    tracing::warn!(error = %format!("{e:#}"), "cell ended without a report; it stays spooled");
                }
                idx
            });
            true
        }
        // No slot needed to say why a cell cannot run here.
        None => {
            if let Err(e) = run_leased(&ctx, &lease_ref, req, unsupported, cancel, trace).instrument(span).await {
                tracing::warn!(error = %format!("{e:#}"), "report failed; the result stays spooled");
            }
            false
        }
    }
}

pub(crate) fn running_leases(running: &Running) -> Vec<LeaseRef> {
    running.lock().map(|r| r.iter().map(|(l, _)| l.clone()).collect()).unwrap_or_default()
}

/// The agent's span for one cell: a child of the sweep's submit, when it was traced.
fn cell_span(lease: &LeaseRef, agent_id: &str, trace: Option<&TraceParent>) -> tracing::Span {
    let span = tracing::info_span!(
        "cell",
        sweep_id = lease.sweep_id,
        cell_key = lease.cell_key,
        attempt = lease.attempt,
        agent_id,
        epoch = lease.epoch,
    );
    telemetry::propagate::set_parent(&span, trace);
    span
}

/// Runs one leased cell in its child process (or, when it cannot run here, reports it
/// `unsupported` with the reason), spools the result and reports it. The lease is in
/// `running` on entry (with `cancel`, which the heartbeat sets when it is withdrawn)
/// and leaves it only once its result is spooled.
async fn run_leased(
    ctx: &CellCtx,
    lease_ref: &LeaseRef,
    req: CellRequest,
    not_run: Option<NotRun>,
    cancel: Arc<AtomicBool>,
    trace: Option<TraceParent>,
) -> anyhow::Result<()> {
    let record = match not_run {
        Some(why) => {
            tracing::info!(cell_key = lease_ref.cell_key, reason = why.reason, "cell not run on this agent");
            let now = chrono::Utc::now().timestamp_millis();
            let mut record = crate::cell::child::record_for(&req, now);
            (record.error, record.provenance.finished_at_ms) = (Some(why.reason), now);
            record.status = if why.retry { Status::Failed } else { Status::Unsupported };
            Ok(Ok(Ran::Finished(record)))
        }
        None => {
            let span = tracing::Span::current();
            tokio::task::spawn_blocking(move || {
                // The runner hands this span's context to the child.
                let _in_span = span.enter();
                let cfg = RunnerConfig { trace, ..RunnerConfig::for_request(&req)? };
                run_cell_cancellable(&cfg, &req, &cancel, |_| {})
            })
            .await
        }
    };
    // Spooled before it leaves `running`: a lease request in between must list it as
    // held, or the coordinator would end the lease under the finished result.
    let spooled = match record {
        Ok(Ok(Ran::Finished(record))) => {
            let status = record.status.to_string();
            let put = ctx.spool.put(&Spooled { epoch: lease_ref.epoch, record }).map(|_path| true);
            if put.is_ok() {
                ctx.metrics.cell_finished(&status);
            }
            put
        }
        Ok(Ok(Ran::Withdrawn)) => Ok(false),
        Ok(Err(e)) => Err(e),
        Err(e) => Err(e.into()),
    };
    if let Ok(mut r) = ctx.running.lock() {
        r.retain(|(l, _)| l != lease_ref);
    }
    if spooled? {
        if let Err(e) = flush(ctx).await {
            let said = format!("{e:#}");
            // The session ends on it (one error is enough; later ones may drop).
            let _ = ctx.lost.try_send(e);
            anyhow::bail!(said);
        }
    }
    Ok(())
}

async fn flush(ctx: &CellCtx) -> anyhow::Result<()> {
    let _one_at_a_time = ctx.flushing.lock().await;
    flush_spool(&mut ctx.client.clone(), &ctx.spool, &ctx.agent_id).await
}

/// Why a leased cell does not start a child.
struct NotRun {
    reason: String,
    /// `true`: a passing condition (no free slot), another attempt may run it;
    /// `false`: it cannot run on this agent at all (`unsupported`).
    retry: bool,
}

/// Builds the child's request from a lease: the cell, its policy, this machine; and,
/// when the cell cannot run here for real, why (it is then reported `unsupported`
/// without starting anything).
fn cell_request(
    lease: &proto::v1::Lease,
    lease_ref: &LeaseRef,
    agent_id: &str,
    fp: &Fingerprint,
    slot_device: Option<&str>,
    engines: &Present,
) -> anyhow::Result<(CellRequest, Option<NotRun>)> {
    let cell: Cell = serde_json::from_str(&lease.cell_json).context("cell_json")?;
    let measure: MeasurePolicy = serde_json::from_str(&lease.measure_json).context("measure_json")?;
    // The class of the device group the lease took a slot of: what the row is about.
    let class = match (&cell.hardware_class, lease.device_class.as_str()) {
        (Some(c), _) => c.clone(),
        (None, class) if !class.is_empty() => class.to_string(),
        (None, _) => fp.hardware_class_of(cell.hardware.kind).context("no device")?,
    };
    let coordinates = Coordinates::of(&cell, &class).with_context(|| format!("unknown model {}", cell.model))?;
    let runner = engines.command(cell.engine.as_str()).cloned();
    let placement = place(&cell, slot_device, runner.is_some());
    let request = CellRequest {
        sweep_id: Some(lease_ref.sweep_id.clone()),
        cell_key: lease_ref.cell_key.clone(),
        attempt: lease_ref.attempt,
        agent_id: Some(agent_id.to_string()),
        coordinates,
        measure,
        weights: named_weights(&lease.weights_json)?,
        device: placement.clone().unwrap_or_default(),
        fingerprint_hash: fp.hash(),
        runner,
    };
    let not_run = match placement {
        Ok(_) => None,
        // A cell this agent can run, but no slot of its kind is free: the lease and the
        // slots disagree for a moment (another attempt will run it).
        Err(NotPlaced::NoFreeSlot(why)) => {
            Some(NotRun { reason: format!("{why} for class `{}`", lease.device_class), retry: true })
        }
        Err(NotPlaced::Unsupported(reason)) => Some(NotRun { reason, retry: false }),
    };
    Ok((request, not_run))
}

/// The weights a lease names (`Named`, found on this machine later by [`find_weights`]),
/// or the seeded ones.
fn named_weights(weights_json: &str) -> anyhow::Result<Weights> {
    if weights_json.is_empty() {
        return Ok(Weights::Random { seed: DEFAULT_SEED });
    }
    let named: ModelWeights = serde_json::from_str(weights_json).context("weights_json")?;
    Ok(Weights::Named { source: named.source, sha256: named.sha256 })
}

/// Puts the files on this machine in place of the weights the sweep names, hashed off
/// the async runtime (a file of many GiB takes seconds the first time), or says why
/// the cell cannot run here.
async fn find_weights(mut req: CellRequest, not_run: Option<NotRun>) -> (CellRequest, Option<NotRun>) {
    let Weights::Named { source, sha256 } = &req.weights else { return (req, not_run) };
    if not_run.is_some() {
        return (req, not_run);
    }
    let (source, sha256) = (source.clone(), sha256.clone());
    let found = tokio::task::spawn_blocking(move || Weights::named(&source, &sha256, hf_home().as_deref())).await;
    match found {
        Ok(Ok(weights)) => {
            req.weights = weights;
            (req, None)
        }
        Ok(Err(reason)) => (req, Some(NotRun { reason, retry: false })),
        Err(e) => (req, Some(NotRun { reason: format!("finding the weights failed: {e}"), retry: true })),
    }
}

/// Sends every spooled result; deletes each one the coordinator acknowledged.
async fn flush_spool(client: &mut Client, spool: &Spool, agent_id: &str) -> anyhow::Result<()> {
    let pending = spool.pending()?;
    if pending.is_empty() {
        return Ok(());
    }
    let requests: Vec<ReportResultsRequest> = pending
        .iter()
        .map(|s| {
            Ok(ReportResultsRequest {
                agent_id: agent_id.to_string(),
                lease: Some(spooled_lease(s)),
                result_json: sendable_json(&s.record)?,
            })
        })
        .collect::<anyhow::Result<_>>()?;
    let acks = client.report_results(tokio_stream::iter(requests)).await?.into_inner().acks;
    for (item, ack) in pending.iter().zip(acks) {
        match AckStatus::try_from(ack.status) {
            Ok(AckStatus::Committed) => spool.remove(&item.record)?,
            Ok(AckStatus::Duplicate) => {
                tracing::info!(cell_key = item.record.cell_key, "re-sent result was already committed");
                spool.remove(&item.record)?;
            }
            Ok(AckStatus::Rejected) => {
                tracing::warn!(cell_key = item.record.cell_key, reason = ack.message, "result rejected");
                spool.remove(&item.record)?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// Every lease this process holds: the cell running, if any, and the spooled results
/// not yet acknowledged. The coordinator ends any other lease it has on record for us.
fn held(spool: &Spool, running: &[LeaseRef]) -> anyhow::Result<Vec<LeaseRef>> {
    let mut held: Vec<LeaseRef> = spool.pending()?.iter().map(spooled_lease).collect();
    held.extend(running.iter().cloned());
    Ok(held)
}

/// The lease a spooled result ran under.
fn spooled_lease(s: &Spooled) -> LeaseRef {
    LeaseRef {
        sweep_id: s.record.sweep_id.clone().unwrap_or_default(),
        cell_key: s.record.cell_key.clone(),
        attempt: s.record.attempt,
        epoch: s.epoch,
    }
}

/// The JSON to send for `record`: itself, or, when it would not fit one message, the
/// same attempt reported `failed` with the reason and without its samples. Sending it
/// whole would fail the stream on every retry and stall the agent for good.
fn sendable_json(record: &ResultRecord) -> anyhow::Result<String> {
    let json = serde_json::to_string(record)?;
    if json.len() <= MAX_RESULT_JSON_BYTES {
        return Ok(json);
    }
    tracing::warn!(cell_key = record.cell_key, n_bytes = json.len(), "result too large to send; reporting it failed");
    Ok(serde_json::to_string(&too_large(record, json.len()))?)
}

fn too_large(record: &ResultRecord, n_bytes: usize) -> ResultRecord {
    ResultRecord {
        status: Status::Failed,
        error: Some(format!(
            "the result is {n_bytes} bytes of JSON ({} samples), over the {MAX_RESULT_JSON_BYTES}-byte limit of one message",
            record.samples_ns.len()
        )),
        stderr_tail: None,
        latency_ns: None,
        samples_ns: Vec::new(),
        throughput_items_per_s: None,
        generation: None,
        output_check: None,
        ..record.clone()
    }
}

/// Heartbeats for the running cells until aborted. A failed heartbeat moves on to the
/// leader (or the next coordinator) at once: the session's other calls may be idle while
/// a long cell runs, and its lease must not lapse because leadership moved meanwhile.
async fn heartbeat_loop(mut client: Client, cfg: WorkerConfig, agent_id: String, running: Running, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        let current: Vec<(LeaseRef, Arc<AtomicBool>)> = running.lock().map(|r| r.clone()).unwrap_or_default();
        let req =
            HeartbeatRequest { agent_id: agent_id.clone(), running: current.iter().map(|(l, _)| l.clone()).collect() };
        match client.heartbeat(req).await {
            Ok(resp) => {
                let cancelled = resp.into_inner().cancelled;
                for (lease, flag) in &current {
                    if cancelled.iter().any(|c| c.cell_key == lease.cell_key && c.sweep_id == lease.sweep_id) {
                        // Warn: the default log level should show why a cell stopped.
                        tracing::warn!(
                            sweep_id = lease.sweep_id,
                            cell_key = lease.cell_key,
                            "the coordinator withdrew the lease; stopping the cell"
                        );
                        flag.store(true, Ordering::Relaxed);
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "heartbeat failed");
                cfg.coordinators.after(&anyhow::Error::new(e));
                match cfg.coordinators.connect(&cfg.auth, SendTraceContext).await {
                    Ok(channel) => client = AgentServiceClient::new(channel),
                    Err(e) => tracing::warn!(error = %format!("{e:#}"), "no coordinator for heartbeats"),
                }
            }
        }
    }
}

/// How long to wait before trying `next`: the backoff grows once per pass over the
/// coordinators' URLs (every time for a single URL), and the other nodes of a pass are
/// tried soon. A cluster in an election answers "no leader" from every node for a second
/// or two; growing the backoff on each of those answers made an agent sleep for seconds
/// after the new leader was there (the cluster fault runs found 4 s failovers).
fn pause_before(coordinators: &Coordinators, next: &str, backoff: &mut Backoff) -> Duration {
    if coordinators.urls().first().is_some_and(|first| first == next) {
        backoff.next()
    } else {
        Duration::from_millis(200)
    }
}

/// The pause before the next node after one said an election is under way.
const ELECTION_RETRY: Duration = Duration::from_millis(250);

/// Election answers an agent retries after [`ELECTION_RETRY`] before backing off as
/// usual: 5 s of them, past four election rounds (0.6–1.2 s each).
const ELECTION_RETRIES: u32 = 20;

/// Exponential backoff, 0.5 s doubling to 30 s; and the short retries of an election.
#[derive(Debug, Default)]
struct Backoff {
    n: u32,
    election_retries: u32,
}

impl Backoff {
    /// Whether one more election answer may be retried soon (counts it).
    fn election_retry(&mut self) -> bool {
        self.election_retries += 1;
        self.election_retries <= ELECTION_RETRIES
    }

    fn next(&mut self) -> Duration {
        let d = Duration::from_millis(500u64.saturating_mul(1 << self.n.min(6))).min(Duration::from_secs(30));
        self.n += 1;
        d
    }

    fn reset(&mut self) {
        self.n = 0;
        self.election_retries = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_grows_once_per_pass_over_a_clusters_urls() {
        let mut backoff = Backoff::default();
        let one = Coordinators::parse("https://a:1").expect("list");
        let waits: Vec<u128> = (0..3).map(|_| pause_before(&one, "https://a:1", &mut backoff).as_millis()).collect();
        assert_eq!(waits, [500, 1000, 2000], "one URL: every failure is a pass");
        let mut backoff = Backoff::default();
        let three = Coordinators::parse("https://a:1,https://b:2,https://c:3").expect("list");
        let waits: Vec<u128> =
            ["https://b:2", "https://c:3", "https://a:1", "https://b:2", "https://c:3", "https://a:1"]
                .iter()
                .map(|next| pause_before(&three, next, &mut backoff).as_millis())
                .collect();
        assert_eq!(waits, [200, 200, 500, 200, 200, 1000]);
    }

    #[test]
    fn a_result_too_large_for_one_message_is_sent_as_a_failed_attempt() {
        let json = include_str!("../tests/fixtures/result-ok.json");
        let mut record: ResultRecord = serde_json::from_str(json).expect("fixture");
        assert_eq!(sendable_json(&record).expect("json"), serde_json::to_string(&record).expect("json"));
        record.samples_ns = vec![123_456_789.123_456_7; MAX_RESULT_JSON_BYTES / 10];
        let sent: ResultRecord = serde_json::from_str(&sendable_json(&record).expect("json")).expect("decodes");
        assert_eq!(sent.status, Status::Failed);
        assert!(sent.samples_ns.is_empty() && sent.latency_ns.is_none());
        assert!(sent.error.as_deref().is_some_and(|e| e.contains("over the")), "{:?}", sent.error);
        assert_eq!((&sent.cell_key, sent.attempt), (&record.cell_key, record.attempt));
        sent.validate().expect("a valid failed record");
    }

    #[test]
    fn an_election_is_retried_soon_but_only_for_a_while() {
        let mut backoff = Backoff::default();
        assert!((0..ELECTION_RETRIES).all(|_| backoff.election_retry()));
        assert!(!backoff.election_retry(), "a cluster without quorum gets the usual backoff");
        backoff.reset();
        assert!(backoff.election_retry(), "a session that registered starts over");
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let mut b = Backoff::default();
        let v: Vec<u64> = (0..9).map(|_| b.next().as_millis() as u64).collect();
        assert_eq!(v, [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
        b.reset();
        assert_eq!(b.next(), Duration::from_millis(500));
    }
}
