//! Reaching a coordinator: the one place clients (the CLI, agents, tests) turn a URL and
//! credentials into a gRPC channel.
//!
//! `https://` is mutual TLS against the lab CA (`--ca`), with a client certificate
//! (`--cert`, `--key`) or a bearer token (`--token`) naming the caller. `http://` is
//! plain text and only reaches a coordinator started with `--insecure`; credentials are
//! refused there, so a token is never sent in the clear.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context};
use tonic::metadata::{AsciiMetadataValue, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::service::Interceptor;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

/// The response header carrying the coordinator's clock (Unix ms) on every answer.
pub const SERVER_TIME_HEADER: &str = "x-accelbench-server-time-ms";

/// The response header a follower adds when it refuses a call that needs the leader:
/// the leader's URL, for clients to move there.
pub const LEADER_HEADER: &str = "x-accelbench-leader";

/// The response header a node adds when it refuses a call because its cluster is
/// electing a leader: the cluster is alive and will answer soon, unlike a dead node.
pub const ELECTION_HEADER: &str = "x-accelbench-election";

/// How a client proves who it is. Empty: plain text (`http://` only).
#[derive(Debug, Clone, Default)]
pub struct ClientAuth {
    /// The lab CA's certificate (PEM), which signed the coordinator's.
    pub ca: Option<PathBuf>,
    /// This client's certificate and key (PEM), from `accelbench ca issue`.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// A bearer token from `accelbench token issue` (instead of a certificate).
    pub token: Option<String>,
}

impl ClientAuth {
    fn has_credentials(&self) -> bool {
        self.ca.is_some() || self.cert.is_some() || self.key.is_some() || self.token.is_some()
    }
}

/// A channel whose requests carry the caller's bearer token, if it has one, and
/// whatever else `I` adds (the trace context).
pub type AuthedChannel<I> = InterceptedService<Channel, Authed<I>>;

/// Makes ring rustls's crypto for the whole process, once. Dependencies turn on both of
/// rustls's providers (ring through tonic, aws-lc-rs through the object-store client),
/// and then rustls cannot pick one itself: every TLS user here calls this first.
pub fn install_crypto() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // An error means a provider is installed already, which is all we need.
        let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
    });
}

/// How often a client pings a coordinator over HTTP/2, busy or idle, and how long it
/// waits for the answer before it calls the connection dead. Without pings a connection
/// into a blackhole (a partitioned or frozen node: packets dropped, nothing reset) hangs
/// every call on it until TCP gives up, minutes later; the cluster fault runs saw agents
/// stuck on an isolated leader for the whole partition. With them such a call fails
/// within about 2 s and the client moves to another node.
pub const KEEPALIVE_EVERY: std::time::Duration = std::time::Duration::from_secs(1);
pub const KEEPALIVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// The endpoint for `url` with TLS configured from `auth`; an error names the flag that
/// is missing or the file that could not be read. Connecting (TCP and the TLS handshake)
/// gives up after [`CONNECT_EACH`]; a connection that misses a keepalive ping is dropped.
pub fn endpoint(url: &str, auth: &ClientAuth) -> anyhow::Result<Endpoint> {
    install_crypto();
    let endpoint = Channel::from_shared(url.to_string())
        .with_context(|| format!("coordinator url {url}"))?
        .connect_timeout(CONNECT_EACH)
        .http2_keep_alive_interval(KEEPALIVE_EVERY)
        .keep_alive_timeout(KEEPALIVE_TIMEOUT)
        .keep_alive_while_idle(true);
    match endpoint.uri().scheme_str() {
        Some("https") => {}
        Some("http") if auth.has_credentials() => bail!(
            "coordinator url {url} is plain http:// but credentials were given (--ca, --cert, --key or --token): \
             use https:// (credentials are never sent in the clear)"
        ),
        Some("http") => return Ok(endpoint),
        _ => bail!(
            "coordinator url {url}: expected https://HOST:PORT (or http:// for a coordinator run with --insecure)"
        ),
    }
    let ca = auth.ca.as_ref().with_context(|| {
        format!("coordinator url {url} is https://: --ca FILE is needed (the lab CA's certificate, ca.pem from `accelbench ca init`)")
    })?;
    // The handshake's own limit: a channel reconnects by itself after its connection
    // died, and [`open`]'s limit covers only the first connection. Without it a call
    // after a node went into a blackhole waited at the handshake until the partition
    // healed (the cluster fault runs saw an agent stuck for the whole isolation).
    let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read(ca)?)).timeout(CONNECT_EACH);
    match (&auth.cert, &auth.key) {
        (Some(cert), Some(key)) => tls = tls.identity(Identity::from_pem(read(cert)?, read(key)?)),
        (None, None) => {}
        _ => bail!("--cert and --key go together (the certificate and its key from `accelbench ca issue`)"),
    }
    endpoint.tls_config(tls).with_context(|| format!("TLS settings for {url}"))
}

