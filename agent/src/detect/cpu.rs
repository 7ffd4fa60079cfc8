//! The CPU probe: `/proc/cpuinfo` (x86 and Arm layouts, see proc(5)), topology and
//! frequencies under `/sys/devices/system/cpu/cpu*/`, and cpu0's caches (see the kernel's
//! Documentation/ABI/testing/sysfs-devices-system-cpu).
//!
//! [`parse_cpuinfo`] is pure; [`probe`] reads sysfs under a root folder. Neither may
//! panic on what the files say: unknown or garbled values are skipped.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use shared::fingerprint::{ml_isa_flags, Cache, CacheKind, CpuInfo, ProbeReport};

use super::{at, numbered_entries, read_value};

/// `/proc/cpuinfo` as `key: value` blocks: one per `processor`, plus the lines outside
/// any processor block (older Arm kernels put `Hardware` there).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cpuinfo {
    pub processors: Vec<BTreeMap<String, String>>,
    pub global: BTreeMap<String, String>,
}

impl Cpuinfo {
    /// The value of `key` in the first processor that has it, else outside any processor.
    pub fn first(&self, key: &str) -> Option<&str> {
        self.processors.iter().find_map(|block| block.get(key)).or_else(|| self.global.get(key)).map(String::as_str)
    }

    /// The Arm `CPU implementer` of the first processor, as a number (`0x51`).
    pub fn arm_implementer(&self) -> Option<u32> {
        self.first("CPU implementer").and_then(parse_hex)
    }
}

/// Splits `/proc/cpuinfo` text into blocks. Lines without a colon are ignored.
pub fn parse_cpuinfo(text: &str) -> Cpuinfo {
    let mut info = Cpuinfo::default();
    let mut block = BTreeMap::new();
    let flush = |block: &mut BTreeMap<String, String>, info: &mut Cpuinfo| {
        if block.contains_key("processor") {
            info.processors.push(std::mem::take(block));
        } else {
            info.global.append(block);
        }
    };
    for line in text.lines() {
        if line.trim().is_empty() {
            flush(&mut block, &mut info);
            continue;
        }
        if let Some((key, value)) = line.split_once(':') {
            let key = key.trim();
            // A second `processor` line without a blank line between starts a new block.
            if key == "processor" && block.contains_key("processor") {
                flush(&mut block, &mut info);
            }
            block.insert(key.to_owned(), value.trim().to_owned());
        }
    }
    flush(&mut block, &mut info);
    info
}

/// The CPU of the machine under `root`, from its parsed cpuinfo (empty if it could not be
/// read) and sysfs.
pub fn probe(root: &Path, info: &Cpuinfo) -> (CpuInfo, ProbeReport) {
    let cpu_dir = at(root, "sys/devices/system/cpu");
    let cpu_dirs = numbered_entries(&cpu_dir, "cpu");

    let mut logical = info.processors.len() as u32;
    if logical == 0 {
        logical = cpu_dirs.len() as u32;
    }

    let arm_parts = arm_parts(info);
    let microarchitectures: Vec<String> = arm_parts
        .iter()
        .map(|&(implementer, part)| arm_part_name(implementer, part))
        .fold(Vec::new(), |mut names, name| {
            if !names.contains(&name) {
                names.push(name);
            }
            names
        });
    let vendor = match (info.first("vendor_id"), info.arm_implementer()) {
        (Some(vendor), _) => vendor.to_owned(),
        (None, Some(implementer)) => arm_implementer_name(implementer),
        (None, None) => String::new(),
    };
    let flags = info.first("flags").or_else(|| info.first("Features")).unwrap_or("");

    let mut cpu = CpuInfo {
        vendor,
        model_name: String::new(),
        microarchitectures,
        sockets: 0,
        physical_cores: 0,
        logical_cores: logical,
        base_frequency_mhz: None,
        max_frequency_mhz: None,
        isa_flags: ml_isa_flags(flags.split_whitespace()),
        caches: caches(&at(root, "sys/devices/system/cpu/cpu0/cache")),
        threads_limit: None,
    };
    cpu.model_name = match info.first("model name") {
        Some(name) => name.to_owned(),
        None if !cpu.microarchitectures.is_empty() => model_from_parts(&cpu),
        None => String::new(),
    };

    let topology = cpuinfo_topology(info).or_else(|| sysfs_topology(cpu_dirs.iter().map(|(_, p)| &**p)));
    match topology {
        Some((sockets, cores)) => {
            cpu.sockets = sockets;
            cpu.physical_cores = cores;
        }
        None if logical > 0 => {
            cpu.sockets = 1;
            cpu.physical_cores = logical;
        }
        None => {}
    }

    cpu.base_frequency_mhz = read_value(&at(root, "sys/devices/system/cpu/cpu0/cpufreq/base_frequency"))
        .and_then(|khz| khz.parse::<u64>().ok())
        .map(khz_to_mhz)
        .or_else(|| frequency_in_model_name(&cpu.model_name));
    cpu.max_frequency_mhz = cpu_dirs
        .iter()
        .filter_map(|(_, dir)| read_value(&dir.join("cpufreq/cpuinfo_max_freq")))
        .filter_map(|khz| khz.parse::<u64>().ok())
        .max()
        .map(khz_to_mhz);

    let report = if cpu.logical_cores == 0 {
        ProbeReport::error("cpu", "no processors in /proc/cpuinfo or sysfs")
    } else {
        ProbeReport::found(
            "cpu",
            format!(
                "{} logical cores, {} physical, {} socket{}",
                cpu.logical_cores,
                cpu.physical_cores,
                cpu.sockets,
                if cpu.sockets == 1 { "" } else { "s" }
            ),
        )
    };
    (cpu, report)
}

