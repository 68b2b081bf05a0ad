//! Mixture-of-experts router and expert FFNs on the device, with the reference's semantics and
//! argument checks (`reference/moe.rs`: the same validators, on lengths and shapes).
//!
//! `moe_route` (`shaders/moe/moe_route.wgsl`): one workgroup per token computes the softmax, picks
//! the `top_k` experts in the reference's order (probability descending, ties to the lower id)
//! and writes the renormalised, per-expert-scaled weights. Ids and weights stay on the device.
//!
//! `moe_experts` (`shaders/moe/moe_experts.wgsl`): only the selected experts' rows are read. Per
//! batch of tokens, one dispatch per chunk of `gate_up` writes `act[t * top_k + j] =
//! gelu_tanh(g) * u` into a scratch buffer, then one dispatch per chunk of `down` writes (first
//! chunk) or adds (later chunks) `sum_j weights[t, j] * down[e] act[t * top_k + j]` into `out`.
//! Each pass binds one weight (its own dtype), so gate_up and down may differ in dtype. Expert
//! weights are split into chunks of whole experts ([`GpuWeight::chunks`]); a pair is handled by
//! the dispatch of the chunk holding its expert and skipped by the others.
//!
//! Ids live on the device, so the host cannot check them: a pair whose id is `>= n_experts`
//! lies in no chunk and is skipped (its expert contributes nothing; nothing is read out of
//! bounds), where the CPU backends fail with [`crate::KernelError::IdOutOfRange`].
//!
//! Versions: v1 (one workgroup per output element; a batch of tokens is as large as the scratch
//! binding allows).

use super::device::{Gpu, PipelineKey};
use super::elementwise::u32_len;
use super::shaders::Shader;
use super::{GpuBuf, GpuWeight};
use crate::args::{MoeArgs, RouteArgs};
use crate::error::{bad_arg, numel};
use crate::error::{KernelError, Result};
use crate::tensor::DType;

/// Mirrors `Params` in `moe_route.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct RouteParams {
    tokens: u32,
    n_experts: u32,
    top_k: u32,
    _pad: u32,
}

/// Mirrors `Params` in `moe_experts.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct ExpertParams {
    /// Tokens in the batch.
    tokens: u32,
    /// The batch's first token.
    t0: u32,
    top_k: u32,
    /// Output rows per pair (gate_up pass: `inter`) or per token (down pass: `hidden`).
    rows: u32,
    /// Dot product length (gate_up: `hidden`; down: `inter`).
    len: u32,
    /// The bound chunk's first expert and expert count.
    e0: u32,
    e_count: u32,
    /// Down pass: 0 writes `out`, 1 adds to it.
    accumulate: u32,
}

fn as_u32(op: &'static str, what: &str, v: usize) -> Result<u32> {
    u32::try_from(v).map_err(|_| bad_arg(op, format!("{what} {v} exceeds a u32 index")))
}

/// The shader dtype code of `w`, or [`KernelError::DType`] for a dtype no shader decodes.
fn code(op: &'static str, w: &GpuWeight) -> Result<u32> {
    w.dtype.kernel_code().ok_or(KernelError::DType { op, dtype: w.dtype.name() })
}

/// Top-k routing of each token's router scores.
pub(super) fn moe_route(
    gpu: &Gpu,
    a: &RouteArgs,
    scores: &GpuBuf,
    per_expert_scale: &GpuWeight,
    ids: &mut GpuBuf,
    weights: &mut GpuBuf,
) -> Result<()> {
    const OP: &str = "moe_route";
    let out_len = a.check(scores.len, &per_expert_scale.shape, ids.len, weights.len)?;
    u32_len(OP, numel(OP, &[a.tokens, a.n_experts])?)?;
    u32_len(OP, out_len)?;
    if a.tokens == 0 {
        return Ok(());
    }
    // 1-D weights are widened to F32 at upload; the shader reads them as such.
    if per_expert_scale.dtype != DType::F32 {
        return Err(KernelError::DType { op: OP, dtype: per_expert_scale.dtype.name() });
    }
    let scale = per_expert_scale.single(OP)?;
    let params = RouteParams { tokens: a.tokens as u32, n_experts: a.n_experts as u32, top_k: a.top_k as u32, _pad: 0 };
    let key = PipelineKey { shader: Shader::MoeRoute, entry: OP, constants: vec![] };
    gpu.dispatch(&key, OP, &params, &[&scores.buf, scale, &ids.buf, &weights.buf], gpu.grid(a.tokens)?)
}

/// Weighted sum of each token's selected experts' FFNs into `out`.
#[allow(clippy::too_many_arguments)]
pub(super) fn moe_experts(
    gpu: &Gpu,
    a: &MoeArgs,
    x: &GpuBuf,
    gate_up: &GpuWeight,
    down: &GpuWeight,
    ids: &GpuBuf,
    weights: &GpuBuf,
    out: &mut GpuBuf,
) -> Result<()> {
    const OP: &str = "moe_experts";
    let (act_len, routed) = a.check(x.len, &gate_up.shape, &down.shape, ids.len, weights.len, out.len)?;
    if act_len == 0 {
        return Ok(()); // no tokens, or rows of width 0
    }
    u32_len(OP, act_len)?;
    u32_len(OP, routed)?;
    let (gu_code, down_code) = (code(OP, gate_up)?, code(OP, down)?);

    // Tokens per batch: as many as the scratch `act` binding holds (inter 0 needs no scratch).
    let per_token = numel(OP, &[a.top_k, a.inter, 4])?.max(1);
    let batch = (gpu.max_binding() as usize / per_token).clamp(1, a.tokens);
    let act = gpu.storage(numel(OP, &[batch, per_token])? as u64)?;

    let (top_k, hidden, inter) = (a.top_k as u32, a.hidden as u32, as_u32(OP, "inter", a.inter)?);
    let gate_up_key =
        PipelineKey { shader: Shader::MoeExperts, entry: "moe_experts_gate_up", constants: vec![("DTYPE", gu_code)] };
    let down_key =
        PipelineKey { shader: Shader::MoeExperts, entry: "moe_experts_down", constants: vec![("DTYPE", down_code)] };
    for t0 in (0..a.tokens).step_by(batch) {
        let n = batch.min(a.tokens - t0);
        let at = |rows: u32, len: u32, chunk: &super::weights::Chunk, accumulate: bool| -> Result<ExpertParams> {
            Ok(ExpertParams {
                tokens: n as u32,
                t0: t0 as u32,
                top_k,
                rows,
                len,
                e0: as_u32(OP, "expert", chunk.row0)?,
                e_count: as_u32(OP, "experts", chunk.rows)?,
                accumulate: accumulate as u32,
            })
        };
        let gate_up_groups = gpu.grid(numel(OP, &[n, a.top_k, a.inter])?)?;
        for c in &gate_up.chunks {
            let params = at(inter, hidden, c, false)?;
            let bufs = [&x.buf, &ids.buf, &c.buf, &act];
            gpu.dispatch(&gate_up_key, "moe_experts_gate_up", &params, &bufs, gate_up_groups)?;
        }
        let down_groups = gpu.grid(n * a.hidden)?;
        for (i, c) in down.chunks.iter().enumerate() {
            let params = at(hidden, inter, c, i > 0)?;
            let bufs = [&act, &ids.buf, &c.buf, &out.buf, &weights.buf];
            gpu.dispatch(&down_key, "moe_experts_down", &params, &bufs, down_groups)?;
        }
    }
    Ok(())
}
