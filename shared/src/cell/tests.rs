//! Tests of cells: expansion, fan-out, excludes, keys and the stored format.

use super::*;
use crate::spec::{self, Engine, HardwareKind, HardwareSelector, Limits, Matrix, SweepSpec};
use proptest::prelude::*;
use std::collections::BTreeSet;

fn spec(text: &str) -> SweepSpec {
    spec::parse_toml(text, &Limits::default()).expect("a valid spec")
}

fn classes(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// One line per cell, the way a person reads them.
fn render(cells: &[Cell]) -> String {
    let lines: Vec<String> = cells
        .iter()
        .map(|c| {
            let class = c.hardware_class.as_deref().unwrap_or("-");
            format!(
                "{} {} {} b{} s{} {} {} {}",
                c.model, c.hardware, class, c.batch, c.seq_len, c.precision, c.mode, c.engine
            )
        })
        .collect();
    lines.join("\n")
}

const MIXED: &str = r#"
        name = "mixed"
        [matrix]
        models = ["TinyLlama-1.1B", "bert-tiny", "vit-tiny"]
        hardware = ["cpu", { kind = "cuda", name = "*H100*" }]
        batch_sizes = [4, 1]
        sequence_lengths = [512, 128]
        precisions = ["q4_0", "fp32"]
        modes = ["training", "inference"]
        exclude = [
            { models = ["tinyllama*"], hardware = ["cpu"], modes = ["training"] },
            { batch_sizes = [4], sequence_lengths = [512] },
        ]
    "#;

#[test]
fn expansion_applies_excludes_skips_and_fixed_lengths() {
    let s = spec(MIXED);
    let cells = expand(&s, &[]);
    assert_eq!(cells.len(), count(&s, &[]));
    expect_test::expect![[r#"
            TinyLlama-1.1B cpu - b1 s128 fp32 inference candle
            TinyLlama-1.1B cpu - b1 s128 q4_0 inference candle
            TinyLlama-1.1B cpu - b1 s512 fp32 inference candle
            TinyLlama-1.1B cpu - b1 s512 q4_0 inference candle
            TinyLlama-1.1B cpu - b4 s128 fp32 inference candle
            TinyLlama-1.1B cpu - b4 s128 q4_0 inference candle
            TinyLlama-1.1B cuda[name=*H100*] - b1 s128 fp32 inference candle
            TinyLlama-1.1B cuda[name=*H100*] - b1 s128 fp32 training candle
            TinyLlama-1.1B cuda[name=*H100*] - b1 s128 q4_0 inference candle
            TinyLlama-1.1B cuda[name=*H100*] - b1 s512 fp32 inference candle
            TinyLlama-1.1B cuda[name=*H100*] - b1 s512 fp32 training candle
            TinyLlama-1.1B cuda[name=*H100*] - b1 s512 q4_0 inference candle
            TinyLlama-1.1B cuda[name=*H100*] - b4 s128 fp32 inference candle
            TinyLlama-1.1B cuda[name=*H100*] - b4 s128 fp32 training candle
            TinyLlama-1.1B cuda[name=*H100*] - b4 s128 q4_0 inference candle
            bert-tiny cpu - b1 s128 fp32 inference candle
            bert-tiny cpu - b1 s128 fp32 training candle
            bert-tiny cpu - b1 s512 fp32 inference candle
            bert-tiny cpu - b1 s512 fp32 training candle
            bert-tiny cpu - b4 s128 fp32 inference candle
            bert-tiny cpu - b4 s128 fp32 training candle
            bert-tiny cuda[name=*H100*] - b1 s128 fp32 inference candle
            bert-tiny cuda[name=*H100*] - b1 s128 fp32 training candle
            bert-tiny cuda[name=*H100*] - b1 s512 fp32 inference candle
            bert-tiny cuda[name=*H100*] - b1 s512 fp32 training candle
            bert-tiny cuda[name=*H100*] - b4 s128 fp32 inference candle
            bert-tiny cuda[name=*H100*] - b4 s128 fp32 training candle
            vit-tiny cpu - b1 s65 fp32 inference candle
            vit-tiny cpu - b1 s65 fp32 training candle
            vit-tiny cpu - b4 s65 fp32 inference candle
            vit-tiny cpu - b4 s65 fp32 training candle
            vit-tiny cuda[name=*H100*] - b1 s65 fp32 inference candle
            vit-tiny cuda[name=*H100*] - b1 s65 fp32 training candle
            vit-tiny cuda[name=*H100*] - b4 s65 fp32 inference candle
            vit-tiny cuda[name=*H100*] - b4 s65 fp32 training candle"#]]
    .assert_eq(&render(&cells));
}

#[test]
fn each_hardware_class_fans_out_to_matching_classes() {
    let s = spec(
        r#"
            name = "fan"
            [matrix]
            models = ["bert-tiny"]
            hardware = ["cpu", { kind = "cuda", name = "*h100*" }, "rocm"]
            batch_sizes = [1]
            "#,
    );
    let known = classes(&[
        "cuda/NVIDIA H100 80GB HBM3",
        "cpu/AMD EPYC 7B13",
        "cuda/NVIDIA A100-SXM4-40GB",
        "cpu/Intel Xeon Platinum 8481C",
        "cpu/AMD EPYC 7B13",
    ]);
    let cells = expand(&s, &known);
    assert_eq!(cells.len(), count(&s, &known));
    expect_test::expect![[r#"
            bert-tiny cpu cpu/AMD EPYC 7B13 b1 s128 fp32 inference candle
            bert-tiny cpu cpu/Intel Xeon Platinum 8481C b1 s128 fp32 inference candle
            bert-tiny cuda[name=*h100*] cuda/NVIDIA H100 80GB HBM3 b1 s128 fp32 inference candle
            bert-tiny rocm - b1 s128 fp32 inference candle"#]]
    .assert_eq(&render(&cells));
}

#[test]
fn fan_out_any_and_unknown_classes_leave_cells_unresolved() {
    let text = r#"
            name = "any"
            [matrix]
            models = ["bert-tiny"]
            hardware = ["cpu", "cuda"]
            fan_out = "any"
            batch_sizes = [1]
        "#;
    let known = classes(&["cpu/AMD EPYC 7B13", "cpu/Apple M2"]);
    let any = expand(&spec(text), &known);
    assert_eq!(any.len(), 2);
    assert!(any.iter().all(|c| c.hardware_class.is_none()));
    let each = spec(&text.replace("\"any\"", "\"each_agent\""));
    assert_eq!(expand(&each, &known).len(), 3);
    assert_eq!(expand(&each, &[]).len(), 2);
}

#[test]
fn each_agent_pins_one_cell_per_agent_and_class() {
    let text = r#"
            name = "per agent"
            [matrix]
            models = ["bert-tiny"]
            hardware = ["cpu", "cuda"]
            fan_out = "each_agent"
            batch_sizes = [1]
        "#;
    let agent =
        |id: &str, classes: &[&str]| AgentClasses { agent_id: id.into(), classes: super::tests::classes(classes) };
    let agents =
        [agent("a", &["cpu/AMD EPYC 7B13"]), agent("b", &["cpu/AMD EPYC 7B13"]), agent("c", &["cpu/Apple M2"])];
    let cells = expand_for_agents(&spec(text), &agents);
    let pinned: Vec<(Option<&str>, Option<&str>)> =
        cells.iter().map(|c| (c.hardware_class.as_deref(), c.agent_id.as_deref())).collect();
    assert_eq!(
        pinned,
        [
            (Some("cpu/AMD EPYC 7B13"), Some("a")),
            (Some("cpu/AMD EPYC 7B13"), Some("b")),
            (Some("cpu/Apple M2"), Some("c")),
            (None, None), // no cuda agent: one unresolved cell waits for one
        ]
    );
    let keys: std::collections::BTreeSet<CellKey> = cells.iter().map(|c| c.key("per agent")).collect();
    assert_eq!(keys.len(), 4, "pinned cells have keys of their own");
    // Other fan-outs ignore who the agents are: one cell per class.
    let per_class = expand_for_agents(&spec(&text.replace("each_agent", "each_hardware_class")), &agents);
    assert_eq!(per_class.len(), 3);
    assert!(per_class.iter().all(|c| c.agent_id.is_none()));
    // Counting gives the same numbers without building the cells.
    assert_eq!(count_for_agents(&spec(text), &agents), cells.len());
    let per_class_spec = spec(&text.replace("each_agent", "each_hardware_class"));
    assert_eq!(count_for_agents(&per_class_spec, &agents), per_class.len());
    // A fleet that declares a thousand GPU classes: counted, never allocated.
    let fake: Vec<String> = (0..1000).map(|i| format!("cuda/fake GPU {i}")).collect();
    let many = [AgentClasses { agent_id: "x".into(), classes: fake }];
    // (plus one unresolved cpu cell: no agent has a cpu class)
    assert_eq!(count_for_agents(&per_class_spec, &many), 1001);
}

#[test]
fn hardware_excludes_match_kinds_and_classes() {
    let s = spec(
        r#"
            name = "no a100"
            [matrix]
            models = ["bert-tiny"]
            hardware = ["cuda", "cpu"]
            batch_sizes = [1]
            exclude = [{ hardware = ["cuda/*a100*"] }, { hardware = ["c?u"], batch_sizes = [1] }]
            "#,
    );
    let known = classes(&["cuda/NVIDIA H100 80GB HBM3", "cuda/NVIDIA A100-SXM4-40GB"]);
    expect_test::expect!["bert-tiny cuda cuda/NVIDIA H100 80GB HBM3 b1 s128 fp32 inference candle"]
        .assert_eq(&render(&expand(&s, &known)));
}

#[test]
fn quantised_precisions_are_inference_only_and_for_decoders() {
    assert!(is_runnable("llama-tiny", Precision::Q8_0, Mode::Inference));
    assert!(!is_runnable("llama-tiny", Precision::Q8_0, Mode::Training));
    assert!(!is_runnable("bert-tiny", Precision::Q4_0, Mode::Inference));
    assert!(is_runnable("bert-tiny", Precision::Bf16, Mode::Training));
    assert!(is_runnable("not-in-the-catalog", Precision::Q4_0, Mode::Inference));
}

fn example_cell() -> Cell {
    Cell {
        model: "bert-base-uncased".into(),
        hardware: HardwareSelector {
            kind: HardwareKind::Cuda,
            min_memory_gib: Some(24.0),
            name: Some("*H100*".into()),
        },
        hardware_class: Some("cuda/NVIDIA H100 80GB HBM3".into()),
        agent_id: None,
        batch: 16,
        seq_len: 128,
        precision: Precision::Bf16,
        mode: Mode::Inference,
        engine: Engine::Candle,
    }
}

#[test]
fn cell_key_is_pinned() {
    // If this changes, every stored result loses its link to its cell: bump
    // CELL_KEY_VERSION instead of editing the encoding.
    let cell = example_cell();
    expect_test::expect![[r#"
            version=21:accelbench-cell-key/1
            sweep=12:nightly-text
            model=17:bert-base-uncased
            hardware.kind=4:cuda
            hardware.min_memory_gib=2:24
            hardware.name=6:*H100*
            hardware_class=26:cuda/NVIDIA H100 80GB HBM3
            batch=2:16
            seq_len=3:128
            precision=4:bf16
            mode=9:inference
            engine=6:candle
        "#]]
    .assert_eq(&cell.canonical_encoding("nightly-text"));
    expect_test::expect!["4184c865f5bf8acca76e4c4a9dcb90b4ac63a067531dda90bbe682197f74c810"]
        .assert_eq(cell.key("nightly-text").as_str());
}

#[test]
fn every_coordinate_and_the_sweep_name_change_the_key() {
    let base = example_cell();
    let key = base.key("nightly");
    assert_ne!(base.key("nightly-2"), key);
    let mut variants = Vec::new();
    let mut c = base.clone();
    c.hardware_class = None;
    variants.push(c);
    let mut c = base.clone();
    c.hardware.min_memory_gib = None;
    variants.push(c);
    let mut c = base.clone();
    c.hardware.name = None;
    variants.push(c);
    let mut c = base.clone();
    c.batch = 17;
    variants.push(c);
    let mut c = base.clone();
    c.seq_len = 129;
    variants.push(c);
    let mut c = base.clone();
    c.precision = Precision::Fp16;
    variants.push(c);
    let mut c = base.clone();
    c.mode = Mode::Training;
    variants.push(c);
    let mut c = base.clone();
    c.engine = Engine::Torch;
    variants.push(c);
    let mut c = base.clone();
    c.model = "bert-tiny".into();
    variants.push(c);
    let keys: BTreeSet<CellKey> = variants.iter().map(|c| c.key("nightly")).collect();
    assert_eq!(keys.len(), variants.len());
    assert!(!keys.contains(&key));
}

#[test]
fn cell_keys_parse_only_as_64_lowercase_hex_digits() {
    let key = example_cell().key("x");
    let json = serde_json::to_string(&key).expect("serialises");
    assert_eq!(json, format!("\"{key}\""));
    assert_eq!(serde_json::from_str::<CellKey>(&json).expect("parses"), key);
    assert!(serde_json::from_str::<CellKey>("\"abc\"").is_err());
    assert!(key.as_str().to_uppercase().parse::<CellKey>().is_err());
    assert_eq!(key.as_str().parse::<CellKey>(), Ok(key));
}

#[test]
fn cells_round_trip_as_a_stored_format() {
    let cell = example_cell();
    let json = serde_json::to_string(&cell).expect("serialises");
    assert_eq!(serde_json::from_str::<Cell>(&json).expect("parses"), cell);
    assert_eq!(cell.model_spec().map(|m| m.name), Some("bert-base-uncased"));
}

/// MIXED with every axis value list (and the exclude list) in a random order.
fn shuffled_mixed() -> impl Strategy<Value = SweepSpec> {
    let s = spec(MIXED);
    let m = s.matrix.clone();
    (
        Just(m.models).prop_shuffle(),
        Just(m.hardware).prop_shuffle(),
        Just(m.batch_sizes).prop_shuffle(),
        Just(m.sequence_lengths).prop_shuffle(),
        Just(m.precisions).prop_shuffle(),
        Just(m.modes).prop_shuffle(),
        Just(m.exclude).prop_shuffle(),
    )
        .prop_map(move |(models, hardware, batch_sizes, sequence_lengths, precisions, modes, exclude)| {
            let mut shuffled = s.clone();
            shuffled.matrix = Matrix {
                models,
                hardware,
                batch_sizes,
                sequence_lengths,
                precisions,
                modes,
                exclude,
                ..s.matrix.clone()
            };
            shuffled
        })
}

const KNOWN: &[&str] = &["cpu/AMD EPYC 7B13", "cuda/NVIDIA H100 80GB HBM3", "cuda/NVIDIA H100 PCIe"];

proptest! {
    #[test]
    fn axis_order_changes_neither_cells_nor_keys(
        shuffled in shuffled_mixed(),
        known in Just(classes(KNOWN)).prop_shuffle(),
    ) {
        let original = spec(MIXED);
        let expected = expand(&original, &classes(KNOWN));
        let got = expand(&shuffled, &known);
        prop_assert_eq!(&got, &expected);
        prop_assert_eq!(count(&shuffled, &known), expected.len());
        let keys: Vec<CellKey> = got.iter().map(|c| c.key(&shuffled.name)).collect();
        let expected_keys: Vec<CellKey> =
            expected.iter().map(|c| c.key(&original.name)).collect();
        prop_assert_eq!(keys, expected_keys);
    }
}
