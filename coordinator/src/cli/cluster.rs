//! `accelbench cluster status`: where the coordinator's Raft group stands, as the node
//! that answers sees it.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use proto::v1::ClusterStatusRequest;
use serde_json::json;
use tracing::Instrument;

use super::listing::{ListFormat, Listing};
use super::sweep::CoordinatorArgs;

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// The answering coordinator node: its role (leader, follower, candidate), term,
    /// commit and applied index (their difference is its apply lag), the leader it knows
    /// and the group's voters. Today a coordinator is a single voter: one row, the leader.
    Status(StatusArgs),
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
        }
    }
}

async fn status(a: StatusArgs) -> anyhow::Result<ExitCode> {
    let answer = async {
        let mut c = a.coordinator.fleet().await?;
        anyhow::Ok(c.cluster_status(ClusterStatusRequest {}).await?.into_inner())
    }
    .instrument(tracing::info_span!("cli", otel.name = "cluster status"))
    .await?;
    let node = answer.node.unwrap_or_default();
    let listing = Listing {
        kind: "raft_node",
        columns: vec!["node_id", "role", "term", "commit_index", "applied_index", "apply_lag", "leader_id", "voters"],
        rows: vec![vec![
            json!(node.node_id),
            json!(node.role),
            json!(node.term),
            json!(node.commit_index),
            json!(node.applied_index),
            json!(node.commit_index.saturating_sub(node.applied_index)),
            json!(answer.leader_id),
            json!(answer.voters),
        ]],
    };
    listing.print(a.format, &mut std::io::stdout().lock())?;
    Ok(ExitCode::SUCCESS)
}
