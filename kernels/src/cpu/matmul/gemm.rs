//! Matrix products for prefill: `out[t, j] = x[t] . w[j]` for many tokens at once, where the
//! weight is read once per call instead of once per token.
//!
//! Method (BLIS-style, one level): the weight rows are cut into panels of [`NR`] = 32 rows; a
//! task decodes one panel (any dtype, through the block decoders) into a packed buffer that
//! stays in L2, then sweeps all tokens in tiles of `MR` rows, each tile a register-blocked
//! micro-kernel over the whole `k`, and writes its columns of the output. Panels run in
//! parallel (rayon); scratch buffers are per thread and reused across calls.
//!
//! Micro-kernels (versions):
//! - v1 portable: `MR = 4` x 32 f32 accumulators in arrays, for the auto-vectoriser.
//! - v2 AVX2 + FMA: `MR = 3`, 12 ymm accumulators, broadcast `x`, f32 FMA.
//! - v3 AVX-512: `MR = 8`, 16 zmm accumulators, f32 FMA (`Precision::Reference`, or no bf16).
//! - v4 AVX-512 BF16 (`Precision::Native` on CPUs with `avx512_bf16`): panel and tokens
//!   rounded to bf16, `vdpbf16ps` (two products per f32 lane per instruction, f32 sums):
//!   twice the f32 rate, the accuracy effect is measured in docs/KERNELS.md.
//!
//! `Precision::Native` means bf16 inputs on every ISA (as ggml feeds bf16 weights, and as the
//! GPU tensor cores do): the f32 kernels get panel and tokens rounded to bf16 too (products of
//! bf16 values are exact in f32), so native logits do not depend on the CPU's instruction set.
//!
//! Packed layouts: f32 panel `[k][32]`; bf16 panel `[k / 2][32]` u32 pairs along `k` (`k` padded
//! to even with zeros), i.e. each row's bf16 values transposed two at a time; bf16 tokens
//! `[m][k / 2]` pairs.

use super::decode::{with_decoder, Block, DecodeJob, Format};
use super::matvec::widen_row;
use super::OutPtr;
use crate::cpu::isa::Isa;
use crate::tensor::DType;
use crate::Precision;
use rayon::prelude::*;

/// Weight rows per panel.
pub(super) const NR: usize = 32;

/// Which micro-kernel a call uses.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kernel {
    Portable,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    #[cfg(target_arch = "x86_64")]
    Avx512,
    #[cfg(target_arch = "x86_64")]
    Avx512Bf16,
}

impl Kernel {
    fn pick(isa: Isa, act: Precision) -> Kernel {
        match isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512Bf16 if act == Precision::Native => Kernel::Avx512Bf16,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 | Isa::Avx512Bf16 => Kernel::Avx512,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => Kernel::Avx2,
            _ => Kernel::Portable,
        }
    }

    /// Token rows per micro-kernel tile.
    fn mr(self) -> usize {
        match self {
            Kernel::Portable => 4,
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => 3,
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 | Kernel::Avx512Bf16 => 8,
        }
    }
}

/// A whole row of a block format decoded to f32.
struct RowF32<'a> {
    bytes: &'a [u8],
    out: &'a mut [f32],
}

impl DecodeJob for RowF32<'_> {
    type Out = ();
    #[inline(always)]
    fn run<D: Fn(&[u8], &mut Block) + Copy>(self, decode: D, f: Format) {
        let (elems, size) = (f.elems, f.size);
        let mut blk = Block::new();
        for (b, o) in self.bytes.chunks_exact(size).zip(self.out.chunks_exact_mut(elems)) {
            decode(b, &mut blk);
            for (e, v) in o.iter_mut().enumerate() {
                *v = blk.scale[e / 16] * f32::from(blk.q[e]) - blk.min[e / 16];
            }
        }
    }
}

/// Row bytes `bytes` of `dtype` decoded to f32 (`out.len()` elements).
fn decode_row(dtype: DType, bytes: &[u8], out: &mut [f32]) {
    if with_decoder(dtype, RowF32 { bytes, out: &mut *out }).is_none() {
        widen_row(dtype, bytes, out);
    }
}

