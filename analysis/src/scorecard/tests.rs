//! The scorecard on hand-computed cases and seeded synthetic worlds: noise cells with
//! log-normal run-to-run noise.

use std::borrow::Cow;
use std::num::NonZeroUsize;

use super::rules::{calibrated_threshold, critical_score, Configured, RuleShapes, SeriesView};
use super::*;
use crate::regressions::DetectOptions;
use crate::rng::Rng;
use crate::testing::gaussian;

fn assert_close(actual: f64, expected: f64, tolerance: f64) {
    assert!((actual - expected).abs() <= tolerance, "{actual} against {expected}");
}

#[test]
fn clopper_pearson_upper_bounds_match_their_hand_computed_values() {
    // 1 − 0.025^(1/5000), and the others by bisection of the binomial sum with Python's
    // exact integers.
    assert_close(clopper_pearson_upper(0, 5000), 0.000_737_503_801_108, 1e-12);
    assert_close(clopper_pearson_upper(5, 1000), 0.011_629_470_559_812, 1e-10);
    assert_close(clopper_pearson_upper(1, 10), 0.445_016_117_028_195, 1e-10);
    assert_close(clopper_pearson_upper(3, 20), 0.378_926_826_545_314, 1e-10);
    assert_eq!(clopper_pearson_upper(7, 7), 1.0);
    assert_eq!(clopper_pearson_upper(0, 0), 1.0);
    // The bound rises with the count and falls with the trials.
    assert!(clopper_pearson_upper(6, 1000) > clopper_pearson_upper(5, 1000));
    assert!(clopper_pearson_upper(5, 2000) < clopper_pearson_upper(5, 1000));
}

// ----- Regressions -----

/// A cell of `n_runs` runs of `n_samples` samples: each run's level log-normal around 1 ms
/// with `run_sd`, its samples log-normal around that level with `sample_sd`.
fn noise_cell(name: &str, n_runs: usize, n_samples: usize, run_sd: f64, sample_sd: f64, seed: u64) -> NoiseCell {
    let mut rng = Rng::new(seed);
    let runs = (0..n_runs)
        .map(|_| {
            let level = 1e6 * (run_sd * gaussian(&mut rng)).exp();
            (0..n_samples).map(|_| level * (sample_sd * gaussian(&mut rng)).exp()).collect()
        })
        .collect();
    NoiseCell { name: name.into(), runs }
}

/// Four cells of 30 runs of 40 samples, 1 % run-to-run noise and 0.3 % within a run.
fn study(seed: u64) -> Vec<NoiseCell> {
    (0..4).map(|idx| noise_cell(&format!("cell{idx}"), 30, 40, 0.01, 0.003, seed * 10 + idx)).collect()
}

/// Counts small enough for a test; the detector's intervals are not scored, so they get
/// few resamples.
fn quick(n_evaluations: usize, n_evaluations_power: usize) -> RegressionScoreOptions {
    RegressionScoreOptions {
        detect: DetectOptions { n_resamples: NonZeroUsize::new(20).expect("not zero"), ..DetectOptions::DEFAULT },
        n_evaluations,
        n_evaluations_power,
        ..RegressionScoreOptions::DEFAULT
    }
}

fn power_of(powers: &[Power], effect: f64) -> &Power {
    powers.iter().find(|p| p.effect == effect).expect("the effect was scored")
}

#[test]
fn on_noise_the_detector_rarely_alarms_and_finds_slowdowns_once_it_has_history() {
    let score = regressions(&study(1), &quick(300, 100)).expect("a valid study");
    assert_eq!((score.n_cells, score.series_len), (4, 20));
    let false_alarms = &score.detector.false_alarms;
    assert_eq!(false_alarms.n_series, 300);
    assert!(false_alarms.rate <= 0.02, "{false_alarms:?}");
    assert_eq!(false_alarms.upper_95, clopper_pearson_upper(false_alarms.n_alarmed, 300));
    // From 3 runs of history the permutation test cannot confirm a change 3 runs from the
    // end before about 9 runs (see the module doc): about half the trials, whatever the
    // effect, and 5 % and 10 % are both far above the 1 % noise.
    for effect in [0.05, 0.10] {
        let power = power_of(&score.detector.power, effect);
        assert!((0.3..0.7).contains(&power.detection_rate), "{power:?}");
        assert!(power.n_detected <= power.n_alarmed && power.n_trials == 100, "{power:?}");
    }
    let with_history = RegressionScoreOptions { series_len: 30, min_history: 15, ..quick(20, 100) };
    let score = regressions(&study(1), &with_history).expect("a valid study");
    assert!(power_of(&score.detector.power, 0.10).detection_rate >= 0.9, "{:?}", score.detector.power);
    assert!(power_of(&score.detector.power, 0.05).detection_rate >= 0.85, "{:?}", score.detector.power);
}

