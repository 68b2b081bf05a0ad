//! Decode matvec v4 for Q8_0, Q4_0 and Q5_0 on AVX-512: two 32-blocks per 512-bit `vpdpbusd`, so
//! the integer products, their conversion and the f32 accumulation are one instruction per two
//! blocks. (v3, one block per 256-bit register, is `row_simple` in matvec.rs; it serves AVX2 and
//! rows of an odd number of blocks.)
//!
//! A block pair is read with one or two 512-bit loads (masked to the pair's bytes) and taken
//! apart with byte permutes (`vpermb` / `vpermt2b`, AVX-512 VBMI): the quants land in block
//! order, and the two f16 scales are spread with one `vpermw` and widened with one
//! `vcvtph2ps` to `[d0 x 8 lanes, d1 x 8 lanes]`, the lanes of each block's `vpdpbusd` sums.
//!
//! The quants enter `vpdpbusd` unsigned: Q8_0 as `q ^ 0x80 = q + 128`, Q4_0 as the raw nibble
//! (`q + 8`), Q5_0 as nibble plus fifth bit (`q + 16`, bits spread by `vpmovm2b`). The offset is
//! removed exactly in the integer domain by starting each lane at `-offset * (sum of its 4
//! activations)` (`QAct::nlsum`, shifted by log2 of the offset).
//!
//! The 2-64-token calls of the multi-row matvec go in register tiles of 4 rows x 4 tokens: each
//! decoded block pair serves 4 tokens and each token's loads 4 rows (with one row at a time, 8
//! tokens' activations streamed from L2 once per row and bounded the kernel; E2B pp64 went
//! from 12 to 26 tok/s on one Xeon thread).

use super::act::QAct;
use super::kquant_x86::{prefetch_ahead, rows_by_groups, RowTokens};
use std::arch::x86_64::*;

/// Which format a call decodes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Zmm {
    Q8_0,
    Q4_0,
    Q5_0,
}

impl Zmm {
    /// The format of `dtype`, if it is one of these.
    pub(super) fn of(dtype: crate::tensor::DType) -> Option<Zmm> {
        match dtype {
            crate::tensor::DType::Q8_0 => Some(Zmm::Q8_0),
            crate::tensor::DType::Q4_0 => Some(Zmm::Q4_0),
            crate::tensor::DType::Q5_0 => Some(Zmm::Q5_0),
            _ => None,
        }
    }

    /// Bytes per block.
    fn block_bytes(self) -> usize {
        match self {
            Zmm::Q8_0 => 34,
            Zmm::Q4_0 => 18,
            Zmm::Q5_0 => 22,
        }
    }

    /// log2 of the quant offset.
    fn offset_shift(self) -> u32 {
        match self {
            Zmm::Q8_0 => 7,
            Zmm::Q4_0 => 3,
            Zmm::Q5_0 => 4,
        }
    }
}

/// Byte `i` of the result takes byte `idx[i]` of a block pair: for the nibble formats each
/// block's 16 quant bytes twice (low, then high nibbles), for Q8_0 each block's 32 quants.
const fn quant_index(qs0: usize, qs1: usize, nibbles: bool) -> [u8; 64] {
    let mut idx = [0u8; 64];
    let mut i = 0;
    while i < 64 {
        let (base, j) = if i < 32 { (qs0, i) } else { (qs1, i - 32) };
        idx[i] = (base + if nibbles { j % 16 } else { j }) as u8;
        i += 1;
    }
    idx
}

/// Word `i < 16` of the result takes the scale word of block `i / 8` (byte offset `d1` / 2).
const fn scale_index(d1: usize) -> [u16; 32] {
    let mut idx = [0u16; 32];
    let mut i = 8;
    while i < 16 {
        idx[i] = (d1 / 2) as u16;
        i += 1;
    }
    idx
}

static Q8_0_QUANTS: [u8; 64] = quant_index(2, 36, false);
static Q4_0_QUANTS: [u8; 64] = quant_index(2, 20, true);
static Q5_0_QUANTS: [u8; 64] = quant_index(6, 28, true);
static Q8_0_SCALES: [u16; 32] = scale_index(34);
static Q4_0_SCALES: [u16; 32] = scale_index(18);
static Q5_0_SCALES: [u16; 32] = scale_index(22);

