//! The dashboard's charts as SVG strings (plotters): latency and throughput against batch
//! size, one line per series, the distribution of one result's raw samples, and one
//! series' run medians over time with its change points. A
//! measured point is drawn as exactly one circle (legends use lines), so a chart's
//! circles can be counted against the rows it was drawn from.

use std::collections::BTreeMap;

use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

/// One row of the explorer's table, as the charts need it.
pub struct Point {
    pub series: String,
    pub batch: f64,
    pub p50_ms: f64,
    /// The 95 % interval of the median, when the result has one.
    pub ci_ms: Option<(f64, f64)>,
    pub throughput: Option<f64>,
}

fn plot_err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow::anyhow!("drawing a chart: {e:?}")
}

const SIZE: (u32, u32) = (760, 380);

type Axes<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// A white chart with its caption, batch on x (0 to `max_x`) and `y_desc` on y.
fn axes<'a, 'b>(
    root: &'a DrawingArea<SVGBackend<'b>, plotters::coord::Shift>,
    caption: &str,
    max_x: f64,
    max_y: f64,
    y_desc: &str,
) -> anyhow::Result<Axes<'a, 'b>> {
    root.fill(&WHITE).map_err(plot_err)?;
    let mut chart = ChartBuilder::on(root)
        .caption(caption, ("sans-serif", 16))
        .margin(10)
        .x_label_area_size(34)
        .y_label_area_size(64)
        .build_cartesian_2d(0f64..max_x * 1.08, 0f64..max_y * 1.12)
        .map_err(plot_err)?;
    chart.configure_mesh().x_desc("batch").y_desc(y_desc).draw().map_err(plot_err)?;
    Ok(chart)
}

/// Draws `pts` as series `i`'s line, labelled for the legend; its colour.
fn line(chart: &mut Axes<'_, '_>, i: usize, label: &str, pts: Vec<(f64, f64)>) -> anyhow::Result<RGBAColor> {
    let color = Palette99::pick(i).to_rgba();
    chart
        .draw_series(LineSeries::new(pts, color.stroke_width(2)))
        .map_err(plot_err)?
        .label(label)
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2)));
    Ok(color)
}

/// Median latency against batch, with the median's interval as error bars.
pub fn latency(points: &[Point]) -> anyhow::Result<String> {
    let max_x = points.iter().map(|p| p.batch).fold(1.0, f64::max);
    let top = |p: &Point| p.ci_ms.map_or(p.p50_ms, |(_, hi)| hi.max(p.p50_ms));
    let max_y = points.iter().map(top).filter(|v| v.is_finite()).fold(1e-9, f64::max);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        let mut chart = axes(&root, "median latency per batch (95% interval), ms", max_x, max_y, "ms")?;
        for (i, (label, pts)) in by_series(points).into_iter().enumerate() {
            let color = line(&mut chart, i, label, pts.iter().map(|p| (p.batch, p.p50_ms)).collect())?;
            let bars = pts.iter().filter_map(|p| p.ci_ms.map(|(lo, hi)| (p.batch, lo, p.p50_ms, hi)));
            chart
                .draw_series(
                    bars.map(|(x, lo, mid, hi)| ErrorBar::new_vertical(x, lo, mid, hi, color.stroke_width(1), 8)),
                )
                .map_err(plot_err)?;
            // An error bar marks its median with a circle; a point without an interval
            // gets one of its own, so every point is exactly one circle.
            let bare = pts.iter().filter(|p| p.ci_ms.is_none()).map(|p| (p.batch, p.p50_ms));
            chart.draw_series(bare.map(|p| Circle::new(p, 3, color.filled()))).map_err(plot_err)?;
        }
        legend(&mut chart)?;
        root.present().map_err(plot_err)?;
    }
    Ok(svg)
}

/// Items per second against batch.
pub fn throughput(points: &[Point]) -> anyhow::Result<String> {
    let with: Vec<&Point> = points.iter().filter(|p| p.throughput.is_some_and(f64::is_finite)).collect();
    let max_x = with.iter().map(|p| p.batch).fold(1.0, f64::max);
    let max_y = with.iter().filter_map(|p| p.throughput).fold(1e-9, f64::max);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        let mut chart = axes(&root, "throughput per batch, items/s", max_x, max_y, "items/s")?;
        let mut series: BTreeMap<&str, Vec<(f64, f64)>> = BTreeMap::new();
        for p in &with {
            series.entry(&p.series).or_default().push((p.batch, p.throughput.unwrap_or_default()));
        }
        for (i, (label, pts)) in series.into_iter().enumerate() {
            let color = line(&mut chart, i, label, pts.clone())?;
            chart.draw_series(pts.into_iter().map(|p| Circle::new(p, 3, color.filled()))).map_err(plot_err)?;
        }
        legend(&mut chart)?;
        root.present().map_err(plot_err)?;
    }
    Ok(svg)
}

