//! Unit tests of the legacy JSON import, on the three layouts' fixture files.

use super::*;

const SINGLE: &[u8] = include_bytes!("../../../tests/fixtures/legacy-json/benchmark_bert_cpu_20250305_195714.json");
const BATCH: &[u8] = include_bytes!("../../../tests/fixtures/legacy-json/batch_benchmarks_cpu_20250306_174805.json");
const PERFORMANCE: &[u8] =
    include_bytes!("../../../tests/fixtures/legacy-json/performance_embedding_benchmark_results.json");

fn parse_ok(bytes: &[u8], path: &str) -> (Vec<ResultRecord>, Vec<Skipped>) {
    parse(bytes, path).expect("parses")
}

fn find<'a>(records: &'a [ResultRecord], model: &str, batch: u32, seq_len: u32) -> &'a ResultRecord {
    records
        .iter()
        .find(|r| r.coordinates.model == model && r.coordinates.batch == batch && r.coordinates.seq_len == seq_len)
        .expect("row present")
}

#[test]
fn single_layout_gives_one_reported_average_per_batch() {
    let (records, skipped) = parse_ok(SINGLE, "benchmark_bert_cpu_20250305_195714.json");
    assert_eq!((records.len(), skipped.len()), (2, 0));
    let b4 = find(&records, "bert-base-uncased", 4, 0);
    let latency = b4.latency_ns.expect("summary");
    assert_eq!((latency.n, latency.mean), (1, 50e6));
    assert!(b4.samples_ns.is_empty(), "no invented samples");
    assert_eq!(b4.throughput_items_per_s, Some(200.0));
    assert_eq!(b4.memory.peak_host_bytes, Some(160 * 1_048_576));
    assert_eq!(b4.coordinates.hardware_class, "cpu/unknown");
    assert_eq!(b4.coordinates.family, Family::Bert);
    assert_eq!(b4.status, Status::Ok);
    // 2025-03-05T19:57:13.297083, read as UTC.
    assert_eq!(b4.provenance.started_at_ms, 1_741_204_633_297);
}

#[test]
fn batch_layout_converts_raw_milliseconds_to_nanoseconds() {
    let (records, skipped) = parse_ok(BATCH, "batch_benchmarks_cpu_20250306_174805.json");
    assert_eq!((records.len(), skipped.len()), (2, 0));
    let t5 = find(&records, "google/t5-efficient-tiny", 1, 0);
    assert_eq!(t5.samples_ns.len(), 5);
    assert!((t5.samples_ns[0] - 45_239_448.547_363_28).abs() < 1.0, "{}", t5.samples_ns[0]);
    let mean = t5.latency_ns.expect("summary").mean;
    assert!((mean - 24.797_296_524_047_85e6).abs() < 1.0, "mean {mean} agrees with the file's average");
    assert_eq!(t5.coordinates.family, Family::T5);
    assert_eq!(t5.memory.peak_host_bytes, Some(561_586_176));
    assert_eq!(find(&records, "prajjwal1/bert-tiny", 1, 0).coordinates.family, Family::Bert);
}

#[test]
fn performance_layout_converts_raw_seconds_and_reads_the_cpu_model() {
    let (records, skipped) = parse_ok(PERFORMANCE, "performance_embedding_benchmark_results.json");
    assert_eq!((records.len(), skipped.len()), (27, 0), "3 models × 3 batches × 3 sequence lengths");
    let row = find(&records, "bert-base-uncased", 1, 32);
    assert_eq!(row.samples_ns.len(), 20);
    assert!((row.samples_ns[0] - 0.635_601_758_956_909_2e9).abs() < 1.0, "{}", row.samples_ns[0]);
    let mean = row.latency_ns.expect("summary").mean;
    assert!((mean - 0.409_289_431_571_960_46e9).abs() < 1.0, "{mean}");
    assert_eq!(row.coordinates.hardware_class, "cpu/Intel(R) Xeon(R) CPU E3-1535M v6 @ 3.10GHz");
    assert_eq!(row.provenance.finished_at_ms - row.provenance.started_at_ms, 8_186);
}

#[test]
fn imported_rows_name_the_file_and_reimport_gives_the_same_keys() {
    let (first, _) = parse_ok(BATCH, "a.json");
    let (second, _) = parse_ok(BATCH, "b.json");
    let sha = hex::encode(Sha256::digest(BATCH));
    for (a, b) in first.iter().zip(&second) {
        assert_eq!(a.provenance.weights_source, format!("imported:legacy-json:{sha}"));
        assert_eq!((&a.cell_key, a.attempt, &a.sweep_id), (&b.cell_key, b.attempt, &b.sweep_id));
        assert_eq!(a.provenance.agent_id, None);
    }
}

