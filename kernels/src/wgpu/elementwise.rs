//! Elementwise ops on the device: `scale`, `add`, `softcap`, `geglu` (one shader each, one
//! thread per element) and `copy` (a recorded buffer copy). Same checks and errors as the
//! reference (`reference/elementwise.rs`).

use super::device::{Gpu, PipelineKey};
use super::shaders::Shader;
use super::GpuBuf;
use crate::args::*;
use crate::error::{bad_arg, Result};

/// Threads per workgroup of the elementwise shaders (their `override WG`).
const WG: usize = 256;

/// Uniform parameters shared by the four shaders: a length and one scalar.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    len: u32,
    value: f32,
    _pad: [u32; 2],
}

fn run(gpu: &Gpu, shader: Shader, len: usize, value: f32, bufs: &[&wgpu::Buffer]) -> Result<()> {
    let key = PipelineKey { shader, entry: shader.entries()[0], constants: vec![] };
    let params = Params { len: u32_len(shader.entries()[0], len)?, value, _pad: [0; 2] };
    gpu.dispatch(&key, shader.entries()[0], &params, bufs, gpu.grid(len.div_ceil(WG))?)
}

/// `len` as the shaders' u32 index, or an error past 2^32 elements.
pub(crate) fn u32_len(op: &'static str, len: usize) -> Result<u32> {
    u32::try_from(len).map_err(|_| bad_arg(op, format!("{len} elements exceed a u32 index")))
}

pub(super) fn scale(gpu: &Gpu, a: &ScaleArgs, x: &mut GpuBuf) -> Result<()> {
    a.check(x.len)?;
    run(gpu, Shader::Scale, a.len, a.factor, &[&x.buf])
}

pub(super) fn add(gpu: &Gpu, a: &AddArgs, x: &GpuBuf, acc: &mut GpuBuf) -> Result<()> {
    a.check(x.len, acc.len)?;
    run(gpu, Shader::Add, a.len, a.scale, &[&x.buf, &acc.buf])
}

pub(super) fn softcap(gpu: &Gpu, a: &SoftcapArgs, x: &mut GpuBuf) -> Result<()> {
    a.check(x.len)?;
    run(gpu, Shader::Softcap, a.len, a.cap, &[&x.buf])
}

pub(super) fn geglu(gpu: &Gpu, a: &GegluArgs, gate: &GpuBuf, up: &GpuBuf, out: &mut GpuBuf) -> Result<()> {
    let len = a.check(gate.len, up.len, out.len)?;
    run(gpu, Shader::Geglu, len, 0.0, &[&gate.buf, &up.buf, &out.buf])
}

pub(super) fn copy(gpu: &Gpu, a: &CopyArgs, src: &GpuBuf, dst: &mut GpuBuf) -> Result<()> {
    a.check(src.len, dst.len)?;
    gpu.copy(&src.buf, 4 * a.src_offset as u64, &dst.buf, 4 * a.dst_offset as u64, 4 * a.len as u64)
}
