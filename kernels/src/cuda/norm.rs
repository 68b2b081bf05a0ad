//! RMSNorm and RoPE on the CUDA device (`kernels/cuda/norm.cu`): `rms_norm` and `add_rms_norm`
//! (one block per row) and `rope` (one thread per rotating pair). Same checks and errors as the
//! reference (`cpu/norm.rs`, `cpu/rope.rs`).

use super::device::{u32_arg, Device, Dims, Params};
use super::elementwise::blocks;
use super::kernels::{kernel, Kernel};
use super::{Cuda, CudaBuf, CudaWeight};
use crate::args::*;
use crate::cpu::{check_shape, numel};
use crate::error::{check_len, Result};

const RMS_NORM: Kernel = kernel!(Norm, "rms_norm", garnet_emu_rms_norm);
const ADD_RMS_NORM: Kernel = kernel!(Norm, "add_rms_norm", garnet_emu_add_rms_norm);
const ROPE: Kernel = kernel!(Norm, "rope", garnet_emu_rope);

/// The kernels of `norm.cu`.
pub(super) const KERNELS: &[Kernel] = &[RMS_NORM, ADD_RMS_NORM, ROPE];

/// `RmsNormParams` in `norm.cu`.
#[repr(C)]
#[derive(Clone, Copy)]
struct RmsNormParams {
    x: u64,
    w: u64,
    out: u64,
    rows: u32,
    dim: u32,
    eps: f32,
    has_weight: u32,
}
// SAFETY: repr(C), plain numbers, mirrors `RmsNormParams` in norm.cu.
unsafe impl Params for RmsNormParams {}

/// `RopeParams` in `norm.cu`.
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
// SAFETY: repr(C), plain numbers, mirrors `RopeParams` in norm.cu.
unsafe impl Params for RopeParams {}

impl<D: Device> Cuda<D> {
    fn norm(
        &self,
        k: Kernel,
        a: &RmsNormArgs,
        x: &CudaBuf<D::Mem>,
        w: Option<&CudaWeight<D::Mem>>,
        out: &CudaBuf<D::Mem>,
    ) -> Result<()> {
        let op = k.entry;
        let len = numel(op, &[a.rows, a.dim])?;
        check_len(op, "x", x.len, len)?;
        check_len(op, "out", out.len, len)?;
        if let Some(w) = w {
            check_shape(op, "w", &w.shape, &[a.dim])?;
        }
        if len == 0 {
            return Ok(());
        }
        let p = RmsNormParams {
            x: self.ptr(x),
            w: w.map_or(0, |w| self.dev.ptr(&w.mem)),
            out: self.ptr(out),
            rows: u32_arg(op, "size", a.rows)?,
            dim: u32_arg(op, "size", a.dim)?,
            eps: a.eps,
            has_weight: w.is_some() as u32,
        };
        // Rows past 2^31 blocks do not occur (rows <= tokens); the grid is one block per row.
        let threads = if a.dim >= 1024 { 256 } else { 128 };
        self.dev.launch(k, Dims::linear(p.rows, threads), &p)
    }

    pub(super) fn op_rms_norm(
        &self,
        a: &RmsNormArgs,
        x: &CudaBuf<D::Mem>,
        w: Option<&CudaWeight<D::Mem>>,
        out: &mut CudaBuf<D::Mem>,
    ) -> Result<()> {
        self.norm(RMS_NORM, a, x, w, out)
    }

    pub(super) fn op_add_rms_norm(
        &self,
        a: &RmsNormArgs,
        x: &CudaBuf<D::Mem>,
        w: &CudaWeight<D::Mem>,
        residual: &mut CudaBuf<D::Mem>,
    ) -> Result<()> {
        self.norm(ADD_RMS_NORM, a, x, Some(w), residual)
    }

    pub(super) fn op_rope(&self, a: &RopeArgs, x: &mut CudaBuf<D::Mem>) -> Result<()> {
        const OP: &str = "rope";
        crate::cpu::rope::validate(a, x.len)?;
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
