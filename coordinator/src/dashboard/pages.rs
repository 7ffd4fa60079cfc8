//! The dashboard's pages as HTML strings, each from a few queries over the warehouse's
//! tables and views (docs/SCHEMA.md). Text from the warehouse is always escaped; filter
//! values reach SQL only as quoted literals ([`sql_string`]).

use std::collections::BTreeMap;

use shared::ids::SweepId;

use super::chart::{self, Point};
use crate::query::render::cells;
use crate::query::{sql_string, QueryEngine};

const STYLE: &str = "body{font-family:sans-serif;margin:0;color:#222}nav{background:#243b6b;padding:.6em 1em}\
nav a{color:#fff;margin-right:1.2em;text-decoration:none;font-weight:bold}main{padding:1em}\
table{border-collapse:collapse;font-size:13px;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 6px;\
text-align:right}th{background:#f0f0f0}td.t{text-align:left}td.ok{background:#c8efc8}\
td.unsupported{background:#eee}td.failed,td.crashed,td.oom,td.timeout{background:#f7c6c6}\
td.untested{color:#999}.bar{display:flex;width:240px;height:12px;background:#eee}.bar span{display:block}\
.bar .ok{background:#5cb85c}.bar .unsupported{background:#aaa}.bar .failed{background:#d9534f}\
.bar .leased{background:#5bc0de}.bar .pending{background:#e8e8e8}.bar .cancelled{background:#666}\
td.alive,td.faster{background:#c8efc8}td.slower{background:#f7c6c6}td.silent{background:#f7c6c6}[data-stale]{opacity:.5}\
.charts{display:flex;flex-wrap:wrap;gap:1em}.charts svg{max-width:100%;height:auto}form{margin:.5em 0}\
select{margin-right:.6em}.scroll{overflow-x:auto}pre{white-space:pre-wrap;font-size:12px;background:#f6f6f6}";

/// Escapes text for HTML.
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

/// The page around `body`: navigation, style, and the script that keeps its `data-live`
/// parts current ([`super::live`]).
pub fn layout(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=en><head><meta charset=utf-8>\
         <meta name=viewport content=\"width=device-width, initial-scale=1\"><link rel=icon href=\"data:,\">\
         <title>accelbench · {}</title><style>{STYLE}</style><script src=\"/static/live.js\" defer></script></head>\
         <body data-poll-ms=\"{}\"><nav><a href=\"/\">Overview</a><a href=\"/results\">Results</a>\
         <a href=\"/compatibility\">Compatibility</a><a href=\"/regressions\">Regressions</a>\
         <a href=\"/compare\">Compare</a></nav>\
         <main>\n{body}</main></body></html>\n",
        esc(title),
        super::live::POLL_MS
    )
}

/// Rows of `sql` as display text, keyed by column name.
pub(super) fn rows(e: &QueryEngine, sql: &str) -> anyhow::Result<Vec<BTreeMap<String, String>>> {
    let (header, body) = cells(&e.query(sql)?)?;
    Ok(body.into_iter().map(|r| header.iter().cloned().zip(r).collect()).collect())
}

pub(super) fn get<'a>(r: &'a BTreeMap<String, String>, k: &str) -> &'a str {
    r.get(k).map_or("", String::as_str)
}

/// A table of `columns` (name, heading) from `rows`; text columns left-aligned, a
/// `status` cell coloured, and `link` turning one column into a link.
pub(super) fn table(rows: &[BTreeMap<String, String>], columns: &[(&str, &str)], link: Option<(&str, &str)>) -> String {
    if rows.is_empty() {
        return "<p>None yet.</p>\n".into();
    }
    let mut html = String::from("<div class=scroll><table><tr>");
    for (_, heading) in columns {
        html.push_str(&format!("<th>{}</th>", esc(heading)));
    }
    html.push_str("</tr>\n");
    for r in rows {
        html.push_str("<tr>");
        for (name, _) in columns {
            let v = get(r, name);
            let class = match *name {
                "status" | "state" | "verdict" => esc(v),
                _ if v.parse::<f64>().is_ok() => String::new(),
                _ => "t".into(),
            };
            let text = match link {
                Some((col, prefix)) if col == *name && !v.is_empty() => {
                    format!("<a href=\"{prefix}{}\">{}</a>", esc(v), esc(v))
                }
                _ => esc(v),
            };
            html.push_str(&format!("<td class=\"{class}\">{text}</td>"));
        }
        html.push_str("</tr>\n");
    }
    html.push_str("</table></div>\n");
    html
}

