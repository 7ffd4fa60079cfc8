//! Who may call what, tried over real TLS against a real `accelbench serve`: every RPC
//! with every kind of caller (a certificate of each role, a token of each user role,
//! none, a certificate from another CA, an unknown token), the metrics listener, and
//! the rules a handler adds (an agent acts only in its own name, a submitter cancels
//! only their own sweeps, `sweeps.submitted_by` names who submitted).
//!
//! The table below is written out again on purpose, apart from the coordinator's own
//! (`server::auth::Rpc::allowed`): a change to who may do what must change both.

use std::path::PathBuf;

use e2e::{tiny_spec, Cluster, TestChannel};
use proto::connect::ClientAuth;
use proto::v1::agent_service_client::AgentServiceClient;
use proto::v1::fleet_service_client::FleetServiceClient;
use proto::v1::raft_service_client::RaftServiceClient;
use proto::v1::sweep_service_client::SweepServiceClient;
use proto::v1::*;
use tonic::Code;

const RPCS: [&str; 14] = [
    "Register",
    "Heartbeat",
    "LeaseCells",
    "ReportResults",
    "Submit",
    "Get",
    "List",
    "Cancel",
    "Watch",
    "ListAgents",
    "RemoveAgent",
    "ClusterStatus",
    "ChangeMembership",
    "RaftSend",
];

/// The roles allowed to call `rpc`.
fn allowed(rpc: &str) -> &'static [&'static str] {
    match rpc {
        "Register" | "Heartbeat" | "LeaseCells" | "ReportResults" => &["agent"],
        "Submit" | "Cancel" => &["admin", "submitter"],
        "Get" | "List" | "Watch" | "ListAgents" => &["admin", "submitter", "reader"],
        "RemoveAgent" | "ChangeMembership" => &["admin"],
        "ClusterStatus" => &["admin", "submitter", "reader", "node"],
        "RaftSend" => &["node"],
        other => panic!("no policy for {other}"),
    }
}

/// Calls `rpc` with a harmless request; the status code it got (`Ok` as `Code::Ok`).
async fn call(channel: TestChannel, rpc: &str, as_agent: &str) -> Code {
    let code = |r: Result<Code, tonic::Status>| r.unwrap_or_else(|s| s.code());
    let mut agents = AgentServiceClient::new(channel.clone());
    let mut sweeps = SweepServiceClient::new(channel.clone());
    let mut fleet = FleetServiceClient::new(channel.clone());
    let mut raft = RaftServiceClient::new(channel);
    let id = as_agent.to_string();
    let nope = || GetSweepRequest { sweep_id: "nope".into() };
    code(match rpc {
        "Register" => agents.register(RegisterRequest::default()).await.map(|_| Code::Ok),
        "Heartbeat" => agents.heartbeat(HeartbeatRequest { agent_id: id, running: Vec::new() }).await.map(|_| Code::Ok),
        "LeaseCells" => agents
            .lease_cells(LeaseCellsRequest { agent_id: id, max_cells: 1, held: Vec::new() })
            .await
            .map(|_| Code::Ok),
        "ReportResults" => agents.report_results(tokio_stream::iter(Vec::new())).await.map(|_| Code::Ok),
        "Submit" => sweeps.submit(SubmitSweepRequest { spec: "name = 3".into(), format: 0 }).await.map(|_| Code::Ok),
        "Get" => sweeps.get(nope()).await.map(|_| Code::Ok),
        "List" => sweeps.list(ListSweepsRequest { limit: 1 }).await.map(|_| Code::Ok),
        "Cancel" => sweeps.cancel(CancelSweepRequest { sweep_id: "nope".into() }).await.map(|_| Code::Ok),
        "Watch" => sweeps.watch(nope()).await.map(|_| Code::Ok),
        "ListAgents" => fleet.list_agents(ListAgentsRequest {}).await.map(|_| Code::Ok),
        "RemoveAgent" => fleet.remove_agent(RemoveAgentRequest { agent_id: "nobody".into() }).await.map(|_| Code::Ok),
        "ClusterStatus" => fleet.cluster_status(ClusterStatusRequest {}).await.map(|_| Code::Ok),
        // No change named: refused as invalid once past the gate, nothing changes.
        "ChangeMembership" => fleet.change_membership(ChangeMembershipRequest::default()).await.map(|_| Code::Ok),
        // An empty batch for node 1 (the test's single node): nothing reaches raft.
        "RaftSend" => raft.send(RaftMessages { from: 2, to: 1, messages: Vec::new() }).await.map(|_| Code::Ok),
        other => panic!("no call for {other}"),
    })
}

