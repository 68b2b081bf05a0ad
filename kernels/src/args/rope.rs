//! `rope`: rotary position embedding.

use crate::error::{bad_arg, check_len, numel, Result};

/// Rotary position embedding in place, rotate-half layout (dim `i` pairs with `i + head_dim/2`).
/// Token `t` is at position `pos0 + t`. Pair `i < rotary_pairs` turns by
/// `pos * theta^(-2i / head_dim)`; pairs `rotary_pairs..head_dim/2` are left as they are.
/// Default RoPE: `rotary_pairs = head_dim / 2`; Gemma 4's proportional RoPE on full layers:
/// `rotary_pairs = partial_rotary_factor * head_dim / 2` (the exponent keeps the full head_dim).
/// Linear scaling multiplies every frequency by `freq_scale`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RopeArgs {
    /// Tokens (rows) in the call.
    pub tokens: usize,
    /// Heads per token.
    pub heads: usize,
    /// Elements per head.
    pub head_dim: usize,
    /// Dimension pairs that rotate (the rest pass through).
    pub rotary_pairs: usize,
    /// RoPE base.
    pub theta: f32,
    /// Position of the first token.
    pub pos0: usize,
    /// Multiplies every frequency: linear RoPE scaling (`1 / factor`, Gemma 3 4B+ global layers);
    /// 1.0 without scaling.
    pub freq_scale: f32,
}

impl RopeArgs {
    /// The checks on the arguments and the length of `x`; returns the rotated length.
    pub fn check(&self, x_len: usize) -> Result<usize> {
        const OP: &str = "rope";
        if !self.head_dim.is_multiple_of(2) {
            return Err(bad_arg(OP, format!("head_dim {} is odd", self.head_dim)));
        }
        let half = self.head_dim / 2;
        if self.rotary_pairs > half {
            return Err(bad_arg(OP, format!("rotary_pairs {} > head_dim/2 = {half}", self.rotary_pairs)));
        }
        if !(self.freq_scale.is_finite() && self.freq_scale > 0.0) {
            return Err(bad_arg(OP, format!("freq_scale {} must be positive", self.freq_scale)));
        }
        if self.pos0.checked_add(self.tokens).is_none() {
            return Err(bad_arg(OP, format!("positions {}+{} overflow", self.pos0, self.tokens)));
        }
        let len = numel(OP, &[self.tokens, self.heads, self.head_dim])?;
        check_len(OP, "x", x_len, len)?;
        Ok(len)
    }

    /// `inv_freq_i = freq_scale / theta^(2i / head_dim)` for `i < rotary_pairs`, in f32: every
    /// backend that tabulates angles on the host uses these, so they agree bit for bit.
    pub fn inverse_frequencies(&self) -> Vec<f32> {
        (0..self.rotary_pairs)
            .map(|i| self.freq_scale / self.theta.powf((2 * i) as f32 / self.head_dim as f32))
            .collect()
    }
}
