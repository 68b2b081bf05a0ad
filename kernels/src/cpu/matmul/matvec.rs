//! Matrix-vector products for decode: `out[j] = w[j] . x` for a run of weight rows read straight
//! from the mapped bytes (memory-bound: every byte of the weight is read once per token).
//!
//! Three kernels, each in a portable version (plain Rust for the auto-vectoriser; NEON on
//! aarch64) compiled again under AVX2 and AVX-512 target features, plus intrinsics where the
//! compiler cannot find the instruction:
//! - `float_rows`: F32 / F16 / BF16 weights widened to f32, f32 FMA with 16 lanes.
//! - `exact_rows`: block formats against f32 activations: each decoded block becomes
//!   `scale * q - min` in registers, then f32 FMA (the `Precision::Reference` mode).
//! - `q8_rows`: block formats against 8-bit activations ([`QAct`]), int8 dot products per
//!   32-element group: v1 portable i32 sums per 16; v2 AVX2 `vpmaddubsw` + `vpmaddwd`; v3
//!   AVX-512 VNNI `vpdpbusd` (on 256-bit registers: Zen 4 splits 512-bit ops anyway). Signs are
//!   moved onto the activations (`|q|`, `sign(a, q)`) since the instructions take one unsigned
//!   operand. Group sums are scaled per 16 lanes and accumulated in f32; the formats with a
//!   min subtract `min * d * sum(a_q)` per 16.

use super::act::QAct;
use super::decode::{f16_to_f32, with_decoder, Block, DecodeJob, Format};
use crate::cpu::isa::Isa;
use crate::tensor::DType;

/// One weight element as f32.
#[inline(always)]
fn widen(dtype: DType, b: &[u8]) -> f32 {
    match dtype {
        DType::F16 => f16_to_f32(u16::from_le_bytes([b[0], b[1]])),
        DType::BF16 => f32::from_bits(u32::from(u16::from_le_bytes([b[0], b[1]])) << 16),
        _ => f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
    }
}

/// A row of F32 / F16 / BF16 bytes widened into `out`.
pub(super) fn widen_row(dtype: DType, bytes: &[u8], out: &mut [f32]) {
    let es = dtype.block().1;
    for (o, b) in out.iter_mut().zip(bytes.chunks_exact(es)) {
        *o = widen(dtype, b);
    }
}

/// Prefetches the bytes a page past `row` (the weight stream of a file mapping; see
/// `kquant_x86::PREFETCH`).
#[inline(always)]
fn prefetch_ahead(row: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    super::kquant_x86::prefetch_ahead(row.as_ptr(), row.len().div_ceil(64));
    #[cfg(not(target_arch = "x86_64"))]
    let _ = row;
}

/// Sum of 16 lanes.
#[inline(always)]
fn hsum(acc: [f32; 16]) -> f32 {
    let mut v = acc;
    for w in [8, 4, 2, 1] {
        for i in 0..w {
            v[i] += v[i + w];
        }
    }
    v[0]
}

/// Float rows: `out[j] = w[j] . x`, `w` holding `out.len()` rows of `x.len()` elements.
#[inline(always)]
fn float_body<const ES: usize>(dtype: DType, w: &[u8], x: &[f32], out: &mut [f32]) {
    let row_bytes = x.len() * ES;
    for (o, row) in out.iter_mut().zip(w.chunks_exact(row_bytes)) {
        prefetch_ahead(row);
        let mut acc = [0.0f32; 16];
        let (xs, rest) = x.split_at(x.len() / 16 * 16);
        for (xc, wc) in xs.chunks_exact(16).zip(row.chunks_exact(16 * ES)) {
            for i in 0..16 {
                acc[i] += widen(dtype, &wc[i * ES..]) * xc[i];
            }
        }
        let tail = &row[xs.len() * ES..];
        for (i, xv) in rest.iter().enumerate() {
            acc[i] += widen(dtype, &tail[i * ES..]) * xv;
        }
        *o = hsum(acc);
    }
}

