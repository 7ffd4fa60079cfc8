//! What a running coordinator knows before the warehouse does: every sweep's cells by
//! state (pending and leased included), each agent's liveness and the cells it holds
//! now. `accelbench serve` hands the dashboard a [`LiveSource`] that reads its Raft state;
//! `accelbench dashboard` over a bare warehouse has none and shows what was committed.
//!
//! The pages mark the parts drawn from here with `data-live`; the dashboard's one script
//! (`live.js`) fetches those fragments again every [`POLL_MS`] and swaps them in, so a
//! sweep's progress moves without a reload.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use super::pages::{esc, progress_bar};

/// How often the page asks for its live fragments again (the script reads it from the
/// page, so it is set here only).
pub const POLL_MS: u32 = 2000;

/// A sweep as the coordinator sees it now.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveSweep {
    pub id: String,
    pub name: String,
    pub submitted_by: Option<String>,
    pub submitted_at_ms: i64,
    pub cancelled: bool,
    /// Cells by state name (`pending`, `leased`, `ok`, `unsupported`, `failed`,
    /// `cancelled`), in display order.
    pub counts: Vec<(&'static str, usize)>,
}

/// A cell an agent holds now.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveLease {
    pub sweep_id: String,
    /// model, batch, precision, mode, engine, as people read it.
    pub cell: String,
    pub attempt: u32,
    pub device_class: String,
}

/// A registered agent as the coordinator sees it now.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveAgent {
    pub id: String,
    pub classes: Vec<String>,
    pub alive: bool,
    pub last_seen_ms_ago: Option<u64>,
    pub leases: Vec<LiveLease>,
}

/// One read of the coordinator's state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LiveView {
    pub sweeps: Vec<LiveSweep>,
    pub agents: Vec<LiveAgent>,
}

type Reading = Pin<Box<dyn Future<Output = anyhow::Result<LiveView>> + Send>>;

/// Reads the coordinator's state now (`accelbench serve` builds one over its Raft node).
#[derive(Clone)]
pub struct LiveSource(Arc<dyn Fn() -> Reading + Send + Sync>);

impl LiveSource {
    pub fn new<F, Fut>(read: F) -> LiveSource
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = anyhow::Result<LiveView>> + Send + 'static,
    {
        LiveSource(Arc::new(move || Box::pin(read())))
    }

    pub async fn read(&self) -> anyhow::Result<LiveView> {
        (self.0)().await
    }
}

/// The sweeps table, newest first, with a progress bar by cell state.
pub fn sweeps_html(view: &LiveView) -> String {
    if view.sweeps.is_empty() {
        return "<p>No sweeps submitted yet.</p>\n".into();
    }
    let mut html = String::from(
        "<div class=scroll><table><tr><th>sweep</th><th>name</th><th>submitted by</th><th>submitted</th>\
         <th>cells</th><th>pending</th><th>leased</th><th>ok</th><th>unsupported</th><th>failed</th>\
         <th>cancelled</th><th>progress</th></tr>\n",
    );
    for s in view.sweeps.iter().rev() {
        html.push_str(&sweep_row(s));
    }
    html.push_str("</table></div>\n");
    html
}

fn sweep_row(s: &LiveSweep) -> String {
    let total: usize = s.counts.iter().map(|(_, n)| n).sum();
    let counts: String = s.counts.iter().map(|(_, n)| format!("<td>{n}</td>")).collect();
    let name = if s.cancelled { format!("{} (cancelled)", s.name) } else { s.name.clone() };
    format!(
        "<tr data-sweep=\"{id}\"><td class=t><a href=\"/sweeps/{id}\">{id}</a></td><td class=t>{}</td><td class=t>{}</td>\
         <td class=t>{}</td><td>{total}</td>{counts}<td>{}</td></tr>\n",
        esc(&name),
        esc(s.submitted_by.as_deref().unwrap_or("")),
        esc(&time(s.submitted_at_ms)),
        progress_bar(&s.counts, total),
        id = esc(&s.id),
    )
}

/// One sweep's progress line, or `None` when the coordinator has no such sweep.
pub fn sweep_progress_html(view: &LiveView, id: &str) -> Option<String> {
    let s = view.sweeps.iter().find(|s| s.id == id)?;
    let total: usize = s.counts.iter().map(|(_, n)| n).sum();
    let counts: Vec<String> = s.counts.iter().filter(|(_, n)| *n > 0).map(|(k, n)| format!("{n} {k}")).collect();
    Some(format!(
        "<p data-sweep=\"{}\">{} cells: {}{}</p>{}\n",
        esc(id),
        total,
        esc(&counts.join(", ")),
        if s.cancelled { " · cancelled" } else { "" },
        progress_bar(&s.counts, total)
    ))
}

