//! The recommendation scorecard: how far from the best is the hardware class picked for
//! a query, from measurements and from predictions for a model never measured.
//!
//! A query is a model, batch, precision, mode and sequence length measured on at least
//! two classes. A class's measured latency for it is the median of its rows; its
//! measured peak memory the largest of its memory rows (a limit broken by any run is
//! broken). A class *fits* unless it has a limit in `memory_limit_bytes` and its measured
//! peak memory for the query is above it (no memory row: it is taken to fit). The true
//! best class is the fitting class of lowest measured latency; a query where no class
//! fits has no right answer and is not counted.
//!
//! One pick rule serves both scores: among the candidate classes not excluded, the one
//! of lowest latency (ties to the first class by name).
//!
//! - Measured: latency and exclusion as measured. It must pick the best every time; it
//!   is computed through the same rule so that a broken rule shows.
//! - Hidden model: for each model, the predictor is fitted on the other models' rows and
//!   predicts every candidate class of each of the model's queries; with limits, a
//!   memory predictor fitted likewise excludes a class whose predicted interval's high
//!   end is above its limit, the rule `recommend` applies to predicted classes.
//!
//! Per score: the queries, how many got a pick, the share where the pick is the best and
//! where it is within `within` (10 %) of it, the mean regret (true latency of the pick /
//! that of the best − 1) over the picks that fit, and the memory violations: picks whose
//! measured peak memory is above the class's limit, which count as neither best nor
//! within. With a single class there is no query.
//!
//! Must never: let a model's own rows into the fits that pick for it.

use std::collections::BTreeMap;

use super::prediction::check_observations;
use super::{check_option, ScoreError};
use crate::bootstrap;
use crate::predict::{fit, Observation, Point, PredictOptions, Predictor};

/// How to score; start from [`RecommendationScoreOptions::default`].
#[derive(Debug, Clone, PartialEq)]
pub struct RecommendationScoreOptions {
    /// The predictor as scored, its seed included; the memory predictor too.
    pub predict: PredictOptions,
    /// A pick whose latency is within this share of the best is good enough: 0.1 is 10 %.
    /// Finite, at least 0.
    pub within: f64,
    /// Bytes of memory each class can hold; a class not named has no limit.
    pub memory_limit_bytes: BTreeMap<String, f64>,
}

impl Default for RecommendationScoreOptions {
    fn default() -> RecommendationScoreOptions {
        RecommendationScoreOptions {
            predict: PredictOptions::DEFAULT,
            within: 0.1,
            memory_limit_bytes: BTreeMap::new(),
        }
    }
}

/// How one way of picking did.
#[derive(Debug, Clone, PartialEq)]
pub struct PickScore {
    /// Queries with a true best class.
    pub n_queries: usize,
    /// Queries where some class was left to pick.
    pub n_picked: usize,
    /// Picks that are the true best.
    pub n_best: usize,
    /// Picks within `within` of the best.
    pub n_within: usize,
    /// `n_best / n_queries`; `None` without queries.
    pub share_best: Option<f64>,
    /// `n_within / n_queries`: a query left without a pick counts as missed.
    pub share_within: Option<f64>,
    /// Mean of true latency of the pick / true best − 1 over the picks that fit.
    pub mean_regret: Option<f64>,
    /// Picks whose measured peak memory is above the class's limit.
    pub n_memory_violations: usize,
}

/// The recommendation scorecard.
#[derive(Debug, Clone, PartialEq)]
pub struct RecommendationScore {
    /// Distinct hardware classes among the latency rows.
    pub n_classes: usize,
    pub measured: PickScore,
    pub hidden_model: PickScore,
}

/// Scores the class picks on `latency` rows (seconds per iteration), with `memory` rows
/// (peak bytes; may be empty without limits). See the module doc.
pub fn recommendation(
    latency: &[Observation],
    memory: &[Observation],
    options: &RecommendationScoreOptions,
) -> Result<RecommendationScore, ScoreError> {
    check_options(options)?;
    check_observations("latency", latency)?;
    check_observations("memory", memory)?;
    if latency.is_empty() {
        return Err(ScoreError::NoObservations { set: "latency" });
    }
    let queries = queries(latency, memory, &options.memory_limit_bytes);
    let measured = queries.iter().map(|query| query.judge(query.pick_measured()));
    let measured = pick_score(measured, options.within);
    let mut hidden = Vec::with_capacity(queries.len());
    for (model, model_queries) in by_model(&queries) {
        let pickers = Pickers::fit(model, latency, memory, options)?;
        for query in model_queries {
            hidden.push(query.judge(pickers.pick(query)?));
        }
    }
    let n_classes = {
        let mut classes: Vec<&str> = latency.iter().map(|o| o.point.hardware_class.as_str()).collect();
        classes.sort_unstable();
        classes.dedup();
        classes.len()
    };
    Ok(RecommendationScore { n_classes, measured, hidden_model: pick_score(hidden.into_iter(), options.within) })
}

