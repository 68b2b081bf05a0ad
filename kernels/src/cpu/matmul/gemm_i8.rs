//! Prefill GEMM on int8 dot products (`Precision::Native`, block formats; AVX-512 VNNI, and
//! AVX2 for the formats of at most 6-bit quants): the tokens quantized to 8-bit blocks of 32 by
//! the matvec's rule ([`quantize_block`]), each panel of [`NR`] weight rows decoded once per call
//! into 8-bit quants and per-group factors, and a micro-kernel over `MR` tokens x 32 rows.
//! `vpdpbusd` does 64 multiply-adds per instruction against 32 for `vdpbf16ps` and 16 for an f32
//! FMA, and it issues as often as an FMA where `vdpbf16ps` may not (Emerald Rapids: 5.4, 5.7 and
//! 1.4 G instructions/s on one core); AVX2 pairs `vpmaddubsw` + `vpmaddwd` (32 per two
//! instructions, against 8 per f32 FMA).
//!
//! Groups: a tile's sums stay in int32 over one group of `G` elements that share the weight's
//! factors and the token's scale (G = 32; 16 for the formats with 16-element sub-blocks), then
//! per group `acc += (scale * d) * sum(q_w * q_x) - min * x_sum`, `x_sum` the group's dequantized
//! token sum.
//!
//! Both multiplies take unsigned by signed bytes: the tokens go in as `q + 128` (u8), the weight
//! quants signed; each group's int32 sum starts at `-128 * sum(q_w)` (the panel's `bias`), which
//! cancels the offset exactly. (Weights made unsigned instead, with the offset moved into the
//! min, measured 12-18% slower on AVX-512: one more FMA per group and a slower pack.) On AVX2
//! the int16 pair sums of `vpmaddubsw` must not saturate: two pairs of `255 * 32` add up to
//! 32640, so `|q_w| <= 32`, which every format but Q8_0 / Q8_K meets ([`supports`]).
//!
//! Layouts: panel quants `[k / 4][NR][4]` (four consecutive `k` of a row form one 32-bit lane;
//! 16 rows per zmm, 8 per ymm), factors `[k / G][NR]`; tokens `[m][k]` bytes, scales
//! `[m][k / 32]`, sums `[m][k / G]`.

use super::act::quantize_block;
use super::decode::{with_decoder, Block, DecodeJob, Format};
use super::gemm::NR;
use super::OutPtr;
use crate::cpu::isa::Isa;
use crate::cpu::simd::{self, Job};
use crate::tensor::DType;
use crate::Precision;
use rayon::prelude::*;

/// Token rows per micro-kernel tile (AVX-512: 4 x 32 rows, 16 int32 and 16 f32 accumulators;
/// 6 measured 5% slower on Gemma 3 pp512).
const MR: usize = 4;

/// Whether this GEMM serves the call: native precision, a block format, AVX-512 (which implies
/// VNNI here), or AVX2 for every format but Q8_0 / Q8_K (module docs).
pub(super) fn supports(isa: Isa, act: Precision, dtype: DType) -> bool {
    let wide = matches!(dtype, DType::Q8_0 | DType::Q8_K);
    cfg!(target_arch = "x86_64")
        && act == Precision::Native
        && dtype.is_quantized()
        && (isa >= Isa::Avx512 || (isa == Isa::Avx2 && !wide))
}

/// `out[t * n + j] = x[t] . w_row(j)` for `t < m`, `j < n` (see [`super::gemm::gemm`]); only
/// where [`supports`] holds.
#[allow(clippy::too_many_arguments)]
pub(super) fn gemm(isa: Isa, dtype: DType, w: &[u8], row_bytes: usize, k: usize, x: &[f32], n: usize, out: &mut [f32]) {
    // Plain floats never reach here (`supports`).
    let Some(f) = with_decoder(dtype, FormatOf) else { return };
    let group = if f.sub16 { 16 } else { 32 };
    let m = x.len() / k;
    // Taken out of the thread-local while in use (see `gemm::gemm`: work stealing may run
    // another forward on this thread meanwhile).
    let mut toks = TOKENS.take();
    quantize_tokens(isa, x, k, group, &mut toks);
    let dst = OutPtr(out.as_mut_ptr());
    let toks_ref = &toks;
    (0..n.div_ceil(NR)).into_par_iter().for_each(|p| {
        let (j0, nr) = (p * NR, NR.min(n - p * NR));
        PANEL.with_borrow_mut(|(panel, blk)| {
            let rows = &w[j0 * row_bytes..(j0 + nr) * row_bytes];
            with_decoder(dtype, Pack { isa, group, rows, row_bytes, k, panel: &mut *panel, blk });
            let mut tile = [0.0f32; MR * NR];
            for t0 in (0..m).step_by(MR) {
                run_tile(isa, group, f.mins, k, toks_ref, t0, panel, &mut tile);
                for t in 0..MR.min(m - t0) {
                    let o = (t0 + t) * n + j0;
                    // SAFETY: `out` holds `m * n` floats; this panel alone writes columns
                    // `j0..j0 + nr` of each row, so the writes of parallel tasks are disjoint.
                    unsafe { std::ptr::copy_nonoverlapping(tile[t * NR..].as_ptr(), dst.at(o), nr) };
                }
            }
        });
    });
    TOKENS.set(toks);
}

