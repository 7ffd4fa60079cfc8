//! Bench: what the run-time dispatch is worth for the kernels' passes, side by side in
//! one run (the best instruction set against the portable scalar build of the same
//! code, and against libm's scalar erf as stock candle calls it).
//!
//! Also gemm's f32 against the bf16 kernel on BERT-base's shapes.
//!
//! `cargo run -p kernels --release --example epilogues` (or without `--release`: the
//! dev profile builds this crate at opt-level 3 too).

mod common;

use common::{best_of, cpu_name};
use kernels::bf16;
use kernels::linear::{self, Epilogue, Linear};
use kernels::norm::LayerNorm;
use kernels::Isa;

fn main() {
    println!("cpu: {} | best isa: {}", cpu_name(), Isa::best_name());
    // BERT-base's MLP activation at batch 1, seq 128 (1.5 MB: in L2, as after the GEMM
    // that writes it). Each timed pass starts from the same values.
    let (rows, n) = (128, 3072);
    let start: Vec<f32> = (0..rows * n).map(|i| (i % 1000) as f32 / 250.0 - 2.0).collect();
    let mut out = start.clone();
    let bias: Vec<f32> = (0..n).map(|i| i as f32 / n as f32 - 0.5).collect();
    for (name, isa) in [("best", Isa::Best), ("scalar", Isa::Scalar)] {
        let t = best_of(20, || {
            out.copy_from_slice(&start);
            let layer = Linear::new(vec![0.0; n], bias.clone(), 1, n);
            let x = vec![0f32; rows];
            linear::forward(&layer, &x, rows, &mut out, Epilogue::BiasGelu, 1, isa);
        });
        println!("bias+gelu {rows}x{n}, 1 thread, {name:>6}: {:8.2} ms", t * 1e3);
    }
    let t = best_of(20, || {
        out.copy_from_slice(&start);
        for (v, b) in out.iter_mut().zip(bias.iter().cycle()) {
            let x = *v + b;
            *v = 0.5 * x * (1.0 + erf_libm(x * std::f32::consts::FRAC_1_SQRT_2));
        }
    });
    println!("bias+gelu {rows}x{n}, 1 thread,   libm: {:8.2} ms", t * 1e3);
    let ln = LayerNorm { gamma: vec![1.0; 768], beta: vec![0.0; 768], eps: 1e-12 };
    let x: Vec<f32> = (0..rows * 768).map(|i| (i % 97) as f32).collect();
    let mut y = x.clone();
    for (name, isa) in [("best", Isa::Best), ("scalar", Isa::Scalar)] {
        let t = best_of(20, || ln.forward(&x, &mut y, 1, isa));
        println!("layer norm {rows}x768, 1 thread, {name:>6}: {:8.2} ms", t * 1e3);
    }
    // Skipped under emulation (ops/bench/fallback.sh): those timings mean nothing and
    // the GEMMs take minutes there.
    if !std::env::args().any(|a| a == "--skip-gemm") {
        gemm_f32_vs_bf16();
    }
}

/// BERT-base's four GEMM shapes at batch 1, seq 128, on every thread: gemm's f32
/// kernel against the bf16 one (`vdpbf16ps`), same operands.
fn gemm_f32_vs_bf16() {
    let rows = 128;
    for (k, n) in [(768, 2304), (768, 768), (768, 3072), (3072, 768)] {
        let x: Vec<f32> = (0..rows * k).map(|i| (i % 89) as f32 / 89.0 - 0.5).collect();
        let w: Vec<f32> = (0..k * n).map(|i| (i % 71) as f32 / 71.0 - 0.5).collect();
        let f32_layer = Linear::new(w.clone(), vec![0.0; n], k, n);
        let panels = bf16::Panels::from_f32(&w, k, n);
        let mut out = vec![0f32; rows * n];
        let threads = rayon::current_num_threads();
        let f = best_of(10, || linear::forward(&f32_layer, &x, rows, &mut out, Epilogue::Bias, threads, Isa::Best));
        let b = best_of(10, || panels.matmul(Isa::Best, &x, rows, &mut out));
        let gflops = |t: f64| 2.0 * (rows * k * n) as f64 / t / 1e9;
        println!(
            "gemm {rows}x{k}x{n}, {threads} threads: f32 {:.0} GFLOP/s, bf16 {:.0} GFLOP/s (bf16 fast path: {}), bf16/f32 time {:.2}",
            gflops(f),
            gflops(b),
            bf16::Panels::fast_path_available(),
            b / f
        );
    }
}

fn erf_libm(x: f32) -> f32 {
    // The same call candle's gelu_erf makes per element.
    extern "C" {
        fn erff(x: f32) -> f32;
    }
    // SAFETY: erff is a pure libm function on a plain float.
    unsafe { erff(x) }
}
