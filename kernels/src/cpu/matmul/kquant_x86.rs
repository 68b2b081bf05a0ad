//! Decode matvec v3 for the two k-quants of real GGUF files, Q4_K and Q6_K, against 8-bit
//! activations ([`QAct`]) on AVX2 (AVX-512 uses v4, `kquant_zmm.rs`, but the tests run this on
//! every x86 level): the 256-element super-blocks are decoded in registers straight
//! from the row bytes (no [`super::decode::Block`] round trip), one 32-group per `vpmaddubsw` +
//! `vpmaddwd` (or `vpdpbusd` on 256-bit registers when instantiated with VNNI).
//!
//! Both formats' quants are unsigned (Q4_K nibbles 0..15; Q6_K 0..63 with offset 32), so they
//! are the unsigned operand as they are; mins and offsets are subtracted in f32 from the
//! activations' per-16 sums (`QAct::half`).
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

/// Products of unsigned quants `n < 32` with signed activations (no sign trick needed;
/// AVX2 pairs stay below 2 * 31 * 127, no saturation).
///
/// # Safety
/// AVX2, and AVX-512 VNNI/VL if `VNNI`.
#[inline(always)]
pub(crate) unsafe fn unsigned_lanes<const VNNI: bool>(n: __m256i, x: __m256i) -> __m256i {
    // SAFETY: the caller's contract.
    unsafe {
        if VNNI {
            _mm256_dpbusd_epi32(_mm256_setzero_si256(), n, x)
        } else {
            _mm256_madd_epi16(_mm256_maddubs_epi16(n, x), _mm256_set1_epi16(1))
        }
    }
}

/// Q4_K's 6-bit (scale, min) pairs of the 8 sub-blocks (ggml's `get_scale_min_k4`).
#[inline(always)]
fn scales_k4(s: &[u8]) -> ([u8; 8], [u8; 8]) {
    let mut sc = [0u8; 8];
    let mut m = [0u8; 8];
    for j in 0..4 {
        sc[j] = s[j] & 63;
        m[j] = s[j + 4] & 63;
        sc[j + 4] = (s[j + 8] & 0x0f) | (s[j] >> 6) << 4;
        m[j + 4] = (s[j + 8] >> 4) | (s[j + 4] >> 6) << 4;
    }
    (sc, m)
}

/// The f16 at `b[at..at + 2]`.
///
/// # Safety
/// F16C.
#[inline(always)]
unsafe fn f16_at(b: &[u8], at: usize) -> f32 {
    // SAFETY: the caller's contract.
    unsafe { _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(i32::from(u16::from_le_bytes([b[at], b[at + 1]]))))) }
}

/// One Q4_K row against `T` tokens: each 32-group is decoded once and dotted with every token.
/// Token `t`'s sums are made in the same order for every `T`, so each result is bit for bit the
/// one-token (`T = 1`, decode) result.
///
/// # Safety
/// AVX2 + FMA + F16C, and AVX-512 VNNI/VL if `VNNI`; every token in `a` has `row`'s length.
#[inline(always)]
unsafe fn row_q4_k<const VNNI: bool, const T: usize>(row: &[u8], a: [&QAct; T]) -> [f32; T] {
    // SAFETY (whole body): the features are present (the caller's contract); loads read 32
    // bytes inside one block's `qs` or one 32-group of a token's `q`.
    unsafe {
        let (mut acc0, mut acc1) = ([_mm256_setzero_ps(); T], [_mm256_setzero_ps(); T]);
        let mut corr = [0.0f32; T];
        let low = _mm256_set1_epi8(15);
        for (bi, b) in row.chunks_exact(144).enumerate() {
            prefetch_ahead(b.as_ptr(), 3);
            let (d, dmin) = (f16_at(b, 0), f16_at(b, 2));
            let (sc, m) = scales_k4(&b[4..16]);
            let g0 = 8 * bi;
            for p in 0..4 {
                let v = _mm256_loadu_si256(b.as_ptr().add(16 + 32 * p).cast());
                let (lo, hi) = (_mm256_and_si256(v, low), _mm256_and_si256(_mm256_srli_epi16(v, 4), low));
                let (g, h) = (g0 + 2 * p, g0 + 2 * p + 1);
                for t in 0..T {
                    let a = a[t];
                    let xl = _mm256_loadu_si256(a.q.as_ptr().add(32 * g).cast());
                    let xh = _mm256_loadu_si256(a.q.as_ptr().add(32 * h).cast());
                    let sl = d * f32::from(sc[2 * p]) * a.d[g];
                    let sh = d * f32::from(sc[2 * p + 1]) * a.d[h];
                    let pl = _mm256_cvtepi32_ps(unsigned_lanes::<VNNI>(lo, xl));
                    let ph = _mm256_cvtepi32_ps(unsigned_lanes::<VNNI>(hi, xh));
                    acc0[t] = _mm256_fmadd_ps(pl, _mm256_set1_ps(sl), acc0[t]);
                    acc1[t] = _mm256_fmadd_ps(ph, _mm256_set1_ps(sh), acc1[t]);
                    corr[t] += dmin
                        * (f32::from(m[2 * p]) * (a.half[2 * g] + a.half[2 * g + 1])
                            + f32::from(m[2 * p + 1]) * (a.half[2 * h] + a.half[2 * h + 1]));
                }
            }
        }
        std::array::from_fn(|t| hsum8(_mm256_add_ps(acc0[t], acc1[t])) - corr[t])
    }
}

