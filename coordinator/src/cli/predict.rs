//! `accelbench predict`: latency, throughput and peak memory of cells nobody measured.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context};
use arrow::array::{ArrayRef, StringArray, UInt32Array};
use clap::Args;
use shared::catalog::{self, Mode, Precision};

use super::common::WarehouseArgs;
use crate::answers::columns::rows as rows_of;
use crate::answers::predict;
use crate::query::render::{self, Format};
use crate::query::QueryOutput;
use crate::warehouse::schema::{self, PredictionRow};

#[derive(Debug, Args)]
#[command(long_about = "Predict a model's latency, throughput and peak memory on a hardware class, \
with an 80% prediction interval, from what the warehouse measured.\n\n\
The prediction rests on the catalog's FLOPs and weight bytes, the class's calibrations (the GEMM \
rate and copy bandwidth its agents measured when they registered) and a model fitted on the \
warehouse's measured ok rows of the engine: a log-linear roofline fit, corrected by the measured \
rows nearest the question (the same series at other batches, the same model at another \
precision, or on other classes). `basis` says which; the interval comes from how well rows held \
out of the fit were predicted in the same situation.\n\n\
Every prediction is printed and stored in the warehouse's `predictions` table, never in \
`results`. A class without calibrations cannot be predicted.\n\n\
Examples:\n  accelbench predict --model bert-tiny --hardware-class \"cpu/AMD EPYC 7B13\" --batch 32\n  \
accelbench predict --model llama-tiny --hardware-class \"cpu/Intel Xeon\" --batch 1,8,64 --precision bf16")]
pub struct PredictArgs {
    /// The catalog model
    #[arg(long)]
    pub model: String,
    /// A calibrated hardware class (`accelbench query "SELECT DISTINCT hardware_class FROM calibrations"`)
    #[arg(long, value_name = "CLASS")]
    pub hardware_class: String,
    /// Batch sizes (comma-separated)
    #[arg(long, value_delimiter = ',', required = true)]
    pub batch: Vec<u32>,
    /// Sequence length [default: the model's fixed one, else the one its measured rows used most, else 128]
    #[arg(long)]
    pub seq: Option<u32>,
    #[arg(long, default_value = "fp32")]
    pub precision: Precision,
    #[arg(long, default_value = "inference")]
    pub mode: Mode,
    /// The engine whose measured rows the prediction learns from
    #[arg(long, default_value = "candle")]
    pub engine: String,
    /// Print only; do not store in the `predictions` table
    #[arg(long)]
    pub no_record: bool,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    #[command(flatten)]
    pub warehouse: WarehouseArgs,
}

pub async fn execute(args: PredictArgs) -> anyhow::Result<ExitCode> {
    let model = super::common::catalog_model(&args.model)?;
    if !model.supports(args.precision) || !catalog::is_runnable(model.name, args.precision, args.mode) {
        bail!("--precision {} --mode {}: {} cannot run that way", args.precision, args.mode, model.name);
    }
    if let Some(b) = args.batch.iter().find(|b| **b == 0 || **b > 1 << 20) {
        bail!("--batch {b}: expected 1 to {}", 1 << 20);
    }
    if args.seq.is_some_and(|s| s == 0 || model.max_sequence_length().is_some_and(|max| s > max)) {
        bail!(
            "--seq {}: expected 1 to {} for {}",
            args.seq.unwrap_or_default(),
            model.max_sequence_length().unwrap_or(u32::MAX),
            model.name
        );
    }
    let engine = args.warehouse.query_engine().await?;
    let k = tokio::task::block_in_place(|| predict::load(&engine, &args.engine))?;
    let rates = predict::calibrated(&k, &args.hardware_class)?.clone();
    if k.latency.is_empty() {
        bail!("no measured ok rows of engine {} on a calibrated class to learn from", args.engine);
    }
    for (why, n) in &k.left_out {
        eprintln!("left out of the fit: {n} rows: {why}");
    }
    let fitted = tokio::task::block_in_place(|| predict::fit(&k))?;
    if let Err(why) = &fitted.memory {
        eprintln!("peak memory is not predicted: {why}");
    }
    let seq = args.seq.unwrap_or_else(|| predict::default_seq_len(model, &k));
    let now_ms = chrono::Utc::now().timestamp_millis();
    let mut rows = Vec::new();
    for &batch in &args.batch {
        let query = predict::point(model, &args.hardware_class, &rates, batch, seq, args.precision, args.mode)
            .with_context(|| format!("{} has no {} GEMM or copy calibration", args.hardware_class, args.precision))?;
        rows.push(predict::predict_row(&fitted, &query, &args.engine, now_ms)?);
    }
    print(&rows, args.format)?;
    eprintln!(
        "predicted from {} measured rows; the interval is 80% (held-out errors in the same situation)",
        fitted.n_latency
    );
    if !args.no_record {
        let wh = args.warehouse.open().await?;
        let out = wh.write_predictions(&rows, now_ms).await?;
        eprintln!("recorded {} predictions in the warehouse's `predictions` table", out.new);
    }
    Ok(ExitCode::SUCCESS)
}

/// A table shows rounded figures and the interval as one column; csv and json carry
/// every stored column at full precision.
fn print(rows: &[PredictionRow], format: Format) -> anyhow::Result<()> {
    let out = if format == Format::Table {
        let text = |f: &dyn Fn(&PredictionRow) -> String| -> ArrayRef {
            Arc::new(StringArray::from(rows.iter().map(f).collect::<Vec<_>>()))
        };
        let u32s =
            |f: fn(&PredictionRow) -> u32| -> ArrayRef { Arc::new(UInt32Array::from_iter_values(rows.iter().map(f))) };
        rows_of(vec![
            ("model", text(&|r| r.model.clone())),
            ("hardware_class", text(&|r| r.hardware_class.clone())),
            ("batch", u32s(|r| r.batch)),
            ("seq_len", u32s(|r| r.seq_len)),
            ("precision", text(&|r| r.precision.clone())),
            ("latency_ms", text(&|r| sig(r.latency_ms.value))),
            ("80% interval ms", text(&|r| format!("{} – {}", sig(r.latency_ms.low), sig(r.latency_ms.high)))),
            ("items_per_s", text(&|r| sig(f64::from(r.batch) * 1e3 / r.latency_ms.value))),
            ("peak_memory_mib", text(&|r| r.peak_memory_bytes.map_or("-".into(), |m| sig(m.value / 1048576.0)))),
            (
                "80% interval mib",
                text(&|r| {
                    r.peak_memory_bytes
                        .map_or("-".into(), |m| format!("{} – {}", sig(m.low / 1048576.0), sig(m.high / 1048576.0)))
                }),
            ),
            ("basis", text(&|r| format!("{} ({} rows)", r.latency_basis, r.latency_support))),
            ("source", text(&|_| "predicted".into())),
        ])?
    } else {
        let batch = schema::predictions_batch(rows)?;
        QueryOutput { schema: Arc::clone(batch.schema_ref()), batches: vec![batch] }
    };
    render::write(&mut std::io::stdout().lock(), &out, format)?;
    Ok(())
}

/// Three significant digits: a prediction is not more precise than that.
fn sig(x: f64) -> String {
    if !x.is_finite() || x == 0.0 {
        return format!("{x}");
    }
    let digits = (2 - x.abs().log10().floor() as i32).max(0) as usize;
    format!("{x:.digits$}")
}
