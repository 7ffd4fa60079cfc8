//! HTML reports with SVG charts drawn by plotters: throughput vs batch per hardware
//! class, latency p50/p99 bars, and the compatibility grid. The page is one
//! self-contained file (inline SVG and CSS, no scripts, nothing fetched).

use std::collections::BTreeMap;

use plotters::prelude::*;

use super::{name, Kind};
use crate::query::render::cells;
use crate::query::{QueryEngine, QueryOutput};

const STYLE: &str = "body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse;\
font-size:13px}td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}th{background:#f0f0f0}\
td.ok{background:#c8efc8}td.unsupported{background:#eee}td.failed{background:#f7c6c6}\
td.untested{background:#fff;color:#999}.chart{margin:1em 0}";

/// One measured point: which series, x = batch, y.
struct Point {
    series: String,
    label: String,
    batch: f64,
    throughput: f64,
    p50_ms: f64,
    p99_ms: f64,
}

pub fn page(engine: &QueryEngine, kind: Kind, rows: &QueryOutput, sweep: Option<&str>) -> anyhow::Result<String> {
    let mut body = String::new();
    let scope = sweep.map(|s| format!(" — sweep {}", esc(s))).unwrap_or_default();
    body.push_str(&format!("<h1>accelbench {} report{scope}</h1>\n", name(kind)));
    let points = points(engine, sweep)?;
    match kind {
        Kind::Performance | Kind::Hardware => {
            if points.is_empty() {
                body.push_str("<p>No successful measurements to chart.</p>\n");
            } else {
                body.push_str(&format!("<div class=chart>{}</div>\n", throughput_chart(&points)?));
                if kind == Kind::Performance {
                    body.push_str(&format!("<div class=chart>{}</div>\n", latency_chart(&points)?));
                }
            }
        }
        Kind::Compatibility => body.push_str(&compatibility_grid(rows)?),
    }
    body.push_str("<h2>Data</h2>\n");
    body.push_str(&html_table(rows)?);
    Ok(format!(
        "<!doctype html>\n<html><head><meta charset=utf-8><title>accelbench {} report</title><style>{STYLE}</style>\
         </head><body>\n{body}</body></html>\n",
        name(kind)
    ))
}

fn points(engine: &QueryEngine, sweep: Option<&str>) -> anyhow::Result<Vec<Point>> {
    let filter = sweep.map(|s| format!("AND sweep_id = '{}'", s.replace('\'', "''"))).unwrap_or_default();
    let rows = engine.query(&format!(
        "SELECT model || ' ' || precision || ' ' || mode || ' @ ' || hardware_class AS series,
                model || ' b' || batch || ' ' || precision || ' ' || mode AS label,
                batch, throughput_items_per_s, latency_p50_ns / 1e6, latency_p99_ns / 1e6
         FROM latest_results WHERE status = 'ok' {filter}
         ORDER BY series, batch"
    ))?;
    let (_, body) = cells(&rows)?;
    let num = |s: &str| s.parse::<f64>().unwrap_or(f64::NAN);
    Ok(body
        .into_iter()
        .map(|r| Point {
            series: r[0].clone(),
            label: r[1].clone(),
            batch: num(&r[2]),
            throughput: num(&r[3]),
            p50_ms: num(&r[4]),
            p99_ms: num(&r[5]),
        })
        .filter(|p| p.batch.is_finite() && p.throughput.is_finite())
        .collect())
}

fn plot_err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow::anyhow!("drawing a chart: {e:?}")
}

/// Lines of items/s against batch size, one per model × precision × hardware class:
/// the dashboard's chart, so the report and the dashboard draw it the same way.
fn throughput_chart(points: &[Point]) -> anyhow::Result<String> {
    let points: Vec<crate::dashboard::chart::Point> = points
        .iter()
        .map(|p| crate::dashboard::chart::Point {
            series: p.series.clone(),
            batch: p.batch,
            p50_ms: p.p50_ms,
            ci_ms: None,
            throughput: Some(p.throughput),
        })
        .collect();
    crate::dashboard::chart::throughput(&points)
}