/// The tokens in the kernel's layout (module docs).
#[derive(Default)]
struct Tokens {
    xu: Vec<u8>,
    d: Vec<f32>,
    sums: Vec<f32>,
}

/// One panel: quants, per-group factors and biases (module docs).
#[derive(Default)]
struct Panel {
    q: Vec<u32>,
    scale: Vec<f32>,
    min: Vec<f32>,
    bias: Vec<i32>,
}

thread_local! {
    static TOKENS: std::cell::RefCell<Tokens> = std::cell::RefCell::new(Tokens::default());
    static PANEL: std::cell::RefCell<(Panel, Block)> = std::cell::RefCell::new((Panel::default(), Block::new()));
}

/// The block format's description.
struct FormatOf;

impl DecodeJob for FormatOf {
    type Out = Format;
    fn run<D: Fn(&[u8], &mut Block) + Copy>(self, _: D, f: Format) -> Format {
        f
    }
}

/// Quantizes the `m` tokens of `x` into `toks`, padded with zero tokens to whole tiles.
fn quantize_tokens(isa: Isa, x: &[f32], k: usize, group: usize, toks: &mut Tokens) {
    let m_pad = (x.len() / k).div_ceil(MR) * MR;
    toks.xu.clear();
    toks.xu.resize(m_pad * k, 128);
    toks.d.clear();
    toks.d.resize(m_pad * k / 32, 0.0);
    toks.sums.clear();
    toks.sums.resize(m_pad * k / group, 0.0);
    let rows = toks.xu.par_chunks_exact_mut(k).zip(toks.d.par_chunks_exact_mut(k / 32));
    rows.zip(toks.sums.par_chunks_exact_mut(k / group))
        .zip(x.par_chunks_exact(k))
        .for_each(|(((xu, d), sums), x)| simd::run(isa, QuantizeToken { x, xu, d, sums, group }));
}

/// One token of [`quantize_tokens`], under the instruction set's target features.
struct QuantizeToken<'a> {
    x: &'a [f32],
    xu: &'a mut [u8],
    d: &'a mut [f32],
    sums: &'a mut [f32],
    group: usize,
}

impl Job for QuantizeToken<'_> {
    type Out = ();
    #[inline(always)]
    fn run<const FMA: bool>(self) {
        let per = 32 / self.group;
        let mut q = [0i8; 32];
        for (b, (xs, xu)) in self.x.chunks_exact(32).zip(self.xu.chunks_exact_mut(32)).enumerate() {
            let d = quantize_block(xs, &mut q);
            self.d[b] = d;
            for (u, v) in xu.iter_mut().zip(&q) {
                *u = (*v as u8) ^ 0x80;
            }
            for (h, s) in self.sums[per * b..per * b + per].iter_mut().enumerate() {
                *s = d * q[h * self.group..(h + 1) * self.group].iter().map(|&v| i32::from(v)).sum::<i32>() as f32;
            }
        }
    }
}

/// Decodes `rows` (`rows.len() / row_bytes` <= NR rows) into `panel`, zero rows up to NR,
/// compiled for `isa` (through [`PackRows`]).
struct Pack<'a> {
    isa: Isa,
    group: usize,
    rows: &'a [u8],
    row_bytes: usize,
    k: usize,
    panel: &'a mut Panel,
    blk: &'a mut Block,
}

impl DecodeJob for Pack<'_> {
    type Out = ();
    #[inline(always)]
    fn run<D: Fn(&[u8], &mut Block) + Copy>(self, decode: D, f: Format) {
        simd::run(self.isa, PackRows { pack: self, decode, f });
    }
}

/// [`Pack`] with its decoder, as a [`Job`].
struct PackRows<'a, D> {
    pack: Pack<'a>,
    decode: D,
    f: Format,
}

