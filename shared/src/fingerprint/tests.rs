//! Tests of fingerprints: CPU names, ISA flags, hardware classes, the identity hash and
//! the wire format.

use super::identity::{round_to, GIB};
use super::*;
use crate::hardware::HardwareKind;
use expect_test::expect;

fn xeon() -> Fingerprint {
    Fingerprint {
        schema_version: SCHEMA_VERSION,
        hostname: "node-a".into(),
        os: OsInfo {
            name: "Ubuntu".into(),
            version: "22.04".into(),
            kernel: "5.15.0-91-generic".into(),
            arch: "x86_64".into(),
        },
        cpu: CpuInfo {
            vendor: "GenuineIntel".into(),
            model_name: "Intel(R) Xeon(R) Platinum 8380 CPU @ 2.30GHz".into(),
            microarchitectures: vec![],
            sockets: 2,
            physical_cores: 80,
            logical_cores: 160,
            base_frequency_mhz: Some(2300),
            max_frequency_mhz: Some(3400),
            isa_flags: ml_isa_flags(["avx512f", "avx2", "sse2", "avx"]),
            caches: vec![Cache { level: 1, kind: CacheKind::Data, size_bytes: 48 * 1024 }],
            threads_limit: None,
        },
        memory: MemoryInfo { total_bytes: 540_700_000_000, available_bytes: 500_000_000_000 },
        numa_nodes: 2,
        gpus: vec![h100(0, "GPU-aaaa"), h100(1, "GPU-bbbb")],
        soc: None,
        probes: vec![ProbeReport::found("nvml", "found 2 devices")],
        software: SoftwareInfo { agent_version: "0.1.0".into(), agent_features: vec![] },
    }
}

fn h100(index: u32, uuid: &str) -> GpuDevice {
    let mut gpu = GpuDevice::new(index, GpuVendor::Nvidia, HardwareKind::Cuda, "NVIDIA H100 80GB HBM3");
    gpu.uuid = Some(uuid.into());
    gpu.memory_bytes = Some(85_520_809_984);
    gpu.compute_capability = Some("9.0".into());
    gpu
}

fn check_model(input: &str, expected: expect_test::Expect) {
    expected.assert_eq(&normalize_cpu_model(input));
}

#[test]
fn cpu_models_normalise() {
    check_model("Intel(R) Xeon(R) Platinum 8380 CPU @ 2.30GHz", expect!["Intel Xeon Platinum 8380"]);
    check_model("Intel(R) Xeon(R) CPU E5-2690 v4 @ 2.60GHz", expect!["Intel Xeon E5-2690 v4"]);
    check_model("AMD EPYC 7313P 16-Core Processor", expect!["AMD EPYC 7313P"]);
    check_model("  AMD   EPYC 7B13 ", expect!["AMD EPYC 7B13"]);
    check_model("Intel(R) Core(TM) i7-8700 CPU @ 3.20GHz", expect!["Intel Core i7-8700"]);
    check_model("11th Gen Intel(R) Core(TM) i7-1165G7 @ 2.80GHz", expect!["11th Gen Intel Core i7-1165G7"]);
    check_model("Apple M2 Max", expect!["Apple M2 Max"]);
    check_model("", expect![""]);
}

#[test]
fn isa_flags_keep_only_ml_ones_sorted() {
    let flags = ml_isa_flags("fpu sse2 avx2 avx avx512_vnni fma avx2 amx_tile".split(' '));
    assert_eq!(flags, ["amx_tile", "avx", "avx2", "avx512_vnni", "fma"]);
    let arm = ml_isa_flags("fp asimd evtstrm aes asimddp i8mm bf16 sve2".split(' '));
    assert_eq!(arm, ["asimd", "asimddp", "bf16", "i8mm", "sve2"]);
}

#[test]
fn hardware_classes_one_per_device_kind() {
    let mut fp = xeon();
    let mut mi210 = GpuDevice::new(0, GpuVendor::Amd, HardwareKind::Rocm, "AMD  Instinct MI210");
    mi210.memory_bytes = Some(68_702_699_520);
    fp.gpus.push(mi210);
    assert_eq!(
        fp.hardware_classes(),
        ["cpu/Intel Xeon Platinum 8380", "cuda/NVIDIA H100 80GB HBM3", "rocm/AMD Instinct MI210"]
    );
}

#[test]
fn hardware_class_of_a_kind_is_the_first_of_that_kind() {
    let fp = xeon();
    assert_eq!(fp.hardware_class_of(HardwareKind::Cpu).as_deref(), Some("cpu/Intel Xeon Platinum 8380"));
    assert_eq!(fp.hardware_class_of(HardwareKind::Cuda).as_deref(), Some("cuda/NVIDIA H100 80GB HBM3"));
    assert_eq!(fp.hardware_class_of(HardwareKind::Metal), None);
}

