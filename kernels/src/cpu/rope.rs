//! Rotary position embedding, reference version, in place (see [`RopeArgs`]).
//!
//! Layout: `x` `[tokens, heads, head_dim]` f32; token `t` is at position `pos0 + t`. Rotate-half
//! pairing: dim `i` pairs with `i + head_dim/2`. For pair `i < rotary_pairs`, in f32 exactly as
//! HF transformers computes it:
//!
//! ```text
//! inv_freq_i = 1 / theta^(2i / head_dim)        angle = pos * inv_freq_i
//! x_i'        = x_i * cos - x_{i+d/2} * sin
//! x_{i+d/2}'  = x_{i+d/2} * cos + x_i * sin
//! ```
//!
//! Pairs `rotary_pairs..head_dim/2` are left untouched (Gemma 4's proportional RoPE).

use super::{bad_arg, numel};
use crate::args::RopeArgs;
use crate::error::{check_len, Result};

/// The argument checks of `rope` (shared with the fast backend): returns the rotated length.
pub(crate) fn validate(a: &RopeArgs, x_len: usize) -> Result<usize> {
    const OP: &str = "rope";
    if !a.head_dim.is_multiple_of(2) {
        return Err(bad_arg(OP, format!("head_dim {} is odd", a.head_dim)));
    }
    let half = a.head_dim / 2;
    if a.rotary_pairs > half {
        return Err(bad_arg(OP, format!("rotary_pairs {} > head_dim/2 = {half}", a.rotary_pairs)));
    }
    if !(a.freq_scale.is_finite() && a.freq_scale > 0.0) {
        return Err(bad_arg(OP, format!("freq_scale {} must be positive", a.freq_scale)));
    }
    if a.pos0.checked_add(a.tokens).is_none() {
        return Err(bad_arg(OP, format!("positions {}+{} overflow", a.pos0, a.tokens)));
    }
    let len = numel(OP, &[a.tokens, a.heads, a.head_dim])?;
    check_len(OP, "x", x_len, len)?;
    Ok(len)
}

/// Rotates the first `tokens * heads * head_dim` elements of `x` in place.
pub(crate) fn rope(a: &RopeArgs, x: &mut [f32]) -> Result<()> {
    validate(a, x.len())?;

    let inv_freq = inverse_frequencies(a);
    let (mut cos, mut sin) = (vec![0.0f32; a.rotary_pairs], vec![0.0f32; a.rotary_pairs]);
    for t in 0..a.tokens {
        // One table of cos/sin per token, shared by all its heads.
        let pos = (a.pos0 + t) as f32;
        for ((c, s), f) in cos.iter_mut().zip(sin.iter_mut()).zip(&inv_freq) {
            let angle = pos * f;
            *c = angle.cos();
            *s = angle.sin();
        }
        for h in 0..a.heads {
            let start = (t * a.heads + h) * a.head_dim;
            rotate_head(&mut x[start..start + a.head_dim], &cos, &sin);
        }
    }
    Ok(())
}

/// `inv_freq_i = 1 / theta^(2i / head_dim)` for `i < rotary_pairs`, in f32.
pub(crate) fn inverse_frequencies(a: &RopeArgs) -> Vec<f32> {
    (0..a.rotary_pairs).map(|i| a.freq_scale / a.theta.powf((2 * i) as f32 / a.head_dim as f32)).collect()
}

/// Rotate-half on one head: pair `i` (with `i + head_dim/2`) turns by the angle of `cos[i]`, `sin[i]`.
fn rotate_head(head: &mut [f32], cos: &[f32], sin: &[f32]) {
    let (lo, hi) = head.split_at_mut(head.len() / 2);
    for (((x1, x2), c), s) in lo.iter_mut().zip(hi.iter_mut()).zip(cos).zip(sin) {
        let (a, b) = (*x1, *x2);
        *x1 = a * c - b * s;
        *x2 = b * c + a * s;
    }
}
