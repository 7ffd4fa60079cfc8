//! External engine runners (docs/RUNNERS.md) against the protocol's own checks
//! (`shared::runner::parse_line`): the Python runner library every shipped runner uses,
//! driven through a small runner of the test's own; and the PyTorch runner on seeded
//! weights in Hugging Face layout, where its environment is installed
//! (ops/runners/install-torch.sh; the test says so and stops where it is not).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use shared::runner::{parse_line, FromRunner, PROTOCOL};

/// Runs `program` with `args`, feeds it `lines`, and parses every line it printed.
fn converse(program: &Path, args: &[&str], lines: &[&str]) -> (Vec<FromRunner>, std::process::ExitStatus) {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("{} starts: {e}", program.display()));
    let mut stdin = child.stdin.take().expect("stdin");
    for line in lines {
        writeln!(stdin, "{line}").expect("the runner reads");
    }
    drop(stdin);
    let out = child.wait_with_output().expect("the runner ends");
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let said = text.lines().map(|l| parse_line(l).unwrap_or_else(|e| panic!("{e}"))).collect();
    (said, out.status)
}

fn runners_dir() -> PathBuf {
    e2e::repo_root().join("ops/runners")
}

fn load(family: &str, weights: &str, protocol: u32) -> String {
    format!(
        r#"{{"type":"load","protocol":{protocol},"model":"bert-tiny","family":"{family}","weights":"{weights}","batch":2,"seq_len":16,"precision":"fp32","mode":"inference","device":"cpu","seed":7}}"#
    )
}

/// A runner of the test's own on the library: 1 ms iterations, outputs as a marker file.
const FAKE: &str = r#"
import sys
sys.path.insert(0, sys.argv[1])
import accelbench_runner as p
class Fake:
    def load(self, cell):
        if cell["family"] != "bert":
            raise p.Unsupported("fake runs bert only")
        print("library chatter must not reach the protocol")
        return {"device": cell["device"], "execution_provider": None, "engine_version": "0.0.1"}
    def run_once(self):
        return 0.001
    def outputs(self, inputs, outputs):
        open(outputs, "w").write(inputs)
hello = {"runner": "fake", "engine": "fake", "engine_version": "0.0.1",
         "devices": [{"device": "cpu", "name": "test"}], "precisions": ["fp32"], "modes": ["inference"], "families": ["bert"]}
sys.exit(p.serve(hello, Fake()))
"#;

