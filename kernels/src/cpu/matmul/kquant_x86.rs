//! Decode matvec v3 for the two k-quants of real GGUF files, Q4_K and Q6_K, against 8-bit
//! activations ([`QAct`]) on AVX2 (AVX-512 uses v4, `kquant_zmm.rs`, but the tests run this on
//! every x86 level): the 256-element super-blocks are decoded in registers straight
//! from the row bytes (no [`super::decode::Block`] round trip), one 32-group per `vpmaddubsw` +
//! `vpmaddwd` (or `vpdpbusd` on 256-bit registers when instantiated with VNNI).
//!
//! Both formats' quants are unsigned (Q4_K nibbles 0..15; Q6_K 0..63 with offset 32), so they
//! are the unsigned operand as they are. Q6_K's offset is removed in the integer domain (each
//! lane starts at `-32 *` the sum of its 4 activations, `QAct::nlsum`); Q4_K's mins enter the
//! accumulators with one FMA per super-block against the activations' block sums
//! (`QAct::gsum`). Rows come in tiles of two (`RowTokens::ROWS`), so each token's loads serve
//! both.
//! - Q4_K (144 bytes): `d, dmin: f16, scales: [u8; 12], qs: [u8; 128]`; sub-block `j` of 32 has
//!   6-bit scale `sc_j` and min `m_j`; `w = d sc_j q - dmin m_j`.
//! - Q6_K (210 bytes): `ql: [u8; 128], qh: [u8; 64], scales: [i8; 16], d: f16`; 16 sub-blocks
//!   of 16, `w = d sc_j (q - 32)`.

use super::act::QAct;
use std::arch::x86_64::*;

/// How far ahead of the block being read the weight stream is prefetched, in bytes: one page.
/// The weights stream from a file mapping in 4 KiB pages, where the hardware prefetcher stops at
/// each page boundary. Measured on Gemma 3 270M decode (AVX-512, 2 threads): 58 tok/s without,
/// 70 with (1 to 4 pages ahead are within the noise of each other).
pub(crate) const PREFETCH: usize = 4096;

/// Asks for the `lines` cache lines a page past `p`, every x86 kernel's weight prefetch.
#[inline(always)]
pub(crate) fn prefetch_ahead(p: *const u8, lines: usize) {
    for line in 0..lines {
        // SAFETY: SSE is part of x86-64, and a prefetch reads nothing architecturally and never
        // faults, so running past the end of the weights is harmless.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(PREFETCH + 64 * line).cast()) };
    }
}

/// Sum of 8 lanes.
///
/// # Safety
/// AVX.
#[inline(always)]
pub(crate) unsafe fn hsum8(v: __m256) -> f32 {
    // SAFETY: the caller's contract.
    unsafe {
        let h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        let h = _mm_add_ps(h, _mm_movehl_ps(h, h));
        _mm_cvtss_f32(_mm_add_ss(h, _mm_shuffle_ps(h, h, 1)))
    }
}

/// Products of unsigned quants `n < 64` with signed activations (no sign trick needed;
/// AVX2 pairs stay below 2 * 63 * 127, no saturation), added to the lanes `bias`.
///
/// # Safety
/// AVX2, and AVX-512 VNNI/VL if `VNNI`.
#[inline(always)]
pub(crate) unsafe fn unsigned_lanes<const VNNI: bool>(bias: __m256i, n: __m256i, x: __m256i) -> __m256i {
    // SAFETY: the caller's contract.
    unsafe {
        if VNNI {
            _mm256_dpbusd_epi32(bias, n, x)
        } else {
            _mm256_add_epi32(_mm256_madd_epi16(_mm256_maddubs_epi16(n, x), _mm256_set1_epi16(1)), bias)
        }
    }
}

/// Q4_K's 6-bit scales and mins of the 8 sub-blocks (ggml's `get_scale_min_k4`, four at a
/// time in 32-bit words): `(scales, mins)`, one byte per sub-block.
#[inline(always)]
pub(crate) fn scales_mins_k4(s: &[u8]) -> (u64, u64) {
    let word = |i: usize| u32::from_le_bytes([s[4 * i], s[4 * i + 1], s[4 * i + 2], s[4 * i + 3]]);
    let (w0, w1, w2) = (word(0), word(1), word(2));
    let (low6, low4, top2) = (0x3f3f_3f3f, 0x0f0f_0f0f, 0x0303_0303);
    let sc = u64::from(w0 & low6) | u64::from((w2 & low4) | ((w0 >> 6) & top2) << 4) << 32;
    let mn = u64::from(w1 & low6) | u64::from(((w2 >> 4) & low4) | ((w1 >> 6) & top2) << 4) << 32;
    (sc, mn)
}