/// A histogram of one result's raw samples (ms), in up to 40 bins.
pub fn histogram(samples_ms: &[f64]) -> anyhow::Result<String> {
    let finite: Vec<f64> = samples_ms.iter().copied().filter(|v| v.is_finite()).collect();
    let lo = finite.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = finite.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi) = if finite.is_empty() { (0.0, 1.0) } else { (lo, if hi > lo { hi } else { lo + 1e-6 }) };
    let n_bins = finite.len().clamp(1, 40);
    let width = (hi - lo) / n_bins as f64;
    let mut counts = vec![0u32; n_bins];
    for v in &finite {
        let bin = (((v - lo) / width) as usize).min(n_bins - 1);
        counts[bin] += 1;
    }
    let max_count = counts.iter().copied().max().unwrap_or(1).max(1);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(format!("{} samples, ms per iteration", finite.len()), ("sans-serif", 16))
            .margin(10)
            .x_label_area_size(34)
            .y_label_area_size(50)
            .build_cartesian_2d(lo..hi + width * 0.01, 0u32..max_count + 1)
            .map_err(plot_err)?;
        chart.configure_mesh().x_desc("ms").y_desc("samples").draw().map_err(plot_err)?;
        let blue = RGBColor(40, 80, 160);
        chart
            .draw_series(counts.iter().enumerate().map(|(i, c)| {
                let x0 = lo + width * i as f64;
                Rectangle::new([(x0, 0), (x0 + width, *c)], blue.filled())
            }))
            .map_err(plot_err)?;
        root.present().map_err(plot_err)?;
    }
    Ok(svg)
}

/// One series' run medians (ms) in run order, one circle per run, with a dashed
/// vertical line before each run in `changes` (the first run after a change point).
pub fn runs(medians_ms: &[f64], changes: &[usize]) -> anyhow::Result<String> {
    let n = medians_ms.len().max(1) as f64;
    let max_y = medians_ms.iter().copied().filter(|v| v.is_finite()).fold(1e-9, f64::max);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption("median latency per run, ms (dashed: change point)", ("sans-serif", 16))
            .margin(10)
            .x_label_area_size(34)
            .y_label_area_size(64)
            .build_cartesian_2d(0f64..n + 1.0, 0f64..max_y * 1.12)
            .map_err(plot_err)?;
        chart.configure_mesh().x_desc("run").y_desc("ms").draw().map_err(plot_err)?;
        let pts: Vec<(f64, f64)> =
            medians_ms.iter().enumerate().filter(|(_, v)| v.is_finite()).map(|(i, v)| ((i + 1) as f64, *v)).collect();
        let blue = RGBColor(40, 80, 160);
        chart.draw_series(LineSeries::new(pts.clone(), blue.stroke_width(1))).map_err(plot_err)?;
        chart.draw_series(pts.into_iter().map(|p| Circle::new(p, 3, blue.filled()))).map_err(plot_err)?;
        let red = RGBColor(200, 40, 40);
        for &at in changes {
            // Between the last run before the change and the first after it.
            let x = at as f64 + 0.5;
            let dashes = (0..20).map(|k| {
                let (y0, y1) = (max_y * 1.12 * k as f64 / 20.0, max_y * 1.12 * (k as f64 + 0.5) / 20.0);
                PathElement::new(vec![(x, y0), (x, y1)], red.stroke_width(2))
            });
            chart.draw_series(dashes).map_err(plot_err)?;
        }
        root.present().map_err(plot_err)?;
    }
    Ok(svg)
}

fn by_series(points: &[Point]) -> BTreeMap<&str, Vec<&Point>> {
    let mut series: BTreeMap<&str, Vec<&Point>> = BTreeMap::new();
    for p in points.iter().filter(|p| p.p50_ms.is_finite()) {
        series.entry(&p.series).or_default().push(p);
    }
    series
}

fn legend<'a, 'b: 'a>(chart: &mut Axes<'a, 'b>) -> anyhow::Result<()> {
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(plot_err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_circle_per_point_and_none_in_legends() {
        let p = |series: &str, batch: f64, ms: f64| Point {
            series: series.into(),
            batch,
            p50_ms: ms,
            ci_ms: Some((ms * 0.9, ms * 1.1)),
            throughput: Some(batch / ms * 1e3),
        };
        let mut points = vec![p("a", 1.0, 2.0), p("a", 4.0, 5.0), p("b", 1.0, 3.0)];
        points[1].ci_ms = None;
        for svg in [latency(&points).expect("chart"), throughput(&points).expect("chart")] {
            assert_eq!(svg.matches("<circle").count(), 3, "{svg}");
        }
        let r = runs(&[1.0, 1.1, 2.0, f64::NAN, 2.1], &[2]).expect("chart");
        assert_eq!(r.matches("<circle").count(), 4, "one circle per finite run: {r}");
        let h = histogram(&[1.0, 1.5, 2.0, f64::NAN]).expect("chart");
        assert!(h.contains("3 samples"), "{h}");
        assert!(histogram(&[]).is_ok(), "no samples draws an empty chart");
    }
}
