//! Seeded normals per second: the random-init generator (`kernels::random`) against the
//! one it replaced (the same SplitMix64 draws through libm's `logf`/`cosf`, one value at
//! a time), side by side in one run. bert-tiny's word embeddings are 3.9 M values,
//! TinyLlama-1.1B has 1.1 G.
//!
//! `cargo run -p kernels --example normals [-- ROUNDS]` (the dev profile builds `kernels`
//! at opt-level 3).

mod common;

use kernels::random::{draw, fill_normal};
use kernels::Isa;

const N: usize = 1 << 22;

fn main() {
    let rounds: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(5);
    println!("cpu: {} | isa: {} | threads: {}", common::cpu_name(), Isa::best_name(), rayon::current_num_threads());
    let mut out = vec![0f32; N];
    let libm = common::best_of(rounds, || libm_normals(9, &mut out));
    let one_thread = |isa| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().expect("a pool");
        let mut out = vec![0f32; N];
        pool.install(|| common::best_of(rounds, || fill_normal(9, 0, 1.0, &mut out, isa)))
    };
    let scalar = one_thread(Isa::Scalar);
    let best = one_thread(Isa::Best);
    let all = common::best_of(rounds, || fill_normal(9, 0, 1.0, &mut out, Isa::Best));
    for (what, secs) in [
        ("libm logf/cosf, 1 thread (before)", libm),
        ("kernels::random scalar, 1 thread", scalar),
        ("kernels::random best isa, 1 thread", best),
        ("kernels::random best isa, all threads", all),
    ] {
        println!("{what:<40} {:>7.1} M normals/s  {:>5.1}x", N as f64 / secs / 1e6, libm / secs);
    }
}

/// The generator before `kernels::random`: Box–Muller through libm.
fn libm_normals(seed: u64, out: &mut [f32]) {
    let unit = |bits: u64| ((bits >> 40) as f32 + 1.0) / (1u64 << 24) as f32;
    for (i, v) in out.iter_mut().enumerate() {
        let (u1, u2) = (unit(draw(seed, 2 * i as u64 + 1)), unit(draw(seed, 2 * i as u64 + 2)));
        *v = (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos();
    }
}
