//! Attention and the KV cache write on the device. Same checks and errors as the reference
//! (`reference/attention.rs`, whose validators these call), plus positions and buffer indices within a
//! u32.
//!
//! - `kv_write` (`shaders/attention/kv_write.wgsl`): one thread per copied element; only the last
//!   `min(tokens, capacity)` tokens are copied, so no slot is written twice.
//! - `attention` (`shaders/attention/attention.wgsl`, `shaders/attention/attention_combine.wgsl`): flash attention,
//!   a workgroup per (tile of `R` rows of one KV head, KV head, key split). A tile's rows are the
//!   (token, query head) pairs of its KV head, so a decode step's GQA group shares every key and
//!   value read. [`Plan`] picks `R`, the keys per tile `BK` (under the workgroup memory limit)
//!   and the splits: short calls on long contexts split their keys (flash-decoding) and a second
//!   pass merges the partials from a scratch buffer allocated per call.

use super::device::{unavailable, Gpu, PipelineKey};
use super::elementwise::u32_len;
use super::shaders::Shader;
use super::GpuBuf;
use crate::args::{AttentionArgs, KvWriteArgs};
use crate::error::bad_arg;
use crate::error::Result;

/// Threads per workgroup of `kv_write` and `attention` (their `override WG`).
const WG: usize = 256;
/// Output columns one thread can hold (the shader's `MAXC`).
const MAXC: usize = 32;
/// Rows per tile at most: 16 (token, head) rows share each K/V tile.
const MAX_ROWS: usize = 16;
/// Keys per tile at most.
const MAX_BK: usize = 32;
/// Workgroup memory used at most, even where the adapter allows more: the 16 KiB every WebGPU
/// adapter offers, so the tested configuration is the one that runs everywhere.
const PORTABLE_WG_BYTES: usize = 16 << 10;
/// Calls with fewer workgroups than this split their keys to fill the device.
const TARGET_GROUPS: usize = 64;
/// Keys per split at least (fewer makes the combine pass dominate).
const MIN_SPLIT_KEYS: usize = 256;
/// Splits at most (bounds the position slack and the combine loop).
const MAX_SPLITS: usize = 64;
/// Scratch for split partials at most, in floats (64 MiB).
const MAX_SCRATCH: usize = 16 << 20;

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct KvParams {
    rows: u32,
    kv_dim: u32,
    t0: u32,
    slot0: u32,
    capacity: u32,
    _pad: [u32; 3],
}

pub(super) fn kv_write(
    gpu: &Gpu,
    a: &KvWriteArgs,
    k: &GpuBuf,
    v: &GpuBuf,
    cache_k: &mut GpuBuf,
    cache_v: &mut GpuBuf,
) -> Result<()> {
    const OP: &str = "kv_write";
    a.check(k.len, v.len, cache_k.len, cache_v.len)?;
    let rows = a.tokens.min(a.capacity);
    if rows == 0 || a.kv_dim == 0 {
        return Ok(());
    }
    u32_len(OP, a.tokens * a.kv_dim)?;
    u32_len(OP, a.capacity * a.kv_dim)?;
    let t0 = a.tokens - rows;
    let params = KvParams {
        rows: rows as u32,
        kv_dim: a.kv_dim as u32,
        t0: t0 as u32,
        slot0: ((a.pos0 + t0) % a.capacity) as u32,
        capacity: a.capacity as u32,
        _pad: [0; 3],
    };
    let key = PipelineKey { shader: Shader::KvWrite, entry: OP, constants: vec![] };
    let bufs = [&k.buf, &v.buf, &cache_k.buf, &cache_v.buf];
    gpu.dispatch(&key, OP, &params, &bufs, gpu.grid((rows * a.kv_dim).div_ceil(WG))?)
}

/// Mirrors `Params` of `shaders/attention/attention.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    tokens: u32,
    n_heads: u32,
    n_kv_heads: u32,
    group: u32,
    pos0: u32,
    capacity: u32,
    /// 0 = no window.
    window: u32,
    scale: f32,
    /// Rows per KV head: `tokens * group`.
    rows: u32,
    splits: u32,
    _pad: [u32; 2],
}

/// Mirrors `Params` of `shaders/attention/attention_combine.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct CombineParams {
    rows: u32,
    head_dim: u32,
    splits: u32,
    _pad: u32,
}

/// How one attention call is cut into workgroups.
#[derive(Debug, PartialEq, Eq)]
struct Plan {
    /// Rows per tile (`R`), a power of two.
    rows: usize,
    /// Keys per tile (`BK`), a power of two with `rows * bk <= WG`.
    bk: usize,
    /// Key splits per tile.
    splits: usize,
    /// Workgroups of the first pass: tiles x KV heads x splits.
    groups: usize,
}

/// Workgroup memory of the attention shader, in bytes: K/V tile (rows padded by one float),
/// reduction, probabilities, alphas.
fn shared_bytes(head_dim: usize, rows: usize, bk: usize) -> usize {
    4 * (bk * (head_dim + 1) + WG + rows * bk + rows)
}

/// The first key the query at `pos` sees.
fn first_key(window: Option<usize>, pos: usize) -> usize {
    window.map_or(0, |w| (pos + 1).saturating_sub(w))
}