/// Bits `shift..shift + 2` of each byte of `qh`, moved to bits 4..6.
///
/// # Safety
/// AVX2.
#[inline(always)]
unsafe fn high_bits(qh: __m256i, shift: i32, two: __m256i) -> __m256i {
    // SAFETY: the caller's contract.
    unsafe {
        let h = match shift {
            0 => qh,
            2 => _mm256_srli_epi16(qh, 2),
            4 => _mm256_srli_epi16(qh, 4),
            _ => _mm256_srli_epi16(qh, 6),
        };
        _mm256_slli_epi16(_mm256_and_si256(h, two), 4)
    }
}

/// One Q6_K row against `T` tokens (see [`row_q4_k`]).
///
/// # Safety
/// As [`row_q4_k`].
#[inline(always)]
unsafe fn row_q6_k<const VNNI: bool, const T: usize>(row: &[u8], a: [&QAct; T]) -> [f32; T] {
    // SAFETY (whole body): as in `row_q4_k`; `ql`, `qh` loads stay inside the block.
    unsafe {
        let (mut acc0, mut acc1) = ([_mm256_setzero_ps(); T], [_mm256_setzero_ps(); T]);
        let mut corr = [0.0f32; T];
        let (low, two) = (_mm256_set1_epi8(15), _mm256_set1_epi8(3));
        for (bi, b) in row.chunks_exact(210).enumerate() {
            prefetch_ahead(b.as_ptr(), 4);
            let d = f16_at(b, 208);
            let sc = &b[192..208];
            for n in 0..2 {
                let p = b.as_ptr();
                let ql0 = _mm256_loadu_si256(p.add(64 * n).cast());
                let ql1 = _mm256_loadu_si256(p.add(64 * n + 32).cast());
                let qh = _mm256_loadu_si256(p.add(128 + 32 * n).cast());
                let q = [
                    _mm256_or_si256(_mm256_and_si256(ql0, low), high_bits(qh, 0, two)),
                    _mm256_or_si256(_mm256_and_si256(ql1, low), high_bits(qh, 2, two)),
                    _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), low), high_bits(qh, 4, two)),
                    _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), low), high_bits(qh, 6, two)),
                ];
                for (i, qi) in q.iter().enumerate() {
                    let g = 8 * bi + 4 * n + i;
                    let s = 8 * n + 2 * i; // the two 16-element sub-blocks of this group
                    let (s0, s1) = (d * f32::from(sc[s] as i8), d * f32::from(sc[s + 1] as i8));
                    for t in 0..T {
                        let a = a[t];
                        let x = _mm256_loadu_si256(a.q.as_ptr().add(32 * g).cast());
                        let scale = _mm256_set_m128(_mm_set1_ps(s1 * a.d[g]), _mm_set1_ps(s0 * a.d[g]));
                        let prod = _mm256_cvtepi32_ps(unsigned_lanes::<VNNI>(*qi, x));
                        if i % 2 == 0 {
                            acc0[t] = _mm256_fmadd_ps(prod, scale, acc0[t]);
                        } else {
                            acc1[t] = _mm256_fmadd_ps(prod, scale, acc1[t]);
                        }
                        corr[t] += 32.0 * (s0 * a.half[2 * g] + s1 * a.half[2 * g + 1]);
                    }
                }
            }
        }
        std::array::from_fn(|t| hsum8(_mm256_add_ps(acc0[t], acc1[t])) - corr[t])
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
/// `T` (so each result is bit for bit the one-token result).
pub(crate) trait RowTokens {
    /// Tokens dotted with each row at once: 4 tokens' accumulators fill the 16 ymm registers of
    /// AVX2; the AVX-512 kernels, with 32 registers, take 8.
    const GROUP: usize = 4;

    /// `[w_row . x_t; T]` for the tokens `a`.
    ///
    /// # Safety
    /// The kernel's target features are present; every token has the row's length.
    unsafe fn row<const T: usize>(&self, row: &[u8], a: [&QAct; T]) -> [f32; T];
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

/// The `n` rows of `w` against the `T` tokens of `group`: `out[t * n + j]` (one loop per group
/// size, so the one-token decode loop is as tight as a plain row loop).
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
    for (j, row) in w.chunks_exact(row_bytes.max(1)).take(n).enumerate() {
        // SAFETY: the caller's contract.
        let r = unsafe { kern.row::<T>(row, a) };
        for (t, v) in r.into_iter().enumerate() {
            out[t * n + j] = v;
        }
    }
}

/// Q4_K or Q6_K rows, `VNNI` picking the lane kernel.
struct KRows<const VNNI: bool>(KQuant);

impl<const VNNI: bool> RowTokens for KRows<VNNI> {
    #[inline(always)]
    unsafe fn row<const T: usize>(&self, row: &[u8], a: [&QAct; T]) -> [f32; T] {
        // SAFETY: the caller's contract (as `row_q4_k`).
        unsafe {
            match self.0 {
                KQuant::Q4K => row_q4_k::<VNNI, T>(row, a),
                KQuant::Q6K => row_q6_k::<VNNI, T>(row, a),
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
