//! Energy counters read around the timed loop: Intel/AMD RAPL through
//! `/sys/class/powercap` (package domains), and NVML's GPU energy counter. A source that
//! is absent or unreadable (RAPL is root-only on most kernels) is `None`: no guess.

use std::path::{Path, PathBuf};

/// A started energy reading.
pub struct EnergyProbe {
    source: &'static str,
    start: Vec<(PathBuf, u64, u64)>,
    read: fn(&Path) -> Option<u64>,
}

/// Joules consumed between start and stop, with the source's name.
pub struct EnergyReading {
    pub joules: f64,
    pub source: &'static str,
}

impl EnergyProbe {
    /// Starts RAPL over every top-level package domain under `root`
    /// (`/sys/class/powercap` on a real machine). `None` if none is readable.
    pub fn rapl(root: &Path) -> Option<EnergyProbe> {
        let mut start = Vec::new();
        for entry in std::fs::read_dir(root).ok()?.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            // `intel-rapl:0` is a package; `intel-rapl:0:0` a sub-domain inside it,
            // already counted by the package.
            if !name.starts_with("intel-rapl:") || name.matches(':').count() != 1 {
                continue;
            }
            let dir = entry.path();
            let (Some(now), Some(range)) =
                (read_u64(&dir.join("energy_uj")), read_u64(&dir.join("max_energy_range_uj")))
            else {
                continue;
            };
            start.push((dir, now, range));
        }
        (!start.is_empty()).then_some(EnergyProbe { source: "rapl", start, read: |d| read_u64(&d.join("energy_uj")) })
    }

    /// Microjoules consumed since start, allowing for one counter wrap per domain.
    pub fn stop(self) -> Option<EnergyReading> {
        let mut total_uj = 0u64;
        for (dir, before, range) in &self.start {
            let after = (self.read)(dir)?;
            total_uj += if after >= *before { after - before } else { range - before + after };
        }
        Some(EnergyReading { joules: total_uj as f64 / 1e6, source: self.source })
    }
}

fn read_u64(p: &Path) -> Option<u64> {
    std::fs::read_to_string(p).ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rapl_sums_packages_and_handles_wrap() {
        let tmp = tempfile::tempdir().unwrap();
        let pkg = |n: &str, e: u64| {
            let d = tmp.path().join(n);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("energy_uj"), e.to_string()).unwrap();
            std::fs::write(d.join("max_energy_range_uj"), "1000000").unwrap();
        };
        pkg("intel-rapl:0", 100);
        pkg("intel-rapl:1", 999_000);
        pkg("intel-rapl:0:0", 5); // a sub-domain: must not be counted
        let probe = EnergyProbe::rapl(tmp.path()).unwrap();
        pkg("intel-rapl:0", 2_100); // +2000 uJ
        pkg("intel-rapl:1", 1_000); // wrapped: +1000 + 1000 uJ
        pkg("intel-rapl:0:0", 900_000);
        let r = probe.stop().unwrap();
        assert_eq!(r.source, "rapl");
        assert!((r.joules - 0.004).abs() < 1e-12, "{}", r.joules);
        assert!(EnergyProbe::rapl(&tmp.path().join("absent")).is_none());
    }
}