/// A Q4_K super-block's header, its weight stream prefetched: the 8 scales and 8 mins
/// (bytes, [`scales_mins_k4`]), `d` and `-dmin`.
///
/// # Safety
/// F16C; `b` is one whole block.
#[inline(always)]
pub(crate) unsafe fn q4_k_header(b: &[u8]) -> (u64, u64, f32, f32) {
    prefetch_ahead(b.as_ptr(), 3);
    let (sc, mn) = scales_mins_k4(&b[4..16]);
    // SAFETY: the caller's contract.
    unsafe { (sc, mn, f16_at(b, 0), -f16_at(b, 2)) }
}

/// The f16 at `b[at..at + 2]`.
///
/// # Safety
/// F16C.
#[inline(always)]
pub(crate) unsafe fn f16_at(b: &[u8], at: usize) -> f32 {
    // SAFETY: the caller's contract.
    unsafe { _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(i32::from(u16::from_le_bytes([b[at], b[at + 1]]))))) }
}

/// The 8 bytes of `v` widened to f32 lanes, times `m`.
///
/// # Safety
/// AVX2.
#[inline(always)]
unsafe fn bytes_times(v: u64, m: f32) -> __m256 {
    // SAFETY: the caller's contract.
    unsafe { _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128(v as i64))), _mm256_set1_ps(m)) }
}

/// Each accumulator's lane sum.
///
/// # Safety
/// AVX.
#[inline(always)]
pub(crate) unsafe fn reduce8<const R: usize, const T: usize>(acc: [[__m256; T]; R]) -> [[f32; T]; R] {
    let mut out = [[0.0; T]; R];
    for (o, acc) in out.iter_mut().zip(&acc) {
        for (o, acc) in o.iter_mut().zip(acc) {
            // SAFETY: the caller's contract (a loop, not `map`: closures do not inherit the
            // target features).
            *o = unsafe { hsum8(*acc) };
        }
    }
    out
}

/// `R` Q4_K rows against `T` tokens: per super-block and row the scales and mins are widened
/// once and the mins enter each (row, token) accumulator with one FMA; each 32-group then
/// costs per (row, token) the lane products, a conversion, a scale product and an FMA. Token
/// `t`'s sums are made in the same order for every `R` and `T`, so each result is bit for bit
/// the one-token (decode) result.
///
/// # Safety
/// AVX2 + FMA + F16C, and AVX-512 VNNI/VL if `VNNI`; every row and token of one length.
#[inline(always)]
unsafe fn tile_q4_k<const VNNI: bool, const R: usize, const T: usize>(
    rows: [&[u8]; R],
    a: [&QAct; T],
) -> [[f32; T]; R] {
    let blocks = rows.first().map_or(0, |r| r.len() / 144);
    // SAFETY (whole body): the features are present (the caller's contract); weight loads read
    // 32 bytes inside a block's `qs`; activation loads 32 bytes / 8 lanes of one group or the 8
    // block sums of one super-block.
    unsafe {
        let mut acc = [[_mm256_setzero_ps(); T]; R];
        let (low, zero) = (_mm256_set1_epi8(15), _mm256_setzero_si256());
        for bi in 0..blocks {
            let (mut scales, mut mins) = ([_mm256_setzero_ps(); R], [_mm256_setzero_ps(); R]);
            for r in 0..R {
                let (sc, mn, d, neg_dmin) = q4_k_header(&rows[r][144 * bi..144 * bi + 144]);
                (scales[r], mins[r]) = (bytes_times(sc, d), bytes_times(mn, neg_dmin));
            }
            // Index loops (fully unrolled) keep the accumulators in registers.
            for t in 0..T {
                let sums = _mm256_loadu_ps(a[t].gsum.as_ptr().add(8 * bi));
                for r in 0..R {
                    acc[r][t] = _mm256_fmadd_ps(mins[r], sums, acc[r][t]);
                }
            }
            for p in 0..4 {
                let mut v = [zero; R];
                for (v, row) in v.iter_mut().zip(rows) {
                    *v = _mm256_loadu_si256(row.as_ptr().add(144 * bi + 16 + 32 * p).cast());
                }
                // Group 2p: the low nibbles; 2p + 1: the high ones.
                for h in 0..2 {
                    let g = 8 * bi + 2 * p + h;
                    let idx = _mm256_set1_epi32((2 * p + h) as i32);
                    let mut dec = [(zero, _mm256_setzero_ps()); R];
                    for ((dec, v), sv) in dec.iter_mut().zip(&v).zip(&scales) {
                        let n = if h == 0 { *v } else { _mm256_srli_epi16(*v, 4) };
                        *dec = (_mm256_and_si256(n, low), _mm256_permutevar8x32_ps(*sv, idx));
                    }
                    for (t, a) in a.iter().enumerate() {
                        let x = _mm256_loadu_si256(a.q.as_ptr().add(32 * g).cast());
                        let dl = _mm256_loadu_ps(a.dlanes.as_ptr().add(8 * g));
                        for (acc, (q, w)) in acc.iter_mut().zip(&dec) {
                            let lanes = unsigned_lanes::<VNNI>(zero, *q, x);
                            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(lanes), _mm256_mul_ps(*w, dl), acc[t]);
                        }
                    }
                }
            }
        }
        reduce8(acc)
    }
}

