//! The dashboard's answer pages, drawn from the same code as `accelbench regressions` and
//! `accelbench compare` ([`crate::answers`]): the alarms (recorded by `regressions
//! --record`, or found now over a selection), one series' runs with its change points
//! marked and what changed in provenance, and two selections compared cell by cell.

use std::collections::BTreeMap;

use analysis::compare::CompareOptions;
use analysis::regressions::{detect, DetectOptions};

use super::chart;
use super::pages::{esc, get, layout, rows, table};
use crate::answers::compare::{self, Coordinates, COORDINATES};
use crate::answers::regressions::{self, Found};
use crate::answers::selection::Selection;
use crate::query::render::cells;
use crate::query::{QueryEngine, QueryOutput};

/// At most this many series are searched for alarms by one page: a wider selection is
/// refused with a hint (its answer would not come within a page's time).
pub const MAX_SERIES: usize = 500;

/// A series' chart draws at most this many of its newest runs, and its table lists at
/// most [`MAX_RUNS_LISTED`] (the detection looks at all of them).
pub const MAX_RUNS_CHARTED: usize = 500;
pub const MAX_RUNS_LISTED: usize = 100;

/// The link to one series' page.
fn series_link(c: &Coordinates) -> String {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("model", &c.model)
        .append_pair("hardware_class", &c.hardware_class)
        .append_pair("batch", &c.batch.to_string())
        .append_pair("seq_len", &c.seq_len.to_string())
        .append_pair("precision", &c.precision)
        .append_pair("mode", &c.mode)
        .append_pair("engine", &c.engine)
        .append_pair("weights_source", &c.weights_source)
        .finish();
    format!("<a href=\"/regressions/series?{}\">{}</a>", esc(&query), esc(&c.label()))
}

/// A text box prefilled with `value`.
fn input(name: &str, value: &str, hint: &str) -> String {
    format!(
        "<label>{name} <input name=\"{name}\" value=\"{}\" size=40 placeholder=\"{}\"></label>",
        esc(value),
        esc(hint)
    )
}

/// Recorded alarms, or (with `selection`) the alarms found now in its series.
pub fn regressions(e: &QueryEngine, selection: Option<&Selection>) -> anyhow::Result<String> {
    let text = selection.map_or(String::new(), ToString::to_string);
    let mut body = format!(
        "<h1>Regressions</h1>\n<form method=get action=\"/regressions\">{}<button type=submit>find now</button></form>\n",
        input("series", &text, "all, a sweep id, or model=bert-base-uncased,engine=candle")
    );
    match selection {
        None => body.push_str(&recorded_alarms(e)?),
        Some(selection) => body.push_str(&found_now(e, selection)?),
    }
    Ok(layout("regressions", &body))
}

fn recorded_alarms(e: &QueryEngine) -> anyhow::Result<String> {
    let alarms = rows(
        e,
        "SELECT model, hardware_class, batch, seq_len, precision, mode, engine, weights_source,
                strftime(first_bad_started_at, '%Y-%m-%d %H:%M:%S') AS first_bad, first_bad_sweep_id,
                round(before_p50_ms, 3) AS before_ms, round(after_p50_ms, 3) AS after_ms, round(ratio, 3) AS ratio,
                round(ci_low, 3) AS ci_low, round(ci_high, 3) AS ci_high, changed,
                strftime(detected_at, '%Y-%m-%d %H:%M:%S') AS detected
         FROM alarms ORDER BY detected_at DESC, ratio DESC LIMIT 200",
    )?;
    let mut html = String::from(
        "<h2>Recorded alarms</h2>\n<p>Committed by <code>accelbench regressions --record</code> (from cron or CI); \
         find them now over a selection with the form above.</p>\n",
    );
    if alarms.is_empty() {
        html.push_str("<p>None recorded.</p>\n");
        return Ok(html);
    }
    html.push_str(
        "<div class=scroll><table><tr><th>series</th><th>first slower run</th><th>sweep</th><th>before ms</th>\
         <th>after ms</th><th>ratio</th><th>95% CI</th><th>what changed</th><th>detected</th></tr>\n",
    );
    for a in &alarms {
        let num = |k: &str| get(a, k).parse::<u32>().unwrap_or(0);
        let c = Coordinates {
            model: get(a, "model").into(),
            hardware_class: get(a, "hardware_class").into(),
            batch: num("batch"),
            seq_len: num("seq_len"),
            precision: get(a, "precision").into(),
            mode: get(a, "mode").into(),
            engine: get(a, "engine").into(),
            weights_source: get(a, "weights_source").into(),
        };
        html.push_str(&format!(
            "<tr><td class=t>{}</td><td class=t>{}</td><td class=t>{}</td><td>{}</td><td>{}</td>\
             <td class=slower>{}</td><td>{} – {}</td><td class=t>{}</td><td class=t>{}</td></tr>\n",
            series_link(&c),
            esc(get(a, "first_bad")),
            esc(get(a, "first_bad_sweep_id")),
            esc(get(a, "before_ms")),
            esc(get(a, "after_ms")),
            esc(get(a, "ratio")),
            esc(get(a, "ci_low")),
            esc(get(a, "ci_high")),
            esc(get(a, "changed")),
            esc(get(a, "detected")),
        ));
    }
    html.push_str("</table></div>\n");
    Ok(html)
}

