//! `embed` on the CUDA device (`kernels/cuda/embed.cu`): `out[t, j] = table[ids[t], col_offset +
//! j] * scale`, the table decoded from its storage dtype in the kernel (one entry per dtype).
//! Same checks and errors as the reference (`reference/embed.rs`) except the ids' values: they live
//! on the device, so, as in the WGSL backend, an id past the table cannot be reported; the
//! kernel writes 0 for it and reads nothing (the engine checks token ids before uploading
//! them). `embed_host` keeps the trait's default (a host gather, checked, then an upload).

use super::device::{u32_arg, Device, Dims, Params};
use super::elementwise::blocks;
use super::kernels::{per_dtype, Kernel, DEVICE_DTYPES};
use super::{Cuda, CudaBuf, CudaWeight};
use crate::args::*;
use crate::error::numel;
use crate::error::{check_len, Result};

/// `embed_<dtype>`, indexed by the dtype code.
const EMBED: [Kernel; DEVICE_DTYPES] = per_dtype!(Embed, "embed_");

/// The kernels of `embed.cu`.
pub(super) const KERNELS: &[Kernel] = &EMBED;

/// Threads per block.
const THREADS: u32 = 256;

/// `EmbedParams` in `embed.cu`.
#[repr(C)]
#[derive(Clone, Copy)]
struct EmbedParams {
    table: u64,
    ids: u64,
    out: u64,
    rows: u64,
    row_len: u64,
    col_offset: u64,
    tokens: u32,
    width: u32,
    scale: f32,
    pad: u32,
}
// SAFETY: repr(C), plain numbers, mirrors `EmbedParams` in embed.cu.
unsafe impl Params for EmbedParams {}

impl<D: Device> Cuda<D> {
    pub(super) fn op_embed(
        &self,
        a: &EmbedArgs,
        table: &CudaWeight<D::Mem>,
        ids: &CudaBuf<D::Mem>,
        out: &mut CudaBuf<D::Mem>,
    ) -> Result<()> {
        const OP: &str = "embed";
        let rows = a.check_shapes(&table.shape, ids.len)?;
        let len = numel(OP, &[a.tokens, a.width])?;
        check_len(OP, "out", out.len, len)?;
        if len == 0 {
            return Ok(());
        }
        let p = EmbedParams {
            table: self.dev.ptr(&table.mem),
            ids: self.ptr(ids),
            out: self.ptr(out),
            rows: rows as u64,
            row_len: table.row_len() as u64,
            col_offset: a.col_offset as u64,
            tokens: u32_arg(OP, "tokens", a.tokens)?,
            width: u32_arg(OP, "width", a.width)?,
            scale: a.scale,
            pad: 0,
        };
        self.dev.launch(EMBED[table.kernel_index(OP)?], Dims::linear(blocks(len as u64, THREADS), THREADS), &p)
    }
}
