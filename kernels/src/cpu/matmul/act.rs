//! Precision prepared for the int8 matvec: one token's f32 row quantized to 8-bit blocks of
//! 32 on the fly, as llama.cpp's `Q8_0`/`Q8_K` activations.
//!
//! Layout: `q[k]` int8 with `|q| <= 127` (so `|w_q| * |a_q|` pairs never saturate int16 in the
//! AVX2 kernel), `d[k / 32]` the block scales (`x ~ d * q`, `d = amax / 127`, round to nearest,
//! ties away from zero), and `half[k / 16]` = `d * sum(q)` over each 16 elements, which the
//! formats with a subtracted min need, and for the x86 int8 kernels
//! `nlsum[k / 4]` = `-sum(q)` per 4 elements (one `vpdpbusd` lane) and `dlanes[k / 4]` = each
//! block's `d` repeated over its 8 lanes, and `gsum[k / 32]` = `half[2b] + half[2b + 1]`, each
//! block's dequantized sum (Q4_K's mins take 8 of them in one vector load). A row of `k` must be
//! a whole number of 32-blocks.

use crate::cpu::isa::Isa;
use crate::cpu::simd::{self, Job};

/// One token's activations in 8-bit blocks (see the module docs).
#[derive(Default)]
pub(crate) struct QAct {
    pub q: Vec<i8>,
    pub d: Vec<f32>,
    pub half: Vec<f32>,
    pub nlsum: Vec<i32>,
    pub dlanes: Vec<f32>,
    pub gsum: Vec<f32>,
}

impl QAct {
    /// Quantizes `x` (a whole number of 32-blocks) into `self`, reusing its storage; compiled
    /// for `isa` (the scalar loop was a tenth of a 16-token forward).
    pub fn quantize(&mut self, isa: Isa, x: &[f32]) {
        simd::run(isa, Quantize { a: self, x });
    }

    #[inline(always)]
    fn fill(&mut self, x: &[f32]) {
        let blocks = x.len() / 32;
        self.q.resize(blocks * 32, 0);
        self.d.resize(blocks, 0.0);
        self.half.resize(blocks * 2, 0.0);
        self.nlsum.resize(blocks * 8, 0);
        self.dlanes.resize(blocks * 8, 0.0);
        self.gsum.resize(blocks, 0.0);
        for (b, (xs, qs)) in x.chunks_exact(32).zip(self.q.chunks_exact_mut(32)).enumerate() {
            let d = quantize_block(xs, qs);
            let sums = [0, 16].map(|h| qs[h..h + 16].iter().map(|&v| i32::from(v)).sum::<i32>());
            self.d[b] = d;
            self.half[2 * b] = d * sums[0] as f32;
            self.half[2 * b + 1] = d * sums[1] as f32;
            self.gsum[b] = self.half[2 * b] + self.half[2 * b + 1];
            for (l, n) in self.nlsum[8 * b..8 * b + 8].iter_mut().enumerate() {
                *n = -qs[4 * l..4 * l + 4].iter().map(|&v| i32::from(v)).sum::<i32>();
            }
            self.dlanes[8 * b..8 * b + 8].fill(d);
        }
    }
}

/// [`QAct::quantize`]'s body under the instruction set's target features.
struct Quantize<'a> {
    a: &'a mut QAct,
    x: &'a [f32],
}

impl Job for Quantize<'_> {
    type Out = ();
    #[inline(always)]
    fn run<const FMA: bool>(self) {
        self.a.fill(self.x);
    }
}

/// One block of 32: `qs = round(xs / d)` with `d = amax / 127` (round to nearest, ties away
/// from zero); returns `d`. The one rounding rule of every int8 kernel's activations; written
/// in 16-lane loops so that it vectorises inside a [`Job`].
#[inline(always)]
pub(crate) fn quantize_block(xs: &[f32], qs: &mut [i8]) -> f32 {
    let (xs, qs) = (&xs[..32], &mut qs[..32]);
    let mut m = [0.0f32; 16];
    for c in xs.chunks_exact(16) {
        for i in 0..16 {
            m[i] = m[i].max(c[i].abs());
        }
    }
    let d = m.iter().fold(0.0f32, |a, v| a.max(*v)) / 127.0;
    let id = if d > 0.0 { 1.0 / d } else { 0.0 };
    for i in 0..32 {
        // Round half away from zero without a libm call; |r| <= 127 by construction (the clamp
        // only tells the compiler), a NaN (from an infinite input) becomes 0. A plain `as`
        // conversion saturates lane by lane in scalar code.
        let r = xs[i] * id;
        let t = (r + 0.5f32.copysign(r)).clamp(-127.0, 127.0);
        let t = if t.is_nan() { 0.0 } else { t };
        // SAFETY: `t` is finite and within -127..=127, so the truncation is defined.
        qs[i] = unsafe { t.to_int_unchecked::<i32>() } as i8;
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_error_is_half_a_step() {
        let x: Vec<f32> = (0..256).map(|i| ((i * 37 % 101) as f32 - 50.0) * 0.013).collect();
        let mut a = QAct::default();
        a.quantize(Isa::detect(), &x);
        for (i, v) in x.iter().enumerate() {
            let d = a.d[i / 32];
            assert!((d * f32::from(a.q[i]) - v).abs() <= 0.5001 * d, "{i}");
        }
        let s: f32 = (0..16).map(|i| a.d[0] * f32::from(a.q[i])).sum();
        assert!((a.half[0] - s).abs() < 1e-5);
    }
}
