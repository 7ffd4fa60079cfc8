//! Tests of the spec: parsing, every diagnostic, limits, the stored format.

use super::model::{closest_models, edit_distance};
use super::*;
use crate::catalog::{Mode, Precision};
use crate::cell;

const DESIGN_EXAMPLE: &str = r#"
name = "nightly-text"
[matrix]
models = ["bert-base-uncased", "t5-small", "vit-base-patch16-224"]
hardware = ["cpu", "cuda"]          # selectors; also { kind = "cuda", min_memory_gib = 24 }
fan_out = "each_hardware_class"     # or "any" (one cell per selector) / "each_agent"
batch_sizes = [1, 4, 16, 64]
sequence_lengths = [128]
precisions = ["fp32", "fp16", "bf16", "q8_0", "q4_0"]
modes = ["inference", "training"]
engines = ["candle"]
exclude = [{ models = ["llama-*"], precisions = ["fp32"], hardware = ["cpu"] }]
[measure]
warmup = { iterations = 3, min_seconds = 1.0 }
min_iterations = 20
min_seconds = 2.0
max_seconds = 120
target_relative_ci = 0.02           # stop early once the 95% CI of the median is this tight
[policy]
priority = 0
max_attempts = 3
lease_seconds = 120
"#;

fn valid(text: &str) -> SweepSpec {
    parse_toml(text, &Limits::default()).expect("a valid spec")
}

fn problems(text: &str, format: Format) -> String {
    let diagnostics = parse(text, format, &Limits::default()).expect_err("an invalid spec");
    diagnostics.to_string()
}

#[test]
fn design_example_is_valid_and_has_144_cells() {
    let spec = valid(DESIGN_EXAMPLE);
    assert_eq!(spec.name, "nightly-text");
    assert_eq!(spec.measure, MeasurePolicy::default());
    assert_eq!(spec.policy, Policy::default());
    // 3 models × 2 selectors × 4 batches × 1 length × 3 float precisions (the
    // quantised ones are for decoders only) × 2 modes × 1 engine.
    assert_eq!(cell::count(&spec, &[]), 144);
    assert_eq!(cell::expand(&spec, &[]).len(), 144);
}

#[test]
fn omitted_axes_and_tables_take_their_defaults() {
    let spec = valid(
        r#"
            name = "quick"
            [matrix]
            models = ["Bert-Tiny"]
            hardware = ["cpu", { kind = "cuda", min_memory_gib = 24, name = "*H100*" }]
            batch_sizes = [8, 1]
            "#,
    );
    let m = &spec.matrix;
    assert_eq!(m.models, ["bert-tiny"]);
    assert_eq!(m.hardware[1].to_string(), "cuda[min_memory_gib=24,name=*H100*]");
    assert_eq!(m.batch_sizes, [8, 1]);
    assert_eq!(m.sequence_lengths, [128]);
    assert_eq!(m.precisions, [Precision::Fp32]);
    assert_eq!(m.modes, [Mode::Inference]);
    assert_eq!(m.engines, [Engine::Candle]);
    assert_eq!(m.fan_out, FanOut::EachHardwareClass);
    assert!(m.exclude.is_empty());
    assert_eq!(spec.measure, MeasurePolicy::default());
    assert_eq!(spec.policy, Policy::default());
    assert_eq!(cell::count(&spec, &[]), 4);
}

