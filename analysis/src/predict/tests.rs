//! The predictor on hand-made worlds: data drawn exactly from the log-linear model,
//! the same with a distorted series, and with seeded log-normal noise.

use super::baselines::{linear_in_batch, nearest_neighbour, roofline};
use super::*;
use crate::rng::Rng;
use crate::testing::gaussian;
use proptest::prelude::*;

/// (name, family, parameters). The last is never trained on in the exact world.
const MODELS: [(&str, &str, f64); 6] = [
    ("bert-base", "encoder", 1.1e8),
    ("bert-large", "encoder", 3.4e8),
    ("gpt2", "decoder", 1.24e8),
    ("gpt2-medium", "decoder", 3.55e8),
    ("llama-1b", "decoder", 1.2e9),
    ("distilbert", "encoder", 6.6e7),
];

/// (name, fp32 FLOP/s, bf16 FLOP/s, bytes/s). The bf16/fp32 ratios differ from class
/// to class, so that the peak rate is not a class effect times a precision effect and
/// its weight can be told apart from the one-hots. The last is never trained on.
const CLASSES: [(&str, f64, f64, f64); 4] = [
    ("a10", 3.1e13, 1.2e14, 6.0e11),
    ("h100", 6.0e13, 8.0e14, 3.0e12),
    ("t4", 8.0e12, 6.5e13, 3.0e11),
    ("l4", 3.0e13, 1.8e14, 3.0e11),
];

const PRECISIONS: [&str; 2] = ["fp32", "bf16"];
const MODES: [&str; 2] = ["infer", "train"];

fn point(model_idx: usize, class_idx: usize, precision: &str, mode: &str, batch: u32, seq_len: u32) -> Point {
    let (model, family, params) = MODELS[model_idx];
    let (class, fp32_rate, bf16_rate, bandwidth) = CLASSES[class_idx];
    let (peak_flops, bytes_per_param) = if precision == "bf16" { (bf16_rate, 2.0) } else { (fp32_rate, 4.0) };
    let passes = if mode == "train" { 3.0 } else { 1.0 };
    Point {
        model: model.into(),
        family: family.into(),
        hardware_class: class.into(),
        precision: precision.into(),
        mode: mode.into(),
        batch,
        seq_len,
        flops: 2.0 * params * f64::from(seq_len) * f64::from(batch) * passes,
        weight_bytes: params * bytes_per_param,
        peak_flops,
        bandwidth,
    }
}

/// The log-linear model the exact world is drawn from: no class effect, so that a
/// class is known through its calibration alone.
fn true_log_value(p: &Point) -> f64 {
    let (flops, batch) = (p.flops.ln(), f64::from(p.batch).ln());
    let family = if p.family == "encoder" { 0.2 } else { -0.1 };
    let precision = if p.precision == "bf16" { 0.15 } else { 0.0 };
    let mode = if p.mode == "train" { 0.4 } else { 0.0 };
    -1.0 + 0.8 * (flops - p.peak_flops.ln())
        + 0.3 * (p.weight_bytes.ln() - p.bandwidth.ln())
        + 0.1 * batch
        + 0.05 * (flops - batch)
        + family
        + precision
        + mode
}

/// Every cell of the given models and classes, both precisions and modes.
fn grid(models: &[usize], classes: &[usize], batches: &[u32], seq_lens: &[u32]) -> Vec<Point> {
    let mut points = Vec::new();
    for &m in models {
        for &c in classes {
            for precision in PRECISIONS {
                for mode in MODES {
                    for &seq_len in seq_lens {
                        points.extend(batches.iter().map(|&b| point(m, c, precision, mode, b, seq_len)));
                    }
                }
            }
        }
    }
    points
}

fn exact(points: Vec<Point>) -> Vec<Observation> {
    points.into_iter().map(|point| Observation { value: true_log_value(&point).exp(), point }).collect()
}

