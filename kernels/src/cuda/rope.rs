//! RoPE on the CUDA device (`kernels/cuda/rope.cu`): one thread per rotating pair. Same checks
//! and errors as the reference (`reference/rope.rs`).

use super::device::{u32_arg, Device, Dims, Params};
use super::elementwise::blocks;
use super::kernels::{kernel, Kernel};
use super::{Cuda, CudaBuf};
use crate::args::*;
use crate::error::Result;

const ROPE: Kernel = kernel!(Rope, "rope");

/// The kernels of `rope.cu`.
pub(super) const KERNELS: &[Kernel] = &[ROPE];

/// `RopeParams` in `rope.cu`.
#[repr(C)]
#[derive(Clone, Copy)]
struct RopeParams {
    x: u64,
    tokens: u32,
    heads: u32,
    head_dim: u32,
    rotary_pairs: u32,
    pos0: u32,
    theta: f32,
    freq_scale: f32,
    pad: u32,
}
// SAFETY: repr(C), plain numbers, mirrors `RopeParams` in rope.cu.
unsafe impl Params for RopeParams {}

impl<D: Device> Cuda<D> {
    pub(super) fn op_rope(&self, a: &RopeArgs, x: &mut CudaBuf<D::Mem>) -> Result<()> {
        const OP: &str = "rope";
        a.check(x.len)?;
        let threads = a.tokens * a.heads * a.rotary_pairs; // <= len: no overflow
        if threads == 0 {
            return Ok(());
        }
        let p = RopeParams {
            x: self.ptr(x),
            tokens: u32_arg(OP, "size", a.tokens)?,
            heads: u32_arg(OP, "size", a.heads)?,
            head_dim: u32_arg(OP, "size", a.head_dim)?,
            rotary_pairs: u32_arg(OP, "size", a.rotary_pairs)?,
            pos0: u32_arg(OP, "size", a.pos0 + a.tokens - 1).map(|_| a.pos0 as u32)?,
            theta: a.theta,
            freq_scale: a.freq_scale,
            pad: 0,
        };
        self.dev.launch(ROPE, Dims::linear(blocks(threads as u64, 256), 256), &p)
    }
}