#[test]
fn messy_rows_are_read_or_skipped_with_a_reason() {
    let messy = br#"{
        "model_path": "bert-base-uncased", "hardware": "CPU", "timestamp": "20250305_195321",
        "batch_sizes": {
            "1": {"latency_ms": "12.5", "throughput": "80", "success": "true", "extra": [1]},
            "2": {"throughput": 3, "success": true},
            "x": {"latency_ms": 5, "success": true},
            "8": {"success": false, "error": "CUDA out of memory"},
            "16": "broken"
        }
    }"#;
    let (records, mut skipped) = parse_ok(messy, "messy.json");
    assert_eq!(records.len(), 2);
    let b1 = find(&records, "bert-base-uncased", 1, 0);
    assert_eq!(b1.latency_ns.expect("summary").mean, 12.5e6);
    assert_eq!(b1.provenance.started_at_ms, 1_741_204_401_000);
    let b8 = find(&records, "bert-base-uncased", 8, 0);
    assert_eq!((b8.status, b8.error.as_deref()), (Status::Failed, Some("CUDA out of memory")));
    skipped.sort_by(|a, b| a.location.cmp(&b.location));
    let reasons: Vec<(&str, &str)> = skipped.iter().map(|s| (s.location.as_str(), s.reason.as_str())).collect();
    assert_eq!(
        reasons,
        vec![
            ("batch_sizes.16", "not an object"),
            ("batch_sizes.2", "no latency"),
            ("batch_sizes.x", "no batch size (or batch size 0)"),
        ]
    );
}

#[test]
fn unknown_models_and_hardware_are_skipped_not_guessed() {
    let text = br#"{"benchmarks": {"vision": {"resnet50": {"cpu": {"benchmark_results": {
        "batch_1_seq_1": {"status": "completed", "latencies": [0.1]}}}},
        "bert-base-uncased": {"openvino": {"benchmark_results": {
        "batch_1_seq_8": {"status": "completed", "latencies": [0.1]}}}}}},
        "timestamp": "20250305_195321"}"#;
    let (records, skipped) = parse_ok(text, "p.json");
    assert!(records.is_empty(), "{records:?}");
    assert_eq!(skipped.len(), 2);
    assert!(skipped.iter().any(|s| s.reason.contains("resnet50")), "{skipped:?}");
    assert!(skipped.iter().any(|s| s.reason.contains("openvino")), "{skipped:?}");
}

#[test]
fn files_of_no_known_layout_are_errors_naming_the_path() {
    let not_json = parse(b"{ nope", "dir/bad.json").expect_err("error");
    assert!(matches!(not_json, ImportError::NotJson { .. }));
    assert!(not_json.to_string().starts_with("dir/bad.json: "), "{not_json}");
    let other = parse(br#"{"hello": 1}"#, "dir/other.json").expect_err("error");
    assert!(matches!(other, ImportError::UnknownLayout { .. }));
    assert!(other.to_string().contains("dir/other.json"), "{other}");
    assert!(parse(b"[1, 2]", "list.json").is_err());
}

#[test]
fn families_come_from_whole_words_of_the_model_name() {
    let cases = [
        ("google/t5-efficient-tiny", Some(Family::T5)),
        ("prajjwal1/bert-tiny", Some(Family::Bert)),
        ("distilbert-base-uncased", Some(Family::Bert)),
        ("roberta-base", Some(Family::Bert)),
        ("google/vit-base-patch16-224", Some(Family::Vit)),
        ("openai/whisper-tiny", Some(Family::Whisper)),
        ("resnet50", None),
    ];
    for (model, family) in cases {
        assert_eq!(family_of(model), family, "{model}");
    }
}

#[test]
fn times_come_in_both_legacy_formats() {
    let iso = parse_time(&Value::String("2025-03-05T19:53:21.745748".into()));
    let compact = parse_time(&Value::String("20250305_195321".into()));
    assert_eq!(iso, Some(1_741_204_401_745));
    assert_eq!(compact, Some(1_741_204_401_000));
    assert_eq!(time_in_file_name("x/benchmark_bert_cpu_20250305_195714.json"), Some(1_741_204_634_000));
    assert_eq!(parse_shape("batch_4_seq_128"), (Some(4), Some(128)));
}
