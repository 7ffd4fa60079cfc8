//! The agent service: register, heartbeat, lease cells, report results.
//!
//! Every change goes through Raft (`propose`) and every decision reads the state
//! through Raft (`read`, a ReadIndex). Lease requests and results, the hot path, go
//! through batchers ([`Leasing`], [`Committer`]) that serve everything waiting at once.
//! Malformed requests get `InvalidArgument` naming the field; a result for a cell the
//! agent does not hold is acknowledged `REJECTED` with the reason, and nothing is stored.

use std::sync::Arc;

use proto::v1::agent_service_server::AgentService;
use proto::v1::{
    AckStatus, HeartbeatRequest, HeartbeatResponse, LeaseCellsRequest, LeaseCellsResponse, LeaseRef, RegisterRequest,
    RegisterResponse, ReportResultsRequest, ReportResultsResponse, ResultAck,
};
use shared::calibration::{Calibration, MAX_CALIBRATIONS};
use shared::cell::CellKey;
use shared::device_group::DeviceGroup;
use shared::fingerprint::Fingerprint;
use shared::result::ResultRecord;
use shared::spec::Engine;
use tokio_stream::StreamExt;
use tonic::{Request, Response, Status, Streaming};

use super::auth::{Principal, Via};
use super::committer::{self, Committer, Report};
use super::errors::{raft_status, rejected, unexpected};
use super::leasing::Leasing;
use super::peer_rate::PeerRate;
use super::{now_ms, tables, Ctx};
use crate::state::command::Completion;
use crate::state::{self, AgentId, CellState, Command, Outcome, SweepId};
use proto::convert::{parse_field, LeaseId};

/// The calibrations a registration carries (none when `json` is empty), each checked:
/// a figure must be finite and positive, for one of the agent's own hardware classes,
/// and measured between 2000 and a day from `now_ms` (clocks differ a little).
fn check_calibrations(json: &str, devices: &[state::DeviceGroup], now_ms: i64) -> Result<Vec<Calibration>, Status> {
    const FIELD: &str = "calibrations_json";
    const YEAR_2000_MS: i64 = 946_684_800_000;
    if json.is_empty() {
        return Ok(Vec::new());
    }
    let found: Vec<Calibration> = proto::decode_json(FIELD, json)?;
    if found.len() > MAX_CALIBRATIONS {
        return Err(Status::invalid_argument(format!(
            "{FIELD}: {} calibrations, at most {MAX_CALIBRATIONS}",
            found.len()
        )));
    }
    for c in &found {
        c.check().map_err(|e| Status::invalid_argument(format!("{FIELD}: {e}")))?;
        if !devices.iter().any(|d| d.class == c.hardware_class) {
            return Err(Status::invalid_argument(format!(
                "{FIELD}: hardware class `{}` is not one this agent registers",
                c.hardware_class.chars().take(120).collect::<String>()
            )));
        }
        if !(YEAR_2000_MS..=now_ms.saturating_add(86_400_000)).contains(&c.measured_at_ms) {
            return Err(Status::invalid_argument(format!(
                "{FIELD}: measured_at_ms {} is not a time between 2000 and tomorrow",
                c.measured_at_ms
            )));
        }
    }
    Ok(found)
}

/// Most cells one lease request may ask for.
const MAX_CELLS_PER_LEASE: u32 = 16;
/// Most labels an agent may register with, and their longest key or value.
const MAX_LABELS: usize = 64;
const MAX_LABEL_LEN: usize = 256;

pub struct Agents {
    pub ctx: Ctx,
    pub leasing: Leasing,
    pub committer: Committer,
    /// Registrations per peer address (`None`: not limited).
    pub registrations: Option<PeerRate>,
    /// One permit per open result stream (`max_report_streams`).
    pub report_streams: Arc<tokio::sync::Semaphore>,
}

