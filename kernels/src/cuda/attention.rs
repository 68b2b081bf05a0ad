//! Causal GQA attention and the KV-cache write on the CUDA device (`kernels/cuda/attention.cu`).
//! Same checks and errors as the reference (`reference/attention.rs`, whose validator this
//! calls), plus head_dim at most 512 and positions and buffer indices within a u32.
//!
//! Flash attention in f32: a block per (tile of `R` rows of one KV head, KV head, key split),
//! where a tile's rows are the (token, query head) pairs of its KV head, so a decode step's GQA
//! group shares every key and value read. [`Plan`] picks the kernel (`MAXD`, the smallest of
//! 128/256/512 holding head_dim; `R`, the smallest of 2/8/16 covering a KV head's rows) and the
//! splits: short calls on long contexts split their keys (flash-decoding), write partials to a
//! scratch buffer allocated per call, and `attention_combine` merges them.

use super::device::{u32_arg, unavailable, Device, Dims, Params};
use super::elementwise::blocks;
use super::kernels::{kernel, Kernel};
use super::{Cuda, CudaBuf};
use crate::args::*;
use crate::error::bad_arg;
use crate::error::Result;

/// The flash-attention kernels, `[MAXD index][R index]` (MAXD 128/256/512, R 2/8/16).
const ATTENTION: [[Kernel; 3]; 3] = [
    [
        kernel!(Attention, "attention_d128_r2"),
        kernel!(Attention, "attention_d128_r8"),
        kernel!(Attention, "attention_d128_r16"),
    ],
    [
        kernel!(Attention, "attention_d256_r2"),
        kernel!(Attention, "attention_d256_r8"),
        kernel!(Attention, "attention_d256_r16"),
    ],
    [
        kernel!(Attention, "attention_d512_r2"),
        kernel!(Attention, "attention_d512_r8"),
        kernel!(Attention, "attention_d512_r16"),
    ],
];
const COMBINE: Kernel = kernel!(Attention, "attention_combine");
const KV_WRITE: Kernel = kernel!(Attention, "kv_write");

/// The kernels of `attention.cu`.
pub(super) const KERNELS: &[Kernel] = &[
    ATTENTION[0][0],
    ATTENTION[0][1],
    ATTENTION[0][2],
    ATTENTION[1][0],
    ATTENTION[1][1],
    ATTENTION[1][2],
    ATTENTION[2][0],
    ATTENTION[2][1],
    ATTENTION[2][2],
    COMBINE,
    KV_WRITE,
];

/// Threads per block (`ATT_THREADS`).
const THREADS: u32 = 128;
/// Threads per block of the combine kernel.
const COMBINE_THREADS: u32 = 128;
/// Head widths of the kernel variants.
const MAXD: [usize; 3] = [128, 256, 512];
/// Rows per tile of the kernel variants.
const ROWS: [usize; 3] = [2, 8, 16];
/// Calls with fewer blocks than this split their keys to fill the device.
const TARGET_BLOCKS: usize = 256;
/// Keys per split at least: one or two key tiles, so that a decode step on a few KV heads still
/// fills the SMs; the combine pass reads `head_dim + 2` floats per split, 1/32 or less of them.
const MIN_SPLIT_KEYS: usize = 32;
/// Splits at most (`ATT_MAX_SPLITS` in attention.cu: the combine kernel's shared weights).
const MAX_SPLITS: usize = 128;
/// Scratch for split partials at most, in floats (64 MiB).
const MAX_SCRATCH: usize = 16 << 20;

/// `AttentionParams` in `attention.cu`.
#[repr(C)]
#[derive(Clone, Copy)]
struct AttentionParams {
    q: u64,
    k: u64,
    v: u64,
    cache_k: u64,
    cache_v: u64,
    out: u64,
    scratch: u64,
    tokens: u32,
    n_heads: u32,
    n_kv_heads: u32,
    group: u32,
    head_dim: u32,
    pos0: u32,
    capacity: u32,
    /// 0 = no window.
    window: u32,
    scale: f32,
    /// Rows per KV head: `tokens * group`.
    rows: u32,
    splits: u32,
    pad: u32,
}
// SAFETY: repr(C), plain numbers, mirrors `AttentionParams` in attention.cu.
unsafe impl Params for AttentionParams {}

