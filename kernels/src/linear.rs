//! A linear layer, `y = x · W + b`, with what follows it in a transformer applied in the
//! same pass over `y`: GELU (the MLP's first projection) or a residual (the projections
//! that feed a skip connection).
//!
//! Stock candle makes each of those a separate single-threaded pass that allocates a new
//! tensor, and its GELU calls libm's scalar `erff` per value: ~4.4 ns each here, 8.6×
//! this module's vectorised pass (docs/PERFORMANCE.md, "Fused encoder kernels").

use rayon::prelude::*;

use crate::{bf16, math, matmul, parallelism, run, Isa, Kernel};

/// Weights of one linear layer. In f32 laid out for gemm: `[inputs, outputs]` row-major
/// (the transpose of PyTorch's `[out, in]`), so `x · w` reads both operands row by row;
/// or rounded to bf16 and packed for the bf16 kernel ([`Linear::into_bf16`]).
#[derive(Clone, Debug)]
pub enum Weights {
    F32(Vec<f32>),
    Bf16(bf16::Panels),
}

/// One linear layer: weights and bias.
#[derive(Clone, Debug)]
pub struct Linear {
    pub w: Weights,
    pub bias: Vec<f32>,
    pub inputs: usize,
    pub outputs: usize,
}

impl Linear {
    /// An f32 layer from `w`, `[inputs, outputs]` row-major.
    pub fn new(w: Vec<f32>, bias: Vec<f32>, inputs: usize, outputs: usize) -> Linear {
        Linear { w: Weights::F32(w), bias, inputs, outputs }
    }

    /// From PyTorch's layout: `weight` is `[outputs, inputs]` row-major.
    pub fn from_torch_layout(weight: &[f32], bias: Vec<f32>, inputs: usize, outputs: usize) -> Linear {
        assert_eq!(weight.len(), inputs * outputs, "weight is not {outputs}×{inputs}");
        assert_eq!(bias.len(), outputs, "bias is not {outputs} long");
        let mut w = vec![0f32; inputs * outputs];
        for o in 0..outputs {
            for i in 0..inputs {
                w[i * outputs + o] = weight[o * inputs + i];
            }
        }
        Linear::new(w, bias, inputs, outputs)
    }

    /// Several f32 layers reading the same input as one (Q, K and V become one GEMM
    /// three times as wide): outputs side by side, in the order given. Concatenate
    /// before [`Linear::into_bf16`]: a packed layer here is a bug in the caller.
    pub fn concat(parts: &[&Linear]) -> Linear {
        let inputs = parts.first().map_or(0, |p| p.inputs);
        assert!(parts.iter().all(|p| p.inputs == inputs), "concatenated layers must share their input width");
        let outputs: usize = parts.iter().map(|p| p.outputs).sum();
        let mut w = Vec::with_capacity(inputs * outputs);
        for i in 0..inputs {
            for p in parts {
                let Weights::F32(pw) = &p.w else { panic!("concatenate layers before packing them to bf16") };
                w.extend_from_slice(&pw[i * p.outputs..(i + 1) * p.outputs]);
            }
        }
        let bias = parts.iter().flat_map(|p| p.bias.iter().copied()).collect();
        Linear::new(w, bias, inputs, outputs)
    }

    /// The same layer with its weights rounded to bf16 for the bf16 kernel (the bias
    /// and the epilogue stay f32).
    pub fn into_bf16(self) -> Linear {
        let w = match self.w {
            Weights::F32(w) => Weights::Bf16(bf16::Panels::from_f32(&w, self.inputs, self.outputs)),
            packed => packed,
        };
        Linear { w, ..self }
    }
}

/// What is applied to `x · W` on its way out.
#[derive(Clone, Copy, Debug)]
pub enum Epilogue<'a> {
    /// `+ b`
    Bias,
    /// `gelu(· + b)`
    BiasGelu,
    /// `+ b + residual`, the residual shaped like the output.
    BiasResidual(&'a [f32]),
}

