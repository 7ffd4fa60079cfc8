//! `accelbench-agent doctor`: what an agent needs before it can work, checked one by one,
//! each with what to do when it is not right. Nothing here changes anything but a probe
//! file it writes and removes in the spool folder.

use std::path::Path;
use std::time::{Duration, Instant};

use proto::v1::fleet_service_client::FleetServiceClient;
use proto::v1::ListAgentsRequest;
use shared::fingerprint::{Fingerprint, ProbeStatus};
use tonic::transport::Channel;

/// Below this much free space the spool warns; below [`SPOOL_FAIL_BYTES`] it fails.
const SPOOL_WARN_BYTES: u64 = 1 << 30;
const SPOOL_FAIL_BYTES: u64 = 64 << 20;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    Warn,
    Fail,
}

/// One check's finding, and what to do about it unless it is fine.
#[derive(Debug, Clone)]
pub struct Check {
    pub what: String,
    pub verdict: Verdict,
    pub detail: String,
    pub fix: Option<String>,
}

impl Check {
    fn new(what: impl Into<String>, verdict: Verdict, detail: impl Into<String>, fix: Option<&str>) -> Check {
        Check { what: what.into(), verdict, detail: detail.into(), fix: fix.map(str::to_string) }
    }
}

/// Every check, in the order an operator would fix them.
pub async fn run(coordinator: Option<&str>, spool: &Path, fp: &Fingerprint) -> Vec<Check> {
    let mut checks = vec![spool_check(spool)];
    checks.push(match crate::calibrate::cached_for(spool, fp) {
        true => Check::new("calibrations", Verdict::Ok, "cached for this machine and version", None),
        false => Check::new(
            "calibrations",
            Verdict::Warn,
            "none cached: the first start measures them (seconds per device)",
            Some("nothing to do; `accelbench-agent run` measures and keeps them"),
        ),
    });
    for p in &fp.probes {
        let (verdict, fix) = match p.status {
            ProbeStatus::Error => {
                (Verdict::Warn, Some("the device is not used until this is fixed (driver, permissions)"))
            }
            _ => (Verdict::Ok, None),
        };
        checks.push(Check::new(format!("probe {}", p.probe), verdict, p.reason.clone(), fix));
    }
    checks.push(coordinator_check(coordinator).await);
    checks
}

fn spool_check(dir: &Path) -> Check {
    let what = format!("spool {}", dir.display());
    let probe = dir.join(".doctor-probe");
    let writable = std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(&probe, b"probe"))
        .and_then(|()| std::fs::File::open(&probe)?.sync_all())
        .and_then(|()| std::fs::remove_file(&probe));
    if let Err(e) = writable {
        return Check::new(
            what,
            Verdict::Fail,
            format!("not writable: {e}"),
            Some("give the agent's user this folder, or pass --spool"),
        );
    }
    let waiting = crate::spool::Spool::open(dir).map(|s| s.depth()).unwrap_or(0);
    let Some(free) = free_bytes(dir) else {
        return Check::new(
            what,
            Verdict::Warn,
            format!("writable, {waiting} results waiting; free space unknown"),
            None,
        );
    };
    let detail = format!("writable, {:.1} GiB free, {waiting} results waiting", free as f64 / (1u64 << 30) as f64);
    match free {
        f if f < SPOOL_FAIL_BYTES => {
            Check::new(what, Verdict::Fail, detail, Some("free disk space: results cannot be kept"))
        }
        f if f < SPOOL_WARN_BYTES => {
            Check::new(what, Verdict::Warn, detail, Some("free disk space before a long outage fills it"))
        }
        _ => Check::new(what, Verdict::Ok, detail, None),
    }
}

/// Free space of the file system holding `dir`: the disk whose mount point is the
/// longest prefix of its path.
fn free_bytes(dir: &Path) -> Option<u64> {
    let dir = dir.canonicalize().ok()?;
    let disks = sysinfo::Disks::new_with_refreshed_list();
    disks
        .list()
        .iter()
        .filter(|d| dir.starts_with(d.mount_point()))
        .max_by_key(|d| d.mount_point().as_os_str().len())
        .map(|d| d.available_space())
}

async fn coordinator_check(url: Option<&str>) -> Check {
    let Some(url) = url else {
        return Check::new(
            "coordinator",
            Verdict::Warn,
            "not checked: no --coordinator",
            Some("pass --coordinator URL or set ACCELBENCH_COORDINATOR"),
        );
    };
    let what = format!("coordinator {url}");
    let started = Instant::now();
    let reached = async {
        let channel = Channel::from_shared(url.to_string())?
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(CONNECT_TIMEOUT)
            .connect()
            .await?;
        let agents = FleetServiceClient::new(channel).list_agents(ListAgentsRequest {}).await?.into_inner().agents;
        anyhow::Ok(agents.len())
    }
    .await;
    match reached {
        Ok(n) => Check::new(
            what,
            Verdict::Ok,
            format!("answered in {} ms; {n} agents registered", started.elapsed().as_millis()),
            None,
        ),
        Err(e) => Check::new(
            what,
            Verdict::Fail,
            format!("cannot reach it: {e:#}"),
            Some("check the URL (http://host:7070), the coordinator's --listen address and the firewall"),
        ),
    }
}

/// The checks as lines for people: verdict, what, detail, and the fix on the next line.
pub fn render(checks: &[Check]) -> String {
    let mut out = String::new();
    for c in checks {
        let verdict = match c.verdict {
            Verdict::Ok => "ok  ",
            Verdict::Warn => "warn",
            Verdict::Fail => "FAIL",
        };
        out.push_str(&format!("{verdict}  {}: {}\n", c.what, c.detail));
        if let Some(fix) = &c.fix {
            out.push_str(&format!("      → {fix}\n"));
        }
    }
    out
}