/// Horizontal bars of p50 (dark) and p99 (light) latency per cell.
fn latency_chart(points: &[Point]) -> anyhow::Result<String> {
    let n = points.len();
    let max_x = points.iter().map(|p| p.p99_ms.max(p.p50_ms)).filter(|v| v.is_finite()).fold(1e-9, f64::max);
    let height = (60 + 22 * n).min(4000) as u32;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (860, height)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption("latency per iteration: p50 (dark) and p99 (light), ms", ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(30)
            .y_label_area_size(10)
            // Room on the right of the longest bar for its label.
            .build_cartesian_2d(0f64..max_x * 1.8, 0f64..n as f64)
            .map_err(plot_err)?;
        chart.configure_mesh().y_labels(0).disable_y_mesh().x_desc("ms").draw().map_err(plot_err)?;
        let light = RGBColor(150, 180, 230);
        let dark = RGBColor(40, 80, 160);
        for (i, p) in points.iter().enumerate() {
            let y = i as f64;
            if p.p99_ms.is_finite() {
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(0.0, y + 0.15), (p.p99_ms, y + 0.85)],
                        light.filled(),
                    )))
                    .map_err(plot_err)?;
            }
            if p.p50_ms.is_finite() {
                chart
                    .draw_series(std::iter::once(Rectangle::new([(0.0, y + 0.3), (p.p50_ms, y + 0.7)], dark.filled())))
                    .map_err(plot_err)?;
            }
            let end = p.p99_ms.max(p.p50_ms);
            let label = format!("{} ({}): {:.2} / {:.2}", p.label, short_class(&p.series), p.p50_ms, p.p99_ms);
            chart
                .draw_series(std::iter::once(Text::new(
                    label,
                    (if end.is_finite() { end } else { 0.0 } + max_x * 0.01, y + 0.75),
                    ("sans-serif", 12),
                )))
                .map_err(plot_err)?;
        }
        root.present().map_err(plot_err)?;
    }
    Ok(svg)
}

fn short_class(series: &str) -> &str {
    series.rsplit(" @ ").next().unwrap_or(series)
}

/// Family rows × hardware class columns, coloured by status.
pub(crate) fn compatibility_grid(rows: &QueryOutput) -> anyhow::Result<String> {
    let (header, body) = cells(rows)?;
    let col = |n: &str| header.iter().position(|h| h == n);
    let (Some(f), Some(h), Some(s), Some(b)) =
        (col("family"), col("hardware_class"), col("status"), col("best_throughput_items_per_s"))
    else {
        anyhow::bail!("compatibility_matrix lacks its columns");
    };
    let mut classes: Vec<&str> = body.iter().map(|r| r[h].as_str()).collect();
    classes.sort();
    classes.dedup();
    let mut grid: BTreeMap<&str, BTreeMap<&str, (&str, &str)>> = BTreeMap::new();
    for r in &body {
        grid.entry(&r[f]).or_default().insert(&r[h], (&r[s], &r[b]));
    }
    let mut html = String::from("<h2>Compatibility</h2>\n<table><tr><th>family</th>");
    for c in &classes {
        html.push_str(&format!("<th>{}</th>", esc(c)));
    }
    html.push_str("</tr>\n");
    for (family, row) in grid {
        html.push_str(&format!("<tr><th>{}</th>", esc(family)));
        for c in &classes {
            let (status, best) = row.get(c).copied().unwrap_or(("untested", ""));
            let best = if best.is_empty() { String::new() } else { format!("<br>{} items/s", esc(best)) };
            html.push_str(&format!("<td class=\"{}\">{}{best}</td>", esc(status), esc(status)));
        }
        html.push_str("</tr>\n");
    }
    html.push_str("</table>\n");
    Ok(html)
}

fn html_table(rows: &QueryOutput) -> anyhow::Result<String> {
    let (header, body) = cells(rows)?;
    let mut html = String::from("<table><tr>");
    for h in &header {
        html.push_str(&format!("<th>{}</th>", esc(h)));
    }
    html.push_str("</tr>\n");
    for r in body {
        html.push_str("<tr>");
        for c in r {
            html.push_str(&format!("<td>{}</td>", esc(&c)));
        }
        html.push_str("</tr>\n");
    }
    html.push_str("</table>\n");
    Ok(html)
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}
