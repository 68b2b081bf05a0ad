//! RMSNorm and LayerNorm, reference version: each of `rows` rows of `dim` becomes
//! `x * (mean(x^2) + eps)^-0.5 * w` in f32 (Gemma 4 uses the weight as-is, not `1 + w`; without a
//! weight it is the scale-free norm). See [`RmsNormArgs`].
//!
//! Layout: `x`, `out`, `residual` `[rows, dim]` f32; `w` `[dim]` in its storage dtype. Per-head
//! norms (q/k/v norms) are the same op with `rows = tokens * heads`, `dim = head_dim`.
//! `add_rms_norm` adds the normed row to `residual` instead of writing `out`.

use super::matmul::{dot, widen};
use crate::args::{LayerNormArgs, RmsNormArgs};
use crate::error::Result;
use crate::tensor::HostTensor;

/// `out[r] = RMSNorm(x[r]) * w` for each row.
pub(crate) fn rms_norm(a: &RmsNormArgs, x: &[f32], w: Option<&HostTensor>, out: &mut [f32]) -> Result<()> {
    a.check("rms_norm", x.len(), w.map(|w| w.shape()), out.len())?;
    let weight = w.map(|w| widened(w, a.dim));
    for r in 0..a.rows {
        let span = r * a.dim..(r + 1) * a.dim;
        normed_row(&x[span.clone()], weight.as_deref(), a.eps, &mut out[span]);
    }
    Ok(())
}

/// `residual[r] += RMSNorm(x[r]) * w` for each row (post-norm fused with the residual add).
pub(crate) fn add_rms_norm(a: &RmsNormArgs, x: &[f32], w: &HostTensor, residual: &mut [f32]) -> Result<()> {
    a.check("add_rms_norm", x.len(), Some(w.shape()), residual.len())?;
    let weight = Some(widened(w, a.dim));
    let mut normed = vec![0.0; a.dim];
    for r in 0..a.rows {
        let span = r * a.dim..(r + 1) * a.dim;
        normed_row(&x[span.clone()], weight.as_deref(), a.eps, &mut normed);
        for (acc, n) in residual[span].iter_mut().zip(&normed) {
            *acc += n;
        }
    }
    Ok(())
}

/// The weight widened to f32.
fn widened(w: &HostTensor, dim: usize) -> Vec<f32> {
    let mut weight = vec![0.0; dim];
    widen(w, 0, &mut weight);
    weight
}

/// One row: `dst = src * (mean(src^2) + eps)^-0.5 [* w]`, sum of squares in f32 in index order.
fn normed_row(src: &[f32], w: Option<&[f32]>, eps: f32, dst: &mut [f32]) {
    let inv_rms = (dot(src, src) / src.len() as f32 + eps).powf(-0.5);
    for (j, (d, v)) in dst.iter_mut().zip(src).enumerate() {
        *d = v * inv_rms;
        if let Some(w) = w {
            *d *= w[j];
        }
    }
}

/// `out[r] = (x[r] - mean) * (var + eps)^-0.5 * w + b` for each row: the mean, then the biased
/// variance of the centred row, each summed in f32 in index order.
pub(crate) fn layer_norm(a: &LayerNormArgs, x: &[f32], w: &HostTensor, b: &HostTensor, out: &mut [f32]) -> Result<()> {
    a.check(x.len(), w.shape(), b.shape(), out.len())?;
    let (w, b) = (widened(w, a.dim), widened(b, a.dim));
    for r in 0..a.rows {
        let span = r * a.dim..(r + 1) * a.dim;
        let (src, dst) = (&x[span.clone()], &mut out[span]);
        let mean = src.iter().sum::<f32>() / a.dim as f32;
        for (d, v) in dst.iter_mut().zip(src) {
            *d = v - mean;
        }
        let inv_std = (dot(dst, dst) / a.dim as f32 + a.eps).powf(-0.5);
        for ((d, w), b) in dst.iter_mut().zip(&w).zip(&b) {
            *d = *d * inv_std * w + b;
        }
    }
    Ok(())
}
