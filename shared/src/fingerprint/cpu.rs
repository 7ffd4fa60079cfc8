//! CPU facts as hardware classes and identities use them: the model name without
//! trademarks, clock and core-count words, and the ML-relevant ISA flags.
//!
//! Must never: keep a word that differs between two machines of the same CPU model.

/// The instruction-set extensions that matter for ML kernels, in Linux `/proc/cpuinfo`
/// spelling (x86 `flags`, arm64 `Features`). Everything else is dropped from
/// [`CpuInfo::isa_flags`](super::CpuInfo::isa_flags).
pub const ML_ISA_FLAGS: &[&str] = &[
    // x86
    "avx",
    "avx2",
    "fma",
    "f16c",
    "avx_vnni",
    "avx512f",
    "avx512bw",
    "avx512vl",
    "avx512_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "amx_tile",
    "amx_bf16",
    "amx_int8",
    // arm
    "neon",
    "asimd",
    "asimdhp",
    "asimddp",
    "i8mm",
    "bf16",
    "sve",
    "sve2",
];

/// The CPU model as used in hardware classes: trademarks (`(R)`, `(TM)`), the words `CPU`
/// and `Processor`, core-count words (`16-Core`) and clock suffixes (`@ 2.30GHz`) removed,
/// spaces collapsed. `Intel(R) Xeon(R) Platinum 8380 CPU @ 2.30GHz` becomes
/// `Intel Xeon Platinum 8380`; `AMD EPYC 7313P 16-Core Processor` becomes `AMD EPYC 7313P`.
pub fn normalize_cpu_model(model: &str) -> String {
    let mut text = model.to_owned();
    for mark in ["(R)", "(r)", "(TM)", "(tm)", "(C)", "®", "™"] {
        text = text.replace(mark, " ");
    }
    // Everything from an `@` on is the clock speed.
    if let Some(at) = text.find('@') {
        text.truncate(at);
    }
    let words: Vec<&str> = text
        .split_whitespace()
        .filter(|word| {
            let lower = word.to_ascii_lowercase();
            !(lower == "cpu" || lower == "processor" || is_core_count_word(&lower))
        })
        .collect();
    words.join(" ")
}

/// `16-core`, `8-core`, `dual-core`, `quad-core`, `six-core`.
fn is_core_count_word(lower: &str) -> bool {
    match lower.strip_suffix("-core") {
        Some(count) => {
            count.chars().all(|c| c.is_ascii_digit()) && !count.is_empty()
                || matches!(count, "dual" | "quad" | "six" | "eight" | "twelve")
        }
        None => false,
    }
}

/// Keeps the ML-relevant flags of a `/proc/cpuinfo` flags or Features line, sorted and
/// without duplicates.
pub fn ml_isa_flags<'a>(flags: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut kept: Vec<String> =
        flags.into_iter().filter(|flag| ML_ISA_FLAGS.contains(flag)).map(str::to_owned).collect();
    kept.sort_unstable();
    kept.dedup();
    kept
}
