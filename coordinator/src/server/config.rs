//! `accelbench serve` configuration: a TOML file (`--config`), every key optional, with
//! command-line flags on top. Unknown keys are an error.

use std::collections::BTreeMap;
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
    /// This node's Raft id in its cluster (1 for a single node).
    pub node_id: u64,
    /// Every node of the cluster, this one included, as `ID=URL` (`1=https://coord1:7070`);
    /// empty for a single node. Nodes reach each other at these URLs with their node
    /// certificates, and followers name the leader's URL to clients.
    pub peers: Vec<String>,
    /// This node joins a running cluster (`accelbench cluster add-node` on its leader
    /// adds it): it starts with no voters and learns them from the leader's snapshot.
    /// Only for a node whose data folder is new; ignored once it has a Raft store.
    pub join: bool,
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
            node_id: 1,
            peers: Vec::new(),
            join: false,
        }
    }
}

impl ServeConfig {
    /// The cluster's nodes, id → URL, checked: empty for a single node; otherwise at
    /// least three, ids non-zero and distinct, this node among them, each URL
    /// `https://` (or `http://` under `--insecure`).
    pub fn cluster(&self) -> anyhow::Result<BTreeMap<u64, String>> {
        let mut nodes = BTreeMap::new();
        for entry in &self.peers {
            let (id, url) = entry
                .split_once('=')
                .with_context(|| format!("--peers entry {entry:?}: expected ID=URL, e.g. 2=https://coord2:7070"))?;
            let id: u64 = id
                .trim()
                .parse()
                .ok()
                .filter(|id| *id > 0)
                .with_context(|| format!("--peers entry {entry:?}: the node id must be a whole number above 0"))?;
            let url = url.trim();
            let scheme_ok = match url.split_once("://").map(|(scheme, _)| scheme) {
                Some("https") => !self.insecure,
                Some("http") => self.insecure,
                _ => false,
            };
            anyhow::ensure!(
                scheme_ok,
                "--peers entry {entry:?}: expected {}://HOST:PORT",
                if self.insecure { "http" } else { "https" }
            );
            anyhow::ensure!(nodes.insert(id, url.to_owned()).is_none(), "--peers names node {id} twice");
        }
        if nodes.is_empty() {
            anyhow::ensure!(!self.join, "--join needs --peers (the running cluster's nodes and this one)");
            anyhow::ensure!(self.node_id == 1, "--node-id {} needs --peers (every node of the cluster)", self.node_id);
            return Ok(nodes);
        }
        anyhow::ensure!(
            nodes.contains_key(&self.node_id),
            "--node-id {} is not among --peers (nodes {:?}): list every node, this one included",
            self.node_id,
            nodes.keys().collect::<Vec<_>>()
        );
        anyhow::ensure!(
            nodes.len() >= 3,
            "--peers lists {} nodes: a cluster needs at least 3 (a majority must survive one loss)",
            nodes.len()
        );
        Ok(nodes)
    }

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

#[cfg(test)]
mod cluster_tests {
    use super::*;

    fn config(node_id: u64, peers: &[&str], insecure: bool) -> ServeConfig {
        ServeConfig {
            node_id,
            peers: peers.iter().map(|p| p.to_string()).collect(),
            insecure,
            ..ServeConfig::default()
        }
    }

    fn error(c: &ServeConfig) -> String {
        c.cluster().expect_err("refused").to_string()
    }

    #[test]
    fn a_cluster_lists_every_node_once_with_this_one_among_them() {
        let three = ["1=https://a:7070", "2=https://b:7070", " 3 = https://c:7070 "];
        let nodes = config(2, &three, false).cluster().expect("valid");
        assert_eq!(nodes.get(&3).map(String::as_str), Some("https://c:7070"));
        assert!(config(1, &[], false).cluster().expect("a single node").is_empty());

        assert!(error(&config(4, &three, false)).contains("--node-id 4 is not among --peers"));
        assert!(error(&config(1, &three[..2], false)).contains("a cluster needs at least 3"));
        assert!(error(&config(1, &["1=https://a:1", "1=https://b:1", "2=https://c:1"], false)).contains("node 1 twice"));
        assert!(error(&config(1, &["0=https://a:1"], false)).contains("above 0"));
        assert!(error(&config(1, &["https://a:1"], false)).contains("expected ID=URL"));
        assert!(error(&config(1, &["1=http://a:1"], false)).contains("expected https://"));
        assert!(error(&config(1, &["1=https://a:1"], true)).contains("expected http://"));
        assert!(error(&config(2, &[], false)).contains("needs --peers"));
    }
}
