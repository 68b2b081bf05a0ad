//! `matmul` on the device: `out[m, n] = x[m, k] · w[n, k]^T` with the weight decoded from its
//! storage dtype in the shader (`shaders/weights.wgsl`). Same checks and errors as the
//! reference (`reference/matmul.rs`).
//!
//! Two shaders, one dispatch per weight chunk (each chunk holds rows `row0..row0 + rows` of the
//! weight and writes those columns of `out`):
//! - `shaders/matmul/matvec.wgsl` for `m <= MATVEC_MAX_M` (decode) and `k` a multiple of 4 (it reads x
//!   as vec4s): each workgroup takes `MATVEC_WG / lanes` rows, `lanes` invocations per row
//!   ([`matvec_lanes`]), each decoding every `lanes`-th 32-element group of its row once and
//!   dotting it with every token; a row's lanes are summed in workgroup memory.
//! - `shaders/matmul/matmul.wgsl` for larger `m` (prefill), and the rare float weights whose `k` is not
//!   a multiple of 4 (or 0): 64 x 64 output tiles staged through workgroup memory, 4 x 4
//!   outputs per invocation.
//!
//! The threshold, `m <= 8`: the matvec decodes each weight row once per pass and keeps one
//! accumulator per token in registers, so for a few tokens it is a plain weight-bound matvec;
//! but nothing is shared between invocations, so each one re-reads 32 columns of x per token
//! per group, and its registers grow with m. The tiled kernel shares x and the decoded weights
//! through workgroup memory, at the price of padding a partial 64-token tile. Eight tokens
//! (decode and short verification batches) keeps the matvec's accumulators to 8 registers; a
//! 9-token prefill chunk already reads x 9 times per weight group in the matvec. The value is
//! reasoned, not tuned on a GPU (lavapipe's timings say nothing about one). The matvec's token
//! count is a pipeline constant (a pipeline per dtype, lane count and `m`): with a runtime
//! count lavapipe runs the token loop to 8, masked, 5x slower for one token.

use super::device::{Gpu, PipelineKey};
use super::elementwise::u32_len;
use super::shaders::Shader;
use super::{GpuBuf, GpuWeight};
use crate::args::MatmulArgs;
use crate::error::Result;

const OP: &str = "matmul";
/// Most tokens the matvec takes (its `MAX_M`); more go to the tiled matmul.
const MATVEC_MAX_M: usize = 8;
/// Invocations per matvec workgroup (its `WG`, a power of two).
const MATVEC_WG: usize = 64;
/// Lanes per row on a GPU: a subgroup-sized stride over the row keeps a row's reads of
/// neighbouring groups together (reasoned, not tuned on a GPU).
const GPU_LANES: usize = 32;
/// Workgroups a GPU dispatch should have at least (a few per compute unit).
const GPU_MIN_WORKGROUPS: usize = 128;

/// Lanes per weight row of the matvec (its `LPR`, a power of two dividing [`MATVEC_WG`]) for a
/// chunk of `rows` rows of `k` columns. On a CPU adapter (lavapipe) one lane per row: it runs a
/// workgroup as SIMD vectors over its invocations, so a lane per row is already parallel and
/// needs no reduction or barrier (measured there: 2 lanes per row take 10% longer, 8 lanes
/// 1.6-2.5x). Rows too few to give every core or compute unit workgroups take more lanes
/// each, but never more than the row has 32-element groups.
fn matvec_lanes(gpu: &Gpu, rows: usize, k: usize) -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    let (mut lanes, min_workgroups) = if gpu.info.device_type == wgpu::DeviceType::Cpu {
        (1, 2 * *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get())))
    } else {
        (GPU_LANES, GPU_MIN_WORKGROUPS)
    };
    let most = (k / 32).next_power_of_two().min(MATVEC_WG);
    lanes = lanes.min(most);
    while lanes < most && rows.div_ceil(MATVEC_WG / lanes) < min_workgroups {
        lanes *= 2;
    }
    lanes
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
    let (x_len, out_len) = a.check(x.len, &w.shape, out.len)?;
    u32_len(OP, x_len)?;
    u32_len(OP, out_len)?;
    if a.m == 0 || a.n == 0 {
        return Ok(());
    }
    let dtype = ("DTYPE", w.code());
    let small = a.m <= MATVEC_MAX_M && a.k > 0 && a.k.is_multiple_of(4);
    for c in &w.chunks {
        let params = Params {
            m: a.m as u32,
            n: c.rows as u32,
            k: a.k as u32,
            ldo: a.n as u32,
            row0: c.row0 as u32,
            _pad: [0; 3],
        };
        let (key, label, groups) = if small {
            let lanes = matvec_lanes(gpu, c.rows, a.k);
            let constants = vec![dtype, ("WG", MATVEC_WG as u32), ("LPR", lanes as u32), ("MV_M", a.m as u32)];
            let key = PipelineKey { shader: Shader::Matvec, entry: "matvec", constants };
            (key, "matvec", c.rows.div_ceil(MATVEC_WG / lanes))
        } else {
            let constants = vec![dtype, ("TM", TILE_M as u32), ("TN", TILE_N as u32)];
            let key = PipelineKey { shader: Shader::Matmul, entry: "matmul", constants };
            (key, "matmul", c.rows.div_ceil(TILE_N) * a.m.div_ceil(TILE_M))
        };
        gpu.dispatch(&key, label, &params, &[&x.buf, &c.buf, &out.buf], gpu.grid(groups)?)?;
    }
    Ok(())
}
