//! The fleet service: what users ask about the agents (who is registered, on which
//! hardware, alive or not, holding how many leases).

use proto::convert::parse_field;
use proto::v1::fleet_service_server::FleetService;
use proto::v1::{
    AgentInfo, ClusterStatusRequest, ClusterStatusResponse, ListAgentsRequest, ListAgentsResponse, RaftNodeStatus,
    RemoveAgentRequest, RemoveAgentResponse,
};
use shared::ids::AgentId;
use tonic::{Request, Response, Status};

use super::errors::{raft_status, rejected, unexpected};
use super::now_ms;
use super::Ctx;
use crate::state::{Command, Outcome};

pub struct Fleet {
    pub ctx: Ctx,
}

#[tonic::async_trait]
impl FleetService for Fleet {
    #[tracing::instrument(skip_all)]
    async fn list_agents(&self, _: Request<ListAgentsRequest>) -> Result<Response<ListAgentsResponse>, Status> {
        let agents = self
            .ctx
            .raft
            .read(|s| {
                s.agents()
                    .map(|a| {
                        (
                            a.id.clone(),
                            a.devices.iter().map(|d| d.class.clone()).collect::<Vec<_>>(),
                            a.labels.clone(),
                            a.leases.len(),
                        )
                    })
                    .collect::<Vec<_>>()
            })
            .await
            .map_err(raft_status)?;
        let agents = agents
            .into_iter()
            .map(|(id, classes, labels, n_leases)| {
                let ago = self.ctx.liveness.last_seen_ago(id.as_str());
                let alive = self.ctx.alive(ago);
                AgentInfo {
                    last_seen_ms_ago: ago.map(|d| d.as_millis() as u64),
                    alive,
                    agent_id: id.to_string(),
                    hardware_classes: classes,
                    labels: labels.into_iter().collect(),
                    n_leases: n_leases as u32,
                }
            })
            .collect();
        Ok(Response::new(ListAgentsResponse { agents, server_time_ms: super::now_ms() }))
    }

    #[tracing::instrument(skip_all, fields(agent_id = %request.get_ref().agent_id.chars().take(64).collect::<String>()))]
    async fn remove_agent(
        &self,
        request: Request<RemoveAgentRequest>,
    ) -> Result<Response<RemoveAgentResponse>, Status> {
        let agent_id: AgentId = parse_field("agent_id", &request.into_inner().agent_id)?;
        let cmd = Command::RemoveAgent { agent_id: agent_id.clone(), at_ms: now_ms() };
        match self.ctx.raft.propose(cmd).await.map_err(raft_status)? {
            Outcome::AgentRemoved { released } => {
                self.ctx.liveness.forget(agent_id.as_str());
                tracing::warn!(%agent_id, leases_ended = released.len(), "agent removed by an operator");
                Ok(Response::new(RemoveAgentResponse { leases_ended: released.len() as u32 }))
            }
            Outcome::Rejected(why) => Err(rejected(&why)),
            other => Err(unexpected(&other)),
        }
    }

    #[tracing::instrument(skip_all)]
    async fn cluster_status(
        &self,
        _: Request<ClusterStatusRequest>,
    ) -> Result<Response<ClusterStatusResponse>, Status> {
        let now = self.ctx.raft.status();
        Ok(Response::new(ClusterStatusResponse {
            node: Some(RaftNodeStatus {
                node_id: now.node_id,
                role: now.role.to_string(),
                term: now.term,
                commit_index: now.commit_index,
                applied_index: now.applied_index,
            }),
            leader_url: self.ctx.raft.url_of(now.leader_id).unwrap_or_default().to_string(),
            leader_id: now.leader_id,
            voters: now.voters,
            server_time_ms: now_ms(),
        }))
    }
}