/// `CombineParams` in `attention.cu`.
#[repr(C)]
#[derive(Clone, Copy)]
struct CombineParams {
    scratch: u64,
    out: u64,
    rows: u32,
    head_dim: u32,
    splits: u32,
    pad: u32,
}
// SAFETY: repr(C), plain numbers, mirrors `CombineParams` in attention.cu.
unsafe impl Params for CombineParams {}

/// How one attention call is cut into blocks.
#[derive(Debug, PartialEq, Eq)]
struct Plan {
    /// Index into [`MAXD`].
    d: usize,
    /// Index into [`ROWS`].
    r: usize,
    /// Key splits per tile.
    splits: usize,
    /// Blocks of the first pass: tiles x KV heads x splits.
    blocks: usize,
}

/// The first key the query at `pos` sees.
fn first_key(window: Option<usize>, pos: usize) -> usize {
    window.map_or(0, |w| (pos + 1).saturating_sub(w))
}

impl Plan {
    /// `None` when head_dim is above the widest kernel.
    fn new(a: &AttentionArgs) -> Option<Plan> {
        let d = MAXD.iter().position(|&m| a.head_dim <= m)?;
        let group = a.n_heads / a.n_kv_heads;
        let rows_per_kv = a.tokens * group;
        let r = ROWS.iter().position(|&r| rows_per_kv <= r).unwrap_or(ROWS.len() - 1);
        let rows = ROWS[r];
        let tiles = rows_per_kv.div_ceil(rows);
        let base = tiles * a.n_kv_heads;
        // The keys of the last tile, the widest: from its first row's first key to its last row.
        let (t_first, t_last) = ((tiles - 1) * rows / group, (rows_per_kv - 1) / group);
        let span = a.pos0 + t_last + 1 - first_key(a.window, a.pos0 + t_first);
        let mut splits = 1;
        if base < TARGET_BLOCKS {
            let by_scratch = MAX_SCRATCH / (a.tokens * a.n_heads * (a.head_dim + 2));
            splits =
                TARGET_BLOCKS.div_ceil(base).min(span.div_ceil(MIN_SPLIT_KEYS)).min(MAX_SPLITS).min(by_scratch).max(1);
        }
        Some(Plan { d, r, splits, blocks: base * splits })
    }
}

impl<D: Device> Cuda<D> {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn op_attention(
        &self,
        a: &AttentionArgs,
        q: &CudaBuf<D::Mem>,
        k: &CudaBuf<D::Mem>,
        v: &CudaBuf<D::Mem>,
        cache_k: &CudaBuf<D::Mem>,
        cache_v: &CudaBuf<D::Mem>,
        out: &mut CudaBuf<D::Mem>,
    ) -> Result<()> {
        const OP: &str = "attention";
        let q_len = a.check(q.len, k.len, v.len, cache_k.len, cache_v.len, out.len)?;
        if q_len == 0 {
            return Ok(());
        }
        u32_arg(OP, "size", q_len)?;
        u32_arg(OP, "size", a.capacity * a.n_kv_heads * a.head_dim)?; // validate checked the product
                                                                      // The kernel's split arithmetic may run a few splits past the last position.
        let end = a.pos0 + a.tokens; // validate checked the sum
        if end.checked_add(MAX_SPLITS).is_none_or(|e| u32::try_from(e).is_err()) {
            return Err(bad_arg(OP, format!("positions up to {end} exceed a u32")));
        }
        let plan = Plan::new(a).ok_or_else(|| {
            unavailable(self.dev.name(), format!("attention: head_dim {} above {}", a.head_dim, MAXD[2]))
        })?;
        let out_rows = a.tokens * a.n_heads;
        let scratch_len = if plan.splits > 1 { out_rows * plan.splits * (a.head_dim + 2) } else { 0 };
        u32_arg(OP, "size", scratch_len)?;
        self.with_scratch(4 * scratch_len, |scratch| {
            self.launch_attention(a, &plan, scratch, [q, k, v, cache_k, cache_v], out)
        })
    }