#[inline(always)]
fn float_rows_body(dtype: DType, w: &[u8], x: &[f32], out: &mut [f32]) {
    match dtype {
        DType::F32 => float_body::<4>(dtype, w, x, out),
        _ => float_body::<2>(dtype, w, x, out),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
fn float_rows_avx512(dtype: DType, w: &[u8], x: &[f32], out: &mut [f32]) {
    float_rows_body(dtype, w, x, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
fn float_rows_avx2(dtype: DType, w: &[u8], x: &[f32], out: &mut [f32]) {
    float_rows_body(dtype, w, x, out)
}

/// F32 / F16 / BF16 rows against f32 activations.
pub(super) fn float_rows(isa: Isa, dtype: DType, w: &[u8], x: &[f32], out: &mut [f32]) {
    match isa {
        // SAFETY: `isa` is never above `Isa::detect()` (FastCpu clamps it), so the CPU has
        // the features these functions are compiled for.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 | Isa::Avx512Bf16 => unsafe { float_rows_avx512(dtype, w, x, out) },
        // SAFETY: as above.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe { float_rows_avx2(dtype, w, x, out) },
        _ => float_rows_body(dtype, w, x, out),
    }
}

/// Block-format rows against f32 activations (dequantize in registers, f32 FMA).
struct Exact<'a> {
    w: &'a [u8],
    x: &'a [f32],
    out: &'a mut [f32],
}

impl DecodeJob for Exact<'_> {
    type Out = ();
    #[inline(always)]
    fn run<D: Fn(&[u8], &mut Block) + Copy>(self, decode: D, f: Format) {
        let (elems, size) = (f.elems, f.size);
        let row_bytes = self.x.len() / elems * size;
        let mut blk = Block::new();
        for (o, row) in self.out.iter_mut().zip(self.w.chunks_exact(row_bytes)) {
            let mut acc = [0.0f32; 16];
            for (b, xb) in row.chunks_exact(size).zip(self.x.chunks_exact(elems)) {
                decode(b, &mut blk);
                for (h, (qs, xs)) in blk.q[..elems].chunks_exact(16).zip(xb.chunks_exact(16)).enumerate() {
                    let (s, m) = (blk.scale[h], blk.min[h]);
                    for i in 0..16 {
                        acc[i] += (s * f32::from(qs[i]) - m) * xs[i];
                    }
                }
            }
            *o = hsum(acc);
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
fn exact_rows_avx512(dtype: DType, job: Exact<'_>) {
    with_decoder(dtype, job);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
fn exact_rows_avx2(dtype: DType, job: Exact<'_>) {
    with_decoder(dtype, job);
}

/// Block-format rows against f32 activations: `out[j] = w[j] . x`.
pub(super) fn exact_rows(isa: Isa, dtype: DType, w: &[u8], x: &[f32], out: &mut [f32]) {
    let job = Exact { w, x, out };
    match isa {
        // SAFETY: `isa` is never above `Isa::detect()` (see `float_rows`).
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 | Isa::Avx512Bf16 => unsafe { exact_rows_avx512(dtype, job) },
        // SAFETY: as above.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe { exact_rows_avx2(dtype, job) },
        _ => {
            with_decoder(dtype, job);
        }
    }
}

/// Block-format rows against 8-bit activations; `lanes` says how group dot products are made.
struct Q8<'a> {
    isa: Isa,
    w: &'a [u8],
    a: &'a QAct,
    out: &'a mut [f32],
}

impl DecodeJob for Q8<'_> {
    type Out = ();
    #[inline(always)]
    fn run<D: Fn(&[u8], &mut Block) + Copy>(self, decode: D, f: Format) {
        let row_bytes = self.a.q.len() / f.elems * f.size;
        let (isa, a) = (self.isa, self.a);
        // One row at a time: four rows per pass (sharing each activation load) measured slower
        // here, their decoded blocks no longer stay in registers and L1.
        for (o, row) in self.out.iter_mut().zip(self.w.chunks_exact(row_bytes)) {
            *o = match isa {
                // SAFETY: `isa` is never above `Isa::detect()` (see `float_rows`); this body is
                // only instantiated inside the matching target-feature functions (`q8_avx512`,
                // `q8_avx2`).
                #[cfg(target_arch = "x86_64")]
                Isa::Avx512 | Isa::Avx512Bf16 => unsafe { x86::row_q8::<true, D>(decode, row, f, a) },
                // SAFETY: as above.
                #[cfg(target_arch = "x86_64")]
                Isa::Avx2 => unsafe { x86::row_q8::<false, D>(decode, row, f, a) },
                _ => row_q8_portable(&decode, row, f, a),
            };
        }
    }
}

/// One row against 8-bit activations, portable: i32 sums per 16, scaled in f32.
#[inline(always)]
fn row_q8_portable<D: Fn(&[u8], &mut Block)>(decode: &D, row: &[u8], f: Format, a: &QAct) -> f32 {
    let mut blk = Block::new();
    let (mut acc, mut corr) = (0.0f32, 0.0f32);
    for (bi, b) in row.chunks_exact(f.size).enumerate() {
        decode(b, &mut blk);
        let g0 = bi * f.elems / 32;
        for g in 0..f.elems / 32 {
            let (qw, qa) = (&blk.q[32 * g..32 * g + 32], &a.q[32 * (g0 + g)..32 * (g0 + g) + 32]);
            let mut s = [0i32; 2];
            for (h, sh) in s.iter_mut().enumerate() {
                for i in 16 * h..16 * h + 16 {
                    *sh += i32::from(qw[i]) * i32::from(qa[i]);
                }
            }
            acc += a.d[g0 + g] * (blk.scale[2 * g] * s[0] as f32 + blk.scale[2 * g + 1] * s[1] as f32);
            if f.mins {
                corr += blk.min[2 * g] * a.half[2 * (g0 + g)] + blk.min[2 * g + 1] * a.half[2 * (g0 + g) + 1];
            }
        }
    }
    acc - corr
}

#[cfg(target_arch = "x86_64")]
pub(super) mod x86 {
    use super::super::kquant_x86::{hsum8, reduce8, rows_by_groups, unsigned_lanes, RowTokens};
    use super::{Block, Format, QAct};
    use std::arch::x86_64::*;

    // Helpers here are `inline(always)` without target features of their own: they are only
    // used inside `q8_avx512` / `q8_avx2`, whose features they inherit when inlined.

    /// `vpdpbusd` products of one 32-group: 8 lanes of 4 products each (lanes 0-3 are the
    /// first 16 elements). `q` and `a` are signed; `|q|` is the unsigned operand.
    ///
    /// # Safety
    /// AVX-512 VNNI + VL and AVX2.
    #[inline(always)]
    unsafe fn lanes_vnni(q: __m256i, a: __m256i) -> __m256i {
        // SAFETY: the caller's contract.
        unsafe { _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_sign_epi8(q, q), _mm256_sign_epi8(a, q)) }
    }

    /// The same with AVX2: `|q| * sign(a, q)` pairs to int16 (at most 2 * 128 * 127, no
    /// saturation since `|a| <= 127`), then pairs of those to int32.
    ///
    /// # Safety
    /// AVX2.
    #[inline(always)]
    unsafe fn lanes_avx2(q: __m256i, a: __m256i) -> __m256i {
        // SAFETY: the caller's contract.
        unsafe {
            let pairs = _mm256_maddubs_epi16(_mm256_sign_epi8(q, q), _mm256_sign_epi8(a, q));
            _mm256_madd_epi16(pairs, _mm256_set1_epi16(1))
        }
    }

    /// One row against 8-bit activations (see the module docs). `VNNI` picks the lane kernel.
    ///
    /// # Safety
    /// The CPU must support AVX2 + FMA, and AVX-512 VNNI/VL if `VNNI`.
    #[inline(always)]
    pub(super) unsafe fn row_q8<const VNNI: bool, D: Fn(&[u8], &mut Block)>(
        decode: D,
        row: &[u8],
        f: Format,
        a: &QAct,
    ) -> f32 {
        let mut blk = Block::new();
        // SAFETY (all intrinsics below): AVX2 + FMA (and VNNI if `VNNI`), the caller's contract.
        let mut acc = unsafe { _mm256_setzero_ps() };
        let mut corr = 0.0f32;
        for (bi, b) in row.chunks_exact(f.size).enumerate() {
            decode(b, &mut blk);
            let g0 = bi * f.elems / 32;
            for g in 0..f.elems / 32 {
                let aq = &a.q[32 * (g0 + g)..32 * (g0 + g) + 32];
                let d = a.d[g0 + g];
                // SAFETY: `aq` and `blk.q[32 g..]` hold 32 bytes; unaligned loads.
                unsafe {
                    let x = _mm256_loadu_si256(aq.as_ptr().cast());
                    let q = _mm256_loadu_si256(blk.q.as_ptr().add(32 * g).cast());
                    let lanes = if VNNI { lanes_vnni(q, x) } else { lanes_avx2(q, x) };
                    let s = if f.sub16 {
                        let (s0, s1) = (blk.scale[2 * g] * d, blk.scale[2 * g + 1] * d);
                        _mm256_set_m128(_mm_set1_ps(s1), _mm_set1_ps(s0))
                    } else {
                        _mm256_set1_ps(blk.scale[2 * g] * d)
                    };
                    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(lanes), s, acc);
                }
                if f.mins {
                    corr += blk.min[2 * g] * a.half[2 * (g0 + g)] + blk.min[2 * g + 1] * a.half[2 * (g0 + g) + 1];
                }
            }
        }
        // SAFETY: as above.
        unsafe { hsum8(acc) - corr }
    }

    /// The legacy formats with one scale per 32 and no min, decoded in registers straight from
    /// the row bytes (no [`Block`] round trip): `FMT` is [`Q8_0`] (`d, qs[32]`), [`Q4_0`]
    /// (`d, nibbles[16]`, offset 8) or [`Q5_0`] (`d, qh: u32, nibbles[16]`, offset 16).
    pub(super) const Q8_0: u8 = 0;
    /// See [`Q8_0`].
    pub(super) const Q4_0: u8 = 1;
    /// See [`Q8_0`].
    pub(super) const Q5_0: u8 = 2;

    /// Bytes per block of `FMT`.
    const fn block_bytes(fmt: u8) -> usize {
        match fmt {
            Q8_0 => 34,
            Q4_0 => 18,
            _ => 22,
        }
    }

    /// Block `b` of `FMT` decoded in registers: its 32 quants as the lane kernels take them
    /// (Q8_0 signed; Q4_0 / Q5_0 unsigned, `q + offset`) and its scale.
    ///
    /// # Safety
    /// AVX2 + F16C; `b` is one whole block.
    #[inline(always)]
    unsafe fn decode<const FMT: u8>(b: &[u8]) -> (__m256i, f32) {
        // SAFETY: the caller's contract; loads stay inside `b` (34 / 18 / 22 bytes).
        unsafe {
            let p = b.as_ptr();
            let d = _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(i32::from(u16::from_le_bytes([b[0], b[1]])))));
            let nibbles = |at: usize| {
                let v = _mm_loadu_si128(p.add(at).cast());
                _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(v, 4), v), _mm256_set1_epi8(15))
            };
            match FMT {
                Q8_0 => (_mm256_loadu_si256(p.add(2).cast()), d),
                Q4_0 => (nibbles(2), d),
                _ => {
                    let qh = i32::from_le_bytes([b[2], b[3], b[4], b[5]]);
                    // Byte e of `hb` is 0xff where bit e of qh is set: byte e takes qh's byte
                    // e / 8, ORed with all bits but bit e % 8.
                    let shuf =
                        _mm256_set_epi64x(0x0303_0303_0303_0303, 0x0202_0202_0202_0202, 0x0101_0101_0101_0101, 0);
                    let bits = _mm256_set1_epi64x(0x7fbf_dfef_f7fb_fdfe);
                    let spread = _mm256_or_si256(_mm256_shuffle_epi8(_mm256_set1_epi32(qh), shuf), bits);
                    let hb = _mm256_cmpeq_epi8(spread, _mm256_set1_epi64x(-1));
                    (_mm256_or_si256(nibbles(6), _mm256_and_si256(hb, _mm256_set1_epi8(16))), d)
                }
            }
        }
    }

    /// Rows of `FMT` against 8-bit activations, in tiles of 2 rows x 2 tokens: each block is decoded once per tile and
    /// each token's loads serve both rows. Every (row, token) sum is made in the one-token
    /// order, even blocks on one accumulator and odd blocks on another (one FMA chain per block
    /// bounds the decode loop near the memory speed), so results do not depend on how many
    /// rows or tokens come together; 8 accumulators of the 16 ymm registers. The 4- and 5-bit
    /// quants go in unsigned (`q + offset`), the offset removed in the integer domain: each
    /// lane starts at `-offset *` the sum of its 4 activations (`QAct::nlsum`).
    struct Simple<const VNNI: bool, const FMT: u8>;

    /// Block `i` of each of `rows` against the tokens `a`, into `acc`.
    ///
    /// # Safety
    /// AVX2 + FMA + F16C, and AVX-512 VNNI/VL if `VNNI`; `i` is a block of every row, tokens
    /// have the rows' length.
    #[inline(always)]
    unsafe fn simple_block<const VNNI: bool, const FMT: u8, const R: usize, const T: usize>(
        acc: &mut [[__m256; T]; R],
        rows: [&[u8]; R],
        a: [&QAct; T],
        i: usize,
    ) {
        let size = block_bytes(FMT);
        // SAFETY (whole body): the caller's contract; activation loads read 32 bytes / 8 lanes
        // of block `i`.
        unsafe {
            let mut dec = [(_mm256_setzero_si256(), _mm256_setzero_ps()); R];
            for (dec, row) in dec.iter_mut().zip(rows) {
                let b = &row[i * size..(i + 1) * size];
                if i.is_multiple_of(2) {
                    super::super::kquant_x86::prefetch_ahead(b.as_ptr(), 1);
                }
                let (q, d) = decode::<FMT>(b);
                *dec = (q, _mm256_set1_ps(d));
            }
            let shift = _mm_cvtsi32_si128(if FMT == Q4_0 { 3 } else { 4 });
            for (t, a) in a.iter().enumerate() {
                let x = _mm256_loadu_si256(a.q.as_ptr().add(32 * i).cast());
                let dl = _mm256_loadu_ps(a.dlanes.as_ptr().add(8 * i));
                let bias = if FMT == Q8_0 {
                    _mm256_setzero_si256()
                } else {
                    _mm256_sll_epi32(_mm256_loadu_si256(a.nlsum.as_ptr().add(8 * i).cast()), shift)
                };
                for (acc, (q, d)) in acc.iter_mut().zip(&dec) {
                    let lanes = match (FMT, VNNI) {
                        (Q8_0, true) => lanes_vnni(*q, x),
                        (Q8_0, false) => lanes_avx2(*q, x),
                        _ => unsigned_lanes::<VNNI>(bias, *q, x),
                    };
                    acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(lanes), _mm256_mul_ps(*d, dl), acc[t]);
                }
            }
        }
    }

    impl<const VNNI: bool, const FMT: u8> RowTokens for Simple<VNNI, FMT> {
        const GROUP: usize = 2;
        const ROWS: usize = 2;

        #[inline(always)]
        unsafe fn row<const T: usize>(&self, row: &[u8], a: [&QAct; T]) -> [f32; T] {
            // SAFETY: the caller's contract.
            unsafe { self.tile::<1, T>([row], a)[0] }
        }

        #[inline(always)]
        unsafe fn tile<const R: usize, const T: usize>(&self, rows: [&[u8]; R], a: [&QAct; T]) -> [[f32; T]; R] {
            let blocks = rows.first().map_or(0, |r| r.len() / block_bytes(FMT));
            // SAFETY (whole body): the features are present (the caller's contract); every
            // block index is inside the rows.
            unsafe {
                let (mut even, mut odd) = ([[_mm256_setzero_ps(); T]; R], [[_mm256_setzero_ps(); T]; R]);
                for i in (0..blocks / 2 * 2).step_by(2) {
                    simple_block::<VNNI, FMT, R, T>(&mut even, rows, a, i);
                    simple_block::<VNNI, FMT, R, T>(&mut odd, rows, a, i + 1);
                }
                if blocks % 2 == 1 {
                    simple_block::<VNNI, FMT, R, T>(&mut even, rows, a, blocks - 1);
                }
                for (e, o) in even.iter_mut().zip(&odd) {
                    for (e, o) in e.iter_mut().zip(o) {
                        *e = _mm256_add_ps(*e, *o);
                    }
                }
                reduce8(even)
            }
        }
    }

    /// Q8_0 / Q4_0 / Q5_0 rows against 1 or more tokens (`out[t * rows + j]`), inside AVX2
    /// target features (`VNNI` false).
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) fn simple_tokens_avx2<const FMT: u8>(w: &[u8], acts: &[QAct], out: &mut [f32]) {
        let row_bytes = acts.first().map_or(0, |a| a.q.len() / 32 * block_bytes(FMT));
        // SAFETY: this function's features cover the contract; every token has the rows' length.
        unsafe { rows_by_groups(&Simple::<false, FMT>, w, row_bytes, acts, out) }
    }

    /// See [`simple_tokens_avx2`]; inside AVX-512 target features (`VNNI` true).
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
    pub(super) fn simple_tokens_avx512<const FMT: u8>(w: &[u8], acts: &[QAct], out: &mut [f32]) {
        let row_bytes = acts.first().map_or(0, |a| a.q.len() / 32 * block_bytes(FMT));
        // SAFETY: as above.
        unsafe { rows_by_groups(&Simple::<true, FMT>, w, row_bytes, acts, out) }
    }

    /// The job run inside AVX-512 target features so that decoding and the row loop inline.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
    pub(super) fn q8_avx512(dtype: crate::tensor::DType, job: super::Q8<'_>) {
        super::with_decoder(dtype, job);
    }

    /// The job run inside AVX2 target features.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) fn q8_avx2(dtype: crate::tensor::DType, job: super::Q8<'_>) {
        super::with_decoder(dtype, job);
    }
}

