//! Hardware detection against fixture trees (`tests/fixtures/`, described in its
//! README.md) and against this machine.
//!
//! Fixture tests go through the same root-path code as the real machine; they must never
//! depend on what the machine running them has. The tests of the real machine compare
//! detection with independent sources (libc, sysinfo), never with hard-coded numbers.

use std::path::{Path, PathBuf};

use agent::detect::{self, apple, nvidia, ProbeEnv};
use expect_test::expect;
use shared::fingerprint::{Cache, CacheKind, Fingerprint, GpuVendor, PcieLink, ProbeStatus};
use shared::hardware::HardwareKind;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn env(arch: &str) -> ProbeEnv {
    ProbeEnv { arch: arch.to_owned(), qnn_sdk_root: None }
}

fn status(fp: &Fingerprint, probe: &str) -> Option<ProbeStatus> {
    fp.probes.iter().find(|report| report.probe == probe).map(|report| report.status)
}

const KIB: u64 = 1024;

#[test]
fn dual_xeon_8380() {
    let fp = detect::detect_from(&fixture("xeon-8380x2"), &env("x86_64"));
    assert_eq!(fp.hostname, "xeon-a");
    assert_eq!(fp.os.name, "Ubuntu");
    assert_eq!(fp.os.version, "22.04");
    assert_eq!(fp.os.kernel, "5.15.0-91-generic");
    assert_eq!(fp.os.arch, "x86_64");

    let cpu = &fp.cpu;
    assert_eq!(cpu.vendor, "GenuineIntel");
    assert_eq!(cpu.model_name, "Intel(R) Xeon(R) Platinum 8380 CPU @ 2.30GHz");
    assert_eq!(cpu.sockets, 2);
    assert_eq!(cpu.physical_cores, 80);
    assert_eq!(cpu.logical_cores, 160);
    assert_eq!(cpu.base_frequency_mhz, Some(2300));
    assert_eq!(cpu.max_frequency_mhz, Some(3400));
    // Ice Lake-SP: AVX-512 with VNNI, but no BF16 and no AMX.
    assert_eq!(cpu.isa_flags, ["avx", "avx2", "avx512_vnni", "avx512bw", "avx512f", "avx512vl", "f16c", "fma"]);
    assert_eq!(
        cpu.caches,
        [
            Cache { level: 1, kind: CacheKind::Data, size_bytes: 48 * KIB },
            Cache { level: 1, kind: CacheKind::Instruction, size_bytes: 32 * KIB },
            Cache { level: 2, kind: CacheKind::Unified, size_bytes: 1280 * KIB },
            Cache { level: 3, kind: CacheKind::Unified, size_bytes: 61440 * KIB },
        ]
    );
    assert_eq!(fp.memory.total_bytes, 527_952_868 * KIB);
    assert_eq!(fp.memory.available_bytes, 514_223_364 * KIB);
    assert_eq!(fp.numa_nodes, 2);
    assert!(fp.gpus.is_empty());
    assert!(fp.soc.is_none());
    assert_eq!(status(&fp, "cpu"), Some(ProbeStatus::Found));
    assert_eq!(status(&fp, "amdgpu"), Some(ProbeStatus::Absent));
    assert_eq!(status(&fp, "snapdragon"), Some(ProbeStatus::Absent));
    assert_eq!(fp.hardware_classes(), ["cpu/Intel Xeon Platinum 8380"]);
}