/// f32 -> bf16 bits, round to nearest even (NaN stays NaN); branch-free so loops vectorise.
#[inline(always)]
fn bf16_bits(v: f32) -> u16 {
    let b = v.to_bits();
    let rounded = (b.wrapping_add(0x7fff + ((b >> 16) & 1)) >> 16) as u16;
    let nan = ((b >> 16) | 0x40) as u16;
    if v.is_nan() {
        nan
    } else {
        rounded
    }
}

/// `v` rounded to the nearest bf16, as an f32.
#[inline(always)]
fn round_bf16(v: f32) -> f32 {
    f32::from_bits(u32::from(bf16_bits(v)) << 16)
}

/// `src` rounded to bf16, consecutive pairs packed low-first into `dst` (an odd tail pairs
/// with zero).
fn to_bf16_pairs(src: &[f32], dst: &mut [u32]) {
    let (pairs, tail) = src.split_at(src.len() / 2 * 2);
    for (d, p) in dst.iter_mut().zip(pairs.chunks_exact(2)) {
        *d = u32::from(bf16_bits(p[0])) | u32::from(bf16_bits(p[1])) << 16;
    }
    if let (Some(v), Some(d)) = (tail.first(), dst.get_mut(pairs.len() / 2)) {
        *d = u32::from(bf16_bits(*v));
    }
}

/// `out[t * n + j] = x[t] . w_row(j)` for `t < m`, `j < n`; `w` holds `n` rows of `row_bytes`.
#[allow(clippy::too_many_arguments)]
pub(super) fn gemm(
    isa: Isa,
    act: Precision,
    dtype: DType,
    w: &[u8],
    row_bytes: usize,
    k: usize,
    x: &[f32],
    n: usize,
    out: &mut [f32],
) {
    let kern = Kernel::pick(isa, act);
    let m = x.len() / k;
    let mr = kern.mr();
    let m_pad = m.div_ceil(mr) * mr;
    let kp = k + k % 2;
    let bf16 = kern_is_bf16(kern);
    // Native precision on an f32 kernel: the same bf16 inputs as the bf16 kernel (module docs).
    let round = act == Precision::Native && !bf16;
    // Tokens in the kernel's layout, padded to whole tiles with zero rows, in a buffer the
    // calling thread keeps (no page faults from fresh multi-MB allocations per call). Taken out
    // of the thread-local while in use: a thread waiting in the parallel loop below may run
    // another session's forward (work stealing), which then finds it empty and allocates.
    let (mut xf, mut xb) = TOKENS.take();
    {
        if bf16 {
            xb.clear();
            xb.resize(m_pad * kp / 2, 0);
            for (src, dst) in x.chunks_exact(k).zip(xb.chunks_exact_mut(kp / 2)) {
                to_bf16_pairs(src, dst);
            }
        } else {
            xf.clear();
            xf.resize(m_pad * k, 0.0);
            xf[..m * k].copy_from_slice(&x[..m * k]);
            if round {
                xf[..m * k].iter_mut().for_each(|v| *v = round_bf16(*v));
            }
        }
        let dst = OutPtr(out.as_mut_ptr());
        let (xf, xb) = (&xf, &xb);
        (0..n.div_ceil(NR)).into_par_iter().for_each(|p| {
            let (j0, nr) = (p * NR, NR.min(n - p * NR));
            PANEL.with_borrow_mut(|(row, pairs, panel_f, panel_b)| {
                row.resize(k, 0.0);
                pairs.resize(kp / 2, 0);
                let mut tile = [0.0f32; 8 * NR];
                let store = |tile: &[f32; 8 * NR], t0: usize| {
                    for t in 0..mr.min(m - t0) {
                        let o = (t0 + t) * n + j0;
                        // SAFETY: `out` holds `m * n` floats; this panel alone writes columns
                        // `j0..j0 + nr` of each row, so the writes of parallel tasks are disjoint.
                        unsafe { std::ptr::copy_nonoverlapping(tile[t * NR..].as_ptr(), dst.at(o), nr) };
                    }
                };
                let rows = (0..nr).map(|r| &w[(j0 + r) * row_bytes..(j0 + r + 1) * row_bytes]);
                if bf16 {
                    panel_b.resize(kp / 2 * NR, 0);
                    for (r, bytes) in rows.enumerate() {
                        decode_row(dtype, bytes, row);
                        to_bf16_pairs(row, pairs);
                        for (kk2, v) in pairs.iter().enumerate() {
                            panel_b[kk2 * NR + r] = *v;
                        }
                    }
                    for t0 in (0..m).step_by(mr) {
                        run_tile_bf16(kern, &xb[t0 * kp / 2..(t0 + mr) * kp / 2], kp / 2, panel_b, &mut tile);
                        store(&tile, t0);
                    }
                } else {
                    panel_f.resize(k * NR, 0.0);
                    for (r, bytes) in rows.enumerate() {
                        decode_row(dtype, bytes, row);
                        for (kk, v) in row.iter().enumerate() {
                            panel_f[kk * NR + r] = if round { round_bf16(*v) } else { *v };
                        }
                    }
                    for t0 in (0..m).step_by(mr) {
                        run_tile_f32(kern, &xf[t0 * k..(t0 + mr) * k], k, panel_f, &mut tile);
                        store(&tile, t0);
                    }
                }
            });
        });
    }
    TOKENS.set((xf, xb));
}

