//! Elementwise ops on the CUDA device (`kernels/cuda/elementwise.cu`): `scale`, `add`,
//! `softcap`, `geglu` and `kv_write`, plus `copy` (a device-to-device copy). Same checks and
//! errors as the reference (`cpu/elementwise.rs`, `cpu/attention.rs`).

use super::device::{u32_arg, Device, Dims, Params};
use super::kernels::{kernel, Kernel};
use super::{Cuda, CudaBuf};
use crate::args::*;
use crate::cpu::{bad_arg, numel};
use crate::error::{check_len, Result};

const SCALE: Kernel = kernel!(Elementwise, "scale", garnet_emu_scale);
const ADD: Kernel = kernel!(Elementwise, "add", garnet_emu_add);
const SOFTCAP: Kernel = kernel!(Elementwise, "softcap", garnet_emu_softcap);
const GEGLU: Kernel = kernel!(Elementwise, "geglu", garnet_emu_geglu);
const KV_WRITE: Kernel = kernel!(Elementwise, "kv_write", garnet_emu_kv_write);

/// The kernels of `elementwise.cu`.
pub(super) const KERNELS: &[Kernel] = &[SCALE, ADD, SOFTCAP, GEGLU, KV_WRITE];

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
        check_len("scale", "x", x.len, a.len)?;
        run(self, SCALE, a.len, a.factor, self.ptr(x), 0, 0)
    }

    pub(super) fn op_add(&self, a: &AddArgs, x: &CudaBuf<D::Mem>, acc: &mut CudaBuf<D::Mem>) -> Result<()> {
        check_len("add", "x", x.len, a.len)?;
        check_len("add", "acc", acc.len, a.len)?;
        run(self, ADD, a.len, a.scale, self.ptr(x), self.ptr(acc), 0)
    }

    pub(super) fn op_softcap(&self, a: &SoftcapArgs, x: &mut CudaBuf<D::Mem>) -> Result<()> {
        check_len("softcap", "x", x.len, a.len)?;
        if !(a.cap.is_finite() && a.cap > 0.0) {
            return Err(bad_arg("softcap", format!("cap {} must be positive", a.cap)));
        }
        run(self, SOFTCAP, a.len, a.cap, self.ptr(x), 0, 0)
    }

    pub(super) fn op_geglu(
        &self,
        a: &GegluArgs,
        gate: &CudaBuf<D::Mem>,
        up: &CudaBuf<D::Mem>,
        out: &mut CudaBuf<D::Mem>,
    ) -> Result<()> {
        const OP: &str = "geglu";
        let len = numel(OP, &[a.rows, a.width])?;
        check_len(OP, "gate", gate.len, len)?;
        check_len(OP, "up", up.len, len)?;
        check_len(OP, "out", out.len, len)?;
        run(self, GEGLU, len, 0.0, self.ptr(gate), self.ptr(up), self.ptr(out))
    }

    pub(super) fn op_copy(&self, a: &CopyArgs, src: &CudaBuf<D::Mem>, dst: &mut CudaBuf<D::Mem>) -> Result<()> {
        let end = |offset: usize| {
            offset.checked_add(a.len).ok_or_else(|| bad_arg("copy", format!("offset {offset} + {} overflows", a.len)))
        };
        check_len("copy", "src", src.len, end(a.src_offset)?)?;
        check_len("copy", "dst", dst.len, end(a.dst_offset)?)?;
        if a.len == 0 {
            return Ok(());
        }
        let (s, d) = (self.ptr(src) + 4 * a.src_offset as u64, self.ptr(dst) + 4 * a.dst_offset as u64);
        self.dev.copy(s, d, 4 * a.len)
    }
}

/// `KvWriteParams` in `elementwise.cu`.
#[repr(C)]
#[derive(Clone, Copy)]
struct KvWriteParams {
    k: u64,
    v: u64,
    cache_k: u64,
    cache_v: u64,
    rows: u32,
    kv_dim: u32,
    t0: u32,
    slot0: u32,
    capacity: u32,
    pad: u32,
}
// SAFETY: repr(C), plain numbers, mirrors `KvWriteParams` in elementwise.cu.
unsafe impl Params for KvWriteParams {}

impl<D: Device> Cuda<D> {
    pub(super) fn op_kv_write(
        &self,
        a: &KvWriteArgs,
        k: &CudaBuf<D::Mem>,
        v: &CudaBuf<D::Mem>,
        cache_k: &mut CudaBuf<D::Mem>,
        cache_v: &mut CudaBuf<D::Mem>,
    ) -> Result<()> {
        const OP: &str = "kv_write";
        crate::cpu::attention::validate_kv_write(a, k.len, v.len, cache_k.len, cache_v.len)?;
        let rows = a.tokens.min(a.capacity);
        if rows == 0 || a.kv_dim == 0 {
            return Ok(());
        }
        let t0 = a.tokens - rows;
        let p = KvWriteParams {
            k: self.ptr(k),
            v: self.ptr(v),
            cache_k: self.ptr(cache_k),
            cache_v: self.ptr(cache_v),
            rows: u32_arg(OP, "size", rows)?,
            kv_dim: u32_arg(OP, "size", a.kv_dim)?,
            t0: u32_arg(OP, "size", t0)?,
            slot0: u32_arg(OP, "size", (a.pos0 + t0) % a.capacity)?,
            capacity: u32_arg(OP, "size", a.capacity)?,
            pad: 0,
        };
        let len = (rows * a.kv_dim) as u64;
        self.dev.launch(KV_WRITE, Dims::linear(blocks(len, THREADS), THREADS), &p)
    }
}