/// Five models on three classes at batches 1, 2, 8, 32 and sequence lengths 128, 512,
/// without noise: 480 rows.
fn exact_world() -> Vec<Observation> {
    exact(grid(&[0, 1, 2, 3, 4], &[0, 1, 2], &[1, 2, 8, 32], &[128, 512]))
}

/// A ridge small enough that its shrinkage is below the tests' tolerance.
fn nearly_unpenalised() -> PredictOptions {
    PredictOptions { ridge: 1e-6, ..PredictOptions::DEFAULT }
}

fn fitted(observations: &[Observation], options: &PredictOptions) -> Predictor {
    fit(observations, options).expect("valid observations")
}

fn predicted(predictor: &Predictor, query: &Point) -> Prediction {
    predictor.predict(query).expect("valid query")
}

fn assert_relative(actual: f64, expected: f64, tolerance: f64) {
    assert!((actual / expected - 1.0).abs() < tolerance, "{actual} against {expected}");
}

#[test]
fn exact_data_is_predicted_exactly_inside_a_series_for_a_new_model_and_on_a_new_class() {
    let predictor = fitted(&exact_world(), &nearly_unpenalised());
    let cases = [
        // A measured batch: between measured batches the prediction is a line in batch,
        // which this power-law world only approximates (tested below).
        (point(0, 0, "bf16", "train", 8, 128), Basis::SameSeries),
        (point(5, 1, "fp32", "infer", 8, 512), Basis::CatalogOnly),
        (point(1, 3, "bf16", "infer", 16, 128), Basis::SameModelElsewhere),
    ];
    for (query, basis) in cases {
        let p = predicted(&predictor, &query);
        assert_eq!(p.basis, basis, "{query:?}");
        assert_relative(p.value, true_log_value(&query).exp(), 1e-6);
    }
}

#[test]
fn each_basis_is_the_nearest_evidence_and_counts_its_rows() {
    let predictor = fitted(&exact_world(), &nearly_unpenalised());
    let cases = [
        (point(0, 0, "fp32", "infer", 4, 128), Basis::SameSeries, 2),
        (point(0, 0, "fp32", "infer", 2, 128), Basis::SameSeries, 1),
        // Past the last batch, 32, along the slope from 8.
        (point(0, 0, "fp32", "infer", 64, 128), Basis::SameSeries, 2),
        // Model 0 has 2 precisions × 2 modes × 2 lengths × 4 batches = 32 rows a class.
        (point(0, 0, "fp32", "infer", 4, 256), Basis::SameModelOnClass, 32),
        (point(0, 3, "fp32", "infer", 4, 128), Basis::SameModelElsewhere, 96),
        (point(5, 0, "fp32", "infer", 4, 128), Basis::CatalogOnly, 0),
    ];
    for (query, basis, n_support) in cases {
        let p = predicted(&predictor, &query);
        assert_eq!((p.basis, p.n_support), (basis, n_support), "{query:?}");
    }
    assert_eq!(Basis::SameModelElsewhere.as_str(), "same-model-elsewhere");
    assert_eq!(Basis::CatalogOnly.to_string(), "catalog-only");
}

/// The exact world with one series (model 0 on class 0, fp32, inference, length 128)
/// measured at batches 1, 4 and 16 only, 2, 8 and 8 times what the model says.
fn distorted_world() -> Vec<Observation> {
    let mut observations: Vec<Observation> =
        exact_world().into_iter().filter(|o| !same_series(&o.point, &point(0, 0, "fp32", "infer", 1, 128))).collect();
    for (batch, factor) in [(1, 2.0), (4, 8.0), (16, 8.0)] {
        let point = point(0, 0, "fp32", "infer", batch, 128);
        observations.push(Observation { value: factor * true_log_value(&point).exp(), point });
    }
    observations
}

