//! Elementwise ops, reference version, all f32 over flat buffers (see [`GegluArgs`],
//! [`SoftcapArgs`], [`ScaleArgs`], [`AddArgs`]):
//!
//! - `geglu`:   `out = gelu_tanh(gate) * up` over `rows * width`
//! - `softcap`: `x = cap * tanh(x / cap)` in place
//! - `scale`:   `x *= factor` in place
//! - `add`:     `acc = (acc + x) * scale` in place
//!
//! plus the shared scalar pieces [`gelu_tanh`] (the tanh approximation, as PyTorch computes it)
//! and [`softmax`] (f32, max subtraction), used by attention and the MoE.

use crate::args::{AddArgs, GegluArgs, ScaleArgs, SoftcapArgs};
use crate::error::Result;

/// `sqrt(2 / pi)`, computed in f64 and rounded once (PyTorch's `kBeta`).
const SQRT_2_OVER_PI: f32 = (std::f64::consts::SQRT_2 * std::f64::consts::FRAC_2_SQRT_PI * 0.5) as f32;

/// `0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x^3)))`, in this order of f32 operations.
pub(crate) fn gelu_tanh(x: f32) -> f32 {
    let inner = SQRT_2_OVER_PI * (x + 0.044715 * (x * x * x));
    0.5 * x * (1.0 + inner.tanh())
}

/// `x = softmax(x)` in place: `exp(x - max) / sum`, accumulated in f32 in index order.
pub(crate) fn softmax(x: &mut [f32]) {
    let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0f32;
    for v in x.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    for v in x.iter_mut() {
        *v /= sum;
    }
}

/// `out = gelu_tanh(gate) * up` over the first `rows * width` elements.
pub(crate) fn geglu(a: &GegluArgs, gate: &[f32], up: &[f32], out: &mut [f32]) -> Result<()> {
    let len = a.check(gate.len(), up.len(), out.len())?;
    for ((o, g), u) in out[..len].iter_mut().zip(gate).zip(up) {
        *o = gelu_tanh(*g) * u;
    }
    Ok(())
}

/// `x = cap * tanh(x / cap)` over the first `len` elements.
pub(crate) fn softcap(a: &SoftcapArgs, x: &mut [f32]) -> Result<()> {
    a.check(x.len())?;
    for v in &mut x[..a.len] {
        *v = (*v / a.cap).tanh() * a.cap;
    }
    Ok(())
}

/// `x *= factor` over the first `len` elements.
pub(crate) fn scale(a: &ScaleArgs, x: &mut [f32]) -> Result<()> {
    a.check(x.len())?;
    for v in &mut x[..a.len] {
        *v *= a.factor;
    }
    Ok(())
}

/// `acc = (acc + x) * scale` over the first `len` elements.
pub(crate) fn add(a: &AddArgs, x: &[f32], acc: &mut [f32]) -> Result<()> {
    a.check(x.len(), acc.len())?;
    for (s, v) in acc[..a.len].iter_mut().zip(x) {
        *s = (*s + v) * a.scale;
    }
    Ok(())
}
