//! `matmul` on the device: `out[m, n] = x[m, k] · w[n, k]^T` with the weight decoded from its
//! storage dtype in the shader (`shaders/weights.wgsl`). Same checks and errors as the
//! reference (`cpu/matmul.rs`).
//!
//! Two shaders, one dispatch per weight chunk (each chunk holds rows `row0..row0 + rows` of the
//! weight and writes those columns of `out`):
//! - `shaders/matvec.wgsl` for `m <= MATVEC_MAX_M` (decode): a workgroup per weight row decodes
//!   the row once and dots it with every token, then reduces across the workgroup (with
//!   `subgroupAdd` where the device has subgroups).
//! - `shaders/matmul.wgsl` for larger `m` (prefill): 64 x 64 output tiles staged through
//!   workgroup memory, 4 x 4 outputs per invocation.
//!
//! The threshold, `m <= 8`: the matvec decodes each weight row once per pass and keeps one
//! accumulator per token in registers, so for a few tokens it is a plain weight-bound matvec;
//! but nothing is shared between invocations, so each one re-reads 32 columns of x per token
//! per group, and its registers grow with m. The tiled kernel shares x and the decoded weights
//! through workgroup memory, at the price of padding a partial 64-token tile. Eight tokens
//! (decode and short verification batches) keeps the matvec's accumulators to 8 registers; a
//! 9-token prefill chunk already reads x 9 times per weight group in the matvec. The value is
//! reasoned, not tuned on a GPU (lavapipe's timings say nothing about one).

use super::device::{Gpu, PipelineKey};
use super::elementwise::u32_len;
use super::shaders::Shader;
use super::{GpuBuf, GpuWeight};
use crate::args::MatmulArgs;
use crate::error::Result;

const OP: &str = "matmul";
/// Most tokens the matvec takes (its `MV_M`); more go to the tiled matmul.
const MATVEC_MAX_M: usize = 8;
/// Invocations per matvec workgroup (its `WG`, a power of two) for rows of `k`: about one
/// 32-element group each (20 groups at k = 640 take 32 invocations, 48 at k = 1536 take 64),
/// at least 32 (a whole subgroup on most devices) and at most 128 (longer rows loop).
fn matvec_wg(k: usize) -> u32 {
    (k / 32).next_power_of_two().clamp(32, 128) as u32
}
/// Output tile of the tiled matmul (its `TM`, `TN`; multiples of its 4 x 4 per invocation).
const TILE_M: usize = 64;
const TILE_N: usize = 64;

/// Mirrors `struct Params` of `matvec.wgsl` and `matmul.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    /// Tokens (rows of x and out).
    m: u32,
    /// Weight rows in this chunk.
    n: u32,
    /// Columns of x and of the weight.
    k: u32,
    /// Row stride of out (the full weight's rows).
    ldo: u32,
    /// First weight row of this chunk (the first column of out it writes).
    row0: u32,
    _pad: [u32; 3],
}

pub(super) fn matmul(gpu: &Gpu, a: &MatmulArgs, x: &GpuBuf, w: &GpuWeight, out: &mut GpuBuf) -> Result<()> {
    let (x_len, out_len) = crate::cpu::matmul::validate(a, x.len, &w.shape, out.len)?;
    u32_len(OP, x_len)?;
    u32_len(OP, out_len)?;
    if a.m == 0 || a.n == 0 {
        return Ok(());
    }
    let dtype = ("DTYPE", w.code());
    let small = a.m <= MATVEC_MAX_M;
    let key = if small {
        PipelineKey { shader: Shader::Matvec, entry: "matvec", constants: vec![dtype, ("WG", matvec_wg(a.k))] }
    } else {
        let tiles = vec![dtype, ("TM", TILE_M as u32), ("TN", TILE_N as u32)];
        PipelineKey { shader: Shader::Matmul, entry: "matmul", constants: tiles }
    };
    for c in &w.chunks {
        let params = Params {
            m: a.m as u32,
            n: c.rows as u32,
            k: a.k as u32,
            ldo: a.n as u32,
            row0: c.row0 as u32,
            _pad: [0; 3],
        };
        let groups = if small { c.rows } else { c.rows.div_ceil(TILE_N) * a.m.div_ceil(TILE_M) };
        let label = if small { "matvec" } else { "matmul" };
        gpu.dispatch(&key, label, &params, &[&x.buf, &c.buf, &out.buf], gpu.grid(groups)?)?;
    }
    Ok(())
}