fn found_now(e: &QueryEngine, selection: &Selection) -> anyhow::Result<String> {
    // Counted before any run is loaded: a selection of the whole warehouse is refused
    // without reading it.
    let n_series = rows(
        e,
        &format!(
            "SELECT count(*) AS n FROM (SELECT DISTINCT {COORDINATES} FROM results r
             WHERE r.status = 'ok' AND r.latency_p50_ns IS NOT NULL AND {})",
            selection.condition("r")
        ),
    )?;
    let n_series: usize = n_series.first().map_or(0, |r| get(r, "n").parse().unwrap_or(0));
    if n_series > MAX_SERIES {
        return Ok(format!(
            "<p><code>{}</code> holds {n_series} series; a page searches at most {MAX_SERIES}. Narrow it (a model, a \
             hardware class, an engine), or run <code>accelbench regressions --record</code> and read the recorded \
             alarms.</p>\n",
            esc(&selection.to_string()),
        ));
    }
    let series = regressions::load(e, selection, None)?;
    if series.is_empty() {
        return Ok(format!(
            "<p>No ok runs match <code>{}</code>.</p><pre>{}</pre>\n",
            esc(&selection.to_string()),
            esc(&compare::describe_warehouse(e)?)
        ));
    }
    let findings = regressions::find(series, &DetectOptions::DEFAULT);
    let mut html = format!(
        "<h2>Found now</h2>\n<p>{} series, {} alarms, {} series too short to judge.</p>\n",
        findings.n_series,
        findings.found.len(),
        findings.skipped.len()
    );
    if !findings.found.is_empty() {
        html.push_str(&found_table(&findings.found));
    }
    Ok(html)
}

fn found_table(found: &[Found]) -> String {
    let mut html = String::from(
        "<div class=scroll><table><tr><th>series</th><th>first slower run</th><th>runs</th><th>before ms</th>\
         <th>after ms</th><th>ratio</th><th>95% CI</th><th>p</th><th>what changed</th></tr>\n",
    );
    for f in found {
        html.push_str(&format!(
            "<tr><td class=t>{}</td><td class=t><a href=\"/results/{id}\">{id}</a></td><td>{} of {}</td>\
             <td>{:.3}</td><td>{:.3}</td><td class=slower>{:.3}</td><td>{:.3} – {:.3}</td><td>{:.2e}</td><td class=t>{}</td></tr>\n",
            series_link(&f.coordinates),
            f.alarm.first_bad_run + 1,
            f.n_runs,
            f.alarm.before_median / 1e6,
            f.alarm.after_median / 1e6,
            f.alarm.ratio,
            f.alarm.ratio_ci.low(),
            f.alarm.ratio_ci.high(),
            f.alarm.p_value,
            esc(&f.last_good.provenance.changes_to(&f.first_bad.provenance)),
            id = esc(&f.first_bad.result_id),
        ));
    }
    html.push_str("</table></div>\n");
    html
}

