//! `embed` on the device (`shaders/embed.wgsl`): `out[t, j] = table[ids[t], col_offset + j] *
//! scale`, the table decoded from its storage dtype in the shader, one dispatch per table chunk
//! (each writes the tokens whose id falls in it). Same checks and errors as the reference
//! (`reference/embed.rs`) except the ids' values: they live on the device, so an id past the table
//! cannot be reported; the shader writes 0 for it and reads nothing (the engine checks token
//! ids before uploading them). `embed_host` keeps the trait's default (a host gather, checked,
//! then an upload).

use super::device::{Gpu, PipelineKey};
use super::elementwise::u32_len;
use super::shaders::Shader;
use super::{GpuBuf, GpuWeight};
use crate::args::EmbedArgs;
use crate::error::numel;
use crate::error::{check_len, Result};

const OP: &str = "embed";
/// Invocations per workgroup (the shader's `override WG`).
const WG: usize = 256;

/// Mirrors `struct Params` of `embed.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    tokens: u32,
    width: u32,
    col_offset: u32,
    /// Elements per table row.
    row_len: u32,
    /// First table row of this chunk, and its rows.
    row0: u32,
    rows: u32,
    /// Rows of the whole table: ids from here on are out of range.
    total_rows: u32,
    /// 1 on the last chunk's dispatch, which writes the zeros for out-of-range ids.
    last: u32,
    scale: f32,
    _pad: [u32; 3],
}

pub(super) fn embed(gpu: &Gpu, a: &EmbedArgs, table: &GpuWeight, ids: &GpuBuf, out: &mut GpuBuf) -> Result<()> {
    let total_rows = a.check_shapes(&table.shape, ids.len)?;
    let len = numel(OP, &[a.tokens, a.width])?;
    check_len(OP, "out", out.len, len)?;
    // tokens and width are each at most len (a u32) once neither is 0.
    if u32_len(OP, len)? == 0 {
        return Ok(());
    }
    let row_len = u32_len(OP, table.row_len())?;
    // Chunks are under 1 GiB, so an element index inside one fits the shader's u32. Ids are
    // u32: rows past u32::MAX are unreachable, their chunks are skipped.
    let total = u32::try_from(total_rows).unwrap_or(u32::MAX);
    let key = PipelineKey { shader: Shader::Embed, entry: OP, constants: vec![("DTYPE", table.code())] };
    let grid = gpu.grid(len.div_ceil(WG))?;
    for (i, c) in table.chunks.iter().enumerate() {
        let Ok(row0) = u32::try_from(c.row0) else { break };
        let params = Params {
            tokens: a.tokens as u32,
            width: a.width as u32,
            col_offset: a.col_offset as u32,
            row_len,
            row0,
            rows: c.rows as u32,
            total_rows: total,
            last: (i + 1 == table.chunks.len()) as u32,
            scale: a.scale,
            _pad: [0; 3],
        };
        gpu.dispatch(&key, OP, &params, &[&c.buf, &ids.buf, &out.buf], grid)?;
    }
    Ok(())
}
