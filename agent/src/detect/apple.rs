//! The Apple probe: a Mac's CPU, memory, OS and Metal GPU from the text of
//! `sysctl <keys>` and `system_profiler SPDisplaysDataType`.
//!
//! Parsing ([`parse_sysctl`], [`parse_displays`], [`from_outputs`]) takes command output
//! as text and runs everywhere, so Linux tests feed it fixture text; only running the
//! commands ([`detect_macos`]) is macOS-only. `sysctl` is asked without `-n`: its
//! `key: value` lines stay correct when a key is unknown on an older macOS, where `-n`
//! output would silently shift. Never panics on what the commands print.

use std::collections::BTreeMap;

use shared::fingerprint::{
    ml_isa_flags, Cache, CacheKind, CpuInfo, Fingerprint, GpuDevice, GpuVendor, MemoryInfo, OsInfo, ProbeReport,
    SCHEMA_VERSION,
};
use shared::hardware::HardwareKind;

use super::ProbeEnv;

/// The keys asked of `sysctl`. Unknown keys (Intel-only or Apple-silicon-only ones) are
/// reported on stderr and skipped.
pub const SYSCTL_KEYS: &[&str] = &[
    "machdep.cpu.brand_string",
    "machdep.cpu.vendor",
    "hw.memsize",
    "hw.packages",
    "hw.physicalcpu",
    "hw.logicalcpu",
    "hw.perflevel0.physicalcpu",
    "hw.perflevel1.physicalcpu",
    "hw.perflevel0.l1dcachesize",
    "hw.perflevel0.l1icachesize",
    "hw.perflevel0.l2cachesize",
    "hw.l1dcachesize",
    "hw.l1icachesize",
    "hw.l2cachesize",
    "hw.l3cachesize",
    "hw.cpufrequency",
    "hw.cpufrequency_max",
    "hw.optional.AdvSIMD",
    "hw.optional.arm.FEAT_FP16",
    "hw.optional.arm.FEAT_DotProd",
    "hw.optional.arm.FEAT_I8MM",
    "hw.optional.arm.FEAT_BF16",
    "hw.optional.avx1_0",
    "hw.optional.avx2_0",
    "hw.optional.fma",
    "hw.optional.avx512f",
    "hw.optional.avx512bw",
    "hw.optional.avx512vl",
    "hw.optional.avx512vnni",
    "kern.osproductversion",
    "kern.osrelease",
    "kern.hostname",
];

/// sysctl feature keys and the Linux flag each stands for.
const SYSCTL_FLAGS: &[(&str, &str)] = &[
    ("hw.optional.AdvSIMD", "asimd"),
    ("hw.optional.arm.FEAT_FP16", "asimdhp"),
    ("hw.optional.arm.FEAT_DotProd", "asimddp"),
    ("hw.optional.arm.FEAT_I8MM", "i8mm"),
    ("hw.optional.arm.FEAT_BF16", "bf16"),
    ("hw.optional.avx1_0", "avx"),
    ("hw.optional.avx2_0", "avx2"),
    ("hw.optional.fma", "fma"),
    ("hw.optional.avx512f", "avx512f"),
    ("hw.optional.avx512bw", "avx512bw"),
    ("hw.optional.avx512vl", "avx512vl"),
    ("hw.optional.avx512vnni", "avx512_vnni"),
];

/// `key: value` lines of `sysctl` output.
pub fn parse_sysctl(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|line| line.split_once(':'))
        .map(|(key, value)| (key.trim().to_owned(), value.trim().to_owned()))
        .filter(|(key, _)| !key.is_empty() && !key.contains(' '))
        .collect()
}

/// One GPU section of `system_profiler SPDisplaysDataType`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DisplayGpu {
    /// `Chipset Model`: `Apple M2 Max`, `AMD Radeon Pro 5500M`.
    pub chipset_model: String,
    /// `Vendor`: `Apple (0x106b)`, `AMD (0x1002)`.
    pub vendor: String,
    /// `Total Number of Cores`.
    pub cores: Option<u32>,
    /// `VRAM (Total)` of a discrete GPU.
    pub vram_bytes: Option<u64>,
    /// `Metal Support` (or the older `Metal Family`).
    pub metal: Option<String>,
}

/// The GPU sections of `system_profiler SPDisplaysDataType`: each starts at its
/// `Chipset Model:` line; display details below it are ignored.
pub fn parse_displays(text: &str) -> Vec<DisplayGpu> {
    let mut gpus: Vec<DisplayGpu> = Vec::new();
    for line in text.lines() {
        let Some((key, value)) = line.trim().split_once(':') else {
            continue;
        };
        let value = value.trim();
        if key == "Chipset Model" {
            gpus.push(DisplayGpu { chipset_model: value.to_owned(), ..DisplayGpu::default() });
            continue;
        }
        let Some(gpu) = gpus.last_mut() else {
            continue;
        };
        match key {
            "Vendor" => gpu.vendor = value.to_owned(),
            "Total Number of Cores" => gpu.cores = value.parse().ok(),
            "VRAM (Total)" | "VRAM (Dynamic, Max)" => gpu.vram_bytes = parse_vram(value),
            "Metal Support" | "Metal Family" => gpu.metal = Some(value.to_owned()),
            _ => {}
        }
    }
    gpus
}

