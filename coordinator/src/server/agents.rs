//! The agent service: register, heartbeat, lease cells, report results.
//!
//! Every change goes through Raft (`propose`) and every decision reads the state
//! through Raft (`read`, a ReadIndex). Malformed requests get `InvalidArgument` naming
//! the field; a result for a cell the agent does not hold is acknowledged `REJECTED`
//! with the reason, and nothing is stored.

use std::str::FromStr;

use proto::v1::agent_service_server::AgentService;
use proto::v1::{
    AckStatus, HeartbeatRequest, HeartbeatResponse, Lease as WireLease, LeaseCellsRequest, LeaseCellsResponse,
    LeaseRef, RegisterRequest, RegisterResponse, ReportResultsRequest, ReportResultsResponse, ResultAck,
};
use shared::cell::CellKey;
use shared::fingerprint::Fingerprint;
use shared::result::ResultRecord;
use tokio_stream::StreamExt;
use tonic::{Request, Response, Status, Streaming};

use super::{now_ms, raft_status, Ctx};
use crate::state::command::Completion;
use crate::state::{self, CellState, Command, ManifestFile, Outcome, SweepId};
use crate::warehouse::schema::{Origin, ResultKey};

/// Most cells one lease request may ask for.
const MAX_CELLS_PER_LEASE: u32 = 16;
/// Most labels an agent may register with, and their longest key or value.
const MAX_LABELS: usize = 64;
const MAX_LABEL_LEN: usize = 256;

pub struct Agents {
    pub ctx: Ctx,
}

#[tonic::async_trait]
impl AgentService for Agents {
    async fn register(&self, request: Request<RegisterRequest>) -> Result<Response<RegisterResponse>, Status> {
        let r = request.into_inner();
        let fp: Fingerprint = proto::decode_json("fingerprint_json", &r.fingerprint_json)?;
        let devices = state::device_groups(&fp);
        if devices.is_empty() {
            return Err(Status::invalid_argument("fingerprint_json: no devices (not even a cpu)"));
        }
        check_labels(&r.labels)?;
        let agent_id = if r.agent_id.is_empty() { uuid::Uuid::now_v7().to_string() } else { valid_id(&r.agent_id)? };
        let cmd = Command::RegisterAgent {
            agent_id: agent_id.clone(),
            devices,
            labels: r.labels.into_iter().collect(),
            at_ms: now_ms(),
        };
        match self.ctx.raft.propose(cmd).await.map_err(raft_status)? {
            Outcome::AgentRegistered { .. } => {}
            Outcome::Rejected(why) => return Err(Status::invalid_argument(why.to_string())),
            other => return Err(Status::internal(format!("unexpected outcome {other:?}"))),
        }
        self.ctx.liveness.saw(&agent_id);
        tracing::info!(agent_id, "agent registered");
        Ok(Response::new(RegisterResponse { agent_id, heartbeat_interval_ms: self.ctx.config.heartbeat_interval_ms }))
    }

    async fn heartbeat(&self, request: Request<HeartbeatRequest>) -> Result<Response<HeartbeatResponse>, Status> {
        let r = request.into_inner();
        self.known_agent(&r.agent_id).await?;
        self.ctx.liveness.saw(&r.agent_id);
        let agent_id = r.agent_id.clone();
        let running = r.running;
        let cancelled = self
            .ctx
            .raft
            .read(move |s| running.into_iter().filter(|l| !holds(s, &agent_id, l)).collect::<Vec<_>>())
            .await
            .map_err(raft_status)?;
        Ok(Response::new(HeartbeatResponse { cancelled }))
    }

