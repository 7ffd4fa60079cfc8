//! The dashboard's view of this coordinator ([`crate::dashboard::live`]): every sweep's
//! cells by state and every agent with its liveness and the cells it holds, read from
//! the Raft state through the same handle as the RPCs, so the page and `accelbench
//! sweep status` agree.

use crate::dashboard::live::{LiveAgent, LiveLease, LiveSource, LiveSweep, LiveView};
use crate::state::State;

use super::Ctx;

/// The newest sweeps shown (the page polls; a lab with years of sweeps is not re-read
/// in full every two seconds).
const MAX_SWEEPS: usize = 50;

/// A source that reads `ctx`'s state each time the dashboard asks.
pub fn source(ctx: Ctx) -> LiveSource {
    LiveSource::new(move || {
        let ctx = ctx.clone();
        async move { read(&ctx).await }
    })
}

async fn read(ctx: &Ctx) -> anyhow::Result<LiveView> {
    let mut view = ctx.raft.read(|s| LiveView { sweeps: sweeps(s), agents: agents(s) }).await?;
    for agent in &mut view.agents {
        let ago = ctx.liveness.last_seen_ago(&agent.id);
        agent.last_seen_ms_ago = ago.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        agent.alive = ctx.alive(ago);
    }
    Ok(view)
}

/// The newest [`MAX_SWEEPS`] sweeps, oldest first.
fn sweeps(s: &State) -> Vec<LiveSweep> {
    let all: Vec<_> = s.sweeps().collect();
    let newest = &all[all.len().saturating_sub(MAX_SWEEPS)..];
    newest
        .iter()
        .filter_map(|sweep| {
            let status = s.sweep_status(&sweep.id)?;
            Some(LiveSweep {
                id: sweep.id.to_string(),
                name: sweep.name.clone(),
                submitted_by: sweep.submitted_by.clone(),
                submitted_at_ms: sweep.submitted_at_ms,
                cancelled: sweep.cancelled_at_ms.is_some(),
                counts: status.counts.by_name().to_vec(),
            })
        })
        .collect()
}

/// Every agent with the cells it holds (liveness is filled in by the caller).
fn agents(s: &State) -> Vec<LiveAgent> {
    s.agents()
        .map(|a| LiveAgent {
            id: a.id.to_string(),
            classes: a.devices.iter().map(|d| d.class.clone()).collect(),
            alive: false,
            last_seen_ms_ago: None,
            leases: s
                .leases_of(a.id.as_str())
                .into_iter()
                .map(|l| LiveLease {
                    sweep_id: l.sweep_id.to_string(),
                    cell: format!(
                        "{} b={} s={} {} {} {}",
                        l.cell.model, l.cell.batch, l.cell.seq_len, l.cell.precision, l.cell.mode, l.cell.engine
                    ),
                    attempt: l.attempt,
                    device_class: l.device_class,
                })
                .collect(),
        })
        .collect()
}