#[test]
fn a_change_after_three_runs_is_never_confirmed_within_three_more() {
    // Six runs, the last three twice as slow: the permutation p-value is at least
    // 2 / C(6, 3) = 0.1, far above 1 %. The old mean rule over 3 runs sees it at once.
    let options = RegressionScoreOptions {
        series_len: 6,
        effects: &[1.0],
        previous_mean_window: NonZeroUsize::new(3).expect("not zero"),
        ..quick(20, 20)
    };
    let score = regressions(&study(2), &options).expect("a valid study");
    assert_eq!(score.detector.power[0].n_detected, 0, "{:?}", score.detector.power);
    let mean_rule = &score.rules[0];
    assert_eq!(mean_rule.rule, Rule::PreviousMean);
    assert_eq!(mean_rule.power[0].n_detected, 20, "{mean_rule:?}");
}

#[test]
fn baselines_are_calibrated_to_the_detectors_false_alarm_rate_or_the_target() {
    let options = RegressionScoreOptions { target_false_alarm_rate: 0.02, ..quick(400, 100) };
    let score = regressions(&study(3), &options).expect("a valid study");
    let n_allowed = score.detector.false_alarms.n_alarmed.max(8);
    assert_eq!(score.rules.iter().map(|r| r.rule).collect::<Vec<_>>(), Rule::ALL);
    for rule in &score.rules {
        // The loosest threshold flags exactly the allowed number of series, the scores
        // being continuous and most series having some.
        assert_eq!(rule.false_alarms.n_alarmed, n_allowed, "{rule:?}");
        assert_eq!(rule.target_rate, n_allowed as f64 / 400.0);
        let power = power_of(&rule.power, 0.10);
        assert!(power.n_detected <= power.n_alarmed && power.detection_rate > 0.3, "{rule:?}");
    }
    // A 10 % step is 10 standard deviations of the run noise: above any calibrated bar.
    let mean_rule = &score.rules[0];
    assert!(mean_rule.threshold > 0.0 && mean_rule.threshold < 0.05, "{mean_rule:?}");
}

#[test]
fn pooled_mann_whitney_alarms_far_above_its_nominal_rate_when_runs_differ() {
    let options = quick(100, 1);
    let score = regressions(&study(4), &options).expect("a valid study");
    let pooled = &score.pooled_conventional;
    assert_eq!(pooled.significance, 0.05);
    // 20 runs, 7 before each decision: 13 decisions a series.
    assert_eq!(pooled.n_decisions, 1300);
    assert!(pooled.decision_rate > 0.2, "{pooled:?}");
    assert!(pooled.series.rate > 0.5, "{pooled:?}");
    // Runs that differ only by their samples' noise: near the nominal 5 %.
    let steady: Vec<NoiseCell> = (0..4).map(|idx| noise_cell("steady", 30, 40, 0.0, 0.003, 50 + idx)).collect();
    let pooled = regressions(&steady, &options).expect("a valid study").pooled_conventional;
    assert!(pooled.decision_rate < 0.1, "{pooled:?}");
}

#[test]
fn the_same_study_and_seed_give_the_same_score() {
    let options = quick(40, 10);
    let first = regressions(&study(5), &options).expect("a valid study");
    assert_eq!(first, regressions(&study(5), &options).expect("a valid study"));
    let reseeded = RegressionScoreOptions { seed: 1, ..options };
    assert_ne!(first, regressions(&study(5), &reseeded).expect("a valid study"));
}