#[test]
fn hash_ignores_volatile_facts() {
    let a = xeon();
    let mut b = xeon();
    b.memory.available_bytes = 12;
    b.memory.total_bytes += 100 * 1024 * 1024; // reserved memory moves a little
    b.hostname = "renamed".into();
    b.cpu.max_frequency_mhz = None;
    b.gpus.reverse();
    b.gpus[0].power_limit_watts = Some(350.0);
    b.gpus[1].driver_version = Some("550.54.15".into());
    b.probes.clear();
    b.software.agent_version = "9.9.9".into();
    assert_eq!(a.hash(), b.hash());
    assert_eq!(a.hash().len(), 64);
    assert!(a.hash().chars().all(|c| c.is_ascii_hexdigit()));
}

#[test]
fn hash_follows_identity() {
    let base = xeon().hash();
    let mut other_gpu = xeon();
    other_gpu.gpus[1].name = "NVIDIA A100-SXM4-80GB".into();
    assert_ne!(base, other_gpu.hash());
    let mut swapped_card = xeon();
    swapped_card.gpus[1].uuid = Some("GPU-cccc".into());
    assert_ne!(base, swapped_card.hash());
    let mut more_memory = xeon();
    more_memory.memory.total_bytes *= 2;
    assert_ne!(base, more_memory.hash());
    let mut new_kernel = xeon();
    new_kernel.os.kernel = "6.8.0-45-generic".into();
    assert_ne!(base, new_kernel.hash());
    let mut amx = xeon();
    amx.cpu.isa_flags.push("amx_tile".into());
    assert_ne!(base, amx.hash());
}

#[test]
fn hash_is_pinned() {
    // The hash is stored by coordinators: it must not move between releases unless
    // SCHEMA_VERSION does.
    expect!["e200a7b64c79547dc5d26d319913b67c5239d21ef8d6c04cad8affaac073bc14"].assert_eq(&xeon().hash());
}

#[test]
fn serde_round_trip() {
    let fp = xeon();
    let json = serde_json::to_string(&fp).expect("serialise");
    assert!(json.contains(r#""backend":"cuda""#));
    assert!(json.contains(r#""vendor":"nvidia""#));
    let back: Fingerprint = serde_json::from_str(&json).expect("deserialise");
    assert_eq!(back, fp);
}

#[test]
fn a_device_backend_is_never_cpu() {
    let json = serde_json::to_string(&h100(0, "GPU-aaaa")).expect("serialise");
    for kind in ["cuda", "rocm", "metal", "qnn", "xpu", "npu"] {
        let other = json.replace(r#""backend":"cuda""#, &format!(r#""backend":"{kind}""#));
        assert_eq!(serde_json::from_str::<GpuDevice>(&other).expect("an accelerator").backend.as_str(), kind);
    }
    for bad in ["cpu", "tpu", "CUDA"] {
        let other = json.replace(r#""backend":"cuda""#, &format!(r#""backend":"{bad}""#));
        let err = serde_json::from_str::<GpuDevice>(&other).expect_err(bad).to_string();
        assert!(
            err.starts_with(&format!(
                "unknown variant `{bad}`, expected one of `cuda`, `rocm`, `metal`, `qnn`, `xpu`, `npu`"
            )),
            "{err}"
        );
    }
}

#[test]
fn soc_name_falls_back_to_soc_id() {
    let mut soc = SocInfo {
        vendor: "Qualcomm".into(),
        machine: Some("SM8550".into()),
        soc_id: Some("519".into()),
        ..SocInfo::default()
    };
    assert_eq!(soc.name(), "SM8550");
    soc.machine = None;
    assert_eq!(soc.name(), "Qualcomm soc 519");
}

#[test]
fn rounding_is_to_nearest() {
    assert_eq!(round_to(GIB + GIB / 2, GIB), 2);
    assert_eq!(round_to(GIB + GIB / 2 - 1, GIB), 1);
    assert_eq!(round_to(0, GIB), 0);
}

#[test]
fn a_thread_limit_names_its_own_cpu_class_and_keeps_the_hash() {
    let all = xeon();
    let mut two = xeon();
    two.cpu.threads_limit = Some(2);
    let mut one = xeon();
    one.cpu.threads_limit = Some(1);
    let cpu = |fp: &Fingerprint| fp.hardware_class_of(HardwareKind::Cpu).expect("test value");
    assert_eq!(cpu(&two), format!("{} (2 threads)", cpu(&all)));
    assert_eq!(cpu(&one), format!("{} (1 thread)", cpu(&all)));
    assert_eq!(two.hash(), all.hash(), "the same machine");
    // Stored fingerprints without the field read as unlimited.
    let json = serde_json::to_string(&all).expect("test value");
    assert!(!json.contains("threads_limit"));
    assert_eq!(serde_json::from_str::<Fingerprint>(&json).expect("test value").cpu.threads_limit, None);
}
