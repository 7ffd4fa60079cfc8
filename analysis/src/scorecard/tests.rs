//! The scorecard on hand-computed cases and seeded synthetic worlds: noise cells with
//! log-normal run-to-run noise, latencies from a roofline-like law, and two classes one
//! twice as fast as the other.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::num::NonZeroUsize;

use super::rules::{calibrated_threshold, critical_score, Configured, RuleShapes, SeriesView};
use super::*;
use crate::predict::{Observation, Point};
use crate::regressions::DetectOptions;
use crate::rng::Rng;
use crate::testing::gaussian;
use proptest::prelude::*;

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

#[test]
fn spearman_ranks_ties_at_their_mean() {
    assert_eq!(ranks(&[1.0, 2.0, 2.0, 3.0]), [1.0, 2.5, 2.5, 4.0]);
    // Ranks (1, 2, 3) against (1, 3, 2): 1 − 6 · 2 / (3 · 8) = 0.5.
    assert_close(spearman(&[(1.0, 10.0), (2.0, 20.0), (3.0, 15.0)]).expect("3 pairs"), 0.5, 1e-12);
    assert_close(spearman(&[(1.0, 3.0), (2.0, 2.0), (3.0, 1.0), (4.0, 0.5)]).expect("4 pairs"), -1.0, 1e-12);
    assert_eq!(spearman(&[(1.0, 1.0), (2.0, 2.0)]), None);
    assert_eq!(spearman(&[(1.0, 1.0), (2.0, 1.0), (3.0, 1.0)]), None);
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
    let score = regressions(&study(1), &quick(300, 200)).expect("a valid study");
    assert_eq!((score.n_cells, score.series_len), (4, 20));
    let false_alarms = &score.detector.false_alarms;
    assert_eq!(false_alarms.n_series, 300);
    assert!(false_alarms.rate <= 0.02, "{false_alarms:?}");
    assert_eq!(false_alarms.upper_95, clopper_pearson_upper(false_alarms.n_alarmed, 300));
    // From 9 runs of history on, the latest runs' checks see a 5 % step in 1 % noise
    // (about 6 standard errors) most of the time and a 10 % step always.
    eprintln!("{:?}", score.detector.power);
    assert!(power_of(&score.detector.power, 0.05).detection_rate >= 0.85, "{:?}", score.detector.power);
    assert!(power_of(&score.detector.power, 0.10).detection_rate >= 0.99, "{:?}", score.detector.power);
    for power in &score.detector.power {
        assert!(power.n_detected <= power.n_alarmed && power.n_trials == 200, "{power:?}");
    }
    // With 3 runs of history, neither check can confirm a change 3 runs from the end
    // until the history has grown: about half the trials, whatever the effect.
    let short_history = RegressionScoreOptions { min_history: 3, ..quick(20, 200) };
    let score = regressions(&study(1), &short_history).expect("a valid study");
    eprintln!("{:?}", score.detector.power);
    for effect in [0.05, 0.10] {
        let power = power_of(&score.detector.power, effect);
        assert!((0.3..0.8).contains(&power.detection_rate), "{power:?}");
    }
}

