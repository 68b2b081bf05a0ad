//! Decode matvec v4 for Q4_K and Q6_K on AVX-512: two 32-groups per 512-bit `vpdpbusd` (the
//! 256-bit v3 is `kquant_x86.rs`, which also documents the formats). Per super-block the scales
//! and mins are widened once (a few 32-bit operations unpack Q4_K's 6-bit fields); each pair of
//! groups then costs one `vpdpbusd`, one conversion, one scale product with the activations'
//! per-lane scales (`QAct::dlanes`) and one FMA.
//! - Q4_K: the low and high nibbles of 32 `qs` bytes are two consecutive groups; the mins enter
//!   the accumulators with one FMA per super-block against the activations' block sums
//!   (`QAct::gsum`).
//! - Q6_K: quants `0..63` enter unsigned; the offset 32 is removed in the integer domain by
//!   starting each lane at `-32 * (sum of its 4 activations)` (`QAct::nlsum`).
//!
//! Both prefetch the weight stream a page ahead (`kquant_x86::prefetch_ahead`), and take the
//! multi-row matvec's 2-64-token calls in register tiles of 4 rows x 4 tokens.

use super::act::QAct;
use super::kquant_x86::{f16_at, prefetch_ahead, q4_k_header, rows_by_groups, KQuant, RowTokens};
use std::arch::x86_64::*;

/// The two low bits of each byte of `h`, moved to bits 4..6 (`two` is 3 in every byte).
///
/// # Safety
/// AVX2.
#[inline(always)]
unsafe fn hb(h: __m256i, two: __m256i) -> __m256i {
    // SAFETY: the caller's contract.
    unsafe { _mm256_slli_epi16(_mm256_and_si256(h, two), 4) }
}

/// The 8 bytes of `v` widened to f32 lanes 0..8 of a 512-bit register (lanes 8..16 zero),
/// times `m`.
///
/// # Safety
/// AVX-512 F.
#[inline(always)]
unsafe fn bytes_times(v: u64, m: f32) -> __m512 {
    // SAFETY: the caller's contract.
    unsafe {
        let b = _mm512_cvtepu8_epi32(_mm_cvtsi64_si128(v as i64));
        _mm512_mul_ps(_mm512_cvtepi32_ps(b), _mm512_set1_ps(m))
    }
}

/// Lane indices spreading the scales of 16-element sub-blocks `4i..4i + 4` over the 4 lanes of
/// each (Q6_K), or with `pairs` those of 32-element groups `2i, 2i + 1` over 8 lanes each (Q4_K).
const fn spread(i: usize, pairs: bool) -> [u32; 16] {
    let mut idx = [0u32; 16];
    let mut l = 0;
    while l < 16 {
        idx[l] = if pairs { (2 * i + l / 8) as u32 } else { (4 * i + l / 4) as u32 };
        l += 1;
    }
    idx
}

static SPREAD_K4: [[u32; 16]; 4] = [spread(0, true), spread(1, true), spread(2, true), spread(3, true)];
static SPREAD_K6: [[u32; 16]; 4] = [spread(0, false), spread(1, false), spread(2, false), spread(3, false)];

/// `R` Q4_K rows against `T` tokens: per super-block and row the scales and mins are widened
/// once, the mins enter each (row, token) accumulator with one FMA against the tokens' block
/// sums (`QAct::gsum`); each 32-group pair then costs per (row, token) one `vpdpbusd`, one
/// conversion, one scale product and one FMA.
///
/// # Safety
/// AVX-512 F/BW/VL/DQ/VNNI and F16C; every row and token of one length.
#[inline(always)]
unsafe fn tile_q4_k<const R: usize, const T: usize>(rows: [&[u8]; R], a: [&QAct; T]) -> [[f32; T]; R] {
    let blocks = rows.first().map_or(0, |r| r.len() / 144);
    // SAFETY (whole body): the features are present (the caller's contract); weight loads read
    // 32 bytes inside a block's `qs`; activation loads 64 bytes / 16 lanes of groups g, g + 1,
    // or 8 block sums of one super-block (`gsum`, a 256-bit load).
    unsafe {
        let mut acc = [[_mm512_setzero_ps(); T]; R];
        let low = _mm256_set1_epi8(15);
        for bi in 0..blocks {
            let (mut scales, mut mins) = ([_mm512_setzero_ps(); R], [_mm512_setzero_ps(); R]);
            for r in 0..R {
                let (sc, mn, d, neg_dmin) = q4_k_header(&rows[r][144 * bi..144 * bi + 144]);
                (scales[r], mins[r]) = (bytes_times(sc, d), bytes_times(mn, neg_dmin));
            }
            // Index loops with constant bounds, fully unrolled, keep the accumulators in
            // registers (zipped iterators over the rows left them on the stack).
            for t in 0..T {
                let sums = _mm512_zextps256_ps512(_mm256_loadu_ps(a[t].gsum.as_ptr().add(8 * bi)));
                for r in 0..R {
                    acc[r][t] = _mm512_fmadd_ps(mins[r], sums, acc[r][t]);
                }
            }
            for (p, spread) in SPREAD_K4.iter().enumerate() {
                // Groups 2p (low nibbles) and 2p + 1 (high nibbles) of each row.
                let spread = _mm512_loadu_si512(spread.as_ptr().cast());
                let mut decoded = [(_mm512_setzero_si512(), _mm512_setzero_ps()); R];
                for ((dec, row), sv) in decoded.iter_mut().zip(rows).zip(&scales) {
                    let v = _mm256_loadu_si256(row.as_ptr().add(144 * bi + 16 + 32 * p).cast());
                    let lo = _mm256_and_si256(v, low);
                    let hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low);
                    *dec = (_mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1), _mm512_permutexvar_ps(spread, *sv));
                }
                let g = 8 * bi + 2 * p;
                for (t, a) in a.iter().enumerate() {
                    let x = _mm512_loadu_si512(a.q.as_ptr().add(32 * g).cast());
                    let dl = _mm512_loadu_ps(a.dlanes.as_ptr().add(8 * g));
                    for (acc, (q, w)) in acc.iter_mut().zip(&decoded) {
                        let lanes = _mm512_dpbusd_epi32(_mm512_setzero_si512(), *q, x);
                        acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(lanes), _mm512_mul_ps(*w, dl), acc[t]);
                    }
                }
            }
        }
        reduce(acc)
    }
}