#[test]
fn a_critical_score_says_where_its_rule_starts_to_flag() {
    let shapes = RuleShapes {
        previous_mean_window: NonZeroUsize::new(7).expect("not zero"),
        z_score_window: NonZeroUsize::new(7).expect("not zero"),
        mann_whitney: crate::baselines::MannWhitneyOptions::DEFAULT,
    };
    let cell = noise_cell("c", 20, 30, 0.02, 0.003, 6);
    let samples: Vec<Cow<'_, [f64]>> = cell.runs.iter().map(|run| Cow::Borrowed(run.as_slice())).collect();
    let medians: Vec<f64> = cell.runs.iter().map(|run| super::median(run).expect("samples")).collect();
    let view = SeriesView { medians: &medians, samples: &samples };
    for rule in Rule::ALL {
        let score = critical_score(rule, &shapes, &view);
        assert!(score.is_finite() && score > 0.0, "{rule}: {score}");
        let flags_at = |threshold| Configured::new(rule, &shapes, threshold).slower_flags(&view).expect("valid");
        assert!(!flags_at(score * (1.0 - 1e-6)).is_empty(), "{rule}");
        assert!(flags_at(score * (1.0 + 1e-6)).is_empty(), "{rule}");
    }
}

#[test]
fn calibration_takes_the_loosest_threshold_that_flags_few_enough() {
    let scores = vec![0.5, f64::NEG_INFINITY, 0.1, 0.3];
    let threshold = calibrated_threshold(Rule::PreviousMean, scores.clone(), 1);
    assert!(threshold > 0.3 && threshold < 0.3 + 1e-6, "{threshold}");
    assert_eq!(calibrated_threshold(Rule::PreviousMean, scores.clone(), 3), 0.0);
    assert_eq!(calibrated_threshold(Rule::ZScore, scores.clone(), 4), f64::MIN_POSITIVE);
    assert_eq!(calibrated_threshold(Rule::MannWhitney, vec![f64::INFINITY], 0), 1.0 - f64::EPSILON);
}

#[test]
fn a_bad_study_is_refused_naming_its_cell() {
    let options = quick(10, 10);
    assert_eq!(regressions(&[], &options), Err(ScoreError::EmptyStudy));
    let mut cells = study(7);
    cells[2].runs.truncate(1);
    assert_eq!(
        regressions(&cells, &options),
        Err(ScoreError::TooFewRuns { cell: "cell2".into(), n_runs: 1, n_needed: 2 })
    );
    let mut cells = study(7);
    cells[1].runs[4][9] = f64::NAN;
    let err = regressions(&cells, &options).expect_err("NaN is refused");
    assert!(
        matches!(&err, ScoreError::InvalidSample { cell, run_idx: 4, sample_idx: 9, value } if cell == "cell1" && value.is_nan()),
        "{err:?}"
    );
    assert_eq!(err.to_string(), "cell cell1, run 4, sample 9 is NaN; a latency must be finite and not negative");
    let mut cells = study(7);
    cells[3].runs[0].clear();
    assert_eq!(regressions(&cells, &options), Err(ScoreError::EmptyRun { cell: "cell3".into(), run_idx: 0 }));
}

#[test]
fn bad_regression_options_are_refused_by_name() {
    let refused = |options: RegressionScoreOptions| match regressions(&study(8), &options) {
        Err(ScoreError::InvalidOption { name, .. }) => name,
        other => panic!("{other:?}"),
    };
    assert_eq!(refused(RegressionScoreOptions { series_len: 5, ..quick(1, 1) }), "series_len");
    assert_eq!(refused(RegressionScoreOptions { min_history: 2, ..quick(1, 1) }), "min_history");
    assert_eq!(refused(RegressionScoreOptions { effects: &[0.1, -0.1], ..quick(1, 1) }), "effects");
    assert_eq!(refused(RegressionScoreOptions { effects: &[f64::NAN], ..quick(1, 1) }), "effects");
    assert_eq!(refused(quick(0, 1)), "n_evaluations");
    assert_eq!(refused(quick(1, 0)), "n_evaluations_power");
    assert_eq!(
        refused(RegressionScoreOptions { target_false_alarm_rate: 1.0, ..quick(1, 1) }),
        "target_false_alarm_rate"
    );
    let one_run = NonZeroUsize::MIN;
    assert_eq!(refused(RegressionScoreOptions { z_score_window: one_run, ..quick(1, 1) }), "z_score_window");
}