    async fn lease_cells(&self, request: Request<LeaseCellsRequest>) -> Result<Response<LeaseCellsResponse>, Status> {
        let r = request.into_inner();
        self.known_agent(&r.agent_id).await?;
        self.ctx.liveness.saw(&r.agent_id);
        let max = r.max_cells.clamp(1, MAX_CELLS_PER_LEASE) as usize;
        let agent_id = r.agent_id.clone();
        let now = now_ms();
        let plan = self
            .ctx
            .raft
            .read(move |s| crate::scheduler::plan_leases(s, &agent_id, max, now))
            .await
            .map_err(raft_status)?;
        if plan.is_empty() {
            return Ok(Response::new(LeaseCellsResponse { leases: Vec::new() }));
        }
        let lease_seconds = self.lease_seconds(plan[0].0).await?;
        let cmd = Command::GrantLeases { agent_id: r.agent_id.clone(), leases: plan, at_ms: now, lease_seconds };
        let granted = match self.ctx.raft.propose(cmd).await.map_err(raft_status)? {
            Outcome::LeasesGranted { granted, .. } => granted,
            Outcome::Rejected(why) => return Err(Status::failed_precondition(why.to_string())),
            other => return Err(Status::internal(format!("unexpected outcome {other:?}"))),
        };
        let mut leases = Vec::with_capacity(granted.len());
        for l in granted {
            let sweep_id = l.sweep_id;
            let (measure, secs) = self
                .ctx
                .raft
                .read(move |s| s.sweep(&sweep_id).map(|w| (w.spec.measure.clone(), w.spec.policy.lease_seconds)))
                .await
                .map_err(raft_status)?
                .ok_or_else(|| Status::internal("granted a lease of an unknown sweep"))?;
            tracing::info!(agent_id = r.agent_id, sweep_id = %l.sweep_id, cell_key = %l.cell_key, attempt = l.attempt, "lease granted");
            leases.push(WireLease {
                lease: Some(LeaseRef {
                    sweep_id: l.sweep_id.to_string(),
                    cell_key: l.cell_key.to_string(),
                    attempt: l.attempt,
                    epoch: l.epoch,
                }),
                cell_json: serde_json::to_string(&l.cell).map_err(|e| Status::internal(e.to_string()))?,
                measure_json: serde_json::to_string(&measure).map_err(|e| Status::internal(e.to_string()))?,
                lease_seconds: secs,
            });
        }
        Ok(Response::new(LeaseCellsResponse { leases }))
    }

    async fn report_results(
        &self,
        request: Request<Streaming<ReportResultsRequest>>,
    ) -> Result<Response<ReportResultsResponse>, Status> {
        let mut stream = request.into_inner();
        let mut acks = Vec::new();
        while let Some(msg) = stream.next().await {
            let msg = msg?;
            acks.push(self.report_one(msg).await?);
        }
        Ok(Response::new(ReportResultsResponse { acks }))
    }
}

impl Agents {
    async fn known_agent(&self, agent_id: &str) -> Result<(), Status> {
        let id = agent_id.to_string();
        let known = self.ctx.raft.read(move |s| s.agent(&id).is_some()).await.map_err(raft_status)?;
        if known {
            Ok(())
        } else {
            Err(Status::not_found(format!("agent_id {agent_id:?}: unknown agent, register first")))
        }
    }

    async fn lease_seconds(&self, sweep_id: SweepId) -> Result<u32, Status> {
        self.ctx
            .raft
            .read(move |s| s.sweep(&sweep_id).map(|w| w.spec.policy.lease_seconds))
            .await
            .map_err(raft_status)?
            .ok_or_else(|| Status::internal("unknown sweep"))
    }

