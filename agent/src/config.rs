//! `accelbench-agent run --config FILE` (and `doctor --config FILE`): every setting of
//! `run` in a TOML file, as a service manager would pass it; flags and environment
//! variables override the file, and unknown keys are an error.
//!
//! ```toml
//! # one URL, or a cluster's: "https://c1.lab:7070,https://c2.lab:7070,https://c3.lab:7070"
//! coordinator = "https://coordinator.lab:7070"
//! ca = "/etc/accelbench/ca.pem"
//! cert = "/etc/accelbench/agent.pem"
//! key = "/etc/accelbench/agent.key"
//! spool = "/var/lib/accelbench-agent/spool"
//! labels = { rack = "b3" }
//! cpu_threads = 8
//! metrics_listen = "127.0.0.1:9465"
//! no_calibrate = false
//! # external engines: the command that starts each one's runner (docs/RUNNERS.md)
//! runners = { torch = ["/opt/torch-env/bin/python", "/opt/accelbench/ops/runners/torch_runner.py"] }
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;

/// The file's settings; every key optional.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    pub coordinator: Option<String>,
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub spool: Option<PathBuf>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    pub cpu_threads: Option<u32>,
    pub metrics_listen: Option<SocketAddr>,
    #[serde(default)]
    pub no_calibrate: bool,
    /// Engine → the command that starts its runner, program first.
    #[serde(default)]
    pub runners: BTreeMap<String, Vec<String>>,
}

/// Where the spool is when neither a flag nor the file says.
pub const DEFAULT_SPOOL: &str = "./accelbench-spool";

impl AgentConfig {
    /// Reads `path`, or the empty config without one; errors name the file and key.
    pub fn load(path: Option<&Path>) -> anyhow::Result<AgentConfig> {
        let Some(path) = path else { return Ok(AgentConfig::default()) };
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let config: AgentConfig = toml::from_str(&text).with_context(|| path.display().to_string())?;
        crate::runners::check_config(&config.runners).with_context(|| path.display().to_string())?;
        if let Some(n) = config.cpu_threads {
            anyhow::ensure!((1..=4096).contains(&n), "{}: cpu_threads = {n}: expected 1 to 4096", path.display());
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_file_reads_and_a_wrong_key_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("agent.toml");
        let doc = include_str!("config.rs").lines().filter_map(|l| l.strip_prefix("//! ")).collect::<Vec<_>>();
        let example =
            doc.iter().skip_while(|l| !l.starts_with("```toml")).skip(1).take_while(|l| !l.starts_with("```"));
        std::fs::write(&path, example.cloned().collect::<Vec<_>>().join("\n")).expect("write");
        let c = AgentConfig::load(Some(&path)).expect("the documented example reads");
        assert_eq!(c.coordinator.as_deref(), Some("https://coordinator.lab:7070"));
        assert_eq!(c.labels.get("rack").map(String::as_str), Some("b3"));
        assert_eq!((c.cpu_threads, c.no_calibrate), (Some(8), false));
        assert_eq!(c.runners["torch"][1], "/opt/accelbench/ops/runners/torch_runner.py");
        std::fs::write(&path, "runners = { tensorflow = [\"tf\"] }\n").expect("write");
        let e = format!("{:#}", AgentConfig::load(Some(&path)).unwrap_err());
        assert!(e.contains("agent.toml") && e.contains("runners.tensorflow"), "{e}");
        std::fs::write(&path, "coordinater = \"x\"\n").expect("write");
        let e = format!("{:#}", AgentConfig::load(Some(&path)).unwrap_err());
        assert!(e.contains("coordinater") && e.contains("agent.toml"), "{e}");
        std::fs::write(&path, "cpu_threads = 0\n").expect("write");
        assert!(format!("{:#}", AgentConfig::load(Some(&path)).unwrap_err()).contains("1 to 4096"));
        assert_eq!(AgentConfig::load(None).expect("no file"), AgentConfig::default());
    }
}
