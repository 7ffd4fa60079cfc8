//! `accelbench compare BASE NEW`: the same cells in two selections, matched on their
//! coordinates, each pair judged from its raw samples (`analysis::compare`: the ratio
//! of medians with a bootstrap interval, and a verdict against a threshold), with what
//! differs in provenance between the two sides.
//!
//! Within one selection a cell's newest `ok` result is the one compared (a sweep has one
//! per cell; a wider filter may match several runs, and `n_results` says how many).

use std::collections::BTreeMap;
use std::sync::Arc;

use analysis::compare::{ratio_of_medians, CompareOptions, Verdict};
use arrow::array::{ArrayRef, Float64Array, StringArray, UInt32Array, UInt64Array};

use super::columns::Columns;
use super::selection::Selection;
use crate::query::{QueryEngine, QueryOutput};

/// What makes two results measurements of the same thing.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Coordinates {
    pub model: String,
    pub hardware_class: String,
    pub batch: u32,
    pub seq_len: u32,
    pub precision: String,
    pub mode: String,
    pub engine: String,
    pub weights_source: String,
}

/// What a result says about the software and machine that produced it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provenance {
    pub agent_version: String,
    pub engine_version: String,
    pub git_commit: String,
    pub fingerprint_hash: String,
}

impl Coordinates {
    /// From a row that has the [`COORDINATES`] columns.
    pub fn read(c: &Columns, i: usize) -> anyhow::Result<Coordinates> {
        Ok(Coordinates {
            model: c.string("model", i)?,
            hardware_class: c.string("hardware_class", i)?,
            batch: c.u32("batch", i)?,
            seq_len: c.u32("seq_len", i)?,
            precision: c.string("precision", i)?,
            mode: c.string("mode", i)?,
            engine: c.string("engine", i)?,
            weights_source: c.string("weights_source", i)?,
        })
    }

    /// How a person reads a cell: `bert-tiny b8 s128 fp32 inference candle on cpu/…`.
    pub fn label(&self) -> String {
        format!(
            "{} b{} s{} {} {} {} on {}",
            self.model, self.batch, self.seq_len, self.precision, self.mode, self.engine, self.hardware_class
        )
    }
}

/// The provenance columns a row names.
pub const PROVENANCE: &str = "agent_version, engine_version, git_commit, fingerprint_hash";

impl Provenance {
    /// From a row that has the [`PROVENANCE`] columns.
    pub fn read(c: &Columns, i: usize) -> anyhow::Result<Provenance> {
        Ok(Provenance {
            agent_version: c.string("agent_version", i)?,
            engine_version: c.string("engine_version", i)?,
            git_commit: c.string("git_commit", i)?,
            fingerprint_hash: c.string("fingerprint_hash", i)?,
        })
    }

    /// `engine_version 0.9.0 → 0.10.0; git_commit a1 → b2`: what differs from `self` to
    /// `later`; empty when nothing does.
    pub fn changes_to(&self, later: &Provenance) -> String {
        let (a, b) = (self, later);
        let fields = [
            ("agent_version", &a.agent_version, &b.agent_version),
            ("engine_version", &a.engine_version, &b.engine_version),
            ("git_commit", &a.git_commit, &b.git_commit),
            ("fingerprint", &a.fingerprint_hash, &b.fingerprint_hash),
        ];
        let changed: Vec<String> =
            fields.iter().filter(|(_, x, y)| x != y).map(|(name, x, y)| format!("{name} {x} → {y}")).collect();
        changed.join("; ")
    }
}

/// One side of a pair: a cell's newest `ok` result in a selection.
#[derive(Debug, Clone)]
pub struct Side {
    pub result_id: String,
    pub samples: Vec<f64>,
    pub provenance: Provenance,
    /// `ok` results of these coordinates in the selection.
    pub n_results: u64,
}