/// Q8_0 / Q4_0 / Q5_0 rows against 1 or more tokens on an x86 `isa` of at least AVX2, one
/// 32-block per 256-bit register (AVX2, and AVX-512 rows of an odd number of blocks).
#[cfg(target_arch = "x86_64")]
fn simple_tokens(isa: Isa, fmt: super::legacy_zmm::Zmm, w: &[u8], acts: &[QAct], out: &mut [f32]) {
    use super::legacy_zmm::Zmm;
    use x86::{simple_tokens_avx2 as avx2, simple_tokens_avx512 as avx512, Q4_0, Q5_0, Q8_0};
    // SAFETY: `isa` is never above `Isa::detect()` (see `float_rows`) and is at least AVX2;
    // the AVX-512 versions run only when it is at least `Avx512`.
    unsafe {
        match (fmt, isa >= Isa::Avx512) {
            (Zmm::Q8_0, true) => avx512::<Q8_0>(w, acts, out),
            (Zmm::Q8_0, false) => avx2::<Q8_0>(w, acts, out),
            (Zmm::Q4_0, true) => avx512::<Q4_0>(w, acts, out),
            (Zmm::Q4_0, false) => avx2::<Q4_0>(w, acts, out),
            (Zmm::Q5_0, true) => avx512::<Q5_0>(w, acts, out),
            (Zmm::Q5_0, false) => avx2::<Q5_0>(w, acts, out),
        }
    }
}