#[test]
fn a_series_the_global_model_gets_wrong_is_corrected_from_its_neighbours() {
    let predictor = fitted(&distorted_world(), &PredictOptions::DEFAULT);
    let truth = |batch| true_log_value(&point(0, 0, "fp32", "infer", batch, 128)).exp();
    let at = |batch| predicted(&predictor, &point(0, 0, "fp32", "infer", batch, 128)).value;
    // A measured batch is its measurement.
    assert_relative(at(4), 8.0 * truth(4), 1e-12);
    // Between two measured batches the prediction is the line in batch through their
    // values: batch 2 is a third of the way from 1 to 4, batch 8 a third from 4 to 16.
    let line = |(b0, v0): (f64, f64), (b1, v1): (f64, f64), b: f64| v0 + (b - b0) / (b1 - b0) * (v1 - v0);
    let (v1, v4, v16) = (2.0 * truth(1), 8.0 * truth(4), 8.0 * truth(16));
    assert_relative(at(2), line((1.0, v1), (4.0, v4), 2.0), 1e-12);
    assert_relative(at(8), line((4.0, v4), (16.0, v16), 8.0), 1e-12);
    // Past the last batch the residual moves on at half its slope from batch 4 to 16;
    // 64 is as far past 16 in ln(batch) as 16 is past 4.
    let global = |batch| dot(&predictor.weights, &predictor.encoder.row(&point(0, 0, "fp32", "infer", batch, 128)));
    let residual = |batch| (8.0 * truth(batch)).ln() - global(batch);
    let expected = global(64) + residual(16) + 0.5 * (residual(16) - residual(4));
    assert_relative(at(64), expected.exp(), 1e-12);
}

#[test]
fn an_affine_series_is_predicted_exactly_between_its_batches() {
    // Latency a fixed cost plus a cost per item, which a fit in ln(batch) cannot follow:
    // between measured batches the line in batch through them is exact.
    let mut observations = distorted_world();
    observations.retain(|o| !same_series(&o.point, &point(0, 0, "fp32", "infer", 1, 128)));
    let affine = |batch: u32| 0.004 + 0.001 * f64::from(batch);
    for batch in [1, 8, 64] {
        observations.push(Observation { value: affine(batch), point: point(0, 0, "fp32", "infer", batch, 128) });
    }
    let predictor = fitted(&observations, &PredictOptions::DEFAULT);
    for batch in [2, 4, 16, 32] {
        let p = predicted(&predictor, &point(0, 0, "fp32", "infer", batch, 128));
        assert_eq!((p.basis, p.n_support), (Basis::SameSeries, 2));
        assert_relative(p.value, affine(batch), 1e-9);
    }
}

#[test]
fn repeated_runs_of_a_batch_are_averaged_before_interpolating() {
    let mut observations = distorted_world();
    // Batch 1 measured twice more, at factors 1 and 4: with the first, 2, the mean
    // of the logs is ln 2 again, so nothing moves; one run counts as much as the mean.
    // Batch 2 is a third of the way from 1 to 4 on the line through their values.
    for factor in [1.0, 4.0] {
        let point = point(0, 0, "fp32", "infer", 1, 128);
        observations.push(Observation { value: factor * true_log_value(&point).exp(), point });
    }
    let predictor = fitted(&observations, &PredictOptions::DEFAULT);
    let query = point(0, 0, "fp32", "infer", 2, 128);
    let p = predicted(&predictor, &query);
    assert_eq!(p.n_support, 4);
    let truth = |batch| true_log_value(&point(0, 0, "fp32", "infer", batch, 128)).exp();
    let (v1, v4) = (2.0 * truth(1), 8.0 * truth(4));
    assert_relative(p.value, v1 + (v4 - v1) / 3.0, 1e-9);
}

/// Standard deviations of the ln noise of the noisy world: each model's own factor,
/// which the global model cannot see, and each run's.
#[derive(Clone, Copy)]
struct Noise {
    model: f64,
    run: f64,
}

/// Run noise above the model's: the corrections' own noise shows.
const NOISY_RUNS: Noise = Noise { model: 0.1, run: 0.15 };
/// Model factors well above the run noise, as with medians of many iterations: the
/// corrections pay.
const QUIRKY_MODELS: Noise = Noise { model: 0.3, run: 0.05 };