#[test]
fn dual_xeon_summary() {
    let fp = detect::detect_from(&fixture("xeon-8380x2"), &env("x86_64"));
    let text = detect::render_text(&fp);
    let hash = fp.hash();
    expect![[r#"
        host       xeon-a
        os         Ubuntu 22.04 (kernel 5.15.0-91-generic, x86_64)
        cpu        Intel(R) Xeon(R) Platinum 8380 CPU @ 2.30GHz (GenuineIntel): 2 sockets, 80 cores, 160 threads, 2300-3400 MHz
        isa        avx avx2 avx512_vnni avx512bw avx512f avx512vl f16c fma
        caches     L1d 48.0 KiB, L1i 32.0 KiB, L2 1.2 MiB, L3 60.0 MiB
        memory     503.5 GiB total, 490.4 GiB available, 2 NUMA nodes
        probe      cpu: found, 160 logical cores, 80 physical, 2 sockets
        probe      memory: found, 540623736832 bytes total
        probe      os: found, Ubuntu 22.04
        probe      amdgpu: absent, no drm cards in /sys/class/drm
        probe      intel: absent, no drm card or accel device with vendor 0x8086
        probe      snapdragon: absent, no qualcomm soc: soc0, device tree and cpuinfo name none
        classes    cpu/Intel Xeon Platinum 8380
        hash       HASH
    "#]]
    .assert_eq(&text.replace(&hash, "HASH"));
}

#[test]
fn epyc_with_two_mi210() {
    let fp = detect::detect_from(&fixture("amd-mi210"), &env("x86_64"));
    assert_eq!(fp.cpu.vendor, "AuthenticAMD");
    assert_eq!(fp.cpu.sockets, 1);
    assert_eq!(fp.cpu.physical_cores, 16);
    assert_eq!(fp.cpu.logical_cores, 32);
    assert_eq!(fp.cpu.isa_flags, ["avx", "avx2", "f16c", "fma"]);
    // acpi-cpufreq has no base_frequency and the model name states no clock.
    assert_eq!(fp.cpu.base_frequency_mhz, None);
    assert_eq!(fp.cpu.max_frequency_mhz, Some(3000));
    assert_eq!(fp.memory.total_bytes, 263_842_344 * KIB);
    assert_eq!(fp.numa_nodes, 1);

    // card0 is the BMC's ASPEED VGA (vendor 0x1a03): not an AMD GPU.
    assert_eq!(fp.gpus.len(), 2);
    for (index, gpu) in fp.gpus.iter().enumerate() {
        assert_eq!(gpu.index, index as u32);
        assert_eq!(gpu.vendor, GpuVendor::Amd);
        assert_eq!(gpu.backend, HardwareKind::Rocm);
        assert_eq!(gpu.name, "AMD Instinct MI210");
        assert_eq!(gpu.memory_bytes, Some(68_702_699_520));
        assert_eq!(gpu.driver_version.as_deref(), Some("6.3.6"));
        assert_eq!(gpu.pcie, Some(PcieLink { generation: 4, width: 16 }));
    }
    assert_eq!(fp.gpus[0].uuid.as_deref(), Some("6c3f1a2b9e8d7f05"));
    assert_eq!(fp.gpus[1].uuid.as_deref(), Some("4b2e9d8c7a6f1e03"));
    assert_eq!(status(&fp, "amdgpu"), Some(ProbeStatus::Found));
    assert_eq!(fp.hardware_classes(), ["cpu/AMD EPYC 7313P", "rocm/AMD Instinct MI210"]);
}

#[test]
fn snapdragon_sm8550() {
    let qnn = fixture("snapdragon-sm8550/opt/qcom/qairt/2.26.0");
    let env = ProbeEnv { arch: "aarch64".to_owned(), qnn_sdk_root: Some(qnn.clone()) };
    let fp = detect::detect_from(&fixture("snapdragon-sm8550"), &env);
    let cpu = &fp.cpu;
    assert_eq!(cpu.vendor, "ARM");
    assert_eq!(cpu.model_name, "Qualcomm Snapdragon SM8550");
    assert_eq!(cpu.microarchitectures, ["Cortex-A510", "Cortex-A715", "Cortex-A710", "Cortex-X3"]);
    assert_eq!(cpu.logical_cores, 8);
    assert_eq!(cpu.physical_cores, 8);
    assert_eq!(cpu.sockets, 1);
    assert_eq!(cpu.isa_flags, ["asimd", "asimddp", "asimdhp", "bf16", "i8mm"]);
    assert_eq!(cpu.base_frequency_mhz, None);
    assert_eq!(cpu.max_frequency_mhz, Some(3187)); // the Cortex-X3, not cpu0
    assert!(cpu.caches.is_empty()); // this kernel exposes no cache folders
    assert_eq!(fp.memory.total_bytes, 15_717_284 * KIB);
    assert_eq!(fp.numa_nodes, 1);

    let soc = fp.soc.as_ref().expect("a snapdragon soc");
    assert_eq!(soc.vendor, "Qualcomm");
    assert_eq!(soc.machine.as_deref(), Some("SM8550"));
    assert_eq!(soc.family.as_deref(), Some("Snapdragon"));
    assert_eq!(soc.soc_id.as_deref(), Some("519"));
    assert_eq!(soc.revision.as_deref(), Some("2.0"));
    assert_eq!(soc.board_model.as_deref(), Some("Qualcomm Technologies, Inc. SM8550 QRD"));
    assert_eq!(soc.qnn_sdk_root, Some(qnn.display().to_string()));
    assert_eq!(status(&fp, "qnn"), Some(ProbeStatus::Found));

    assert_eq!(fp.gpus.len(), 1);
    assert_eq!(fp.gpus[0].vendor, GpuVendor::Qualcomm);
    assert_eq!(fp.hardware_classes(), ["cpu/Qualcomm Snapdragon SM8550", "qnn/SM8550"]);
}

#[test]
fn snapdragon_without_qnn_sdk() {
    let missing = ProbeEnv { arch: "aarch64".to_owned(), qnn_sdk_root: Some(fixture("snapdragon-sm8550/no/such/sdk")) };
    let fp = detect::detect_from(&fixture("snapdragon-sm8550"), &missing);
    assert_eq!(fp.soc.as_ref().and_then(|soc| soc.qnn_sdk_root.clone()), None);
    assert_eq!(status(&fp, "qnn"), Some(ProbeStatus::Absent));

    let unset = detect::detect_from(&fixture("snapdragon-sm8550"), &env("aarch64"));
    let report = unset.probes.iter().find(|r| r.probe == "qnn").expect("qnn report");
    assert_eq!(report.reason, "QNN_SDK_ROOT is not set");
    // The SDK is software: the machine's identity does not depend on it.
    assert_eq!(fp.hash(), unset.hash());
}

#[test]
fn apple_m2_max() {
    let read = |name: &str| std::fs::read_to_string(fixture("apple-m2-max").join(name)).expect("fixture text");
    let fp = apple::from_outputs(&read("sysctl.txt"), &read("system_profiler_displays.txt"), &env("aarch64"));
    assert_eq!(fp.hostname, "m2max.local");
    assert_eq!(fp.os.name, "macOS");
    assert_eq!(fp.os.version, "14.2.1");
    assert_eq!(fp.os.kernel, "Darwin 23.2.0");
    assert_eq!(fp.cpu.vendor, "Apple");
    assert_eq!(fp.cpu.model_name, "Apple M2 Max");
    assert_eq!(fp.cpu.physical_cores, 12);
    assert_eq!(fp.cpu.logical_cores, 12);
    assert_eq!(fp.cpu.sockets, 1);
    assert_eq!(fp.cpu.isa_flags, ["asimd", "asimddp", "asimdhp", "bf16", "i8mm"]);
    assert_eq!(
        fp.cpu.caches,
        [
            Cache { level: 1, kind: CacheKind::Data, size_bytes: 128 * KIB },
            Cache { level: 1, kind: CacheKind::Instruction, size_bytes: 192 * KIB },
            Cache { level: 2, kind: CacheKind::Unified, size_bytes: 16 * 1024 * KIB },
        ]
    );
    assert_eq!(fp.memory.total_bytes, 64 << 30);
    assert_eq!(fp.gpus.len(), 1);
    let gpu = &fp.gpus[0];
    assert_eq!(gpu.vendor, GpuVendor::Apple);
    assert_eq!(gpu.backend, HardwareKind::Metal);
    assert_eq!(gpu.name, "Apple M2 Max");
    assert_eq!(gpu.cores, Some(38));
    assert_eq!(gpu.memory_bytes, Some(64 << 30)); // unified memory
    assert_eq!(fp.hardware_classes(), ["cpu/Apple M2 Max", "metal/Apple M2 Max"]);
}

#[test]
fn hash_is_stable_across_volatile_changes() {
    let root = fixture("amd-mi210");
    let a = detect::detect_from(&root, &env("x86_64"));
    let mut b = detect::detect_from(&root, &env("x86_64"));
    assert_eq!(a, b);
    b.memory.available_bytes /= 3;
    b.hostname = "renamed".to_owned();
    assert_eq!(a.hash(), b.hash());

    let mut other_gpu = b.clone();
    other_gpu.gpus[1].name = "AMD Instinct MI250X".to_owned();
    assert_ne!(a.hash(), other_gpu.hash());
    let xeon = detect::detect_from(&fixture("xeon-8380x2"), &env("x86_64"));
    assert_ne!(a.hash(), xeon.hash());
}

#[test]
fn fingerprint_round_trips_through_json() {
    let fp = detect::detect_from(&fixture("snapdragon-sm8550"), &env("aarch64"));
    let json = serde_json::to_string(&fp).expect("serialise");
    let back: Fingerprint = serde_json::from_str(&json).expect("deserialise");
    assert_eq!(back, fp);
    assert_eq!(back.hash(), fp.hash());
}

#[test]
fn empty_root_degrades_with_reasons() {
    let empty = tempfile::tempdir().expect("temp dir");
    let fp = detect::detect_from(empty.path(), &env("x86_64"));
    assert_eq!(fp.cpu.logical_cores, 0);
    assert_eq!(fp.memory.total_bytes, 0);
    assert_eq!(fp.numa_nodes, 1);
    assert!(fp.gpus.is_empty());
    assert_eq!(status(&fp, "cpu"), Some(ProbeStatus::Error));
    assert_eq!(status(&fp, "memory"), Some(ProbeStatus::Error));
    assert_eq!(status(&fp, "os"), Some(ProbeStatus::Error));
    for report in &fp.probes {
        assert!(!report.reason.is_empty(), "{report:?}");
        assert!(!report.reason.ends_with('.'), "{report:?}");
    }
    assert!(fp.hardware_classes().is_empty());
    assert!(!detect::render_text(&fp).is_empty());
}

#[test]
fn garbled_files_degrade() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    let write = |path: &str, bytes: &[u8]| {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, bytes).expect("write");
    };
    write("proc/cpuinfo", b"processor : 0\nflags : avx2 \xff\xfe\nphysical id : x\n");
    write("proc/meminfo", b"MemTotal: lots kB\n");
    write("sys/devices/system/cpu/cpu0/cache/index0/size", b"huge");
    write("sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq", b"-1");
    write("sys/class/drm/card0/device/vendor", b"0x1002");
    write("sys/class/drm/card0/device/mem_info_vram_total", b"\0\0");
    write("sys/devices/soc0/family", b"Snapdragon");
    let fp = detect::detect_from(root, &env("aarch64"));
    assert_eq!(fp.cpu.logical_cores, 1);
    assert_eq!(fp.cpu.isa_flags, ["avx2"]);
    assert!(fp.cpu.caches.is_empty());
    assert_eq!(fp.cpu.max_frequency_mhz, None);
    assert_eq!(fp.memory.total_bytes, 0);
    assert_eq!(fp.gpus.len(), 2);
    assert_eq!(fp.gpus[0].name, "AMD GPU");
    assert_eq!(fp.gpus[0].memory_bytes, None);
    assert_eq!(fp.gpus[1].name, "Qualcomm soc");
}