/// The model name made from an Arm CPU's vendor and core designs, used when cpuinfo names
/// no model: `ARM Cortex-A510 + Cortex-X3`.
pub fn model_from_parts(cpu: &CpuInfo) -> String {
    format!("{} {}", cpu.vendor, cpu.microarchitectures.join(" + "))
}

/// Whether the model name was made by [`model_from_parts`] rather than read.
pub fn model_is_composed(cpu: &CpuInfo) -> bool {
    !cpu.microarchitectures.is_empty() && cpu.model_name == model_from_parts(cpu)
}

fn khz_to_mhz(khz: u64) -> u32 {
    u32::try_from((khz + 500) / 1000).unwrap_or(u32::MAX)
}

/// `2300` from `Intel(R) Xeon(R) Platinum 8380 CPU @ 2.30GHz`.
fn frequency_in_model_name(model: &str) -> Option<u32> {
    let (_, after) = model.rsplit_once('@')?;
    let after = after.trim();
    let (number, scale) =
        if let Some(ghz) = after.strip_suffix("GHz") { (ghz, 1000.0) } else { (after.strip_suffix("MHz")?, 1.0) };
    let mhz = number.trim().parse::<f64>().ok()? * scale;
    (mhz.is_finite() && mhz > 0.0 && mhz < 100_000.0).then(|| mhz.round() as u32)
}

/// (sockets, physical cores) from x86 cpuinfo's `physical id` and `core id`.
fn cpuinfo_topology(info: &Cpuinfo) -> Option<(u32, u32)> {
    let mut sockets = BTreeSet::new();
    let mut cores = BTreeSet::new();
    for block in &info.processors {
        let socket = block.get("physical id")?.parse::<i64>().ok()?;
        let core = block.get("core id")?.parse::<i64>().ok()?;
        sockets.insert(socket);
        cores.insert((socket, core));
    }
    (!cores.is_empty()).then_some((sockets.len() as u32, cores.len() as u32))
}

/// (sockets, physical cores) from `cpu*/topology/{physical_package_id,core_id}`. A
/// package id of -1 (no package information, some Arm boards) counts as package 0.
fn sysfs_topology<'a>(cpu_dirs: impl Iterator<Item = &'a Path>) -> Option<(u32, u32)> {
    let mut sockets = BTreeSet::new();
    let mut cores = BTreeSet::new();
    for dir in cpu_dirs {
        let topology = dir.join("topology");
        let Some(package) =
            read_value(&topology.join("physical_package_id")).and_then(|value| value.parse::<i64>().ok())
        else {
            continue;
        };
        let Some(core) = read_value(&topology.join("core_id")).and_then(|value| value.parse::<i64>().ok()) else {
            continue;
        };
        let package = package.max(0);
        sockets.insert(package);
        cores.insert((package, core));
    }
    (!cores.is_empty()).then_some((sockets.len() as u32, cores.len() as u32))
}

