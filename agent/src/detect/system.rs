//! The machine-wide probes: memory (`/proc/meminfo`, proc(5)), NUMA nodes
//! (`/sys/devices/system/node/node*`), the OS (`/etc/os-release`, os-release(5), and
//! `/proc/sys/kernel/osrelease`) and the hostname (`/proc/sys/kernel/hostname`).
//!
//! Parsers are pure; readers take a root folder. A missing file gives `0` or an empty
//! string and a report, never a panic.

use std::collections::BTreeMap;
use std::path::Path;

use shared::fingerprint::{MemoryInfo, OsInfo, ProbeReport};

use super::{at, numbered_entries, read_text, read_value};

/// Total and available memory from `<root>/proc/meminfo`.
pub fn memory(root: &Path) -> (MemoryInfo, ProbeReport) {
    match read_text(root, "proc/meminfo") {
        Ok(text) => {
            let memory = parse_meminfo(&text);
            let report = if memory.total_bytes == 0 {
                ProbeReport::error("memory", "no MemTotal line in /proc/meminfo")
            } else {
                ProbeReport::found("memory", format!("{} bytes total", memory.total_bytes))
            };
            (memory, report)
        }
        Err(why) => (MemoryInfo::default(), ProbeReport::error("memory", why)),
    }
}

/// `MemTotal` and `MemAvailable` (or `MemFree` on kernels before 3.14), in bytes.
pub fn parse_meminfo(text: &str) -> MemoryInfo {
    let mut fields = BTreeMap::new();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let mut words = value.split_whitespace();
        let Some(Ok(number)) = words.next().map(str::parse::<u64>) else {
            continue;
        };
        let scale = match words.next() {
            Some("kB") => 1024,
            _ => 1,
        };
        fields.insert(key.trim(), number.saturating_mul(scale));
    }
    MemoryInfo {
        total_bytes: fields.get("MemTotal").copied().unwrap_or(0),
        available_bytes: fields.get("MemAvailable").or_else(|| fields.get("MemFree")).copied().unwrap_or(0),
    }
}

/// NUMA nodes under `<root>/sys/devices/system/node`; 1 where there are none listed.
pub fn numa_nodes(root: &Path) -> u32 {
    let nodes = numbered_entries(&at(root, "sys/devices/system/node"), "node").len();
    u32::try_from(nodes).unwrap_or(u32::MAX).max(1)
}

/// The OS name and version from os-release and the kernel release. `arch` is left empty
/// for the caller to fill in.
pub fn os(root: &Path) -> (OsInfo, ProbeReport) {
    let release = read_text(root, "etc/os-release").or_else(|_| read_text(root, "usr/lib/os-release"));
    let kernel = read_value(&at(root, "proc/sys/kernel/osrelease")).unwrap_or_default();
    let mut os = OsInfo { kernel, ..OsInfo::default() };
    let report = match release {
        Ok(text) => {
            let fields = parse_os_release(&text);
            os.name = fields.get("NAME").cloned().unwrap_or_else(|| "Linux".into());
            os.version = fields.get("VERSION_ID").cloned().unwrap_or_default();
            ProbeReport::found("os", format!("{} {}", os.name, os.version).trim().to_owned())
        }
        Err(why) => {
            os.name = "Linux".to_owned();
            ProbeReport::error("os", why)
        }
    };
    (os, report)
}

/// `KEY=value` lines, with single or double quotes removed; comments skipped.
pub fn parse_os_release(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .filter_map(|line| line.split_once('='))
        .map(|(key, value)| {
            let value = value.trim();
            let unquoted = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                .unwrap_or(value);
            (key.trim().to_owned(), unquoted.to_owned())
        })
        .collect()
}

/// The hostname, from the kernel or `/etc/hostname`; empty if neither can be read.
pub fn hostname(root: &Path) -> String {
    read_value(&at(root, "proc/sys/kernel/hostname"))
        .or_else(|| read_value(&at(root, "etc/hostname")))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo_in_bytes() {
        let memory = parse_meminfo(
            "MemTotal:       24684092 kB\nMemFree:        22675540 kB\nMemAvailable:   23729356 kB\nHugePages_Total:       0\n",
        );
        assert_eq!(memory.total_bytes, 24_684_092 * 1024);
        assert_eq!(memory.available_bytes, 23_729_356 * 1024);
    }

    #[test]
    fn old_meminfo_uses_memfree_and_garbage_is_zero() {
        let memory = parse_meminfo("MemTotal: 1000 kB\nMemFree: 10 kB\n");
        assert_eq!(memory.available_bytes, 10 * 1024);
        assert_eq!(parse_meminfo("MemTotal: lots\n\u{0}"), MemoryInfo::default());
    }

    #[test]
    fn os_release_quotes() {
        let fields = parse_os_release("# comment\nNAME=\"Ubuntu\"\nVERSION_ID='22.04'\nID=ubuntu\nbroken line\n");
        assert_eq!(fields["NAME"], "Ubuntu");
        assert_eq!(fields["VERSION_ID"], "22.04");
        assert_eq!(fields["ID"], "ubuntu");
        assert_eq!(fields.len(), 3);
    }
}
