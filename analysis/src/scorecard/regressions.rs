//! The regression scorecard: how often [`crate::regressions::detect`] alarms on series
//! with no change, how often it finds a planted slowdown within 3 runs, and the same for
//! the baseline rules at the same false-alarm rate.
//!
//! Method. The input is a noise study: cells each measured as many separate runs
//! (interleaved, so that a run's level varies as it does from day to day), each run its
//! raw per-iteration samples. A run's value for the detector is its median. A series is
//! `series_len` runs of one cell drawn with replacement, cells in turn, each draw from
//! its own seeded stream:
//!
//! - False alarms (A/A): `n_evaluations` series with no change; a false alarm is a series
//!   with any alarm. The rate comes with its Clopper–Pearson 95 % upper bound.
//! - Power: `n_evaluations_power` series per effect, a change run k uniform in
//!   `[min_history, series_len − 3]`, every run from k on slower by the effect (its
//!   median and, for Mann–Whitney, each of its samples multiplied by 1 + effect). The
//!   detector runs on the prefix ending 3 runs after the change (runs 0..k+3), as it
//!   would three runs after a slowdown landed: it *alarms* if it raises any alarm there,
//!   and *detects* if an alarm's first bad run is within ±1 of k. The trials are the
//!   same for every effect and every rule, so their differences are not draw noise.
//! - Baselines: each rule's threshold is calibrated on the very A/A series the detector
//!   was scored on, to the loosest at which at most max(detector's false alarms, the
//!   target rate × series) series raise a slower flag anywhere (see `rules`). A rule
//!   flags runs, not change points: on the prefix it *alarms* with any slower flag and
//!   *detects* with one at run k, k+1 or k+2. A rule needs its window of runs before it
//!   flags anything, so a change earlier than that is missed: that is the rule's score.
//! - Pooled Mann–Whitney at its conventional setting (p ≤ 0.05, no effect threshold, as
//!   asv decides on samples): its flags either way per decision on the A/A series, against
//!   the nominal 5 %, and the share of series it alarms on.
//!
//! What the numbers mean: with a change 3 runs from the end of what the detector sees,
//! a shuffle of E-divisive's permutation test reaches the observed split when it puts the
//! 3 slow runs at either end of the prefix, which for n runs happens with probability
//! 2 / C(n, 3) whatever the effect. At the default p ≤ 0.005 the p-value is low enough
//! only when none of 199 shuffles does: 16 % of the time with 9 runs of history, a
//! third at 11, 70 % at 17. The detector's second check, the latest runs' t-test and
//! rank test, answers from 9 runs of history on (3 runs above all 9 before them have a
//! rank p-value of 1/C(12, 3) = 0.0045). Before that neither check can confirm a change
//! within 3 runs at this false-alarm rate, so `min_history` (9 by default) plants changes
//! from there on; the
//! scorecard's number is the power once a series has that much history. For the same
//! reason the detector is reseeded per series (`reseed_detector`): the shuffles depend on
//! the seed and the length only, not on the values, so with one seed a clean step 3 runs
//! from the end of n runs is confirmed for every series of that length or for none.
//!
//! Must never: draw from anything but the seeded streams (draw i of the A/A series is
//! stream 2i, trial j of power stream 2j + 1), or let one rule's series differ from
//! another's.

use std::borrow::Cow;
use std::num::NonZeroUsize;

use super::rules::{calibrated_threshold, critical_score, Configured, Rule, RuleShapes, SeriesView};
use super::{check_option, clopper_pearson_upper, median, rate, ScoreError};
use crate::baselines::{mann_whitney_rule, MannWhitneyOptions};
use crate::regressions::{detect, DetectOptions};
use crate::rng::Rng;
use crate::series::SeriesError;
use crate::Direction;

/// Runs after the change that the detector and the rules see before they must answer.
pub const RUNS_AFTER_CHANGE: usize = 3;

/// Fewest runs a cell needs: one run resampled gives a series with no noise at all.
pub const MIN_CELL_RUNS: usize = 2;

/// One benchmark cell of a noise study.
#[derive(Debug, Clone, PartialEq)]
pub struct NoiseCell {
    pub name: String,
    /// Separate runs in run order (30 or more in the study's design), each its raw
    /// per-iteration latencies in nanoseconds.
    pub runs: Vec<Vec<f64>>,
}