/// cpu0's caches from `cache/index*/{level,type,size}`, smallest level first.
fn caches(cache_dir: &Path) -> Vec<Cache> {
    let mut caches: Vec<Cache> = numbered_entries(cache_dir, "index")
        .into_iter()
        .filter_map(|(_, dir)| {
            let level = read_value(&dir.join("level"))?.parse::<u8>().ok()?;
            let kind = match read_value(&dir.join("type"))?.as_str() {
                "Data" => CacheKind::Data,
                "Instruction" => CacheKind::Instruction,
                "Unified" => CacheKind::Unified,
                _ => return None,
            };
            let size_bytes = parse_size(&read_value(&dir.join("size"))?)?;
            Some(Cache { level, kind, size_bytes })
        })
        .collect();
    caches.sort_by_key(|cache| (cache.level, cache.kind));
    caches
}

/// sysfs cache sizes: `48K`, `1280K`, `60M`, `512`.
pub fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let (number, scale) = match text.chars().last()? {
        'K' | 'k' => (&text[..text.len() - 1], 1u64 << 10),
        'M' | 'm' => (&text[..text.len() - 1], 1 << 20),
        'G' | 'g' => (&text[..text.len() - 1], 1 << 30),
        _ => (text, 1),
    };
    number.trim().parse::<u64>().ok()?.checked_mul(scale)
}

fn parse_hex(text: &str) -> Option<u32> {
    let digits = text.trim().trim_start_matches("0x").trim_start_matches("0X");
    u32::from_str_radix(digits, 16).ok()
}

/// (implementer, part) of each Arm processor that states both.
fn arm_parts(info: &Cpuinfo) -> Vec<(u32, u32)> {
    info.processors
        .iter()
        .filter_map(|block| {
            let implementer = parse_hex(block.get("CPU implementer")?)?;
            let part = parse_hex(block.get("CPU part")?)?;
            Some((implementer, part))
        })
        .collect()
}

/// The company behind an Arm `CPU implementer` code (arch/arm64/include/asm/cputype.h).
pub fn arm_implementer_name(implementer: u32) -> String {
    match implementer {
        0x41 => "ARM".to_owned(),
        0x42 => "Broadcom".to_owned(),
        0x43 => "Cavium".to_owned(),
        0x48 => "HiSilicon".to_owned(),
        0x4e => "NVIDIA".to_owned(),
        0x51 => "Qualcomm".to_owned(),
        0x61 => "Apple".to_owned(),
        0xc0 => "Ampere".to_owned(),
        other => format!("arm implementer 0x{other:02x}"),
    }
}

