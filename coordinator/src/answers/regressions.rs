//! `accelbench regressions`: what got slower. A series is one cell's coordinates on one
//! hardware class over time; each `ok` run contributes its run-level median
//! (`latency_p50_ns`), never its pooled samples (runs differ among themselves, and a test
//! on pooled samples alarms far above its nominal rate). `analysis::regressions` finds the
//! changes (E-divisive change points confirmed by a permutation test, and a t-test of the
//! latest runs against the runs before them; both with a minimum effect); this module
//! chooses the series with DuckDB, names the first bad run and what changed in its
//! provenance, and shapes the alarms as rows (printed, and with `--record` committed to
//! the warehouse's `alarms` table).

use std::sync::Arc;

use analysis::regressions::{detect, Alarm, DetectOptions, FoundBy};
use arrow::array::{ArrayRef, Float64Array, RecordBatch, StringArray, TimestampMillisecondArray, UInt32Array};

use super::columns::Columns;
use super::compare::{Coordinates, Provenance, COORDINATES, PROVENANCE};
use super::selection::Selection;
use crate::query::{QueryEngine, QueryOutput};
use crate::warehouse::schema::{alarms_schema, WAREHOUSE_SCHEMA_VERSION};

/// One run of a series.
#[derive(Debug, Clone)]
pub struct Run {
    pub result_id: String,
    pub sweep_id: String,
    pub started_at_ms: i64,
    pub p50_ns: f64,
    pub provenance: Provenance,
}

#[derive(Debug, Clone)]
pub struct Series {
    pub coordinates: Coordinates,
    /// Oldest first.
    pub runs: Vec<Run>,
}

/// The `ok` runs of every series in `selection` started at or after `since_ms`.
pub fn load(engine: &QueryEngine, selection: &Selection, since_ms: Option<i64>) -> anyhow::Result<Vec<Series>> {
    let since = since_ms.map_or(String::new(), |ms| format!("AND epoch_ms(r.started_at) >= {ms}"));
    let sql = format!(
        "SELECT {COORDINATES}, result_id, coalesce(sweep_id, '') AS sweep_id, epoch_ms(started_at) AS started_ms,
                latency_p50_ns, {PROVENANCE}
         FROM results r
         WHERE r.status = 'ok' AND r.latency_p50_ns IS NOT NULL AND {} {since}
         ORDER BY {COORDINATES}, started_at, attempt",
        selection.condition("r")
    );
    let rows = engine.query(&sql)?;
    let mut series: Vec<Series> = Vec::new();
    for batch in &rows.batches {
        let c = Columns::new(batch);
        for i in 0..batch.num_rows() {
            let coordinates = Coordinates::read(&c, i)?;
            let run = Run {
                result_id: c.string("result_id", i)?,
                sweep_id: c.string("sweep_id", i)?,
                started_at_ms: c.i64("started_ms", i)?,
                p50_ns: c.f64("latency_p50_ns", i)?.unwrap_or(f64::NAN),
                provenance: Provenance::read(&c, i)?,
            };
            match series.last_mut() {
                Some(s) if s.coordinates == coordinates => s.runs.push(run),
                _ => series.push(Series { coordinates, runs: vec![run] }),
            }
        }
    }
    Ok(series)
}

/// An alarm with the runs it is about.
#[derive(Debug, Clone)]
pub struct Found {
    pub coordinates: Coordinates,
    pub alarm: Alarm,
    pub first_bad: Run,
    /// The run just before the first bad one: what its provenance changed from.
    pub last_good: Run,
    pub n_runs: usize,
}

/// What [`find`] saw: the alarms, and the series it could not judge with why.
pub struct Findings {
    pub found: Vec<Found>,
    pub n_series: usize,
    pub skipped: Vec<(Coordinates, String)>,
}

pub fn find(series: Vec<Series>, options: &DetectOptions) -> Findings {
    let mut findings = Findings { found: Vec::new(), n_series: series.len(), skipped: Vec::new() };
    for s in series {
        let medians: Vec<f64> = s.runs.iter().map(|r| r.p50_ns).collect();
        match detect(&medians, options) {
            Ok(alarms) => {
                for alarm in alarms {
                    let (Some(first_bad), Some(last_good)) = (
                        s.runs.get(alarm.first_bad_run),
                        alarm.first_bad_run.checked_sub(1).and_then(|i| s.runs.get(i)),
                    ) else {
                        continue;
                    };
                    findings.found.push(Found {
                        coordinates: s.coordinates.clone(),
                        alarm,
                        first_bad: first_bad.clone(),
                        last_good: last_good.clone(),
                        n_runs: s.runs.len(),
                    });
                }
            }
            Err(why) => findings.skipped.push((s.coordinates, why.to_string())),
        }
    }
    findings
}

