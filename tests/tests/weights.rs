//! Real weights named in a sweep (`[[weights]]`): an agent runs a cell on exactly the
//! files the spec names, found by their sha256, and answers `unsupported` where it lacks
//! them, never running other weights in their place. Real processes on loopback: a
//! coordinator, an agent, the weights written by `accelbench-agent weights export` and
//! hashed by `accelbench-agent weights hash`, as a lab would.

#[tokio::test(flavor = "multi_thread")]
async fn a_sweep_runs_the_weights_it_names_and_refuses_what_an_agent_lacks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let [(_, folder, bert), (_, vit_file, vit)] = e2e::real_encoder_weights(dir.path());
    let wrong = "0".repeat(64);

    let mut c = e2e::Cluster::start().expect("coordinator");
    c.start_agent(0).expect("agent");
    let weights = [
        e2e::weights_entry("bert-tiny", &folder, &bert),
        e2e::weights_entry("vit-tiny", &vit_file, &vit),
        e2e::weights_entry("t5-small", &dir.path().join("nowhere"), &wrong),
    ]
    .concat();
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
        + &e2e::weights_entry("bert-tiny", &folder, &wrong);
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