#[tonic::async_trait]
impl AgentService for Agents {
    #[tracing::instrument(skip_all, fields(agent_id = request.get_ref().agent_id))]
    async fn register(&self, request: Request<RegisterRequest>) -> Result<Response<RegisterResponse>, Status> {
        let peer = request.remote_addr().map(|a| a.ip());
        let principal = Principal::of(&request)?;
        if let Some(rate) = &self.registrations {
            if !rate.allow(peer, std::time::Instant::now()) {
                let who = peer.map_or_else(|| "this peer".to_string(), |ip| ip.to_string());
                return Err(Status::resource_exhausted(format!(
                    "too many registrations from {who}: at most {} per minute; retry later",
                    self.ctx.config.registrations_per_minute_per_peer
                )));
            }
        }
        let r = request.into_inner();
        let fp: Fingerprint = proto::decode_json("fingerprint_json", &r.fingerprint_json)?;
        fp.check_bounds().map_err(|why| Status::invalid_argument(format!("fingerprint_json: {why}")))?;
        let mut devices = state::device_groups(&fp);
        add_engines(&mut devices, &r.engines)?;
        let rows_devices = devices.clone();
        if devices.is_empty() {
            return Err(Status::invalid_argument("fingerprint_json: no devices (not even a cpu)"));
        }
        check_labels(&r.labels)?;
        let calibrations = check_calibrations(&r.calibrations_json, &devices, now_ms())?;
        let agent_id: AgentId = match principal.via {
            // Only an unauthenticated agent is given an id; one with a certificate is
            // its certificate's name.
            Via::Insecure if r.agent_id.is_empty() => AgentId::from_uuid(uuid::Uuid::now_v7()),
            _ => principal.agent_id(&r.agent_id)?,
        };
        let keep = held_leases("held", &r.held)?;
        let at_ms = now_ms();
        // One entry: the registration and the end of whatever an earlier process of this
        // agent held and this one does not report (it was running when that process died).
        let cmd = Command::Batch {
            commands: vec![
                Command::RegisterAgent {
                    agent_id: agent_id.clone(),
                    devices,
                    labels: r.labels.into_iter().collect(),
                    at_ms,
                },
                Command::ReleaseLeases {
                    agent_id: agent_id.clone(),
                    keep,
                    reason: "the agent registered again (restarted) without it".into(),
                    at_ms,
                },
            ],
        };
        let outcomes = match self.ctx.raft.propose(cmd).await.map_err(raft_status)? {
            Outcome::Batch(outcomes) => outcomes,
            other => return Err(unexpected(&other)),
        };
        match outcomes.as_slice() {
            [Outcome::AgentRegistered { .. }, Outcome::LeasesReleased { released }] => {
                if !released.is_empty() {
                    tracing::warn!(%agent_id, n = released.len(), "ended the leases of the agent's previous process");
                }
            }
            [Outcome::Rejected(why), ..] => return Err(rejected(why)),
            other => return Err(Status::internal(format!("unexpected outcomes {other:?}"))),
        }
        self.ctx.liveness.saw(agent_id.as_str());
        let version = r.agent_version.chars().take(256).collect::<String>();
        tables::write_agents(&self.ctx, tables::agent_rows(agent_id.as_str(), &fp, &rows_devices, &version, at_ms))
            .await;
        tables::write_calibrations(&self.ctx, tables::calibration_rows(agent_id.as_str(), &fp, calibrations)).await;
        tracing::Span::current().record("agent_id", agent_id.as_str());
        tracing::info!(%agent_id, "agent registered");
        Ok(Response::new(RegisterResponse {
            agent_id: agent_id.to_string(),
            heartbeat_interval_ms: self.ctx.config.heartbeat_interval_ms,
        }))
    }

    #[tracing::instrument(skip_all, fields(agent_id = request.get_ref().agent_id))]
    async fn heartbeat(&self, request: Request<HeartbeatRequest>) -> Result<Response<HeartbeatResponse>, Status> {
        let principal = Principal::of(&request)?;
        let r = request.into_inner();
        let agent_id = self.known_agent(principal.agent_id(&r.agent_id)?).await?;
        self.ctx.liveness.saw(agent_id.as_str());
        let running = r.running;
        let cancelled = self
            .ctx
            .raft
            .read(move |s| running.into_iter().filter(|l| !holds(s, &agent_id, l)).collect::<Vec<_>>())
            .await
            .map_err(raft_status)?;
        Ok(Response::new(HeartbeatResponse { cancelled }))
    }

