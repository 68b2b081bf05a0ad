//! RMSNorm on the CUDA device (`kernels/cuda/norm.cu`): `rms_norm` and `add_rms_norm` (one
//! block per row). Same checks and errors as the reference (`reference/norm.rs`).

use super::device::{u32_arg, Device, Dims, Params};
use super::kernels::{kernel, Kernel};
use super::{Cuda, CudaBuf, CudaWeight};
use crate::args::*;
use crate::error::Result;

const RMS_NORM: Kernel = kernel!(Norm, "rms_norm");
const ADD_RMS_NORM: Kernel = kernel!(Norm, "add_rms_norm");

/// The kernels of `norm.cu`.
pub(super) const KERNELS: &[Kernel] = &[RMS_NORM, ADD_RMS_NORM];

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
        let len = a.check(op, x.len, w.map(|w| &w.shape[..]), out.len)?;
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
}
