//! `accelbench query "SQL"`: read-only SQL over the warehouse views.

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use super::common::WarehouseArgs;
use crate::query::render::{self, Format};
use crate::query::QueryLimits;

#[derive(Debug, Args)]
#[command(long_about = "Run one read-only SQL SELECT over the warehouse. Views: results, samples, \
agents, sweeps, cells (the committed Parquet files), latest_results, speedup_vs_cpu and \
compatibility_matrix. The query cannot read other files, write, ATTACH, INSTALL/LOAD \
extensions or change settings: such statements are refused before they run. Each query is \
bounded in time (--timeout), memory (--memory-limit, spilling beyond it to a private \
temporary directory of at most 8 GiB) and rows returned (--max-rows). Columns and \
units: docs/SCHEMA.md.\n\nExample:\n  accelbench query \"SELECT model, batch, latency_p50_ns/1e6 AS p50_ms FROM latest_results\"")]
pub struct QueryArgs {
    /// One SQL SELECT statement
    pub sql: String,
    #[command(flatten)]
    pub warehouse: WarehouseArgs,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Stop the query after this many seconds
    #[arg(long, value_name = "SECONDS", default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub timeout: u64,
    /// DuckDB's memory limit, MiB (beyond it, it spills to a private temporary directory)
    #[arg(long, value_name = "MIB", default_value_t = 2048, value_parser = clap::value_parser!(u64).range(64..=1_048_576))]
    pub memory_limit: u64,
    /// Most rows the query may return
    #[arg(long, value_name = "N", default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    pub max_rows: u64,
}

pub async fn execute(args: QueryArgs) -> anyhow::Result<ExitCode> {
    let limits = QueryLimits {
        timeout: Duration::from_secs(args.timeout),
        memory_mb: args.memory_limit,
        max_rows: usize::try_from(args.max_rows).unwrap_or(usize::MAX),
        ..QueryLimits::default()
    };
    let engine = args.warehouse.query_engine_with(limits).await?;
    let rows = engine.query(&args.sql)?;
    render::write(&mut std::io::stdout().lock(), &rows, args.format)?;
    Ok(ExitCode::SUCCESS)
}