    #[tracing::instrument(skip_all, fields(agent_id = request.get_ref().agent_id))]
    async fn lease_cells(&self, request: Request<LeaseCellsRequest>) -> Result<Response<LeaseCellsResponse>, Status> {
        let principal = Principal::of(&request)?;
        let r = request.into_inner();
        let max = r.max_cells.clamp(1, MAX_CELLS_PER_LEASE) as usize;
        let agent_id: AgentId = principal.agent_id(&r.agent_id)?;
        let held = held_leases("held", &r.held)?;
        let t0 = std::time::Instant::now();
        let leases = self.leasing.lease(agent_id.clone(), max, held).await?;
        self.ctx.metrics.leased(leases.len(), t0.elapsed());
        // After the lease: an unknown agent must not enter the liveness table.
        self.ctx.liveness.saw(agent_id.as_str());
        Ok(Response::new(LeaseCellsResponse { leases }))
    }

    #[tracing::instrument(skip_all)]
    async fn report_results(
        &self,
        request: Request<Streaming<ReportResultsRequest>>,
    ) -> Result<Response<ReportResultsResponse>, Status> {
        // Held until the stream ends: each open stream holds a task and its results.
        let _permit = self.report_streams.clone().try_acquire_owned().map_err(|_| {
            Status::resource_exhausted(format!(
                "{} result streams are open, the most served at once; retry later",
                self.ctx.config.max_report_streams
            ))
        })?;
        let principal = Principal::of(&request)?;
        let mut stream = request.into_inner();
        let mut acks = Vec::new();
        let mut waiting = Vec::new();
        while let Some(msg) = stream.next().await {
            let msg = msg?;
            let lease = msg.lease.clone();
            // A bad result is refused alone: the stream, and the agent's other spooled
            // results behind it, go on. Its lease first: a result that could never be
            // recorded is refused before its JSON (up to a few MB) is decoded.
            let verdict = match principal.agent_id(&msg.agent_id) {
                Err(denied) => Err(denied.message().to_string()),
                Ok(_) => match self.ctx.raft.read_local(|s| refused_by_lease(s, &msg)) {
                    Some(why) => Err(why),
                    None => checked(msg, now_ms()),
                },
            };
            let report = match verdict {
                Ok(report) => report,
                Err(why) => {
                    tracing::warn!(reason = why, "result refused");
                    answer(&mut waiting, &mut acks).await?;
                    acks.push(ResultAck { lease, status: AckStatus::Rejected as i32, message: why });
                    continue;
                }
            };
            let lease = lease.unwrap_or_default();
            waiting.push((lease, self.committer.submit(report).await?));
            // Bounded: a reporter streaming a huge spool waits for acks as it goes.
            if waiting.len() >= MAX_WAITING_PER_STREAM {
                answer(&mut waiting, &mut acks).await?;
            }
        }
        answer(&mut waiting, &mut acks).await?;
        for ack in &acks {
            let status = AckStatus::try_from(ack.status).map_or("unknown", |s| s.as_str_name());
            self.ctx.metrics.result(status.trim_start_matches("ACK_STATUS_"));
        }
        Ok(Response::new(ReportResultsResponse { acks }))
    }
}

/// Results one report stream may have waiting for their group commit at once.
const MAX_WAITING_PER_STREAM: usize = 64;

type Waiting = (LeaseRef, tokio::sync::oneshot::Receiver<committer::Answer>);

/// Waits for the answers of `waiting`, in order, as acks.
async fn answer(waiting: &mut Vec<Waiting>, acks: &mut Vec<ResultAck>) -> Result<(), Status> {
    for (lease, answer) in waiting.drain(..) {
        let (status, message) = answer.await.map_err(|_| super::errors::shutting_down())??;
        acks.push(ResultAck { lease: Some(lease), status: status as i32, message });
    }
    Ok(())
}