/// Bits `2i..2i + 2` of each byte of `qh`, moved to bits 4..6 (`two` is 3 in every byte).
///
/// # Safety
/// AVX2.
#[inline(always)]
unsafe fn high_bits(qh: __m256i, i: usize, two: __m256i) -> __m256i {
    // SAFETY: the caller's contract.
    unsafe {
        let h = match i {
            0 => qh,
            1 => _mm256_srli_epi16(qh, 2),
            2 => _mm256_srli_epi16(qh, 4),
            _ => _mm256_srli_epi16(qh, 6),
        };
        _mm256_slli_epi16(_mm256_and_si256(h, two), 4)
    }
}

/// `R` Q6_K rows against `T` tokens (see [`tile_q4_k`]); the offset 32 leaves in the integer
/// domain, each lane starting at `-32 *` the sum of its activations.
///
/// # Safety
/// As [`tile_q4_k`].
#[inline(always)]
unsafe fn tile_q6_k<const VNNI: bool, const R: usize, const T: usize>(
    rows: [&[u8]; R],
    a: [&QAct; T],
) -> [[f32; T]; R] {
    let blocks = rows.first().map_or(0, |r| r.len() / 210);
    // SAFETY (whole body): as in `tile_q4_k`; `ql`, `qh`, `scales` loads stay inside the block.
    unsafe {
        let mut acc = [[_mm256_setzero_ps(); T]; R];
        let (low, two) = (_mm256_set1_epi8(15), _mm256_set1_epi8(3));
        for bi in 0..blocks {
            // Per row, the 16 sub-block scales times d: sub-blocks 0..8, then 8..16.
            let mut scales = [[_mm256_setzero_ps(); 2]; R];
            for (sv, row) in scales.iter_mut().zip(rows) {
                let p = row.as_ptr().add(210 * bi);
                prefetch_ahead(p, 4);
                let d = _mm256_set1_ps(f16_at(&row[210 * bi..], 208));
                let sc = _mm_loadu_si128(p.add(192).cast());
                sv[0] = _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(sc)));
                sv[1] = _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(sc, 8))));
            }
            for n in 0..2 {
                for i in 0..4 {
                    // Group i of this half: `ql` bytes 32 (i % 2) on, nibble i / 2; `qh` bits 2i.
                    let g = 8 * bi + 4 * n + i;
                    let idx = _mm256_setr_epi32(
                        2 * i as i32,
                        2 * i as i32,
                        2 * i as i32,
                        2 * i as i32,
                        2 * i as i32 + 1,
                        2 * i as i32 + 1,
                        2 * i as i32 + 1,
                        2 * i as i32 + 1,
                    );
                    let mut dec = [(_mm256_setzero_si256(), _mm256_setzero_ps()); R];
                    for ((dec, row), sv) in dec.iter_mut().zip(rows).zip(&scales) {
                        let p = row.as_ptr().add(210 * bi);
                        let ql = _mm256_loadu_si256(p.add(64 * n + 32 * (i % 2)).cast());
                        let qh = _mm256_loadu_si256(p.add(128 + 32 * n).cast());
                        let ql = if i < 2 { ql } else { _mm256_srli_epi16(ql, 4) };
                        let q = _mm256_or_si256(_mm256_and_si256(ql, low), high_bits(qh, i, two));
                        *dec = (q, _mm256_permutevar8x32_ps(sv[n], idx));
                    }
                    for (t, a) in a.iter().enumerate() {
                        let x = _mm256_loadu_si256(a.q.as_ptr().add(32 * g).cast());
                        let bias = _mm256_slli_epi32(_mm256_loadu_si256(a.nlsum.as_ptr().add(8 * g).cast()), 5);
                        let dl = _mm256_loadu_ps(a.dlanes.as_ptr().add(8 * g));
                        for (acc, (q, w)) in acc.iter_mut().zip(&dec) {
                            let lanes = unsigned_lanes::<VNNI>(bias, *q, x);
                            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(lanes), _mm256_mul_ps(*w, dl), acc[t]);
                        }
                    }
                }
            }
        }
        reduce8(acc)
    }
}