/// The overview: sweeps with their progress, the agents, the newest results. Each part
/// is a live fragment (`/live/…`) the page's script fetches again.
pub fn overview(sweeps: &str, agents: &str, newest: &str) -> String {
    let body = format!(
        "<h1>Sweeps</h1>\n<section data-live=\"/live/sweeps\">{sweeps}</section>\n\
         <h2>Agents</h2>\n<section data-live=\"/live/agents\">{agents}</section>\n\
         <h2>Newest results</h2>\n<section data-live=\"/live/newest\">{newest}</section>\n"
    );
    layout("overview", &body)
}

/// A progress bar: one coloured span per state, as wide as its share of `total`.
pub fn progress_bar(counts: &[(&str, usize)], total: usize) -> String {
    let spans: String = counts
        .iter()
        .filter(|(_, n)| *n > 0 && total > 0)
        .map(|(state, n)| {
            format!(
                "<span class=\"{}\" style=\"width:{:.1}%\" title=\"{n} {}\"></span>",
                esc(state),
                100.0 * *n as f64 / total as f64,
                esc(state)
            )
        })
        .collect();
    format!("<div class=bar>{spans}</div>")
}

/// Sweeps as the warehouse knows them (no coordinator): cells, and results by status.
pub fn sweeps(e: &QueryEngine) -> anyhow::Result<String> {
    // Result rows by status, not each cell's newest attempt: an ok or unsupported result
    // ends its cell, so those counts are cells; other statuses count attempts (a cell
    // may fail and then succeed). Counting rows is one cheap pass on a big warehouse.
    let sweeps = rows(
        e,
        "WITH counts AS (
             SELECT sweep_id, count(*) FILTER (WHERE status = 'ok') AS ok,
                    count(*) FILTER (WHERE status = 'unsupported') AS unsupported,
                    count(*) FILTER (WHERE status NOT IN ('ok', 'unsupported')) AS failed
             FROM results WHERE sweep_id IS NOT NULL GROUP BY sweep_id)
         SELECT s.sweep_id, any_value(s.name) AS name, coalesce(any_value(s.submitted_by), '') AS submitted_by,
                strftime(max(s.submitted_at), '%Y-%m-%d %H:%M:%S') AS submitted_at, max(s.n_cells) AS n_cells,
                coalesce(any_value(c.ok), 0) AS ok, coalesce(any_value(c.unsupported), 0) AS unsupported,
                coalesce(any_value(c.failed), 0) AS failed
         FROM sweeps s LEFT JOIN counts c USING (sweep_id)
         GROUP BY s.sweep_id ORDER BY max(s.submitted_at) DESC LIMIT 50",
    )?;
    if sweeps.is_empty() {
        return Ok("<p>No sweeps in this warehouse yet.</p>\n".into());
    }
    let mut html = String::from(
        "<div class=scroll><table><tr><th>sweep</th><th>name</th><th>submitted by</th><th>submitted</th>\
         <th>cells</th><th>ok</th><th>unsupported</th><th>failed attempts</th><th>progress</th></tr>\n",
    );
    for s in &sweeps {
        html.push_str(&format!(
            "<tr data-sweep=\"{id}\"><td class=t><a href=\"/sweeps/{id}\">{id}</a></td><td class=t>{}</td><td class=t>{}</td>\
             <td class=t>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            esc(get(s, "name")),
            esc(get(s, "submitted_by")),
            esc(get(s, "submitted_at")),
            esc(get(s, "n_cells")),
            esc(get(s, "ok")),
            esc(get(s, "unsupported")),
            esc(get(s, "failed")),
            warehouse_bar(s),
            id = esc(get(s, "sweep_id")),
        ));
    }
    html.push_str("</table></div>\n");
    Ok(html)
}

