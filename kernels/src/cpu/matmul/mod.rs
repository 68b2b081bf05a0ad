//! Linear layers on the fast CPU path: `out[i, j] = x[i] . w[row0 + j]` (`x W^T`), for every
//! weight dtype, read from the mapped bytes.
//!
//! Dispatch: a few tokens (decode) go through the matvec kernels ([`matvec`]), one weight row
//! at a time, rows split over threads; many tokens (prefill) through the packed GEMM
//! ([`gemm`]), which reads each weight once per call. With `Precision::Native` and a block
//! format, decode quantizes the token to 8-bit blocks ([`act`]) and uses int8 dot products.

mod act;
mod decode;
mod gemm;
#[cfg(target_arch = "x86_64")]
mod kquant_x86;
#[cfg(target_arch = "x86_64")]
mod kquant_zmm;
#[cfg(target_arch = "x86_64")]
mod legacy_zmm;
mod matvec;

use super::isa::Isa;
use crate::tensor::HostTensor;
use crate::Precision;
use act::QAct;
use rayon::prelude::*;

/// From this many tokens on, the packed GEMM beats one matvec per token.
const GEMM_MIN_TOKENS: usize = 4;
/// Weight bytes per parallel task in the matvec (large enough to amortise scheduling).
const TASK_BYTES: usize = 64 << 10;

/// `out[i * n + j] = x[i * k..(i + 1) * k] . w_row(row0 + j)` for `i < m = x.len() / k`, `j < n`,
/// where `w_row(r)` is elements `r * k..(r + 1) * k` of `w` taken flat (so an expert's rows of a
/// 3-d `[experts, rows, k]` tensor are `row0 = e * rows`). Parallel inside (rayon). The caller has
/// validated that `k` is whole blocks of the dtype, that rows `row0..row0 + n` exist, that
/// `x.len()` is a multiple of `k` and that `out.len() >= m * n`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn linear(
    isa: Isa,
    act: Precision,
    w: &HostTensor,
    k: usize,
    row0: usize,
    n: usize,
    x: &[f32],
    out: &mut [f32],
) {
    let dtype = w.dtype();
    let m = x.len().checked_div(k).unwrap_or(0);
    if k == 0 || m == 0 {
        out[..m * n].fill(0.0);
        return;
    }
    let row_bytes = dtype.bytes_for(k).unwrap_or(0);
    let rows = &w.bytes()[row0 * row_bytes..(row0 + n) * row_bytes];
    if m >= GEMM_MIN_TOKENS {
        return gemm::gemm(isa, act, dtype, rows, row_bytes, k, &x[..m * k], n, &mut out[..m * n]);
    }
    let per_task = (TASK_BYTES / row_bytes.max(1)).clamp(1, n.div_ceil(2 * rayon::current_num_threads()).max(1));
    let quantized = act == Precision::Native && dtype.is_quantized();
    let mut qa = QAct::default();
    for (xi, oi) in x.chunks_exact(k).zip(out.chunks_exact_mut(n)) {
        if quantized {
            qa.quantize(xi);
        }
        oi.par_chunks_mut(per_task).enumerate().for_each(|(c, dst)| {
            let w = &rows[c * per_task * row_bytes..(c * per_task + dst.len()) * row_bytes];
            if quantized {
                matvec::q8_rows(isa, dtype, w, &qa, dst);
            } else if dtype.is_quantized() {
                matvec::exact_rows(isa, dtype, w, xi, dst);
            } else {
                matvec::float_rows(isa, dtype, w, xi, dst);
            }
        });
    }
}

#[cfg(test)]
mod tests;