/// How to score; start from [`RegressionScoreOptions::DEFAULT`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RegressionScoreOptions {
    /// The detector as scored. With `reseed_detector`, its seed is replaced per series.
    pub detect: DetectOptions,
    /// Give the detector's permutation test a seed of its own for each series, drawn from
    /// the scorecard's seed. Without it every series of a length gets the same shuffles,
    /// and whether a clean step at the end is confirmed is decided for each length by that
    /// one seed's shuffles rather than by the data (see the module doc).
    pub reseed_detector: bool,
    /// Runs of each drawn series. At least `min_history` + 3.
    pub series_len: usize,
    /// Fewest runs before a planted change. At least the detector's minimum segment and
    /// enough for it to search the prefix (2 × min_segment − 3).
    pub min_history: usize,
    /// A/A series. At least 1.
    pub n_evaluations: usize,
    /// Power trials per effect. At least 1.
    pub n_evaluations_power: usize,
    /// Planted slowdowns, relative: 0.05 makes the runs after the change 5 % slower.
    /// Each finite and above 0.
    pub effects: &'static [f64],
    /// The false-alarm rate the baselines are calibrated to when the detector's is lower,
    /// in `[0, 1)`.
    pub target_false_alarm_rate: f64,
    /// Window of the old mean rule (7: its "7-day mean").
    pub previous_mean_window: NonZeroUsize,
    /// Window of the z-score rule: at least 2, and below `series_len` to flag anything.
    pub z_score_window: NonZeroUsize,
    /// The calibrated Mann–Whitney rule: its windows and significance as given, its
    /// `min_effect` calibrated (the given one is not used).
    pub mann_whitney: MannWhitneyOptions,
    /// Pooled Mann–Whitney as it is conventionally run, scored as given.
    pub conventional_mann_whitney: MannWhitneyOptions,
    pub seed: u64,
}

impl RegressionScoreOptions {
    pub const DEFAULT: RegressionScoreOptions = RegressionScoreOptions {
        detect: DetectOptions::DEFAULT,
        reseed_detector: true,
        series_len: 20,
        min_history: 9,
        n_evaluations: 5000,
        n_evaluations_power: 2000,
        effects: &[0.05, 0.10],
        target_false_alarm_rate: 0.005,
        previous_mean_window: NonZeroUsize::new(7).expect("7 is not zero"),
        z_score_window: NonZeroUsize::new(7).expect("7 is not zero"),
        mann_whitney: MannWhitneyOptions::DEFAULT,
        conventional_mann_whitney: MannWhitneyOptions {
            significance: 0.05,
            min_effect: 0.0,
            ..MannWhitneyOptions::DEFAULT
        },
        seed: 0,
    };
}

/// Series that raised any alarm, among series with no change.
#[derive(Debug, Clone, PartialEq)]
pub struct FalseAlarms {
    pub n_series: usize,
    pub n_alarmed: usize,
    pub rate: f64,
    /// Clopper–Pearson 95 % upper bound of the rate.
    pub upper_95: f64,
}

/// What happened in the trials with one planted slowdown.
#[derive(Debug, Clone, PartialEq)]
pub struct Power {
    /// The slowdown, relative.
    pub effect: f64,
    pub n_trials: usize,
    /// Trials with any alarm (any slower flag) on the prefix ending 3 runs after the change.
    pub n_alarmed: usize,
    /// Trials with an alarm at the change: a first bad run within ±1 of it for the
    /// detector, a slower flag on the change run or the 2 after it for a rule.
    pub n_detected: usize,
    pub alarm_rate: f64,
    /// `n_detected / n_trials`: the power within 3 runs.
    pub detection_rate: f64,
}

/// The detector as configured.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectorScore {
    pub false_alarms: FalseAlarms,
    /// One per effect, in the options' order.
    pub power: Vec<Power>,
}

/// A baseline rule at its calibrated threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleScore {
    pub rule: Rule,
    /// The calibrated threshold: the mean rule's relative excess, the z-score's z, or
    /// Mann–Whitney's `min_effect`.
    pub threshold: f64,
    /// The false-alarm rate it was calibrated to: max(detector's, target).
    pub target_rate: f64,
    /// Its false alarms at that threshold on the same A/A series.
    pub false_alarms: FalseAlarms,
    pub power: Vec<Power>,
}

/// Pooled Mann–Whitney at its conventional setting on the A/A series.
#[derive(Debug, Clone, PartialEq)]
pub struct PooledTestScore {
    /// Its significance level: the rate each decision should fire at with no change.
    pub significance: f64,
    /// Decisions over all series (each run with a full window before it).
    pub n_decisions: usize,
    /// Decisions that flagged, either way.
    pub n_flagged: usize,
    /// `n_flagged / n_decisions`, to hold against `significance`.
    pub decision_rate: f64,
    /// Series with any slower flag, as the detector's false alarms are counted.
    pub series: FalseAlarms,
}

