//! The fleet service: what users ask about the agents (who is registered, on which
//! hardware, alive or not, holding how many leases).

use proto::convert::parse_field;
use proto::v1::fleet_service_server::FleetService;
use proto::v1::{
    AgentInfo, ChangeMembershipRequest, ChangeMembershipResponse, ClusterStatusRequest, ClusterStatusResponse,
    ListAgentsRequest, ListAgentsResponse, MembershipChange, RaftNodeStatus, RemoveAgentRequest, RemoveAgentResponse,
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

    #[tracing::instrument(skip_all, fields(node_id = request.get_ref().node_id))]
    async fn change_membership(
        &self,
        request: Request<ChangeMembershipRequest>,
    ) -> Result<Response<ChangeMembershipResponse>, Status> {
        let r = request.into_inner();
        let url = check_membership_change(&r, &self.ctx.raft.status().voters, self.ctx.config.peers.is_empty())?;
        let voters = self.ctx.raft.change_membership(r.node_id, url.as_deref()).await.map_err(raft_status)?;
        tracing::warn!(node_id = r.node_id, ?url, ?voters, "raft membership changed by an operator");
        Ok(Response::new(ChangeMembershipResponse { voters }))
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
            leader_url: self.ctx.raft.url_of(now.leader_id).unwrap_or_default(),
            leader_id: now.leader_id,
            voters: now.voters,
            server_time_ms: now_ms(),
        }))
    }
}

/// Fewest voters a cluster may shrink to: a majority of fewer survives no loss.
const MIN_VOTERS: usize = 3;

/// Checks a membership change against the voters as this node knows them; the URL to
/// record for an added node (`None` to remove).
fn check_membership_change(r: &ChangeMembershipRequest, voters: &[u64], alone: bool) -> Result<Option<String>, Status> {
    if alone {
        return Err(Status::failed_precondition(
            "this coordinator runs alone (no --peers): membership changes need a cluster of at least 3",
        ));
    }
    if r.node_id == 0 {
        return Err(Status::invalid_argument("node_id: 0 is not a node id"));
    }
    match MembershipChange::try_from(r.change) {
        Ok(MembershipChange::Add) => {
            if voters.contains(&r.node_id) {
                return Err(Status::already_exists(format!("node {} is a voter already ({voters:?})", r.node_id)));
            }
            let url = r.url.trim();
            let one = proto::connect::Coordinators::parse(url)
                .map_err(|e| Status::invalid_argument(format!("url: {e:#}")))?;
            if one.urls().len() != 1 {
                return Err(Status::invalid_argument(format!("url: one URL, not {}", one.urls().len())));
            }
            Ok(Some(url.to_string()))
        }
        Ok(MembershipChange::Remove) => {
            if !voters.contains(&r.node_id) {
                return Err(Status::not_found(format!("node {} is not a voter ({voters:?})", r.node_id)));
            }
            if voters.len() <= MIN_VOTERS {
                return Err(Status::failed_precondition(format!(
                    "removing node {} would leave {} voters, and a cluster needs {MIN_VOTERS} to survive a loss: \
                     add its replacement first",
                    r.node_id,
                    voters.len() - 1
                )));
            }
            Ok(None)
        }
        _ => Err(Status::invalid_argument("change: expected ADD or REMOVE")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    #[test]
    fn membership_changes_are_checked_before_raft_sees_them() {
        let add = |id, url: &str| ChangeMembershipRequest {
            change: MembershipChange::Add as i32,
            node_id: id,
            url: url.into(),
        };
        let remove =
            |id| ChangeMembershipRequest { change: MembershipChange::Remove as i32, node_id: id, url: "".into() };
        let three = [1, 2, 3];
        let code = |r: &ChangeMembershipRequest, voters: &[u64]| {
            check_membership_change(r, voters, false).map_err(|s| s.code())
        };
        assert_eq!(code(&add(4, " https://c4:7070 "), &three), Ok(Some("https://c4:7070".into())));
        assert_eq!(code(&add(2, "https://c2:7070"), &three), Err(Code::AlreadyExists));
        assert_eq!(code(&add(0, "https://c0:7070"), &three), Err(Code::InvalidArgument));
        for bad in ["", "c4:7070", "https://a:1,https://b:2", "ftp://c4:1"] {
            assert_eq!(code(&add(4, bad), &three), Err(Code::InvalidArgument), "{bad:?}");
        }
        assert_eq!(code(&remove(2), &three), Err(Code::FailedPrecondition), "3 voters stay 3");
        assert_eq!(code(&remove(2), &[1, 2, 3, 4]), Ok(None));
        assert_eq!(code(&remove(9), &[1, 2, 3, 4]), Err(Code::NotFound));
        assert_eq!(code(&ChangeMembershipRequest::default(), &three), Err(Code::InvalidArgument));
        let alone = check_membership_change(&add(2, "https://c2:7070"), &[1], true).unwrap_err();
        assert!(alone.code() == Code::FailedPrecondition && alone.message().contains("runs alone"), "{alone:?}");
    }
}