/// A query's key: model, batch, precision, mode, sequence length.
type QueryKey = (String, u32, String, String, u32);

fn query_key(point: &Point) -> QueryKey {
    (point.model.clone(), point.batch, point.precision.clone(), point.mode.clone(), point.seq_len)
}

/// One class measured for a query.
struct Candidate {
    /// A measured row's point on this class: what the predictors are asked about.
    point: Point,
    latency: f64,
    /// Largest measured peak memory, if any memory row was measured.
    peak_memory: Option<f64>,
    limit: Option<f64>,
}

impl Candidate {
    /// Whether its measured peak memory is above its limit.
    fn breaks_limit(&self) -> bool {
        matches!((self.peak_memory, self.limit), (Some(peak), Some(limit)) if peak > limit)
    }
}

/// A query with at least two classes and a true best among them.
struct Query {
    model: String,
    /// By class name.
    candidates: Vec<Candidate>,
    best_latency: f64,
}

impl Query {
    fn pick_measured(&self) -> Option<usize> {
        pick(self.candidates.iter().map(|c| (c.latency, c.breaks_limit())))
    }

    /// The outcome of picking candidate `picked`.
    fn judge(&self, picked: Option<usize>) -> Judged {
        picked.map(|idx| {
            let candidate = &self.candidates[idx];
            Pick { regret: candidate.latency / self.best_latency - 1.0, breaks_limit: candidate.breaks_limit() }
        })
    }
}

/// The pick rule: the lowest latency among the classes not excluded, ties to the first.
fn pick(candidates: impl Iterator<Item = (f64, bool)>) -> Option<usize> {
    let allowed = candidates.enumerate().filter(|(_, (_, excluded))| !excluded);
    allowed.min_by(|(_, (a, _)), (_, (b, _))| a.total_cmp(b)).map(|(idx, _)| idx)
}

struct Pick {
    regret: f64,
    breaks_limit: bool,
}

/// What became of one query: `None` when every class was excluded.
type Judged = Option<Pick>;

fn pick_score(judged: impl Iterator<Item = Judged>, within: f64) -> PickScore {
    let judged: Vec<Judged> = judged.collect();
    let picks: Vec<&Pick> = judged.iter().flatten().collect();
    let n_queries = judged.len();
    // A pick that breaks its limit would not run: it is never good, whatever its latency
    // (which may even beat the best, that fits).
    let fitting: Vec<f64> = picks.iter().filter(|p| !p.breaks_limit).map(|p| p.regret).collect();
    // The best itself has regret exactly 0: its latency divided by its own, less 1.
    let n_best = fitting.iter().filter(|&&regret| regret <= 0.0).count();
    let n_within = fitting.iter().filter(|&&regret| regret <= within).count();
    let share = |n: usize| (n_queries > 0).then(|| n as f64 / n_queries as f64);
    let mean_regret = (!fitting.is_empty()).then(|| fitting.iter().sum::<f64>() / fitting.len() as f64);
    PickScore {
        n_queries,
        n_picked: picks.len(),
        n_best,
        n_within,
        share_best: share(n_best),
        share_within: share(n_within),
        mean_regret,
        n_memory_violations: picks.iter().filter(|p| p.breaks_limit).count(),
    }
}

/// Every query with at least two classes measured and a fitting class among them, in
/// key order, its candidates in class order.
fn queries(latency: &[Observation], memory: &[Observation], limits: &BTreeMap<String, f64>) -> Vec<Query> {
    let mut latencies: BTreeMap<QueryKey, BTreeMap<&str, Vec<&Observation>>> = BTreeMap::new();
    for observation in latency {
        let class = observation.point.hardware_class.as_str();
        latencies.entry(query_key(&observation.point)).or_default().entry(class).or_default().push(observation);
    }
    let mut peaks: BTreeMap<(QueryKey, &str), f64> = BTreeMap::new();
    for observation in memory {
        let key = (query_key(&observation.point), observation.point.hardware_class.as_str());
        let peak = peaks.entry(key).or_insert(observation.value);
        *peak = peak.max(observation.value);
    }
    let query = |(key, by_class): (QueryKey, BTreeMap<&str, Vec<&Observation>>)| {
        let candidate = |(class, rows): (&str, Vec<&Observation>)| Candidate {
            point: rows[0].point.clone(),
            latency: median_value(&rows),
            peak_memory: peaks.get(&(key.clone(), class)).copied(),
            limit: limits.get(class).copied(),
        };
        let candidates: Vec<Candidate> = by_class.into_iter().map(candidate).collect();
        let fitting = candidates.iter().filter(|c| !c.breaks_limit()).map(|c| c.latency);
        let best_latency = fitting.min_by(f64::total_cmp)?;
        (candidates.len() >= 2).then_some(Query { model: key.0, candidates, best_latency })
    };
    latencies.into_iter().filter_map(query).collect()
}