/// The regression scorecard.
#[derive(Debug, Clone, PartialEq)]
pub struct RegressionScore {
    pub n_cells: usize,
    pub series_len: usize,
    pub detector: DetectorScore,
    /// One per rule, in [`Rule::ALL`]'s order.
    pub rules: Vec<RuleScore>,
    pub pooled_conventional: PooledTestScore,
}

/// Scores the detector and the baseline rules on a noise study (see the module doc).
pub fn regressions(study: &[NoiseCell], options: &RegressionScoreOptions) -> Result<RegressionScore, ScoreError> {
    check_options(options)?;
    let cells = checked_cells(study)?;
    let replay = Replay { cells: &cells, options };
    let null_draws: Vec<Draw> = (0..options.n_evaluations).map(|idx| replay.draw(2 * idx as u64, idx)).collect();
    let trials: Vec<Trial> = (0..options.n_evaluations_power).map(|idx| replay.trial(idx)).collect();
    let false_alarms = replay.detector_false_alarms(&null_draws)?;
    let power = replay.per_effect(|effect| replay.detector_power(&trials, effect))?;
    let n_allowed =
        false_alarms.n_alarmed.max((options.target_false_alarm_rate * options.n_evaluations as f64) as usize);
    let rules = Rule::ALL
        .iter()
        .map(|&rule| replay.rule_score(rule, &null_draws, &trials, n_allowed))
        .collect::<Result<_, _>>()?;
    Ok(RegressionScore {
        n_cells: cells.len(),
        series_len: options.series_len,
        detector: DetectorScore { false_alarms, power },
        rules,
        pooled_conventional: replay.pooled_conventional(&null_draws)?,
    })
}

/// A cell that passed the checks, with its runs' medians.
struct Cell<'a> {
    name: &'a str,
    runs: &'a [Vec<f64>],
    medians: Vec<f64>,
}

/// The runs of one drawn series: indices into one cell's runs.
struct Draw {
    cell_idx: usize,
    run_idxs: Vec<usize>,
    /// The detector's seed for this series, if it is reseeded.
    detector_seed: u64,
}

/// A drawn series with a planted change at `change_run`.
struct Trial {
    draw: Draw,
    change_run: usize,
}

/// The study and the options, and what is derived from both.
struct Replay<'a> {
    cells: &'a [Cell<'a>],
    options: &'a RegressionScoreOptions,
}

impl<'a> Replay<'a> {
    /// Series `draw_idx` (its cell in turn), its runs from stream `stream_idx`.
    fn draw(&self, stream_idx: u64, draw_idx: usize) -> Draw {
        self.draw_from(&mut Rng::stream(self.options.seed, stream_idx), draw_idx)
    }

    fn draw_from(&self, rng: &mut Rng, draw_idx: usize) -> Draw {
        let cell_idx = draw_idx % self.cells.len();
        let n_runs = self.cells[cell_idx].runs.len();
        let run_idxs = (0..self.options.series_len).map(|_| rng.below(n_runs)).collect();
        Draw { cell_idx, run_idxs, detector_seed: rng.next_u64() }
    }

    /// Power trial `trial_idx`: a series and, from the same stream, its change run.
    fn trial(&self, trial_idx: usize) -> Trial {
        let mut rng = Rng::stream(self.options.seed, 2 * trial_idx as u64 + 1);
        let draw = self.draw_from(&mut rng, trial_idx);
        let min_history = self.options.min_history;
        let n_positions = self.options.series_len - RUNS_AFTER_CHANGE - min_history + 1;
        Trial { draw, change_run: min_history + rng.below(n_positions) }
    }

    /// The run medians of `draw`'s first `len` runs, those from `change.0` on times `change.1`.
    fn medians(&self, draw: &Draw, len: usize, change: Option<(usize, f64)>) -> Vec<f64> {
        let cell = &self.cells[draw.cell_idx];
        let factor = |idx: usize| change.filter(|&(first, _)| idx >= first).map_or(1.0, |(_, factor)| factor);
        draw.run_idxs[..len].iter().enumerate().map(|(idx, &run_idx)| cell.medians[run_idx] * factor(idx)).collect()
    }

