//! `accelbench recommend`: which hardware class should run a model.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Args;

use super::common::WarehouseArgs;
use crate::answers::predict;
use crate::answers::recommend::{self, Ask, Objective};
use crate::query::render::{self, Format};

#[derive(Debug, Args)]
#[command(long_about = "Rank the hardware classes for a model by an objective, from measured results.\n\n\
Each class is ranked by its best configuration (batch, precision, engine) among its newest ok \
results that meet the constraints; a class that cannot meet them, or has no ok result, is listed \
on stderr with the reason. A calibrated class with no result of the model is ranked from \
predictions (as `accelbench predict` makes them), after every measured class, with `source` = \
predicted and the 80% latency interval; a predicted configuration meets --max-memory-gib only \
if its interval's high end does. --measured-only leaves predictions out.\n\n\
Objectives: latency (lowest p50 of one batch), throughput (items/s), throughput-per-watt (needs \
measured power), cost (items per unit of money; needs --prices).\n\n\
The prices file is TOML: a table of price per hour by hardware class, e.g.\n  \
[price_per_hour]\n  \"cuda/NVIDIA H100 80GB HBM3\" = 2.49\n  \"cpu/AMD EPYC 7B13\" = 0.12\n\n\
Examples:\n  accelbench recommend --model bert-base-uncased --objective throughput --max-latency-ms 50\n  \
accelbench recommend --model llama-tiny --objective cost --prices prices.toml --batch 8")]
pub struct RecommendArgs {
    /// The catalog model
    #[arg(long)]
    pub model: String,
    #[arg(long, value_enum, default_value_t = Objective::Throughput)]
    pub objective: Objective,
    /// Only this batch size
    #[arg(long)]
    pub batch: Option<u32>,
    /// Only this precision (fp32, bf16, q4_0, …)
    #[arg(long)]
    pub precision: Option<String>,
    /// inference or training
    #[arg(long, default_value = "inference")]
    pub mode: String,
    /// Leave out configurations whose median latency of one batch is above this
    #[arg(long, value_name = "MS")]
    pub max_latency_ms: Option<f64>,
    /// Leave out configurations whose peak memory (device memory on accelerators) is above this
    #[arg(long, value_name = "GIB")]
    pub max_memory_gib: Option<f64>,
    /// Price per hour of each class, for --objective cost
    #[arg(long, value_name = "FILE")]
    pub prices: Option<PathBuf>,
    /// Rank measured configurations only (no predictions for unmeasured classes)
    #[arg(long)]
    pub measured_only: bool,
    /// The engine predictions learn from and are made for
    #[arg(long, default_value = "candle")]
    pub engine: String,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    #[command(flatten)]
    pub warehouse: WarehouseArgs,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Prices {
    price_per_hour: BTreeMap<String, f64>,
}

pub async fn execute(args: RecommendArgs) -> anyhow::Result<ExitCode> {
    let model = super::common::catalog_model(&args.model)?;
    if !matches!(args.mode.as_str(), "inference" | "training") {
        bail!("--mode {}: expected inference or training", args.mode);
    }
    for (flag, value) in [("--max-latency-ms", args.max_latency_ms), ("--max-memory-gib", args.max_memory_gib)] {
        if value.is_some_and(|v| !(v.is_finite() && v > 0.0)) {
            bail!("{flag} {}: expected a positive number", value.unwrap_or_default());
        }
    }
    let prices = match (&args.prices, args.objective) {
        (Some(path), _) => read_prices(path)?,
        (None, Objective::Cost) => bail!("--objective cost needs --prices FILE (see --help for its form)"),
        (None, _) => BTreeMap::new(),
    };
    let ask = Ask {
        model: model.name.to_string(),
        mode: args.mode.clone(),
        objective: args.objective,
        batch: args.batch,
        precision: args.precision.clone(),
        max_latency_ms: args.max_latency_ms,
        max_memory_gib: args.max_memory_gib,
        prices,
    };
    let engine = args.warehouse.query_engine().await?;
    let mut measured = tokio::task::block_in_place(|| recommend::load(&engine, &ask.model, &ask.mode))?;
    let mut not_predicted = Vec::new();
    if !args.measured_only {
        let k = tokio::task::block_in_place(|| predict::load(&engine, &args.engine))?;
        match predict::fit(&k) {
            Ok(fitted) => {
                not_predicted = recommend::add_predictions(&mut measured, &k, &fitted, &ask, &args.engine);
            }
            Err(e) if !k.rates.is_empty() => eprintln!("no predictions: {e:#}"),
            Err(_) => {}
        }
    }
    if measured.candidates.is_empty() && measured.not_ok.is_empty() {
        let rows = engine.query("SELECT DISTINCT model FROM results WHERE status = 'ok' ORDER BY model")?;
        let (_, cells) = render::cells(&rows)?;
        let with_rows: Vec<String> = cells.into_iter().filter_map(|r| r.into_iter().next()).collect();
        bail!(
            "no results for {} ({}) in this warehouse; models with ok results: {}",
            ask.model,
            ask.mode,
            if with_rows.is_empty() { "none".into() } else { with_rows.join(", ") }
        );
    }
    let (ranked, mut excluded) = recommend::rank(measured, &ask);
    excluded.extend(not_predicted);
    render::write(&mut std::io::stdout().lock(), &recommend::to_rows(&ranked, ask.objective)?, args.format)?;
    for e in &excluded {
        eprintln!("not ranked: {}: {}", e.hardware_class, e.reason);
    }
    if ranked.is_empty() {
        bail!("no hardware class meets the constraints (reasons above)");
    }
    Ok(ExitCode::SUCCESS)
}

fn read_prices(path: &PathBuf) -> anyhow::Result<BTreeMap<String, f64>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let prices: Prices = toml::from_str(&text)
        .with_context(|| format!("{}: expected [price_per_hour] \"class\" = number", path.display()))?;
    if let Some((class, p)) = prices.price_per_hour.iter().find(|(_, p)| !(p.is_finite() && **p > 0.0)) {
        bail!("{}: price of {class} is {p}; expected a positive number", path.display());
    }
    Ok(prices.price_per_hour)
}
