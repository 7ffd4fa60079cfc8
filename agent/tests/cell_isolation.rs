//! A cell's child process can crash, be killed for memory, hang or answer garbage; the
//! parent must turn each into a result with the right status and never die with it.
//! The children here are real processes: small shell scripts standing in for
//! `accelbench-agent exec-cell`, plus one real `exec-cell` run end to end.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use agent::cell::runner::{run_cell, RunnerConfig};
use agent::cell::CellRequest;
use agent::engine::weights::Weights;
use shared::catalog::{Family, Mode, Precision};
use shared::result::{Coordinates, Status};
use shared::spec::MeasurePolicy;

fn request(model: &str, family: Family) -> CellRequest {
    CellRequest {
        sweep_id: None,
        cell_key: "k".repeat(64),
        attempt: 1,
        agent_id: None,
        coordinates: Coordinates {
            model: model.into(),
            family,
            hardware_class: "cpu/test".into(),
            batch: 1,
            seq_len: 16,
            precision: Precision::Fp32,
            mode: Mode::Inference,
            engine: "candle".into(),
        },
        measure: MeasurePolicy {
            warmup_iterations: 1,
            warmup_min_seconds: 0.0,
            min_iterations: 3,
            min_seconds: 0.0,
            max_seconds: 1.0,
            target_relative_ci: 0.5,
        },
        weights: Weights::Random { seed: 1 },
        device: "cpu".into(),
        fingerprint_hash: "test".into(),
        runner: None,
    }
}

/// Writes an executable script. The executable itself is written by a `cp` child, never
/// through a file descriptor of this process: a test thread that forks while we hold one
/// would hand it to its child, and exec of the script would then fail with "Text file
/// busy" (ETXTBSY) until that child execs.
fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    let source = dir.join(format!("{name}.txt"));
    std::fs::write(&source, format!("#!/bin/sh\n{body}\n")).expect("write script");
    let copied = std::process::Command::new("cp").arg(&source).arg(&p).status().expect("cp runs");
    assert!(copied.success(), "cp {} {}", source.display(), p.display());
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    p
}

fn run_fake(body: &str, timeout: Duration) -> shared::result::ResultRecord {
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = script(dir.path(), "child.sh", body);
    run_cell(&RunnerConfig { exe, timeout, trace: None }, &request("bert-tiny", Family::Bert), |_| {})
        .expect("runner survives")
}

#[test]
fn a_segfaulting_child_is_crashed_with_its_stderr() {
    let r = run_fake("cat >/dev/null; echo 'about to fail' >&2; kill -SEGV $$", Duration::from_secs(20));
    assert_eq!(r.status, Status::Crashed);
    assert_eq!(r.error.as_deref(), Some("killed by signal 11"));
    assert!(r.stderr_tail.as_deref().unwrap_or("").contains("about to fail"));
    assert!(r.memory.peak_host_bytes.is_some_and(|b| b > 0));
}

#[test]
fn a_sigkilled_child_is_oom() {
    let r = run_fake("cat >/dev/null; kill -KILL $$", Duration::from_secs(20));
    assert_eq!(r.status, Status::Oom);
    assert!(r.error.as_deref().unwrap_or("").contains("SIGKILL"), "{:?}", r.error);
}

#[test]
fn an_allocation_failure_is_oom() {
    let r = run_fake(
        "cat >/dev/null; echo 'memory allocation of 1234 bytes failed' >&2; kill -ABRT $$",
        Duration::from_secs(20),
    );
    assert_eq!(r.status, Status::Oom);
}

#[test]
fn a_hanging_child_times_out_and_is_killed() {
    let start = std::time::Instant::now();
    let r = run_fake("cat >/dev/null; exec sleep 600", Duration::from_millis(500));
    assert_eq!(r.status, Status::Timeout);
    assert!(start.elapsed() < Duration::from_secs(30), "the parent waited for the hang");
}

#[test]
fn garbage_output_and_a_clean_exit_is_crashed() {
    let r =
        run_fake("cat >/dev/null; echo 'not json'; echo '{\"type\":\"nonsense\"}'; exit 0", Duration::from_secs(20));
    assert_eq!(r.status, Status::Crashed);
    assert!(r.error.as_deref().unwrap_or("").contains("without a result"), "{:?}", r.error);
}

