//! The sweep service: what users (the `accelbench` CLI) call. Submit validates the spec
//! exactly as `sweep plan` does and resolves `each_hardware_class` against the classes
//! of the agents registered at submit time (a class that joins later does not silently
//! join the sweep).

use std::pin::Pin;
use std::time::Duration;

use futures::Stream;
use proto::convert::parse_field;
use proto::v1::sweep_service_server::SweepService;
use proto::v1::{
    CancelSweepRequest, ClassCounts, GetSweepRequest, ListSweepsRequest, ListSweepsResponse, SpecFormat,
    SubmitSweepRequest, SubmitSweepResponse, SweepState, SweepStatus as WireStatus,
};
use shared::spec::{self, Format, Limits};
use telemetry::propagate::TraceParent;
use tonic::{Request, Response, Status};
use tracing::field;

use super::auth::Principal;
use super::errors::{raft_status, rejected, unexpected};
use super::{now_ms, tables, Ctx};
use crate::state::command::TraceContext;
use crate::state::views::{Counts, SweepStatus};
use crate::state::{Command, Outcome, SweepId};
use proto::identity::Role;

pub struct Sweeps {
    pub ctx: Ctx,
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<WireStatus, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl SweepService for Sweeps {
    #[tracing::instrument(skip_all, fields(sweep_id = field::Empty, n_cells = field::Empty))]
    async fn submit(&self, request: Request<SubmitSweepRequest>) -> Result<Response<SubmitSweepResponse>, Status> {
        let received = TraceParent::from_headers(request.metadata().as_ref());
        let submitted_by = Principal::of(&request)?.submitted_by();
        let r = request.into_inner();
        if r.spec.len() > self.ctx.config.max_spec_bytes {
            return Err(Status::invalid_argument(format!(
                "spec: {} bytes, at most {}",
                r.spec.len(),
                self.ctx.config.max_spec_bytes
            )));
        }
        let format = match SpecFormat::try_from(r.format) {
            Ok(SpecFormat::Json) => Format::Json,
            _ => Format::Toml,
        };
        let limits = Limits { max_cells: self.ctx.config.max_cells };
        let spec = spec::parse(&r.spec, format, &limits).map_err(|d| Status::invalid_argument(format!("spec: {d}")))?;
        let agents = self.ctx.raft.read(|s| s.agent_classes()).await.map_err(raft_status)?;
        // Validation counted the cells before fan-out; classes and agents multiply them.
        // Counted first, so a huge fan-out is refused before anything is allocated.
        let n_cells = shared::cell::count_for_agents(&spec, &agents);
        if n_cells > limits.max_cells {
            return Err(Status::invalid_argument(format!(
                "spec: {} cells after fan-out to the registered hardware, at most {}",
                n_cells, limits.max_cells
            )));
        }
        let cells: Vec<_> =
            shared::cell::expand_for_agents(&spec, &agents).into_iter().map(|c| (c.key(&spec.name), c)).collect();
        let n_cells = cells.len() as u64;
        let sweep_id = SweepId::from_uuid(uuid::Uuid::now_v7());
        tracing::Span::current().record("sweep_id", field::display(sweep_id)).record("n_cells", n_cells);
        let trace = sweep_trace(received.as_ref());
        let at_ms = now_ms();
        let rows = (
            tables::sweep_row(sweep_id, &spec, n_cells, at_ms, submitted_by.clone()),
            tables::cell_rows(sweep_id, &cells, at_ms),
        );
        let cmd = Command::SubmitSweep { sweep_id, submitted_at_ms: at_ms, spec, cells, trace, submitted_by };
        match self.ctx.raft.propose(cmd).await.map_err(raft_status)? {
            Outcome::Submitted { .. } => {}
            Outcome::Rejected(why) => return Err(rejected(&why)),
            other => return Err(unexpected(&other)),
        }
        tables::write_sweep(&self.ctx, rows.0, rows.1).await;
        tracing::info!(sweep_id = %sweep_id, n_cells, "sweep submitted");
        Ok(Response::new(SubmitSweepResponse { sweep_id: sweep_id.to_string(), n_cells }))
    }

    #[tracing::instrument(skip_all, fields(sweep_id = request.get_ref().sweep_id))]
    async fn get(&self, request: Request<GetSweepRequest>) -> Result<Response<WireStatus>, Status> {
        let id = parse_field("sweep_id", &request.into_inner().sweep_id)?;
        Ok(Response::new(self.status(id).await?))
    }

    #[tracing::instrument(skip_all)]
    async fn list(&self, request: Request<ListSweepsRequest>) -> Result<Response<ListSweepsResponse>, Status> {
        let limit = match request.into_inner().limit {
            0 => usize::MAX,
            n => n as usize,
        };
        let mut all = self.ctx.raft.read(|s| s.list_sweeps()).await.map_err(raft_status)?;
        all.sort_by_key(|s| std::cmp::Reverse(s.submitted_at_ms));
        Ok(Response::new(ListSweepsResponse { sweeps: all.iter().take(limit).map(wire).collect() }))
    }

    #[tracing::instrument(skip_all, fields(sweep_id = request.get_ref().sweep_id))]
    async fn cancel(&self, request: Request<CancelSweepRequest>) -> Result<Response<WireStatus>, Status> {
        let principal = Principal::of(&request)?;
        let id = parse_field("sweep_id", &request.into_inner().sweep_id)?;
        if principal.role == Role::Submitter {
            // A submitter cancels only their own sweeps; an admin cancels any.
            let owner =
                self.ctx.raft.read(move |s| s.sweep(&id).map(|w| w.submitted_by.clone())).await.map_err(raft_status)?;
            if let Some(owner) = owner.filter(|o| o.as_deref() != Some(principal.name.as_str())) {
                return Err(Status::permission_denied(format!(
                    "sweep {id} was submitted by {}; a submitter cancels only their own (an admin may cancel any)",
                    owner.as_deref().unwrap_or("an unauthenticated client")
                )));
            }
        }
        match self
            .ctx
            .raft
            .propose(Command::CancelSweep { sweep_id: id, at_ms: now_ms() })
            .await
            .map_err(raft_status)?
        {
            Outcome::Cancelled { .. } => {}
            Outcome::Rejected(why) => return Err(rejected(&why)),
            other => return Err(unexpected(&other)),
        }
        Ok(Response::new(self.status(id).await?))
    }

    type WatchStream = WatchStream;

    #[tracing::instrument(skip_all, fields(sweep_id = request.get_ref().sweep_id))]
    async fn watch(&self, request: Request<GetSweepRequest>) -> Result<Response<Self::WatchStream>, Status> {
        let id = parse_field("sweep_id", &request.into_inner().sweep_id)?;
        let first = self.status(id).await?;
        let raft = self.ctx.raft.clone();
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        // Sends each change until the sweep ends or the watcher goes away.
        tokio::spawn(async move {
            let mut last = first;
            if tx.send(Ok(last.clone())).await.is_err() {
                return;
            }
            while last.state == SweepState::Running as i32 {
                tokio::time::sleep(Duration::from_millis(250)).await;
                let next = match raft.read(move |s| s.sweep_status(&id)).await {
                    Ok(Some(s)) => wire(&s),
                    Ok(None) => return,
                    Err(e) => {
                        let _ = tx.send(Err(raft_status(e))).await;
                        return;
                    }
                };
                if next != last {
                    if tx.send(Ok(next.clone())).await.is_err() {
                        return;
                    }
                    last = next;
                }
            }
        });
        Ok(Response::new(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))))
    }
}