#[test]
fn a_change_after_three_runs_is_never_confirmed_within_three_more() {
    // Six runs, the last three twice as slow: the permutation p-value is at least
    // 2 / C(6, 3) = 0.1, far above 1 %. The old mean rule over 3 runs sees it at once.
    let options = RegressionScoreOptions {
        series_len: 6,
        min_history: 3,
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

// ----- Prediction and recommendation -----

/// (name, family, parameters).
const MODELS: [(&str, &str, f64); 6] = [
    ("enc-s", "encoder", 6.6e7),
    ("enc-m", "encoder", 1.1e8),
    ("enc-l", "encoder", 3.4e8),
    ("dec-s", "decoder", 1.24e8),
    ("dec-m", "decoder", 3.55e8),
    ("dec-l", "decoder", 1.2e9),
];

/// (name, fp32 FLOP/s, bf16 FLOP/s, bytes/s).
const CLASSES: [(&str, f64, f64, f64); 3] =
    [("a10", 3.1e13, 1.2e14, 6.0e11), ("h100", 6.0e13, 8.0e14, 3.0e12), ("t4", 8.0e12, 6.5e13, 3.0e11)];

const BATCHES: [u32; 7] = [1, 2, 4, 8, 16, 32, 64];

fn point(model_idx: usize, class: (&str, f64, f64, f64), precision: &str, batch: u32) -> Point {
    let (model, family, params) = MODELS[model_idx];
    let (class, fp32_rate, bf16_rate, bandwidth) = class;
    let (peak_flops, bytes_per_param) = if precision == "bf16" { (bf16_rate, 2.0) } else { (fp32_rate, 4.0) };
    Point {
        model: model.into(),
        family: family.into(),
        hardware_class: class.into(),
        precision: precision.into(),
        mode: "infer".into(),
        batch,
        seq_len: 128,
        flops: 2.0 * params * 128.0 * f64::from(batch),
        weight_bytes: params * bytes_per_param,
        peak_flops,
        bandwidth,
    }
}

/// A launch overhead plus compute at 60 % of the peak rate plus reading the weights:
/// the roofline's two times added, which the log-linear model can only approximate.
fn roofline_seconds(p: &Point) -> f64 {
    2e-5 + p.flops / (0.6 * p.peak_flops) + p.weight_bytes / p.bandwidth
}

/// The weights, twice (gradients or a copy), plus activations growing with the batch.
fn peak_bytes(p: &Point) -> f64 {
    2.0 * p.weight_bytes + 3e6 * f64::from(p.batch)
}

/// Every model on `classes`, both precisions, every batch, each value times a seeded
/// log-normal factor of `noise`.
fn world(classes: &[(&str, f64, f64, f64)], noise: f64, seed: u64) -> (Vec<Observation>, Vec<Observation>) {
    let mut rng = Rng::new(seed);
    let (mut latency, mut memory) = (Vec::new(), Vec::new());
    for model_idx in 0..MODELS.len() {
        for &class in classes {
            for precision in ["fp32", "bf16"] {
                for batch in BATCHES {
                    let point = point(model_idx, class, precision, batch);
                    let value = roofline_seconds(&point) * (noise * gaussian(&mut rng)).exp();
                    latency.push(Observation { value, point: point.clone() });
                    memory.push(Observation { value: peak_bytes(&point), point });
                }
            }
        }
    }
    (latency, memory)
}

fn answered(split: &SplitScore) -> Vec<(PredictionBaseline, usize)> {
    split.baselines.iter().map(|b| (b.baseline, b.n_answered)).collect()
}

#[test]
fn a_roofline_world_is_predicted_well_on_every_split_and_baselines_answer_what_they_can() {
    let (latency, memory) = world(&CLASSES, 0.02, 1);
    let score = prediction(&latency, &memory, &PredictionScoreOptions::DEFAULT).expect("a valid world");
    use PredictionBaseline::{LinearInBatch as Linear, NearestNeighbour as Nearest, Roofline};
    let n_rows = latency.len();
    // (split, folds, points, answered by nearest neighbour and by linear in batch; the
    // roofline answers every point), and whether the fit can be accurate there.
    let expected = [
        (&score.leave_one_batch_out, 7, n_rows, n_rows, n_rows, true),
        // 6 models × 3 classes × 2 precisions × batches 16, 32, 64.
        (&score.small_to_large_batch, 1, 108, 108, 108, true),
        // A model left out has no series; its family on the class is its neighbour.
        (&score.leave_one_model_out, 6, n_rows, n_rows, 0, true),
        // Nor has a precision left out; the family on the class still answers. The fit
        // cannot be right here: trained on one precision, each class's peak rate is a
        // constant of the class, so ln(flops/peak) = ln(batch) + ln(flops/batch) − a class
        // constant, and the roofline's compute term cannot be told from the batch columns
        // and the class one-hots. The scorecard shows it (MdAPE about 60 % on this world).
        (&score.leave_one_precision_out, 2, n_rows, n_rows, 0, false),
        // A class left out has no row at all on it.
        (&score.leave_one_class_out, 3, n_rows, 0, 0, true),
    ];
    for (split, n_folds, n_points, n_nearest, n_linear, reachable) in expected {
        let split = split.as_ref().expect("the split exists");
        assert_eq!((split.n_folds, split.n_points), (n_folds, n_points), "{split:?}");
        assert_eq!(answered(split), [(Nearest, n_nearest), (Linear, n_linear), (Roofline, n_points)], "{split:?}");
        assert!(!reachable || split.mdape < 0.25, "{split:?}");
        assert!(!reachable || (0.5..=1.0).contains(&split.coverage), "{split:?}");
    }
    let by_model = score.leave_one_model_out.as_ref().expect("several models");
    // Models differ in size by up to 18×: predicted from the catalog, they keep their order.
    assert!(by_model.rank_correlation.expect("6 models") > 0.9, "{by_model:?}");
    let memory_split = score.memory_leave_one_model_out.as_ref().expect("memory rows");
    assert_eq!(answered(memory_split), [(Nearest, memory.len()), (Linear, 0)]);
    assert!(memory_split.mdape < 0.25, "{memory_split:?}");
    // The roofline alone, without the overhead and the 60 % efficiency, errs more.
    let roofline = &by_model.baselines[2];
    assert!(roofline.ratio_to_ours.expect("both answered") > 1.0, "{roofline:?}");
    assert_eq!(roofline.ours_mdape, Some(by_model.mdape));
}

#[test]
fn with_one_class_there_is_no_class_to_leave_out_and_no_query_to_recommend_for() {
    let (latency, memory) = world(&CLASSES[..1], 0.02, 2);
    let score = prediction(&latency, &memory, &PredictionScoreOptions::DEFAULT).expect("a valid world");
    assert_eq!(score.leave_one_class_out, None);
    assert!(score.leave_one_model_out.is_some());
    assert_eq!(
        prediction(&latency, &[], &PredictionScoreOptions::DEFAULT).expect("valid").memory_leave_one_model_out,
        None
    );
    let picks = recommendation(&latency, &memory, &RecommendationScoreOptions::default()).expect("a valid world");
    assert_eq!(picks.n_classes, 1);
    assert_eq!(
        (picks.hidden_model.n_queries, picks.hidden_model.share_within, picks.hidden_model.mean_regret),
        (0, None, None)
    );
}

/// The a10 and a class twice as fast in every respect: every latency exactly halves.
fn slow_and_fast() -> [(&'static str, f64, f64, f64); 2] {
    let (_, fp32, bf16, bandwidth) = CLASSES[0];
    [CLASSES[0], ("fast", 2.0 * fp32, 2.0 * bf16, 2.0 * bandwidth)]
}

fn fast_latency(world: &[Observation]) -> Vec<Observation> {
    let halved =
        |o: &Observation| if o.point.hardware_class == "fast" { 0.5 * roofline_seconds(&o.point) } else { o.value };
    world.iter().map(|o| Observation { value: halved(o), point: o.point.clone() }).collect()
}

#[test]
fn a_class_twice_as_fast_is_picked_for_every_hidden_model() {
    let (latency, memory) = world(&slow_and_fast(), 0.0, 3);
    let latency = fast_latency(&latency);
    let score = recommendation(&latency, &memory, &RecommendationScoreOptions::default()).expect("a valid world");
    // 6 models × 2 precisions × 7 batches.
    let n_queries = 84;
    for picks in [&score.measured, &score.hidden_model] {
        assert_eq!(
            (picks.n_queries, picks.n_picked, picks.n_best, picks.n_within),
            (n_queries, 84, 84, 84),
            "{picks:?}"
        );
        assert_eq!((picks.share_best, picks.share_within, picks.mean_regret), (Some(1.0), Some(1.0), Some(0.0)));
        assert_eq!(picks.n_memory_violations, 0);
    }
}

#[test]
fn a_class_whose_memory_is_too_small_is_never_picked() {
    let (latency, memory) = world(&slow_and_fast(), 0.0, 4);
    let latency = fast_latency(&latency);
    // Below the smallest model's peak memory (2 × 6.6e7 × 2 bytes in bf16): nothing fits.
    let options = RecommendationScoreOptions {
        memory_limit_bytes: BTreeMap::from([("fast".to_string(), 1e8)]),
        ..RecommendationScoreOptions::default()
    };
    let score = recommendation(&latency, &memory, &options).expect("a valid world");
    for picks in [&score.measured, &score.hidden_model] {
        // The slow class is the best that fits, and picked every time.
        assert_eq!((picks.n_queries, picks.n_picked, picks.n_best), (84, 84, 84), "{picks:?}");
        assert_eq!(picks.n_memory_violations, 0, "{picks:?}");
    }
}

#[test]
fn bad_observations_and_limits_are_refused_by_name() {
    let (latency, memory) = world(&CLASSES[..2], 0.02, 5);
    let mut bad = latency.clone();
    bad[3].value = f64::NAN;
    let err = prediction(&bad, &memory, &PredictionScoreOptions::DEFAULT).expect_err("NaN is refused");
    assert!(
        matches!(&err, ScoreError::InvalidObservation { set: "latency", observation_idx: 3, model, .. } if model == "enc-s"),
        "{err:?}"
    );
    let mut bad_memory = memory.clone();
    bad_memory[0].point.flops = -1.0;
    let err = recommendation(&latency, &bad_memory, &RecommendationScoreOptions::default()).expect_err("refused");
    assert_eq!(err.to_string(), "memory observation 0 (enc-s on a10) has flops -1; it must be finite and above 0");
    assert_eq!(
        prediction(&[], &memory, &PredictionScoreOptions::DEFAULT),
        Err(ScoreError::NoObservations { set: "latency" })
    );
    let options = RecommendationScoreOptions {
        memory_limit_bytes: BTreeMap::from([("a10".to_string(), f64::INFINITY)]),
        ..RecommendationScoreOptions::default()
    };
    assert_eq!(
        recommendation(&latency, &memory, &options),
        Err(ScoreError::InvalidMemoryLimit { hardware_class: "a10".into(), value: f64::INFINITY })
    );
    let options = PredictionScoreOptions { large_batch_min: 8, ..PredictionScoreOptions::DEFAULT };
    assert!(matches!(
        prediction(&latency, &memory, &options),
        Err(ScoreError::InvalidOption { name: "large_batch_min", .. })
    ));
    // Too few rows to fit once a precision is held out: that split has no score, and
    // neither has any other here (one model, one batch), but none is an error.
    let few: Vec<Observation> =
        latency.iter().filter(|o| o.point.batch == 1 && o.point.model == "enc-s").cloned().collect();
    let score = prediction(&few, &[], &PredictionScoreOptions::DEFAULT).expect("valid rows");
    assert_eq!(score.leave_one_precision_out, None);
    assert_eq!(score.leave_one_class_out, None);
}

// ----- No input makes it panic -----

/// Mostly valid numbers, so that most cases get past the checks, and now and then one
/// that is not.
fn any_latency() -> impl Strategy<Value = f64> {
    prop_oneof![1 => Just(f64::NAN), 1 => Just(f64::INFINITY), 1 => Just(-1.0), 1 => Just(0.0), 40 => 1e5f64..1e6]
}

fn any_row() -> impl Strategy<Value = Observation> {
    let value = prop_oneof![1 => Just(f64::NAN), 1 => Just(0.0), 1 => Just(1e300), 40 => 1e-4f64..1.0];
    (0..MODELS.len(), 0..CLASSES.len(), prop::bool::ANY, prop::sample::select(BATCHES.to_vec()), value).prop_map(
        |(model_idx, class_idx, bf16, batch, value)| Observation {
            point: point(model_idx, CLASSES[class_idx], if bf16 { "bf16" } else { "fp32" }, batch),
            value,
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn no_study_makes_the_regression_scorecard_panic(
        cells in prop::collection::vec(prop::collection::vec(prop::collection::vec(any_latency(), 0..4), 0..5), 0..3),
        series_len in 0usize..12,
        seed: u64,
    ) {
        let study: Vec<NoiseCell> =
            cells.into_iter().enumerate().map(|(idx, runs)| NoiseCell { name: format!("c{idx}"), runs }).collect();
        let options = RegressionScoreOptions { series_len, seed, ..quick(3, 3) };
        if let Ok(score) = regressions(&study, &options) {
            prop_assert!(score.rules.iter().all(|r| r.false_alarms.n_series == 3));
        }
    }

    #[test]
    fn no_rows_make_the_prediction_and_recommendation_scorecards_panic(
        latency in prop::collection::vec(any_row(), 0..14),
        memory in prop::collection::vec(any_row(), 0..8),
        limit in prop_oneof![Just(None), Just(Some(f64::NAN)), Just(Some(1e8))],
    ) {
        let _ = prediction(&latency, &memory, &PredictionScoreOptions::DEFAULT);
        let memory_limit_bytes = limit.map(|l| ("h100".to_string(), l)).into_iter().collect();
        let options = RecommendationScoreOptions { memory_limit_bytes, ..RecommendationScoreOptions::default() };
        let _ = recommendation(&latency, &memory, &options);
    }
}