/// `out = epilogue(x · W)` for `rows` rows of `x` (`rows × inputs`), on `threads` threads.
pub fn forward(layer: &Linear, x: &[f32], rows: usize, out: &mut [f32], epilogue: Epilogue, threads: usize, isa: Isa) {
    let (k, n) = (layer.inputs, layer.outputs);
    match &layer.w {
        Weights::F32(w) => assert_eq!(w.len(), k * n, "weight is not {k}×{n}"),
        Weights::Bf16(p) => assert_eq!(p.shape(), (k, n), "packed weight is not {k}×{n}"),
    }
    assert_eq!(layer.bias.len(), n, "bias is not {n} long");
    assert_eq!(x.len(), rows * k, "input is not {rows}×{k}");
    assert_eq!(out.len(), rows * n, "output is not {rows}×{n}");
    if let Epilogue::BiasResidual(r) = epilogue {
        assert_eq!(r.len(), rows * n, "residual is not {rows}×{n}");
    }
    if rows == 0 || n == 0 {
        return;
    }
    match &layer.w {
        // SAFETY: the three matrices are row-major with the strides given, and the
        // lengths were checked against rows, k and n above; `out` does not alias the
        // inputs (it is a `&mut`).
        Weights::F32(w) => unsafe {
            matmul((rows, n, k), out.as_mut_ptr(), n, (x.as_ptr(), k, 1), (w.as_ptr(), n, 1), parallelism(threads));
        },
        // On rayon's pool (which the agent sizes to its thread count).
        Weights::Bf16(p) => p.matmul(isa, x, rows, out),
    }
    apply_epilogue(out, &layer.bias, epilogue, threads, isa);
}

/// One pass over `out` (rows of `bias.len()`), split into as many row blocks as threads.
fn apply_epilogue(out: &mut [f32], bias: &[f32], epilogue: Epilogue, threads: usize, isa: Isa) {
    let n = bias.len();
    let rows = out.len() / n;
    let rows_per_task = rows.div_ceil(threads.max(1)).max(1);
    let block = rows_per_task * n;
    let work = |(i, out): (usize, &mut [f32])| {
        let residual = match epilogue {
            Epilogue::BiasResidual(r) => Some(&r[i * block..i * block + out.len()]),
            _ => None,
        };
        run(isa, Rows { out, bias, gelu: matches!(epilogue, Epilogue::BiasGelu), residual })
    };
    if threads <= 1 {
        out.chunks_mut(block).enumerate().for_each(work);
    } else {
        out.par_chunks_mut(block).enumerate().for_each(work);
    }
}

/// The epilogue over one block of whole rows.
struct Rows<'a> {
    out: &'a mut [f32],
    bias: &'a [f32],
    gelu: bool,
    residual: Option<&'a [f32]>,
}

