//! RMSNorm, reference version: each of `rows` rows of `dim` becomes
//! `x * (mean(x^2) + eps)^-0.5 * w` in f32 (Gemma 4 uses the weight as-is, not `1 + w`; without a
//! weight it is the scale-free norm). See [`RmsNormArgs`].
//!
//! Layout: `x`, `out`, `residual` `[rows, dim]` f32; `w` `[dim]` in its storage dtype. Per-head
//! norms (q/k/v norms) are the same op with `rows = tokens * heads`, `dim = head_dim`.
//! `add_rms_norm` adds the normed row to `residual` instead of writing `out`.

use super::matmul::{dot, widen};
use super::{check_shape, numel};
use crate::args::RmsNormArgs;
use crate::error::{check_len, Result};
use crate::tensor::HostTensor;

/// `out[r] = RMSNorm(x[r]) * w` for each row.
pub(crate) fn rms_norm(a: &RmsNormArgs, x: &[f32], w: Option<&HostTensor>, out: &mut [f32]) -> Result<()> {
    let weight = validate("rms_norm", a, x, w, out.len())?;
    for r in 0..a.rows {
        let span = r * a.dim..(r + 1) * a.dim;
        normed_row(&x[span.clone()], weight.as_deref(), a.eps, &mut out[span]);
    }
    Ok(())
}

/// `residual[r] += RMSNorm(x[r]) * w` for each row (post-norm fused with the residual add).
pub(crate) fn add_rms_norm(a: &RmsNormArgs, x: &[f32], w: &HostTensor, residual: &mut [f32]) -> Result<()> {
    let weight = validate("add_rms_norm", a, x, Some(w), residual.len())?;
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

/// Checks the buffers and the weight shape; returns the weight widened to f32 (None: no weight).
fn validate(
    op: &'static str,
    a: &RmsNormArgs,
    x: &[f32],
    w: Option<&HostTensor>,
    out_len: usize,
) -> Result<Option<Vec<f32>>> {
    let len = numel(op, &[a.rows, a.dim])?;
    check_len(op, "x", x.len(), len)?;
    check_len(op, "out", out_len, len)?;
    let Some(w) = w else { return Ok(None) };
    check_shape(op, "w", w.shape(), &[a.dim])?;
    let mut weight = vec![0.0; a.dim];
    widen(w, 0, &mut weight);
    Ok(Some(weight))
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
