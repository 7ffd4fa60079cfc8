//! Tracing across processes: with `OTEL_EXPORTER_OTLP_ENDPOINT` pointing at an in-test
//! OTLP receiver, one sweep submitted from the CLI yields ONE trace that holds the CLI's
//! submit span, the coordinator's RPC spans, the agent's span for each cell and the span
//! of each cell's child process, each parented on the one before and carrying the
//! sweep id, cell key, attempt and agent id.

use std::time::{Duration, Instant};

use e2e::otlp::{Collector, Span};
use e2e::{tiny_spec, Cluster};
use proto::v1::SweepState;

const LIMIT: Duration = Duration::from_secs(120);

/// The one span that `pick` selects, or a description of what is missing.
fn one<'a>(spans: &'a [Span], what: &str, pick: impl Fn(&Span) -> bool) -> Result<&'a Span, String> {
    let found: Vec<&Span> = spans.iter().filter(|s| pick(s)).collect();
    match found[..] {
        [s] => Ok(s),
        _ => Err(format!("{} spans for {what}", found.len())),
    }
}

/// Checks the whole trace; `Err` says what is missing (the exporters may still be on
/// their way), a failed assertion says what is wrong.
fn check_trace(spans: &[Span], sweep_id: &str, agent_id: &str, n_cells: usize) -> Result<(), String> {
    let for_sweep = |s: &Span| s.attr("sweep_id") == Some(sweep_id);
    let cli = one(spans, "the CLI's submit", |s| s.service == "accelbench" && s.name == "sweep submit")?;
    assert!(for_sweep(cli), "the CLI's span records the sweep id: {cli:?}");
    assert_eq!(cli.parent_span_id, "", "the CLI's span is the root: {cli:?}");
    let trace = cli.trace_id.as_str();
    let rpc = one(spans, "the coordinator's Submit RPC", |s| {
        s.service == "accelbench-coordinator" && s.name == "/accelbench.v1.SweepService/Submit"
    })?;
    assert_eq!((rpc.trace_id.as_str(), rpc.parent_span_id.as_str()), (trace, cli.span_id.as_str()), "{rpc:?}");
    let submit = one(spans, "the coordinator's submit handler", |s| {
        s.service == "accelbench-coordinator" && s.name == "submit"
    })?;
    assert!(for_sweep(submit), "{submit:?}");
    assert_eq!((submit.trace_id.as_str(), submit.parent_span_id.as_str()), (trace, rpc.span_id.as_str()));

    let cells: Vec<&Span> = spans.iter().filter(|s| s.service == "accelbench-agent" && s.name == "cell").collect();
    if cells.len() < n_cells {
        return Err(format!("{} of {n_cells} agent cell spans", cells.len()));
    }
    for cell in cells {
        assert!(for_sweep(cell), "{cell:?}");
        assert_eq!(cell.attr("agent_id"), Some(agent_id), "{cell:?}");
        assert!(cell.attr("attempt").is_some_and(|a| a.parse::<u32>().is_ok()), "{cell:?}");
        assert_eq!(cell.trace_id, trace, "the cell joins the submit's trace: {cell:?}");
        assert_eq!(cell.parent_span_id, submit.span_id, "the cell's parent is the submit: {cell:?}");
        let key = cell.attr("cell_key").ok_or(format!("no cell_key on {cell:?}"))?;
        let child = one(spans, &format!("the child of cell {key}"), |s| {
            s.service == "accelbench-cell" && s.name == "exec_cell" && s.attr("cell_key") == Some(key)
        })?;
        assert_eq!((child.trace_id.as_str(), child.parent_span_id.as_str()), (trace, cell.span_id.as_str()));
        for field in ["sweep_id", "attempt", "agent_id"] {
            assert_eq!(child.attr(field), cell.attr(field), "{field} of {child:?}");
        }
        let report = one(spans, &format!("the coordinator's report of cell {key}"), |s| {
            s.service == "accelbench-coordinator" && s.name == "result" && s.attr("cell_key") == Some(key)
        })?;
        assert_eq!(report.trace_id, trace, "the report joins the sweep's trace: {report:?}");
        assert_eq!(report.attr("agent_id"), Some(agent_id));
        assert_eq!(report.attr("attempt"), cell.attr("attempt"));
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn one_trace_runs_from_the_cli_through_the_coordinator_and_agent_to_the_cell_child() {
    let collector = Collector::start().await.expect("otlp receiver");
    let env = [("OTEL_EXPORTER_OTLP_ENDPOINT", collector.endpoint()), ("OTEL_BSP_SCHEDULE_DELAY", "100")];
    let mut c = Cluster::start_with_env(&env).expect("coordinator");
    c.start_agent(0).expect("agent 0");
    let start = Instant::now();
    // The sweep fans out over the hardware classes registered at submit time.
    while c.leases().await.map_or(true, |agents| agents.is_empty()) {
        assert!(start.elapsed() < LIMIT, "the agent never registered; logs: {}", c.logs());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let spec = c.write_spec("s.toml", &tiny_spec("traced", &["bert-tiny"], &[1], 30)).expect("spec");
    let id = c.submit(&spec).expect("submit");
    let s = c.wait_done(&id, LIMIT).await.expect("done");
    assert_eq!(s.state, SweepState::Done as i32, "{s:?}");
    let agent_id = c.agent_id(0).expect("agent id");
    let n_cells = s.cells_by_state.values().sum::<u64>() as usize;
    assert_eq!(n_cells, 2, "{s:?}");
    loop {
        let spans = collector.spans();
        match check_trace(&spans, &id, &agent_id, n_cells) {
            Ok(()) => {
                for s in &spans {
                    eprintln!(
                        "SPAN {} {} trace={} id={} parent={} {:?}",
                        s.service,
                        s.name,
                        &s.trace_id[..8],
                        s.span_id,
                        s.parent_span_id,
                        s.attributes
                    );
                }
                break;
            }
            Err(_) if start.elapsed() < LIMIT => tokio::time::sleep(Duration::from_millis(200)).await,
            Err(missing) => panic!("{missing}; received {spans:#?}; logs: {}", c.logs()),
        }
    }
}