impl Kernel for Rows<'_> {
    type Output = ();

    #[inline(always)]
    fn call(self) {
        let n = self.bias.len();
        match (self.gelu, self.residual) {
            (_, Some(residual)) => {
                for (row, res) in self.out.chunks_exact_mut(n).zip(residual.chunks_exact(n)) {
                    for ((y, b), r) in row.iter_mut().zip(self.bias).zip(res) {
                        *y += b + r;
                    }
                }
            }
            (true, None) => {
                for row in self.out.chunks_exact_mut(n) {
                    for (y, b) in row.iter_mut().zip(self.bias) {
                        *y = math::gelu(*y + b);
                    }
                }
            }
            (false, None) => {
                for row in self.out.chunks_exact_mut(n) {
                    for (y, b) in row.iter_mut().zip(self.bias) {
                        *y += b;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seeded;

    /// Plain f64 `x · Wᵀ + b` from PyTorch's layout, the reference.
    fn reference(x: &[f32], weight: &[f32], bias: &[f32], rows: usize, k: usize, n: usize) -> Vec<f64> {
        let mut y = vec![0f64; rows * n];
        for r in 0..rows {
            for o in 0..n {
                let mut s = bias[o] as f64;
                for i in 0..k {
                    s += x[r * k + i] as f64 * weight[o * k + i] as f64;
                }
                y[r * n + o] = s;
            }
        }
        y
    }

    fn close(got: &[f32], want: &[f64], tol: f64) {
        assert_eq!(got.len(), want.len());
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!((*g as f64 - w).abs() <= tol * w.abs().max(1.0), "element {i}: {g} against {w}");
        }
    }

    #[test]
    fn every_epilogue_matches_the_reference_on_every_isa_and_thread_count() {
        let (rows, k, n) = (37, 50, 29);
        let x = seeded(rows * k, 1);
        let weight = seeded(n * k, 2);
        let bias = seeded(n, 3);
        let residual = seeded(rows * n, 4);
        let layer = Linear::from_torch_layout(&weight, bias.clone(), k, n);
        let plain = reference(&x, &weight, &bias, rows, k, n);
        for isa in [Isa::Best, Isa::Scalar] {
            for threads in [1, 2, 3] {
                let mut out = vec![f32::NAN; rows * n];
                forward(&layer, &x, rows, &mut out, Epilogue::Bias, threads, isa);
                close(&out, &plain, 1e-5);
                forward(&layer, &x, rows, &mut out, Epilogue::BiasGelu, threads, isa);
                let gelu: Vec<f64> = plain.iter().map(|&v| math::gelu(v as f32) as f64).collect::<Vec<_>>();
                close(&out, &gelu, 1e-5);
                forward(&layer, &x, rows, &mut out, Epilogue::BiasResidual(&residual), threads, isa);
                let with_residual: Vec<f64> = plain.iter().zip(&residual).map(|(v, r)| v + *r as f64).collect();
                close(&out, &with_residual, 1e-5);
            }
        }
    }

    /// A layer packed to bf16 computes the product of the bf16-rounded operands, then
    /// the same f32 epilogue: within bf16's rounding (2⁻⁸ relative per operand) of f32.
    #[test]
    fn a_bf16_layer_runs_every_epilogue_within_bf16_rounding() {
        let (rows, k, n) = (19, 64, 45);
        let (x, weight, bias, residual) = (seeded(rows * k, 5), seeded(n * k, 6), seeded(n, 7), seeded(rows * n, 8));
        let layer = Linear::from_torch_layout(&weight, bias.clone(), k, n).into_bf16();
        assert!(matches!(layer.w, Weights::Bf16(_)));
        let plain = reference(&x, &weight, &bias, rows, k, n);
        let with_residual: Vec<f64> = plain.iter().zip(&residual).map(|(v, r)| v + *r as f64).collect();
        for isa in [Isa::Best, Isa::Scalar] {
            let mut out = vec![f32::NAN; rows * n];
            forward(&layer, &x, rows, &mut out, Epilogue::Bias, 2, isa);
            close(&out, &plain, 0.02);
            forward(&layer, &x, rows, &mut out, Epilogue::BiasResidual(&residual), 2, isa);
            close(&out, &with_residual, 0.02);
        }
    }

    #[test]
    fn concatenated_layers_compute_each_part_side_by_side() {
        let (rows, k) = (5, 8);
        let x = seeded(rows * k, 9);
        let parts: Vec<Linear> = [3usize, 4, 2]
            .iter()
            .enumerate()
            .map(|(i, &n)| Linear::from_torch_layout(&seeded(n * k, 10 + i as u32), seeded(n, 20 + i as u32), k, n))
            .collect();
        let fused = Linear::concat(&parts.iter().collect::<Vec<_>>());
        let mut all = vec![0f32; rows * fused.outputs];
        forward(&fused, &x, rows, &mut all, Epilogue::Bias, 2, Isa::Best);
        let mut offset = 0;
        for p in &parts {
            let mut one = vec![0f32; rows * p.outputs];
            forward(p, &x, rows, &mut one, Epilogue::Bias, 1, Isa::Best);
            for r in 0..rows {
                for o in 0..p.outputs {
                    let (a, b) = (all[r * fused.outputs + offset + o], one[r * p.outputs + o]);
                    assert!((a - b).abs() < 1e-5, "row {r} output {o}: {a} against {b}");
                }
            }
            offset += p.outputs;
        }
    }

    /// The panic message of `f`, which must panic (a caller's bug: lengths that do not
    /// match the shapes are refused before gemm reads a pointer).
    fn panic_message(f: impl FnOnce() + std::panic::UnwindSafe) -> String {
        let err = std::panic::catch_unwind(f).expect_err("must panic");
        err.downcast_ref::<String>()
            .cloned()
            .or_else(|| err.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default()
    }

    #[test]
    fn a_layer_whose_weight_is_short_is_refused_before_gemm_reads_it() {
        let message = panic_message(|| {
            let layer = Linear::new(vec![0.0; 7], vec![0.0; 2], 4, 2);
            let mut out = vec![0f32; 6];
            forward(&layer, &[0.0; 12], 3, &mut out, Epilogue::Bias, 1, Isa::Best);
        });
        assert!(message.contains("weight is not 4×2"), "{message}");
    }

    #[test]
    fn a_short_input_is_refused_before_gemm_reads_it() {
        let message = panic_message(|| {
            let layer = Linear::from_torch_layout(&[0.0; 8], vec![0.0; 2], 4, 2);
            let mut out = vec![0f32; 6];
            forward(&layer, &[0.0; 11], 3, &mut out, Epilogue::Bias, 1, Isa::Best);
        });
        assert!(message.contains("input is not 3×4"), "{message}");
    }
}