type TokenScratch = (Vec<f32>, Vec<u32>);
type PanelScratch = (Vec<f32>, Vec<u32>, Vec<f32>, Vec<u32>);

thread_local! {
    /// The calling thread's tokens in the kernel layout (f32 or bf16 pairs).
    static TOKENS: std::cell::RefCell<TokenScratch> = const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
    /// A worker's decoded row, the row as bf16 pairs, and its packed panel (f32 or bf16 pairs).
    static PANEL: std::cell::RefCell<PanelScratch> =
        const { std::cell::RefCell::new((Vec::new(), Vec::new(), Vec::new(), Vec::new())) };
}

fn kern_is_bf16(kern: Kernel) -> bool {
    #[cfg(target_arch = "x86_64")]
    if kern == Kernel::Avx512Bf16 {
        return true;
    }
    let _ = kern;
    false
}

/// One f32 tile: `tile[t][j] = x[t] . panel[:, j]` for the kernel's `MR` rows of `x` (`lda = k`).
fn run_tile_f32(kern: Kernel, x: &[f32], k: usize, panel: &[f32], tile: &mut [f32; 8 * NR]) {
    match kern {
        // SAFETY: the kernel was picked from an `Isa` never above `Isa::detect()`; `x` holds
        // `MR * k` and `panel` `k * NR` elements (asserted inside).
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx512 => unsafe { x86::tile_f32_avx512(x, k, panel, tile) },
        // SAFETY: as above.
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx2 => unsafe { x86::tile_f32_avx2(x, k, panel, tile) },
        _ => tile_portable(x, k, panel, tile),
    }
}

/// One bf16 tile (pairs along `k`, `k2 = k / 2` pairs).
fn run_tile_bf16(kern: Kernel, x: &[u32], k2: usize, panel: &[u32], tile: &mut [f32; 8 * NR]) {
    #[cfg(target_arch = "x86_64")]
    if kern == Kernel::Avx512Bf16 {
        // SAFETY: only picked on `Isa::Avx512Bf16`, never above `Isa::detect()`.
        unsafe { x86::tile_bf16(x, k2, panel, tile) };
    }
    let _ = (kern, x, k2, panel, tile);
}

