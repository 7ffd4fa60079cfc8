//! `accelbench serve` configuration: a TOML file (`--config`), every key optional, with
//! command-line flags on top. Unknown keys are an error.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServeConfig {
    /// gRPC listen address.
    pub listen: SocketAddr,
    /// HTTP listen address for `/metrics`; none by default.
    pub http_listen: Option<SocketAddr>,
    /// Where the Raft log, hard state and snapshots live.
    pub data_dir: PathBuf,
    /// The warehouse results are committed to (folder or URL).
    pub warehouse: String,
    /// Largest sweep (in cells) accepted.
    pub max_cells: usize,
    /// How often agents are asked to heartbeat.
    pub heartbeat_interval_ms: u32,
    /// Largest spec accepted, bytes.
    pub max_spec_bytes: usize,
    /// Registrations one peer address may make per minute, steady (0: no limit).
    pub registrations_per_minute_per_peer: u32,
    /// Registrations one peer address may make at once after a quiet spell.
    pub registration_burst: u32,
    /// Result streams (`ReportResults` calls) served at once, all agents together.
    pub max_report_streams: usize,
    /// Marks every stored result `origin = load-test`: for the lease load bench's
    /// scratch coordinator only, so generated results can never pass for measured ones.
    pub load_test: bool,
    /// The lab CA's certificate (PEM): client certificates must chain to it.
    pub tls_ca: Option<PathBuf>,
    /// This node's certificate and key (PEM), from `accelbench ca issue --node NAME`.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Bearer tokens (hashed), from `accelbench token issue`; re-read when it changes.
    pub tokens_file: Option<PathBuf>,
    /// Plain text and no authentication: everyone may do everything.
    pub insecure: bool,
}

/// How the listeners are secured, once the settings are checked.
pub enum Security {
    Insecure,
    Tls { ca: PathBuf, cert: PathBuf, key: PathBuf, tokens: Option<PathBuf> },
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 7070)),
            http_listen: None,
            data_dir: PathBuf::from("./accelbench-coordinator"),
            warehouse: "./accelbench-data".into(),
            max_cells: shared::spec::Limits::default().max_cells,
            heartbeat_interval_ms: 1000,
            max_spec_bytes: 1 << 20,
            registrations_per_minute_per_peer: 600,
            registration_burst: 100,
            max_report_streams: 1024,
            load_test: false,
            tls_ca: None,
            tls_cert: None,
            tls_key: None,
            tokens_file: None,
            insecure: false,
        }
    }
}

impl ServeConfig {
    pub fn load(path: &std::path::Path) -> anyhow::Result<ServeConfig> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("{}", path.display()))
    }

    /// TLS with all three files, or `--insecure` with none: anything else is an error
    /// that says what to do.
    pub fn security(&self) -> anyhow::Result<Security> {
        let tls = (&self.tls_ca, &self.tls_cert, &self.tls_key);
        match (self.insecure, tls) {
            (true, (None, None, None)) if self.tokens_file.is_none() => Ok(Security::Insecure),
            (true, _) => anyhow::bail!("--insecure goes alone: it turns TLS off, so --tls-ca, --tls-cert, --tls-key and --tokens-file do not apply"),
            (false, (Some(ca), Some(cert), Some(key))) => Ok(Security::Tls {
                ca: ca.clone(),
                cert: cert.clone(),
                key: key.clone(),
                tokens: self.tokens_file.clone(),
            }),
            (false, (None, None, None)) => anyhow::bail!(
                "no TLS settings: give --tls-ca CA.pem --tls-cert NODE.pem --tls-key NODE.key (make them with \
                 `accelbench ca init` and `accelbench ca issue --node NAME`), or --insecure for plain text on a \
                 network you trust entirely"
            ),
            (false, _) => anyhow::bail!("--tls-ca, --tls-cert and --tls-key go together"),
        }
    }
}
