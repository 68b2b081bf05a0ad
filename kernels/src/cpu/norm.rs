//! RMSNorm, the fused post-norm + residual add and LayerNorm on the fast CPU path, with the reference's
//! semantics (see `crate::reference::norm`).
//!
//! - `rms_norm`:     `out[r] = x[r] * (mean(x[r]^2) + eps)^-0.5 [* w]`, rows of `dim`
//! - `add_rms_norm`: `residual[r] += x[r] * (mean(x[r]^2) + eps)^-0.5 * w`
//! - `layer_norm`:   `out[r] = (x[r] - mean) * (var + eps)^-0.5 * w + b`
//!
//! The weight is widened once per call into per-thread scratch; each row is a 16-lane sum of
//! squares then one scaling pass (an auto-vectorised [`Job`] per instruction set). Rows run in
//! rayon tasks from [`PAR_MIN`] elements on. v1: auto-vectorised bodies.

use super::isa::Isa;
use super::simd::{self, hsum, rows_per_task, with_scratch, Job, LANES, PAR_MIN};
use crate::args::{LayerNormArgs, RmsNormArgs};
use crate::error::Result;
use crate::tensor::HostTensor;
use rayon::prelude::*;
use std::cell::Cell;

thread_local! {
    /// The widened norm weight of the current call.
    static WEIGHT: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
}

/// Normalised rows of `x` written to (or, `add`, added to) `out`.
struct NormRows<'a> {
    x: &'a [f32],
    dim: usize,
    w: Option<&'a [f32]>,
    eps: f32,
    add: bool,
    out: &'a mut [f32],
}

impl Job for NormRows<'_> {
    type Out = ();
    #[inline(always)]
    fn run<const FMA: bool>(self) {
        let dim = self.dim;
        for (src, dst) in self.x.chunks_exact(dim).zip(self.out.chunks_exact_mut(dim)) {
            let inv_rms = (simd::dot::<FMA>(src, src) / dim as f32 + self.eps).powf(-0.5);
            match (self.w, self.add) {
                (Some(w), false) => {
                    for ((d, v), w) in dst.iter_mut().zip(src).zip(w) {
                        *d = v * inv_rms * w;
                    }
                }
                (Some(w), true) => {
                    for ((d, v), w) in dst.iter_mut().zip(src).zip(w) {
                        *d += v * inv_rms * w;
                    }
                }
                (None, false) => {
                    for (d, v) in dst.iter_mut().zip(src) {
                        *d = v * inv_rms;
                    }
                }
                (None, true) => {
                    for (d, v) in dst.iter_mut().zip(src) {
                        *d += v * inv_rms;
                    }
                }
            }
        }
    }
}

/// The norm of the first `rows` rows of `x` into (or added to) `out`, on validated arguments.
fn norm(isa: Isa, a: &RmsNormArgs, x: &[f32], w: Option<&HostTensor>, add: bool, out: &mut [f32]) {
    let len = a.rows * a.dim;
    if len == 0 {
        return;
    }
    let weight_len = if w.is_some() { a.dim } else { 0 };
    with_scratch(&WEIGHT, weight_len, |weight| {
        if let Some(w) = w {
            simd::widen(w, 0, weight);
        }
        let w = w.map(|_| &*weight);
        let (x, out) = (&x[..len], &mut out[..len]);
        let (eps, dim) = (a.eps, a.dim);
        if len < PAR_MIN {
            return simd::run(isa, NormRows { x, dim, w, eps, add, out });
        }
        let chunk = rows_per_task(dim) * dim;
        out.par_chunks_mut(chunk).zip(x.par_chunks(chunk)).for_each(|(out, x)| {
            simd::run(isa, NormRows { x, dim, w, eps, add, out });
        });
    });
}

/// `out[r] = RMSNorm(x[r]) * w` for each row.
pub(crate) fn rms_norm(isa: Isa, a: &RmsNormArgs, x: &[f32], w: Option<&HostTensor>, out: &mut [f32]) -> Result<()> {
    a.check("rms_norm", x.len(), w.map(|w| w.shape()), out.len())?;
    norm(isa, a, x, w, false, out);
    Ok(())
}

/// `residual[r] += RMSNorm(x[r]) * w` for each row.
pub(crate) fn add_rms_norm(isa: Isa, a: &RmsNormArgs, x: &[f32], w: &HostTensor, residual: &mut [f32]) -> Result<()> {
    a.check("add_rms_norm", x.len(), Some(w.shape()), residual.len())?;
    norm(isa, a, x, Some(w), true, residual);
    Ok(())
}

/// Layer-normalised rows of `x` into `out`: centred in place in `out`, then scaled and shifted.
struct LayerNormRows<'a> {
    x: &'a [f32],
    dim: usize,
    w: &'a [f32],
    b: &'a [f32],
    eps: f32,
    out: &'a mut [f32],
}

impl Job for LayerNormRows<'_> {
    type Out = ();
    #[inline(always)]
    fn run<const FMA: bool>(self) {
        let dim = self.dim;
        for (src, dst) in self.x.chunks_exact(dim).zip(self.out.chunks_exact_mut(dim)) {
            let mut acc = [0.0f32; LANES];
            for chunk in src.chunks(LANES) {
                for (a, v) in acc.iter_mut().zip(chunk) {
                    *a += v;
                }
            }
            let mean = hsum(acc) / dim as f32;
            for (d, v) in dst.iter_mut().zip(src) {
                *d = v - mean;
            }
            let inv_std = (simd::dot::<FMA>(dst, dst) / dim as f32 + self.eps).powf(-0.5);
            for ((d, w), b) in dst.iter_mut().zip(self.w).zip(self.b) {
                *d = simd::madd::<FMA>(*d * inv_std, *w, *b);
            }
        }
    }
}

/// `out[r] = LayerNorm(x[r]) * w + b` for each row.
pub(crate) fn layer_norm(
    isa: Isa,
    a: &LayerNormArgs,
    x: &[f32],
    w: &HostTensor,
    b: &HostTensor,
    out: &mut [f32],
) -> Result<()> {
    let len = a.check(x.len(), w.shape(), b.shape(), out.len())?;
    if len == 0 {
        return Ok(());
    }
    with_scratch(&WEIGHT, 2 * a.dim, |scratch| {
        let (wb, bb) = scratch.split_at_mut(a.dim);
        simd::widen(w, 0, wb);
        simd::widen(b, 0, bb);
        let (w, b, x, out) = (&*wb, &*bb, &x[..len], &mut out[..len]);
        let (eps, dim) = (a.eps, a.dim);
        if len < PAR_MIN {
            return simd::run(isa, LayerNormRows { x, dim, w, b, eps, out });
        }
        let chunk = rows_per_task(dim) * dim;
        out.par_chunks_mut(chunk).zip(x.par_chunks(chunk)).for_each(|(out, x)| {
            simd::run(isa, LayerNormRows { x, dim, w, b, eps, out });
        });
    });
    Ok(())
}
