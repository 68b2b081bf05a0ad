//! RoPE on the device (`shaders/rope.wgsl`): rotate-half, in place, one thread per (token, head,
//! rotating pair). The inverse frequencies are computed here by the reference's
//! [`inverse_frequencies`] and uploaded, so the shader multiplies the same f32 frequencies as the
//! CPU. Same checks and errors as the reference (`reference/rope.rs`), plus positions within a u32.

use super::device::{Gpu, PipelineKey};
use super::elementwise::u32_len;
use super::shaders::Shader;
use super::GpuBuf;
use crate::args::RopeArgs;
use crate::error::bad_arg;
use crate::error::Result;

/// Threads per workgroup (the shader's `override WG`).
const WG: usize = 256;

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    tokens: u32,
    heads: u32,
    head_dim: u32,
    rotary_pairs: u32,
    pos0: u32,
    _pad: [u32; 3],
}

pub(super) fn rope(gpu: &Gpu, a: &RopeArgs, x: &mut GpuBuf) -> Result<()> {
    const OP: &str = "rope";
    let len = a.check(x.len)?;
    let threads = a.tokens * a.heads * a.rotary_pairs; // <= len: no overflow
    if threads == 0 {
        return Ok(());
    }
    u32_len(OP, len)?;
    let last = a.pos0 + a.tokens - 1; // validate checked pos0 + tokens
    if u32::try_from(last).is_err() {
        return Err(bad_arg(OP, format!("position {last} exceeds a u32")));
    }
    let freqs = gpu.buffer_with(bytemuck::cast_slice(&a.inverse_frequencies()), wgpu::BufferUsages::STORAGE)?;
    let params = Params {
        tokens: a.tokens as u32,
        heads: a.heads as u32,
        head_dim: a.head_dim as u32,
        rotary_pairs: a.rotary_pairs as u32,
        pos0: a.pos0 as u32,
        _pad: [0; 3],
    };
    let key = PipelineKey { shader: Shader::Rope, entry: OP, constants: vec![] };
    gpu.dispatch(&key, OP, &params, &[&x.buf, &freqs], gpu.grid(threads.div_ceil(WG))?)
}
