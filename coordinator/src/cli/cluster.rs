//! `accelbench cluster status`: where the coordinator's Raft group stands, as the node
//! that answers sees it.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use proto::connect::Coordinators;
use proto::v1::fleet_service_client::FleetServiceClient;
use proto::v1::{ChangeMembershipRequest, ClusterStatusRequest, ClusterStatusResponse, MembershipChange};
use serde_json::json;
use telemetry::propagate::SendTraceContext;
use tracing::Instrument;

use super::listing::{ListFormat, Listing};
use super::sweep::CoordinatorArgs;

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Each coordinator node `--coordinator` names (one row per URL, so give every
    /// node's to see the whole cluster): its role (leader, follower, candidate, or
    /// unreachable), term, commit and applied index (their difference is its apply lag),
    /// the leader it knows and the group's voters. A single coordinator is one voter:
    /// one row, the leader. Exits 1 when no node answers.
    Status(StatusArgs),
    /// Add a coordinator node to the Raft group's voters. Start it first with `accelbench
    /// serve --join --node-id N --peers …` (the running nodes and itself, an empty data
    /// folder, its own node certificate); the leader sends it a snapshot and it votes
    /// from then on. To replace a node without downtime: add the new one, then remove
    /// the old one
    AddNode(AddNodeArgs),
    /// Remove a node from the Raft group's voters (the group keeps at least 3); stop its
    /// process afterwards
    RemoveNode(RemoveNodeArgs),
}

#[derive(Debug, Args)]
pub struct AddNodeArgs {
    /// The new node's Raft id (its `serve --node-id`), unused in the cluster so far
    #[arg(long, value_name = "N")]
    pub node_id: u64,
    /// The new node's URL, where peers and clients reach it (its `--listen` address)
    #[arg(long, value_name = "URL")]
    pub url: String,
    #[command(flatten)]
    pub coordinator: CoordinatorArgs,
}

#[derive(Debug, Args)]
pub struct RemoveNodeArgs {
    /// The Raft id of the node to remove
    #[arg(long, value_name = "N")]
    pub node_id: u64,
    #[command(flatten)]
    pub coordinator: CoordinatorArgs,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// table for people; json (typed JSON lines, `type` = `raft_node`) or csv for scripts
    #[arg(long, value_enum, default_value_t)]
    pub format: ListFormat,
    #[command(flatten)]
    pub coordinator: CoordinatorArgs,
}

impl ClusterCommand {
    pub async fn execute(self) -> anyhow::Result<ExitCode> {
        match self {
            ClusterCommand::Status(a) => status(a).await,
            ClusterCommand::AddNode(a) => {
                change(&a.coordinator, MembershipChange::Add, a.node_id, a.url.trim().to_string()).await
            }
            ClusterCommand::RemoveNode(a) => {
                change(&a.coordinator, MembershipChange::Remove, a.node_id, String::new()).await
            }
        }
    }
}

async fn status(a: StatusArgs) -> anyhow::Result<ExitCode> {
    let coordinators = a.coordinator.coordinators()?;
    let auth = a.coordinator.credentials.auth()?;
    let mut rows = Vec::new();
    let mut answered = 0;
    for url in coordinators.urls() {
        let answer = async {
            let channel = Coordinators::parse(url)?.connect(&auth, SendTraceContext).await?;
            anyhow::Ok(FleetServiceClient::new(channel).cluster_status(ClusterStatusRequest {}).await?.into_inner())
        }
        .instrument(tracing::info_span!("cli", otel.name = "cluster status", url))
        .await;
        rows.push(match answer {
            Ok(answer) => {
                answered += 1;
                node_row(url, answer)
            }
            Err(e) => {
                eprintln!("accelbench: {e:#}");
                let mut row = vec![json!(url), json!(null), json!("unreachable")];
                row.resize(COLUMNS.len(), json!(null));
                row
            }
        });
    }
    let listing = Listing { kind: "raft_node", columns: COLUMNS.to_vec(), rows };
    listing.print(a.format, &mut std::io::stdout().lock())?;
    Ok(if answered > 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// Proposes a membership change to the leader; prints the voters once it is applied.
async fn change(
    coordinator: &CoordinatorArgs,
    change: MembershipChange,
    node_id: u64,
    url: String,
) -> anyhow::Result<ExitCode> {
    let answer = async {
        let mut c = coordinator.fleet().await?;
        let request = ChangeMembershipRequest { change: change as i32, node_id, url };
        anyhow::Ok(c.change_membership(request).await?.into_inner())
    }
    .instrument(tracing::info_span!("cli", otel.name = "cluster change", node_id))
    .await?;
    let voters: Vec<String> = answer.voters.iter().map(u64::to_string).collect();
    println!("voters: {}", voters.join(", "));
    Ok(ExitCode::SUCCESS)
}

const COLUMNS: [&str; 10] = [
    "url",
    "node_id",
    "role",
    "term",
    "commit_index",
    "applied_index",
    "apply_lag",
    "leader_id",
    "leader_url",
    "voters",
];

/// One node's answer as a row of [`COLUMNS`].
fn node_row(url: &str, answer: ClusterStatusResponse) -> Vec<serde_json::Value> {
    let node = answer.node.unwrap_or_default();
    vec![
        json!(url),
        json!(node.node_id),
        json!(node.role),
        json!(node.term),
        json!(node.commit_index),
        json!(node.applied_index),
        json!(node.commit_index.saturating_sub(node.applied_index)),
        json!(answer.leader_id),
        json!(answer.leader_url),
        json!(answer.voters),
    ]
}
