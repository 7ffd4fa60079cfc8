//! The standard reports: `performance` (latency, throughput, memory, energy per cell),
//! `hardware` (each hardware class against the CPU baseline, throughput vs batch) and
//! `compatibility` (family × hardware class). Each is one SQL query over the warehouse
//! views ([`sql`]) rendered as Markdown, CSV, JSON or HTML with SVG charts ([`html`]).

pub mod html;

use crate::query::render::{self, Format as RowFormat};
use crate::query::QueryEngine;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    Performance,
    Hardware,
    Compatibility,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Md,
    Html,
    Csv,
    Json,
}

/// The report's SQL; `sweep` (already a validated id) narrows it to one sweep.
pub fn sql(kind: Kind, sweep: Option<&str>) -> String {
    let filter = |col: &str| match sweep {
        Some(id) => format!("WHERE {col} = '{}'", id.replace('\'', "''")),
        None => String::new(),
    };
    match kind {
        Kind::Performance => format!(
            "SELECT model, hardware_class, engine, batch, seq_len, precision, mode, status,
                    validation AS outputs,
                    round(latency_p50_ns / 1e6, 3) AS p50_ms, round(latency_p99_ns / 1e6, 3) AS p99_ms,
                    round(100 * (latency_median_ci_high_ns - latency_median_ci_low_ns) / 2 / latency_p50_ns, 2)
                        AS ci_pct,
                    round(throughput_items_per_s, 3) AS items_per_s,
                    round(decode_tokens_per_s, 2) AS tokens_per_s,
                    round(peak_host_bytes / 1048576, 1) AS peak_host_mib,
                    round(energy_joules_per_iteration, 4) AS joules_per_iter, energy_source,
                    origin, error
             FROM latest_results {}
             ORDER BY model, hardware_class, engine, mode, precision, batch, seq_len",
            filter("sweep_id")
        ),
        Kind::Hardware => format!(
            "SELECT hardware_class, model, engine, precision, mode, batch,
                    round(throughput_items_per_s, 3) AS items_per_s,
                    round(latency_p50_ns / 1e6, 3) AS p50_ms
             FROM latest_results {} {} status = 'ok'
             ORDER BY hardware_class, model, engine, precision, mode, batch",
            filter("sweep_id"),
            if sweep.is_some() { "AND" } else { "WHERE" }
        ),
        Kind::Compatibility => "SELECT * FROM compatibility_matrix".to_string(),
    }
}

/// Runs and renders one report.
pub fn render(engine: &QueryEngine, kind: Kind, sweep: Option<&str>, format: Format) -> anyhow::Result<Vec<u8>> {
    let rows = engine.query(&sql(kind, sweep))?;
    let mut out = Vec::new();
    match format {
        Format::Md => {
            out.extend_from_slice(format!("# accelbench {} report\n\n", name(kind)).as_bytes());
            out.extend_from_slice(render::markdown(&rows)?.as_bytes());
        }
        Format::Csv => render::write(&mut out, &rows, RowFormat::Csv)?,
        Format::Json => render::write(&mut out, &rows, RowFormat::Json)?,
        Format::Html => out.extend_from_slice(html::page(engine, kind, &rows, sweep)?.as_bytes()),
    }
    Ok(out)
}

pub fn name(kind: Kind) -> &'static str {
    match kind {
        Kind::Performance => "performance",
        Kind::Hardware => "hardware",
        Kind::Compatibility => "compatibility",
    }
}