/// The median value of rows (at least one).
fn median_value(rows: &[&Observation]) -> f64 {
    let mut values: Vec<f64> = rows.iter().map(|o| o.value).collect();
    values.sort_unstable_by(f64::total_cmp);
    bootstrap::median_of_sorted(&values)
}

/// The queries grouped by model, models in order.
fn by_model(queries: &[Query]) -> BTreeMap<&str, Vec<&Query>> {
    let mut grouped: BTreeMap<&str, Vec<&Query>> = BTreeMap::new();
    for query in queries {
        grouped.entry(query.model.as_str()).or_default().push(query);
    }
    grouped
}

/// The predictors that pick for one hidden model, fitted without its rows.
struct Pickers<'a> {
    model: &'a str,
    latency: Predictor,
    /// Only when there are limits to keep.
    memory: Option<Predictor>,
}

impl<'a> Pickers<'a> {
    fn fit(
        model: &'a str,
        latency: &[Observation],
        memory: &[Observation],
        options: &RecommendationScoreOptions,
    ) -> Result<Pickers<'a>, ScoreError> {
        let others = |rows: &[Observation]| -> Vec<Observation> {
            rows.iter().filter(|o| o.point.model != model).cloned().collect()
        };
        let failed = |split| move |source| ScoreError::Predict { split, held_out: model.to_owned(), source };
        let latency_fit = fit(&others(latency), &options.predict).map_err(failed("hidden model, latency"))?;
        let memory_fit = if options.memory_limit_bytes.is_empty() {
            None
        } else {
            Some(fit(&others(memory), &options.predict).map_err(failed("hidden model, memory"))?)
        };
        Ok(Pickers { model, latency: latency_fit, memory: memory_fit })
    }

    /// The candidate of lowest predicted latency among those whose predicted memory
    /// (the interval's high end) is within their limit.
    fn pick(&self, query: &Query) -> Result<Option<usize>, ScoreError> {
        let failed = |split| move |source| ScoreError::Predict { split, held_out: self.model.to_owned(), source };
        let mut scored = Vec::with_capacity(query.candidates.len());
        for candidate in &query.candidates {
            let predicted = self.latency.predict(&candidate.point).map_err(failed("hidden model, latency"))?;
            let excluded = match (&self.memory, candidate.limit) {
                (Some(memory), Some(limit)) => {
                    let peak = memory.predict(&candidate.point).map_err(failed("hidden model, memory"))?;
                    peak.interval.high() > limit
                }
                _ => false,
            };
            scored.push((predicted.value, excluded));
        }
        Ok(pick(scored.into_iter()))
    }
}

fn check_options(options: &RecommendationScoreOptions) -> Result<(), ScoreError> {
    let within = options.within;
    check_option("within", within, within.is_finite() && within >= 0.0, "it must be finite and at least 0")?;
    for (hardware_class, &value) in &options.memory_limit_bytes {
        if !(value.is_finite() && value > 0.0) {
            return Err(ScoreError::InvalidMemoryLimit { hardware_class: hardware_class.clone(), value });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_are_scored_against_the_best_and_a_pick_that_breaks_its_limit_is_never_good() {
        let fits = |regret| Some(Pick { regret, breaks_limit: false });
        let judged = [fits(0.0), fits(0.05), fits(0.2), Some(Pick { regret: -0.1, breaks_limit: true }), None];
        let score = pick_score(judged.into_iter(), 0.1);
        assert_eq!((score.n_queries, score.n_picked, score.n_best, score.n_within), (5, 4, 1, 2));
        assert_eq!((score.share_best, score.share_within), (Some(0.2), Some(0.4)));
        // Over the three picks that fit: (0 + 0.05 + 0.2) / 3.
        assert_eq!(score.mean_regret, Some(0.25 / 3.0));
        assert_eq!(score.n_memory_violations, 1);
        let nothing = pick_score(std::iter::empty(), 0.1);
        assert_eq!((nothing.n_queries, nothing.share_best, nothing.mean_regret), (0, None, None));
    }

    #[test]
    fn the_pick_rule_takes_the_lowest_latency_not_excluded_and_the_first_of_ties() {
        assert_eq!(pick([(3.0, false), (1.0, true), (2.0, false), (2.0, false)].into_iter()), Some(2));
        assert_eq!(pick([(1.0, true)].into_iter()), None);
    }
}