    /// Like [`Replay::medians`] for the runs' samples, borrowed where they are unchanged.
    fn samples(&self, draw: &Draw, len: usize, change: Option<(usize, f64)>) -> Vec<Cow<'a, [f64]>> {
        let cell = &self.cells[draw.cell_idx];
        let scaled = |idx: usize, samples: &'a [f64]| match change {
            Some((first, factor)) if idx >= first => Cow::Owned(samples.iter().map(|x| x * factor).collect()),
            _ => Cow::Borrowed(samples),
        };
        draw.run_idxs[..len].iter().enumerate().map(|(idx, &run_idx)| scaled(idx, &cell.runs[run_idx])).collect()
    }

    /// The detector's options for `draw`.
    fn detect_options(&self, draw: &Draw) -> DetectOptions {
        let mut options = self.options.detect;
        if self.options.reseed_detector {
            options.change_points.seed = draw.detector_seed;
        }
        options
    }

    fn series_error(&self, draw: &Draw) -> impl Fn(SeriesError) -> ScoreError + '_ {
        let cell = self.cells[draw.cell_idx].name;
        move |source| ScoreError::Series { cell: cell.to_owned(), source }
    }

    /// One result per effect of the options, in their order.
    fn per_effect(&self, score: impl Fn(f64) -> Result<Power, ScoreError>) -> Result<Vec<Power>, ScoreError> {
        self.options.effects.iter().map(|&effect| score(effect)).collect()
    }

    fn detector_false_alarms(&self, draws: &[Draw]) -> Result<FalseAlarms, ScoreError> {
        let mut n_alarmed = 0;
        for draw in draws {
            let medians = self.medians(draw, self.options.series_len, None);
            let alarms = detect(&medians, &self.detect_options(draw)).map_err(self.series_error(draw))?;
            n_alarmed += usize::from(!alarms.is_empty());
        }
        Ok(false_alarms(n_alarmed, draws.len()))
    }

    fn detector_power(&self, trials: &[Trial], effect: f64) -> Result<Power, ScoreError> {
        let (mut n_alarmed, mut n_detected) = (0, 0);
        for trial in trials {
            let (k, len) = (trial.change_run, trial.change_run + RUNS_AFTER_CHANGE);
            let medians = self.medians(&trial.draw, len, Some((k, 1.0 + effect)));
            let options = self.detect_options(&trial.draw);
            let alarms = detect(&medians, &options).map_err(self.series_error(&trial.draw))?;
            n_alarmed += usize::from(!alarms.is_empty());
            n_detected += usize::from(alarms.iter().any(|alarm| alarm.first_bad_run.abs_diff(k) <= 1));
        }
        Ok(power(effect, trials.len(), n_alarmed, n_detected))
    }

    fn shapes(&self) -> RuleShapes {
        RuleShapes {
            previous_mean_window: self.options.previous_mean_window,
            z_score_window: self.options.z_score_window,
            mann_whitney: self.options.mann_whitney,
        }
    }

    /// `rule` calibrated on the A/A draws to at most `n_allowed` alarmed series, then run.
    fn rule_score(
        &self,
        rule: Rule,
        draws: &[Draw],
        trials: &[Trial],
        n_allowed: usize,
    ) -> Result<RuleScore, ScoreError> {
        let shapes = self.shapes();
        let len = self.options.series_len;
        let scores = draws.iter().map(|draw| {
            let (medians, samples) = (self.medians(draw, len, None), self.samples(draw, len, None));
            critical_score(rule, &shapes, &SeriesView { medians: &medians, samples: &samples })
        });
        let threshold = calibrated_threshold(rule, scores.collect(), n_allowed);
        let configured = Configured::new(rule, &shapes, threshold);
        let mut n_alarmed = 0;
        for draw in draws {
            let (medians, samples) = (self.medians(draw, len, None), self.samples(draw, len, None));
            let flags = configured.slower_flags(&SeriesView { medians: &medians, samples: &samples });
            n_alarmed += usize::from(!flags.map_err(self.series_error(draw))?.is_empty());
        }
        Ok(RuleScore {
            rule,
            threshold,
            target_rate: rate(n_allowed, draws.len()),
            false_alarms: false_alarms(n_alarmed, draws.len()),
            power: self.per_effect(|effect| self.rule_power(&configured, trials, effect))?,
        })
    }

    fn rule_power(&self, configured: &Configured, trials: &[Trial], effect: f64) -> Result<Power, ScoreError> {
        let (mut n_alarmed, mut n_detected) = (0, 0);
        for trial in trials {
            let (k, len) = (trial.change_run, trial.change_run + RUNS_AFTER_CHANGE);
            let change = Some((k, 1.0 + effect));
            let (medians, samples) = (self.medians(&trial.draw, len, change), self.samples(&trial.draw, len, change));
            let flags = configured.slower_flags(&SeriesView { medians: &medians, samples: &samples });
            let flags = flags.map_err(self.series_error(&trial.draw))?;
            n_alarmed += usize::from(!flags.is_empty());
            // The prefix ends at k + 2: any flag from k on is within 3 runs of the change.
            n_detected += usize::from(flags.iter().any(|&run_idx| run_idx >= k));
        }
        Ok(power(effect, trials.len(), n_alarmed, n_detected))
    }

    fn pooled_conventional(&self, draws: &[Draw]) -> Result<PooledTestScore, ScoreError> {
        let options = &self.options.conventional_mann_whitney;
        let first_decision = options.recent_runs.get() + options.window_runs.get() - 1;
        let (mut n_decisions, mut n_flagged, mut n_alarmed) = (0, 0, 0);
        for draw in draws {
            let samples = self.samples(draw, self.options.series_len, None);
            let flags = mann_whitney_rule(&samples, options).map_err(self.series_error(draw))?;
            n_decisions += samples.len().saturating_sub(first_decision);
            n_flagged += flags.len();
            n_alarmed += usize::from(flags.iter().any(|flag| flag.direction == Direction::Slower));
        }
        Ok(PooledTestScore {
            significance: options.significance,
            n_decisions,
            n_flagged,
            decision_rate: rate(n_flagged, n_decisions),
            series: false_alarms(n_alarmed, draws.len()),
        })
    }
}

