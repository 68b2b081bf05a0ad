//! Mixture-of-experts router and expert FFNs on the CUDA device (`kernels/cuda/moe.cu`), with
//! the reference's semantics and argument checks (`reference/moe.rs`: the same validators, on lengths
//! and shapes).
//!
//! `moe_route`: one warp per token computes the softmax, picks the `top_k` experts in the
//! reference's order (probability descending, ties to the lower id) and writes the renormalised,
//! per-expert-scaled weights. Ids and weights stay on the device.
//!
//! `moe_experts`: only the selected experts' rows are read, in two launches over a scratch
//! buffer `h` `[tokens * top_k, inter]`: `moe_gate_up_<dtype>` writes `h[t * top_k + j] =
//! gelu_tanh(g) * u`, then `moe_down_<dtype>` writes `out[t] = sum_j weights[t, j] * down[e]
//! h[t * top_k + j]` (8 lanes per output element, slots summed in a fixed order: deterministic).
//! Each launch is specialised on its own weight's dtype. A prefill (more than one token) is
//! grouped by expert: `moe_sort` orders the routed pairs by expert, `moe_gate_up` and
//! `moe_down_pairs_<dtype>` take them in that order (so consecutive blocks share an expert's
//! rows), and `moe_combine` sums each token's slots in order. Scratch: `h`, then `y`
//! `[tokens * top_k, hidden]`, the order and the counts.
//!
//! Ids live on the device, so the host cannot check them (as in the WGSL backend): a pair whose
//! id is `>= n_experts` is skipped (its expert contributes nothing; nothing is read out of
//! bounds), where the CPU backends fail with [`crate::KernelError::IdOutOfRange`].
//!
//! Versions: route v1, experts v3 (v2: per (token, slot) in pair order; v3: prefill grouped by
//! expert).

use super::device::{u32_arg, Device, Dims, Params};
use super::elementwise::blocks;
use super::kernels::{gather, kernel, per_dtype, some, Kernel, DEVICE_DTYPES};
use super::{Cuda, CudaBuf, CudaWeight};
use crate::args::*;
use crate::error::numel;
use crate::error::{KernelError, Result};
use crate::tensor::DType;

const ROUTE: Kernel = kernel!(Moe, "moe_route");

/// `moe_gate_up_<dtype>`, indexed by the dtype code.
const GATE_UP: [Kernel; DEVICE_DTYPES] = per_dtype!(Moe, "moe_gate_up_");
/// `moe_down_<dtype>`, indexed by the dtype code.
const DOWN: [Kernel; DEVICE_DTYPES] = per_dtype!(Moe, "moe_down_");
/// `moe_down_pairs_<dtype>` (prefill, pairs in expert order), indexed by the dtype code.
const DOWN_PAIRS: [Kernel; DEVICE_DTYPES] = per_dtype!(Moe, "moe_down_pairs_");
const SORT: Kernel = kernel!(Moe, "moe_sort");
const COMBINE: Kernel = kernel!(Moe, "moe_combine");

/// The kernels of `moe.cu`.
pub(super) const KERNELS: &[Kernel] = &gather::<{ 3 + 3 * DEVICE_DTYPES }>(&[
    &[Some(ROUTE), Some(SORT), Some(COMBINE)],
    &some(GATE_UP),
    &some(DOWN),
    &some(DOWN_PAIRS),
]);

/// Threads per block (`MOE_WARPS` warps in moe.cu, one staging buffer each).
const THREADS: u32 = 256;
/// Router threads per block: four tokens.
const ROUTE_THREADS: u32 = 128;

/// `RouteParams` in `moe.cu`.
#[repr(C)]
#[derive(Clone, Copy)]
struct RouteParams {
    scores: u64,
    scale: u64,
    ids: u64,
    weights: u64,
    tokens: u32,
    n_experts: u32,
    top_k: u32,
    pad: u32,
}
// SAFETY: repr(C), plain numbers, mirrors `RouteParams` in moe.cu.
unsafe impl Params for RouteParams {}

/// `MoeParams` in `moe.cu`.
#[repr(C)]
#[derive(Clone, Copy)]
struct MoeParams {
    x: u64,
    w: u64,
    ids: u64,
    weights: u64,
    h: u64,
    out: u64,
    order: u64,
    y: u64,
    tokens: u32,
    top_k: u32,
    hidden: u32,
    inter: u32,
    n_experts: u32,
    pad: u32,
}
// SAFETY: repr(C), plain numbers, mirrors `MoeParams` in moe.cu.
unsafe impl Params for MoeParams {}

/// `SortParams` in `moe.cu`.
#[repr(C)]
#[derive(Clone, Copy)]
struct SortParams {
    ids: u64,
    order: u64,
    slot: u64,
    counts: u64,
    pairs: u32,
    n_experts: u32,
}
// SAFETY: repr(C), plain numbers, mirrors `SortParams` in moe.cu.
unsafe impl Params for SortParams {}