/// Reads a selection's newest `ok` result per coordinates, with its raw samples.
pub fn load(engine: &QueryEngine, selection: &Selection) -> anyhow::Result<BTreeMap<Coordinates, Side>> {
    let rows = engine.query(&load_sql(selection))?;
    let mut sides = BTreeMap::new();
    for batch in &rows.batches {
        let c = Columns::new(batch);
        for i in 0..batch.num_rows() {
            let coordinates = Coordinates::read(&c, i)?;
            let side = Side {
                result_id: c.string("result_id", i)?,
                samples: c.f64_list("samples", i)?,
                provenance: Provenance::read(&c, i)?,
                n_results: c.u64("n_results", i)?,
            };
            sides.insert(coordinates, side);
        }
    }
    Ok(sides)
}

pub const COORDINATES: &str = "model, hardware_class, batch, seq_len, precision, mode, engine, weights_source";

fn load_sql(selection: &Selection) -> String {
    // The newest ok result per cell is picked by id with an aggregate (not a window that
    // sorts every row), and its samples gathered in one grouped pass.
    format!(
        "WITH picked AS (
            SELECT arg_max(r.result_id, (r.finished_at, r.attempt)) AS result_id, count(*) AS n_results
            FROM results r
            WHERE r.status = 'ok' AND {}
            GROUP BY {COORDINATES}),
        sampled AS (
            SELECT s.result_id, list(s.latency_ns ORDER BY s.iteration) AS samples
            FROM samples s SEMI JOIN picked USING (result_id)
            WHERE {}
            GROUP BY s.result_id)
        SELECT {COORDINATES}, result_id, {PROVENANCE},
               CAST(picked.n_results AS UBIGINT) AS n_results, coalesce(sampled.samples, []) AS samples
        FROM results r JOIN picked USING (result_id) LEFT JOIN sampled USING (result_id)
        WHERE {}
        ORDER BY {COORDINATES}",
        selection.condition("r"),
        // The same selection again where it applies: Parquet statistics then skip the
        // files of other sweeps (and other rows) instead of joining them.
        selection.condition_on("s", &["sweep_id"]),
        selection.condition("r"),
    )
}

/// A selection that matched nothing: what exists instead, for the error message.
pub fn describe_warehouse(engine: &QueryEngine) -> anyhow::Result<String> {
    let rows = engine.query(
        "SELECT coalesce(sweep_id, '(none)') AS sweep_id, count(*) AS n, max(finished_at) AS last
         FROM results WHERE status = 'ok' GROUP BY ALL ORDER BY last DESC LIMIT 10",
    )?;
    let mut lines = Vec::new();
    for batch in &rows.batches {
        let c = Columns::new(batch);
        for i in 0..batch.num_rows() {
            lines.push(format!("  {} ({} ok results)", c.string("sweep_id", i)?, c.i64("n", i)?));
        }
    }
    Ok(if lines.is_empty() {
        "the warehouse has no ok results".into()
    } else {
        format!("the newest sweeps with ok results:\n{}", lines.join("\n"))
    })
}

/// One matched cell, judged.
#[derive(Debug, Clone)]
pub struct Pair {
    pub coordinates: Coordinates,
    pub base: Side,
    pub new: Side,
    /// The judgement, or why there is none (too few samples on a side).
    pub outcome: Result<analysis::compare::Comparison, String>,
}

impl Pair {
    pub fn verdict(&self) -> Option<Verdict> {
        self.outcome.as_ref().ok().map(|c| c.verdict)
    }

    /// What differs in provenance from base to new.
    pub fn changes(&self) -> String {
        self.base.provenance.changes_to(&self.new.provenance)
    }
}

/// The pairs of cells both sides measured, and the coordinates only one side has.
pub struct Matched {
    pub pairs: Vec<Pair>,
    pub only_base: Vec<Coordinates>,
    pub only_new: Vec<Coordinates>,
}

