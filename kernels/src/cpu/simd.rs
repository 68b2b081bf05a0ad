//! Shared pieces of the fast CPU kernels: the instruction-set dispatcher, vectorisable f32
//! `exp` / `tanh` / `gelu_tanh`, 16-lane dot products and reductions, weight-row widening and
//! per-thread scratch buffers.
//!
//! Dispatch: a kernel body is a [`Job`] whose `run` is `#[inline(always)]` and written with
//! fixed-width chunk loops (`[f32; 16]` accumulators) for the auto-vectoriser. [`run`] calls it
//! inside a function compiled with the AVX-512 or AVX2 target features (so the inlined body is
//! vectorised for them) or plainly (`Isa::Portable`: SSE2 on x86-64, NEON on aarch64). The const
//! parameter `FMA` tells the body whether `a * b + c` may be one fused instruction ([`madd`]):
//! true under AVX2 / AVX-512 (and on aarch64), false on a plain x86-64 build, where `mul_add`
//! would be a libm call.
//!
//! Transcendentals are branch-free (both sides computed, one selected) so that a loop of them
//! vectorises: `exp` is Cephes' `expf` (range reduction by `ln 2` in two parts, degree-5
//! polynomial, exponent built from bits; about 1 ulp), `tanh` is Cephes' `tanhf` (odd rational
//! polynomial below 0.625, `1 - 2 / (exp(2|x|) + 1)` above, saturated at |x| = 10).

use super::isa::Isa;
use std::cell::Cell;
use std::thread::LocalKey;

/// Lanes of the fixed-width loops (one AVX-512 register of f32).
pub(crate) const LANES: usize = 16;

/// Elements below which an op runs on the calling thread (rayon costs more than it saves).
pub(crate) const PAR_MIN: usize = 1 << 16;

/// Whether the portable build has a fused multiply-add instruction.
const PORTABLE_FMA: bool = cfg!(any(target_arch = "aarch64", target_feature = "fma"));

/// A kernel body run under the target features of an instruction-set level (see [`run`]).
pub(crate) trait Job {
    /// What the kernel returns.
    type Out;
    /// The body. Implementations must be `#[inline(always)]` (and everything they call
    /// `#[inline(always)]` or generic) so that it is compiled inside the feature-enabled caller.
    fn run<const FMA: bool>(self) -> Self::Out;
}

