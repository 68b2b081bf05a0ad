//! Decode matvec v4 for Q4_K and Q6_K on AVX-512: two 32-groups per 512-bit `vpdpbusd` (the
//! 256-bit v3 is `kquant_x86.rs`, which also documents the formats). Per super-block the scales
//! are widened once; each pair of groups then costs one `vpdpbusd`, one conversion, one scale
//! product with the activations' per-lane scales (`QAct::dlanes`) and one FMA.
//! - Q4_K: the low and high nibbles of 32 `qs` bytes are two consecutive groups; mins are
//!   subtracted in f32 from the activations' sums (`QAct::half`).
//! - Q6_K: quants `0..63` enter unsigned; the offset 32 is removed in the integer domain by
//!   starting each lane at `-32 * (sum of its 4 activations)` (`QAct::nlsum`).
//!
//! Both prefetch the weight stream a page ahead, as `legacy_zmm.rs` does.

use super::act::QAct;
use super::legacy_zmm::PREFETCH;
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

/// One Q4_K row.
///
/// # Safety
/// AVX-512 F/BW/VL/DQ/VNNI and F16C.
#[inline(always)]
unsafe fn row_q4_k(row: &[u8], a: &QAct) -> f32 {
    // SAFETY (whole body): the features are present (the caller's contract); loads read 32
    // bytes inside a block's `qs` and 64 bytes / 16 lanes of the activations of groups g, g + 1.
    unsafe {
        let mut acc = _mm512_setzero_ps();
        let mut corr = 0.0f32;
        let low = _mm256_set1_epi8(15);
        for (bi, b) in row.chunks_exact(144).enumerate() {
            _mm_prefetch::<_MM_HINT_T0>(b.as_ptr().wrapping_add(PREFETCH).cast());
            _mm_prefetch::<_MM_HINT_T0>(b.as_ptr().wrapping_add(PREFETCH + 64).cast());
            _mm_prefetch::<_MM_HINT_T0>(b.as_ptr().wrapping_add(PREFETCH + 128).cast());
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
                let x = _mm512_loadu_si512(a.q.as_ptr().add(32 * g).cast());
                let lanes = _mm512_dpbusd_epi32(_mm512_setzero_si512(), q, x);
                let w = halves(d * f32::from(sc(j)), d * f32::from(sc(k)));
                let scale = _mm512_mul_ps(w, _mm512_loadu_ps(a.dlanes.as_ptr().add(8 * g)));
                acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(lanes), scale, acc);
                corr += dmin
                    * (f32::from(mn(j)) * (a.half[2 * g] + a.half[2 * g + 1])
                        + f32::from(mn(k)) * (a.half[2 * g + 2] + a.half[2 * g + 3]));
            }
        }
        _mm512_reduce_add_ps(acc) - corr
    }
}

/// One Q6_K row.
///
/// # Safety
/// As [`row_q4_k`].
#[inline(always)]
unsafe fn row_q6_k(row: &[u8], a: &QAct) -> f32 {
    // SAFETY (whole body): as in `row_q4_k`; `ql`, `qh`, `scales` loads stay inside the block.
    unsafe {
        let mut acc = _mm512_setzero_ps();
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
            for line in 0..4 {
                _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(PREFETCH + 64 * line).cast());
            }
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
                    let x = _mm512_loadu_si512(a.q.as_ptr().add(32 * g).cast());
                    let bias = _mm512_slli_epi32(_mm512_loadu_si512(a.nlsum.as_ptr().add(8 * g).cast()), 5);
                    let lanes = _mm512_dpbusd_epi32(bias, q, x);
                    let w = _mm512_permutexvar_ps(spread[2 * n + half], scales);
                    let scale = _mm512_mul_ps(w, _mm512_loadu_ps(a.dlanes.as_ptr().add(8 * g)));
                    acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(lanes), scale, acc);
                }
            }
        }
        _mm512_reduce_add_ps(acc)
    }
}

/// Q4_K (`q6 == false`) or Q6_K rows: `out[j] ~ w[j] . x`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")]
pub(super) fn rows(q6: bool, w: &[u8], a: &QAct, out: &mut [f32]) {
    let row_bytes = a.q.len() / 256 * if q6 { 210 } else { 144 };
    for (o, r) in out.iter_mut().zip(w.chunks_exact(row_bytes)) {
        // SAFETY: this function's features cover the row kernels' contract.
        *o = unsafe {
            if q6 {
                row_q6_k(r, a)
            } else {
                row_q4_k(r, a)
            }
        };
    }
}
