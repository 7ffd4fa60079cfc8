//! `accelbench agents list`: the agents a coordinator knows.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use proto::v1::ListAgentsRequest;
use serde_json::json;
use tracing::Instrument;

use super::listing::{ListFormat, Listing};
use super::sweep::CoordinatorArgs;

#[derive(Debug, Subcommand)]
pub enum AgentsCommand {
    /// List registered agents, their hardware classes, liveness and leases
    List(ListArgs),
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
        let AgentsCommand::List(a) = self;
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
}