pub fn judge(
    base: BTreeMap<Coordinates, Side>,
    mut new: BTreeMap<Coordinates, Side>,
    options: &CompareOptions,
) -> Matched {
    let mut matched = Matched { pairs: Vec::new(), only_base: Vec::new(), only_new: Vec::new() };
    for (coordinates, base) in base {
        let Some(new) = new.remove(&coordinates) else {
            matched.only_base.push(coordinates);
            continue;
        };
        let outcome = ratio_of_medians(&base.samples, &new.samples, options).map_err(|e| e.to_string());
        matched.pairs.push(Pair { coordinates, base, new, outcome });
    }
    matched.only_new = new.into_keys().collect();
    matched
}

/// The pairs counted by verdict: `N pairs: a slower, b faster, c same, d inconclusive,
/// e without a judgement` (the CLI's and the dashboard's line).
pub fn summary(matched: &Matched) -> String {
    let count = |v: Option<Verdict>| matched.pairs.iter().filter(|p| p.verdict() == v).count();
    format!(
        "{} pairs: {} slower, {} faster, {} same, {} inconclusive, {} without a judgement",
        matched.pairs.len(),
        count(Some(Verdict::Slower)),
        count(Some(Verdict::Faster)),
        count(Some(Verdict::Same)),
        count(Some(Verdict::Inconclusive)),
        count(None),
    )
}

/// A verdict as printed and as `--format json` spells it.
pub fn verdict_name(v: Verdict) -> &'static str {
    match v {
        Verdict::Faster => "faster",
        Verdict::Slower => "slower",
        Verdict::Same => "same",
        Verdict::Inconclusive => "inconclusive",
    }
}

/// The pairs as rows, for the one renderer every command uses.
pub fn to_rows(pairs: &[Pair]) -> anyhow::Result<QueryOutput> {
    let text = |f: &dyn Fn(&Pair) -> String| -> ArrayRef {
        Arc::new(StringArray::from(pairs.iter().map(f).collect::<Vec<_>>()))
    };
    let num = |f: &dyn Fn(&Pair) -> Option<f64>| -> ArrayRef {
        Arc::new(Float64Array::from(pairs.iter().map(f).collect::<Vec<_>>()))
    };
    let ok = |p: &Pair| p.outcome.as_ref().ok().copied();
    let columns: Vec<(&str, ArrayRef)> = vec![
        ("model", text(&|p| p.coordinates.model.clone())),
        ("hardware_class", text(&|p| p.coordinates.hardware_class.clone())),
        ("batch", Arc::new(UInt32Array::from(pairs.iter().map(|p| p.coordinates.batch).collect::<Vec<_>>()))),
        ("seq_len", Arc::new(UInt32Array::from(pairs.iter().map(|p| p.coordinates.seq_len).collect::<Vec<_>>()))),
        ("precision", text(&|p| p.coordinates.precision.clone())),
        ("mode", text(&|p| p.coordinates.mode.clone())),
        ("engine", text(&|p| p.coordinates.engine.clone())),
        ("base_p50_ms", num(&|p| ok(p).map(|c| c.base_median / 1e6))),
        ("new_p50_ms", num(&|p| ok(p).map(|c| c.new_median / 1e6))),
        ("ratio", num(&|p| ok(p).map(|c| c.ratio))),
        ("ci_low", num(&|p| ok(p).map(|c| c.ratio_ci.low()))),
        ("ci_high", num(&|p| ok(p).map(|c| c.ratio_ci.high()))),
        ("verdict", text(&|p| p.verdict().map_or("none", verdict_name).into())),
        ("n_base", Arc::new(UInt64Array::from(pairs.iter().map(|p| p.base.samples.len() as u64).collect::<Vec<_>>()))),
        ("n_new", Arc::new(UInt64Array::from(pairs.iter().map(|p| p.new.samples.len() as u64).collect::<Vec<_>>()))),
        ("changed", text(&|p| p.changes())),
        ("note", text(&|p| p.outcome.as_ref().err().cloned().unwrap_or_default())),
    ];
    super::columns::rows(columns)
}