impl Agents {
    /// The request's agent id, if registered.
    async fn known_agent(&self, id: AgentId) -> Result<AgentId, Status> {
        let lookup = id.clone();
        let known = self.ctx.raft.read(move |s| s.agent(lookup.as_str()).is_some()).await.map_err(raft_status)?;
        if known {
            Ok(id)
        } else {
            Err(Status::not_found(format!("agent_id {:?}: unknown agent, register first", id.as_str())))
        }
    }
}

/// How old a reported result may be: a spool re-sent after a month-long outage still
/// counts; older is not a result of this coordinator's leases.
const MAX_RESULT_AGE_MS: i64 = 30 * 24 * 3600 * 1000;
/// How far ahead of the coordinator's clock a result may be (clock skew between machines).
const MAX_RESULT_AHEAD_MS: i64 = 3600 * 1000;

/// A reported result, decoded and checked against its own lease and every bound a result
/// has; `Err` is the reason it is refused, naming the field.
#[tracing::instrument(name = "result", skip_all, fields(
    agent_id = msg.agent_id,
    sweep_id = msg.lease.as_ref().map(|l| l.sweep_id.as_str()),
    cell_key = msg.lease.as_ref().map(|l| l.cell_key.as_str()),
    attempt = msg.lease.as_ref().map(|l| l.attempt),
))]
fn checked(msg: ReportResultsRequest, now_ms: i64) -> Result<Report, String> {
    let lease = msg.lease.ok_or("lease: missing")?;
    let record: ResultRecord =
        proto::decode_json("result_json", &msg.result_json).map_err(|e| e.message().to_string())?;
    record.validate().map_err(|e| format!("result_json: {e}"))?;
    record.check_recent(now_ms, MAX_RESULT_AGE_MS, MAX_RESULT_AHEAD_MS).map_err(|e| format!("result_json: {e}"))?;
    let agent_id: AgentId = parse_field("agent_id", &msg.agent_id).map_err(|e| e.message().to_string())?;
    let LeaseId { sweep_id, cell_key, .. } = lease.to_domain("lease").map_err(|e| e.message().to_string())?;
    if record.sweep_id.as_deref() != Some(lease.sweep_id.as_str())
        || record.cell_key != lease.cell_key
        || record.attempt != lease.attempt
    {
        return Err("result_json: sweep, cell key or attempt differ from the lease".into());
    }
    let completion = Completion {
        sweep_id,
        cell_key,
        agent_id,
        attempt: lease.attempt,
        epoch: lease.epoch,
        status: record.status,
        error: record.error.clone(),
        files: Vec::new(),
        at_ms: now_ms,
    };
    Ok(Report { completion, record })
}

/// Why a result could not be recorded, told from its agent id and lease alone: what
/// [`state::apply::check_completion`] (the rule apply and the committer use) refuses for
/// them. `None` when it may be recorded or is a re-send (the committer then answers it
/// in full), or when the lease or agent id is malformed (the full check names the field).
/// A read of this node's state as it is: every lease an agent holds was applied here
/// before the agent heard of it, and a refused lease never becomes valid later (epochs
/// are never reused), so this refuses nothing the full check would take.
fn refused_by_lease(s: &state::State, msg: &ReportResultsRequest) -> Option<String> {
    let lease = msg.lease.as_ref()?;
    let agent_id: AgentId = msg.agent_id.parse().ok()?;
    let LeaseId { sweep_id, cell_key, .. } = lease.to_domain("lease").ok()?;
    let probe = Completion {
        sweep_id,
        cell_key,
        agent_id,
        attempt: lease.attempt,
        epoch: lease.epoch,
        // Not read by the check: it decides on the lease, not on the result.
        status: shared::result::Status::Ok,
        error: None,
        files: Vec::new(),
        at_ms: 0,
    };
    match state::apply::check_completion(s, &probe) {
        Err(Outcome::Rejected(why)) => Some(format!("lease: {why}")),
        _ => None,
    }
}

/// Whether `agent_id` still holds the lease `l` (same cell, attempt and epoch).
fn holds(s: &state::State, agent_id: &AgentId, l: &LeaseRef) -> bool {
    let Ok(LeaseId { sweep_id, cell_key, .. }) = l.to_domain("running") else { return false };
    matches!(
        s.cell(&sweep_id, &cell_key).map(|c| &c.state),
        Some(CellState::Leased { agent_id: h, epoch, .. }) if h == agent_id && *epoch == l.epoch
    )
}

