//! Elementwise ops, reference version, all f32 over flat buffers (see [`GegluArgs`],
//! [`SoftcapArgs`], [`ScaleArgs`], [`AddArgs`]):
//!
//! - `geglu`:   `out = gelu_tanh(gate) * up` over `rows * width`
//! - `softcap`: `x = cap * tanh(x / cap)` in place
//! - `scale`:   `x *= factor` in place
//! - `add`:     `acc = (acc + x) * scale` in place
//! - `copy`:    `dst[dst_offset..][..len] = src[src_offset..][..len]` (see [`CopyArgs`])
//!
//! plus the shared scalar pieces [`gelu_tanh`] (the tanh approximation, as PyTorch computes it)
//! and [`softmax`] (f32, max subtraction), used by attention and the MoE.

use super::{bad_arg, numel};
use crate::args::{AddArgs, CopyArgs, GegluArgs, ScaleArgs, SoftcapArgs};
use crate::error::{check_len, Result};

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
    const OP: &str = "geglu";
    let len = numel(OP, &[a.rows, a.width])?;
    check_len(OP, "gate", gate.len(), len)?;
    check_len(OP, "up", up.len(), len)?;
    check_len(OP, "out", out.len(), len)?;
    for ((o, g), u) in out[..len].iter_mut().zip(gate).zip(up) {
        *o = gelu_tanh(*g) * u;
    }
    Ok(())
}

/// `x = cap * tanh(x / cap)` over the first `len` elements.
pub(crate) fn softcap(a: &SoftcapArgs, x: &mut [f32]) -> Result<()> {
    check_len("softcap", "x", x.len(), a.len)?;
    if !(a.cap.is_finite() && a.cap > 0.0) {
        return Err(bad_arg("softcap", format!("cap {} must be positive", a.cap)));
    }
    for v in &mut x[..a.len] {
        *v = (*v / a.cap).tanh() * a.cap;
    }
    Ok(())
}

/// `x *= factor` over the first `len` elements.
pub(crate) fn scale(a: &ScaleArgs, x: &mut [f32]) -> Result<()> {
    check_len("scale", "x", x.len(), a.len)?;
    for v in &mut x[..a.len] {
        *v *= a.factor;
    }
    Ok(())
}

/// `acc = (acc + x) * scale` over the first `len` elements.
pub(crate) fn add(a: &AddArgs, x: &[f32], acc: &mut [f32]) -> Result<()> {
    check_len("add", "x", x.len(), a.len)?;
    check_len("add", "acc", acc.len(), a.len)?;
    for (s, v) in acc[..a.len].iter_mut().zip(x) {
        *s = (*s + v) * a.scale;
    }
    Ok(())
}

/// `dst[dst_offset..][..len] = src[src_offset..][..len]`.
pub(crate) fn copy(a: &CopyArgs, src: &[f32], dst: &mut [f32]) -> Result<()> {
    let end = |offset: usize| {
        offset.checked_add(a.len).ok_or_else(|| bad_arg("copy", format!("offset {offset} + {} overflows", a.len)))
    };
    let (src_end, dst_end) = (end(a.src_offset)?, end(a.dst_offset)?);
    check_len("copy", "src", src.len(), src_end)?;
    check_len("copy", "dst", dst.len(), dst_end)?;
    dst[a.dst_offset..dst_end].copy_from_slice(&src[a.src_offset..src_end]);
    Ok(())
}
