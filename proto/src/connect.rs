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

/// The endpoint for `url` with TLS configured from `auth`; an error names the flag that
/// is missing or the file that could not be read.
pub fn endpoint(url: &str, auth: &ClientAuth) -> anyhow::Result<Endpoint> {
    install_crypto();
    let endpoint = Channel::from_shared(url.to_string()).with_context(|| format!("coordinator url {url}"))?;
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
    let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read(ca)?));
    match (&auth.cert, &auth.key) {
        (Some(cert), Some(key)) => tls = tls.identity(Identity::from_pem(read(cert)?, read(key)?)),
        (None, None) => {}
        _ => bail!("--cert and --key go together (the certificate and its key from `accelbench ca issue`)"),
    }
    endpoint.tls_config(tls).with_context(|| format!("TLS settings for {url}"))
}

/// Connects to `url`: [`endpoint`], then the bearer token and `then` on every request.
pub async fn connect<I: Interceptor>(url: &str, auth: &ClientAuth, then: I) -> anyhow::Result<AuthedChannel<I>> {
    let channel = endpoint(url, auth)?
        .connect()
        .await
        .map_err(|e| anyhow::anyhow!("connecting to the coordinator at {url}: {}", error_chain(&e)))?;
    with_token(channel, auth, then)
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
    fn a_token_with_a_newline_is_refused_not_sent() {
        assert!(Bearer::new(Some("abc\u{7}def")).is_err());
        assert!(Bearer::new(Some("abc\n")).is_ok(), "surrounding whitespace from a file is trimmed");
    }
}
