//! Throughput of the quantized kernels on TinyLlama-1.1B's shapes: one activation row
//! (decoding a token: weight bytes streamed per second) and 128 rows (a prompt:
//! multiply-adds per second), AVX-512 VNNI against the scalar reference.
//!
//! `cargo run --release -p kernels --example q4 [-- ROUNDS]`

mod common;

use kernels::quant::{Format, Matrix, BLOCK};
use kernels::Isa;

fn main() {
    let rounds: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(5);
    println!(
        "cpu: {} | fast path: {} | threads: {}",
        common::cpu_name(),
        Matrix::fast_path_available(),
        rayon::current_num_threads()
    );
    decode_pass(Format::Q4_0, rounds);
    decode_pass(Format::Q8_0, rounds);
    for format in [Format::Q4_0, Format::Q4_1, Format::Q8_0] {
        for (rows, cols) in [(2048, 2048), (5632, 2048), (2048, 5632), (32000, 2048)] {
            let raw: Vec<u8> =
                (0..rows * cols / BLOCK * format.block_bytes()).map(|i| (i * 2654435761usize >> 7) as u8).collect();
            let raw = fix_scales(format, raw);
            let w = Matrix::from_ggml(format, rows, cols, &raw).expect("weights");
            for m in [1usize, 128] {
                let x: Vec<f32> = (0..m * cols).map(|i| ((i % 97) as f32 - 48.0) / 50.0).collect();
                let mut out = vec![0f32; m * rows];
                let best = common::best_of(rounds, || w.matmul_t(Isa::Best, &x, m, &mut out));
                let figure = if m == 1 {
                    format!("{:.1} GB/s of weights", w.size_in_bytes() as f64 / best / 1e9)
                } else {
                    format!("{:.0} GMAC/s", (m * rows * cols) as f64 / best / 1e9)
                };
                println!("{format:?} {rows}x{cols} m={m}: {:.3} ms best of {rounds}, {figure}", best * 1e3);
            }
        }
    }
}

/// One decoded token's worth of products: every weight matrix of TinyLlama-1.1B's 22
/// layers (about 600 MB at q4_0, far beyond any cache) against one activation row,
/// as a decode step streams them.
fn decode_pass(format: Format, rounds: usize) {
    let shapes = [(2048, 2048), (256, 2048), (256, 2048), (2048, 2048), (5632, 2048), (5632, 2048), (2048, 5632)];
    let layers: Vec<Matrix> = (0..22)
        .flat_map(|_| shapes)
        .map(|(rows, cols)| {
            let raw = fix_scales(format, vec![0x5A; rows * cols / BLOCK * format.block_bytes()]);
            Matrix::from_ggml(format, rows, cols, &raw).expect("weights")
        })
        .collect();
    let bytes: usize = layers.iter().map(Matrix::size_in_bytes).sum();
    let best = common::best_of(rounds, || {
        for w in &layers {
            let (rows, cols) = w.shape();
            let x = vec![0.25f32; cols];
            let mut out = vec![0f32; rows];
            w.matmul_t(Isa::Best, &x, 1, &mut out);
        }
    });
    println!(
        "decode pass, 22 layers of TinyLlama at {format:?} ({:.0} MB): {:.2} ms best of {rounds}, {:.1} GB/s, {:.1} passes/s",
        bytes as f64 / 1e6,
        best * 1e3,
        bytes as f64 / best / 1e9,
        1.0 / best
    );
}

/// Random bytes make random f16 scales, NaN and infinities among them: give every block
/// a scale of 0.01 (and q4_1 an offset of -0.08) instead.
fn fix_scales(format: Format, mut raw: Vec<u8>) -> Vec<u8> {
    let scale = half::f16::from_f32(0.01).to_le_bytes();
    let offset = half::f16::from_f32(-0.08).to_le_bytes();
    for block in raw.chunks_exact_mut(format.block_bytes()) {
        block[..2].copy_from_slice(&scale);
        if format == Format::Q4_1 {
            block[2..4].copy_from_slice(&offset);
        }
    }
    raw
}