#[test]
fn the_python_runner_library_speaks_protocol_1_and_names_every_failure() {
    let dir = tempfile::tempdir().expect("tempdir");
    let script = dir.path().join("fake.py");
    std::fs::write(&script, FAKE).expect("script");
    let python = PathBuf::from("python3");
    let lib = runners_dir().display().to_string();
    let args = [script.to_str().expect("utf-8 path"), &lib];
    let outputs = dir.path().join("out.safetensors").display().to_string();
    let ask_outputs = format!(r#"{{"type":"outputs","inputs":"in","outputs":"{outputs}"}}"#);
    let (said, status) = converse(
        &python,
        &args,
        &[&load("bert", "/w", PROTOCOL), r#"{"type":"run","iterations":2}"#, &ask_outputs, r#"{"type":"end"}"#],
    );
    assert!(status.success());
    assert!(matches!(&said[0], FromRunner::Hello(h) if h.engine == "fake" && h.protocol == PROTOCOL), "{said:?}");
    assert!(matches!(&said[1], FromRunner::Loaded(l) if l.device == "cpu" && l.engine_version == "0.0.1"));
    let iteration = FromRunner::Iteration { seconds: 0.001, first_token_seconds: None, token_seconds: Vec::new() };
    assert_eq!(said[2..4], [iteration.clone(), iteration]);
    assert_eq!(said[4], FromRunner::Outputs { path: outputs.clone() });
    assert_eq!(std::fs::read_to_string(&outputs).expect("written"), "in");
    assert_eq!(said.len(), 5, "{said:?}");

    let error = |lines: &[&str]| match converse(&python, &args, lines).0.pop() {
        Some(FromRunner::Error(e)) => (format!("{:?}", e.kind), e.message),
        other => panic!("an error expected, got {other:?}"),
    };
    let cases: [(&[&str], &str, &str); 4] = [
        (&[&load("llama", "/w", PROTOCOL)], "Unsupported", "fake runs bert only"),
        (&[&load("bert", "/w", 9)], "Unsupported", "the agent speaks protocol 9"),
        (&[r#"{"type":"run","iterations":1}"#], "Failed", "`run` before `load`"),
        (&["not json"], "Failed", "not a protocol line"),
    ];
    for (lines, kind, message) in cases {
        let (k, m) = error(lines);
        assert_eq!(k, kind, "{m}");
        assert!(m.contains(message), "{m}");
    }
}

/// The python of the runners' environment, if torch imports there.
fn torch_python() -> Option<PathBuf> {
    let venv = std::env::var_os("ACCELBENCH_PY")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache/accelbench-py")))?;
    let python = venv.join("bin/python");
    let ok = Command::new(&python).args(["-c", "import torch, transformers, safetensors"]).output();
    ok.is_ok_and(|o| o.status.success()).then_some(python)
}

#[test]
fn the_torch_runner_loads_seeded_weights_and_times_iterations_on_the_cpu() {
    let Some(python) = torch_python() else {
        eprintln!("skipped: no torch environment (run ops/runners/install-torch.sh, or set ACCELBENCH_PY)");
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let weights = dir.path().join("bert-tiny");
    let saved = Command::new(&python)
        .arg(e2e::repo_root().join("ops/bench/torch_runner.py"))
        .args(["--model", "bert-tiny", "--batch", "1", "--save-weights"])
        .arg(&weights)
        .output()
        .expect("python runs");
    assert!(saved.status.success(), "{}", String::from_utf8_lossy(&saved.stderr));
    let runner = runners_dir().join("torch_runner.py");
    let args = [runner.to_str().expect("utf-8 path")];
    let weights = weights.display().to_string();
    let (said, status) = converse(
        &python,
        &args,
        &[&load("bert", &weights, PROTOCOL), r#"{"type":"run","iterations":3}"#, r#"{"type":"end"}"#],
    );
    assert!(status.success());
    let FromRunner::Hello(hello) = &said[0] else { panic!("{said:?}") };
    assert!(hello.devices.iter().any(|d| d.device == "cpu") && hello.engine == "torch");
    assert!(matches!(&said[1], FromRunner::Loaded(l) if l.device == "cpu" && l.engine_version == hello.engine_version));
    assert_eq!(said[2..].iter().filter(|m| matches!(m, FromRunner::Iteration { .. })).count(), 3, "{said:?}");

    // A device it does not have is unsupported, never run elsewhere.
    let on_gpu = load("bert", &weights, PROTOCOL).replace(r#""device":"cpu""#, r#""device":"cuda:7""#);
    let (said, _) = converse(&python, &args, &[&on_gpu]);
    assert!(
        matches!(said.last(), Some(FromRunner::Error(e)) if e.message.contains("'cuda:7' is not available")),
        "{said:?}"
    );
}

/// The python of onnxruntime-openvino's environment (install-onnxruntime-openvino.sh),
/// layered over the runners' one.
fn ort_openvino_python() -> PathBuf {
    std::env::var_os("ACCELBENCH_ORT_OPENVINO_PY")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache/accelbench-ort-openvino")))
        .unwrap_or_default()
        .join("bin/python")
}

/// The shipped runners that answer their handshake here (what an agent checks before
/// it offers an engine), as `(engine, command)`; each missing one is named.
fn installed_runners(python: &Path) -> Vec<(&'static str, Vec<String>)> {
    let script = |name: &str| runners_dir().join(format!("{name}_runner.py")).display().to_string();
    let py = python.display().to_string();
    [
        ("torch", vec![py.clone(), script("torch")]),
        ("torch-compile", vec![py.clone(), script("torch"), "--compile".into()]),
        ("onnxruntime", vec![py.clone(), script("onnxruntime")]),
        (
            "onnxruntime-openvino",
            vec![
                ort_openvino_python().display().to_string(),
                script("onnxruntime"),
                "--provider".into(),
                "openvino".into(),
            ],
        ),
        ("openvino", vec![py.clone(), script("openvino")]),
        ("llamacpp", vec![py, script("llamacpp")]),
    ]
    .into_iter()
    .filter_map(|(engine, command)| {
        let args: Vec<&str> = command[1..].iter().map(String::as_str).collect();
        let said =
            if Path::new(&command[0]).exists() { converse(Path::new(&command[0]), &args, &[]).0 } else { Vec::new() };
        match said.first() {
            Some(FromRunner::Hello(h)) if h.engine == engine => Some((engine, command)),
            _ => {
                eprintln!("engine {engine} left out: its runner does not say hello here (ops/runners/install-*.sh)");
                None
            }
        }
    })
    .collect()
}

/// One sweep over candle and every installed runner's engine, through real processes:
/// the agent shakes hands with each runner, registers its engine on its CPU, and the
/// scheduler leases it that engine's cells. The encoders run on real weights the spec
/// names (a folder, a lone file), in every engine but llama.cpp; a GGUF decoder in candle
/// and llama.cpp. Each row names what ran (engine, its version, device, execution
/// provider), every engine's rows of a model the same weights, and the runners' outputs
/// agree with candle's.
#[tokio::test(flavor = "multi_thread")]
async fn one_sweep_runs_every_installed_engine_on_the_same_weights() {
    let Some(python) = torch_python() else {
        eprintln!("skipped: no runners' environment (run ops/runners/install-torch.sh, or set ACCELBENCH_PY)");
        return;
    };
    let runners = installed_runners(&python);
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("agent.toml");
    let lines: Vec<String> = runners.iter().map(|(engine, argv)| format!("{engine:?} = {argv:?}")).collect();
    std::fs::write(&config, format!("[runners]\n{}\n", lines.join("\n"))).expect("config");
    let (cache, onnx, real) = (dir.path().join("weights"), dir.path().join("onnx"), dir.path().join("real"));
    let env = [
        ("ACCELBENCH_AGENT_CONFIG", config.to_str().expect("utf-8")),
        ("ACCELBENCH_WEIGHTS_CACHE", cache.to_str().expect("utf-8")),
        ("ACCELBENCH_ONNX_CACHE", onnx.to_str().expect("utf-8")),
    ];
    let mut c = e2e::Cluster::start_with_env(&env).expect("coordinator");
    c.start_agent(0).expect("agent");
    let engines: Vec<&str> = ["candle"].into_iter().chain(runners.iter().map(|(e, _)| *e)).collect();
    let quoted = |names: &[&str]| names.iter().map(|e| format!("{e:?}")).collect::<Vec<_>>().join(", ");
    let encoder_engines: Vec<&str> = engines.iter().copied().filter(|e| *e != "llamacpp").collect();
    let has = |engine: &str| engines.contains(&engine);
    // llama.cpp runs GGUF decoders only, and of the others only torch runs decoders
    // (eager, in float precisions): llama-tiny in fp32 in candle and torch, in q8_0 in
    // candle and llama.cpp.
    let runners_but =
        |keep: &str| -> Vec<&str> { engines.iter().copied().filter(|e| *e != "candle" && *e != keep).collect() };
    let mut exclude = vec![r#"{ models = ["bert-tiny", "vit-tiny"], engines = ["llamacpp"] }"#.to_string()];
    for (precision, keep) in [("fp32", "torch"), ("q8_0", "llamacpp")] {
        let others = runners_but(keep);
        if !others.is_empty() {
            exclude.push(format!(
                r#"{{ models = ["llama-tiny"], precisions = ["{precision}"], engines = [{}] }}"#,
                quoted(&others)
            ));
        }
    }
    let text = e2e::tiny_spec("engines", &["bert-tiny", "vit-tiny", "llama-tiny"], &[1], 60)
        .replace("sequence_lengths = [16]", "sequence_lengths = [32]")
        .replace(
            r#"precisions = ["fp32", "bf16"]"#,
            &format!(
                "precisions = [\"fp32\", \"q8_0\"]\nengines = [{}]\nexclude = [{}]",
                quoted(&engines),
                exclude.join(", ")
            ),
        )
        + &e2e::real_encoder_weights(&real)
            .map(|(model, source, sha256)| e2e::weights_entry(model, &source, &sha256))
            .concat();
    let id = c.submit(&c.write_spec("engines.toml", &text).expect("spec")).expect("submit");
    let s = c.wait_done(&id, std::time::Duration::from_secs(900)).await.expect("the sweep ends");
    let decoder_engines = 2 + usize::from(has("torch")) + usize::from(has("llamacpp"));
    let n = (2 * encoder_engines.len() + decoder_engines) as u64;
    let errors = c.query(&format!("SELECT engine, error FROM results WHERE sweep_id = '{id}' AND status <> 'ok'"));
    assert_eq!(s.cells_by_state.get("ok").copied(), Some(n), "{s:?}; {errors:?}; logs: {}", c.logs());

    let rows = c
        .query(&format!(
            "SELECT model, engine, precision, engine_version, device, weights_source, status, latency_p50_ns, batch, \
             seq_len, \
             validation, validation_reference, validation_max_rel_error, validation_cosine, validation_reason, \
             ttft_p50_ns, inter_token_p50_ns, decode_tokens_per_s FROM results WHERE sweep_id = '{id}' \
             ORDER BY model, engine"
        ))
        .expect("query");
    assert_eq!(rows.len() as u64, n, "{rows:?}");
    let s = |r: &serde_json::Value, k: &str| r[k].as_str().unwrap_or("").to_string();
    for (engine, argv) in runners.iter().filter(|(e, _)| *e != "llamacpp") {
        let module = engine.split('-').next().unwrap_or(engine);
        let said = Command::new(&argv[0])
            .args(["-c", &format!("import {module} as m; print(getattr(m, '__version__', None) or m.get_version())")])
            .output()
            .expect("python");
        let version = String::from_utf8(said.stdout).expect("utf-8").trim().to_string();
        let theirs: Vec<&serde_json::Value> =
            rows.iter().filter(|r| r["engine"] == *engine && r["model"] != "llama-tiny").collect();
        assert_eq!(theirs.len(), 2, "{rows:?}");
        for r in theirs {
            assert_eq!(s(r, "engine_version"), version, "{r}");
            let device = s(r, "device");
            let want = match *engine {
                "onnxruntime" => "cpu via CPUExecutionProvider",
                "onnxruntime-openvino" => "cpu via OpenVINOExecutionProvider",
                "openvino" => "cpu via CPU",
                _ => "cpu",
            };
            assert_eq!(device, want, "{r}");
            // Its outputs on candle's seeded inputs agree with candle's fp32 ones.
            assert_eq!(
                (s(r, "validation"), s(r, "validation_reference")),
                ("passed".into(), "candle fp32 cpu".into()),
                "{r}"
            );
            assert!(r["validation_cosine"].as_f64().is_some_and(|c| c > 0.9999), "{r}");
        }
    }
    let candle: Vec<String> = rows.iter().filter(|r| r["engine"] == "candle").map(|r| s(r, "engine_version")).collect();
    assert!(candle.len() == 4 && candle.iter().all(|v| !v.is_empty() && *v == candle[0]), "{rows:?}");
    // candle is the reference: its rows carry no validation.
    assert!(rows.iter().filter(|r| r["engine"] == "candle").all(|r| r["validation"].is_null()), "{rows:?}");
    for (model, engines) in [("bert-tiny", &encoder_engines), ("vit-tiny", &encoder_engines)] {
        let of: Vec<&serde_json::Value> = rows.iter().filter(|r| r["model"] == model).collect();
        assert_eq!(of.len(), engines.len(), "{rows:?}");
        // The files the spec named, the same in every engine, in the same shapes.
        assert!(of.iter().all(|r| s(r, "weights_source").starts_with("file:sha256=")), "{of:?}");
        for k in ["weights_source", "batch", "seq_len"] {
            assert!(of.iter().all(|r| r[k] == of[0][k]), "the same {k}: {of:?}");
        }
        assert!(of.iter().all(|r| r["latency_p50_ns"].as_f64().is_some_and(|ns| ns > 0.0)), "{of:?}");
    }
    // The runners were handed the very files the spec named: no seeded encoder was
    // exported for them (only the decoder's seeded GGUF and, for torch, its folder), and
    // the lone file reached them as a folder linking to it.
    let exported: Vec<String> = std::fs::read_dir(&cache)
        .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    let linked = exported.iter().filter(|name| name.starts_with("vit-tiny-file-")).count();
    let seeded_gguf = exported.iter().filter(|name| name.starts_with("llama-tiny-q8_0-seed")).count();
    let seeded_folder = exported.iter().filter(|name| name.starts_with("llama-tiny-seed")).count();
    let want = (1, usize::from(has("llamacpp")), usize::from(has("torch")));
    assert_eq!((linked, seeded_gguf, seeded_folder), want, "{exported:?}");
    assert_eq!(exported.len(), 1 + want.1 + want.2, "{exported:?}");

    // The decoder in fp32 in candle and torch (the seeded weights written out as a
    // Hugging Face folder), in q8_0 in candle and llama.cpp (the same GGUF file): timed
    // the same way (TTFT, inter-token), the runners' logits within the precision's
    // tolerance of candle's.
    let decoders: Vec<&serde_json::Value> = rows.iter().filter(|r| r["model"] == "llama-tiny").collect();
    assert_eq!(decoders.len(), decoder_engines, "{rows:?}");
    for precision in ["fp32", "q8_0"] {
        let of: Vec<&&serde_json::Value> = decoders.iter().filter(|r| r["precision"] == precision).collect();
        assert!(of.iter().all(|r| r["weights_source"] == of[0]["weights_source"]), "the same weights: {of:?}");
    }
    for r in &decoders {
        for k in ["ttft_p50_ns", "inter_token_p50_ns", "decode_tokens_per_s"] {
            assert!(r[k].as_f64().is_some_and(|v| v > 0.0), "{k}: {r}");
        }
    }
    if let Some(torch) = decoders.iter().find(|r| r["engine"] == "torch") {
        let checked = (s(torch, "validation"), s(torch, "validation_reference"));
        assert_eq!(checked, ("passed".into(), "candle fp32 cpu".into()), "{torch}");
        assert!(torch["validation_cosine"].as_f64().is_some_and(|c| c > 0.9999), "{torch}");
    }
    if let Some(llama) = decoders.iter().find(|r| r["engine"] == "llamacpp") {
        assert!(s(llama, "engine_version").starts_with("llama-cpp-python "), "{llama}");
        let checked = (s(llama, "validation"), s(llama, "validation_reference"));
        assert_eq!(checked, ("passed".into(), "candle q8_0 cpu".into()), "{llama}");
        assert!(llama["validation_cosine"].as_f64().is_some_and(|c| c > 0.99), "{llama}");
    }
}

/// Runs one cell through `accelbench-agent exec-cell` as the agent does, with `env`;
/// its result record.
fn exec_cell(request: &serde_json::Value, env: &[(&str, &Path)]) -> shared::result::ResultRecord {
    let mut child = Command::new(e2e::binary("accelbench-agent"))
        .arg("exec-cell")
        .envs(env.iter().map(|(k, v)| (*k, *v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("exec-cell starts");
    serde_json::to_writer(child.stdin.take().expect("stdin"), request).expect("the request");
    let out = child.wait_with_output().expect("exec-cell ends");
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap_or("")).expect("a result line");
    serde_json::from_value(last["record"].clone()).expect("a result record")
}

/// The request of a bert-tiny cell of `engine` at `precision` on the CPU.
fn cell_request(engine: &str, precision: &str, weights: serde_json::Value, runner: &[&Path]) -> serde_json::Value {
    let measure = shared::spec::MeasurePolicy {
        warmup_iterations: 1,
        warmup_min_seconds: 0.0,
        min_iterations: 3,
        min_seconds: 0.0,
        max_seconds: 2.0,
        target_relative_ci: 0.5,
    };
    serde_json::json!({
        "sweep_id": null, "cell_key": "k", "attempt": 1, "agent_id": null,
        "coordinates": {"model": "bert-tiny", "family": "bert", "hardware_class": "cpu/test", "batch": 2,
                        "seq_len": 16, "precision": precision, "mode": "inference", "engine": engine},
        "measure": measure, "weights": weights, "device": "cpu", "fingerprint_hash": "test",
        "runner": runner.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
    })
}

/// A deliberately wrong configuration is caught by the validation pass: weights whose
/// feed-forward activations pass fp16's largest value (65 504) run fine in fp32, and in
/// fp16 turn to inf and NaN. The row keeps its timings and says `validation = failed`.
#[test]
fn an_fp16_overflow_fails_validation_and_the_row_says_so() {
    let Some(python) = torch_python() else {
        eprintln!("skipped: no torch environment (run ops/runners/install-torch.sh, or set ACCELBENCH_PY)");
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = dir.path().join("weights");
    let runner = runners_dir().join("torch_runner.py");
    let argv = [python.as_path(), runner.as_path()];
    let env = [("ACCELBENCH_WEIGHTS_CACHE", cache.as_path())];
    let seeded = serde_json::json!({"kind": "random", "seed": 5});
    let fine = exec_cell(&cell_request("torch", "fp16", seeded, &argv), &env);
    let v = fine.validation.as_ref().expect("a validation");
    assert_eq!((fine.status.as_str(), v.status.as_str()), ("ok", "passed"), "{fine:?}");

    // The seeded folder the agent wrote, with one feed-forward weight scaled up 10⁶.
    let seeded_dir = std::fs::read_dir(&cache).expect("cache").flatten().next().expect("an export").path();
    let hot = dir.path().join("hot");
    let script = r#"
import shutil, sys
from safetensors.torch import load_file, save_file
src, dst = sys.argv[1], sys.argv[2]
shutil.copytree(src, dst)
t = load_file(f"{dst}/model.safetensors")
t["bert.encoder.layer.0.intermediate.dense.weight"] *= 1e6
save_file(t, f"{dst}/model.safetensors")
"#;
    let made = Command::new(&python).args(["-c", script]).arg(&seeded_dir).arg(&hot).output().expect("python");
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let file = hot.join("model.safetensors");
    let weights = serde_json::json!({"kind": "dir", "path": hot, "files": [file], "sha256": "test"});
    for (precision, want) in [("fp32", "passed"), ("fp16", "failed")] {
        let r = exec_cell(&cell_request("torch", precision, weights.clone(), &argv), &env);
        let v = r.validation.as_ref().expect("a validation");
        assert_eq!((r.status.as_str(), v.status.as_str()), ("ok", want), "{precision}: {r:?}");
        assert_eq!(r.provenance.weights_source, "file:sha256=test");
        if want == "failed" {
            let why = v.reason.as_deref().unwrap_or("");
            assert!(why.contains("NaN") || why.contains("inf"), "{why}");
            assert!(r.latency_ns.is_some(), "timed all the same: {r:?}");
        }
    }
}
