//! rustls for the HTTP listeners (`/metrics` of the agent and the coordinator): the
//! server presents its certificate from the lab CA and requires a client certificate
//! the same CA signed, with a role allowed to read (admin, submitter, reader or node;
//! an agent's certificate does not read other machines' metrics). Prometheus presents
//! one through its scrape config's `tls_config` (docs/OPERATIONS.md).
//!
//! Handshakes run in their own tasks with a time limit, so a client that stalls one
//! never holds up the others.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use proto::identity::{CertIdentity, Role};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{self, RootCertStore, ServerConfig};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// The files a TLS listener needs: the lab CA and this machine's certificate and key.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub ca: std::path::PathBuf,
    pub cert: std::path::PathBuf,
    pub key: std::path::PathBuf,
}

/// How long a client may take to finish its handshake.
const HANDSHAKE_LIMIT: Duration = Duration::from_secs(10);

/// A rustls server config that requires a client certificate signed by the lab CA.
pub fn server_config(files: &TlsFiles) -> anyhow::Result<Arc<ServerConfig>> {
    proto::connect::install_crypto();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    for ca in read_certs(&files.ca)? {
        roots.add(ca).with_context(|| format!("{}: not a usable CA certificate", files.ca.display()))?;
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .context("client certificate verifier")?;
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| anyhow::anyhow!("{}: not a PEM private key: {e}", files.key.display()))?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS versions")?
        .with_client_cert_verifier(verifier)
        .with_single_cert(read_certs(&files.cert)?, key)
        .with_context(|| {
            format!("{} and {} do not make a usable identity", files.cert.display(), files.key.display())
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn read_certs(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| anyhow::anyhow!("{}: not a PEM certificate file: {e}", path.display()))?;
    anyhow::ensure!(!certs.is_empty(), "{}: no certificate in it", path.display());
    Ok(certs)
}

/// Whether a verified client certificate may read an HTTP listener.
fn may_read(cert: &CertificateDer<'_>) -> Result<CertIdentity, String> {
    let id = CertIdentity::from_der(cert).map_err(|e| format!("{e:#}"))?;
    match id.role {
        Role::Admin | Role::Submitter | Role::Reader | Role::Node => Ok(id),
        Role::Agent => Err(format!("{} has role agent, which does not read this listener", id.name)),
    }
}

/// A TCP listener that hands axum only connections whose TLS handshake succeeded with
/// a client certificate allowed to read.
pub struct TlsListener {
    accepted: tokio::sync::mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    addr: SocketAddr,
    _acceptor_task: AbortOnDrop,
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl TlsListener {
    pub fn new(listener: TcpListener, config: Arc<ServerConfig>) -> std::io::Result<TlsListener> {
        let addr = listener.local_addr()?;
        let (tx, accepted) = tokio::sync::mpsc::channel(64);
        let acceptor = TlsAcceptor::from(config);
        let task = tokio::spawn(async move {
            loop {
                let (tcp, peer) = match listener.accept().await {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!(error = %e, "accepting a connection");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_LIMIT, acceptor.accept(tcp)).await {
                        Ok(Ok(tls)) => {
                            let leaf = tls.get_ref().1.peer_certificates().and_then(|c| c.first());
                            match leaf.map(may_read) {
                                Some(Ok(_)) => {
                                    let _ = tx.send((tls, peer)).await;
                                }
                                Some(Err(why)) => tracing::warn!(%peer, reason = why, "http client refused"),
                                None => tracing::warn!(%peer, "http client without a certificate refused"),
                            }
                        }
                        Ok(Err(e)) => tracing::warn!(%peer, error = %e, "tls handshake failed"),
                        Err(_) => tracing::warn!(%peer, "tls handshake timed out"),
                    }
                });
            }
        });
        Ok(TlsListener { accepted, addr, _acceptor_task: AbortOnDrop(task) })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.accepted.recv().await {
            Some(c) => c,
            // The acceptor task only ends when this listener is dropped.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.addr)
    }
}
