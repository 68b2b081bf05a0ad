//! Elementwise ops on the CUDA device (`kernels/cuda/elementwise.cu`): `scale`, `add`,
//! `softcap` and `geglu`, plus `copy` (a device-to-device copy). Same checks and errors as the
//! reference (`reference/elementwise.rs`).

use super::device::{Device, Dims, Params};
use super::kernels::{kernel, Kernel};
use super::{Cuda, CudaBuf};
use crate::args::*;
use crate::error::Result;

const SCALE: Kernel = kernel!(Elementwise, "scale");
const ADD: Kernel = kernel!(Elementwise, "add");
const SOFTCAP: Kernel = kernel!(Elementwise, "softcap");
const GEGLU: Kernel = kernel!(Elementwise, "geglu");

/// The kernels of `elementwise.cu`.
pub(super) const KERNELS: &[Kernel] = &[SCALE, ADD, SOFTCAP, GEGLU];

/// Threads per block.
const THREADS: u32 = 256;

/// `ElementwiseParams` in `elementwise.cu`.
#[repr(C)]
#[derive(Clone, Copy)]
struct ElementwiseParams {
    x: u64,
    y: u64,
    out: u64,
    len: u64,
    value: f32,
    pad: u32,
}
// SAFETY: repr(C), plain numbers, mirrors `ElementwiseParams` in elementwise.cu.
unsafe impl Params for ElementwiseParams {}

/// Blocks for a grid-stride loop over `len` elements (capped: each thread loops).
pub(super) fn blocks(len: u64, threads: u32) -> u32 {
    len.div_ceil(threads as u64).clamp(1, 65535) as u32
}

fn run<D: Device>(c: &Cuda<D>, k: Kernel, len: usize, value: f32, x: u64, y: u64, out: u64) -> Result<()> {
    if len == 0 {
        return Ok(());
    }
    let p = ElementwiseParams { x, y, out, len: len as u64, value, pad: 0 };
    c.dev.launch(k, Dims::linear(blocks(len as u64, THREADS), THREADS), &p)
}

impl<D: Device> Cuda<D> {
    pub(super) fn op_scale(&self, a: &ScaleArgs, x: &mut CudaBuf<D::Mem>) -> Result<()> {
        a.check(x.len)?;
        run(self, SCALE, a.len, a.factor, self.ptr(x), 0, 0)
    }

    pub(super) fn op_add(&self, a: &AddArgs, x: &CudaBuf<D::Mem>, acc: &mut CudaBuf<D::Mem>) -> Result<()> {
        a.check(x.len, acc.len)?;
        run(self, ADD, a.len, a.scale, self.ptr(x), self.ptr(acc), 0)
    }

    pub(super) fn op_softcap(&self, a: &SoftcapArgs, x: &mut CudaBuf<D::Mem>) -> Result<()> {
        a.check(x.len)?;
        run(self, SOFTCAP, a.len, a.cap, self.ptr(x), 0, 0)
    }

    pub(super) fn op_geglu(
        &self,
        a: &GegluArgs,
        gate: &CudaBuf<D::Mem>,
        up: &CudaBuf<D::Mem>,
        out: &mut CudaBuf<D::Mem>,
    ) -> Result<()> {
        let len = a.check(gate.len, up.len, out.len)?;
        run(self, GEGLU, len, 0.0, self.ptr(gate), self.ptr(up), self.ptr(out))
    }

    pub(super) fn op_copy(&self, a: &CopyArgs, src: &CudaBuf<D::Mem>, dst: &mut CudaBuf<D::Mem>) -> Result<()> {
        a.check(src.len, dst.len)?;
        if a.len == 0 {
            return Ok(());
        }
        let (s, d) = (self.ptr(src) + 4 * a.src_offset as u64, self.ptr(dst) + 4 * a.dst_offset as u64);
        self.dev.copy(s, d, 4 * a.len)
    }
}