/// The leader's URL a follower named when it refused `status`, if it named one.
pub fn leader_hint(status: &tonic::Status) -> Option<&str> {
    status.metadata().get(LEADER_HEADER).and_then(|v| v.to_str().ok()).filter(|u| !u.is_empty())
}

/// The coordinators a client may talk to: one URL, or the nodes of a Raft cluster
/// (`--coordinator https://a:7070,https://b:7070,https://c:7070`). Only the leader takes
/// writes; this remembers which node answered last, moves to the leader a follower
/// names, and otherwise tries the next URL in turn.
#[derive(Debug)]
pub struct Coordinators {
    urls: Vec<String>,
    current: std::sync::Mutex<String>,
}

/// Where [`Coordinators::after`] moved the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Moved {
    /// To the leader the refusing node named: worth trying at once.
    ToLeader(String),
    /// To the next URL of the list (the same one when there is only one).
    ToNext(String),
    /// To the next URL too, after a node said its cluster is electing a leader: worth
    /// trying again soon rather than after a growing backoff.
    InElection(String),
}

/// How long a node may take to accept a connection (TCP and TLS) before the next is tried.
const CONNECT_EACH: std::time::Duration = std::time::Duration::from_secs(5);

impl Coordinators {
    /// Comma-separated URLs (spaces around them are ignored); an error names the entry.
    pub fn parse(list: &str) -> anyhow::Result<Coordinators> {
        let mut urls: Vec<String> = Vec::new();
        for entry in list.split(',').map(str::trim) {
            if entry.is_empty() {
                bail!("coordinator list {list:?}: an empty entry (expected URL,URL,…)");
            }
            let uri: tonic::transport::Uri =
                entry.parse().with_context(|| format!("coordinator url {entry:?} in {list:?}"))?;
            if !matches!(uri.scheme_str(), Some("https" | "http")) || uri.host().is_none() {
                bail!("coordinator url {entry:?}: expected https://HOST:PORT (or http:// for a coordinator run with --insecure)");
            }
            if !urls.iter().any(|u| u == entry) {
                urls.push(entry.to_string());
            }
        }
        let first = urls[0].clone();
        Ok(Coordinators { urls, current: std::sync::Mutex::new(first) })
    }

    /// The URLs as given, without repeats.
    pub fn urls(&self) -> &[String] {
        &self.urls
    }

    /// The URL the next connection goes to.
    pub fn current(&self) -> String {
        self.lock().clone()
    }

    /// Moves on after `error` ended the work with [`Self::current`]: to the leader it
    /// names, or else to the next URL of the list.
    pub fn after(&self, error: &anyhow::Error) -> Moved {
        let status = error.chain().find_map(|e| e.downcast_ref::<tonic::Status>());
        let mut current = self.lock();
        let next = || {
            let at = self.urls.iter().position(|u| *u == *current);
            self.urls[at.map_or(0, |i| (i + 1) % self.urls.len())].clone()
        };
        let electing = status.is_some_and(|s| s.metadata().contains_key(ELECTION_HEADER));
        let moved = match status.and_then(leader_hint) {
            // Already there (a heartbeat moved first): stay.
            Some(leader) => Moved::ToLeader(leader.to_string()),
            None if electing => Moved::InElection(next()),
            None => Moved::ToNext(next()),
        };
        let (Moved::ToLeader(url) | Moved::ToNext(url) | Moved::InElection(url)) = &moved;
        *current = url.clone();
        moved
    }

    /// Connects to the current URL or, failing that, to each other in turn; the one that
    /// connects becomes current. The error names every URL tried and why it failed.
    pub async fn connect<I: Interceptor>(&self, auth: &ClientAuth, then: I) -> anyhow::Result<AuthedChannel<I>> {
        let start = self.current();
        let at = self.urls.iter().position(|u| *u == start);
        let order: Vec<&String> = match at {
            Some(i) => self.urls[i..].iter().chain(&self.urls[..i]).collect(),
            // A leader a follower named, not in the list: it first, then the list.
            None => std::iter::once(&start).chain(&self.urls).collect(),
        };
        let mut failures = Vec::new();
        for url in order {
            match open(url, auth).await {
                Ok(channel) => {
                    *self.lock() = url.clone();
                    return with_token(channel, auth, then);
                }
                Err(e) => failures.push(format!("{url}: {e}")),
            }
        }
        match failures.as_slice() {
            [one] => bail!("connecting to the coordinator at {one}"),
            all => bail!("connecting to any of {} coordinators: {}", all.len(), all.join("; ")),
        }
    }