impl Plan {
    fn new(a: &AttentionArgs, wg_bytes: usize) -> Result<Plan> {
        let (d, group) = (a.head_dim, a.n_heads / a.n_kv_heads);
        let rows_per_kv = a.tokens * group;
        // Fewer rows per tile for very wide heads, so each thread's columns fit its registers.
        let mut rows = rows_per_kv.next_power_of_two().min(MAX_ROWS);
        while rows > 1 && d.div_ceil(WG / rows) > MAXC {
            rows /= 2;
        }
        let budget = wg_bytes.min(PORTABLE_WG_BYTES);
        let mut bk = (WG / rows).min(MAX_BK);
        while bk > 1 && shared_bytes(d, rows, bk) > budget {
            bk /= 2;
        }
        if d.div_ceil(WG / rows) > MAXC || shared_bytes(d, rows, bk) > budget {
            return Err(unavailable(format!("attention: head_dim {d} does not fit a workgroup ({budget} bytes)")));
        }
        let tiles = rows_per_kv.div_ceil(rows);
        let base = tiles * a.n_kv_heads;
        // The keys of the last tile, the widest: from its first row's first key to its last row.
        let (t_first, t_last) = ((tiles - 1) * rows / group, (rows_per_kv - 1) / group);
        let span = a.pos0 + t_last + 1 - first_key(a.window, a.pos0 + t_first);
        let mut splits = 1;
        if base < TARGET_GROUPS {
            let by_scratch = MAX_SCRATCH / (a.tokens * a.n_heads * (d + 2));
            splits = TARGET_GROUPS.div_ceil(base).min(span.div_ceil(MIN_SPLIT_KEYS)).min(MAX_SPLITS).min(by_scratch);
            splits = splits.max(1);
        }
        Ok(Plan { rows, bk, splits, groups: base * splits })
    }
}

#[allow(clippy::too_many_arguments)]
pub(super) fn attention(
    gpu: &Gpu,
    a: &AttentionArgs,
    q: &GpuBuf,
    k: &GpuBuf,
    v: &GpuBuf,
    cache_k: &GpuBuf,
    cache_v: &GpuBuf,
    out: &mut GpuBuf,
) -> Result<()> {
    const OP: &str = "attention";
    let q_len = a.check(q.len, k.len, v.len, cache_k.len, cache_v.len, out.len)?;
    if q_len == 0 {
        return Ok(());
    }
    u32_len(OP, q_len)?;
    u32_len(OP, a.capacity * a.n_kv_heads * a.head_dim)?;
    // The shader's split arithmetic may run a few splits past the last position.
    let end = a.pos0 + a.tokens; // validate checked the sum
    if end.checked_add(MAX_SPLITS).is_none_or(|e| u32::try_from(e).is_err()) {
        return Err(bad_arg(OP, format!("positions up to {end} exceed a u32")));
    }
    let plan = Plan::new(a, gpu.limits.max_compute_workgroup_storage_size as usize)?;
    let out_rows = a.tokens * a.n_heads;
    let params = Params {
        tokens: a.tokens as u32,
        n_heads: a.n_heads as u32,
        n_kv_heads: a.n_kv_heads as u32,
        group: (a.n_heads / a.n_kv_heads) as u32,
        pos0: a.pos0 as u32,
        capacity: a.capacity as u32,
        // A window reaching past every position is no window (and keeps it within a u32).
        window: a.window.filter(|&w| w < end).unwrap_or(0) as u32,
        scale: a.scale,
        rows: (a.tokens * (a.n_heads / a.n_kv_heads)) as u32,
        splits: plan.splits as u32,
        _pad: [0; 2],
    };
    let key = PipelineKey {
        shader: Shader::Attention,
        entry: OP,
        constants: vec![("HD", a.head_dim as u32), ("R", plan.rows as u32), ("BK", plan.bk as u32)],
    };
    // Partial outputs, then (max, sum) pairs; one unused word without splits (it must be bound).
    let scratch_len = if plan.splits > 1 { out_rows * plan.splits * (a.head_dim + 2) } else { 1 };
    let scratch = gpu.storage(4 * u32_len(OP, scratch_len)? as u64)?;
    let bufs = [&q.buf, &k.buf, &v.buf, &cache_k.buf, &cache_v.buf, &out.buf, &scratch];
    gpu.dispatch(&key, OP, &params, &bufs, gpu.grid(plan.groups)?)?;
    if plan.splits == 1 {
        return Ok(());
    }
    const COMBINE: &str = "attention_combine";
    let params =
        CombineParams { rows: out_rows as u32, head_dim: a.head_dim as u32, splits: plan.splits as u32, _pad: 0 };
    let key = PipelineKey { shader: Shader::AttentionCombine, entry: COMBINE, constants: vec![] };
    gpu.dispatch(&key, COMBINE, &params, &[&scratch, &out.buf], gpu.grid(out_rows)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(tokens: usize, n_heads: usize, n_kv_heads: usize, head_dim: usize, pos0: usize) -> AttentionArgs {
        AttentionArgs { tokens, n_heads, n_kv_heads, head_dim, pos0, capacity: pos0, window: None, scale: 1.0 }
    }

    #[test]
    fn plans_fit_the_portable_limit() {
        for d in [8, 64, 256, 512, 1024] {
            for (tokens, h, kv) in [(1, 1, 1), (1, 8, 1), (7, 32, 4), (300, 8, 8)] {
                let p = Plan::new(&args(tokens, h, kv, d, 5000), 1 << 20).unwrap();
                assert!(shared_bytes(d, p.rows, p.bk) <= PORTABLE_WG_BYTES, "{d} {p:?}");
                assert!(p.rows * p.bk <= WG && d.div_ceil(WG / p.rows) <= MAXC, "{d} {p:?}");
            }
        }
        // Decode at head_dim 512: 4 keys per tile; the GQA group of 8 shares them.
        let p = Plan::new(&args(1, 8, 1, 512, 5000), 16 << 10).unwrap();
        assert_eq!((p.rows, p.bk, p.splits), (8, 4, 20));
        // Long prefills do not split.
        assert_eq!(Plan::new(&args(2048, 32, 4, 512, 0), 16 << 10).unwrap().splits, 1);
    }
}