/// One series: its runs as a chart with the change points found now, the alarms, and
/// each run with its provenance. `None` when no ok run has these coordinates.
pub fn series(e: &QueryEngine, c: &Coordinates) -> anyhow::Result<Option<String>> {
    let selection = Selection::exact(&[
        ("model", &c.model),
        ("hardware_class", &c.hardware_class),
        ("precision", &c.precision),
        ("mode", &c.mode),
        ("engine", &c.engine),
        ("weights_source", &c.weights_source),
    ])?;
    let Some(series) = regressions::load(e, &selection, None)?.into_iter().find(|s| s.coordinates == *c) else {
        return Ok(None);
    };
    let medians_ns: Vec<f64> = series.runs.iter().map(|r| r.p50_ns).collect();
    let (alarms, verdict) = match detect(&medians_ns, &DetectOptions::DEFAULT) {
        Ok(alarms) => {
            let n = alarms.len();
            (alarms, format!("{n} alarm{}", if n == 1 { "" } else { "s" }))
        }
        Err(why) => (Vec::new(), format!("not judged: {why}")),
    };
    let changes: Vec<usize> = alarms.iter().map(|a| a.first_bad_run).collect();
    let charted_from = series.runs.len().saturating_sub(MAX_RUNS_CHARTED);
    let medians_ms: Vec<f64> = series.runs[charted_from..].iter().map(|r| r.p50_ns / 1e6).collect();
    let charted_changes: Vec<usize> = changes.iter().filter_map(|i| i.checked_sub(charted_from)).collect();
    let mut body = format!(
        "<h1>Series</h1>\n<p>{} · {} runs · {}{}</p>\n<figure id=series>{}</figure>\n",
        esc(&c.label()),
        series.runs.len(),
        esc(&verdict),
        if charted_from > 0 { format!(" · the chart shows the newest {MAX_RUNS_CHARTED}") } else { String::new() },
        chart::runs(&medians_ms, &charted_changes)?
    );
    let found: Vec<Found> = alarms
        .into_iter()
        .filter_map(|alarm| {
            let first_bad = series.runs.get(alarm.first_bad_run)?.clone();
            let last_good = series.runs.get(alarm.first_bad_run.checked_sub(1)?)?.clone();
            Some(Found { coordinates: c.clone(), alarm, first_bad, last_good, n_runs: series.runs.len() })
        })
        .collect();
    if !found.is_empty() {
        body.push_str("<h2>Alarms</h2>\n");
        body.push_str(&found_table(&found));
    }
    let listed_from = series.runs.len().saturating_sub(MAX_RUNS_LISTED);
    body.push_str(&format!(
        "<h2>Runs{}</h2>\n",
        if listed_from > 0 { format!(" (the newest {MAX_RUNS_LISTED})") } else { String::new() }
    ));
    body.push_str("<div class=scroll><table><tr><th>run</th><th>started</th><th>sweep</th><th>result</th><th>p50 ms</th><th>agent version</th><th>engine version</th><th>git commit</th><th>fingerprint</th></tr>\n");
    for (i, r) in series.runs.iter().enumerate().skip(listed_from) {
        let started = chrono::DateTime::from_timestamp_millis(r.started_at_ms)
            .map_or_else(String::new, |t| t.format("%Y-%m-%d %H:%M:%S").to_string());
        let mark = if changes.contains(&i) { " class=slower" } else { "" };
        body.push_str(&format!(
            "<tr><td{mark}>{}</td><td class=t>{}</td><td class=t>{}</td><td class=t><a href=\"/results/{rid}\">{rid}</a></td>\
             <td>{:.3}</td><td class=t>{}</td><td class=t>{}</td><td class=t>{}</td><td class=t>{}</td></tr>\n",
            i + 1,
            esc(&started),
            esc(&r.sweep_id),
            r.p50_ns / 1e6,
            esc(&r.provenance.agent_version),
            esc(&r.provenance.engine_version),
            esc(&r.provenance.git_commit),
            esc(&r.provenance.fingerprint_hash),
            rid = esc(&r.result_id),
        ));
    }
    body.push_str("</table></div>\n");
    Ok(Some(layout("series", &body)))
}

/// The form, and with both sides given, the pairs judged as `accelbench compare` does.
pub fn compare(
    e: &QueryEngine,
    sides: Option<(Selection, Selection)>,
    options: &CompareOptions,
) -> anyhow::Result<String> {
    let (base_text, new_text) =
        sides.as_ref().map_or((String::new(), String::new()), |(b, n)| (b.to_string(), n.to_string()));
    let mut body = format!(
        "<h1>Compare</h1>\n<form method=get action=\"/compare\">{}{}<label>threshold <input name=threshold value=\"{}\" size=5></label>\
         <button type=submit>compare</button></form>\n",
        input("base", &base_text, "a sweep id, all, or engine_version=0.9.1"),
        input("new", &new_text, "a sweep id, all, or engine_version=0.10.0"),
        options.threshold
    );
    let Some((base, new)) = sides else {
        body.push_str(&format!(
            "<p>Each side is a sweep id, <code>all</code>, or column=value filters; a cell's newest ok result on each side \
             is used.</p><pre>{}</pre>\n",
            esc(&compare::describe_warehouse(e)?)
        ));
        return Ok(layout("compare", &body));
    };
    let (base_side, new_side) = (compare::load(e, &base)?, compare::load(e, &new)?);
    let matched = compare::judge(base_side, new_side, options);
    if matched.pairs.is_empty() {
        body.push_str(&format!(
            "<p>No cell is on both sides ({} only in base, {} only in new).</p><pre>{}</pre>\n",
            matched.only_base.len(),
            matched.only_new.len(),
            esc(&compare::describe_warehouse(e)?)
        ));
        return Ok(layout("compare", &body));
    }
    body.push_str(&format!(
        "<p>{}; {} cells only in base, {} only in new.</p>\n",
        esc(&compare::summary(&matched)),
        matched.only_base.len(),
        matched.only_new.len()
    ));
    body.push_str(&output_table(&compare::to_rows(&matched.pairs)?)?);
    Ok(layout("compare", &body))
}

/// Every column of `out` as a table, as `accelbench … --format table` shows it.
fn output_table(out: &QueryOutput) -> anyhow::Result<String> {
    let (header, body) = cells(out)?;
    let found: Vec<BTreeMap<String, String>> =
        body.into_iter().map(|r| header.iter().cloned().zip(r).collect()).collect();
    let columns: Vec<(&str, &str)> = header.iter().map(|h| (h.as_str(), h.as_str())).collect();
    Ok(table(&found, &columns, None))
}
