//! Real weights named in a sweep (`[[weights]]`): an agent runs a cell on exactly the
//! files the spec names, found by their sha256, and answers `unsupported` where it lacks
//! them, never running other weights in their place. Real processes on loopback: a
//! coordinator, an agent, the weights written by `accelbench-agent weights export` and
//! hashed by `accelbench-agent weights hash`, as a lab would.

use std::path::Path;
use std::process::Command;

/// Runs `accelbench-agent ARGS`; its stdout, trimmed.
fn agent_cli(args: &[&str]) -> String {
    let out = Command::new(e2e::binary("accelbench-agent")).args(args).output().expect("accelbench-agent runs");
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8").trim().to_string()
}

/// The sha256 `weights hash` prints for `source`.
fn hash(source: &Path) -> String {
    let line = agent_cli(&["weights", "hash", source.to_str().expect("utf-8")]);
    let (sha256, path) = line.split_once("  ").expect("`<sha256>  <path>`");
    assert_eq!(Path::new(path), source, "{line}");
    sha256.to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sweep_runs_the_weights_it_names_and_refuses_what_an_agent_lacks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().to_str().expect("utf-8");
    let folder = agent_cli(&["weights", "export", "--model", "bert-tiny", "--seed", "77", "--out", out]);
    let folder = Path::new(&folder).to_path_buf();
    let bert = hash(&folder);
    // vit's weights as one .safetensors file with no config.json beside it.
    let vit_folder = agent_cli(&["weights", "export", "--model", "vit-tiny", "--seed", "78", "--out", out]);
    let vit_file = dir.path().join("vit-tiny.safetensors");
    std::fs::copy(Path::new(&vit_folder).join("model.safetensors"), &vit_file).expect("copy");
    let vit = hash(&vit_file);
    let wrong = "0".repeat(64);

    let mut c = e2e::Cluster::start().expect("coordinator");
    c.start_agent(0).expect("agent");
    let weights = format!(
        r#"
[[weights]]
model = "bert-tiny"
source = "{}"
sha256 = "{bert}"
[[weights]]
model = "vit-tiny"
source = "{}"
sha256 = "{vit}"
[[weights]]
model = "t5-small"
source = "{}/nowhere"
sha256 = "{wrong}"
"#,
        folder.display(),
        vit_file.display(),
        out
    );
    let text = e2e::tiny_spec("real-weights", &["bert-tiny", "vit-tiny", "t5-small"], &[1], 60)
        .replace(r#"precisions = ["fp32", "bf16"]"#, r#"precisions = ["fp32"]"#)
        + &weights;
    let id = c.submit(&c.write_spec("real.toml", &text).expect("spec")).expect("submit");
    let s = c.wait_done(&id, std::time::Duration::from_secs(300)).await.expect("the sweep ends");
    assert_eq!(s.cells_by_state.get("ok").copied(), Some(2), "{s:?}; logs: {}", c.logs());
    let rows = c
        .query(&format!(
            "SELECT model, status, weights_source, error, latency_p50_ns FROM results WHERE sweep_id = '{id}' \
             ORDER BY model"
        ))
        .expect("query");
    let row = |model: &str| rows.iter().find(|r| r["model"] == model).unwrap_or_else(|| panic!("{model}: {rows:?}"));
    for (model, sha256) in [("bert-tiny", &bert), ("vit-tiny", &vit)] {
        let r = row(model);
        assert_eq!(r["status"], "ok", "{r}");
        assert_eq!(r["weights_source"], format!("file:sha256={sha256}"), "{r}");
        assert!(r["latency_p50_ns"].as_f64().is_some_and(|ns| ns > 0.0), "{r}");
    }
    // Missing on the agent: unsupported, saying so, and the row names the hash it needed.
    let t5 = row("t5-small");
    assert_eq!(t5["status"], "unsupported", "{t5}");
    assert!(t5["error"].as_str().is_some_and(|e| e.contains("weights not present on this agent")), "{t5}");
    assert_eq!(t5["weights_source"], format!("file:sha256={wrong}"), "{t5}");
    assert!(t5["latency_p50_ns"].is_null(), "nothing measured: {t5}");

    // The same path under another hash (the file changed since the spec was written):
    // refused, naming both hashes; the cell never runs on the files found.
    let changed = e2e::tiny_spec("changed-weights", &["bert-tiny"], &[1], 60)
        .replace(r#"precisions = ["fp32", "bf16"]"#, r#"precisions = ["fp32"]"#)
        + &format!("[[weights]]\nmodel = \"bert-tiny\"\nsource = \"{}\"\nsha256 = \"{wrong}\"\n", folder.display());
    let id = c.submit(&c.write_spec("changed.toml", &changed).expect("spec")).expect("submit");
    let s = c.wait_done(&id, std::time::Duration::from_secs(120)).await.expect("the sweep ends");
    assert_eq!(s.cells_by_state.get("unsupported").copied(), Some(1), "{s:?}");
    let rows = c.query(&format!("SELECT error FROM results WHERE sweep_id = '{id}'")).expect("query");
    let error = rows[0]["error"].as_str().unwrap_or("");
    assert!(error.contains(&bert) && error.contains(&wrong), "{error}");

    // A spec naming weights badly is refused whole, each entry's problem named.
    let bad = e2e::tiny_spec("bad-weights", &["bert-tiny"], &[1], 60)
        + "[[weights]]\nmodel = \"vit-tiny\"\nsource = \"/w\"\nsha256 = \"xyz\"\n";
    let o = c.cli(&["sweep", "submit", c.write_spec("bad.toml", &bad).expect("spec").to_str().expect("utf-8")]);
    let said = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{said}");
    assert!(said.contains("weights[0].model") && said.contains("weights[0].sha256"), "{said}");
}
