//! `accelbench-agent run`: the agent's work loop against a coordinator.
//!
//! Register with the fingerprint, then loop: heartbeat (which also says which leases
//! were withdrawn), lease cells the hardware can run, run each in its child process,
//! spool the result durably, report it, and delete it from the spool only after the
//! coordinator's ack. Anything spooled before a restart is re-sent first. When the
//! coordinator is unreachable the loop backs off and tries again; it never exits for
//! that. One cell runs at a time (one device).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use proto::v1::agent_service_client::AgentServiceClient;
use proto::v1::{AckStatus, HeartbeatRequest, LeaseCellsRequest, LeaseRef, RegisterRequest, ReportResultsRequest};
use shared::cell::Cell;
use shared::fingerprint::Fingerprint;
use shared::result::Coordinates;
use shared::spec::MeasurePolicy;
use tonic::transport::Channel;
use tracing::Instrument;

use crate::cell::runner::{run_cell_cancellable, RunnerConfig};
use crate::cell::CellRequest;
use crate::engine::weights::{Weights, DEFAULT_SEED};
use crate::spool::{Spool, Spooled};
use crate::telemetry::propagate::{SendTraceContext, TraceParent, TracedChannel};

/// How the worker runs.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub coordinator: String,
    pub spool_dir: PathBuf,
    pub labels: BTreeMap<String, String>,
    /// How long to wait before asking again when no cell was leased.
    pub idle_poll: Duration,
}

/// The coordinator's agent service; every call carries the caller's trace context.
type Client = AgentServiceClient<TracedChannel>;

/// The lease currently running, shared with the heartbeat task.
type Running = Arc<Mutex<Option<(LeaseRef, Arc<AtomicBool>)>>>;

/// Runs until `shutdown` resolves.
pub async fn run(cfg: WorkerConfig, shutdown: impl std::future::Future<Output = ()>) -> anyhow::Result<()> {
    let spool = Arc::new(Spool::open(&cfg.spool_dir)?);
    let fp = crate::detect::detect();
    tokio::select! {
        r = work_forever(&cfg, &spool, &fp) => r,
        () = shutdown => Ok(()),
    }
}

