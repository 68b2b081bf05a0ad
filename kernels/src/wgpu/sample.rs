//! The greedy choice on the device: `argmax` (one workgroup per row, shaders/sample.wgsl). Same
//! checks and errors as the reference (`reference/sample.rs`).

use super::device::{Gpu, PipelineKey};
use super::elementwise::u32_len;
use super::shaders::Shader;
use super::GpuBuf;
use crate::args::ArgmaxArgs;
use crate::error::Result;

/// Mirrors `Params` of `shaders/sample.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct ArgmaxParams {
    rows: u32,
    len: u32,
    _pad: [u32; 2],
}

pub(super) fn argmax(gpu: &Gpu, a: &ArgmaxArgs, x: &GpuBuf, out: &mut GpuBuf) -> Result<()> {
    const OP: &str = "argmax";
    let n = a.check(x.len, out.len)?;
    if a.rows == 0 {
        return Ok(());
    }
    u32_len(OP, n)?;
    let params = ArgmaxParams { rows: a.rows as u32, len: a.len as u32, _pad: [0; 2] };
    let key = PipelineKey { shader: Shader::Argmax, entry: OP, constants: vec![] };
    gpu.dispatch(&key, OP, &params, &[&x.buf, &out.buf], gpu.grid(a.rows)?)
}
