//! The elementwise ops: `geglu`, `softcap`, `scale`, `add`, `copy`.

use crate::error::{bad_arg, check_len, numel, Result};

/// `out = gelu_tanh(gate) * up` elementwise over `rows x width` (GeGLU; also the PLE gate).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GegluArgs {
    /// Rows (tokens).
    pub rows: usize,
    /// Columns per row.
    pub width: usize,
}

/// `x = cap * tanh(x / cap)` over `len` elements (final logit softcap); `cap` must be positive.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SoftcapArgs {
    /// Elements.
    pub len: usize,
    /// Softcap value (30 for Gemma 4).
    pub cap: f32,
}

/// `x *= factor` over `len` elements (`layer_scalar`, the router's `H^-0.5`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScaleArgs {
    /// Elements.
    pub len: usize,
    /// Multiplier.
    pub factor: f32,
}

/// `acc = (acc + x) * scale` over `len` elements (MoE branch sum, PLE combine).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AddArgs {
    /// Elements.
    pub len: usize,
    /// Multiplier.
    pub scale: f32,
}

/// `dst[dst_offset..][..len] = src[src_offset..][..len]` (e.g. the last row of a prefill for the LM head).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CopyArgs {
    /// Elements.
    pub len: usize,
    /// First element read.
    pub src_offset: usize,
    /// First element written.
    pub dst_offset: usize,
}

impl GegluArgs {
    /// The checks on the lengths; returns `rows * width`.
    pub fn check(&self, gate: usize, up: usize, out: usize) -> Result<usize> {
        const OP: &str = "geglu";
        let len = numel(OP, &[self.rows, self.width])?;
        check_len(OP, "gate", gate, len)?;
        check_len(OP, "up", up, len)?;
        check_len(OP, "out", out, len)?;
        Ok(len)
    }
}

impl SoftcapArgs {
    /// The checks on the length and the cap.
    pub fn check(&self, x: usize) -> Result<()> {
        check_len("softcap", "x", x, self.len)?;
        if !(self.cap.is_finite() && self.cap > 0.0) {
            return Err(bad_arg("softcap", format!("cap {} must be positive", self.cap)));
        }
        Ok(())
    }
}

impl ScaleArgs {
    /// The check on the length.
    pub fn check(&self, x: usize) -> Result<()> {
        check_len("scale", "x", x, self.len)
    }
}

impl AddArgs {
    /// The checks on the lengths.
    pub fn check(&self, x: usize, acc: usize) -> Result<()> {
        check_len("add", "x", x, self.len)?;
        check_len("add", "acc", acc, self.len)
    }
}

impl CopyArgs {
    /// The checks on the ranges; returns the ends of the source and destination ranges.
    pub fn check(&self, src: usize, dst: usize) -> Result<(usize, usize)> {
        let end = |offset: usize| {
            offset
                .checked_add(self.len)
                .ok_or_else(|| bad_arg("copy", format!("offset {offset} + {} overflows", self.len)))
        };
        let (src_end, dst_end) = (end(self.src_offset)?, end(self.dst_offset)?);
        check_len("copy", "src", src, src_end)?;
        check_len("copy", "dst", dst, dst_end)?;
        Ok((src_end, dst_end))
    }
}
