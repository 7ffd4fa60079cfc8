//! `accelbench warehouse gc|compact|files`: maintenance of the warehouse.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};

use super::common::WarehouseArgs;
use crate::warehouse::schema::Table;

#[derive(Debug, Subcommand)]
pub enum WarehouseCommand {
    /// Delete files no commit lists (left by a crash between writing and committing)
    Gc(GcArgs),
    /// Merge the small files of every partition into one per partition
    Compact(CompactArgs),
    /// List the committed files of each table
    Files(FilesArgs),
}

#[derive(Debug, Args)]
pub struct GcArgs {
    /// Only delete uncommitted files older than this many seconds (never race a writer)
    #[arg(long, default_value_t = 3600)]
    pub min_age_seconds: u64,
    #[command(flatten)]
    pub warehouse: WarehouseArgs,
}

#[derive(Debug, Args)]
pub struct CompactArgs {
    #[command(flatten)]
    pub warehouse: WarehouseArgs,
}

#[derive(Debug, Args)]
pub struct FilesArgs {
    #[command(flatten)]
    pub warehouse: WarehouseArgs,
}

impl WarehouseCommand {
    pub async fn execute(self) -> anyhow::Result<ExitCode> {
        match self {
            WarehouseCommand::Gc(a) => {
                let wh = a.warehouse.open().await?;
                let out = wh.gc(Duration::from_secs(a.min_age_seconds)).await?;
                println!("{out:?}");
            }
            WarehouseCommand::Compact(a) => {
                let wh = a.warehouse.open().await?;
                for table in Table::ALL {
                    for partition in wh.partitions(table).await? {
                        let out = wh.compact(table, &partition).await?;
                        println!("{} {partition}: {out:?}", table.as_str());
                    }
                }
            }
            WarehouseCommand::Files(a) => {
                let wh = a.warehouse.open().await?;
                for table in Table::ALL {
                    for f in wh.live_files(table).await? {
                        println!("{}\t{f:?}", table.as_str());
                    }
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}