    /// The attention kernel (and the combine after a split) with the partials in `scratch`.
    fn launch_attention(
        &self,
        a: &AttentionArgs,
        plan: &Plan,
        scratch: u64,
        [q, k, v, cache_k, cache_v]: [&CudaBuf<D::Mem>; 5],
        out: &mut CudaBuf<D::Mem>,
    ) -> Result<()> {
        const OP: &str = "attention";
        let (end, out_rows) = (a.pos0 + a.tokens, a.tokens * a.n_heads);
        let group = a.n_heads / a.n_kv_heads;
        let p = AttentionParams {
            q: self.ptr(q),
            k: self.ptr(k),
            v: self.ptr(v),
            cache_k: self.ptr(cache_k),
            cache_v: self.ptr(cache_v),
            out: self.ptr(out),
            scratch,
            tokens: a.tokens as u32,
            n_heads: a.n_heads as u32,
            n_kv_heads: a.n_kv_heads as u32,
            group: group as u32,
            head_dim: a.head_dim as u32,
            pos0: a.pos0 as u32,
            capacity: a.capacity as u32,
            // A window reaching past every position is no window (and keeps it within a u32).
            window: a.window.filter(|&w| w < end).unwrap_or(0) as u32,
            scale: a.scale,
            rows: (a.tokens * group) as u32,
            splits: plan.splits as u32,
            pad: 0,
        };
        let blocks = u32_arg(OP, "size", plan.blocks)?.min(i32::MAX as u32);
        if blocks as usize != plan.blocks {
            return Err(bad_arg(OP, format!("{} blocks exceed the grid", plan.blocks)));
        }
        self.dev.launch(ATTENTION[plan.d][plan.r], Dims::linear(blocks, THREADS), &p)?;
        if plan.splits == 1 {
            return Ok(());
        }
        let rows = out_rows as u32; // within q_len
        let cp = CombineParams {
            scratch,
            out: self.ptr(out),
            rows,
            head_dim: a.head_dim as u32,
            splits: plan.splits as u32,
            pad: 0,
        };
        let gx = rows.min(65535);
        let dims = Dims { grid: [gx, rows.div_ceil(gx), 1], block: [COMBINE_THREADS, 1, 1] };
        self.dev.launch(COMBINE, dims, &cp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(tokens: usize, n_heads: usize, n_kv_heads: usize, head_dim: usize, pos0: usize) -> AttentionArgs {
        AttentionArgs { tokens, n_heads, n_kv_heads, head_dim, pos0, capacity: pos0, window: None, scale: 1.0 }
    }

    #[test]
    fn plans() {
        // Decode at head_dim 512, GQA 8:1: one 8-row tile per KV head, keys split.
        let p = Plan::new(&args(1, 32, 4, 512, 3000)).unwrap();
        assert_eq!((MAXD[p.d], ROWS[p.r], p.splits), (512, 8, 64));
        // GQA 2:1 decode uses 2-row tiles.
        let p = Plan::new(&args(1, 32, 16, 256, 993)).unwrap();
        assert_eq!((MAXD[p.d], ROWS[p.r]), (256, 2));
        // Long prefills do not split.
        assert_eq!(Plan::new(&args(2048, 32, 4, 512, 0)).unwrap().splits, 1);
        assert_eq!(MAXD[Plan::new(&args(3, 6, 3, 10, 9)).unwrap().d], 128);
        assert!(Plan::new(&args(1, 1, 1, 513, 0)).is_none());
    }
}

/// Threads per block of `kv_write` (a grid-stride copy).
const KV_THREADS: u32 = 256;

/// `KvWriteParams` in `attention.cu`.
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
// SAFETY: repr(C), plain numbers, mirrors `KvWriteParams` in attention.cu.
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
        a.check(k.len, v.len, cache_k.len, cache_v.len)?;
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
        self.dev.launch(KV_WRITE, Dims::linear(blocks(len, KV_THREADS), KV_THREADS), &p)
    }
}