/// `8 GB`, `1536 MB`.
fn parse_vram(text: &str) -> Option<u64> {
    let mut words = text.split_whitespace();
    let number: u64 = words.next()?.parse().ok()?;
    let scale: u64 = match words.next()? {
        "GB" => 1 << 30,
        "MB" => 1 << 20,
        _ => return None,
    };
    number.checked_mul(scale)
}

/// A Mac's fingerprint from the two commands' output. Available memory is left 0 for the
/// caller to fill in (it is not a sysctl).
pub fn from_outputs(sysctl_text: &str, displays_text: &str, env: &ProbeEnv) -> Fingerprint {
    let sysctl = parse_sysctl(sysctl_text);
    let get = |key: &str| sysctl.get(key).map(String::as_str);
    let number = |key: &str| get(key).and_then(|value| value.parse::<u64>().ok());
    let count = |key: &str| number(key).and_then(|value| u32::try_from(value).ok());
    let mut probes = Vec::new();

    let model_name = get("machdep.cpu.brand_string").unwrap_or_default().to_owned();
    let vendor = match get("machdep.cpu.vendor") {
        Some(vendor) => vendor.to_owned(),
        None if model_name.starts_with("Apple") => "Apple".to_owned(),
        None => String::new(),
    };
    let present: Vec<&str> =
        SYSCTL_FLAGS.iter().filter(|(key, _)| get(key) == Some("1")).map(|&(_, flag)| flag).collect();
    let cache = |level: u8, kind: CacheKind, keys: [&str; 2]| {
        keys.iter().find_map(|key| number(key)).filter(|&size| size > 0).map(|size_bytes| Cache {
            level,
            kind,
            size_bytes,
        })
    };
    let caches = [
        cache(1, CacheKind::Data, ["hw.perflevel0.l1dcachesize", "hw.l1dcachesize"]),
        cache(1, CacheKind::Instruction, ["hw.perflevel0.l1icachesize", "hw.l1icachesize"]),
        cache(2, CacheKind::Unified, ["hw.perflevel0.l2cachesize", "hw.l2cachesize"]),
        cache(3, CacheKind::Unified, ["hw.l3cachesize", "hw.l3cachesize"]),
    ]
    .into_iter()
    .flatten()
    .collect();
    let hz_to_mhz = |hz: u64| u32::try_from((hz + 500_000) / 1_000_000).ok();
    let cpu = CpuInfo {
        vendor,
        model_name,
        microarchitectures: Vec::new(),
        sockets: count("hw.packages").unwrap_or(1),
        physical_cores: count("hw.physicalcpu").unwrap_or(0),
        logical_cores: count("hw.logicalcpu").unwrap_or(0),
        base_frequency_mhz: number("hw.cpufrequency").and_then(hz_to_mhz),
        max_frequency_mhz: number("hw.cpufrequency_max").and_then(hz_to_mhz),
        isa_flags: ml_isa_flags(present),
        caches,
        threads_limit: None,
    };
    probes.push(if cpu.logical_cores == 0 {
        ProbeReport::error("cpu", "sysctl gave no hw.logicalcpu")
    } else {
        let split = match (count("hw.perflevel0.physicalcpu"), count("hw.perflevel1.physicalcpu")) {
            (Some(p), Some(e)) => format!(" ({p} performance, {e} efficiency)"),
            _ => String::new(),
        };
        ProbeReport::found("cpu", format!("{} cores{split}", cpu.physical_cores))
    });

    let memory = MemoryInfo { total_bytes: number("hw.memsize").unwrap_or(0), available_bytes: 0 };
    probes.push(if memory.total_bytes == 0 {
        ProbeReport::error("memory", "sysctl gave no hw.memsize")
    } else {
        ProbeReport::found("memory", format!("{} bytes total", memory.total_bytes))
    });

    let os = OsInfo {
        name: "macOS".to_owned(),
        version: get("kern.osproductversion").unwrap_or_default().to_owned(),
        kernel: get("kern.osrelease").map(|release| format!("Darwin {release}")).unwrap_or_default(),
        arch: env.arch.clone(),
    };

    let mut gpus = Vec::new();
    for display in parse_displays(displays_text) {
        let vendor = if display.vendor.starts_with("Apple") || display.chipset_model.starts_with("Apple") {
            GpuVendor::Apple
        } else if display.vendor.starts_with("AMD") || display.vendor.starts_with("ATI") {
            GpuVendor::Amd
        } else if display.vendor.starts_with("NVIDIA") {
            GpuVendor::Nvidia
        } else {
            continue; // Intel integrated graphics: no class of its own
        };
        let index = u32::try_from(gpus.len()).unwrap_or(u32::MAX);
        let mut gpu = GpuDevice::new(index, vendor, HardwareKind::Metal, display.chipset_model);
        gpu.cores = display.cores;
        gpu.memory_bytes = match vendor {
            // Unified memory: the GPU sees the machine's memory.
            GpuVendor::Apple => Some(memory.total_bytes).filter(|&bytes| bytes > 0),
            _ => display.vram_bytes,
        };
        gpus.push(gpu);
    }
    probes.push(match gpus.first() {
        Some(first) => ProbeReport::found("apple", format!("metal gpu {}", first.name)),
        None => ProbeReport::absent("apple", "system_profiler lists no metal gpu"),
    });

    Fingerprint {
        schema_version: SCHEMA_VERSION,
        hostname: get("kern.hostname").unwrap_or_default().to_owned(),
        os,
        cpu,
        memory,
        numa_nodes: 1,
        gpus,
        soc: None,
        probes,
        software: super::software(),
    }
}

