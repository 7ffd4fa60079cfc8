//! `accelbench scorecard`: how often the answers are wrong, measured on the warehouse's
//! own data (`ops/analysis/study.sh` builds a data set for it). The evaluations are
//! `analysis::scorecard`'s; this module loads the noise study and the prediction rows.

use analysis::scorecard::NoiseCell;

use super::columns::Columns;
use super::compare::COORDINATES;
use crate::query::QueryEngine;

/// Every measured series of `ok` runs with at least `min_runs` runs, each run with its
/// raw samples (ns), oldest run first: the noise study.
pub fn load_noise(engine: &QueryEngine, min_runs: u32) -> anyhow::Result<Vec<NoiseCell>> {
    let sql = format!(
        "WITH runs AS (
            SELECT r.*, count(*) OVER (PARTITION BY {COORDINATES}) AS n_runs
            FROM results r WHERE r.status = 'ok' AND r.origin = 'measured' AND r.n_samples > 0
        )
        SELECT {COORDINATES}, started_at,
               coalesce((SELECT list(s.latency_ns ORDER BY s.iteration) FROM samples s
                         WHERE s.result_id = runs.result_id), []) AS samples
        FROM runs WHERE n_runs >= {min_runs}
        ORDER BY {COORDINATES}, started_at, result_id"
    );
    let rows = engine.query(&sql)?;
    let mut cells: Vec<NoiseCell> = Vec::new();
    for batch in &rows.batches {
        let c = Columns::new(batch);
        for i in 0..batch.num_rows() {
            // Runs with other weights are another series: the weights are in the name.
            let name = format!(
                "{} {} b{} s{} {} {} {} {}",
                c.string("model", i)?,
                c.string("hardware_class", i)?,
                c.u32("batch", i)?,
                c.u32("seq_len", i)?,
                c.string("precision", i)?,
                c.string("mode", i)?,
                c.string("engine", i)?,
                c.string("weights_source", i)?,
            );
            let samples = c.f64_list("samples", i)?;
            // Rows come ordered by coordinates: a new name starts a new cell.
            match cells.last_mut() {
                Some(last) if last.name == name => last.runs.push(samples),
                _ => cells.push(NoiseCell { name, runs: vec![samples] }),
            }
        }
    }
    Ok(cells)
}
