//! Reference greedy choice (see [`ArgmaxArgs`]): per row, the lowest index of the largest value
//! and its log-softmax, exponentials in f32 summed in f64 (as the engine's sampler does).

use crate::args::ArgmaxArgs;
use crate::error::Result;

/// One row: `(id, logprob)`, or `(len, NaN)` when the row has no choice.
pub fn argmax_row(x: &[f32]) -> (u32, f32) {
    let none = (x.len() as u32, f32::NAN);
    let (mut best, mut max) = (0usize, f32::NEG_INFINITY);
    for (i, &v) in x.iter().enumerate() {
        if v.is_nan() || v == f32::INFINITY {
            return none;
        }
        if v > max {
            (best, max) = (i, v);
        }
    }
    if max == f32::NEG_INFINITY {
        return none;
    }
    let sum: f64 = x.iter().map(|&v| (v - max).exp() as f64).sum();
    (best as u32, -sum.ln() as f32)
}

/// Every row of `x` into `out` (see [`ArgmaxArgs`]).
pub fn argmax(a: &ArgmaxArgs, x: &[f32], out: &mut [f32]) -> Result<()> {
    a.check(x.len(), out.len())?;
    for r in 0..a.rows {
        let (id, lp) = argmax_row(&x[r * a.len..(r + 1) * a.len]);
        (out[2 * r], out[2 * r + 1]) = (id as f32, lp);
    }
    Ok(())
}
