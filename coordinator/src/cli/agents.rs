//! `accelbench agents list`: the agents a coordinator knows.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use proto::v1::ListAgentsRequest;
use tracing::Instrument;

use super::sweep::CoordinatorArgs;

#[derive(Debug, Subcommand)]
pub enum AgentsCommand {
    /// List registered agents, their hardware classes, liveness and leases
    List(ListArgs),
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub coordinator: CoordinatorArgs,
}

impl AgentsCommand {
    pub async fn execute(self) -> anyhow::Result<ExitCode> {
        let AgentsCommand::List(a) = self;
        let agents = async {
            let mut c = a.coordinator.sweeps().await?;
            anyhow::Ok(c.list_agents(ListAgentsRequest {}).await?.into_inner().agents)
        }
        .instrument(tracing::info_span!("cli", otel.name = "agents list"))
        .await?;
        let mut t = Table::new();
        t.load_preset(UTF8_FULL_CONDENSED);
        t.set_header(["agent", "hardware classes", "alive", "last seen", "leases", "labels"]);
        for a in agents {
            let mut labels: Vec<String> = a.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            labels.sort();
            t.add_row(vec![
                a.agent_id,
                a.hardware_classes.join("\n"),
                if a.alive { "yes" } else { "no" }.to_string(),
                a.last_seen_ms_ago.map(|ms| format!("{:.1} s ago", ms as f64 / 1e3)).unwrap_or_else(|| "-".into()),
                a.n_leases.to_string(),
                labels.join(","),
            ]);
        }
        println!("{t}");
        Ok(ExitCode::SUCCESS)
    }
}
