//! Who may call what: every RPC passes this gate before its handler runs.
//!
//! The TLS layer (rustls, client certificates checked against the lab CA) has already
//! run when a request reaches [`Gate`]; the gate names the caller (a [`Principal`]: the
//! certificate's subject, or the holder of a bearer token), looks the RPC up in
//! [`Rpc::allowed`] and refuses it (`UNAUTHENTICATED` or `PERMISSION_DENIED`) before any
//! byte of the message is decoded. A path not in the table is refused too, so a new RPC
//! is closed until it is given roles. Handlers read the principal from the request's
//! extensions: an agent acts only in its certificate's name, and `submitted_by` records
//! who submitted a sweep.
//!
//! `--insecure` (plain text) lets everyone do everything, as before authentication
//! existed; the coordinator says so on every start.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use proto::identity::{token_hash, CertIdentity, Role};
use serde::{Deserialize, Serialize};
use tonic::codegen::http;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
use tonic::Status;

/// Every RPC the coordinator serves, by its gRPC path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rpc {
    Register,
    Heartbeat,
    LeaseCells,
    ReportResults,
    Submit,
    Get,
    List,
    Cancel,
    Watch,
    ListAgents,
    RemoveAgent,
    ClusterStatus,
    ChangeMembership,
    RaftSend,
}

impl Rpc {
    pub const ALL: [Rpc; 14] = [
        Rpc::Register,
        Rpc::Heartbeat,
        Rpc::LeaseCells,
        Rpc::ReportResults,
        Rpc::Submit,
        Rpc::Get,
        Rpc::List,
        Rpc::Cancel,
        Rpc::Watch,
        Rpc::ListAgents,
        Rpc::RemoveAgent,
        Rpc::ClusterStatus,
        Rpc::ChangeMembership,
        Rpc::RaftSend,
    ];

    /// (service, method) as in `proto/accelbench.proto`.
    pub fn name(self) -> (&'static str, &'static str) {
        match self {
            Rpc::Register => ("AgentService", "Register"),
            Rpc::Heartbeat => ("AgentService", "Heartbeat"),
            Rpc::LeaseCells => ("AgentService", "LeaseCells"),
            Rpc::ReportResults => ("AgentService", "ReportResults"),
            Rpc::Submit => ("SweepService", "Submit"),
            Rpc::Get => ("SweepService", "Get"),
            Rpc::List => ("SweepService", "List"),
            Rpc::Cancel => ("SweepService", "Cancel"),
            Rpc::Watch => ("SweepService", "Watch"),
            Rpc::ListAgents => ("FleetService", "ListAgents"),
            Rpc::RemoveAgent => ("FleetService", "RemoveAgent"),
            Rpc::ClusterStatus => ("FleetService", "ClusterStatus"),
            Rpc::ChangeMembership => ("FleetService", "ChangeMembership"),
            Rpc::RaftSend => ("RaftService", "Send"),
        }
    }

    pub fn path(self) -> String {
        let (service, method) = self.name();
        format!("/accelbench.v1.{service}/{method}")
    }

    /// The RPC a request path names (every request passes here: no allocation).
    pub fn from_path(path: &str) -> Option<Rpc> {
        let (service, method) = path.strip_prefix("/accelbench.v1.")?.split_once('/')?;
        Rpc::ALL.into_iter().find(|r| r.name() == (service, method))
    }

    /// The roles allowed to call it: the one table of who may do what.
    pub fn allowed(self, role: Role) -> bool {
        use Role::*;
        match self {
            Rpc::Register | Rpc::Heartbeat | Rpc::LeaseCells | Rpc::ReportResults => role == Agent,
            // A submitter cancels only their own sweeps (checked by the handler).
            Rpc::Submit | Rpc::Cancel => matches!(role, Admin | Submitter),
            Rpc::Get | Rpc::List | Rpc::Watch | Rpc::ListAgents => matches!(role, Admin | Submitter | Reader),
            Rpc::RemoveAgent | Rpc::ChangeMembership => role == Admin,
            // Nodes ask it of each other once there are several.
            Rpc::ClusterStatus => matches!(role, Admin | Submitter | Reader | Node),
            // Raft between coordinators; raft's decoder is never reached by anyone else.
            Rpc::RaftSend => role == Node,
        }
    }
}