/// v1: portable tile, `MR = 4`.
fn tile_portable(x: &[f32], k: usize, panel: &[f32], tile: &mut [f32; 8 * NR]) {
    const MR: usize = 4;
    let mut acc = [[0.0f32; NR]; MR];
    for (kk, b) in panel.chunks_exact(NR).take(k).enumerate() {
        for (t, a) in acc.iter_mut().enumerate() {
            let xv = x[t * k + kk];
            for j in 0..NR {
                a[j] += xv * b[j];
            }
        }
    }
    for (t, a) in acc.iter().enumerate() {
        tile[t * NR..(t + 1) * NR].copy_from_slice(a);
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::NR;
    use std::arch::x86_64::*;

    /// v3: 8 tokens x 32 rows, 16 zmm accumulators.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma")]
    pub(super) fn tile_f32_avx512(x: &[f32], k: usize, panel: &[f32], tile: &mut [f32; 8 * NR]) {
        const MR: usize = 8;
        assert!(x.len() >= MR * k && panel.len() >= k * NR);
        let mut acc = [[_mm512_setzero_ps(); 2]; MR];
        let (xp, pp) = (x.as_ptr(), panel.as_ptr());
        for kk in 0..k {
            // SAFETY: kk < k, so `kk * NR + 16 + 16 <= panel.len()` and `t * k + kk < x.len()`
            // (asserted above); unaligned loads.
            unsafe {
                let b0 = _mm512_loadu_ps(pp.add(kk * NR));
                let b1 = _mm512_loadu_ps(pp.add(kk * NR + 16));
                for (t, a) in acc.iter_mut().enumerate() {
                    let xv = _mm512_set1_ps(*xp.add(t * k + kk));
                    a[0] = _mm512_fmadd_ps(xv, b0, a[0]);
                    a[1] = _mm512_fmadd_ps(xv, b1, a[1]);
                }
            }
        }
        for (t, a) in acc.iter().enumerate() {
            // SAFETY: `tile` holds 8 * NR floats; row t's 32 floats are in range.
            unsafe {
                _mm512_storeu_ps(tile.as_mut_ptr().add(t * NR), a[0]);
                _mm512_storeu_ps(tile.as_mut_ptr().add(t * NR + 16), a[1]);
            }
        }
    }

    /// v2: 3 tokens x 32 rows, 12 ymm accumulators.
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn tile_f32_avx2(x: &[f32], k: usize, panel: &[f32], tile: &mut [f32; 8 * NR]) {
        const MR: usize = 3;
        assert!(x.len() >= MR * k && panel.len() >= k * NR);
        let mut acc = [[_mm256_setzero_ps(); 4]; MR];
        let (xp, pp) = (x.as_ptr(), panel.as_ptr());
        for kk in 0..k {
            // SAFETY: in bounds as asserted above (see `tile_f32_avx512`).
            unsafe {
                let xv =
                    [_mm256_set1_ps(*xp.add(kk)), _mm256_set1_ps(*xp.add(k + kk)), _mm256_set1_ps(*xp.add(2 * k + kk))];
                for c in 0..4 {
                    let b = _mm256_loadu_ps(pp.add(kk * NR + 8 * c));
                    for (a, xt) in acc.iter_mut().zip(&xv) {
                        a[c] = _mm256_fmadd_ps(*xt, b, a[c]);
                    }
                }
            }
        }
        for (t, a) in acc.iter().enumerate() {
            for (c, v) in a.iter().enumerate() {
                // SAFETY: within the tile's 8 * NR floats.
                unsafe { _mm256_storeu_ps(tile.as_mut_ptr().add(t * NR + 8 * c), *v) };
            }
        }
    }

    /// v4: 8 tokens x 32 rows, bf16 pairs, 16 zmm accumulators of `vdpbf16ps`.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512bf16,avx2,fma")]
    pub(super) fn tile_bf16(x: &[u32], k2: usize, panel: &[u32], tile: &mut [f32; 8 * NR]) {
        const MR: usize = 8;
        assert!(x.len() >= MR * k2 && panel.len() >= k2 * NR);
        let mut acc = [[_mm512_setzero_ps(); 2]; MR];
        let (xp, pp) = (x.as_ptr(), panel.as_ptr());
        for kk in 0..k2 {
            // SAFETY: in bounds as asserted; `__m512i` and `__m512bh` are both 64 plain bytes,
            // so the transmutes reinterpret bits only.
            unsafe {
                let b0: __m512bh = std::mem::transmute(_mm512_loadu_si512(pp.add(kk * NR).cast()));
                let b1: __m512bh = std::mem::transmute(_mm512_loadu_si512(pp.add(kk * NR + 16).cast()));
                for (t, a) in acc.iter_mut().enumerate() {
                    let xv: __m512bh = std::mem::transmute(_mm512_set1_epi32(*xp.add(t * k2 + kk) as i32));
                    a[0] = _mm512_dpbf16_ps(a[0], xv, b0);
                    a[1] = _mm512_dpbf16_ps(a[1], xv, b1);
                }
            }
        }
        for (t, a) in acc.iter().enumerate() {
            // SAFETY: within the tile's 8 * NR floats.
            unsafe {
                _mm512_storeu_ps(tile.as_mut_ptr().add(t * NR), a[0]);
                _mm512_storeu_ps(tile.as_mut_ptr().add(t * NR + 16), a[1]);
            }
        }
    }
}