/// Most leases an agent may say it holds: its device slots' cells plus a spool of
/// results not yet acknowledged.
const MAX_HELD: usize = 4096;

/// The leases an agent says it holds, as (sweep, cell, epoch).
fn held_leases(field: &str, held: &[LeaseRef]) -> Result<Vec<(SweepId, CellKey, u64)>, Status> {
    if held.len() > MAX_HELD {
        return Err(Status::invalid_argument(format!("{field}: {} leases, at most {MAX_HELD}", held.len())));
    }
    held.iter()
        .enumerate()
        .map(|(i, l)| {
            let LeaseId { sweep_id, cell_key, epoch } = l.to_domain(&format!("{field}[{i}]"))?;
            Ok((sweep_id, cell_key, epoch))
        })
        .collect()
}

/// Most external engines an agent may register.
const MAX_ENGINES: usize = 16;

/// Adds each engine the agent runs to the device groups it names, refusing the whole
/// registration over an unknown engine, the built-in one, a repeated one or a class the
/// agent's fingerprint does not give.
fn add_engines(groups: &mut [DeviceGroup], engines: &[proto::v1::AgentEngine]) -> Result<(), Status> {
    if engines.len() > MAX_ENGINES {
        return Err(Status::invalid_argument(format!("engines: {} engines, at most {MAX_ENGINES}", engines.len())));
    }
    for (i, e) in engines.iter().enumerate() {
        let engine: Engine =
            e.engine.parse().map_err(|why| Status::invalid_argument(format!("engines[{i}]: {why}")))?;
        if engine == Engine::Candle {
            return Err(Status::invalid_argument(format!(
                "engines[{i}]: candle is built in; list only external engines"
            )));
        }
        if engines[..i].iter().any(|earlier| earlier.engine == e.engine) {
            return Err(Status::invalid_argument(format!("engines[{i}]: `{}` is listed twice", e.engine)));
        }
        for class in &e.hardware_classes {
            let group = groups.iter_mut().find(|g| g.class == *class).ok_or_else(|| {
                Status::invalid_argument(format!(
                    "engines[{i}] ({}): hardware class {class:?} is not one of this agent's devices",
                    e.engine
                ))
            })?;
            if !group.engines.contains(&engine) {
                group.engines.push(engine);
            }
        }
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use proto::v1::AgentEngine;

    fn engine(name: &str, classes: &[&str]) -> AgentEngine {
        AgentEngine {
            engine: name.into(),
            hardware_classes: classes.iter().map(|c| c.to_string()).collect(),
            version: "1".into(),
        }
    }

    #[test]
    fn an_agents_engines_join_the_groups_they_name_and_bad_ones_are_refused_by_name() {
        let groups = || vec![DeviceGroup::new("cpu/x".into(), None, 1), DeviceGroup::new("cuda/y".into(), None, 2)];
        let mut g = groups();
        add_engines(&mut g, &[engine("torch", &["cuda/y"]), engine("onnxruntime", &["cpu/x", "cuda/y"])]).expect("ok");
        assert_eq!(g[0].engines, [Engine::Candle, Engine::Onnxruntime]);
        assert_eq!(g[1].engines, [Engine::Candle, Engine::Torch, Engine::Onnxruntime]);
        let refused =
            |engines: &[AgentEngine]| add_engines(&mut groups(), engines).expect_err("refused").message().to_string();
        assert!(refused(&[engine("tensorflow", &["cpu/x"])]).starts_with("engines[0]: "));
        assert!(refused(&[engine("candle", &["cpu/x"])]).contains("built in"));
        assert!(refused(&[engine("torch", &[]), engine("torch", &[])]).contains("listed twice"));
        assert!(refused(&[engine("torch", &["rocm/z"])]).contains("\"rocm/z\" is not one of this agent's devices"));
        let many: Vec<AgentEngine> = (0..=MAX_ENGINES).map(|_| engine("torch", &[])).collect();
        assert!(refused(&many).contains("at most 16"));
    }
}