/// How the caller proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Certificate,
    Token,
    /// `--insecure`: nobody proved anything.
    Insecure,
}

/// The caller of an RPC, as the gate established it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub name: String,
    pub role: Role,
    pub via: Via,
}

impl Principal {
    /// The principal of a request that passed the gate. Handlers only run behind the
    /// gate, so a missing one is a wiring bug, answered as an internal error.
    pub fn of<T>(request: &tonic::Request<T>) -> Result<Principal, Status> {
        request
            .extensions()
            .get::<Principal>()
            .cloned()
            .ok_or_else(|| Status::internal("request reached a handler without passing the authentication gate"))
    }

    /// Who submitted, for `sweeps.submitted_by` (nobody is named under `--insecure`).
    pub fn submitted_by(&self) -> Option<String> {
        (self.via != Via::Insecure).then(|| self.name.clone())
    }

    /// The agent id a request may act for: under `--insecure` the one it claims; with
    /// an agent certificate its subject, and a request claiming another id is refused.
    /// `claimed` may be empty where the RPC allows it (a first registration).
    pub fn agent_id(&self, claimed: &str) -> Result<shared::ids::AgentId, Status> {
        if self.via == Via::Insecure {
            return proto::convert::parse_field("agent_id", claimed);
        }
        if !claimed.is_empty() && claimed != self.name {
            return Err(Status::permission_denied(format!(
                "agent_id {:?}: this agent's certificate names {:?}; an agent acts only in its own name",
                claimed.chars().take(80).collect::<String>(),
                self.name
            )));
        }
        self.name.parse().map_err(|e| {
            Status::permission_denied(format!("the certificate's name {:?} is not an agent id: {e}", self.name))
        })
    }
}

/// The gate's settings: plain text for everyone, or certificates and tokens.
#[derive(Clone)]
pub struct Gate {
    tokens: Option<Arc<TokenFile>>,
    insecure: bool,
}

impl Gate {
    pub fn insecure() -> Gate {
        Gate { tokens: None, insecure: true }
    }

    pub fn secure(tokens: Option<TokenFile>) -> Gate {
        Gate { tokens: tokens.map(Arc::new), insecure: false }
    }

    /// The principal allowed to make `request`, or the status that refuses it.
    pub fn admit<B>(&self, request: &http::Request<B>) -> Result<Principal, Status> {
        let path = request.uri().path();
        let rpc = Rpc::from_path(path).ok_or_else(|| Status::unimplemented(format!("no such method {path}")))?;
        let principal = self.identify(request)?;
        if principal.via != Via::Insecure && !rpc.allowed(principal.role) {
            let (service, method) = rpc.name();
            return Err(Status::permission_denied(format!(
                "{service}/{method} is not allowed for {} (role {})",
                principal.name, principal.role
            )));
        }
        Ok(principal)
    }

    fn identify<B>(&self, request: &http::Request<B>) -> Result<Principal, Status> {
        if self.insecure {
            return Ok(Principal { name: "anonymous".into(), role: Role::Admin, via: Via::Insecure });
        }
        let certs = request.extensions().get::<TlsConnectInfo<TcpConnectInfo>>().and_then(|i| i.peer_certs());
        if let Some(leaf) = certs.as_ref().and_then(|c| c.first()) {
            // rustls verified the chain against the lab CA; read what it says.
            let id = CertIdentity::from_der(leaf)
                .map_err(|e| Status::unauthenticated(format!("client certificate: {e:#}")))?;
            return Ok(Principal { name: id.name, role: id.role, via: Via::Certificate });
        }
        let Some(header) = request.headers().get(http::header::AUTHORIZATION) else {
            return Err(Status::unauthenticated(
                "no client certificate and no bearer token: connect with --cert/--key (`accelbench ca issue`) or \
                 --token (`accelbench token issue`)",
            ));
        };
        let token = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer "))
            .ok_or_else(|| Status::unauthenticated("authorization: expected `Bearer TOKEN`"))?;
        match self.tokens.as_ref().and_then(|t| t.lookup(token)) {
            Some((name, role)) => Ok(Principal { name, role, via: Via::Token }),
            // Never echo the token: logs and replies must not carry it.
            None => Err(Status::unauthenticated("bearer token not recognised (unknown or revoked)")),
        }
    }
}

