//! `accelbench agents list|remove`: the agents a coordinator knows, and forgetting one.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use proto::v1::{ListAgentsRequest, RemoveAgentRequest};
use serde_json::json;
use tracing::Instrument;

use super::listing::{ListFormat, Listing};
use super::sweep::CoordinatorArgs;

#[derive(Debug, Subcommand)]
pub enum AgentsCommand {
    /// List registered agents, their hardware classes, liveness and leases
    List(ListArgs),
    /// Forget agents: their leases end (and are retried on other agents) and their
    /// hardware classes no longer receive new cells unless another agent has them. An
    /// agent that is still running registers again on its next call; use this for dead,
    /// renamed or fake agents.
    Remove(RemoveArgs),
}

#[derive(Debug, Args)]
pub struct RemoveArgs {
    /// Agent ids, as `accelbench agents list` shows them
    #[arg(required = true, value_name = "AGENT_ID")]
    pub agent_ids: Vec<String>,
    #[command(flatten)]
    pub coordinator: CoordinatorArgs,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// table for people; json (typed JSON lines, `type` = `agent`) or csv for scripts
    #[arg(long, value_enum, default_value_t)]
    pub format: ListFormat,
    #[command(flatten)]
    pub coordinator: CoordinatorArgs,
}

impl AgentsCommand {
    pub async fn execute(self) -> anyhow::Result<ExitCode> {
        match self {
            AgentsCommand::List(a) => list(a).await,
            AgentsCommand::Remove(a) => remove(a).await,
        }
    }
}

async fn remove(a: RemoveArgs) -> anyhow::Result<ExitCode> {
    let mut c = a.coordinator.fleet().await?;
    for agent_id in a.agent_ids {
        let ended = async { c.remove_agent(RemoveAgentRequest { agent_id: agent_id.clone() }).await }
            .instrument(tracing::info_span!("cli", otel.name = "agents remove"))
            .await
            .map_err(|e| anyhow::anyhow!("removing agent {agent_id}: {}", e.message()))?
            .into_inner()
            .leases_ended;
        println!("removed agent {agent_id} ({ended} lease(s) ended)");
    }
    Ok(ExitCode::SUCCESS)
}

async fn list(a: ListArgs) -> anyhow::Result<ExitCode> {
    let agents = async {
        let mut c = a.coordinator.fleet().await?;
        anyhow::Ok(c.list_agents(ListAgentsRequest {}).await?.into_inner().agents)
    }
    .instrument(tracing::info_span!("cli", otel.name = "agents list"))
    .await?;
    let rows = agents
        .into_iter()
        .map(|a| {
            let labels: std::collections::BTreeMap<String, String> = a.labels.into_iter().collect();
            vec![
                json!(a.agent_id),
                json!(a.hardware_classes),
                json!(a.alive),
                json!(a.last_seen_ms_ago),
                json!(a.n_leases),
                json!(labels),
            ]
        })
        .collect();
    let listing = Listing {
        kind: "agent",
        columns: vec!["agent_id", "hardware_classes", "alive", "last_seen_ms_ago", "leases", "labels"],
        rows,
    };
    listing.print(a.format, &mut std::io::stdout().lock())?;
    Ok(ExitCode::SUCCESS)
}
