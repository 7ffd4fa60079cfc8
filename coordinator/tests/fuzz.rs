//! Fuzz targets for everything the coordinator decodes from outside: sweep specs (TOML
//! and JSON), result records, fingerprints, the gRPC request messages, legacy result
//! files and the SQL gate of `accelbench query`. Each must answer every input with a
//! value or an error: no panic, no hang (see `e2e::fuzz`).
//!
//! Under `cargo test` each target runs a few hundred seeded cases; `ops/fuzz/run.sh`
//! runs each for a time budget. A finding becomes a unit test next to the code it broke.

use std::collections::BTreeMap;

use coordinator::query::{QueryEngine, QueryLimits};
use coordinator::warehouse::file::Table;
use coordinator::warehouse::sync::LocalFiles;
use e2e::fuzz::{self, Budget, Report};
use prost::Message;

const SEED: u64 = 0xf022;

fn check(report: Report) {
    println!("{report}");
    assert!(report.panics.is_empty() && report.hangs.is_empty(), "{report}");
}

fn text(input: &[u8]) -> String {
    String::from_utf8_lossy(input).into_owned()
}

#[test]
fn sweep_specs() {
    let corpus = fuzz::corpus(&["examples", "ops/fuzz/corpus/spec"]);
    let limits = shared::spec::Limits::default();
    check(fuzz::run("sweep_spec", &corpus, Budget::from_env(2_000), SEED, |input| {
        let s = text(input);
        let _ = shared::spec::parse(&s, shared::spec::Format::Toml, &limits);
        let _ = shared::spec::parse(&s, shared::spec::Format::Json, &limits);
    }));
}

#[test]
fn result_records() {
    let corpus = fuzz::corpus(&["agent/tests/fixtures/result-ok.json"]);
    check(fuzz::run("result_record", &corpus, Budget::from_env(3_000), SEED, |input| {
        if let Ok(record) = proto::decode_json::<shared::result::ResultRecord>("result_json", &text(input)) {
            let _ = record.validate();
            let _ = record.check_recent(1_765_000_000_000, 30 * 24 * 3_600_000, 3_600_000);
        }
    }));
}

#[test]
fn fingerprints() {
    let corpus = fuzz::corpus(&["agent/tests/fixtures/h100x8-fingerprint.json"]);
    check(fuzz::run("fingerprint", &corpus, Budget::from_env(2_000), SEED, |input| {
        if let Ok(fp) = proto::decode_json::<shared::fingerprint::Fingerprint>("fingerprint_json", &text(input)) {
            if fp.check_bounds().is_ok() {
                let _ = coordinator::state::device_groups(&fp);
                let _ = fp.hash();
            }
        }
    }));
}

/// Every request message of the three services, from the same bytes.
#[test]
fn request_messages() {
    use proto::v1::*;
    let register = RegisterRequest {
        agent_id: "a1".into(),
        fingerprint_json: "{}".into(),
        labels: [("rack".to_string(), "b3".to_string())].into(),
        ..Default::default()
    };
    let submit = SubmitSweepRequest { spec: "name = \"x\"".into(), format: SpecFormat::Toml as i32 };
    let lease = LeaseCellsRequest { agent_id: "a1".into(), max_cells: 4, held: Vec::new() };
    let corpus = vec![register.encode_to_vec(), submit.encode_to_vec(), lease.encode_to_vec()];
    check(fuzz::run("request_messages", &corpus, Budget::from_env(5_000), SEED, |input| {
        let _ = RegisterRequest::decode(input);
        let _ = HeartbeatRequest::decode(input);
        let _ = LeaseCellsRequest::decode(input);
        let _ = ReportResultsRequest::decode(input);
        let _ = SubmitSweepRequest::decode(input);
        let _ = GetSweepRequest::decode(input);
        let _ = CancelSweepRequest::decode(input);
        let _ = RemoveAgentRequest::decode(input);
        if let Ok(r) = ReportResultsRequest::decode(input) {
            if let Some(lease) = r.lease {
                let _ = lease.to_domain("lease");
            }
        }
    }));
}

#[test]
fn legacy_result_files() {
    let corpus = fuzz::corpus(&["coordinator/tests/fixtures/legacy-json"]);
    check(fuzz::run("legacy_import", &corpus, Budget::from_env(1_000), SEED, |input| {
        let _ = coordinator::import::legacy::parse(input, "fuzz.json");
    }));
}

/// The SQL gate: whatever the statement, it is refused or runs read-only on an empty
/// warehouse, within its limits; never a panic.
#[test]
fn the_sql_gate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let files = LocalFiles {
        root: dir.path().to_path_buf(),
        files: Table::ALL.iter().map(|t| (*t, Vec::new())).collect::<BTreeMap<_, _>>(),
    };
    let limits = QueryLimits { timeout: std::time::Duration::from_secs(2), max_rows: 1_000, ..QueryLimits::default() };
    let engine = QueryEngine::open_with(&files, limits).expect("engine");
    let corpus = fuzz::corpus(&["ops/fuzz/corpus/sql"]);
    check(fuzz::run("sql_gate", &corpus, Budget::from_env(300), SEED, |input| {
        let _ = engine.query(&text(input));
    }));
    let written: Vec<_> = std::fs::read_dir(dir.path()).expect("dir").collect();
    assert!(written.is_empty(), "the fuzzed SQL wrote into the warehouse folder: {written:?}");
}