fn false_alarms(n_alarmed: usize, n_series: usize) -> FalseAlarms {
    FalseAlarms {
        n_series,
        n_alarmed,
        rate: rate(n_alarmed, n_series),
        upper_95: clopper_pearson_upper(n_alarmed, n_series),
    }
}

fn power(effect: f64, n_trials: usize, n_alarmed: usize, n_detected: usize) -> Power {
    Power {
        effect,
        n_trials,
        n_alarmed,
        n_detected,
        alarm_rate: rate(n_alarmed, n_trials),
        detection_rate: rate(n_detected, n_trials),
    }
}

fn check_options(options: &RegressionScoreOptions) -> Result<(), ScoreError> {
    let min_segment = options.detect.change_points.min_segment;
    let min_history = options.min_history;
    let history_needed = min_segment.max((2 * min_segment).saturating_sub(RUNS_AFTER_CHANGE));
    check_option(
        "min_history",
        min_history as f64,
        min_history >= history_needed,
        "it must be at least the detector's min_segment and 2 × min_segment − 3",
    )?;
    let series_len = options.series_len;
    check_option(
        "series_len",
        series_len as f64,
        series_len >= min_history + RUNS_AFTER_CHANGE && series_len >= 2 * min_segment,
        "it must leave min_history runs and 3 more, and two segments for the detector",
    )?;
    check_option("n_evaluations", options.n_evaluations as f64, options.n_evaluations >= 1, "at least 1 is needed")?;
    let n_power = options.n_evaluations_power;
    check_option("n_evaluations_power", n_power as f64, n_power >= 1, "at least 1 is needed")?;
    for &effect in options.effects {
        check_option("effects", effect, effect.is_finite() && effect > 0.0, "each must be finite and above 0")?;
    }
    let target = options.target_false_alarm_rate;
    check_option("target_false_alarm_rate", target, (0.0..1.0).contains(&target), "it must be in [0, 1)")?;
    let z_window = options.z_score_window.get();
    check_option("z_score_window", z_window as f64, z_window >= 2, "a standard deviation needs at least 2 runs")
}

/// The cells with their run medians, or the first problem, named by cell.
fn checked_cells(study: &[NoiseCell]) -> Result<Vec<Cell<'_>>, ScoreError> {
    if study.is_empty() {
        return Err(ScoreError::EmptyStudy);
    }
    study.iter().map(checked_cell).collect()
}

fn checked_cell(cell: &NoiseCell) -> Result<Cell<'_>, ScoreError> {
    let name = || cell.name.clone();
    if cell.runs.len() < MIN_CELL_RUNS {
        return Err(ScoreError::TooFewRuns { cell: name(), n_runs: cell.runs.len(), n_needed: MIN_CELL_RUNS });
    }
    let mut medians = Vec::with_capacity(cell.runs.len());
    for (run_idx, samples) in cell.runs.iter().enumerate() {
        if let Some((sample_idx, &value)) = samples.iter().enumerate().find(|(_, x)| !(x.is_finite() && **x >= 0.0)) {
            return Err(ScoreError::InvalidSample { cell: name(), run_idx, sample_idx, value });
        }
        let Some(run_median) = median(samples) else {
            return Err(ScoreError::EmptyRun { cell: name(), run_idx });
        };
        medians.push(run_median);
    }
    Ok(Cell { name: &cell.name, runs: &cell.runs, medians })
}
