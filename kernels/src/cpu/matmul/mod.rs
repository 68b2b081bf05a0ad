//! Linear layers on the fast CPU path: `out[i, j] = x[i] . w[row0 + j]` (`x W^T`), for every
//! weight dtype, read from the mapped bytes.
//!
//! Dispatch: up to a per-ISA crossover ([`gemm_min_tokens`]) the tokens go through the matvec
//! kernels ([`matvec`]) in [`multirow`]: rows split over threads, the weights read from memory
//! once per call, each token's results bit for bit its decode result. More tokens go through a
//! GEMM that decodes each weight into panels once per call: the int8 GEMM ([`gemm_i8`]) for
//! block formats at native precision on AVX-512 and AVX2, else the packed float GEMM ([`gemm`]).
//! With `Precision::Native` and a block format, the matvec and the int8 GEMM quantize each token
//! to 8-bit blocks ([`act`]) and use int8 dot products.

mod act;
mod decode;
mod gemm;
mod gemm_i8;
#[cfg(target_arch = "x86_64")]
mod kquant_x86;
#[cfg(target_arch = "x86_64")]
mod kquant_zmm;
#[cfg(target_arch = "x86_64")]
mod legacy_zmm;
mod matvec;
mod multirow;

use super::isa::Isa;
use crate::tensor::{DType, HostTensor};
use crate::Precision;

/// `out`'s base pointer, shared by parallel tasks that each write their own elements (the
/// GEMM's panels, the multi-row matvec's row runs).
#[derive(Clone, Copy)]
struct OutPtr(*mut f32);
// SAFETY: the users' tasks write disjoint elements, and the users return only after all of them
// have finished, while `out` is still mutably borrowed.
unsafe impl Send for OutPtr {}
// SAFETY: as above.
unsafe impl Sync for OutPtr {}

impl OutPtr {
    /// The element `i` (a method, so closures capture the `Sync` wrapper, not the raw pointer).
    fn at(self, i: usize) -> *mut f32 {
        self.0.wrapping_add(i)
    }
}

/// From this many tokens on, a GEMM beats the multi-row matvec (measured per ISA at native
/// precision on block formats: docs/KERNELS.md). `Precision::Reference` switches at 4 tokens,
/// as before the multi-row matvec existed, so that its results stay bit-identical for every
/// token count (the GEMM orders its sums differently from the matvec); so do the float weights,
/// whose matvec has no multi-token kernel (not measured).
fn gemm_min_tokens(isa: Isa, act: Precision, dtype: DType) -> usize {
    match act {
        // Xeon (Emerald Rapids), int8 GEMM against the register-tiled matvec, Gemma 3 270M
        // Q4_K_M and Gemma 4 E2B Q4_0: on AVX-512 the matvec leads at 32 tokens (Gemma 3 431
        // against 389 tok/s on one thread), the GEMM at 48 (E2B 35.7 against 33.1); on AVX2
        // (forced) the matvec at 16 (161 against 158), the GEMM at 32 (262 against 174).
        Precision::Native if gemm_i8::supports(isa, act, dtype) => match isa {
            Isa::Avx2 => 24,
            _ => 40,
        },
        // The packed float GEMM (AVX2 Q8_0 / Q8_K): the tiled matvec leads it at 64 tokens.
        Precision::Native if dtype.is_quantized() && isa >= Isa::Avx2 => multirow::M_MAX + 1,
        // Not measured for the portable kernels on their own CPUs (aarch64): the switch point
        // from before the multi-row matvec.
        _ => 4,
    }
}

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
    let (x, out) = (&x[..m * k], &mut out[..m * n]);
    if m >= gemm_min_tokens(isa, act, dtype).min(multirow::M_MAX + 1) {
        if gemm_i8::supports(isa, act, dtype) {
            return gemm_i8::gemm(isa, dtype, rows, row_bytes, k, x, n, out);
        }
        return gemm::gemm(isa, act, dtype, rows, row_bytes, k, x, n, out);
    }
    multirow::matvec_tokens(isa, act, dtype, rows, row_bytes, k, x, n, out);
}

#[cfg(test)]
mod tests;