/// Runs `job` compiled for `isa`.
pub(crate) fn run<J: Job>(isa: Isa, job: J) -> J::Out {
    match isa {
        // SAFETY: `isa` is never above `Isa::detect()` (`FastCpu::with_isa` clamps it), so this
        // CPU has every feature `run_avx512` is compiled for.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 | Isa::Avx512Bf16 => unsafe { run_avx512(job) },
        // SAFETY: as above, for the AVX2 + FMA + F16C features of `run_avx2`.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe { run_avx2(job) },
        _ => job.run::<PORTABLE_FMA>(),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
fn run_avx512<J: Job>(job: J) -> J::Out {
    job.run::<true>()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
fn run_avx2<J: Job>(job: J) -> J::Out {
    job.run::<true>()
}

/// `a * b + c`, fused when `FMA`.
#[inline(always)]
pub(crate) fn madd<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

/// Sum of 16 lanes (pairwise).
#[inline(always)]
pub(crate) fn hsum(acc: [f32; LANES]) -> f32 {
    let mut v = acc;
    for w in [8, 4, 2, 1] {
        for i in 0..w {
            v[i] += v[i + w];
        }
    }
    v[0]
}

/// `sum_i a[i] * b[i]` over the shorter length, 16 lanes then a pairwise sum.
#[inline(always)]
pub(crate) fn dot<const FMA: bool>(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f32; LANES];
    let whole = n / LANES * LANES;
    for (ac, bc) in a[..whole].chunks_exact(LANES).zip(b[..whole].chunks_exact(LANES)) {
        for i in 0..LANES {
            acc[i] = madd::<FMA>(ac[i], bc[i], acc[i]);
        }
    }
    for (i, (x, y)) in a[whole..].iter().zip(&b[whole..]).enumerate() {
        acc[i] = madd::<FMA>(*x, *y, acc[i]);
    }
    hsum(acc)
}

/// `y += alpha * x` over the shorter length.
#[inline(always)]
pub(crate) fn axpy<const FMA: bool>(alpha: f32, x: &[f32], y: &mut [f32]) {
    for (yv, xv) in y.iter_mut().zip(x) {
        *yv = madd::<FMA>(alpha, *xv, *yv);
    }
}

/// `e^x` in f32, about 1 ulp (Cephes `expf`). Saturates at `e^88` above 88; exactly 0 below
/// -87.34 (and for `-inf`); NaN stays NaN.
#[inline(always)]
pub(crate) fn exp<const FMA: bool>(x: f32) -> f32 {
    const HI: f32 = 88.0;
    const LO: f32 = -87.336_54;
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    const ROUND: f32 = 12_582_912.0; // 1.5 * 2^23: adding it rounds to an integer in the low bits
    let xc = if x > HI { HI } else { x };
    let xc = if xc < LO { LO } else { xc };
    let t = madd::<FMA>(xc, LOG2E, ROUND);
    let n = t - ROUND;
    let r = madd::<FMA>(-n, LN2_HI, xc);
    let r = madd::<FMA>(-n, LN2_LO, r);
    let mut p = 1.987_569_1e-4f32;
    for c in [1.398_199_9e-3, 8.333_452e-3, 4.166_579_6e-2, 1.666_666_5e-1, 5e-1] {
        p = madd::<FMA>(p, r, c);
    }
    let y = madd::<FMA>(p, r * r, r) + 1.0;
    // n is in -126..=127: the biased exponent n + 127 is a normal float's.
    let n_int = (t.to_bits() as i32).wrapping_sub(0x4B40_0000);
    let two_n = f32::from_bits(((n_int + 127) << 23) as u32);
    if x < LO {
        0.0
    } else {
        y * two_n
    }
}

/// `tanh(x)` in f32, a few ulp (Cephes `tanhf`); odd polynomial below |x| = 0.625 keeps the
/// relative accuracy near 0; ±1 beyond |x| = 10; NaN stays NaN.
#[inline(always)]
pub(crate) fn tanh<const FMA: bool>(x: f32) -> f32 {
    let ax = x.abs();
    let z = x * x;
    let mut p = -5.704_988_7e-3f32;
    for c in [2.063_909e-2, -5.373_971_6e-2, 1.333_144_2e-1, -3.333_328e-1] {
        p = madd::<FMA>(p, z, c);
    }
    let small = madd::<FMA>(p * z, x, x);
    let axc = if ax > 10.0 { 10.0 } else { ax };
    let large = (1.0 - 2.0 / (exp::<FMA>(2.0 * axc) + 1.0)).copysign(x);
    if ax < 0.625 {
        small
    } else {
        large
    }
}

/// `sqrt(2 / pi)`, computed in f64 and rounded once (as the reference and PyTorch).
const SQRT_2_OVER_PI: f32 = (std::f64::consts::SQRT_2 * std::f64::consts::FRAC_2_SQRT_PI * 0.5) as f32;

/// `0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x^3)))`, the reference's order of operations
/// with the vectorisable `tanh`.
#[inline(always)]
pub(crate) fn gelu_tanh<const FMA: bool>(x: f32) -> f32 {
    let inner = SQRT_2_OVER_PI * (x + 0.044715 * (x * x * x));
    0.5 * x * (1.0 + tanh::<FMA>(inner))
}

/// Elements `start..start + out.len()` (flat) of `w` widened to f32: F32 and BF16 by a
/// vectorisable loop, everything else through [`crate::HostTensor::read_f32`].
pub(crate) fn widen(w: &crate::HostTensor, start: usize, out: &mut [f32]) {
    use crate::DType;
    match w.dtype() {
        DType::F32 => {
            let bytes = &w.bytes()[start * 4..(start + out.len()) * 4];
            for (o, b) in out.iter_mut().zip(bytes.chunks_exact(4)) {
                *o = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
        }
        DType::BF16 => {
            let bytes = &w.bytes()[start * 2..(start + out.len()) * 2];
            for (o, b) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                *o = f32::from_bits(u32::from(u16::from_le_bytes([b[0], b[1]])) << 16);
            }
        }
        _ => w.read_f32(start, out),
    }
}

/// A per-thread scratch vector (see [`with_scratch`]).
pub(crate) type Scratch<T> = LocalKey<Cell<Vec<T>>>;

/// Runs `f` on `len` elements of this thread's scratch vector `key` (grown as needed, never
/// shrunk; contents are left over from earlier calls). The vector is taken out while `f` runs,
/// so a nested use on the same thread (rayon work-stealing) gets a fresh one instead of
/// aliasing it.
pub(crate) fn with_scratch<T: Copy + Default, R>(
    key: &'static Scratch<T>,
    len: usize,
    f: impl FnOnce(&mut [T]) -> R,
) -> R {
    let mut v = key.take();
    if v.len() < len {
        v.resize(len, T::default());
    }
    let r = f(&mut v[..len]);
    key.set(v);
    r
}

/// Rows per parallel task so that each task has about `PAR_MIN / 4` elements.
pub(crate) fn rows_per_task(row_len: usize) -> usize {
    (PAR_MIN / 4).div_ceil(row_len.max(1)).max(1)
}