/// The agents table: hardware classes, alive or silent, last heartbeat, cells held.
pub fn agents_html(view: &LiveView) -> String {
    if view.agents.is_empty() {
        return "<p>No agent registered.</p>\n".into();
    }
    let mut html = String::from(
        "<div class=scroll><table><tr><th>agent</th><th>hardware class</th><th>state</th>\
         <th>last heartbeat</th><th>running now</th></tr>\n",
    );
    for a in &view.agents {
        let state = if a.alive { "alive" } else { "silent" };
        let seen = a.last_seen_ms_ago.map_or("none since the coordinator started".into(), ago);
        html.push_str(&format!(
            "<tr data-agent=\"{id}\"><td class=t><a href=\"/agents/{id}\">{id}</a></td><td class=t>{}</td>\
             <td class=\"{state}\">{state}</td><td class=t>{}</td><td class=t>{}</td></tr>\n",
            esc(&a.classes.join(", ")),
            esc(&seen),
            leases_html(&a.leases),
            id = esc(&a.id),
        ));
    }
    html.push_str("</table></div>\n");
    html
}

/// One agent's line now, or `None` when the coordinator does not know it.
pub fn agent_html(view: &LiveView, id: &str) -> Option<String> {
    let a = view.agents.iter().find(|a| a.id == id)?;
    let seen = a.last_seen_ms_ago.map_or("none since the coordinator started".into(), ago);
    Some(format!(
        "<p>{} · last heartbeat {} · running now: {}</p>\n",
        if a.alive { "alive" } else { "silent" },
        esc(&seen),
        leases_html(&a.leases)
    ))
}

/// The cells an agent holds, each linking to its sweep.
pub fn leases_html(leases: &[LiveLease]) -> String {
    if leases.is_empty() {
        return "idle".into();
    }
    leases
        .iter()
        .map(|l| {
            format!(
                "<a href=\"/sweeps/{}\">{}</a> (attempt {}, {})",
                esc(&l.sweep_id),
                esc(&l.cell),
                l.attempt,
                esc(&l.device_class)
            )
        })
        .collect::<Vec<_>>()
        .join("<br>")
}

fn ago(ms: u64) -> String {
    match ms {
        0..=999 => format!("{ms} ms ago"),
        1000..=119_999 => format!("{:.0} s ago", ms as f64 / 1000.0),
        _ => format!("{:.0} min ago", ms as f64 / 60_000.0),
    }
}

fn time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map_or_else(String::new, |t| t.format("%Y-%m-%d %H:%M:%S").to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view() -> LiveView {
        LiveView {
            sweeps: vec![LiveSweep {
                id: "s1".into(),
                name: "<b>nightly</b>".into(),
                submitted_by: Some("alice".into()),
                submitted_at_ms: 0,
                cancelled: false,
                counts: vec![
                    ("pending", 2),
                    ("leased", 1),
                    ("ok", 1),
                    ("unsupported", 0),
                    ("failed", 0),
                    ("cancelled", 0),
                ],
            }],
            agents: vec![LiveAgent {
                id: "gpu-1".into(),
                classes: vec!["cpu/x".into()],
                alive: true,
                last_seen_ms_ago: Some(1500),
                leases: vec![LiveLease {
                    sweep_id: "s1".into(),
                    cell: "bert-tiny b=1 fp32 inference candle".into(),
                    attempt: 2,
                    device_class: "cpu/x".into(),
                }],
            }],
        }
    }

    #[test]
    fn sweeps_show_every_state_and_escape_names() {
        let html = sweeps_html(&view());
        assert!(html.contains("&lt;b&gt;nightly"), "{html}");
        assert!(html.contains("<td>4</td><td>2</td><td>1</td><td>1</td><td>0</td><td>0</td><td>0</td>"), "{html}");
        assert!(html.contains("width:50.0%"), "pending half of the bar: {html}");
        let line = sweep_progress_html(&view(), "s1").expect("known sweep");
        assert!(line.contains("4 cells: 2 pending, 1 leased, 1 ok"), "{line}");
        assert!(sweep_progress_html(&view(), "s2").is_none());
    }

    #[test]
    fn agents_show_what_they_run() {
        let html = agents_html(&view());
        assert!(html.contains("bert-tiny b=1 fp32 inference candle</a> (attempt 2, cpu/x)"), "{html}");
        assert!(html.contains("2 s ago") && html.contains(">alive<"), "{html}");
        assert_eq!(agents_html(&LiveView::default()), "<p>No agent registered.</p>\n");
    }
}
