//! `rms_norm`, `add_rms_norm` and `layer_norm`.

use crate::error::{check_len, check_shape, numel, Result};

/// RMSNorm over each of `rows` rows of `dim`: `x * (mean(x^2) + eps)^-0.5 * w`, in f32. The weight
/// is used as-is (Gemma 4), not `1 + w`; without a weight it is the scale-free norm.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RmsNormArgs {
    /// Rows normalised independently.
    pub rows: usize,
    /// Elements per row.
    pub dim: usize,
    /// Added to the mean square.
    pub eps: f32,
}

impl RmsNormArgs {
    /// The checks of `op` (`rms_norm` or `add_rms_norm`, whose `out` is the residual) on the
    /// lengths and the weight's shape; returns `rows * dim`.
    pub fn check(&self, op: &'static str, x_len: usize, w_shape: Option<&[usize]>, out_len: usize) -> Result<usize> {
        let len = numel(op, &[self.rows, self.dim])?;
        check_len(op, "x", x_len, len)?;
        check_len(op, "out", out_len, len)?;
        if let Some(w) = w_shape {
            check_shape(op, "w", w, &[self.dim])?;
        }
        Ok(len)
    }
}

/// LayerNorm over each of `rows` rows of `dim`, with bias: `(x - mean) * (var + eps)^-0.5 * w + b`
/// in f32, `var` the biased variance `mean((x - mean)^2)` (the vision and audio towers).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LayerNormArgs {
    /// Rows normalised independently.
    pub rows: usize,
    /// Elements per row.
    pub dim: usize,
    /// Added to the variance.
    pub eps: f32,
}

impl LayerNormArgs {
    /// The checks on the lengths and the shapes of the weight and the bias; returns `rows * dim`.
    pub fn check(&self, x_len: usize, w_shape: &[usize], b_shape: &[usize], out_len: usize) -> Result<usize> {
        const OP: &str = "layer_norm";
        let len = numel(OP, &[self.rows, self.dim])?;
        check_len(OP, "x", x_len, len)?;
        check_len(OP, "out", out_len, len)?;
        check_shape(OP, "w", w_shape, &[self.dim])?;
        check_shape(OP, "b", b_shape, &[self.dim])?;
        Ok(len)
    }
}
