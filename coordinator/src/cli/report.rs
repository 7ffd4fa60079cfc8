//! `accelbench report performance|hardware|compatibility`: the standard reports.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Args;

use super::common::WarehouseArgs;
use crate::report::{self, Format, Kind};

#[derive(Debug, Args)]
#[command(long_about = "Render a standard report from the warehouse.\n\n\
performance: latency p50/p99 with the CI of the median, throughput, tokens/s, peak memory and \
energy per cell (newest result per series).\nhardware: each hardware class's throughput per \
model, precision and batch.\ncompatibility: model family × hardware class: ok, unsupported, \
failed or untested, with the best throughput.\n\nFormats: md (default), csv and json for \
pasting and machines; html is one self-contained page with SVG charts.\n\nExample:\n  \
accelbench report performance --format html --output perf.html")]
pub struct ReportArgs {
    /// Which report
    #[arg(value_enum)]
    pub kind: Kind,
    /// Only this sweep
    #[arg(long, value_name = "ID")]
    pub sweep: Option<String>,
    #[arg(long, value_enum, default_value_t = Format::Md)]
    pub format: Format,
    /// Write to FILE instead of stdout
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub warehouse: WarehouseArgs,
}

pub async fn execute(args: ReportArgs) -> anyhow::Result<ExitCode> {
    if let Some(s) = &args.sweep {
        // Ids are UUIDs or `local`/`imported:<sha>` names: nothing that needs quoting.
        if !s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':')) {
            bail!("--sweep {s}: not a sweep id");
        }
    }
    let engine = args.warehouse.query_engine().await?;
    let bytes = report::render(&engine, args.kind, args.sweep.as_deref(), args.format)?;
    match &args.output {
        Some(path) => {
            std::fs::write(path, &bytes).with_context(|| format!("writing {}", path.display()))?;
            eprintln!("wrote {}", path.display());
        }
        None => std::io::stdout().lock().write_all(&bytes)?,
    }
    Ok(ExitCode::SUCCESS)
}