    /// One reported result: checked, staged, decided by Raft, committed, acked.
    async fn report_one(&self, msg: ReportResultsRequest) -> Result<ResultAck, Status> {
        let lease = msg.lease.ok_or_else(|| Status::invalid_argument("lease: missing"))?;
        let record: ResultRecord = proto::decode_json("result_json", &msg.result_json)?;
        record.validate().map_err(|e| Status::invalid_argument(format!("result_json: {e}")))?;
        let sweep_id = SweepId::from_str(&lease.sweep_id)
            .map_err(|_| Status::invalid_argument(format!("lease.sweep_id {:?}: not a sweep id", lease.sweep_id)))?;
        let cell_key =
            CellKey::from_str(&lease.cell_key).map_err(|e| Status::invalid_argument(format!("lease.cell_key: {e}")))?;
        if record.sweep_id.as_deref() != Some(lease.sweep_id.as_str())
            || record.cell_key != lease.cell_key
            || record.attempt != lease.attempt
        {
            return Err(Status::invalid_argument("result_json: sweep, cell key or attempt differ from the lease"));
        }
        let ack = |status: AckStatus, message: String| ResultAck {
            lease: Some(lease.clone()),
            status: status as i32,
            message,
        };
        let (agent_id, key, attempt, epoch) = (msg.agent_id.clone(), cell_key.clone(), lease.attempt, lease.epoch);
        let verdict = self
            .ctx
            .raft
            .read(move |s| match s.cell(&sweep_id, &key) {
                None => Err(format!("unknown cell {key} in sweep {sweep_id}")),
                Some(c) if c.results.contains_key(&attempt) => Ok(false),
                Some(c) => match &c.state {
                    CellState::Leased { agent_id: holder, epoch: e, attempt: a, .. }
                        if *holder == agent_id && *e == epoch && *a == attempt =>
                    {
                        Ok(true)
                    }
                    other => {
                        Err(format!("cell {key} is not leased to {agent_id} under epoch {epoch} ({:?})", other.kind()))
                    }
                },
            })
            .await
            .map_err(raft_status)?;
        match verdict {
            Err(why) => return Ok(ack(AckStatus::Rejected, why)),
            Ok(false) => return Ok(ack(AckStatus::Duplicate, "already committed".into())),
            Ok(true) => {}
        }
        let origin = if self.ctx.config.load_test { Origin::LoadTest } else { Origin::Measured };
        let files =
            self.ctx.warehouse.stage(&[&record], origin).await.map_err(|e| Status::unavailable(e.to_string()))?;
        let completion = Completion {
            sweep_id,
            cell_key: cell_key.clone(),
            agent_id: msg.agent_id.clone(),
            attempt: lease.attempt,
            epoch: lease.epoch,
            status: record.status,
            error: record.error.clone(),
            files: files
                .iter()
                .map(|f| ManifestFile { path: f.path.clone(), table: f.table.as_str().into(), n_rows: f.rows })
                .collect(),
            at_ms: now_ms(),
        };
        let outcome = self.ctx.raft.propose(Command::CompleteCell(completion)).await.map_err(raft_status)?;
        match outcome {
            Outcome::Completed { .. } => {
                self.ctx
                    .warehouse
                    .commit_staged(files, vec![ResultKey::of(&record)])
                    .await
                    .map_err(|e| Status::unavailable(format!("committing to the warehouse: {e}")))?;
                tracing::info!(agent_id = msg.agent_id, sweep_id = %sweep_id, cell_key = %cell_key, attempt = lease.attempt, status = %record.status, "result committed");
                Ok(ack(AckStatus::Committed, String::new()))
            }
            Outcome::Duplicate { .. } => {
                self.ctx.warehouse.discard(&files).await;
                Ok(ack(AckStatus::Duplicate, "already committed".into()))
            }
            Outcome::Rejected(why) => {
                self.ctx.warehouse.discard(&files).await;
                Ok(ack(AckStatus::Rejected, why.to_string()))
            }
            other => Err(Status::internal(format!("unexpected outcome {other:?}"))),
        }
    }
}

/// Whether `agent_id` still holds the lease `l` (same cell, attempt and epoch).
fn holds(s: &state::State, agent_id: &str, l: &LeaseRef) -> bool {
    let (Ok(sweep), Ok(key)) = (SweepId::from_str(&l.sweep_id), CellKey::from_str(&l.cell_key)) else { return false };
    matches!(
        s.cell(&sweep, &key).map(|c| &c.state),
        Some(CellState::Leased { agent_id: h, epoch, .. }) if h == agent_id && *epoch == l.epoch
    )
}

fn valid_id(id: &str) -> Result<String, Status> {
    if id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        Ok(id.to_string())
    } else {
        Err(Status::invalid_argument(format!("agent_id {id:?}: expected up to 64 of A-Z a-z 0-9 - _")))
    }
}

fn check_labels(labels: &std::collections::HashMap<String, String>) -> Result<(), Status> {
    if labels.len() > MAX_LABELS {
        return Err(Status::invalid_argument(format!("labels: {} labels, at most {MAX_LABELS}", labels.len())));
    }
    if let Some((k, _)) =
        labels.iter().find(|(k, v)| k.is_empty() || k.len() > MAX_LABEL_LEN || v.len() > MAX_LABEL_LEN)
    {
        return Err(Status::invalid_argument(format!("labels: key {k:?} or its value is empty or too long")));
    }
    Ok(())
}