/// 24 synthetic models in three families on the three training classes, both
/// precisions, inference only, length 256, at `batches`, the true value times a
/// log-normal factor of the model (fixed by `model_seed`) and one of the run.
fn noisy_world(batches: &[u32], noise: Noise, model_seed: u64, run_seed: u64) -> Vec<Observation> {
    let mut model_rng = Rng::new(model_seed);
    let mut run_rng = Rng::new(run_seed);
    let mut observations = Vec::new();
    for model_idx in 0..24 {
        let params = 5e7 * 40f64.powf(model_rng.below(1001) as f64 / 1000.0);
        let model_effect = noise.model * gaussian(&mut model_rng);
        for class_idx in 0..3 {
            for precision in PRECISIONS {
                for &batch in batches {
                    let mut p = point(0, class_idx, precision, "infer", batch, 256);
                    p.model = format!("m{model_idx}");
                    p.family = ["encoder", "decoder", "vision"][model_idx % 3].into();
                    let scale = params / MODELS[0].2;
                    (p.flops, p.weight_bytes) = (p.flops * scale, p.weight_bytes * scale);
                    let noise = model_effect + noise.run * gaussian(&mut run_rng);
                    observations.push(Observation { value: (true_log_value(&p) + noise).exp(), point: p });
                }
            }
        }
    }
    observations
}

fn coverage(predictor: &Predictor, queries: &[Observation]) -> f64 {
    let n_inside = queries.iter().filter(|q| predicted(predictor, &q.point).interval.contains(q.value)).count();
    n_inside as f64 / queries.len() as f64
}

#[test]
fn new_runs_between_measured_batches_fall_in_the_interval_about_80_percent_of_the_time() {
    let predictor = fitted(&noisy_world(&[1, 4, 16, 64], NOISY_RUNS, 1, 2), &PredictOptions::DEFAULT);
    // Same models (same model seed), new runs at the batches in between.
    let queries = noisy_world(&[2, 8, 32], NOISY_RUNS, 1, 3);
    assert!(queries.iter().all(|q| predicted(&predictor, &q.point).basis == Basis::SameSeries));
    let share = coverage(&predictor, &queries);
    assert!((0.7..=0.9).contains(&share), "{share}");
}

#[test]
fn models_left_out_of_the_fit_fall_in_the_interval_about_80_percent_of_the_time() {
    let observations = noisy_world(&[1, 4, 16, 64], NOISY_RUNS, 4, 5);
    let (mut n_inside, mut n_queries) = (0, 0);
    for model_idx in 0..24 {
        let model = format!("m{model_idx}");
        let (held_out, kept): (Vec<Observation>, Vec<Observation>) =
            observations.iter().cloned().partition(|o| o.point.model == model);
        let predictor = fitted(&kept, &PredictOptions::DEFAULT);
        for query in &held_out {
            let p = predicted(&predictor, &query.point);
            assert_eq!(p.basis, Basis::CatalogOnly);
            n_inside += usize::from(p.interval.contains(query.value));
            n_queries += 1;
        }
    }
    let share = n_inside as f64 / n_queries as f64;
    assert!((0.7..=0.9).contains(&share), "{share}");
}

#[test]
fn a_catalog_only_interval_is_wider_than_a_same_series_one() {
    let predictor = fitted(&noisy_world(&[1, 4, 16, 64], QUIRKY_MODELS, 6, 7), &PredictOptions::DEFAULT);
    let width = |p: Prediction| (p.interval.high() / p.interval.low()).ln();
    let mut query = noisy_world(&[8], QUIRKY_MODELS, 6, 8).swap_remove(0).point;
    let in_series = predicted(&predictor, &query);
    query.model = "never-measured".into();
    let catalog_only = predicted(&predictor, &query);
    assert_eq!((in_series.basis, catalog_only.basis), (Basis::SameSeries, Basis::CatalogOnly));
    assert!(width(catalog_only) > width(in_series), "{catalog_only:?} {in_series:?}");
}