#[test]
fn a_missing_executable_is_an_error_not_a_panic() {
    let cfg = RunnerConfig {
        exe: PathBuf::from("/nonexistent/accelbench-agent"),
        timeout: Duration::from_secs(1),
        trace: None,
    };
    let err = run_cell(&cfg, &request("bert-tiny", Family::Bert), |_| {}).expect_err("cannot start");
    assert!(format!("{err:#}").contains("/nonexistent/accelbench-agent"));
}

#[test]
fn the_real_exec_cell_measures_and_refuses_honestly() {
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_accelbench-agent"));
    let cfg = RunnerConfig { exe, timeout: Duration::from_secs(120), trace: None };
    let mut events = 0;
    let ok = run_cell(&cfg, &request("bert-tiny", Family::Bert), |_| events += 1).expect("runs");
    assert_eq!(ok.status, Status::Ok, "{:?}", ok.error);
    assert_eq!(ok.error, None);
    assert!(ok.samples_ns.len() >= 3);
    assert!(ok.output_check.as_ref().is_some_and(|c| c.all_finite && c.n_values == 16 * 128));
    assert_eq!(ok.provenance.weights_source, "random-init:seed=1");
    assert_eq!(ok.provenance.device.as_deref(), Some("cpu"), "the device it opened");
    assert!(events >= 2, "loading and result events at least");
    ok.validate().expect("a valid record");

    let mut q = request("bert-tiny", Family::Bert);
    q.coordinates.precision = Precision::Q4_0;
    let unsupported = run_cell(&cfg, &q, |_| {}).expect("runs");
    assert_eq!(unsupported.status, Status::Unsupported);
    assert!(unsupported.error.as_deref().unwrap_or("").contains("no q4_0"), "{:?}", unsupported.error);
}

#[test]
fn a_cancelled_cell_is_killed_promptly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = script(dir.path(), "child.sh", "cat >/dev/null; exec sleep 600");
    let cancel = std::sync::atomic::AtomicBool::new(false);
    let start = std::time::Instant::now();
    let r = std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(Duration::from_millis(200));
            cancel.store(true, std::sync::atomic::Ordering::Relaxed);
        });
        agent::cell::runner::run_cell_cancellable(
            &RunnerConfig { exe, timeout: Duration::from_secs(600), trace: None },
            &request("bert-tiny", Family::Bert),
            &cancel,
            |_| {},
        )
        .expect("runner survives")
    });
    assert!(matches!(r, agent::cell::runner::Ran::Withdrawn), "{r:?}");
    assert!(start.elapsed() < Duration::from_secs(30));
}

/// An 8-GPU box runs eight cells at once, each child pinned to its own GPU: the fake
/// children answer with the device they were given (`CUDA_VISIBLE_DEVICES`) and the real
/// one also reports the device it opened (`provenance.device`).
#[test]
fn concurrent_cells_are_each_pinned_to_their_own_gpu() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/result-ok.json");
    let record = std::fs::read_to_string(fixture)
        .expect("fixture")
        .trim()
        .replace("\"started_at_ms\"", "\"device\":\"cuda:VISIBLE/ORDER\",\"started_at_ms\"");
    std::fs::write(dir.path().join("record.json"), record).expect("write");
    let body = format!(
        "cat >/dev/null; sleep 0.3; r=$(sed \"s|VISIBLE/ORDER|$CUDA_VISIBLE_DEVICES/$CUDA_DEVICE_ORDER|\" {}); \
         echo \"{{\\\"type\\\":\\\"result\\\",\\\"record\\\":$r}}\"",
        dir.path().join("record.json").display()
    );
    let exe = script(dir.path(), "child.sh", &body);
    let cfg = RunnerConfig { exe, timeout: Duration::from_secs(60), trace: None };
    let devices: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|gpu| {
                let cfg = &cfg;
                s.spawn(move || {
                    let mut req = request("bert-tiny", Family::Bert);
                    req.device = format!("cuda:{gpu}");
                    let r = run_cell(cfg, &req, |_| {}).expect("runner survives");
                    assert_eq!(r.status, Status::Ok, "{:?}", r.error);
                    r.provenance.device.unwrap_or_default()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("thread")).collect()
    });
    let expected: Vec<String> = (0..8).map(|gpu| format!("cuda:{gpu}/PCI_BUS_ID")).collect();
    assert_eq!(devices, expected);

    // A CPU cell gets no GPU at all, whatever this process had.
    let exe = script(dir.path(), "cpu.sh", &body);
    let r = run_cell(&RunnerConfig { exe, ..cfg.clone() }, &request("bert-tiny", Family::Bert), |_| {}).expect("runs");
    assert_eq!(r.provenance.device.as_deref(), Some("cuda:/"));
}
