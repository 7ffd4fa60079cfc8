//! `accelbench-agent doctor`: what an agent needs before it can work (spool folder,
//! calibrations, device probes, the coordinator and the clock against its clock), checked one by one,
//! each with what to do when it is not right. Nothing here changes anything but a probe
//! file it writes and removes in the spool folder.

use std::path::Path;
use std::time::{Duration, Instant};

use proto::connect::ClientAuth;
use proto::v1::fleet_service_client::FleetServiceClient;
use proto::v1::ListAgentsRequest;
use shared::fingerprint::{Fingerprint, ProbeStatus};

/// Below this much free space a folder warns; below [`FOLDER_FAIL_BYTES`] it fails.
const FOLDER_WARN_BYTES: u64 = 1 << 30;
const FOLDER_FAIL_BYTES: u64 = 64 << 20;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Clock skew beyond this warns: result times are checked against the coordinator's
/// clock (an hour ahead is refused), and the warehouse orders runs by them.
const SKEW_WARN_MS: i64 = 2_000;

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
    pub fn new(what: impl Into<String>, verdict: Verdict, detail: impl Into<String>, fix: Option<&str>) -> Check {
        Check { what: what.into(), verdict, detail: detail.into(), fix: fix.map(str::to_string) }
    }
}

/// Every check, in the order an operator would fix them.
pub async fn run(
    coordinator: Option<&str>,
    auth: &ClientAuth,
    spool: &Path,
    fp: &Fingerprint,
    runners: &std::collections::BTreeMap<String, Vec<String>>,
) -> Vec<Check> {
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
    checks.extend(runner_checks(runners));
    for (what, path) in [("CA certificate", &auth.ca), ("agent certificate", &auth.cert)] {
        if let Some(p) = path {
            checks.push(certificate_check(what, p));
        }
    }
    checks.extend(coordinator_checks(coordinator, auth).await);
    checks
}

/// One check per configured runner: present (it said hello) or why not.
fn runner_checks(runners: &std::collections::BTreeMap<String, Vec<String>>) -> Vec<Check> {
    crate::runners::discover(runners)
        .into_iter()
        .map(|(engine, hello)| match hello {
            Ok(h) => {
                let devices: Vec<&str> = h.devices.iter().map(|d| d.device.as_str()).collect();
                let detail = format!("{} {} on {}", h.runner, h.engine_version, devices.join(", "));
                Check::new(format!("runner {engine}"), Verdict::Ok, detail, None)
            }
            Err(why) => Check::new(
                format!("runner {engine}"),
                Verdict::Warn,
                why,
                Some("its cells are answered unsupported until it says hello (docs/RUNNERS.md; ops/runners/install-*.sh)"),
            ),
        })
        .collect()
}

fn spool_check(dir: &Path) -> Check {
    let mut check = folder_check(&format!("spool {}", dir.display()), dir, "--spool");
    if check.detail.starts_with("writable") {
        let waiting = crate::spool::Spool::open(dir).map(|s| s.depth()).unwrap_or(0);
        check.detail.push_str(&format!(", {waiting} results waiting"));
    }
    check
}