/// Byte offsets of the prefill scratch: `h` at 0, then `y`, `order`, `slot`, `counts`, each
/// 256-byte aligned; and the total.
fn scratch_layout(op: &'static str, a: &MoeArgs, routed: usize) -> Result<[usize; 5]> {
    let align = |n: usize| n.div_ceil(256) * 256;
    let h = align(numel(op, &[routed, a.inter, 4])?);
    let y = h + align(numel(op, &[routed, a.hidden, 4])?);
    let order = y + align(4 * routed);
    let slot = order + align(4 * routed);
    let counts = slot + align(4 * (a.n_experts + 1));
    Ok([h, y, order, slot, counts])
}

/// A launch over `rows` output rows, one warp each (grid-stride past the block limit).
fn row_groups(rows: u64) -> Dims {
    Dims::linear(blocks(rows, THREADS / 32), THREADS)
}

impl<D: Device> Cuda<D> {
    pub(super) fn op_moe_route(
        &self,
        a: &RouteArgs,
        scores: &CudaBuf<D::Mem>,
        per_expert_scale: &CudaWeight<D::Mem>,
        ids: &mut CudaBuf<D::Mem>,
        weights: &mut CudaBuf<D::Mem>,
    ) -> Result<()> {
        const OP: &str = "moe_route";
        a.check(scores.len, &per_expert_scale.shape, ids.len, weights.len)?;
        if a.tokens == 0 {
            return Ok(());
        }
        // 1-D weights are widened to F32 at upload; the kernel reads them as such.
        if per_expert_scale.dtype != DType::F32 {
            return Err(KernelError::DType { op: OP, dtype: per_expert_scale.dtype.name() });
        }
        let p = RouteParams {
            scores: self.ptr(scores),
            scale: self.dev.ptr(&per_expert_scale.mem),
            ids: self.ptr(ids),
            weights: self.ptr(weights),
            tokens: u32_arg(OP, "tokens", a.tokens)?,
            n_experts: u32_arg(OP, "n_experts", a.n_experts)?,
            top_k: u32_arg(OP, "top_k", a.top_k)?,
            pad: 0,
        };
        let dims = Dims::linear(blocks(a.tokens as u64, ROUTE_THREADS / 32), ROUTE_THREADS);
        self.dev.launch(ROUTE, dims, &p)
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn op_moe_experts(
        &self,
        a: &MoeArgs,
        x: &CudaBuf<D::Mem>,
        gate_up: &CudaWeight<D::Mem>,
        down: &CudaWeight<D::Mem>,
        ids: &CudaBuf<D::Mem>,
        weights: &CudaBuf<D::Mem>,
        out: &mut CudaBuf<D::Mem>,
    ) -> Result<()> {
        const OP: &str = "moe_experts";
        let (act_len, routed) = a.check(x.len, &gate_up.shape, &down.shape, ids.len, weights.len, out.len)?;
        if act_len == 0 {
            return Ok(()); // no tokens, or rows of width 0
        }
        let (gate_up_k, down_k) = (GATE_UP[gate_up.kernel_index(OP)?], DOWN[down.kernel_index(OP)?]);
        let h_len = numel(OP, &[routed, a.inter])?;
        // Decode: the pairs as they are. Prefill: grouped by expert (see moe.cu).
        let grouped = a.tokens > 1;
        let [y_at, order_at, slot_at, counts_at, total] = scratch_layout(OP, a, routed)?;
        let bytes = if grouped { total } else { y_at };
        self.with_scratch(bytes, |h| {
            let mut p = MoeParams {
                x: self.ptr(x),
                w: self.dev.ptr(&gate_up.mem),
                ids: self.ptr(ids),
                weights: self.ptr(weights),
                h,
                out: self.ptr(out),
                tokens: u32_arg(OP, "tokens", a.tokens)?,
                top_k: u32_arg(OP, "top_k", a.top_k)?,
                hidden: u32_arg(OP, "hidden", a.hidden)?,
                inter: u32_arg(OP, "inter", a.inter)?,
                n_experts: u32_arg(OP, "n_experts", a.n_experts)?,
                pad: 0,
                order: 0,
                y: 0,
            };
            if !grouped {
                if h_len > 0 {
                    self.dev.launch(gate_up_k, row_groups(h_len as u64), &p)?;
                }
                p.w = self.dev.ptr(&down.mem);
                return self.dev.launch(down_k, row_groups(act_len as u64), &p);
            }
            let at = |offset: usize| h + offset as u64;
            let sort = SortParams {
                ids: p.ids,
                order: at(order_at),
                slot: at(slot_at),
                counts: at(counts_at),
                pairs: u32_arg(OP, "routed pairs", routed)?,
                n_experts: p.n_experts,
            };
            self.dev.launch(SORT, Dims::linear(1, THREADS), &sort)?;
            (p.order, p.y) = (sort.order, at(y_at));
            if h_len > 0 {
                self.dev.launch(gate_up_k, row_groups(h_len as u64), &p)?;
            }
            p.w = self.dev.ptr(&down.mem);
            let down_pairs = DOWN_PAIRS[down.kernel_index(OP)?];
            self.dev.launch(down_pairs, row_groups(numel(OP, &[routed, a.hidden])? as u64), &p)?;
            self.dev.launch(COMBINE, Dims::linear(blocks(act_len as u64, THREADS), THREADS), &p)
        })
    }
}
