//! `accelbench query "SQL"`: read-only SQL over the warehouse views.

use std::process::ExitCode;

use clap::Args;

use super::common::WarehouseArgs;
use crate::query::render::{self, Format};

#[derive(Debug, Args)]
#[command(long_about = "Run one read-only SQL SELECT over the warehouse. Views: results, samples, \
agents, sweeps, cells (the committed Parquet files), latest_results, speedup_vs_cpu and \
compatibility_matrix. The query cannot read other files, write, ATTACH, INSTALL/LOAD \
extensions or change settings: such statements are refused before they run. Columns and \
units: docs/SCHEMA.md.\n\nExample:\n  accelbench query \"SELECT model, batch, latency_p50_ns/1e6 AS p50_ms FROM latest_results\"")]
pub struct QueryArgs {
    /// One SQL SELECT statement
    pub sql: String,
    #[command(flatten)]
    pub warehouse: WarehouseArgs,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

pub async fn execute(args: QueryArgs) -> anyhow::Result<ExitCode> {
    let engine = args.warehouse.query_engine().await?;
    let rows = engine.query(&args.sql)?;
    render::write(&mut std::io::stdout().lock(), &rows, args.format)?;
    Ok(ExitCode::SUCCESS)
}
