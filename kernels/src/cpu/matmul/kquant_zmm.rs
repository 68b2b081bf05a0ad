//! Decode matvec v4 for Q4_K and Q6_K on AVX-512: two 32-groups per 512-bit `vpdpbusd` (the
//! 256-bit v3 is `kquant_x86.rs`, which also documents the formats). Per super-block the scales
//! are widened once; each pair of groups then costs one `vpdpbusd`, one conversion, one scale
//! product with the activations' per-lane scales (`QAct::dlanes`) and one FMA.
//! - Q4_K: the low and high nibbles of 32 `qs` bytes are two consecutive groups; mins are
//!   subtracted in f32 from the activations' sums (`QAct::half`).
//! - Q6_K: quants `0..63` enter unsigned; the offset 32 is removed in the integer domain by
//!   starting each lane at `-32 * (sum of its 4 activations)` (`QAct::nlsum`).
//!
//! Both prefetch the weight stream a page ahead (`kquant_x86::prefetch_ahead`), and take up to eight
//! tokens per decoded group pair (the multi-row matvec's 2-64-token calls).

use super::act::QAct;
use super::kquant_x86::{prefetch_ahead, rows_by_groups, KQuant, RowTokens};
use std::arch::x86_64::*;

/// The f16 at `b[at..at + 2]`.
///
/// # Safety
/// F16C.
#[inline(always)]
unsafe fn f16_at(b: &[u8], at: usize) -> f32 {
    // SAFETY: the caller's contract.
    unsafe { _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(i32::from(u16::from_le_bytes([b[at], b[at + 1]]))))) }
}

/// `[a x 8 lanes, b x 8 lanes]`.
///
/// # Safety
/// AVX-512 F.
#[inline(always)]
unsafe fn halves(a: f32, b: f32) -> __m512 {
    // SAFETY: the caller's contract.
    unsafe { _mm512_insertf32x8(_mm512_set1_ps(a), _mm256_set1_ps(b), 1) }
}

/// The two low bits of each byte of `h`, moved to bits 4..6 (`two` is 3 in every byte).
///
/// # Safety
/// AVX2.
#[inline(always)]
unsafe fn hb(h: __m256i, two: __m256i) -> __m256i {
    // SAFETY: the caller's contract.
    unsafe { _mm256_slli_epi16(_mm256_and_si256(h, two), 4) }
}

/// One Q4_K row against `T` tokens.
///
/// # Safety
/// AVX-512 F/BW/VL/DQ/VNNI and F16C.
#[inline(always)]
unsafe fn row_q4_k<const T: usize>(row: &[u8], a: [&QAct; T]) -> [f32; T] {
    // SAFETY (whole body): the features are present (the caller's contract); loads read 32
    // bytes inside a block's `qs` and 64 bytes / 16 lanes of the activations of groups g, g + 1.
    unsafe {
        let mut acc = [_mm512_setzero_ps(); T];
        let mut corr = [0.0f32; T];
        let low = _mm256_set1_epi8(15);
        for (bi, b) in row.chunks_exact(144).enumerate() {
            prefetch_ahead(b.as_ptr(), 3);
            let (d, dmin) = (f16_at(b, 0), f16_at(b, 2));
            let s = &b[4..16];
            for p in 0..4 {
                // Sub-blocks 2p (low nibbles) and 2p + 1 (high nibbles): 6-bit scales and mins.
                let (j, k) = (2 * p, 2 * p + 1);
                let sc = |j: usize| if j < 4 { s[j] & 63 } else { (s[j + 4] & 0x0f) | (s[j - 4] >> 6) << 4 };
                let mn = |j: usize| if j < 4 { s[j + 4] & 63 } else { (s[j + 4] >> 4) | (s[j] >> 6) << 4 };
                let v = _mm256_loadu_si256(b.as_ptr().add(16 + 32 * p).cast());
                let lo = _mm256_and_si256(v, low);
                let hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low);
                let q = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
                let g = 8 * bi + j;
                let w = halves(d * f32::from(sc(j)), d * f32::from(sc(k)));
                let (mj, mk) = (f32::from(mn(j)), f32::from(mn(k)));
                for t in 0..T {
                    let x = _mm512_loadu_si512(a[t].q.as_ptr().add(32 * g).cast());
                    let lanes = _mm512_dpbusd_epi32(_mm512_setzero_si512(), q, x);
                    let scale = _mm512_mul_ps(w, _mm512_loadu_ps(a[t].dlanes.as_ptr().add(8 * g)));
                    acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(lanes), scale, acc[t]);
                    let h = &a[t].half;
                    corr[t] += dmin * (mj * (h[2 * g] + h[2 * g + 1]) + mk * (h[2 * g + 2] + h[2 * g + 3]));
                }
            }
        }
        std::array::from_fn(|t| _mm512_reduce_add_ps(acc[t]) - corr[t])
    }
}