#[test]
fn the_same_input_and_seed_give_the_same_predictions_bit_for_bit() {
    let observations = noisy_world(&[1, 4, 16, 64], NOISY_RUNS, 9, 10);
    let queries = noisy_world(&[2, 128], NOISY_RUNS, 11, 12);
    let options = PredictOptions { seed: 77, ..PredictOptions::DEFAULT };
    let bits = |p: Prediction| (p.value.to_bits(), p.interval.low().to_bits(), p.interval.high().to_bits());
    let (first, second) = (fitted(&observations, &options), fitted(&observations, &options));
    for query in &queries {
        assert_eq!(bits(predicted(&first, &query.point)), bits(predicted(&second, &query.point)));
    }
}

#[test]
fn equal_values_are_predicted_as_that_value_with_a_point_interval() {
    let observations: Vec<Observation> =
        exact_world().into_iter().map(|o| Observation { value: 3.0, point: o.point }).collect();
    let predictor = fitted(&observations, &PredictOptions::DEFAULT);
    for query in [point(0, 0, "fp32", "infer", 4, 128), point(5, 3, "bf16", "train", 7, 64)] {
        let p = predicted(&predictor, &query);
        assert_relative(p.value, 3.0, 1e-9);
        assert_relative(p.interval.low(), 3.0, 1e-9);
        assert_relative(p.interval.high(), 3.0, 1e-9);
    }
}

#[test]
fn fewer_rows_than_columns_and_one_value_per_category_still_fit() {
    // Five rows of one family, class, precision and mode; 13 columns.
    let observations = exact(grid(&[0], &[0], &[1, 2, 4, 8, 16], &[128]).into_iter().step_by(4).collect());
    assert_eq!(observations.len(), 5);
    let predictor = fitted(&observations, &PredictOptions::DEFAULT);
    let query = point(0, 0, "fp32", "infer", 3, 128);
    let p = predicted(&predictor, &query);
    assert!(p.value.is_finite() && p.value > 0.0, "{p:?}");
    assert!(p.interval.low() > 0.0 && p.interval.high().is_finite(), "{p:?}");
}

#[test]
fn bad_input_names_the_field_the_model_and_the_class() {
    let opts = PredictOptions::DEFAULT;
    assert_eq!(fit(&[], &opts).err(), Some(PredictError::TooFewObservations { n_observations: 0, n_needed: 5 }));
    let mut observations = exact_world();
    observations[2].value = f64::NAN;
    let err = fit(&observations, &opts).expect_err("NaN is refused");
    assert!(
        matches!(&err, PredictError::InvalidObservation { observation_idx: 2, field: Field::Value, model, hardware_class, value }
            if model == "bert-base" && hardware_class == "a10" && value.is_nan()),
        "{err:?}"
    );
    let mut observations = exact_world();
    observations[3].point.flops = 0.0;
    let err = fit(&observations, &opts).expect_err("zero flops are refused");
    assert_eq!(err.to_string(), "observation 3 (bert-base on a10) has flops 0; it must be finite and above 0");
    let predictor = fitted(&exact_world(), &opts);
    let query = Point { batch: 0, ..point(1, 1, "fp32", "infer", 1, 128) };
    assert_eq!(
        predictor.predict(&query).err().map(|e| e.to_string()),
        Some("the query (bert-large on h100) has batch 0; it must be finite and above 0".into())
    );
    let query = Point { bandwidth: f64::INFINITY, ..point(1, 1, "fp32", "infer", 1, 128) };
    assert!(matches!(predictor.predict(&query), Err(PredictError::InvalidQuery { field: Field::Bandwidth, .. })));
}

#[test]
fn bad_options_are_refused_by_name() {
    let observations = exact_world();
    let refused = |options: PredictOptions| match fit(&observations, &options) {
        Err(PredictError::InvalidOption { name, .. }) => name,
        other => panic!("{other:?}"),
    };
    assert_eq!(refused(PredictOptions { ridge: 0.0, ..PredictOptions::DEFAULT }), "ridge");
    assert_eq!(refused(PredictOptions { ridge: f64::NAN, ..PredictOptions::DEFAULT }), "ridge");
    assert_eq!(refused(PredictOptions { folds: 1, ..PredictOptions::DEFAULT }), "folds");
    assert_eq!(refused(PredictOptions { coverage: 1.0, ..PredictOptions::DEFAULT }), "coverage");
}

