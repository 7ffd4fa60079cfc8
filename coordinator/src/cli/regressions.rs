//! `accelbench regressions`: which series got slower, from which run, by how much, and
//! what changed at that run.

use std::process::ExitCode;

use analysis::regressions::DetectOptions;
use anyhow::{bail, Context};
use clap::Args;

use super::common::WarehouseArgs;
use crate::answers::regressions;
use crate::answers::selection::Selection;
use crate::query::render::{self, Format};

#[derive(Debug, Args)]
#[command(long_about = "Find the series that got slower.\n\n\
A series is one cell (model, hardware class, batch, sequence length, precision, mode, engine, \
weights) over time; each ok run contributes its median latency. Two checks find changes: change \
points anywhere in the series (E-divisive means, a permutation test decides each one), and the \
latest 3 runs against the runs before them since the last change point (a one-sided t-test on \
the logarithms of the medians at p <= 0.001, confirmed by an exact rank test at p <= 0.005, once \
there are 9 such runs), which sees a slowdown \
within 3 runs where the permutation test cannot yet. A change to slower runs is an alarm when \
the median after it is at least --min-effect above the median before it. Each alarm names \
the first bad run, the ratio after/before with a 95% bootstrap interval, and what changed in \
provenance (agent or engine version, git commit, machine fingerprint) at that run.\n\n\
Exit status: 0, or 1 when there is an alarm (a CI gate), 2 on an error.\n\n\
Examples:\n  accelbench regressions\n  accelbench regressions --since 30d --series model=bert-base-uncased\n  \
accelbench regressions --record   # also commit the alarms to the warehouse's `alarms` table")]
pub struct RegressionsArgs {
    /// Only runs started since this date (YYYY-MM-DD, UTC) or this many days ago (30d)
    #[arg(long, value_name = "DATE|Nd")]
    pub since: Option<String>,
    /// Only these series: `all`, a sweep id, or column=value[,column=value…] filters
    #[arg(long, default_value = "all", value_name = "FILTER")]
    pub series: String,
    /// Smallest slowdown that is an alarm (0.02: 2 %)
    #[arg(long, default_value_t = 0.02, value_name = "FRACTION")]
    pub min_effect: f64,
    /// Fewest runs on each side of a change point
    #[arg(long, default_value_t = 3, value_name = "RUNS")]
    pub min_segment: usize,
    /// Also commit the alarms to the warehouse's `alarms` table
    #[arg(long)]
    pub record: bool,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    #[command(flatten)]
    pub warehouse: WarehouseArgs,
}

pub async fn execute(args: RegressionsArgs) -> anyhow::Result<ExitCode> {
    let now_ms = chrono::Utc::now().timestamp_millis();
    let since_ms = args.since.as_deref().map(|s| since(s, now_ms)).transpose()?;
    let selection = Selection::parse(&args.series).context("--series")?;
    if !(args.min_effect.is_finite() && (0.0..1.0).contains(&args.min_effect)) {
        bail!("--min-effect {}: expected a fraction in [0, 1), e.g. 0.02 for 2 %", args.min_effect);
    }
    if args.min_segment < 2 {
        bail!("--min-segment {}: at least 2 runs on each side are needed to call a change", args.min_segment);
    }
    let mut options = DetectOptions::DEFAULT;
    options.min_effect = args.min_effect;
    options.change_points.min_segment = args.min_segment;
    let engine = args.warehouse.query_engine().await?;
    let findings = tokio::task::block_in_place(|| -> anyhow::Result<_> {
        let series = regressions::load(&engine, &selection, since_ms)?;
        if series.is_empty() {
            bail!(
                "no ok runs match --series {selection}{}; {}",
                args.since.as_deref().map_or(String::new(), |s| format!(" since {s}")),
                crate::answers::compare::describe_warehouse(&engine)?
            );
        }
        Ok(regressions::find(series, &options))
    })?;
    let rows = regressions::to_rows(&findings.found, now_ms, &options)?;
    render::write(&mut std::io::stdout().lock(), &rows, args.format)?;
    eprintln!(
        "{} series, {} alarms; {} series too short to judge{}",
        findings.n_series,
        findings.found.len(),
        findings.skipped.len(),
        findings.skipped.first().map_or(String::new(), |(c, why)| format!(" (e.g. {}: {why})", c.label()))
    );
    if args.record && !findings.found.is_empty() {
        let wh = args.warehouse.open().await?;
        let batch = rows.batches.into_iter().next().context("no rows")?;
        let out = wh.write_alarms(batch, now_ms).await?;
        eprintln!("recorded {} alarms in the warehouse's `alarms` table", out.new);
    }
    Ok(if findings.found.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// `--since`: a date (midnight UTC) or a number of days before `now_ms`.
fn since(text: &str, now_ms: i64) -> anyhow::Result<i64> {
    if let Some(days) = text.strip_suffix('d') {
        let days: u32 =
            days.parse().with_context(|| format!("--since {text}: expected a number of days such as 30d"))?;
        return Ok(now_ms - i64::from(days) * 86_400_000);
    }
    let date = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .with_context(|| format!("--since {text}: expected YYYY-MM-DD or a number of days such as 30d"))?;
    Ok(date.and_hms_opt(0, 0, 0).context("midnight")?.and_utc().timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_dates_and_days_and_names_anything_else() {
        assert_eq!(since("1970-01-02", 0).unwrap(), 86_400_000);
        assert_eq!(since("2d", 10 * 86_400_000).unwrap(), 8 * 86_400_000);
        for bad in ["", "yesterday", "-3d", "2026-13-01", "99999999999d"] {
            assert!(since(bad, 0).is_err(), "{bad:?}");
        }
    }
}