/// One Q6_K row against `T` tokens.
///
/// # Safety
/// As [`row_q4_k`].
#[inline(always)]
unsafe fn row_q6_k<const T: usize>(row: &[u8], a: [&QAct; T]) -> [f32; T] {
    // SAFETY (whole body): as in `row_q4_k`; `ql`, `qh`, `scales` loads stay inside the block.
    unsafe {
        let mut acc = [_mm512_setzero_ps(); T];
        let (low, two) = (_mm256_set1_epi8(15), _mm256_set1_epi8(3));
        // Lanes of a group pair: 4 lanes per 16-element sub-block, 4 sub-blocks.
        let spread = [
            _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0),
            _mm512_set_epi32(7, 7, 7, 7, 6, 6, 6, 6, 5, 5, 5, 5, 4, 4, 4, 4),
            _mm512_set_epi32(11, 11, 11, 11, 10, 10, 10, 10, 9, 9, 9, 9, 8, 8, 8, 8),
            _mm512_set_epi32(15, 15, 15, 15, 14, 14, 14, 14, 13, 13, 13, 13, 12, 12, 12, 12),
        ];
        for (bi, b) in row.chunks_exact(210).enumerate() {
            let p = b.as_ptr();
            prefetch_ahead(p, 4);
            let d = f16_at(b, 208);
            let scales = _mm512_mul_ps(
                _mm512_set1_ps(d),
                _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(p.add(192).cast()))),
            );
            for n in 0..2 {
                let ql0 = _mm256_loadu_si256(p.add(64 * n).cast());
                let ql1 = _mm256_loadu_si256(p.add(64 * n + 32).cast());
                let qh = _mm256_loadu_si256(p.add(128 + 32 * n).cast());
                let q0 = _mm256_or_si256(_mm256_and_si256(ql0, low), hb(qh, two));
                let q1 = _mm256_or_si256(_mm256_and_si256(ql1, low), hb(_mm256_srli_epi16(qh, 2), two));
                let q2 = _mm256_or_si256(
                    _mm256_and_si256(_mm256_srli_epi16(ql0, 4), low),
                    hb(_mm256_srli_epi16(qh, 4), two),
                );
                let q3 = _mm256_or_si256(
                    _mm256_and_si256(_mm256_srli_epi16(ql1, 4), low),
                    hb(_mm256_srli_epi16(qh, 6), two),
                );
                for (half, (qa, qb)) in [(q0, q1), (q2, q3)].into_iter().enumerate() {
                    let g = 8 * bi + 4 * n + 2 * half;
                    let q = _mm512_inserti64x4(_mm512_castsi256_si512(qa), qb, 1);
                    let w = _mm512_permutexvar_ps(spread[2 * n + half], scales);
                    for t in 0..T {
                        let x = _mm512_loadu_si512(a[t].q.as_ptr().add(32 * g).cast());
                        let bias = _mm512_slli_epi32(_mm512_loadu_si512(a[t].nlsum.as_ptr().add(8 * g).cast()), 5);
                        let lanes = _mm512_dpbusd_epi32(bias, q, x);
                        let scale = _mm512_mul_ps(w, _mm512_loadu_ps(a[t].dlanes.as_ptr().add(8 * g)));
                        acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(lanes), scale, acc[t]);
                    }
                }
            }
        }
        acc.map(|acc| _mm512_reduce_add_ps(acc))
    }
}

/// Q4_K or Q6_K rows, up to eight tokens sharing each decoded group pair.
struct Rows(KQuant);

impl RowTokens for Rows {
    const GROUP: usize = 8;

    #[inline(always)]
    unsafe fn row<const T: usize>(&self, row: &[u8], a: [&QAct; T]) -> [f32; T] {
        // SAFETY: the caller's contract (as `row_q4_k`).
        unsafe {
            match self.0 {
                KQuant::Q4K => row_q4_k::<T>(row, a),
                KQuant::Q6K => row_q6_k::<T>(row, a),
            }
        }
    }
}

/// Q4_K or Q6_K rows against 8-bit tokens: `out[t * rows + j] ~ w[j] . x_t`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")]
pub(super) fn rows(fmt: KQuant, w: &[u8], acts: &[QAct], out: &mut [f32]) {
    let row_bytes = acts.first().map_or(0, |a| a.q.len() / 256 * if fmt == KQuant::Q6K { 210 } else { 144 });
    // SAFETY: this function's features cover the row kernels' contract; every token has the
    // rows' length.
    unsafe { rows_by_groups(&Rows(fmt), w, row_bytes, acts, out) }
}