/// `R` Q6_K rows against `T` tokens (see [`tile_q4_k`]).
///
/// # Safety
/// As [`tile_q4_k`].
#[inline(always)]
unsafe fn tile_q6_k<const R: usize, const T: usize>(rows: [&[u8]; R], a: [&QAct; T]) -> [[f32; T]; R] {
    let blocks = rows.first().map_or(0, |r| r.len() / 210);
    // SAFETY (whole body): as in `tile_q4_k`; `ql`, `qh`, `scales` loads stay inside the block.
    unsafe {
        let mut acc = [[_mm512_setzero_ps(); T]; R];
        let (low, two) = (_mm256_set1_epi8(15), _mm256_set1_epi8(3));
        for bi in 0..blocks {
            let mut scales = [_mm512_setzero_ps(); R];
            for r in 0..R {
                let p = rows[r].as_ptr().add(210 * bi);
                prefetch_ahead(p, 4);
                let d = f16_at(&rows[r][210 * bi..], 208);
                let sc = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(p.add(192).cast())));
                scales[r] = _mm512_mul_ps(_mm512_set1_ps(d), sc);
            }
            for n in 0..2 {
                for half in 0..2 {
                    // Groups 2 half and 2 half + 1 of this 128-element half: the low (half 0) or
                    // high nibbles of `ql` bytes 0..32 and 32..64, with `qh` bits 4 half, 4 half + 2.
                    let g = 8 * bi + 4 * n + 2 * half;
                    let spread = _mm512_loadu_si512(SPREAD_K6[2 * n + half].as_ptr().cast());
                    let mut decoded = [(_mm512_setzero_si512(), _mm512_setzero_ps()); R];
                    for r in 0..R {
                        let p = rows[r].as_ptr().add(210 * bi);
                        let ql0 = _mm256_loadu_si256(p.add(64 * n).cast());
                        let ql1 = _mm256_loadu_si256(p.add(64 * n + 32).cast());
                        let qh = _mm256_loadu_si256(p.add(128 + 32 * n).cast());
                        let (ql0, ql1, qh) = if half == 0 {
                            (ql0, ql1, qh)
                        } else {
                            (_mm256_srli_epi16(ql0, 4), _mm256_srli_epi16(ql1, 4), _mm256_srli_epi16(qh, 4))
                        };
                        let qa = _mm256_or_si256(_mm256_and_si256(ql0, low), hb(qh, two));
                        let qb = _mm256_or_si256(_mm256_and_si256(ql1, low), hb(_mm256_srli_epi16(qh, 2), two));
                        let q = _mm512_inserti64x4(_mm512_castsi256_si512(qa), qb, 1);
                        decoded[r] = (q, _mm512_permutexvar_ps(spread, scales[r]));
                    }
                    for t in 0..T {
                        let a = a[t];
                        let x = _mm512_loadu_si512(a.q.as_ptr().add(32 * g).cast());
                        let bias = _mm512_slli_epi32(_mm512_loadu_si512(a.nlsum.as_ptr().add(8 * g).cast()), 5);
                        let dl = _mm512_loadu_ps(a.dlanes.as_ptr().add(8 * g));
                        for r in 0..R {
                            let (q, w) = decoded[r];
                            let lanes = _mm512_dpbusd_epi32(bias, q, x);
                            acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(lanes), _mm512_mul_ps(w, dl), acc[r][t]);
                        }
                    }
                }
            }
        }
        reduce(acc)
    }
}

/// Each accumulator's lane sum.
///
/// # Safety
/// AVX-512 F.
#[inline(always)]
pub(super) unsafe fn reduce<const R: usize, const T: usize>(acc: [[__m512; T]; R]) -> [[f32; T]; R] {
    let mut out = [[0.0; T]; R];
    for (o, acc) in out.iter_mut().zip(&acc) {
        for (o, acc) in o.iter_mut().zip(acc) {
            // SAFETY: the caller's contract (a loop, not `map`: closures do not inherit the
            // target features).
            *o = unsafe { _mm512_reduce_add_ps(*acc) };
        }
    }
    out
}

/// Q4_K or Q6_K rows, in tiles of 4 rows x 4 tokens (16 accumulators) sharing each decoded
/// group pair and each token's loads.
struct Rows(KQuant);

impl RowTokens for Rows {
    const GROUP: usize = 4;
    const ROWS: usize = 4;

    #[inline(always)]
    unsafe fn row<const T: usize>(&self, row: &[u8], a: [&QAct; T]) -> [f32; T] {
        // SAFETY: the caller's contract.
        unsafe { self.tile::<1, T>([row], a)[0] }
    }

    #[inline(always)]
    unsafe fn tile<const R: usize, const T: usize>(&self, rows: [&[u8]; R], a: [&QAct; T]) -> [[f32; T]; R] {
        // SAFETY: the caller's contract (as `tile_q4_k`).
        unsafe {
            match self.0 {
                KQuant::Q4K => tile_q4_k::<R, T>(rows, a),
                KQuant::Q6K => tile_q6_k::<R, T>(rows, a),
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
