//! The `agents`, `calibrations`, `sweeps` and `cells` tables the coordinator writes beside `results`, so
//! that a row can be joined to the machine and the request behind it ("which GPU and
//! driver produced this row": `results JOIN agents USING (agent_id, hardware_class)`).
//!
//! They are append-only logs (the newest row of an id wins, see docs/SCHEMA.md), written
//! after the Raft entry they describe. A failed write is logged and does not undo the
//! registration or submit: the replicated state is the authority, these tables are its
//! queryable copy, and an agent's next registration writes its rows again.

use shared::cell::{Cell, CellKey};
use shared::fingerprint::Fingerprint;
use shared::spec::SweepSpec;

use super::Ctx;
use crate::state::{DeviceGroup, SweepId};
use crate::warehouse::schema::{AgentRow, CalibrationRow, CellRow, SweepRow};
use shared::calibration::Calibration;

/// One row per device group the agent registered with.
pub fn agent_rows(
    agent_id: &str,
    fp: &Fingerprint,
    devices: &[DeviceGroup],
    agent_version: &str,
    at_ms: i64,
) -> Vec<AgentRow> {
    devices.iter().map(|group| agent_row(agent_id, fp, &group.class, agent_version, at_ms)).collect()
}

/// The row of one hardware class of an agent (or of the quickstart, which runs its cells
/// as an agent would).
pub fn agent_row(agent_id: &str, fp: &Fingerprint, class: &str, agent_version: &str, at_ms: i64) -> AgentRow {
    AgentRow {
        agent_id: agent_id.to_string(),
        hostname: Some(fp.hostname.clone()).filter(|h| !h.is_empty()),
        hardware_class: class.to_string(),
        fingerprint_hash: fp.hash(),
        fingerprint_json: serde_json::to_string(fp).unwrap_or_default(),
        agent_version: agent_version.to_string(),
        registered_at_ms: at_ms,
        last_seen_at_ms: at_ms,
    }
}

/// One row per calibration the agent registered with.
pub fn calibration_rows(agent_id: &str, fp: &Fingerprint, calibrations: Vec<Calibration>) -> Vec<CalibrationRow> {
    let fingerprint_hash = fp.hash();
    calibrations
        .into_iter()
        .map(|calibration| CalibrationRow {
            agent_id: agent_id.to_string(),
            fingerprint_hash: fingerprint_hash.clone(),
            calibration,
        })
        .collect()
}

pub fn sweep_row(
    sweep_id: SweepId,
    spec: &SweepSpec,
    n_cells: u64,
    at_ms: i64,
    submitted_by: Option<String>,
) -> SweepRow {
    SweepRow {
        sweep_id: sweep_id.to_string(),
        name: spec.name.clone(),
        submitted_by,
        submitted_at_ms: at_ms,
        priority: spec.policy.priority,
        max_attempts: spec.policy.max_attempts,
        n_cells,
        spec_json: serde_json::to_string(spec).unwrap_or_default(),
    }
}

/// The cells as submitted (state `pending`, no attempts yet).
pub fn cell_rows(sweep_id: SweepId, cells: &[(CellKey, Cell)], at_ms: i64) -> Vec<CellRow> {
    cells
        .iter()
        .map(|(key, cell)| CellRow {
            sweep_id: sweep_id.to_string(),
            cell_key: key.to_string(),
            model: cell.model.clone(),
            hardware_selector: cell.hardware.to_string(),
            hardware_class: cell.hardware_class.clone(),
            batch: cell.batch,
            seq_len: cell.seq_len,
            precision: cell.precision.as_str().to_string(),
            mode: cell.mode.as_str().to_string(),
            engine: cell.engine.as_str().to_string(),
            state: crate::state::views::state_names::PENDING.into(),
            attempts: 0,
            updated_at_ms: at_ms,
        })
        .collect()
}

/// The cell a finished result answers, in its final state: for runs with no coordinator
/// (the quickstart), whose cells exist only as their results.
pub fn finished_cell_row(r: &shared::result::ResultRecord) -> CellRow {
    use crate::state::views::state_names;
    let c = &r.coordinates;
    CellRow {
        sweep_id: r.sweep_id.clone().unwrap_or_default(),
        cell_key: r.cell_key.clone(),
        model: c.model.clone(),
        hardware_selector: c.hardware_class.clone(),
        hardware_class: Some(c.hardware_class.clone()),
        batch: c.batch,
        seq_len: c.seq_len,
        precision: c.precision.as_str().to_string(),
        mode: c.mode.as_str().to_string(),
        engine: c.engine.clone(),
        state: match r.status {
            shared::result::Status::Ok => state_names::OK,
            shared::result::Status::Unsupported => state_names::UNSUPPORTED,
            _ => state_names::FAILED,
        }
        .into(),
        attempts: r.attempt,
        updated_at_ms: r.provenance.finished_at_ms,
    }
}

pub async fn write_agents(ctx: &Ctx, rows: Vec<AgentRow>) {
    if let Err(e) = ctx.warehouse.write_agents(&rows).await {
        tracing::error!(error = %e, "writing the agents table");
    }
}

pub async fn write_calibrations(ctx: &Ctx, rows: Vec<CalibrationRow>) {
    if rows.is_empty() {
        return;
    }
    if let Err(e) = ctx.warehouse.write_calibrations(&rows).await {
        tracing::error!(error = %e, "writing the calibrations table");
    }
}

pub async fn write_sweep(ctx: &Ctx, sweep: SweepRow, cells: Vec<CellRow>) {
    if let Err(e) = ctx.warehouse.write_sweeps(&[sweep]).await {
        tracing::error!(error = %e, "writing the sweeps table");
    }
    if let Err(e) = ctx.warehouse.write_cells(&cells).await {
        tracing::error!(error = %e, "writing the cells table");
    }
}