/// The bar of a sweep row with `n_cells`, `ok` and `unsupported` columns: the cells
/// finished (failed attempts may still be retried, so they are not a share of cells).
fn warehouse_bar(s: &BTreeMap<String, String>) -> String {
    let n = |k: &str| get(s, k).parse::<usize>().unwrap_or(0);
    progress_bar(&[("ok", n("ok")), ("unsupported", n("unsupported"))], n("n_cells"))
}

/// Agents as last registered in the warehouse (no coordinator to say which are alive).
pub fn agents(e: &QueryEngine) -> anyhow::Result<String> {
    let agents = rows(
        e,
        "SELECT agent_id, coalesce(hostname, '') AS hostname, hardware_class,
                strftime(last_seen_at, '%Y-%m-%d %H:%M:%S') AS last_registered
         FROM agents QUALIFY row_number() OVER (PARTITION BY agent_id, hardware_class ORDER BY last_seen_at DESC) = 1
         ORDER BY last_seen_at DESC LIMIT 100",
    )?;
    Ok(table(
        &agents,
        &[
            ("agent_id", "agent"),
            ("hostname", "host"),
            ("hardware_class", "hardware class"),
            ("last_registered", "registered"),
        ],
        Some(("agent_id", "/agents/")),
    ))
}

/// The newest results.
pub fn newest(e: &QueryEngine) -> anyhow::Result<String> {
    newest_where(e, "true", 20)
}

/// The newest `limit` results matching the SQL condition `condition`, as a short table.
fn newest_where(e: &QueryEngine, condition: &str, limit: usize) -> anyhow::Result<String> {
    let found = rows(
        e,
        &format!(
            "SELECT result_id, model, hardware_class, batch, precision, mode, engine, status,
                    round(latency_p50_ns / 1e6, 3) AS p50_ms, strftime(finished_at, '%Y-%m-%d %H:%M:%S') AS finished
             FROM results WHERE {condition} ORDER BY finished_at DESC LIMIT {limit}"
        ),
    )?;
    Ok(table(&found, RESULT_COLUMNS_SHORT, Some(("result_id", "/results/"))))
}

const RESULT_COLUMNS_SHORT: &[(&str, &str)] = &[
    ("result_id", "result"),
    ("model", "model"),
    ("hardware_class", "hardware class"),
    ("batch", "batch"),
    ("precision", "precision"),
    ("mode", "mode"),
    ("engine", "engine"),
    ("status", "status"),
    ("p50_ms", "p50 ms"),
    ("finished", "finished"),
];