/// This machine has no NVIDIA driver (see the issue); where one is loaded the probe must
/// find devices instead.
#[test]
fn nvml_reports_why_it_found_nothing() {
    let (gpus, report) = nvidia::probe();
    assert_eq!(report.probe, "nvml");
    assert!(!report.reason.is_empty());
    let driver_loaded = Path::new("/proc/driver/nvidia").is_dir();
    match report.status {
        ProbeStatus::Absent => {
            assert!(gpus.is_empty());
            assert!(!driver_loaded, "driver loaded yet nvml absent: {}", report.reason);
        }
        ProbeStatus::Found => {
            assert!(!gpus.is_empty());
            assert!(gpus.iter().all(|gpu| gpu.backend == HardwareKind::Cuda));
        }
        ProbeStatus::Error => assert!(driver_loaded, "{}", report.reason),
    }
}

#[test]
fn this_machine() {
    let fp = detect::detect();
    // SAFETY: sysconf has no preconditions.
    let online = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    assert!(online > 0);
    assert_eq!(i64::from(fp.cpu.logical_cores), online as i64);
    assert!(fp.cpu.physical_cores >= 1 && fp.cpu.physical_cores <= fp.cpu.logical_cores);

    let mut sys = sysinfo::System::new();
    sys.refresh_memory();
    let expected = sys.total_memory();
    let diff = fp.memory.total_bytes.abs_diff(expected);
    assert!(diff <= expected / 100, "{} vs sysinfo {expected}", fp.memory.total_bytes);
    assert!(fp.memory.available_bytes <= fp.memory.total_bytes);
    assert_eq!(fp.os.arch, std::env::consts::ARCH);
    assert!(!fp.os.kernel.is_empty());
    assert!(fp.probes.iter().any(|report| report.probe == "nvml"));
    assert!(fp.hardware_classes()[0].starts_with("cpu/"));
}
