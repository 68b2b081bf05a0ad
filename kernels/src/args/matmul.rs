//! `matmul`: a linear layer `x W^T`.

use crate::error::{check_len, check_shape, numel, Result};

/// `out[m, n] = sum_k x[m, k] * w[n, k]`: a linear layer (`x W^T`), `w` stored `[n, k]`.
/// `m == 1` is the decode matvec; `m > 1` is the prefill GEMM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MatmulArgs {
    /// Rows of `x` and `out` (tokens).
    pub m: usize,
    /// Output features (rows of the weight).
    pub n: usize,
    /// Input features (columns of the weight).
    pub k: usize,
}

impl MatmulArgs {
    /// The checks on lengths and the weight's shape; returns the lengths of `x` (`m * k`) and
    /// `out` (`m * n`).
    pub fn check(&self, x_len: usize, w_shape: &[usize], out_len: usize) -> Result<(usize, usize)> {
        const OP: &str = "matmul";
        let need_x = numel(OP, &[self.m, self.k])?;
        let need_out = numel(OP, &[self.m, self.n])?;
        check_len(OP, "x", x_len, need_x)?;
        check_shape(OP, "w", w_shape, &[self.n, self.k])?;
        check_len(OP, "out", out_len, need_out)?;
        Ok((need_x, need_out))
    }
}
