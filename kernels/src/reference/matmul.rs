//! Linear layer, reference version: `out[m, n] = sum_k x[m, k] * w[n, k]` (`x W^T`, see
//! [`MatmulArgs`]), plus the helpers shared with the MoE experts.
//!
//! Layout: `x` `[m, k]` f32, `w` `[n, k]` in its storage dtype (F32 / F16 / BF16), `out` `[m, n]`
//! f32. Each weight row is widened to f32 once into a scratch vector, then dotted with every token
//! row by one sequential f32 loop ([`dot`]). Weight rows run in parallel (rayon); each output
//! element is computed by the same sequential loop whatever the thread count, so results are
//! bit-identical to a single-threaded run.

use crate::args::MatmulArgs;
use crate::error::Result;
use crate::tensor::HostTensor;
use rayon::prelude::*;

/// `out = x W^T` for the first `m` rows of `x`.
pub(crate) fn matmul(a: &MatmulArgs, x: &[f32], w: &HostTensor, out: &mut [f32]) -> Result<()> {
    let (x_len, out_len) = a.check(x.len(), w.shape(), out.len())?;

    // by_row[j, i] = w[j] . x[i]: one weight row against every token, then transposed into out.
    let mut by_row = vec![0.0; out_len];
    linear_rows(w, 0, &x[..x_len], a.k, &mut by_row);
    for i in 0..a.m {
        for j in 0..a.n {
            out[i * a.n + j] = by_row[j * a.m + i];
        }
    }
    Ok(())
}

/// Weight rows `row0..row0 + out.len() / m` of `w` (rows of `k` elements) against each of the
/// `m = x.len() / k` rows of `x`: `out[j * m + i] = w[row0 + j] . x[i]`. Parallel over weight rows.
/// The caller has validated that the rows exist and that `x.len()` is a multiple of `k`.
pub(crate) fn linear_rows(w: &HostTensor, row0: usize, x: &[f32], k: usize, out: &mut [f32]) {
    let m = x.len().checked_div(k).unwrap_or(0);
    if m == 0 {
        out.fill(0.0); // an empty dot product (k == 0) is 0; with no token rows there is no output
        return;
    }
    out.par_chunks_mut(m).enumerate().for_each_init(
        || vec![0.0f32; k],
        |row, (j, dst)| {
            widen(w, (row0 + j) * k, row);
            for (i, o) in dst.iter_mut().enumerate() {
                *o = dot(row, &x[i * k..(i + 1) * k]);
            }
        },
    );
}

/// `sum_i a[i] * b[i]`, accumulated in f32 in index order (the reference summation order).
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut sum = 0.0f32;
    for (x, y) in a.iter().zip(b) {
        sum += x * y;
    }
    sum
}

/// Elements `start..start + out.len()` (flat) of `w` widened to f32 into `out` (block formats
/// are decoded; rows are whole blocks).
pub(crate) fn widen(w: &HostTensor, start: usize, out: &mut [f32]) {
    w.read_f32(start, out);
}