impl<D: Fn(&[u8], &mut Block) + Copy> Job for PackRows<'_, D> {
    type Out = ();
    #[inline(always)]
    fn run<const FMA: bool>(self) {
        let PackRows { pack, decode, f } = self;
        let Pack { group, rows, row_bytes, k, panel, blk, .. } = pack;
        let groups = k / group;
        panel.q.clear();
        panel.q.resize(k / 4 * NR, 0);
        for v in [&mut panel.scale, &mut panel.min] {
            v.clear();
            v.resize(groups * NR, 0.0);
        }
        panel.bias.clear();
        panel.bias.resize(groups * NR, 0);
        let per_block = f.elems / group;
        for (r, row) in rows.chunks_exact(row_bytes).enumerate() {
            for (b, bytes) in row.chunks_exact(f.size).enumerate() {
                decode(bytes, blk);
                for (e4, q4) in blk.q[..f.elems].chunks_exact(4).enumerate() {
                    let quad = b * f.elems / 4 + e4;
                    panel.q[quad * NR + r] = u32::from_le_bytes([q4[0] as u8, q4[1] as u8, q4[2] as u8, q4[3] as u8]);
                }
                for h in 0..per_block {
                    let (g, e) = (b * per_block + h, h * group);
                    panel.scale[g * NR + r] = blk.scale[e / 16];
                    panel.min[g * NR + r] = blk.min[e / 16];
                    panel.bias[g * NR + r] = -128 * blk.q[e..e + group].iter().map(|&v| i32::from(v)).sum::<i32>();
                }
            }
        }
    }
}