fn baseline_rows() -> Vec<Observation> {
    let row = |model_idx, batch, value| Observation { point: point(model_idx, 0, "fp32", "infer", batch, 128), value };
    vec![row(0, 1, 1.0), row(0, 4, 2.5), row(0, 16, 8.5), row(1, 2, 6.0), row(2, 8, 9.0)]
}

#[test]
fn the_nearest_neighbour_is_nearest_in_ln_batch_then_in_ln_flops_within_the_family() {
    let train = baseline_rows();
    // ln 2 is nearer ln 1 than ln 4 only by a tie: the earlier row wins.
    assert_eq!(nearest_neighbour(&train, &point(0, 0, "fp32", "infer", 2, 128)), Some(1.0));
    assert_eq!(nearest_neighbour(&train, &point(0, 0, "fp32", "infer", 9, 128)), Some(8.5));
    // Distilbert has no series; of its family (encoders) on a10 the nearest in flops at
    // batch 8 is bert-base at batch 4 (ln ratio 0.46, against 0.77 for bert-large at 2).
    assert_eq!(nearest_neighbour(&train, &point(5, 0, "fp32", "infer", 8, 128)), Some(2.5));
    assert_eq!(nearest_neighbour(&train, &point(0, 3, "fp32", "infer", 8, 128)), None);
}

#[test]
fn the_line_in_batch_is_least_squares_through_the_series() {
    let train = baseline_rows();
    // Batches 1, 4, 16 and values 1, 2.5, 8.5 lie on 0.5 + 0.5 · batch exactly.
    assert_eq!(linear_in_batch(&train, &point(0, 0, "fp32", "infer", 10, 128)), Some(5.5));
    assert_eq!(linear_in_batch(&train, &point(1, 0, "fp32", "infer", 10, 128)), None, "one batch only");
    assert_eq!(linear_in_batch(&train, &point(5, 0, "fp32", "infer", 10, 128)), None, "no series");
}

#[test]
fn the_roofline_is_the_slower_of_compute_and_memory() {
    let mut query = point(0, 0, "fp32", "infer", 1, 128);
    (query.flops, query.peak_flops, query.weight_bytes, query.bandwidth) = (6e12, 3e13, 4e8, 1e12);
    assert_eq!(roofline(&query), 0.2);
    query.weight_bytes = 4e11;
    assert_eq!(roofline(&query), 0.4);
}

fn any_number() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(-1.0),
        Just(0.0),
        Just(f64::MIN_POSITIVE),
        Just(1e300),
        1e-3f64..1e3,
        1e-3f64..1e3,
        1e-3f64..1e3,
    ]
}