#[test]
fn a_typo_in_a_key_does_not_hide_the_other_problems() {
    let text = "name = \"x\"\nnmae = \"y\"\n[matrix]\nmodles = [\"bert-tiny\"]\nmodels = [\"bert-bas\"]\n\
                    hardware = [\"cpu\"]\nbatch_sizes = [1]\n[measure]\nmax_second = 5\nmin_seconds = -1\n";
    expect_test::expect![[r#"
        5 problems
          nmae: got key `nmae`, expected only the keys name, matrix, measure, policy, weights
          matrix.modles: got key `modles`, expected only the keys models, hardware, fan_out, batch_sizes, sequence_lengths, precisions, modes, engines, exclude
          measure.max_second: got key `max_second`, expected only the keys warmup, min_iterations, min_seconds, max_seconds, target_relative_ci
          matrix.models[0]: got `bert-bas`, expected a catalog model; closest: bert-base-uncased, bert-tiny, vit-base-patch16-224
          measure.min_seconds: got -1, expected a number of seconds >= 0 and <= 86400"#]].assert_eq(&problems(text, Format::Toml));
    let json = r#"{"name": "x", "matrix": {"models": ["bert-tiny"], "hardware": ["cpu"], "batches": [1]}}"#;
    expect_test::expect![[r#"
            2 problems
              matrix.batches: got key `batches`, expected only the keys models, hardware, fan_out, batch_sizes, sequence_lengths, precisions, modes, engines, exclude
              matrix.batch_sizes: got nothing, expected a list with at least one value"#]].assert_eq(&problems(json, Format::Json));
}

#[test]
fn measure_times_beyond_a_day_are_refused() {
    let text = "name = \"x\"\n[matrix]\nmodels = [\"bert-tiny\"]\nhardware = [\"cpu\"]\nbatch_sizes = [1]\n\
                    [measure]\nmax_seconds = 1e19\nwarmup = { min_seconds = 86401 }\n";
    expect_test::expect![[r#"
            2 problems
              measure.warmup.min_seconds: got 86401, expected a number of seconds >= 0 and <= 86400
              measure.max_seconds: got 10000000000000000000, expected a number of seconds > 0 and <= 86400"#]]
    .assert_eq(&problems(text, Format::Toml));
}

#[test]
fn every_problem_is_reported_at_once() {
    let text = r#"
name = ""
[matrix]
models = ["bert-base-uncased", "bert-bas", "BERT-base-uncased", "gpt-5"]
hardware = ["cpu", "tpu", { kind = "cuda", min_memory_gib = -1 }, { kind = "cuda", colour = "red" }, { kind = "metal", name = "[" }, 3, "cpu"]
fan_out = "everywhere"
batch_sizes = [1, 0, -4, 4, 4, 2000000]
sequence_lengths = []
precisions = ["fp32", "int8"]
modes = ["inference", "serving"]
engines = ["candle", "tensorrt"]
exclude = [
  { models = ["lama-*"], colours = ["red"] },
  { },
  { precisions = ["fp64"], batch_sizes = [0], modes = [] },
  "everything",
]
[measure]
warmup = { iterations = -1, min_seconds = -1.0 }
min_iterations = 0
min_seconds = 10.0
max_seconds = 5.0
target_relative_ci = 1.5
[policy]
priority = 3000000000
max_attempts = 0
lease_seconds = 0
"#;
    expect_test::expect![[r#"
        34 problems
          name: got "", expected 1 to 128 characters, not blank, no control characters
          matrix.models[1]: got `bert-bas`, expected a catalog model; closest: bert-base-uncased, bert-tiny, vit-base-patch16-224
          matrix.models[2]: got `bert-base-uncased` again, expected each value once
          matrix.models[3]: got `gpt-5`, expected a catalog model; closest: vit-base-patch16-224, vit-tiny, all-MiniLM-L6-v2
          matrix.hardware[1]: got `tpu`, expected a hardware kind, one of cpu, cuda, rocm, metal, qnn, xpu, npu
          matrix.hardware[2]: got min_memory_gib = -1, expected a number of GiB > 0
          matrix.hardware[3]: got key `colour`, expected only the keys kind, min_memory_gib, name
          matrix.hardware[4]: got `[`, expected a valid glob pattern (invalid range pattern at position 0)
          matrix.hardware[5]: got 3, expected a hardware kind (cpu, cuda, rocm, metal, qnn, xpu, npu) or a table { kind, min_memory_gib, name }
          matrix.hardware[6]: got `cpu` again, expected each value once
          matrix.fan_out: got `everywhere`, expected one of any, each_hardware_class, each_agent
          matrix.batch_sizes[1]: got 0, expected an integer >= 1
          matrix.batch_sizes[2]: got -4, expected an integer >= 1
          matrix.batch_sizes[4]: got `4` again, expected each value once
          matrix.batch_sizes[5]: got 2000000, expected an integer <= 1048576
          matrix.sequence_lengths: got [], expected a list with at least one value
          matrix.precisions[1]: got `int8`, expected one of fp32, fp16, bf16, q8_0, q4_0, q4_1
          matrix.modes[1]: got `serving`, expected one of inference, training
          matrix.engines[1]: got `tensorrt`, expected one of candle, torch, torch-compile, onnxruntime, onnxruntime-openvino, openvino, llamacpp
          matrix.exclude[0]: got axis `colours`, expected only the axes models, hardware, batch_sizes, sequence_lengths, precisions, modes, engines
          matrix.exclude[0].models[0]: got `lama-*`, expected a glob matching a catalog model
          matrix.exclude[1]: got {}, expected at least one axis (an empty exclude would remove every cell)
          matrix.exclude[2].batch_sizes[0]: got 0, expected an integer >= 1
          matrix.exclude[2].modes: got [], expected a non-empty list
          matrix.exclude[2].precisions[0]: got `fp64`, expected a glob matching a precision
          matrix.exclude[3]: got `everything`, expected a table of axis = [values]
          measure.warmup.iterations: got -1, expected an integer from 0 to 1000000
          measure.warmup.min_seconds: got -1, expected a number of seconds >= 0 and <= 86400
          measure.min_iterations: got 0, expected an integer from 1 to 1000000
          measure.target_relative_ci: got 1.5, expected a number strictly between 0 and 1
          measure.min_seconds: got 10 (max_seconds is 5), expected at most measure.max_seconds
          policy.priority: got 3000000000, expected a 32-bit signed integer
          policy.max_attempts: got 0, expected an integer from 1 to 100
          policy.lease_seconds: got 0, expected an integer from 1 to 86400"#]].assert_eq(&problems(text, Format::Toml));
}

#[test]
fn a_missing_matrix_and_name_are_reported_together() {
    expect_test::expect![[r#"
            2 problems
              name: got nothing, expected a sweep name
              matrix: got nothing, expected a [matrix] table with models, hardware and batch_sizes"#]]
    .assert_eq(&problems("", Format::Toml));
}

#[test]
fn syntax_errors_carry_line_and_column() {
    let toml = "name = \"x\"\n[matrix]\nmodels = [\"bert-tiny\"\n";
    expect_test::expect![[r#"
            1 problem
              line 3, column 22: got `models = ["bert-tiny"`, expected a valid sweep spec: unclosed array, expected `]`"#]].assert_eq(&problems(toml, Format::Toml));
    let json = "{\"name\": \"x\",\n \"matrix\": {\"models\": [1]}}";
    expect_test::expect![[r#"
            1 problem
              line 2, column 24: got `"matrix": {"models": [1]}}`, expected a valid sweep spec: invalid type: integer `1`, expected a string"#]].assert_eq(&problems(json, Format::Json));
}

#[test]
fn unknown_keys_are_errors() {
    let text = "name = \"x\"\ncolour = \"red\"\n";
    expect_test::expect![[r#"
        2 problems
          colour: got key `colour`, expected only the keys name, matrix, measure, policy, weights
          matrix: got nothing, expected a [matrix] table with models, hardware and batch_sizes"#]]
    .assert_eq(&problems(text, Format::Toml));
    let text = "name = \"x\"\n[measure]\nwarmup = { iterations = 1, seconds = 2 }\n";
    expect_test::expect![[r#"
            2 problems
              measure.warmup.seconds: got key `seconds`, expected only the keys iterations, min_seconds
              matrix: got nothing, expected a [matrix] table with models, hardware and batch_sizes"#]]
    .assert_eq(&problems(text, Format::Toml));
}

#[test]
fn json_and_toml_give_the_same_spec() {
    let json = r#"{
            "name": "nightly-text",
            "matrix": {
                "models": ["bert-base-uncased", "t5-small", "vit-base-patch16-224"],
                "hardware": ["cpu", "cuda"],
                "fan_out": "each_hardware_class",
                "batch_sizes": [1, 4, 16, 64],
                "sequence_lengths": [128],
                "precisions": ["fp32", "fp16", "bf16", "q8_0", "q4_0"],
                "modes": ["inference", "training"],
                "engines": ["candle"],
                "exclude": [{"models": ["llama-*"], "precisions": ["fp32"], "hardware": ["cpu"]}]
            },
            "measure": {"warmup": {"iterations": 3, "min_seconds": 1.0}, "min_iterations": 20,
                        "min_seconds": 2.0, "max_seconds": 120, "target_relative_ci": 0.02},
            "policy": {"priority": 0, "max_attempts": 3, "lease_seconds": 120}
        }"#;
    assert_eq!(parse_json(json, &Limits::default()).expect("valid"), valid(DESIGN_EXAMPLE));
}

#[test]
fn a_matrix_over_the_limit_is_refused_with_its_size() {
    let limits = Limits { max_cells: 100 };
    let result = parse_toml(DESIGN_EXAMPLE, &limits).expect_err("too large");
    assert_eq!(result.to_string(), "1 problem\n  matrix: got 144 cells, expected at most 100 cells");
    let huge = r#"
            name = "huge"
            [matrix]
            models = ["bert-tiny", "bert-base-uncased", "t5-small"]
            hardware = ["cpu", "cuda", "rocm", "metal", "qnn"]
            batch_sizes = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]
            sequence_lengths = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]
            precisions = ["fp32", "fp16", "bf16"]
            modes = ["inference", "training"]
            engines = ["candle", "torch", "onnxruntime", "llamacpp"]
        "#;
    let limits = Limits { max_cells: 1_000 };
    let result = parse_toml(huge, &limits).expect_err("too large");
    assert_eq!(result.to_string(), "1 problem\n  matrix: got 92160 cells, expected at most 1000 cells");
}

#[test]
fn a_matrix_far_over_the_limit_is_sized_before_excludes() {
    let hundred: Vec<String> = (1..=100).map(|n| n.to_string()).collect();
    let text = format!(
        r#"
            name = "enormous"
            [matrix]
            models = ["bert-tiny", "bert-base-uncased", "t5-small"]
            hardware = ["cpu", "cuda", "rocm", "metal", "qnn"]
            batch_sizes = [{0}]
            sequence_lengths = [{0}]
            exclude = [{{ models = ["t5-*"] }}]
            "#,
        hundred.join(", ")
    );
    let result = parse_toml(&text, &Limits::default()).expect_err("too large");
    assert_eq!(result.to_string(), "1 problem\n  matrix: got 100000 cells, expected at most 10000 cells");
    let limits = Limits { max_cells: 10 };
    let wider = text.replace(
        "exclude",
        "precisions = [\"fp32\", \"fp16\", \"bf16\"]\n\
             modes = [\"inference\", \"training\"]\n\
             engines = [\"candle\", \"torch\", \"onnxruntime\", \"llamacpp\"]\n\
             exclude",
    );
    // 3.6 million combinations: more than counting one by one is worth.
    assert_eq!(
        parse_toml(&wider, &limits).expect_err("too large").to_string(),
        "1 problem\n  matrix: got 3600000 cells before excludes, expected at most 10 cells"
    );
}

#[test]
fn a_matrix_without_cells_is_refused() {
    let text = r#"
            name = "nothing runs"
            [matrix]
            models = ["bert-tiny"]
            hardware = ["cpu"]
            batch_sizes = [1]
            precisions = ["q8_0"]
        "#;
    expect_test::expect![[r#"
            1 problem
              matrix: got 0 cells, expected at least one cell (every combination is excluded or unsupported)"#]]
    .assert_eq(&problems(text, Format::Toml));
}

#[test]
fn the_typed_spec_round_trips_as_a_stored_format() {
    let spec = valid(DESIGN_EXAMPLE);
    let json = serde_json::to_string(&spec).expect("serialises");
    assert_eq!(serde_json::from_str::<SweepSpec>(&json).expect("parses"), spec);
    let tampered = json.replacen("\"name\"", "\"nam\"", 1);
    assert!(serde_json::from_str::<SweepSpec>(&tampered).is_err());
}

#[test]
fn selectors_match_hardware_classes_by_kind_and_name_glob() {
    let h100 = HardwareSelector { kind: HardwareKind::Cuda, min_memory_gib: None, name: Some("*h100*".into()) };
    assert!(h100.matches_class("cuda/NVIDIA H100 80GB HBM3"));
    assert!(!h100.matches_class("cuda/NVIDIA A100-SXM4-40GB"));
    assert!(!h100.matches_class("rocm/NVIDIA H100"));
    let cpu = HardwareSelector::of_kind(HardwareKind::Cpu);
    assert!(cpu.matches_class("cpu/AMD EPYC 7B13"));
    assert!(cpu.matches_class("cpu"));
    assert!(!cpu.matches_class("cuda/NVIDIA H100 80GB HBM3"));
}

#[test]
fn formats_follow_file_extensions() {
    assert_eq!(Format::from_extension("TOML"), Some(Format::Toml));
    assert_eq!(Format::from_extension("json"), Some(Format::Json));
    assert_eq!(Format::from_extension("yaml"), None);
    let engines = ["candle", "torch", "torch-compile", "onnxruntime", "onnxruntime-openvino", "openvino", "llamacpp"];
    assert_eq!(ENGINES, engines);
}

#[test]
fn closest_models_are_suggested() {
    assert_eq!(closest_models("bert-bas")[0], "bert-base-uncased");
    assert_eq!(closest_models("bert-tiyn")[0], "bert-tiny");
    assert_eq!(closest_models("tinyllama")[0], "TinyLlama-1.1B");
    assert_eq!(closest_models("qwen2-0.5")[0], "Qwen2-0.5B");
    assert_eq!(edit_distance("kitten", "sitting"), 3);
}

/// A spec that would take the product of its parts to check (the attack: a large
/// matrix with 36 000 exclude entries took 207 s of CPU to refuse) is refused by its
/// counts alone.
#[test]
fn excludes_and_axes_are_bounded_before_any_walk() {
    let many = |n: usize, item: &str| vec![item; n].join(", ");
    let rules = format!(
        "name = \"x\"\n[matrix]\nmodels = [\"bert-tiny\"]\nhardware = [\"cpu\"]\nbatch_sizes = [1]\nexclude = [{}]\n",
        many(MAX_EXCLUDE_RULES + 1, "{ batch_sizes = [2] }")
    );
    assert_eq!(
        parse_toml(&rules, &Limits::default()).expect_err("too many").to_string(),
        "1 problem\n  matrix.exclude: got 1001 entries, expected at most 1000 entries"
    );
    let batches: Vec<String> = (1..=MAX_AXIS_VALUES + 1).map(|b| b.to_string()).collect();
    let axis = format!(
        "name = \"x\"\n[matrix]\nmodels = [\"bert-tiny\"]\nhardware = [\"cpu\"]\nbatch_sizes = [{}]\n",
        batches.join(", ")
    );
    assert_eq!(
        parse_toml(&axis, &Limits::default()).expect_err("too long").to_string(),
        "1 problem\n  matrix.batch_sizes: got 1001 values, expected at most 1000 values"
    );
    let in_rule = format!(
        "name = \"x\"\n[matrix]\nmodels = [\"bert-tiny\"]\nhardware = [\"cpu\"]\nbatch_sizes = [1]\n\
         exclude = [{{ batch_sizes = [{}] }}]\n",
        batches.join(", ")
    );
    assert_eq!(
        parse_toml(&in_rule, &Limits::default()).expect_err("too long").to_string(),
        "1 problem\n  matrix.exclude[0].batch_sizes: got 1001 values, expected at most 1000 values"
    );
}

#[test]
fn a_matrix_whose_excludes_would_take_too_long_to_count_is_refused_by_arithmetic() {
    let hundred: Vec<String> = (1..=100).map(|n| n.to_string()).collect();
    let rule = format!("{{ batch_sizes = [{}] }}", hundred.join(", "));
    let text = format!(
        "name = \"x\"\n[matrix]\nmodels = [\"bert-tiny\"]\nhardware = [\"cpu\", \"cuda\"]\n\
         batch_sizes = [{0}]\nsequence_lengths = [{0}]\nexclude = [{1}]\n",
        hundred.join(", "),
        vec![rule; 600].join(", ")
    );
    // 20 000 combinations × 60 000 exclude values = 1.2·10⁹ checks.
    assert_eq!(
        parse_toml(&text, &Limits::default()).expect_err("too costly").to_string(),
        "1 problem\n  matrix: got 20000 combinations × 60000 exclude values, \
         expected at most 50000000 checks (fewer axis values or exclude entries)"
    );
}

const HASH: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

#[test]
fn weights_entries_serve_their_model_at_the_precisions_their_format_runs() {
    let spec = valid(&format!(
        r#"
            name = "real"
            [matrix]
            models = ["bert-tiny", "llama-tiny"]
            hardware = ["cpu"]
            batch_sizes = [1]
            precisions = ["fp32", "q8_0"]
            [[weights]]
            model = "BERT-tiny"
            source = "/models/bert-tiny"
            sha256 = "{}"
            [[weights]]
            model = "llama-tiny"
            source = "/models/llama-tiny.Q8_0.GGUF"
            sha256 = "{HASH}"
        "#,
        HASH.to_uppercase()
    ));
    let bert = spec.weights_for("bert-tiny", Precision::Fp32).expect("bert's folder serves fp32");
    assert_eq!((bert.model.as_str(), bert.sha256.as_str()), ("bert-tiny", HASH), "catalog spelling, lowercase hash");
    assert_eq!(bert.precisions, vec![Precision::Fp32, Precision::Fp16, Precision::Bf16]);
    let gguf = spec.weights_for("llama-tiny", Precision::Q8_0).expect("the .GGUF serves q8_0");
    assert_eq!(gguf.precisions, vec![Precision::Q8_0, Precision::Q4_0, Precision::Q4_1]);
    assert!(spec.weights_for("llama-tiny", Precision::Fp32).is_none(), "a .gguf serves quantized precisions only");
    // The stored form reads back the same, and a spec without weights stores no key.
    let stored = serde_json::to_string(&spec).unwrap();
    assert_eq!(serde_json::from_str::<SweepSpec>(&stored).unwrap(), spec);
    let plain = valid("name = \"n\"\n[matrix]\nmodels = [\"bert-tiny\"]\nhardware = [\"cpu\"]\nbatch_sizes = [1]\n");
    assert!(!serde_json::to_string(&plain).unwrap().contains("weights"));
}

#[test]
fn every_bad_weights_entry_is_named() {
    let text = format!(
        r#"
            name = "real"
            [matrix]
            models = ["bert-tiny", "llama-tiny"]
            hardware = ["cpu"]
            batch_sizes = [1]
            [[weights]]
            model = "bert-base-uncased"
            source = "/m/bert"
            sha256 = "{HASH}"
            [[weights]]
            model = "bert-tiny"
            source = ""
            sha256 = "abc"
            [[weights]]
            model = "llama-tiny"
            source = "/m/llama.gguf"
            sha256 = "{HASH}"
            precisions = ["fp16", "q9"]
            [[weights]]
            model = "llama-tiny"
            sha256 = "{HASH}"
            [[weights]]
            model = "bert-tiny"
            source = "/m/a"
            sha256 = "{HASH}"
            [[weights]]
            model = "bert-tiny"
            source = "/m/b"
            sha256 = "{HASH}"
            precisions = ["bf16"]
        "#
    );
    let p = problems(&text, Format::Toml);
    for wanted in [
        "weights[0].model: got `bert-base-uncased`, expected one of matrix.models (bert-tiny, llama-tiny)",
        "weights[1].source: got \"\"",
        "weights[1].sha256: got `abc`, expected 64 hex digits",
        "weights[2].precisions[0]: got `fp16`, expected a quantized precision (the source is a .gguf file)",
        "weights[2].precisions[1]: got `q9`",
        "weights[3].source: got nothing",
        "weights[5].precisions: got `bf16` of bert-tiny again",
    ] {
        assert!(p.contains(wanted), "missing {wanted:?} in:\n{p}");
    }
    assert!(!p.contains("weights[4]"), "entry 4 is valid:\n{p}");
    // An unknown key in an entry is a shape error with its line.
    let typo = "name = \"n\"\n[matrix]\nmodels = [\"bert-tiny\"]\nhardware = [\"cpu\"]\nbatch_sizes = [1]\n\
                [[weights]]\nmodel = \"bert-tiny\"\nsha = \"x\"\n";
    let p = problems(typo, Format::Toml);
    assert!(p.contains("line 8") && p.contains("sha"), "{p}");
}