impl Sweeps {
    async fn status(&self, id: SweepId) -> Result<WireStatus, Status> {
        self.ctx
            .raft
            .read(move |s| s.sweep_status(&id))
            .await
            .map_err(raft_status)?
            .map(|s| wire(&s))
            .ok_or_else(|| Status::not_found(format!("sweep {id}: no such sweep")))
    }
}

/// The trace the sweep's cells join: this submit's span when the coordinator exports
/// traces, else the caller's context as it came.
fn sweep_trace(received: Option<&TraceParent>) -> Option<TraceContext> {
    TraceParent::handed_on(&tracing::Span::current(), received)
        .map(|t| TraceContext { traceparent: t.traceparent().to_string(), tracestate: t.tracestate().to_string() })
}

fn counts_map(c: &Counts) -> std::collections::HashMap<String, u64> {
    c.by_name().into_iter().map(|(k, v)| (k.to_string(), v as u64)).collect()
}

fn wire(s: &SweepStatus) -> WireStatus {
    let state = if s.cancelled_at_ms.is_some() {
        SweepState::Cancelled
    } else if s.counts.n_final() == s.counts.total() {
        SweepState::Done
    } else {
        SweepState::Running
    };
    WireStatus {
        sweep_id: s.id.to_string(),
        name: s.name.clone(),
        state: state as i32,
        cells_by_state: counts_map(&s.counts),
        by_hardware_class: s
            .by_class
            .iter()
            .map(|(class, c)| ClassCounts { hardware_class: class.clone(), cells_by_state: counts_map(c) })
            .collect(),
        submitted_at_ms: s.submitted_at_ms,
    }
}
