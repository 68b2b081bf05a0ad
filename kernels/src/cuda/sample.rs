//! Choosing the next token on the CUDA device (`kernels/cuda/sample.cu`): `argmax`, one block
//! per row. Same checks as the reference (`reference/sample.rs`).

use super::device::{u32_arg, Device, Dims, Params};
use super::kernels::{kernel, Kernel};
use super::{Cuda, CudaBuf};
use crate::args::ArgmaxArgs;
use crate::error::Result;

const ARGMAX: Kernel = kernel!(Sample, "argmax");

/// The kernels of `sample.cu`.
pub(super) const KERNELS: &[Kernel] = &[ARGMAX];

/// `ArgmaxParams` in `sample.cu`.
#[repr(C)]
#[derive(Clone, Copy)]
struct ArgmaxParams {
    x: u64,
    out: u64,
    rows: u32,
    len: u32,
}
// SAFETY: repr(C), plain numbers, mirrors `ArgmaxParams` in sample.cu.
unsafe impl Params for ArgmaxParams {}

impl<D: Device> Cuda<D> {
    pub(super) fn op_argmax(&self, a: &ArgmaxArgs, x: &CudaBuf<D::Mem>, out: &mut CudaBuf<D::Mem>) -> Result<()> {
        const OP: &str = "argmax";
        a.check(x.len, out.len)?;
        if a.rows == 0 {
            return Ok(());
        }
        let p = ArgmaxParams {
            x: self.ptr(x),
            out: self.ptr(out),
            rows: u32_arg(OP, "size", a.rows)?,
            len: u32_arg(OP, "size", a.len)?,
        };
        self.dev.launch(ARGMAX, Dims::linear(p.rows, 256), &p)
    }
}