/// The tower layer that runs [`Gate::admit`] before every RPC.
#[derive(Clone)]
pub struct GateLayer(pub Gate);

impl<S> tower::Layer<S> for GateLayer {
    type Service = GateService<S>;
    fn layer(&self, inner: S) -> GateService<S> {
        GateService { inner, gate: self.0.clone() }
    }
}

#[derive(Clone)]
pub struct GateService<S> {
    inner: S,
    gate: Gate,
}

type BoxFuture<T, E> = Pin<Box<dyn std::future::Future<Output = Result<T, E>> + Send>>;

impl<S, B> tower::Service<http::Request<B>> for GateService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<S::Response, S::Error>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        match self.gate.admit(&request) {
            Ok(principal) => {
                request.extensions_mut().insert(principal);
                // The clone is the ready one's twin; keep the ready one for this call.
                let clone = self.inner.clone();
                let mut ready = std::mem::replace(&mut self.inner, clone);
                Box::pin(async move { ready.call(request).await.map(stamp_time) })
            }
            Err(status) => {
                tracing::warn!(path = request.uri().path(), code = ?status.code(), reason = status.message(), "refused");
                Box::pin(std::future::ready(Ok(stamp_time(status.into_http()))))
            }
        }
    }
}

/// Every answer, a refusal included, carries the coordinator's clock
/// ([`proto::connect::SERVER_TIME_HEADER`]): the doctors compare clocks with whatever
/// their identity may call.
fn stamp_time<T>(mut response: http::Response<T>) -> http::Response<T> {
    if let Ok(v) = http::HeaderValue::from_str(&super::now_ms().to_string()) {
        response.headers_mut().insert(proto::connect::SERVER_TIME_HEADER, v);
    }
    response
}

/// One line of the tokens file: the token itself is never stored, only its hash.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TokenEntry {
    pub name: String,
    pub role: String,
    pub sha256: String,
    pub created_at: String,
}

/// The tokens file's contents (`accelbench token issue` writes it).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenList {
    #[serde(default, rename = "token")]
    pub tokens: Vec<TokenEntry>,
}

impl TokenList {
    /// Reads `path` (a missing file is an empty list); every entry is checked.
    pub fn load(path: &Path) -> anyhow::Result<TokenList> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(TokenList::default()),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let list: TokenList = toml::from_str(&text).with_context(|| format!("{}", path.display()))?;
        for (i, t) in list.tokens.iter().enumerate() {
            let role: Role = t.role.parse().with_context(|| format!("{}: token {i} ({})", path.display(), t.name))?;
            anyhow::ensure!(
                role.is_user(),
                "{}: token {i} ({}): role {role} is for certificates only",
                path.display(),
                t.name
            );
            anyhow::ensure!(
                t.sha256.len() == 64 && t.sha256.bytes().all(|b| b.is_ascii_hexdigit()),
                "{}: token {i} ({}): sha256 is not 64 hex digits",
                path.display(),
                t.name
            );
        }
        Ok(list)
    }
}

/// The tokens the gate accepts, re-read when the file changes (so a revoked token
/// stops working without a restart), checked at most once a second.
pub struct TokenFile {
    path: PathBuf,
    loaded: Mutex<Loaded>,
}

struct Loaded {
    checked: Instant,
    modified: Option<SystemTime>,
    by_hash: HashMap<String, (String, Role)>,
}

const RECHECK: Duration = Duration::from_secs(1);

impl TokenFile {
    /// Loads `path` now: a bad file stops the start with its error.
    pub fn open(path: &Path) -> anyhow::Result<TokenFile> {
        let by_hash = index(&TokenList::load(path)?);
        let loaded = Loaded { checked: Instant::now(), modified: modified(path), by_hash };
        Ok(TokenFile { path: path.to_path_buf(), loaded: Mutex::new(loaded) })
    }