/// Which k-quant a call decodes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum KQuant {
    Q4K,
    Q6K,
}

impl KQuant {
    /// The k-quant of `dtype`, if it is one of these.
    pub(super) fn of(dtype: crate::tensor::DType) -> Option<KQuant> {
        match dtype {
            crate::tensor::DType::Q4_K => Some(KQuant::Q4K),
            crate::tensor::DType::Q6_K => Some(KQuant::Q6K),
            _ => None,
        }
    }
}

/// A row kernel against `T` tokens at once, each token's sums made in the same order for every
/// `T` and every tile height (so each result is bit for bit the one-token result).
pub(crate) trait RowTokens {
    /// Tokens dotted with each row at once (at most 8): `ROWS x GROUP` accumulators must fit
    /// the registers with the decoded blocks (16 ymm on AVX2, 32 zmm on AVX-512).
    const GROUP: usize = 4;
    /// Rows decoded together by [`RowTokens::tile`] (1, 2 or 4): each token's activations are then
    /// loaded once per `ROWS` rows. With one row per tile, 8 tokens' activations (three times
    /// the quants' bytes with their scales and sums) stream from L2 once per row, and the
    /// kernel waits on L2, not on its arithmetic.
    const ROWS: usize = 1;

    /// `[w_row . x_t; T]` for the tokens `a`.
    ///
    /// # Safety
    /// The kernel's target features are present; every token has the row's length.
    unsafe fn row<const T: usize>(&self, row: &[u8], a: [&QAct; T]) -> [f32; T];

    /// `[[w_r . x_t; T]; R]` for the `R` rows against the tokens `a`.
    ///
    /// # Safety
    /// As [`RowTokens::row`].
    #[inline(always)]
    unsafe fn tile<const R: usize, const T: usize>(&self, rows: [&[u8]; R], a: [&QAct; T]) -> [[f32; T]; R] {
        let mut out = [[0.0; T]; R];
        for (o, row) in out.iter_mut().zip(rows) {
            // SAFETY: the caller's contract.
            *o = unsafe { self.row::<T>(row, a) };
        }
        out
    }
}

/// `out[t * n + j] = w_j . x_t` by `kern` for the `n = out.len() / acts.len()` rows of `w`
/// (`row_bytes` each), the tokens in groups of up to [`RowTokens::GROUP`] (at most 8).
///
/// # Safety
/// As [`RowTokens::row`].
#[inline(always)]
pub(crate) unsafe fn rows_by_groups<K: RowTokens>(
    kern: &K,
    w: &[u8],
    row_bytes: usize,
    acts: &[QAct],
    out: &mut [f32],
) {
    let n = out.len() / acts.len().max(1);
    let size = K::GROUP.clamp(1, 8);
    for (gi, group) in acts.chunks(size).enumerate() {
        let out = &mut out[gi * size * n..];
        // SAFETY (all arms): the caller's contract.
        unsafe {
            match group.len() {
                1 => rows_of::<K, 1>(kern, w, row_bytes, group, n, out),
                2 => rows_of::<K, 2>(kern, w, row_bytes, group, n, out),
                3 => rows_of::<K, 3>(kern, w, row_bytes, group, n, out),
                4 => rows_of::<K, 4>(kern, w, row_bytes, group, n, out),
                5 => rows_of::<K, 5>(kern, w, row_bytes, group, n, out),
                6 => rows_of::<K, 6>(kern, w, row_bytes, group, n, out),
                7 => rows_of::<K, 7>(kern, w, row_bytes, group, n, out),
                _ => rows_of::<K, 8>(kern, w, row_bytes, group, n, out),
            }
        }
    }
}