/// Runs `sysctl` and `system_profiler` and builds the fingerprint from their output. A
/// command that cannot run leaves its part empty, with a report.
#[cfg(target_os = "macos")]
pub fn detect_macos(env: &ProbeEnv) -> Fingerprint {
    use std::process::Command;

    let run = |program: &str, args: &[&str]| match Command::new(program).args(args).output() {
        Ok(output) => Ok(String::from_utf8_lossy(&output.stdout).into_owned()),
        Err(err) => Err(format!("cannot run {program}: {err}").to_lowercase()),
    };
    let sysctl = run("sysctl", SYSCTL_KEYS);
    let displays = run("system_profiler", &["SPDisplaysDataType"]);
    let mut fp = from_outputs(sysctl.as_deref().unwrap_or_default(), displays.as_deref().unwrap_or_default(), env);
    for failure in [sysctl.err(), displays.err()].into_iter().flatten() {
        fp.probes.push(ProbeReport::error("apple", failure));
    }
    let mut sys = sysinfo::System::new();
    sys.refresh_memory();
    fp.memory.available_bytes = sys.available_memory();
    fp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sysctl_lines() {
        let map = parse_sysctl(
            "hw.memsize: 34359738368\nmachdep.cpu.brand_string: Apple M2 Max\nsysctl: unknown oid 'x'\ngarbage\n",
        );
        assert_eq!(map["hw.memsize"], "34359738368");
        assert_eq!(map["machdep.cpu.brand_string"], "Apple M2 Max");
        // `sysctl: unknown oid 'x'` parses as key `sysctl`; harmless, never asked for.
        assert!(!map.contains_key("garbage"));
    }

    #[test]
    fn intel_mac_with_radeon() {
        let displays = "Graphics/Displays:\n\n    Intel UHD Graphics 630:\n\n      Chipset Model: Intel UHD Graphics 630\n      Vendor: Intel\n      VRAM (Dynamic, Max): 1536 MB\n\n    AMD Radeon Pro 5500M:\n\n      Chipset Model: AMD Radeon Pro 5500M\n      Type: GPU\n      Vendor: AMD (0x1002)\n      VRAM (Total): 8 GB\n";
        let sysctl = "machdep.cpu.brand_string: Intel(R) Core(TM) i9-9880H CPU @ 2.30GHz\nmachdep.cpu.vendor: GenuineIntel\nhw.logicalcpu: 16\nhw.physicalcpu: 8\nhw.optional.avx2_0: 1\nhw.optional.avx512f: 0\nhw.cpufrequency: 2300000000\n";
        let env = ProbeEnv { arch: "x86_64".into(), qnn_sdk_root: None };
        let fp = from_outputs(sysctl, displays, &env);
        assert_eq!(fp.gpus.len(), 1);
        assert_eq!(fp.gpus[0].vendor, GpuVendor::Amd);
        assert_eq!(fp.gpus[0].memory_bytes, Some(8 << 30));
        assert_eq!(fp.cpu.isa_flags, ["avx2"]);
        assert_eq!(fp.cpu.base_frequency_mhz, Some(2300));
        assert_eq!(fp.hardware_classes(), ["cpu/Intel Core i9-9880H", "metal/AMD Radeon Pro 5500M"]);
    }

    #[test]
    fn empty_output_degrades() {
        let env = ProbeEnv { arch: "aarch64".into(), qnn_sdk_root: None };
        let fp = from_outputs("", "", &env);
        assert!(fp.gpus.is_empty());
        assert_eq!(fp.cpu.logical_cores, 0);
        assert!(fp.probes.iter().any(|p| p.probe == "cpu" && p.status == shared::fingerprint::ProbeStatus::Error));
        assert!(fp.hardware_classes().is_empty());
    }
}
