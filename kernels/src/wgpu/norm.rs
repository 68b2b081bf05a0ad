//! RMSNorm on the device (`shaders/norm.wgsl`): `rms_norm` and `add_rms_norm`, one
//! workgroup per row. Same checks and errors as the reference (`reference/norm.rs`).

use super::device::{Gpu, PipelineKey};
use super::elementwise::u32_len;
use super::shaders::Shader;
use super::{GpuBuf, GpuWeight};
use crate::args::RmsNormArgs;
use crate::error::Result;

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    rows: u32,
    dim: u32,
    eps: f32,
    has_weight: u32,
}

fn run(gpu: &Gpu, op: &'static str, a: &RmsNormArgs, x: &GpuBuf, w: Option<&GpuWeight>, out: &GpuBuf) -> Result<()> {
    let len = a.check(op, x.len, w.map(|w| &w.shape[..]), out.len)?;
    u32_len(op, len)?;
    // Without a weight the shader never reads binding 2, but it must still be bound.
    let dummy;
    let wbuf = match w {
        Some(w) => w.single(op)?,
        None => {
            dummy = gpu.storage(4)?;
            &dummy
        }
    };
    let params = Params { rows: a.rows as u32, dim: a.dim as u32, eps: a.eps, has_weight: w.is_some() as u32 };
    let key = PipelineKey { shader: Shader::RmsNorm, entry: op, constants: vec![] };
    gpu.dispatch(&key, op, &params, &[&x.buf, wbuf, &out.buf], gpu.grid(a.rows)?)
}

pub(super) fn rms_norm(gpu: &Gpu, a: &RmsNormArgs, x: &GpuBuf, w: Option<&GpuWeight>, out: &mut GpuBuf) -> Result<()> {
    run(gpu, "rms_norm", a, x, w, out)
}

pub(super) fn add_rms_norm(gpu: &Gpu, a: &RmsNormArgs, x: &GpuBuf, w: &GpuWeight, residual: &mut GpuBuf) -> Result<()> {
    run(gpu, "add_rms_norm", a, x, Some(w), residual)
}
