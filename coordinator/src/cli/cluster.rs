//! `accelbench cluster status`: where the coordinator's Raft group stands, as the node
//! that answers sees it.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use proto::connect::Coordinators;
use proto::v1::fleet_service_client::FleetServiceClient;
use proto::v1::{ClusterStatusRequest, ClusterStatusResponse};
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
