//! Bench: what the run-time dispatch is worth for the kernels' passes, side by side in
//! one run (the best instruction set against the portable scalar build of the same
//! code, and against libm's scalar erf as stock candle calls it).
//!
//! `cargo run -p kernels --release --example epilogues` (or without `--release`: the
//! dev profile builds this crate at opt-level 3 too).

use std::time::Instant;

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
            let layer = Linear { w: vec![0.0; n], bias: bias.clone(), inputs: 1, outputs: n };
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
}

fn erf_libm(x: f32) -> f32 {
    // The same call candle's gelu_erf makes per element.
    extern "C" {
        fn erff(x: f32) -> f32;
    }
    // SAFETY: erff is a pure libm function on a plain float.
    unsafe { erff(x) }
}

fn best_of(n: usize, mut f: impl FnMut()) -> f64 {
    (0..n)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

fn cpu_name() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}