/// The explorer's filters: column = value, ANDed. Only these columns filter.
#[derive(Debug, Clone, Default)]
pub struct Filters(Vec<(&'static str, String)>);

const FILTER_COLUMNS: [&str; 7] = ["model", "family", "hardware_class", "precision", "mode", "engine", "batch"];

impl Filters {
    /// From the query string; an unknown key or an oversized value is refused by name.
    pub fn parse(raw: &[(String, String)]) -> Result<Filters, String> {
        let mut out = Vec::new();
        for (k, v) in raw {
            let Some(col) = FILTER_COLUMNS.iter().find(|c| **c == k) else {
                return Err(format!(
                    "unknown filter {:?} (filters: {})",
                    k.chars().take(40).collect::<String>(),
                    FILTER_COLUMNS.join(", ")
                ));
            };
            if v.len() > 256 {
                return Err(format!("filter {col}: value longer than 256 bytes"));
            }
            if *col == "batch" && !v.is_empty() && v.parse::<u32>().is_err() {
                return Err(format!("filter batch: {:?} is not a batch size", v.chars().take(40).collect::<String>()));
            }
            if !v.is_empty() {
                out.push((*col, v.clone()));
            }
        }
        Ok(Filters(out))
    }

    fn sql(&self) -> String {
        self.0
            .iter()
            .map(|(col, v)| match *col {
                "batch" => format!(" AND batch = {}", v.parse::<u32>().unwrap_or(0)),
                _ => format!(" AND {col} = {}", sql_string(v)),
            })
            .collect()
    }

    fn value(&self, col: &str) -> &str {
        self.0.iter().find(|(c, _)| *c == col).map_or("", |(_, v)| v.as_str())
    }
}

/// Filters, charts of latency and throughput against batch, and the rows they show.
pub fn results(e: &QueryEngine, filters: &Filters) -> anyhow::Result<String> {
    let mut body = String::from("<h1>Results</h1>\n<form method=get action=\"/results\">");
    // One query: the newest row of every series is picked once (the costly part on a
    // big warehouse), then both the filters' choices and the matching rows come from it.
    let names = FILTER_COLUMNS.iter().map(|c| format!("'{c}'")).collect::<Vec<_>>().join(", ");
    let values = FILTER_COLUMNS.iter().map(|c| format!("CAST({c} AS VARCHAR)")).collect::<Vec<_>>().join(", ");
    let all = rows(
        e,
        &format!(
            "WITH l AS MATERIALIZED (SELECT * FROM latest_results),
             choices AS (SELECT DISTINCT unnest([{names}]) AS c, unnest([{values}]) AS v FROM l)
             SELECT * FROM (
                 SELECT 'row' AS kind, result_id, model, hardware_class, batch, seq_len, precision, mode, engine, status,
                        round(latency_p50_ns / 1e6, 3) AS p50_ms,
                        round(latency_median_ci_low_ns / 1e6, 3) AS ci_low_ms,
                        round(latency_median_ci_high_ns / 1e6, 3) AS ci_high_ms,
                        round(throughput_items_per_s, 3) AS items_per_s,
                        round(peak_host_bytes / batch / 1048576, 3) AS host_mib_per_item,
                        round(peak_device_bytes / batch / 1048576, 3) AS device_mib_per_item,
                        round(energy_joules_per_iteration / batch, 6) AS joules_per_item,
                        coalesce(error, '') AS error
                 FROM l WHERE true {}
                 ORDER BY model, precision, mode, engine, hardware_class, batch LIMIT 2000)
             UNION ALL BY NAME
             SELECT 'choice' AS kind, c, v FROM choices
             ORDER BY kind, c, v, model, precision, mode, engine, hardware_class, batch",
            filters.sql()
        ),
    )?;
    let (choices, found): (Vec<_>, Vec<_>) = all.into_iter().partition(|r| get(r, "kind") == "choice");
    for col in FILTER_COLUMNS {
        body.push_str(&format!("<label>{col} <select name=\"{col}\"><option value=\"\">any</option>"));
        for o in choices.iter().filter(|o| get(o, "c") == col) {
            let v = get(o, "v");
            let selected = if filters.value(col) == v { " selected" } else { "" };
            body.push_str(&format!("<option{selected}>{}</option>", esc(v)));
        }
        body.push_str("</select></label>");
    }
    body.push_str("<button type=submit>show</button></form>\n");
    let num = |r: &BTreeMap<String, String>, k: &str| get(r, k).parse::<f64>().ok();
    let points: Vec<Point> = found
        .iter()
        .filter(|r| get(r, "status") == "ok")
        .filter_map(|r| {
            Some(Point {
                series: format!(
                    "{} · {} {} {} {}",
                    get(r, "hardware_class"),
                    get(r, "model"),
                    get(r, "precision"),
                    get(r, "mode"),
                    get(r, "engine")
                ),
                batch: num(r, "batch")?,
                p50_ms: num(r, "p50_ms")?,
                ci_ms: num(r, "ci_low_ms").zip(num(r, "ci_high_ms")),
                throughput: num(r, "items_per_s"),
            })
        })
        .collect();
    body.push_str(&format!("<p>{} results, {} measured ok.</p>\n", found.len(), points.len()));
    if !points.is_empty() {
        body.push_str(&format!(
            "<div class=charts><figure id=latency>{}</figure><figure id=throughput>{}</figure></div>\n",
            chart::latency(&points)?,
            chart::throughput(&points)?
        ));
    }
    body.push_str(&table(
        &found,
        &[
            ("result_id", "result"),
            ("model", "model"),
            ("hardware_class", "hardware class"),
            ("batch", "batch"),
            ("seq_len", "seq"),
            ("precision", "precision"),
            ("mode", "mode"),
            ("engine", "engine"),
            ("status", "status"),
            ("p50_ms", "p50 ms"),
            ("ci_low_ms", "CI low"),
            ("ci_high_ms", "CI high"),
            ("items_per_s", "items/s"),
            ("host_mib_per_item", "host MiB/item"),
            ("device_mib_per_item", "device MiB/item"),
            ("joules_per_item", "J/item"),
            ("error", "reason"),
        ],
        Some(("result_id", "/results/")),
    ));
    Ok(layout("results", &body))
}

/// One result: its coordinates, statistics and the histogram of its raw samples.
pub fn result(e: &QueryEngine, result_id: &str) -> anyhow::Result<Option<String>> {
    let id = sql_string(result_id);
    let found = rows(
        e,
        &format!(
            "SELECT result_id, coalesce(sweep_id, '') AS sweep_id, model, hardware_class, batch, seq_len, precision,
                    mode, engine, status, coalesce(error, '') AS error, coalesce(stderr_tail, '') AS stderr_tail,
                    latency_n, round(latency_p50_ns / 1e6, 3) AS p50_ms, round(latency_p99_ns / 1e6, 3) AS p99_ms,
                    round(latency_median_ci_low_ns / 1e6, 3) AS ci_low_ms,
                    round(latency_median_ci_high_ns / 1e6, 3) AS ci_high_ms, engine_version, weights_source,
                    coalesce(agent_id, '') AS agent_id
             FROM results WHERE result_id = {id} LIMIT 1"
        ),
    )?;
    let Some(r) = found.first() else { return Ok(None) };
    // Narrowed by sweep too: Parquet statistics then skip other sweeps' files.
    let sweep = match get(r, "sweep_id") {
        "" => "sweep_id IS NULL".to_string(),
        s => format!("sweep_id = {}", sql_string(s)),
    };
    let samples = rows(
        e,
        &format!("SELECT latency_ns / 1e6 AS ms FROM samples WHERE {sweep} AND result_id = {id} LIMIT 100000"),
    )?;
    let ms: Vec<f64> = samples.iter().filter_map(|s| get(s, "ms").parse().ok()).collect();
    let mut body = format!("<h1>Result {}</h1>\n", esc(result_id));
    body.push_str(&table(
        &found,
        &[
            ("sweep_id", "sweep"),
            ("model", "model"),
            ("hardware_class", "hardware class"),
            ("batch", "batch"),
            ("precision", "precision"),
            ("mode", "mode"),
            ("engine", "engine"),
            ("engine_version", "engine version"),
            ("weights_source", "weights"),
            ("agent_id", "agent"),
            ("status", "status"),
            ("latency_n", "n"),
            ("p50_ms", "p50 ms"),
            ("ci_low_ms", "CI low"),
            ("ci_high_ms", "CI high"),
            ("p99_ms", "p99 ms"),
        ],
        Some(("sweep_id", "/sweeps/")),
    ));
    if !get(r, "error").is_empty() {
        body.push_str(&format!("<h2>Reason</h2><pre>{}</pre>\n", esc(get(r, "error"))));
    }
    if !get(r, "stderr_tail").is_empty() {
        body.push_str(&format!("<h2>stderr (tail)</h2><pre>{}</pre>\n", esc(get(r, "stderr_tail"))));
    }
    if !ms.is_empty() {
        body.push_str(&format!("<figure id=samples>{}</figure>\n", chart::histogram(&ms)?));
    }
    Ok(Some(layout("result", &body)))
}

/// Family × hardware class: ok, unsupported (with the engine's reason in the sweep
/// pages), failed or untested.
pub fn compatibility(e: &QueryEngine) -> anyhow::Result<String> {
    let grid = crate::report::html::compatibility_grid(&e.query("SELECT * FROM compatibility_matrix")?)?;
    Ok(layout("compatibility", &grid))
}

/// A sweep's page: its name and submitter from the warehouse, then its live part
/// ([`sweep_status`]). `None` when neither the warehouse nor the coordinator (`live`,
/// its progress line) knows the sweep.
pub fn sweep(e: &QueryEngine, id: SweepId, live: Option<String>) -> anyhow::Result<Option<String>> {
    let sid = sql_string(&id.to_string());
    let found = rows(
        e,
        &format!(
            "SELECT name, coalesce(submitted_by, '') AS submitted_by, n_cells,
                    strftime(submitted_at, '%Y-%m-%d %H:%M:%S') AS submitted_at
             FROM sweeps WHERE sweep_id = {sid}"
        ),
    )?;
    let header = match (found.first(), &live) {
        (Some(s), _) => format!(
            "<h1>Sweep {}</h1>\n<p>{} · {} cells · submitted {}{}</p>\n",
            esc(get(s, "name")),
            esc(&id.to_string()),
            esc(get(s, "n_cells")),
            esc(get(s, "submitted_at")),
            match get(s, "submitted_by") {
                "" => String::new(),
                by => format!(" by {}", esc(by)),
            }
        ),
        (None, Some(_)) => format!("<h1>Sweep {}</h1>\n<p>Not in the warehouse yet.</p>\n", esc(&id.to_string())),
        (None, None) => return Ok(None),
    };
    let status = sweep_status(e, id, live)?;
    Ok(Some(layout("sweep", &format!("{header}<section data-live=\"/live/sweeps/{id}\">{status}</section>\n"))))
}

/// At most this many of a sweep's cells are listed (failed ones first); the counts
/// cover them all.
pub const MAX_CELLS_SHOWN: usize = 500;

/// A sweep's progress (the coordinator's line when given, else counted from the
/// warehouse) and its cells, failed ones first: their last attempt's result, and what
/// failed and why.
pub fn sweep_status(e: &QueryEngine, id: SweepId, live: Option<String>) -> anyhow::Result<String> {
    let sid = sql_string(&id.to_string());
    // One query over the sweep's rows only (Parquet statistics skip other sweeps'
    // files): each cell's newest attempt, picked by id (an aggregate, not a sort of every
    // column); the counts by status of all cells, and the first cells listed.
    let all = rows(
        e,
        &format!(
            "WITH r AS (SELECT * FROM results WHERE sweep_id = {sid} AND result_id IN (
                   SELECT arg_max(result_id, attempt) FROM results WHERE sweep_id = {sid} GROUP BY cell_key)),
             c AS (SELECT DISTINCT cell_key, model, hardware_selector, batch, seq_len, precision, mode, engine
                   FROM cells WHERE sweep_id = {sid}),
             j AS MATERIALIZED (SELECT c.*, r.hardware_class, r.status, r.attempt, r.result_id, r.latency_p50_ns,
                                       r.latency_median_ci_low_ns, r.latency_median_ci_high_ns, r.error, r.stderr_tail
                                FROM c LEFT JOIN r USING (cell_key))
             SELECT * FROM (
                 SELECT 'cell' AS kind, model, coalesce(hardware_class, hardware_selector) AS hardware, batch, seq_len,
                        precision, mode, engine, coalesce(status, 'no result yet') AS status,
                        coalesce(CAST(attempt AS VARCHAR), '') AS attempts, result_id,
                        round(latency_p50_ns / 1e6, 3) AS p50_ms,
                        round(latency_median_ci_low_ns / 1e6, 3) AS ci_low_ms,
                        round(latency_median_ci_high_ns / 1e6, 3) AS ci_high_ms,
                        coalesce(error, '') AS error, coalesce(stderr_tail, '') AS stderr_tail
                 FROM j
                 ORDER BY CASE coalesce(status, '') WHEN 'ok' THEN 3 WHEN 'unsupported' THEN 2 WHEN '' THEN 1 ELSE 0 END,
                          model, precision, mode, hardware, batch
                 LIMIT {MAX_CELLS_SHOWN})
             UNION ALL BY NAME
             SELECT 'count' AS kind, coalesce(status, 'no result yet') AS status, count(*) AS n FROM j GROUP BY ALL"
        ),
    )?;
    let (counts, cells): (Vec<_>, Vec<_>) = all.into_iter().partition(|r| get(r, "kind") == "count");
    let count = |f: &dyn Fn(&str) -> bool| -> usize {
        counts.iter().filter(|c| f(get(c, "status"))).map(|c| get(c, "n").parse::<usize>().unwrap_or(0)).sum()
    };
    let n_cells = count(&|_| true);
    let progress = live.unwrap_or_else(|| {
        let counts = [
            ("ok", count(&|s| s == "ok")),
            ("unsupported", count(&|s| s == "unsupported")),
            ("failed", count(&|s| !matches!(s, "ok" | "unsupported" | "no result yet"))),
        ];
        let done: usize = counts.iter().map(|(_, n)| n).sum();
        format!("<p>{done} of {n_cells} cells have a result.</p>{}\n", progress_bar(&counts, n_cells))
    });
    let shown = if n_cells > cells.len() {
        format!("<p>The first {} of {n_cells} cells, failed ones first.</p>\n", cells.len())
    } else {
        String::new()
    };
    let table = table(
        &cells,
        &[
            ("model", "model"),
            ("hardware", "hardware"),
            ("batch", "batch"),
            ("seq_len", "seq"),
            ("precision", "precision"),
            ("mode", "mode"),
            ("engine", "engine"),
            ("status", "status"),
            ("attempts", "attempt"),
            ("p50_ms", "p50 ms"),
            ("ci_low_ms", "CI low"),
            ("ci_high_ms", "CI high"),
            ("result_id", "result"),
            ("error", "reason"),
        ],
        Some(("result_id", "/results/")),
    );
    Ok(format!("{progress}{shown}{table}{}", failures(&cells)))
}

