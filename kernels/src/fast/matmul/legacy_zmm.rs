//! Decode matvec v4 for Q8_0, Q4_0 and Q5_0 on AVX-512: two 32-blocks per 512-bit `vpdpbusd`, so the
//! integer products, their conversion and the f32 accumulation are one instruction per two
//! blocks, and the two f16 scales are widened together. (v3, one block per 256-bit register,
//! is `row_simple` in matvec.rs; it serves AVX2 and rows of an odd number of blocks.)
//!
//! The weight quants enter `vpdpbusd` unsigned: Q8_0 as `q ^ 0x80 = q + 128`, Q4_0 as the raw
//! nibble (`q + 8`), Q5_0 as nibble plus fifth bit (`q + 16`, bits spread by `vpmovm2b`). The offset is removed exactly in the integer domain by starting each lane
//! at `-offset * (sum of its 4 activations)` ([`QAct::nlsum`], shifted by log2 of the offset).
//! Per two blocks the scale vector is `[d0 dx0 x 8 lanes, d1 dx1 x 8 lanes]`.

use super::act::QAct;
use std::arch::x86_64::*;

/// How far ahead of the current block the weight stream is prefetched, in bytes.
const PREFETCH: usize = 1024;

/// Which format a call decodes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Zmm {
    Q8_0,
    Q4_0,
    Q5_0,
}

/// Quants of two consecutive blocks `b` (whole blocks) as 64 unsigned bytes.
///
/// # Safety
/// AVX-512 F/BW/VL.
#[inline(always)]
unsafe fn quants(fmt: Zmm, b: &[u8]) -> __m512i {
    // SAFETY: the caller's contract; loads stay inside the two blocks (68 / 36 bytes).
    unsafe {
        let p = b.as_ptr();
        match fmt {
            Zmm::Q8_0 => {
                let lo = _mm256_loadu_si256(p.add(2).cast());
                let hi = _mm256_loadu_si256(p.add(36).cast());
                _mm512_xor_si512(_mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1), _mm512_set1_epi8(-128))
            }
            Zmm::Q4_0 => nibbles(p.add(2), p.add(20)),
            Zmm::Q5_0 => {
                // Fifth bits: bit e of the two blocks' `qh` words is byte e's 16.
                let qh = |at: usize| u64::from(u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]));
                let high = _mm512_movm_epi8(qh(2) | qh(24) << 32);
                _mm512_or_si512(nibbles(p.add(6), p.add(28)), _mm512_and_si512(high, _mm512_set1_epi8(16)))
            }
        }
    }
}

/// The 16 nibble bytes at `p0` and at `p1` (two blocks) as 64 bytes: each block's low nibbles,
/// then its high nibbles (elements `j` and `j + 16` of a block share byte `j`).
///
/// # Safety
/// AVX-512 F/BW/VL; 16 bytes readable at both pointers.
#[inline(always)]
unsafe fn nibbles(p0: *const u8, p1: *const u8) -> __m512i {
    // SAFETY: the caller's contract.
    unsafe {
        let y = _mm256_set_m128i(_mm_loadu_si128(p1.cast()), _mm_loadu_si128(p0.cast()));
        let ys = _mm256_srli_epi16(y, 4);
        // 128-bit lanes [n0, n0 >> 4, n1, n1 >> 4].
        let idx = _mm512_set_epi64(11, 10, 3, 2, 9, 8, 1, 0);
        let z = _mm512_permutex2var_epi64(_mm512_castsi256_si512(y), idx, _mm512_castsi256_si512(ys));
        _mm512_and_si512(z, _mm512_set1_epi8(15))
    }
}

/// One row of `fmt`, an even number of blocks.
///
/// # Safety
/// AVX-512 F/BW/VL/VNNI and F16C.
#[inline(always)]
unsafe fn row(fmt: Zmm, row: &[u8], a: &QAct) -> f32 {
    let (size, shift) = match fmt {
        Zmm::Q8_0 => (34, 7),
        Zmm::Q4_0 => (18, 3),
        Zmm::Q5_0 => (22, 4),
    };
    // SAFETY (whole body): the features are present (the caller's contract); activation loads
    // read 64 bytes (`q`), 16 lanes (`nlsum`, `dlanes`) of one block pair.
    unsafe {
        let mut acc = _mm512_setzero_ps();
        let spread = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
        for (i, b) in row.chunks_exact(2 * size).enumerate() {
            // Ask for the bytes PREFETCH ahead now: the loads below otherwise wait on DRAM
            // latency at the start of each row (the hardware prefetcher ramps up per page).
            _mm_prefetch::<_MM_HINT_T0>(b.as_ptr().wrapping_add(PREFETCH).cast());
            let q = quants(fmt, b);
            let x = _mm512_loadu_si512(a.q.as_ptr().add(64 * i).cast());
            let bias =
                _mm512_sllv_epi32(_mm512_loadu_si512(a.nlsum.as_ptr().add(16 * i).cast()), _mm512_set1_epi32(shift));
            let lanes = _mm512_dpbusd_epi32(bias, q, x);
            let h = _mm_insert_epi16(
                _mm_cvtsi32_si128(i32::from(u16::from_le_bytes([b[0], b[1]]))),
                i32::from(u16::from_le_bytes([b[size], b[size + 1]])),
                1,
            );
            let d = _mm512_permutexvar_ps(spread, _mm512_castps128_ps512(_mm_cvtph_ps(h)));
            let s = _mm512_mul_ps(d, _mm512_loadu_ps(a.dlanes.as_ptr().add(16 * i)));
            acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(lanes), s, acc);
        }
        _mm512_reduce_add_ps(acc)
    }
}

/// Rows of `fmt` with an even number of blocks per row: `out[j] ~ w[j] . x`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
pub(super) fn rows(fmt: Zmm, w: &[u8], a: &QAct, out: &mut [f32]) {
    let size = match fmt {
        Zmm::Q8_0 => 34,
        Zmm::Q4_0 => 18,
        Zmm::Q5_0 => 22,
    };
    let row_bytes = a.q.len() / 32 * size;
    for (o, r) in out.iter_mut().zip(w.chunks_exact(row_bytes)) {
        // SAFETY: this function's features cover `row`'s contract.
        *o = unsafe { row(fmt, r, a) };
    }
}
