//! `accelbench compare BASE NEW`: is NEW faster or slower than BASE, cell by cell?

use std::process::ExitCode;

use analysis::compare::{CompareOptions, Verdict};
use anyhow::{bail, Context};
use clap::Args;

use super::common::WarehouseArgs;
use crate::answers::compare::{self, Coordinates};
use crate::answers::selection::Selection;
use crate::query::render::{self, Format};

#[derive(Debug, Args)]
#[command(long_about = "Compare the same cells in two selections of results.\n\n\
BASE and NEW are each a sweep id (or a local run's id), `all`, or filters \
column=value[,column=value…] on sweep_id, model, hardware_class, precision, mode, engine, \
engine_version, agent_version, git_commit, fingerprint_hash, agent_id, origin, weights_source. \
Cells are matched on model, hardware class, batch, sequence length, precision, mode, engine and \
weights; in each selection a cell's newest ok result is used.\n\n\
Per pair: the ratio of medians NEW/BASE with a 95% bootstrap interval from the raw samples \
(percentile bootstrap, each side resampled independently; fixed seed, so the same data give the \
same answer), a verdict, and what differs in provenance. The verdict is `slower` when the whole \
interval is above 1+threshold, `faster` when below 1-threshold, `same` when inside both bounds, \
else `inconclusive`.\n\n\
Exit status: 0, or 1 when any pair is slower (a CI gate), 2 on an error.\n\n\
Examples:\n  accelbench compare 0190c6a2-… 0190c6b7-…\n  \
accelbench compare engine_version=0.9.1 engine_version=0.10.0 --threshold 0.05 --format md\n  \
accelbench compare all all --warehouse old-data --new-warehouse new-data")]
pub struct CompareArgs {
    /// The baseline: a sweep id, `all`, or column=value filters
    pub base: String,
    /// What is judged against it, in the same forms
    pub new: String,
    /// Relative change below which a difference counts as none (0.02: ±2 %)
    #[arg(long, default_value_t = 0.02, value_name = "FRACTION")]
    pub threshold: f64,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    #[command(flatten)]
    pub warehouse: WarehouseArgs,
    /// Read NEW from this warehouse instead (a folder or URL)
    #[arg(long, value_name = "URL")]
    pub new_warehouse: Option<String>,
}

pub async fn execute(args: CompareArgs) -> anyhow::Result<ExitCode> {
    if !(args.threshold.is_finite() && (0.0..1.0).contains(&args.threshold)) {
        bail!("--threshold {}: expected a fraction in [0, 1), e.g. 0.02 for ±2 %", args.threshold);
    }
    let base_sel = Selection::parse(&args.base).context("BASE")?;
    let new_sel = Selection::parse(&args.new).context("NEW")?;
    let base_engine = args.warehouse.query_engine().await?;
    let new_engine = match &args.new_warehouse {
        Some(url) => Some(WarehouseArgs { warehouse: url.clone() }.query_engine().await?),
        None => None,
    };
    let new_engine_ref = new_engine.as_ref().unwrap_or(&base_engine);
    let options = CompareOptions { threshold: args.threshold, ..CompareOptions::DEFAULT };
    let matched = tokio::task::block_in_place(|| -> anyhow::Result<_> {
        let base = compare::load(&base_engine, &base_sel)?;
        if base.is_empty() {
            bail!("BASE `{base_sel}` matches no ok result; {}", compare::describe_warehouse(&base_engine)?);
        }
        let new = compare::load(new_engine_ref, &new_sel)?;
        if new.is_empty() {
            bail!("NEW `{new_sel}` matches no ok result; {}", compare::describe_warehouse(new_engine_ref)?);
        }
        Ok(compare::judge(base, new, &options))
    })?;
    if matched.pairs.is_empty() {
        bail!(
            "BASE and NEW have no cell in common.\n  only in BASE: {}\n  only in NEW: {}",
            some(&matched.only_base),
            some(&matched.only_new)
        );
    }
    render::write(&mut std::io::stdout().lock(), &compare::to_rows(&matched.pairs)?, args.format)?;
    summarize(&matched);
    let slower = matched.pairs.iter().any(|p| p.verdict() == Some(Verdict::Slower));
    Ok(if slower { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// Counts by verdict, and the cells only one side has, on stderr (stdout is the rows).
fn summarize(matched: &compare::Matched) {
    eprintln!("{}", compare::summary(matched));
    if !matched.only_base.is_empty() || !matched.only_new.is_empty() {
        eprintln!(
            "not compared: {} cells only in BASE ({}), {} only in NEW ({})",
            matched.only_base.len(),
            some(&matched.only_base),
            matched.only_new.len(),
            some(&matched.only_new)
        );
    }
}

/// A few cells, named the way a person reads them.
fn some(cells: &[Coordinates]) -> String {
    if cells.is_empty() {
        return "none".into();
    }
    let shown: Vec<String> = cells.iter().take(5).map(Coordinates::label).collect();
    let more = if cells.len() > 5 { format!(", … {} more", cells.len() - 5) } else { String::new() };
    format!("{}{more}", shown.join(", "))
}