/// The listed cells whose last attempt failed: the reason and the tail of the child's
/// stderr, each folded.
fn failures(cells: &[BTreeMap<String, String>]) -> String {
    let failed: Vec<&BTreeMap<String, String>> =
        cells.iter().filter(|c| !matches!(get(c, "status"), "ok" | "unsupported" | "no result yet")).collect();
    if failed.is_empty() {
        return String::new();
    }
    let mut html = String::from("<h2>Failures</h2>\n");
    for c in failed {
        html.push_str(&format!(
            "<details><summary>{} b={} {} {} on {}: {} (attempt {})</summary><pre>{}</pre>{}</details>\n",
            esc(get(c, "model")),
            esc(get(c, "batch")),
            esc(get(c, "precision")),
            esc(get(c, "mode")),
            esc(get(c, "hardware")),
            esc(get(c, "status")),
            esc(get(c, "attempts")),
            esc(get(c, "error")),
            match get(c, "stderr_tail") {
                "" => String::new(),
                tail => format!("<p>stderr (tail):</p><pre>{}</pre>", esc(tail)),
            }
        ));
    }
    html
}

/// An agent's page: what it registered (hostname, hardware classes, fingerprint) and
/// the newest results it produced; `live` is the coordinator's line about it now.
/// `None` when neither the warehouse nor the coordinator knows it.
pub fn agent(e: &QueryEngine, id: &str, live: Option<String>) -> anyhow::Result<Option<String>> {
    let aid = sql_string(id);
    let registered = rows(
        e,
        &format!(
            "SELECT hardware_class, coalesce(hostname, '') AS hostname, agent_version, fingerprint_hash,
                    fingerprint_json, strftime(registered_at, '%Y-%m-%d %H:%M:%S') AS registered,
                    strftime(last_seen_at, '%Y-%m-%d %H:%M:%S') AS last_seen
             FROM agents WHERE agent_id = {aid}
             QUALIFY row_number() OVER (PARTITION BY hardware_class ORDER BY last_seen_at DESC) = 1
             ORDER BY hardware_class"
        ),
    )?;
    if registered.is_empty() && live.is_none() {
        return Ok(None);
    }
    let mut body = format!("<h1>Agent {}</h1>\n", esc(id));
    if let Some(live) = live {
        body.push_str(&format!("<section data-live=\"/live/agents/{}\">{live}</section>\n", esc(id)));
    }
    body.push_str("<h2>Registered hardware</h2>\n");
    body.push_str(&table(
        &registered,
        &[
            ("hardware_class", "hardware class"),
            ("hostname", "host"),
            ("agent_version", "agent version"),
            ("fingerprint_hash", "fingerprint"),
            ("registered", "first registered"),
            ("last_seen", "last seen"),
        ],
        None,
    ));
    for r in &registered {
        let pretty = serde_json::from_str::<serde_json::Value>(get(r, "fingerprint_json"))
            .and_then(|v| serde_json::to_string_pretty(&v))
            .unwrap_or_else(|_| get(r, "fingerprint_json").to_string());
        body.push_str(&format!(
            "<details><summary>fingerprint of {}</summary><pre>{}</pre></details>\n",
            esc(get(r, "hardware_class")),
            esc(&pretty)
        ));
    }
    body.push_str("<h2>What it ran (newest 100)</h2>\n");
    body.push_str(&newest_where(e, &format!("agent_id = {aid}"), 100)?);
    Ok(Some(layout("agent", &body)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_take_known_columns_and_quote_values() {
        let raw =
            |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>();
        let f = Filters::parse(&raw(&[("model", "x' OR 1=1 --"), ("batch", "8"), ("engine", "")])).expect("parses");
        assert_eq!(f.sql(), " AND model = 'x'' OR 1=1 --' AND batch = 8");
        assert!(Filters::parse(&raw(&[("status; DROP", "x")])).unwrap_err().contains("unknown filter"));
        assert!(Filters::parse(&raw(&[("batch", "1 OR 1")])).unwrap_err().contains("not a batch size"));
        assert!(Filters::parse(&raw(&[("model", &"m".repeat(300))])).unwrap_err().contains("256"));
    }

    #[test]
    fn failures_list_failed_cells_with_reason_and_stderr() {
        let cell = |status: &str, tail: &str| -> BTreeMap<String, String> {
            [("model", "bert-tiny"), ("status", status), ("error", "<oom>"), ("stderr_tail", tail)]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let html = failures(&[cell("ok", ""), cell("oom", "killed\n"), cell("no result yet", ""), cell("crashed", "")]);
        assert_eq!(html.matches("<details>").count(), 2, "{html}");
        assert!(html.contains("&lt;oom&gt;") && html.contains("stderr (tail):</p><pre>killed"), "{html}");
        assert_eq!(failures(&[cell("ok", "")]), "");
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(esc("<script>\"'&"), "&lt;script&gt;&quot;&#39;&amp;");
    }
}