/// A folder a process keeps data in: created if missing, writable (a probe file written,
/// fsynced and removed), and how much space is free on its file system. `flag` is the
/// option that picks another folder.
pub fn folder_check(what: &str, dir: &Path, flag: &str) -> Check {
    let probe = dir.join(".doctor-probe");
    let writable = std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(&probe, b"probe"))
        .and_then(|()| std::fs::File::open(&probe)?.sync_all())
        .and_then(|()| std::fs::remove_file(&probe));
    if let Err(e) = writable {
        let fix = format!("give the process's user this folder, or pass {flag}");
        return Check::new(what, Verdict::Fail, format!("not writable: {e}"), Some(&fix));
    }
    let Some(free) = free_bytes(dir) else {
        return Check::new(what, Verdict::Warn, "writable; free space unknown", None);
    };
    let detail = format!("writable, {:.1} GiB free", free as f64 / (1u64 << 30) as f64);
    match free {
        f if f < FOLDER_FAIL_BYTES => {
            Check::new(what, Verdict::Fail, detail, Some("free disk space: writes will fail"))
        }
        f if f < FOLDER_WARN_BYTES => {
            Check::new(what, Verdict::Warn, detail, Some("free disk space before it runs out"))
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

/// Whether each coordinator named (one URL, or a cluster's comma-separated) answers this
/// identity, and how far its clock is from this machine's.
pub async fn coordinator_checks(list: Option<&str>, auth: &ClientAuth) -> Vec<Check> {
    let Some(list) = list else {
        return vec![Check::new(
            "coordinator",
            Verdict::Warn,
            "not checked: no --coordinator",
            Some("pass --coordinator URL or set ACCELBENCH_COORDINATOR"),
        )];
    };
    let coordinators = match proto::connect::Coordinators::parse(list) {
        Ok(c) => c,
        Err(e) => {
            let fix = "give https://HOST:PORT, or every node's URL comma-separated for a cluster";
            return vec![Check::new("coordinator", Verdict::Fail, format!("{e:#}"), Some(fix))];
        }
    };
    let mut checks = Vec::new();
    for url in coordinators.urls() {
        checks.extend(one_coordinator(url, auth).await);
    }
    checks
}

/// The probe is a `ListAgents` call: an identity whose role may not list agents (an
/// agent's) is refused with PERMISSION_DENIED, which still proves that TLS and the
/// certificate were accepted; every answer carries the coordinator's clock.
async fn one_coordinator(url: &str, auth: &ClientAuth) -> Vec<Check> {
    let what = format!("coordinator {url}");
    let (started, sent_ms) = (Instant::now(), now_ms());
    let channel = async {
        let channel = proto::connect::endpoint(url, auth)?
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(CONNECT_TIMEOUT)
            .connect()
            .await
            .map_err(|e| anyhow::anyhow!("{}", proto::connect::error_chain(&e)))?;
        proto::connect::with_token(channel, auth, proto::connect::untraced as fn(_) -> _)
    }
    .await;
    let channel = match channel {
        Ok(c) => c,
        Err(e) => {
            return vec![Check::new(
                what,
                Verdict::Fail,
                format!("cannot reach it: {e:#}"),
                Some("check the URL (https://host:7070), --ca, --cert/--key, the coordinator's --listen address and the firewall"),
            )]
        }
    };
    let answer = FleetServiceClient::new(channel).list_agents(ListAgentsRequest {}).await;
    let round_trip = started.elapsed();
    let (reach, metadata) = match answer {
        Ok(r) => {
            let detail =
                format!("answered in {} ms; {} agents registered", round_trip.as_millis(), r.get_ref().agents.len());
            (Check::new(what, Verdict::Ok, detail, None), r.metadata().clone())
        }
        Err(s) if s.code() == tonic::Code::PermissionDenied => {
            let detail =
                format!("answered in {} ms; it accepts this identity ({})", round_trip.as_millis(), s.message());
            (Check::new(what, Verdict::Ok, detail, None), s.metadata().clone())
        }
        Err(s) if s.code() == tonic::Code::Unauthenticated => {
            let fix = "issue a certificate from the coordinator's CA (`accelbench ca issue`) or a token";
            (
                Check::new(what, Verdict::Fail, format!("refuses this identity: {}", s.message()), Some(fix)),
                s.metadata().clone(),
            )
        }
        Err(s) => {
            let detail = format!("answered {:?}: {}", s.code(), s.message());
            (Check::new(what, Verdict::Fail, detail, Some("see the coordinator's log")), s.metadata().clone())
        }
    };
    let server_ms = metadata
        .get(proto::connect::SERVER_TIME_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    vec![reach, clock_check(server_ms, sent_ms, round_trip)]
}

/// How long a certificate has left: FAIL once expired or unreadable, warn within 30 days.
pub fn certificate_check(what: &str, path: &Path) -> Check {
    const WARN_SECONDS: i64 = 30 * 86_400;
    let what = format!("{what} {}", path.display());
    let s = match proto::identity::CertSubject::read_pem(path) {
        Ok(s) => s,
        Err(e) => {
            return Check::new(
                what,
                Verdict::Fail,
                format!("{e:#}"),
                Some("point the flag at the PEM file `accelbench ca` wrote"),
            )
        }
    };
    let holder = match &s.role {
        Some(role) => format!("{} (role {role})", s.name),
        None => s.name.clone(),
    };
    let left = s.not_after.saturating_sub(now_ms() / 1000);
    let detail = format!("{holder}, {} days left", left / 86_400);
    let renew = "issue a new one (`accelbench ca issue`, or `ca init` for the CA) and restart with it";
    match left {
        l if l <= 0 => Check::new(what, Verdict::Fail, format!("{holder} expired"), Some(renew)),
        l if l < WARN_SECONDS => Check::new(what, Verdict::Warn, detail, Some(renew)),
        _ => Check::new(what, Verdict::Ok, detail, None),
    }
}

/// The coordinator's clock against ours, taking its answer as sent half-way through
/// the round trip.
fn clock_check(server_ms: i64, sent_ms: i64, round_trip: Duration) -> Check {
    if server_ms == 0 {
        return Check::new("clock", Verdict::Warn, "not checked: the coordinator does not report its clock", None);
    }
    let half = i64::try_from(round_trip.as_millis() / 2).unwrap_or(i64::MAX);
    let skew = server_ms - sent_ms.saturating_add(half);
    let detail = format!("{skew:+} ms against the coordinator (± {half} ms)");
    match skew.abs() > SKEW_WARN_MS.saturating_add(half) {
        true => Check::new(
            "clock",
            Verdict::Warn,
            detail,
            Some("synchronise the clocks (NTP: chrony or systemd-timesyncd)"),
        ),
        false => Check::new("clock", Verdict::Ok, detail, None),
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_skew_is_measured_from_the_middle_of_the_round_trip() {
        let rtt = Duration::from_millis(100);
        let near = clock_check(5_060, 5_000, rtt);
        assert_eq!((near.verdict, near.detail.as_str()), (Verdict::Ok, "+10 ms against the coordinator (± 50 ms)"));
        let behind = clock_check(10_000, 5_000, rtt);
        assert_eq!(behind.verdict, Verdict::Warn);
        assert!(behind.detail.starts_with("+4950 ms") && behind.fix.is_some(), "{behind:?}");
        let ahead = clock_check(1_000, 5_000, rtt);
        assert!(ahead.verdict == Verdict::Warn && ahead.detail.starts_with("-4050 ms"), "{ahead:?}");
        assert_eq!(clock_check(0, 5_000, rtt).verdict, Verdict::Warn, "a coordinator that reports no clock");
    }
}