    fn lookup(&self, token: &str) -> Option<(String, Role)> {
        let mut l = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        if l.checked.elapsed() >= RECHECK {
            l.checked = Instant::now();
            let now = modified(&self.path);
            if now != l.modified {
                match TokenList::load(&self.path) {
                    Ok(list) => {
                        l.by_hash = index(&list);
                        l.modified = now;
                        tracing::info!(path = %self.path.display(), n = l.by_hash.len(), "tokens reloaded");
                    }
                    // Keep the last good list: a half-written file must not lock everyone out.
                    Err(e) => {
                        tracing::error!(error = %format!("{e:#}"), "tokens file unreadable; keeping the last good one")
                    }
                }
            }
        }
        l.by_hash.get(&token_hash(token)).cloned()
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn index(list: &TokenList) -> HashMap<String, (String, Role)> {
    list.tokens
        .iter()
        .filter_map(|t| Some((t.sha256.to_ascii_lowercase(), (t.name.clone(), t.role.parse().ok()?))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rpc_of_the_proto_file_is_in_the_table() {
        let proto = include_str!("../../../proto/proto/accelbench.proto");
        let mut in_proto: Vec<String> = Vec::new();
        let mut service = "";
        for line in proto.lines().map(str::trim) {
            if let Some(rest) = line.strip_prefix("service ") {
                service = rest.split_whitespace().next().unwrap_or("");
            } else if let Some(rest) = line.strip_prefix("rpc ") {
                let method = rest.split('(').next().unwrap_or("").trim();
                in_proto.push(format!("/accelbench.v1.{service}/{method}"));
            }
        }
        let mut table: Vec<String> = Rpc::ALL.iter().map(|r| r.path()).collect();
        in_proto.sort();
        table.sort();
        assert_eq!(in_proto, table);
        for rpc in Rpc::ALL {
            assert_eq!(Rpc::from_path(&rpc.path()), Some(rpc));
        }
        for other in [
            "",
            "/",
            "/accelbench.v1.AgentService",
            "/accelbench.v1.AgentService/Register/x",
            "/v2.AgentService/Register",
        ] {
            assert_eq!(Rpc::from_path(other), None, "{other}");
        }
    }

    #[test]
    fn agents_act_only_in_their_certificate_name() {
        let p = Principal { name: "gpu-07".into(), role: Role::Agent, via: Via::Certificate };
        assert_eq!(p.agent_id("").expect("empty claim").as_str(), "gpu-07");
        assert_eq!(p.agent_id("gpu-07").expect("own name").as_str(), "gpu-07");
        assert_eq!(p.agent_id("gpu-08").unwrap_err().code(), tonic::Code::PermissionDenied);
        let open = Principal { name: "anonymous".into(), role: Role::Admin, via: Via::Insecure };
        assert_eq!(open.agent_id("gpu-08").expect("insecure trusts the claim").as_str(), "gpu-08");
        assert_eq!(open.submitted_by(), None);
    }

    #[test]
    fn tokens_are_looked_up_by_hash_and_a_bad_file_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("tokens.toml");
        let entry = TokenEntry {
            name: "alice".into(),
            role: "submitter".into(),
            sha256: token_hash("abt_secret"),
            created_at: "2026-12-06T00:00:00Z".into(),
        };
        std::fs::write(&path, toml::to_string(&TokenList { tokens: vec![entry] }).expect("toml")).expect("write");
        let file = TokenFile::open(&path).expect("tokens");
        assert_eq!(file.lookup("abt_secret"), Some(("alice".into(), Role::Submitter)));
        assert_eq!(file.lookup("abt_other"), None);
        std::fs::write(&path, "[[token]]\nname = \"x\"\nrole = \"agent\"\nsha256 = \"00\"\ncreated_at = \"\"\n")
            .expect("write");
        let e = format!("{:#}", TokenFile::open(&path).err().expect("agent tokens are refused"));
        assert!(e.contains("certificates only"), "{e}");
    }
}
