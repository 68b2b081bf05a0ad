//! `argmax`: the greedy choice per row.

use crate::error::{bad_arg, check_len, numel, Result};

/// Greedy choice per row of `[rows, len]` logits, written as two f32 per row: `out[2r]` = the
/// index of the largest value (ties to the lowest index; exact in f32 as `len < 2^24`) and
/// `out[2r + 1]` = its log-softmax, `-ln sum_i exp(x_i - max)`. A row holding NaN or +inf, or
/// nothing above -inf, has no choice: index `len`, log-probability NaN. What greedy decoding
/// needs from the logits, read back in one 8-byte copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArgmaxArgs {
    /// Rows (tokens).
    pub rows: usize,
    /// Values per row (the vocabulary).
    pub len: usize,
}

impl ArgmaxArgs {
    /// The checks on the buffers and that indices are exact in f32; returns `rows * len`.
    pub fn check(&self, x: usize, out: usize) -> Result<usize> {
        let n = numel("argmax", &[self.rows, self.len])?;
        if self.len >= 1 << 24 {
            return Err(bad_arg(
                "argmax",
                format!("{} values per row: indices past 2^24 are not exact in f32", self.len),
            ));
        }
        check_len("argmax", "x", x, n)?;
        check_len("argmax", "out", out, 2 * self.rows)?;
        Ok(n)
    }
}