/// Whether a `List` call got past the gate: an answer, or a refusal by the gate or a
/// handler rather than by the transport.
fn admitted(code: Code) -> bool {
    matches!(code, Code::Ok | Code::PermissionDenied | Code::InvalidArgument | Code::NotFound)
}

/// A tokens file with a token per user role, made with the real CLI; (file, tokens).
fn tokens(dir: &std::path::Path) -> (PathBuf, Vec<(&'static str, String)>) {
    let file = dir.join("tokens.toml");
    let tokens = ["admin", "submitter", "reader"]
        .into_iter()
        .map(|role| {
            let o = std::process::Command::new(e2e::binary("accelbench"))
                .args(["token", "issue", "--name", &format!("{role}-bot"), "--role", role, "--tokens-file"])
                .arg(&file)
                .output()
                .expect("token issue runs");
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            (role, String::from_utf8(o.stdout).expect("utf-8").trim().to_string())
        })
        .collect();
    (file, tokens)
}

#[tokio::test(flavor = "multi_thread")]
async fn every_rpc_admits_exactly_the_roles_allowed_to_call_it() {
    let outside = tempfile::tempdir().expect("tempdir");
    let (file, tokens) = tokens(outside.path());
    let c =
        Cluster::start_with_config(&format!("tokens_file = {:?}\n", file.display().to_string())).expect("coordinator");
    let ca = c.ca_dir().join("ca.pem");

    // Callers: a certificate per role, a token per user role.
    let mut callers: Vec<(String, Option<&str>, ClientAuth)> = Vec::new();
    for (role, args) in [
        ("admin", vec!["--user", "root", "--role", "admin"]),
        ("submitter", vec!["--user", "alice", "--role", "submitter"]),
        ("reader", vec!["--user", "rita", "--role", "reader"]),
        ("agent", vec!["--agent", "auth-agent"]),
        ("node", vec!["--node", "peer"]),
    ] {
        callers.push((format!("{role} certificate"), Some(role), c.auth(&args).expect("issue")));
    }
    for (role, token) in &tokens {
        let auth = ClientAuth { ca: Some(ca.clone()), token: Some(token.clone()), ..Default::default() };
        callers.push((format!("{role} token"), Some(role), auth));
    }
    // And callers nobody may admit.
    let nobody = ClientAuth { ca: Some(ca.clone()), ..Default::default() };
    let forged = ClientAuth { ca: Some(ca.clone()), token: Some("abt_forged".into()), ..Default::default() };
    callers.push(("no credentials".into(), None, nobody));
    callers.push(("an unknown token".into(), None, forged));

    let mut wrong = Vec::new();
    for (who, role, auth) in &callers {
        let channel = c.channel(auth).await.unwrap_or_else(|e| panic!("{who}: {e:#}"));
        for rpc in RPCS {
            let got = call(channel.clone(), rpc, "auth-agent").await;
            let expected_in = role.is_some_and(|r| allowed(rpc).contains(&r));
            let admitted = !matches!(got, Code::Unauthenticated | Code::PermissionDenied);
            let right_refusal = match role {
                None => got == Code::Unauthenticated,
                Some(_) => got == Code::PermissionDenied,
            };
            if admitted != expected_in || (!expected_in && !right_refusal) {
                wrong.push(format!("{rpc} by {who}: {got:?}"));
            }
        }
    }
    assert!(wrong.is_empty(), "wrong answers:\n{}", wrong.join("\n"));

    // A certificate from another CA never completes the handshake.
    let other = tempfile::tempdir().expect("tempdir");
    let run = |args: &[&str]| {
        let o = std::process::Command::new(e2e::binary("accelbench")).args(args).output().expect("runs");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    let dir = other.path().to_str().expect("utf-8");
    run(&["ca", "init", "--dir", dir]);
    run(&["ca", "issue", "--dir", dir, "--user", "mallory", "--role", "admin"]);
    let stranger = ClientAuth {
        ca: Some(ca.clone()),
        cert: Some(other.path().join("admin-mallory.pem")),
        key: Some(other.path().join("admin-mallory.key")),
        token: None,
    };
    // The server ends the handshake (a fatal alert, or the connection closed: the code
    // depends on when the client notices), or the certificate is not offered at all and
    // the call is anonymous. Either way nothing passes the gate.
    let got = match c.channel(&stranger).await {
        Err(_) => Code::Unavailable,
        Ok(ch) => SweepServiceClient::new(ch)
            .list(ListSweepsRequest { limit: 1 })
            .await
            .map_or_else(|s| s.code(), |_| Code::Ok),
    };
    assert!(!admitted(got), "a certificate from another CA was accepted: {got:?}");
    // Plain text to the TLS port is not gRPC to it.
    let plain = format!("http://{}", c.addr);
    let answer = match proto::connect::connect(
        &plain,
        &ClientAuth::default(),
        proto::connect::untraced as e2e::Untraced,
    )
    .await
    {
        Err(_) => Code::Unavailable,
        Ok(ch) => SweepServiceClient::new(ch)
            .list(ListSweepsRequest { limit: 1 })
            .await
            .map_or_else(|s| s.code(), |_| Code::Ok),
    };
    // Only a transport or HTTP/2 protocol failure (its code varies with how the TLS
    // alert is read): the call never reached the gate, let alone a handler.
    assert!(!admitted(answer) && answer != Code::Unauthenticated, "plain text was answered: {answer:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_metrics_listener_wants_a_reader_certificate() {
    let c = Cluster::start().expect("coordinator");
    let reader = c.auth(&["--user", "grafana", "--role", "reader"]).expect("issue");
    assert!(e2e::scrape(&c.metrics_url, &reader).is_ok_and(|m| !m.is_empty()));
    let agent = c.auth(&["--agent", "nosy"]).expect("issue");
    let anonymous = ClientAuth { ca: reader.ca.clone(), ..Default::default() };
    for (who, auth) in [("an agent certificate", agent), ("no certificate", anonymous)] {
        assert!(e2e::scrape(&c.metrics_url, &auth).is_err(), "{who} read the metrics");
    }
}

/// A submitter cancels only their own sweeps (an admin any); `sweeps.submitted_by`
/// names who submitted, from the certificate, not from anything the request says.
#[tokio::test(flavor = "multi_thread")]
async fn submitters_cancel_their_own_sweeps_and_are_recorded() {
    let c = Cluster::start().expect("coordinator");
    let alice = c.auth(&["--user", "alice", "--role", "submitter"]).expect("issue");
    let bob = c.auth(&["--user", "bob", "--role", "submitter"]).expect("issue");
    let spec = c.write_spec("s.toml", &tiny_spec("owned", &["bert-tiny"], &[1], 30)).expect("spec");
    let spec = spec.to_str().expect("utf-8");
    let o = c.cli_as(&alice, &["sweep", "submit", spec, "--coordinator", &c.url()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let id = String::from_utf8(o.stdout).expect("utf-8").trim().to_string();
    let o = c.cli_as(&bob, &["sweep", "cancel", &id, "--coordinator", &c.url()]);
    assert!(!o.status.success(), "bob cancelled alice's sweep");
    assert!(String::from_utf8_lossy(&o.stderr).contains("was submitted by alice"), "{o:?}");
    let o = c.cli_as(&alice, &["sweep", "cancel", &id, "--coordinator", &c.url()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let by = c.query(&format!("SELECT submitted_by FROM sweeps WHERE sweep_id = '{id}'")).expect("query");
    assert_eq!(by[0]["submitted_by"], "alice");
    // The admin cancels anyone's.
    let o = c.cli_as(&bob, &["sweep", "submit", spec, "--coordinator", &c.url()]);
    let id = String::from_utf8(o.stdout).expect("utf-8").trim().to_string();
    let o = c.cli(&["sweep", "cancel", &id, "--coordinator", &c.url()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// `--insecure` serves plain text, says so on start, and trusts what requests claim
/// (so it checks the claimed agent id's form itself).
#[tokio::test(flavor = "multi_thread")]
async fn insecure_serves_plain_text_and_warns() {
    let c = Cluster::start_insecure().expect("coordinator");
    let log = std::fs::read_to_string(c.dir.path().join("coordinator.log")).unwrap_or_default();
    assert!(log.contains("WARNING: --insecure"), "{log}");
    assert!(c.url().starts_with("http://"));
    let mut agents = AgentServiceClient::new(c.channel(&ClientAuth::default()).await.expect("plain text"));
    let e = agents
        .lease_cells(LeaseCellsRequest { agent_id: "a b".into(), max_cells: 1, held: Vec::new() })
        .await
        .expect_err("refused");
    assert_eq!((e.code(), e.message().starts_with("agent_id \"a b\"")), (Code::InvalidArgument, true));
    let o = c.cli(&["sweep", "list", "--coordinator", &c.url()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // Without --insecure and without TLS settings, serve refuses to start, saying how.
    let o = std::process::Command::new(e2e::binary("accelbench"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(c.dir.path().join("other"))
        .output()
        .expect("runs");
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("no TLS settings") && err.contains("accelbench ca init") && err.contains("--insecure"),
        "{err}"
    );
}