/// Two consecutive blocks `b` (exactly two whole blocks): 64 unsigned quants in element order,
/// and the scales `[d0 x 8, d1 x 8]`.
///
/// # Safety
/// AVX-512 F/BW/VL/VBMI and F16C.
#[inline(always)]
unsafe fn pair(fmt: Zmm, b: &[u8]) -> (__m512i, __m512) {
    // SAFETY: the caller's contract. Loads are masked to the pair's `b.len()` bytes (36 / 44;
    // masked-off bytes are not accessed) or lie inside them (Q8_0: 64 + 4 of 68 bytes); index
    // tables are 64 bytes.
    unsafe {
        let p = b.as_ptr();
        let (quants, scales) = match fmt {
            Zmm::Q8_0 => (&Q8_0_QUANTS, &Q8_0_SCALES),
            Zmm::Q4_0 => (&Q4_0_QUANTS, &Q4_0_SCALES),
            Zmm::Q5_0 => (&Q5_0_QUANTS, &Q5_0_SCALES),
        };
        let idx = _mm512_loadu_si512(quants.as_ptr().cast());
        let (v, q) = if fmt == Zmm::Q8_0 {
            let v = _mm512_loadu_si512(p.cast());
            let tail = _mm512_maskz_loadu_epi8(0xf, p.add(64).cast());
            (v, _mm512_xor_si512(_mm512_permutex2var_epi8(v, idx, tail), _mm512_set1_epi8(-128)))
        } else {
            let v = _mm512_maskz_loadu_epi8((1u64 << b.len()) - 1, p.cast());
            let z = _mm512_permutexvar_epi8(idx, v);
            // 128-bit lanes 1 and 3 (each block's elements 16..32) take the high nibbles.
            let z = _mm512_mask_blend_epi64(0b1100_1100, z, _mm512_srli_epi16(z, 4));
            let n = _mm512_and_si512(z, _mm512_set1_epi8(15));
            if fmt == Zmm::Q4_0 {
                (v, n)
            } else {
                // Fifth bits: bit e of the two blocks' `qh` words is byte e's 16.
                let qh = |at: usize| u64::from(u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]));
                let high = _mm512_movm_epi8(qh(2) | qh(24) << 32);
                (v, _mm512_or_si512(n, _mm512_and_si512(high, _mm512_set1_epi8(16))))
            }
        };
        let d = _mm512_permutexvar_epi16(_mm512_loadu_si512(scales.as_ptr().cast()), v);
        (q, _mm512_cvtph_ps(_mm512_castsi512_si256(d)))
    }
}

/// Rows of `fmt` (an even number of blocks per row) against several tokens at once: each block
/// pair of a tile of rows is read and decoded once, each token's activations loaded once per
/// tile, and every (row, token) sum made in the one-token order (so results do not depend on
/// how many rows or tokens come together).
struct Rows(Zmm);

impl RowTokens for Rows {
    // 4 rows x 4 tokens: 16 accumulators, 8 registers of decoded pairs, 3 of one token.
    const GROUP: usize = 4;
    const ROWS: usize = 4;

    #[inline(always)]
    unsafe fn row<const T: usize>(&self, row: &[u8], a: [&QAct; T]) -> [f32; T] {
        // SAFETY: the caller's contract.
        unsafe { self.tile::<1, T>([row], a)[0] }
    }

    #[inline(always)]
    unsafe fn tile<const R: usize, const T: usize>(&self, rows: [&[u8]; R], a: [&QAct; T]) -> [[f32; T]; R] {
        let fmt = self.0;
        let size = 2 * fmt.block_bytes();
        let pairs = rows.first().map_or(0, |r| r.len() / size);
        // SAFETY (whole body): the features are present (the caller's contract); weight reads
        // are whole pairs of each row; activation loads read 64 bytes (`q`) or 16 lanes
        // (`nlsum`, `dlanes`) of one block pair of a token of the rows' length.
        unsafe {
            let shift = _mm_cvtsi32_si128(fmt.offset_shift() as i32);
            // Raw pointers hoisted out of the loop (the `Vec` fields were reloaded per pair).
            let mut base = [(std::ptr::null(), std::ptr::null(), std::ptr::null()); T];
            for t in 0..T {
                base[t] = (a[t].q.as_ptr(), a[t].nlsum.as_ptr(), a[t].dlanes.as_ptr());
            }
            let mut acc = [[_mm512_setzero_ps(); T]; R];
            for i in 0..pairs {
                let mut decoded = [(_mm512_setzero_si512(), _mm512_setzero_ps()); R];
                for r in 0..R {
                    let b = rows[r].get_unchecked(i * size..(i + 1) * size);
                    prefetch_ahead(b.as_ptr(), 1);
                    decoded[r] = pair(fmt, b);
                }
                for t in 0..T {
                    let (q, nlsum, dlanes) = base[t];
                    let x = _mm512_loadu_si512(q.add(64 * i).cast());
                    let bias = _mm512_sll_epi32(_mm512_loadu_si512(nlsum.add(16 * i).cast()), shift);
                    let dl = _mm512_loadu_ps(dlanes.add(16 * i));
                    for r in 0..R {
                        let (q, d) = decoded[r];
                        let lanes = _mm512_dpbusd_epi32(bias, q, x);
                        acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(lanes), _mm512_mul_ps(d, dl), acc[r][t]);
                    }
                }
            }
            super::kquant_zmm::reduce(acc)
        }
    }
}

/// Rows of `fmt` with an even number of blocks per row against 8-bit tokens:
/// `out[t * rows + j] ~ w[j] . x_t`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vbmi,avx512vnni,avx2,fma,f16c")]
pub(super) fn rows(fmt: Zmm, w: &[u8], acts: &[QAct], out: &mut [f32]) {
    let row_bytes = acts.first().map_or(0, |a| a.q.len() / 32 * fmt.block_bytes());
    // SAFETY: this function's features cover `Rows::row`'s contract; every token has the rows'
    // length (the caller quantized them from one `k`).
    // (One instance per format, so that the format's branches leave the loops.)
    unsafe {
        match fmt {
            Zmm::Q8_0 => rows_by_groups(&Rows(Zmm::Q8_0), w, row_bytes, acts, out),
            Zmm::Q4_0 => rows_by_groups(&Rows(Zmm::Q4_0), w, row_bytes, acts, out),
            Zmm::Q5_0 => rows_by_groups(&Rows(Zmm::Q5_0), w, row_bytes, acts, out),
        }
    }
}
