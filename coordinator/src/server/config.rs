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
        }
    }
}

impl ServeConfig {
    pub fn load(path: &std::path::Path) -> anyhow::Result<ServeConfig> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("{}", path.display()))
    }
}