/// Block-format rows against 8-bit tokens: `out[t * rows + j] ~ w[j] . x_t`, each token's sums
/// made as if it were alone (decode), so the results do not depend on how many come together.
/// The x86 kernels (Q4_K, Q6_K, Q8_0, Q4_0, Q5_0 on AVX2 and AVX-512) work in register tiles of
/// rows x tokens; the portable ones and the other formats run token after token (the caller
/// keeps `w` small enough to stay in L1 then).
pub(super) fn q8_rows(isa: Isa, dtype: DType, w: &[u8], acts: &[QAct], out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        use super::kquant_x86::KQuant;
        use super::legacy_zmm::Zmm;
        let pairs = acts.first().is_some_and(|a| (a.q.len() / 32).is_multiple_of(2));
        let wide = isa >= Isa::Avx512;
        // SAFETY (all three): `isa` is never above `Isa::detect()` (see `float_rows`), and is
        // the level each kernel needs.
        match (KQuant::of(dtype), Zmm::of(dtype)) {
            (Some(kq), _) if isa == Isa::Avx2 => return unsafe { super::kquant_x86::rows_avx2(kq, w, acts, out) },
            (Some(kq), _) if wide => return unsafe { super::kquant_zmm::rows(kq, w, acts, out) },
            (_, Some(z)) if wide && pairs => return unsafe { super::legacy_zmm::rows(z, w, acts, out) },
            (_, Some(z)) if isa >= Isa::Avx2 => return simple_tokens(isa, z, w, acts, out),
            _ => {}
        }
    }
    let n = out.len() / acts.len().max(1);
    for (a, o) in acts.iter().zip(out.chunks_exact_mut(n)) {
        q8_token(isa, dtype, w, a, o);
    }
}

/// Block-format rows against one 8-bit token: `out[j] ~ w[j] . x`.
fn q8_token(isa: Isa, dtype: DType, w: &[u8], a: &QAct, out: &mut [f32]) {
    let job = Q8 { isa, w, a, out };
    match isa {
        // SAFETY: `isa` is never above `Isa::detect()` (see `float_rows`).
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 | Isa::Avx512Bf16 => unsafe { x86::q8_avx512(dtype, job) },
        // SAFETY: as above.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe { x86::q8_avx2(dtype, job) },
        _ => {
            with_decoder(dtype, job);
        }
    }
}
