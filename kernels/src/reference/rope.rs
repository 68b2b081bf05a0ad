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

use crate::args::RopeArgs;
use crate::error::Result;

/// Rotates the first `tokens * heads * head_dim` elements of `x` in place.
pub(crate) fn rope(a: &RopeArgs, x: &mut [f32]) -> Result<()> {
    a.check(x.len())?;

    let inv_freq = a.inverse_frequencies();
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

/// Rotate-half on one head: pair `i` (with `i + head_dim/2`) turns by the angle of `cos[i]`, `sin[i]`.
fn rotate_head(head: &mut [f32], cos: &[f32], sin: &[f32]) {
    let (lo, hi) = head.split_at_mut(head.len() / 2);
    for (((x1, x2), c), s) in lo.iter_mut().zip(hi.iter_mut()).zip(cos).zip(sin) {
        let (a, b) = (*x1, *x2);
        *x1 = a * c - b * s;
        *x2 = b * c + a * s;
    }
}