/// One tile: `tile[t][j]` for tokens `t0..t0 + MR` against the panel's rows.
#[allow(clippy::too_many_arguments)]
fn run_tile(
    isa: Isa,
    group: usize,
    mins: bool,
    k: usize,
    toks: &Tokens,
    t0: usize,
    panel: &Panel,
    tile: &mut [f32; MR * NR],
) {
    #[cfg(target_arch = "x86_64")]
    {
        let xu = &toks.xu[t0 * k..(t0 + MR) * k];
        let d = &toks.d[t0 * k / 32..(t0 + MR) * k / 32];
        let sums = &toks.sums[t0 * k / group..(t0 + MR) * k / group];
        // SAFETY: only reached where `supports` held, i.e. on an `Isa` never above
        // `Isa::detect()`; AVX-512 here implies VNNI. Slice lengths are asserted inside.
        unsafe {
            let a = (xu, d, sums, k, panel, tile);
            match (isa >= Isa::Avx512, group == 32, mins) {
                (true, true, false) => x86::tile_avx512::<32, false>(a),
                (true, true, true) => x86::tile_avx512::<32, true>(a),
                (true, false, false) => x86::tile_avx512::<16, false>(a),
                (true, false, true) => x86::tile_avx512::<16, true>(a),
                (false, true, false) => x86::tile_avx2::<32, false>(a),
                (false, true, true) => x86::tile_avx2::<32, true>(a),
                (false, false, false) => x86::tile_avx2::<16, false>(a),
                (false, false, true) => x86::tile_avx2::<16, true>(a),
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (isa, group, mins, k, toks, t0, panel, tile);
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{Panel, MR, NR};
    use std::arch::x86_64::*;

    /// A tile's inputs: token bytes, scales and sums, `k`, the panel, and the output tile.
    pub(super) type Args<'a> = (&'a [u8], &'a [f32], &'a [f32], usize, &'a Panel, &'a mut [f32; MR * NR]);

    /// The bounds every tile relies on.
    fn check<const G: usize>(xu: &[u8], d: &[f32], sums: &[f32], k: usize, p: &Panel) {
        let groups = k / G;
        assert!(xu.len() >= MR * k && d.len() >= MR * k / 32 && sums.len() >= MR * groups);
        assert!(p.q.len() >= k / 4 * NR && p.scale.len() >= groups * NR && p.min.len() >= groups * NR);
        assert!(p.bias.len() >= groups * NR);
    }

    /// `MR` tokens x 32 rows (two zmm of 16), `vpdpbusd`; `G`-element groups, `MINS` for the
    /// formats with a subtracted min.
    // Constant-bound index loops keep the accumulators in registers (iterators over them
    // spilled in the matvec tiles: docs/KERNELS.md).
    #[allow(clippy::needless_range_loop)]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma")]
    pub(super) fn tile_avx512<const G: usize, const MINS: bool>(a: Args) {
        let (xu, d, sums, k, p, tile) = a;
        check::<G>(xu, d, sums, k, p);
        let groups = k / G;
        let (xp, qp) = (xu.as_ptr(), p.q.as_ptr());
        let mut acc = [[_mm512_setzero_ps(); 2]; MR];
        for g in 0..groups {
            // SAFETY: every offset is within the lengths `check` asserted: quads
            // `g * G / 4 + i < k / 4`, token bytes `t * k + 4 * quad + 4 <= MR * k`, factors
            // `g * NR + 32 <= groups * NR`; unaligned loads only.
            unsafe {
                let bp = p.bias.as_ptr().add(g * NR);
                let mut dot = [[_mm512_loadu_si512(bp.cast()), _mm512_loadu_si512(bp.add(16).cast())]; MR];
                for i in 0..G / 4 {
                    let quad = g * G / 4 + i;
                    let w0 = _mm512_loadu_si512(qp.add(quad * NR).cast());
                    let w1 = _mm512_loadu_si512(qp.add(quad * NR + 16).cast());
                    for t in 0..MR {
                        let xa = _mm512_set1_epi32(std::ptr::read_unaligned(xp.add(t * k + 4 * quad).cast::<i32>()));
                        dot[t][0] = _mm512_dpbusd_epi32(dot[t][0], xa, w0);
                        dot[t][1] = _mm512_dpbusd_epi32(dot[t][1], xa, w1);
                    }
                }
                let s =
                    [_mm512_loadu_ps(p.scale.as_ptr().add(g * NR)), _mm512_loadu_ps(p.scale.as_ptr().add(g * NR + 16))];
                let mn =
                    [_mm512_loadu_ps(p.min.as_ptr().add(g * NR)), _mm512_loadu_ps(p.min.as_ptr().add(g * NR + 16))];
                for t in 0..MR {
                    let dt = _mm512_set1_ps(*d.get_unchecked(t * k / 32 + g * G / 32));
                    let xs = _mm512_set1_ps(*sums.get_unchecked(t * groups + g));
                    for h in 0..2 {
                        acc[t][h] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot[t][h]), _mm512_mul_ps(s[h], dt), acc[t][h]);
                        if MINS {
                            acc[t][h] = _mm512_fnmadd_ps(mn[h], xs, acc[t][h]);
                        }
                    }
                }
            }
        }
        for (t, a) in acc.iter().enumerate() {
            // SAFETY: within the tile's MR * NR floats.
            unsafe {
                _mm512_storeu_ps(tile.as_mut_ptr().add(t * NR), a[0]);
                _mm512_storeu_ps(tile.as_mut_ptr().add(t * NR + 16), a[1]);
            }
        }
    }

    /// `MR` tokens x 32 rows, 8 rows (one ymm) at a time: `vpmaddubsw` pairs of two quads added
    /// in int16 (`|q_w| <= 32`: no saturation, module docs), then `vpmaddwd` to int32.
    // Constant-bound index loops keep the accumulators in registers (iterators over them
    // spilled in the matvec tiles: docs/KERNELS.md).
    #[allow(clippy::needless_range_loop)]
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn tile_avx2<const G: usize, const MINS: bool>(a: Args) {
        let (xu, d, sums, k, p, tile) = a;
        check::<G>(xu, d, sums, k, p);
        let groups = k / G;
        let (xp, qp) = (xu.as_ptr(), p.q.as_ptr());
        for rv in 0..NR / 8 {
            let mut acc = [_mm256_setzero_ps(); MR];
            for g in 0..groups {
                // SAFETY: as in `tile_avx512`, with 8-row vectors at `rv * 8 < NR`.
                unsafe {
                    let ones = _mm256_set1_epi16(1);
                    let mut dot = [_mm256_loadu_si256(p.bias.as_ptr().add(g * NR + rv * 8).cast()); MR];
                    for i in 0..G / 8 {
                        let quad = g * G / 4 + 2 * i;
                        let w0 = _mm256_loadu_si256(qp.add(quad * NR + rv * 8).cast());
                        let w1 = _mm256_loadu_si256(qp.add((quad + 1) * NR + rv * 8).cast());
                        for t in 0..MR {
                            let x0 =
                                _mm256_set1_epi32(std::ptr::read_unaligned(xp.add(t * k + 4 * quad).cast::<i32>()));
                            let x1 =
                                _mm256_set1_epi32(std::ptr::read_unaligned(xp.add(t * k + 4 * quad + 4).cast::<i32>()));
                            let pairs = _mm256_add_epi16(_mm256_maddubs_epi16(x0, w0), _mm256_maddubs_epi16(x1, w1));
                            dot[t] = _mm256_add_epi32(dot[t], _mm256_madd_epi16(pairs, ones));
                        }
                    }
                    let s = _mm256_loadu_ps(p.scale.as_ptr().add(g * NR + rv * 8));
                    let mn = _mm256_loadu_ps(p.min.as_ptr().add(g * NR + rv * 8));
                    for t in 0..MR {
                        let dt = _mm256_set1_ps(*d.get_unchecked(t * k / 32 + g * G / 32));
                        let xs = _mm256_set1_ps(*sums.get_unchecked(t * groups + g));
                        acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot[t]), _mm256_mul_ps(s, dt), acc[t]);
                        if MINS {
                            acc[t] = _mm256_fnmadd_ps(mn, xs, acc[t]);
                        }
                    }
                }
            }
            for (t, a) in acc.iter().enumerate() {
                // SAFETY: within the tile's MR * NR floats.
                unsafe { _mm256_storeu_ps(tile.as_mut_ptr().add(t * NR + rv * 8), *a) };
            }
        }
    }
}