/// The core design behind an Arm (implementer, part) pair; unknown ones as hex.
pub fn arm_part_name(implementer: u32, part: u32) -> String {
    let known = match (implementer, part) {
        (0x41, 0xd03) => "Cortex-A53",
        (0x41, 0xd04) => "Cortex-A35",
        (0x41, 0xd05) => "Cortex-A55",
        (0x41, 0xd07) => "Cortex-A57",
        (0x41, 0xd08) => "Cortex-A72",
        (0x41, 0xd09) => "Cortex-A73",
        (0x41, 0xd0a) => "Cortex-A75",
        (0x41, 0xd0b) => "Cortex-A76",
        (0x41, 0xd0c) => "Neoverse-N1",
        (0x41, 0xd0d) => "Cortex-A77",
        (0x41, 0xd40) => "Neoverse-V1",
        (0x41, 0xd41) => "Cortex-A78",
        (0x41, 0xd44) => "Cortex-X1",
        (0x41, 0xd46) => "Cortex-A510",
        (0x41, 0xd47) => "Cortex-A710",
        (0x41, 0xd48) => "Cortex-X2",
        (0x41, 0xd49) => "Neoverse-N2",
        (0x41, 0xd4b) => "Cortex-A78C",
        (0x41, 0xd4d) => "Cortex-A715",
        (0x41, 0xd4e) => "Cortex-X3",
        (0x41, 0xd4f) => "Neoverse-V2",
        (0x41, 0xd80) => "Cortex-A520",
        (0x41, 0xd81) => "Cortex-A720",
        (0x41, 0xd82) => "Cortex-X4",
        (0x51, 0x800) => "Kryo 2xx Gold",
        (0x51, 0x801) => "Kryo 2xx Silver",
        (0x51, 0x802) => "Kryo 3xx Gold",
        (0x51, 0x803) => "Kryo 3xx Silver",
        (0x51, 0x804) => "Kryo 4xx Gold",
        (0x51, 0x805) => "Kryo 4xx Silver",
        (0x51, 0xc00) => "Falkor",
        (0x51, 0x001) => "Oryon",
        _ => return format!("0x{implementer:02x}:0x{part:03x}"),
    };
    known.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const X86: &str = "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) Platinum 8380 CPU @ 2.30GHz\nphysical id\t: 0\ncore id\t\t: 0\nflags\t\t: fpu avx avx2 avx512f avx512_vnni\n\nprocessor\t: 1\nvendor_id\t: GenuineIntel\nphysical id\t: 1\ncore id\t\t: 0\n";

    #[test]
    fn x86_blocks_and_topology() {
        let info = parse_cpuinfo(X86);
        assert_eq!(info.processors.len(), 2);
        assert_eq!(info.first("vendor_id"), Some("GenuineIntel"));
        assert_eq!(info.first("flags"), Some("fpu avx avx2 avx512f avx512_vnni"));
        assert_eq!(cpuinfo_topology(&info), Some((2, 2)));
    }

    #[test]
    fn arm_parts_and_implementers() {
        let text = "processor\t: 0\nCPU implementer\t: 0x51\nCPU part\t: 0x803\n\nprocessor\t: 1\nCPU implementer\t: 0x51\nCPU part\t: 0x802\n\nHardware\t: Qualcomm Technologies, Inc SDM845\n";
        let info = parse_cpuinfo(text);
        assert_eq!(info.arm_implementer(), Some(0x51));
        assert_eq!(arm_parts(&info), [(0x51, 0x803), (0x51, 0x802)]);
        assert_eq!(info.global.get("Hardware").map(String::as_str), Some("Qualcomm Technologies, Inc SDM845"));
        assert_eq!(arm_implementer_name(0x51), "Qualcomm");
        assert_eq!(arm_part_name(0x51, 0x803), "Kryo 3xx Silver");
        assert_eq!(arm_part_name(0x41, 0xfff), "0x41:0xfff");
        assert_eq!(cpuinfo_topology(&info), None);
    }

    #[test]
    fn garbled_cpuinfo_degrades() {
        let info = parse_cpuinfo("\u{0}\u{1}garbage\nprocessor: x\nphysical id: nope\ncore id: 1\n");
        assert_eq!(info.processors.len(), 1);
        assert_eq!(cpuinfo_topology(&info), None);
        assert_eq!(parse_cpuinfo("").processors.len(), 0);
    }

    #[test]
    fn sizes_and_frequencies() {
        assert_eq!(parse_size("48K"), Some(48 * 1024));
        assert_eq!(parse_size("61440K"), Some(60 << 20));
        assert_eq!(parse_size("2M"), Some(2 << 20));
        assert_eq!(parse_size("512"), Some(512));
        assert_eq!(parse_size("K"), None);
        assert_eq!(parse_size("lots"), None);
        assert_eq!(frequency_in_model_name("Intel(R) Xeon(R) Platinum 8380 CPU @ 2.30GHz"), Some(2300));
        assert_eq!(frequency_in_model_name("AMD EPYC 7313P 16-Core Processor"), None);
        assert_eq!(frequency_in_model_name("x @ NaNGHz"), None);
        assert_eq!(khz_to_mhz(3_400_000), 3400);
    }
}