/// How an alarm was found, stored with it: a later reader knows the rule.
pub fn method(options: &DetectOptions, found_by: FoundBy) -> String {
    let cp = &options.change_points;
    let check = match (found_by, options.latest) {
        (FoundBy::LatestRuns, Some(latest)) => format!(
            "t-test of the latest {} run medians against the {}+ before them on their logarithms (p ≤ {}), \
             confirmed by an exact rank test (p ≤ {})",
            latest.n_latest, latest.min_history, latest.significance, latest.rank_significance
        ),
        _ => format!(
            "e-divisive means on run medians (min segment {}, {} permutations, p ≤ {})",
            cp.min_segment, cp.n_permutations, cp.significance
        ),
    };
    format!("{check}, min effect {}", options.min_effect)
}

/// The alarms as rows: printed by every format, and the `alarms` table's columns.
pub fn to_rows(found: &[Found], detected_at_ms: i64, options: &DetectOptions) -> anyhow::Result<QueryOutput> {
    let text = |f: &dyn Fn(&Found) -> String| -> ArrayRef {
        Arc::new(StringArray::from(found.iter().map(f).collect::<Vec<_>>()))
    };
    let num = |f: &dyn Fn(&Found) -> f64| -> ArrayRef {
        Arc::new(Float64Array::from(found.iter().map(f).collect::<Vec<_>>()))
    };
    let u32s = |f: &dyn Fn(&Found) -> u32| -> ArrayRef {
        Arc::new(UInt32Array::from(found.iter().map(f).collect::<Vec<_>>()))
    };
    let times = |f: &dyn Fn(&Found) -> i64| -> ArrayRef {
        Arc::new(TimestampMillisecondArray::from(found.iter().map(f).collect::<Vec<_>>()).with_timezone("+00:00"))
    };
    let columns: Vec<(&str, ArrayRef)> = vec![
        ("schema_version", u32s(&|_| WAREHOUSE_SCHEMA_VERSION)),
        ("model", text(&|f| f.coordinates.model.clone())),
        ("hardware_class", text(&|f| f.coordinates.hardware_class.clone())),
        ("batch", u32s(&|f| f.coordinates.batch)),
        ("seq_len", u32s(&|f| f.coordinates.seq_len)),
        ("precision", text(&|f| f.coordinates.precision.clone())),
        ("mode", text(&|f| f.coordinates.mode.clone())),
        ("engine", text(&|f| f.coordinates.engine.clone())),
        ("weights_source", text(&|f| f.coordinates.weights_source.clone())),
        ("first_bad_started_at", times(&|f| f.first_bad.started_at_ms)),
        ("first_bad_sweep_id", text(&|f| f.first_bad.sweep_id.clone())),
        ("first_bad_result_id", text(&|f| f.first_bad.result_id.clone())),
        ("run_index", u32s(&|f| f.alarm.first_bad_run as u32)),
        ("n_runs", u32s(&|f| f.n_runs as u32)),
        ("before_p50_ms", num(&|f| f.alarm.before_median / 1e6)),
        ("after_p50_ms", num(&|f| f.alarm.after_median / 1e6)),
        ("ratio", num(&|f| f.alarm.ratio)),
        ("ci_low", num(&|f| f.alarm.ratio_ci.low())),
        ("ci_high", num(&|f| f.alarm.ratio_ci.high())),
        ("p_value", num(&|f| f.alarm.p_value)),
        ("changed", text(&|f| f.last_good.provenance.changes_to(&f.first_bad.provenance))),
        ("detected_at", times(&|_| detected_at_ms)),
        ("method", text(&|f| method(options, f.alarm.found_by))),
    ];
    // The warehouse's `alarms` table has exactly these columns: one definition, checked
    // here by name and type.
    let schema = alarms_schema();
    for ((name, array), field) in columns.iter().zip(schema.fields()) {
        anyhow::ensure!(
            field.name() == name && field.data_type() == array.data_type(),
            "alarms column {name} does not match the table's {}",
            field.name()
        );
    }
    let batch = RecordBatch::try_new(schema.clone(), columns.into_iter().map(|(_, a)| a).collect())?;
    Ok(QueryOutput { schema, batches: vec![batch] })
}