async fn work_forever(cfg: &WorkerConfig, spool: &Arc<Spool>, fp: &Fingerprint) -> anyhow::Result<()> {
    let mut backoff = Backoff::default();
    loop {
        match session(cfg, spool, fp).await {
            Ok(()) => backoff.reset(),
            Err(e) => {
                let wait = backoff.next();
                tracing::warn!(error = %format!("{e:#}"), retry_in_ms = wait.as_millis() as u64, "coordinator session ended");
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// One connection's worth of work: register, flush the spool, lease and run.
async fn session(cfg: &WorkerConfig, spool: &Arc<Spool>, fp: &Fingerprint) -> anyhow::Result<()> {
    let channel = Channel::from_shared(cfg.coordinator.clone())
        .with_context(|| format!("coordinator url {}", cfg.coordinator))?
        .connect()
        .await
        .with_context(|| format!("connecting to {}", cfg.coordinator))?;
    let mut client = AgentServiceClient::with_interceptor(channel, SendTraceContext);
    // The id lives beside the spool: a restarted agent is the same agent, so the leases
    // its spooled results ran under are still its own.
    let id_file = cfg.spool_dir.join("agent-id");
    let previous = std::fs::read_to_string(&id_file).map(|s| s.trim().to_string()).unwrap_or_default();
    let reg = client
        .register(RegisterRequest {
            fingerprint_json: serde_json::to_string(fp)?,
            labels: cfg.labels.clone().into_iter().collect(),
            agent_version: crate::LONG_VERSION.to_string(),
            agent_id: previous,
        })
        .await?
        .into_inner();
    let agent_id = reg.agent_id;
    std::fs::write(&id_file, &agent_id).with_context(|| format!("writing {}", id_file.display()))?;
    tracing::info!(agent_id, "registered");
    flush_spool(&mut client, spool, &agent_id).await?;

    let running: Running = Arc::new(Mutex::new(None));
    let heartbeat = tokio::spawn(heartbeat_loop(
        client.clone(),
        agent_id.clone(),
        running.clone(),
        Duration::from_millis(u64::from(reg.heartbeat_interval_ms.max(100))),
    ));
    let result = lease_loop(cfg, &mut client, spool, fp, &agent_id, &running).await;
    heartbeat.abort();
    result
}

async fn lease_loop(
    cfg: &WorkerConfig,
    client: &mut Client,
    spool: &Arc<Spool>,
    fp: &Fingerprint,
    agent_id: &str,
    running: &Running,
) -> anyhow::Result<()> {
    loop {
        let leases =
            client.lease_cells(LeaseCellsRequest { agent_id: agent_id.to_string(), max_cells: 1 }).await?.into_inner();
        if leases.leases.is_empty() {
            tokio::time::sleep(cfg.idle_poll).await;
            continue;
        }
        for lease in leases.leases {
            let Some(lease_ref) = lease.lease.clone() else { continue };
            let req = match cell_request(&lease, &lease_ref, agent_id, fp) {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(error = %format!("{e:#}"), cell_key = lease_ref.cell_key, "unusable lease");
                    continue;
                }
            };
            let trace = TraceParent::parse(&lease.traceparent, &lease.tracestate);
            let span = cell_span(&lease_ref, agent_id, trace.as_ref());
            run_leased(client, spool, agent_id, running, &lease_ref, req, trace).instrument(span).await?;
        }
    }
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
    crate::telemetry::propagate::set_parent(&span, trace);
    span
}

/// Runs one leased cell in its child process, spools the result and reports it.
async fn run_leased(
    client: &mut Client,
    spool: &Arc<Spool>,
    agent_id: &str,
    running: &Running,
    lease_ref: &LeaseRef,
    req: CellRequest,
    trace: Option<TraceParent>,
) -> anyhow::Result<()> {
    let cancel = Arc::new(AtomicBool::new(false));
    set_running(running, Some((lease_ref.clone(), cancel.clone())));
    let span = tracing::Span::current();
    let record = tokio::task::spawn_blocking(move || {
        // The runner hands this span's context to the child.
        let _in_span = span.enter();
        let cfg = RunnerConfig { trace, ..RunnerConfig::for_request(&req)? };
        run_cell_cancellable(&cfg, &req, &cancel, |_| {})
    })
    .await??;
    set_running(running, None);
    if record.error.as_deref() == Some(crate::cell::runner::CANCELLED) {
        return Ok(());
    }
    spool.put(&Spooled { epoch: lease_ref.epoch, record })?;
    flush_spool(client, spool, agent_id).await
}

fn set_running(running: &Running, value: Option<(LeaseRef, Arc<AtomicBool>)>) {
    if let Ok(mut r) = running.lock() {
        *r = value;
    }
}

/// Builds the child's request from a lease: the cell, its policy, this machine.
fn cell_request(
    lease: &proto::v1::Lease,
    lease_ref: &LeaseRef,
    agent_id: &str,
    fp: &Fingerprint,
) -> anyhow::Result<CellRequest> {
    let cell: Cell = serde_json::from_str(&lease.cell_json).context("cell_json")?;
    let measure: MeasurePolicy = serde_json::from_str(&lease.measure_json).context("measure_json")?;
    let kind = cell.hardware.kind.as_str();
    let class = match &cell.hardware_class {
        Some(c) => c.clone(),
        None => fp.hardware_classes().into_iter().find(|c| c.split('/').next() == Some(kind)).context("no device")?,
    };
    let coordinates = Coordinates::of(&cell, &class).with_context(|| format!("unknown model {}", cell.model))?;
    Ok(CellRequest {
        sweep_id: Some(lease_ref.sweep_id.clone()),
        cell_key: lease_ref.cell_key.clone(),
        attempt: lease_ref.attempt,
        agent_id: Some(agent_id.to_string()),
        coordinates,
        measure,
        weights: Weights::Random { seed: DEFAULT_SEED },
        device: if kind == "cuda" { "cuda:0".into() } else { "cpu".into() },
        fingerprint_hash: fp.hash(),
    })
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
                lease: Some(LeaseRef {
                    sweep_id: s.record.sweep_id.clone().unwrap_or_default(),
                    cell_key: s.record.cell_key.clone(),
                    attempt: s.record.attempt,
                    epoch: s.epoch,
                }),
                result_json: serde_json::to_string(&s.record)?,
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

async fn heartbeat_loop(mut client: Client, agent_id: String, running: Running, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        let current = running.lock().ok().and_then(|r| r.clone());
        let req =
            HeartbeatRequest { agent_id: agent_id.clone(), running: current.iter().map(|(l, _)| l.clone()).collect() };
        match client.heartbeat(req).await {
            Ok(resp) => {
                let cancelled = resp.into_inner().cancelled;
                if let Some((lease, flag)) = &current {
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
            Err(e) => tracing::warn!(error = %e, "heartbeat failed"),
        }
    }
}

/// Exponential backoff, 0.5 s doubling to 30 s.
#[derive(Debug, Default)]
struct Backoff {
    n: u32,
}

impl Backoff {
    fn next(&mut self) -> Duration {
        let d = Duration::from_millis(500u64.saturating_mul(1 << self.n.min(6))).min(Duration::from_secs(30));
        self.n += 1;
        d
    }

    fn reset(&mut self) {
        self.n = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let mut b = Backoff::default();
        let v: Vec<u64> = (0..9).map(|_| b.next().as_millis() as u64).collect();
        assert_eq!(v, [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
        b.reset();
        assert_eq!(b.next(), Duration::from_millis(500));
    }
}