    /// [`Self::connect`], then, when several URLs were given, to the leader the answering
    /// node names (its `ClusterStatus`), so that writes land on the leader. A node that
    /// cannot say (an election, a refusal) leaves the first connection in place: a write
    /// it refuses names the leader in its error.
    pub async fn connect_leader<I: Interceptor + Clone>(
        &self,
        auth: &ClientAuth,
        then: I,
    ) -> anyhow::Result<AuthedChannel<I>> {
        let channel = self.connect(auth, then.clone()).await?;
        if self.urls.len() < 2 {
            return Ok(channel);
        }
        let mut request = tonic::Request::new(crate::v1::ClusterStatusRequest {});
        request.set_timeout(CONNECT_EACH);
        let leader = match crate::v1::fleet_service_client::FleetServiceClient::new(channel.clone())
            .cluster_status(request)
            .await
        {
            Ok(answer) => answer.into_inner().leader_url,
            Err(_) => return Ok(channel),
        };
        if leader.is_empty() || leader == self.current() {
            return Ok(channel);
        }
        let led = Coordinators::parse(&leader)?;
        match led.connect(auth, then).await {
            Ok(to_leader) => {
                *self.lock() = leader;
                Ok(to_leader)
            }
            Err(_) => Ok(channel),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, String> {
        // Only a String assignment happens under the lock: a poisoned one is still whole.
        self.current.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Connects to `url`: [`endpoint`], then the bearer token and `then` on every request.
pub async fn connect<I: Interceptor>(url: &str, auth: &ClientAuth, then: I) -> anyhow::Result<AuthedChannel<I>> {
    let channel = open(url, auth).await.map_err(|e| anyhow::anyhow!("connecting to the coordinator at {url}: {e}"))?;
    with_token(channel, auth, then)
}

/// Opens a channel to `url` within [`CONNECT_EACH`], TLS handshake included: tonic's
/// connect timeout covers only the TCP connect, and a node behind a blackhole accepts
/// nothing past it (the cluster fault runs saw the CLI wait there for good).
async fn open(url: &str, auth: &ClientAuth) -> Result<Channel, String> {
    match tokio::time::timeout(CONNECT_EACH, endpoint(url, auth).map_err(|e| format!("{e:#}"))?.connect()).await {
        Ok(Ok(channel)) => Ok(channel),
        Ok(Err(e)) => Err(error_chain(&e)),
        Err(_) => Err(format!("no connection within {} s (TCP and TLS)", CONNECT_EACH.as_secs())),
    }
}

/// `channel` with the bearer token of `auth` and `then` on every request.
pub fn with_token<I: Interceptor>(channel: Channel, auth: &ClientAuth, then: I) -> anyhow::Result<AuthedChannel<I>> {
    Ok(InterceptedService::new(channel, Authed { bearer: Bearer::new(auth.token.as_deref())?, then }))
}

/// Adds nothing: for callers that carry no trace context.
pub fn untraced(request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
    Ok(request)
}

/// The bearer token, then another interceptor.
#[derive(Clone)]
pub struct Authed<I> {
    bearer: Bearer,
    then: I,
}

impl<I: Interceptor> Interceptor for Authed<I> {
    fn call(&mut self, request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        let request = self.bearer.call(request)?;
        self.then.call(request)
    }
}

/// A transport error with its causes: tonic's own message is only "transport error",
/// and the TLS reason (unknown CA, wrong name, expired) is further down.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn read(path: &PathBuf) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

/// Adds `authorization: Bearer TOKEN` to every request when a token was given.
#[derive(Clone)]
pub struct Bearer(Option<Arc<AsciiMetadataValue>>);

impl Bearer {
    pub fn new(token: Option<&str>) -> anyhow::Result<Bearer> {
        let value = match token {
            None => None,
            Some(t) => {
                let t = t.trim();
                let v: AsciiMetadataValue = MetadataValue::try_from(format!("Bearer {t}"))
                    .map_err(|_| anyhow::anyhow!("--token: not a token (unprintable characters)"))?;
                Some(Arc::new(v))
            }
        };
        Ok(Bearer(value))
    }
}

impl Interceptor for Bearer {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(v) = &self.0 {
            request.metadata_mut().insert("authorization", AsciiMetadataValue::clone(v));
        }
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_refused_over_plain_text() {
        let auth = ClientAuth { token: Some("t".into()), ..Default::default() };
        let e = endpoint("http://127.0.0.1:7070", &auth).unwrap_err().to_string();
        assert!(e.contains("never sent in the clear"), "{e}");
        assert!(endpoint("http://127.0.0.1:7070", &ClientAuth::default()).is_ok());
    }

    #[test]
    fn https_needs_the_lab_ca_and_a_whole_identity() {
        let e = endpoint("https://127.0.0.1:7070", &ClientAuth::default()).unwrap_err().to_string();
        assert!(e.contains("--ca FILE"), "{e}");
        let e = endpoint("ftp://x:1", &ClientAuth::default()).unwrap_err().to_string();
        assert!(e.contains("expected https://"), "{e}");
        let dir = std::env::temp_dir();
        let auth = ClientAuth { ca: Some(dir.join("no-such-ca.pem")), ..Default::default() };
        let e = format!("{:#}", endpoint("https://127.0.0.1:7070", &auth).unwrap_err());
        assert!(e.contains("no-such-ca.pem"), "{e}");
    }

    #[test]
    fn a_coordinator_list_names_its_bad_entry() {
        let c = Coordinators::parse(" https://a:1, https://b:2 ,https://a:1").unwrap();
        assert_eq!(c.urls(), ["https://a:1", "https://b:2"], "trimmed, without repeats");
        assert_eq!(c.current(), "https://a:1");
        for (bad, says) in [
            ("https://a:1,,https://b:2", "empty entry"),
            ("", "empty entry"),
            ("https://a:1,ftp://b:2", "\"ftp://b:2\""),
            ("https://a:1,b:2", "\"b:2\""),
            ("https://a:1,https://exa mple:2", "exa mple"),
        ] {
            let e = format!("{:#}", Coordinators::parse(bad).unwrap_err());
            assert!(e.contains(says), "{bad:?}: {e}");
        }
    }

    #[test]
    fn a_client_moves_to_the_named_leader_else_to_the_next_url() {
        let c = Coordinators::parse("https://a:1,https://b:2,https://c:3").unwrap();
        let refused = |leader: Option<&str>| {
            let mut status = tonic::Status::unavailable("not the leader");
            if let Some(l) = leader {
                status.metadata_mut().insert(LEADER_HEADER, l.parse().unwrap());
            }
            anyhow::Error::new(status).context("leasing")
        };
        assert_eq!(c.after(&refused(Some("https://c:3"))), Moved::ToLeader("https://c:3".into()));
        assert_eq!(c.current(), "https://c:3");
        // No leader named (an election, a dead node): the next URL, wrapping around.
        assert_eq!(c.after(&refused(None)), Moved::ToNext("https://a:1".into()));
        assert_eq!(c.after(&anyhow::anyhow!("connection refused")), Moved::ToNext("https://b:2".into()));
        // Named while already there (another task of the client moved first): stay.
        assert_eq!(c.after(&refused(Some("https://b:2"))), Moved::ToLeader("https://b:2".into()));
        assert_eq!(c.after(&refused(None)), Moved::ToNext("https://c:3".into()));
        // A leader outside the list is followed; after it, the list starts over.
        assert_eq!(c.after(&refused(Some("https://d:4"))), Moved::ToLeader("https://d:4".into()));
        assert_eq!(c.after(&refused(None)), Moved::ToNext("https://a:1".into()));
        // A node that says an election is under way: the next URL, marked as such.
        let mut electing = tonic::Status::unavailable("no leader yet");
        electing.metadata_mut().insert(ELECTION_HEADER, "1".parse().unwrap());
        assert_eq!(c.after(&anyhow::Error::new(electing)), Moved::InElection("https://b:2".into()));
    }

    #[tokio::test]
    async fn connecting_tries_each_url_and_names_every_failure() {
        // Two ports nothing listens on (bound, then closed).
        let dead: Vec<String> = (0..2)
            .map(|_| {
                let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
                format!("http://{}", l.local_addr().unwrap())
            })
            .collect();
        let c = Coordinators::parse(&dead.join(",")).unwrap();
        let e = c.connect(&ClientAuth::default(), untraced).await.unwrap_err().to_string();
        assert!(e.contains("any of 2 coordinators") && e.contains(&dead[0]) && e.contains(&dead[1]), "{e}");
        // One that listens is found whatever its place in the list.
        let live = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let live_url = format!("http://{}", live.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((socket, _)) = live.accept().await {
                std::mem::forget(socket);
            }
        });
        let c = Coordinators::parse(&format!("{},{live_url}", dead[0])).unwrap();
        c.connect(&ClientAuth::default(), untraced).await.expect("the live one connects");
        assert_eq!(c.current(), live_url);
    }

    #[test]
    fn a_token_with_a_newline_is_refused_not_sent() {
        assert!(Bearer::new(Some("abc\u{7}def")).is_err());
        assert!(Bearer::new(Some("abc\n")).is_ok(), "surrounding whitespace from a file is trimmed");
    }
}