fn any_point() -> impl Strategy<Value = Point> {
    let name = |names: &'static [&'static str]| prop::sample::select(names).prop_map(String::from);
    (
        (name(&["a", "b", "c"]), name(&["f", "g"]), name(&["x", "y"]), name(&["fp32", "bf16"]), name(&["m"])),
        (0u32..5, 0u32..3),
        (any_number(), any_number(), any_number(), any_number()),
    )
        .prop_map(|((model, family, hardware_class, precision, mode), (batch, seq_len), (flops, wb, pf, bw))| {
            Point {
                model,
                family,
                hardware_class,
                precision,
                mode,
                batch,
                seq_len,
                flops,
                weight_bytes: wb,
                peak_flops: pf,
                bandwidth: bw,
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn no_input_makes_it_panic(
        rows in prop::collection::vec((any_point(), any_number()), 0..12),
        query in any_point(),
        seed: u64,
    ) {
        let observations: Vec<Observation> = rows.into_iter().map(|(point, value)| Observation { point, value }).collect();
        let options = PredictOptions { seed, ..PredictOptions::DEFAULT };
        if let Ok(predictor) = fit(&observations, &options) {
            for o in &observations {
                let p = predictor.predict(&o.point);
                prop_assert!(p.is_ok(), "{p:?}");
            }
            let _ = predictor.predict(&query);
        }
        let _ = (nearest_neighbour(&observations, &query), linear_in_batch(&observations, &query), roofline(&query));
    }
}

#[test]
fn past_the_ends_half_the_slope_beats_holding_the_end_flat_on_curved_series() {
    // Launch overhead + compute + memory time is curved in ln(batch), which the
    // log-linear model cannot follow; each model has its own factor, runs 2 % noise.
    let mut rng = Rng::new(42);
    let model_effects: Vec<f64> = (0..5).map(|_| 0.2 * gaussian(&mut rng)).collect();
    let observations: Vec<Observation> = grid(&[0, 1, 2, 3, 4], &[0, 1, 2], &[1, 2, 4, 8, 16, 32, 64, 128], &[128])
        .into_iter()
        .map(|p| {
            let seconds = 2e-4 + p.flops / (0.6 * p.peak_flops) + p.weight_bytes / p.bandwidth;
            let model_idx = MODELS.iter().position(|m| m.0 == p.model).expect("a listed model");
            let noise = model_effects[model_idx] + 0.02 * gaussian(&mut rng);
            Observation { value: seconds * noise.exp(), point: p }
        })
        .collect();
    for (kept, ends) in [([1, 2, 4, 8, 16, 32], [64, 128]), ([4, 8, 16, 32, 64, 128], [1, 2])] {
        let (train, test): (Vec<Observation>, Vec<Observation>) =
            observations.iter().cloned().partition(|o| kept.contains(&o.point.batch));
        let predictor = fitted(&train, &PredictOptions::DEFAULT);
        let (mut half_slope, mut flat) = (0.0, 0.0);
        for query in &test {
            let p = predicted(&predictor, &query.point);
            assert!(p.basis == Basis::SameSeries && p.n_support == 2, "{p:?}");
            half_slope += (query.value / p.value).ln().abs();
            let end_batch = if ends[0] == 1 { kept[0] } else { kept[kept.len() - 1] };
            let end = (0..train.len())
                .find(|&idx| same_series(&train[idx].point, &query.point) && train[idx].point.batch == end_batch)
                .expect("every series has its ends");
            let global = dot(&predictor.weights, &predictor.encoder.row(&query.point));
            flat += (query.value.ln() - global - predictor.residuals[end]).abs();
        }
        assert!(half_slope < 0.9 * flat, "{half_slope} against {flat} past {ends:?}");
    }
}

#[test]
fn every_interval_holds_its_own_prediction() {
    // Curved series (overhead + linear): extrapolation past the ends errs one way.
    let mut train = Vec::new();
    for (m, scale) in [("a", 1.0), ("b", 3.0), ("c", 9.0)] {
        for batch in [1u32, 2, 4, 8, 16] {
            let p = Point { batch, flops: 1e9 * scale * f64::from(batch), ..point_for_interval_test(m) };
            let value = 0.01 * scale + 1e-3 * scale * f64::from(batch).powf(1.3);
            train.push(Observation { point: p, value });
        }
    }
    let predictor = fit(&train, &PredictOptions::DEFAULT).expect("fits");
    for m in ["a", "b", "c", "d"] {
        for batch in [1u32, 3, 64, 512] {
            let q = Point { batch, flops: 1e9 * f64::from(batch), ..point_for_interval_test(m) };
            let p = predictor.predict(&q).expect("predicts");
            assert!(p.interval.contains(p.value), "{m} b{batch}: {p:?}");
        }
    }
}

fn point_for_interval_test(model: &str) -> Point {
    Point {
        model: model.into(),
        family: "bert".into(),
        hardware_class: "cpu/x".into(),
        precision: "fp32".into(),
        mode: "inference".into(),
        batch: 1,
        seq_len: 128,
        flops: 1e9,
        weight_bytes: 1e8,
        peak_flops: 1e11,
        bandwidth: 1e10,
    }
}