/// The `n` rows of `w` against the `T` tokens of `group`: `out[t * n + j]`, in tiles of
/// [`RowTokens::ROWS`] rows and then one row at a time (one loop per group size, so the
/// one-token decode loop is as tight as a plain row loop).
///
/// # Safety
/// As [`RowTokens::row`]; `group.len() == T`.
#[inline(always)]
unsafe fn rows_of<K: RowTokens, const T: usize>(
    kern: &K,
    w: &[u8],
    row_bytes: usize,
    group: &[QAct],
    n: usize,
    out: &mut [f32],
) {
    let a: [&QAct; T] = std::array::from_fn(|t| &group[t]);
    // A decode step (one token) reads one row at a time: one weight stream per thread (4-row
    // tiles were 10% slower on the Xeon's AVX-512 decode).
    // SAFETY (both): the caller's contract.
    let tiled = match K::ROWS {
        2 if T > 1 => unsafe { tiles::<K, 2, T>(kern, w, row_bytes, a, n, out) },
        4 if T > 1 => unsafe { tiles::<K, 4, T>(kern, w, row_bytes, a, n, out) },
        _ => 0,
    };
    for (j, row) in w.chunks_exact(row_bytes.max(1)).enumerate().take(n).skip(tiled) {
        // SAFETY: the caller's contract.
        let r = unsafe { kern.row::<T>(row, a) };
        for (t, v) in r.into_iter().enumerate() {
            out[t * n + j] = v;
        }
    }
}

/// The whole `R`-row tiles of [`rows_of`]; returns the rows done.
///
/// # Safety
/// As [`rows_of`].
#[inline(always)]
unsafe fn tiles<K: RowTokens, const R: usize, const T: usize>(
    kern: &K,
    w: &[u8],
    row_bytes: usize,
    a: [&QAct; T],
    n: usize,
    out: &mut [f32],
) -> usize {
    let tiled = n / R * R;
    for j in (0..tiled).step_by(R) {
        let rows: [&[u8]; R] = std::array::from_fn(|r| &w[(j + r) * row_bytes..(j + r + 1) * row_bytes]);
        // SAFETY: the caller's contract.
        let r = unsafe { kern.tile::<R, T>(rows, a) };
        for (i, r) in r.into_iter().enumerate() {
            for (t, v) in r.into_iter().enumerate() {
                out[t * n + j + i] = v;
            }
        }
    }
    tiled
}

/// Q4_K or Q6_K rows, `VNNI` picking the lane kernel; tiles of 2 rows x 4 tokens (8
/// accumulators of the 16 ymm registers).
struct KRows<const VNNI: bool>(KQuant);

impl<const VNNI: bool> RowTokens for KRows<VNNI> {
    const ROWS: usize = 2;

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
                KQuant::Q4K => tile_q4_k::<VNNI, R, T>(rows, a),
                KQuant::Q6K => tile_q6_k::<VNNI, R, T>(rows, a),
            }
        }
    }
}

/// Q4_K / Q6_K rows inside AVX2 target features, against 1 or more tokens:
/// `out[t * rows + j] ~ w[j] . x_t`.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn rows_avx2(fmt: KQuant, w: &[u8], acts: &[QAct], out: &mut [f32]) {
    let blocks = acts.first().map_or(0, |a| a.q.len() / 256);
    let size = if fmt == KQuant::Q4K { 144 } else { 210 };
    // SAFETY: this function's features cover the contract.
    unsafe { rows_by_groups(&KRows::<false>(fmt), w, blocks * size, acts, out) }
}
