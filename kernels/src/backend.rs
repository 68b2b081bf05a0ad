//! The `Backend` trait: device memory, resident weights and one method per op.
//!
//! A forward pass is a fixed sequence of these calls on buffers that stay on the device; only
//! [`Backend::download`] brings data back (the logits). A GPU backend records the ops into a
//! command stream and may run them asynchronously: `download` is the synchronisation point.
//! Every op checks its arguments (their `check`, [`crate::args`]) against the buffer sizes and
//! returns an error, never panics.
//!
//! Only the memory methods are required. Every op has a default, the host fallback
//! ([`crate::fallback`]): download the inputs, run the reference, upload the result. A backend
//! overrides the ops it implements and lists them in [`Backend::supports`].

use crate::args::*;
use crate::error::Result;
use crate::fallback::{ops as host, Op};
use crate::tensor::HostTensor;
use std::time::Duration;

/// Work a device backend has recorded since it was created (all zero on the CPU backends, which
/// run each op as it is called).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeviceStats {
    /// Compute dispatches (kernel launches).
    pub dispatches: u64,
    /// Buffer copies (uploads, `copy`, downloads).
    pub copies: u64,
    /// Command buffers submitted.
    pub submits: u64,
    /// Times the host waited for the device.
    pub syncs: u64,
}

/// Device time per op from timestamp queries: `(op, calls, total time)`, slowest first.
pub type OpTimes = Vec<(&'static str, u64, Duration)>;

/// A compute backend: [`crate::reference::RefCpu`] (`cpu-ref`, the scalar reference, the
/// oracle), [`crate::cpu::FastCpu`] (`cpu`), `crate::wgpu::Wgpu` (`wgpu`) and
/// [`crate::cuda::Cuda`] (`cuda`, `cuda-emulated`).
pub trait Backend: Send + Sync + 'static {
    /// An f32 activation buffer on the device.
    type Buf: Send + Sync;
    /// A u32 buffer on the device (token ids, expert ids).
    type Ids: Send + Sync;
    /// A weight resident on (or, for the CPU, mapped for) the device, in its storage dtype.
    type Weight: Send + Sync;

    /// Short name: "cpu-ref", "cpu", "wgpu", "cuda".
    fn name(&self) -> &'static str;

    /// Whether this backend implements `op` itself (ggml's `supports_op`); the others run through
    /// the host fallback. Weight dtypes a backend cannot decode it widens at upload
    /// ([`Backend::weight`]), so every supported op takes every dtype.
    fn supports(&self, op: Op) -> bool {
        let _ = op;
        false
    }
    /// Calls per op that went through the host fallback (see [`crate::fallback::HostFallback`],
    /// which counts them); only ops with calls.
    fn fallback_calls(&self) -> Vec<(Op, u64)> {
        Vec::new()
    }

    // ---- instrumentation (device backends) ----
    /// Dispatches, copies, submissions and host syncs so far.
    fn stats(&self) -> DeviceStats {
        DeviceStats::default()
    }
    /// Starts timing every op on the device; false when the backend cannot (no timestamp queries).
    fn enable_profiling(&self) -> bool {
        false
    }
    /// Device time per op since profiling started.
    fn profile(&self) -> OpTimes {
        Vec::new()
    }

    // ---- memory ----
    /// A zeroed f32 buffer of `len` elements.
    fn alloc(&self, len: usize) -> Result<Self::Buf>;
    /// A zeroed u32 buffer of `len` elements.
    fn alloc_ids(&self, len: usize) -> Result<Self::Ids>;
    /// Elements in a buffer.
    fn buf_len(&self, buf: &Self::Buf) -> usize;
    /// Ids in an id buffer.
    fn ids_len(&self, ids: &Self::Ids) -> usize;
    /// Copies `src` to the start of `dst`.
    fn upload(&self, src: &[f32], dst: &mut Self::Buf) -> Result<()>;
    /// Copies `src` to the start of `dst`.
    fn upload_ids(&self, src: &[u32], dst: &mut Self::Ids) -> Result<()>;
    /// Copies `dst.len()` elements starting at `offset` of `src` to the host, after all queued work.
    fn download(&self, src: &Self::Buf, offset: usize, dst: &mut [f32]) -> Result<()>;
    /// Copies the first `dst.len()` ids of `src` to the host, after all queued work.
    fn download_ids(&self, src: &Self::Ids, dst: &mut [u32]) -> Result<()>;
    /// Makes a weight resident. The CPU keeps the mapped bytes; a GPU uploads them once.
    fn weight(&self, t: &HostTensor) -> Result<Self::Weight>;
    /// The weight as the host fallback reads it: the tensor it was made from (a cheap clone:
    /// the bytes are shared).
    fn host_weight(&self, w: &Self::Weight) -> Result<HostTensor>;

    // ---- ops ----
    /// Embedding gather from a resident table (see [`EmbedArgs`]).
    fn embed(&self, a: &EmbedArgs, table: &Self::Weight, ids: &Self::Ids, out: &mut Self::Buf) -> Result<()> {
        host::embed(self, a, table, ids, out)
    }
    /// Embedding gather from a table that stays in host memory (the PLE table): only the rows of
    /// `ids` are read. The default gathers on the host and uploads the rows.
    fn embed_host(&self, a: &EmbedArgs, table: &HostTensor, ids: &[u32], out: &mut Self::Buf) -> Result<()> {
        let rows = crate::reference::gather_rows(a, table, ids)?;
        self.upload(&rows, out)
    }
    /// `out = x W^T` (see [`MatmulArgs`]).
    fn matmul(&self, a: &MatmulArgs, x: &Self::Buf, w: &Self::Weight, out: &mut Self::Buf) -> Result<()> {
        host::matmul(self, a, x, w, out)
    }
    /// `out = RMSNorm(x) * w` per row (see [`RmsNormArgs`]).
    fn rms_norm(&self, a: &RmsNormArgs, x: &Self::Buf, w: Option<&Self::Weight>, out: &mut Self::Buf) -> Result<()> {
        host::rms_norm(self, a, x, w, out)
    }
    /// `residual += RMSNorm(x) * w` per row: a sublayer's post-norm fused with the residual add.
    fn add_rms_norm(&self, a: &RmsNormArgs, x: &Self::Buf, w: &Self::Weight, residual: &mut Self::Buf) -> Result<()> {
        host::add_rms_norm(self, a, x, w, residual)
    }
    /// `out = LayerNorm(x) * w + b` per row (see [`LayerNormArgs`]).
    fn layer_norm(
        &self,
        a: &LayerNormArgs,
        x: &Self::Buf,
        w: &Self::Weight,
        b: &Self::Weight,
        out: &mut Self::Buf,
    ) -> Result<()> {
        host::layer_norm(self, a, x, w, b, out)
    }
    /// Rotary embedding in place (see [`RopeArgs`]).
    fn rope(&self, a: &RopeArgs, x: &mut Self::Buf) -> Result<()> {
        host::rope(self, a, x)
    }
    /// Appends keys and values to a layer's cache (see [`KvWriteArgs`]).
    fn kv_write(
        &self,
        a: &KvWriteArgs,
        k: &Self::Buf,
        v: &Self::Buf,
        cache_k: &mut Self::Buf,
        cache_v: &mut Self::Buf,
    ) -> Result<()> {
        host::kv_write(self, a, k, v, cache_k, cache_v)
    }
    /// Causal (optionally sliding-window) GQA attention (see [`AttentionArgs`]).
    #[allow(clippy::too_many_arguments)]
    fn attention(
        &self,
        a: &AttentionArgs,
        q: &Self::Buf,
        k: &Self::Buf,
        v: &Self::Buf,
        cache_k: &Self::Buf,
        cache_v: &Self::Buf,
        out: &mut Self::Buf,
    ) -> Result<()> {
        host::attention(self, a, q, k, v, cache_k, cache_v, out)
    }
    /// `out = gelu_tanh(gate) * up` (see [`GegluArgs`]).
    fn geglu(&self, a: &GegluArgs, gate: &Self::Buf, up: &Self::Buf, out: &mut Self::Buf) -> Result<()> {
        host::geglu(self, a, gate, up, out)
    }
    /// Copies a range of one buffer into another (see [`CopyArgs`]).
    fn copy(&self, a: &CopyArgs, src: &Self::Buf, dst: &mut Self::Buf) -> Result<()> {
        host::copy(self, a, src, dst)
    }
    /// `x = cap * tanh(x / cap)` in place.
    fn softcap(&self, a: &SoftcapArgs, x: &mut Self::Buf) -> Result<()> {
        host::softcap(self, a, x)
    }
    /// `x *= factor` in place.
    fn scale(&self, a: &ScaleArgs, x: &mut Self::Buf) -> Result<()> {
        host::scale(self, a, x)
    }
    /// `acc = (acc + x) * scale` in place.
    fn add(&self, a: &AddArgs, x: &Self::Buf, acc: &mut Self::Buf) -> Result<()> {
        host::add(self, a, x, acc)
    }
    /// Greedy choice per row of logits (see [`ArgmaxArgs`]): a decode step then reads back an
    /// id and its log-probability (8 bytes) instead of the vocabulary's logits.
    fn argmax(&self, a: &ArgmaxArgs, x: &Self::Buf, out: &mut Self::Buf) -> Result<()> {
        host::argmax(self, a, x, out)
    }
    /// MoE top-k routing from router scores (see [`RouteArgs`]).
    fn moe_route(
        &self,
        a: &RouteArgs,
        scores: &Self::Buf,
        per_expert_scale: &Self::Weight,
        ids: &mut Self::Ids,
        weights: &mut Self::Buf,
    ) -> Result<()> {
        host::moe_route(self, a, scores, per_expert_scale, ids, weights)
    }
    /// Weighted sum of the selected experts' FFNs (see [`MoeArgs`]).
    #[allow(clippy::too_many_arguments)]
    fn moe_experts(
        &self,
        a: &MoeArgs,
        x: &Self::Buf,
        gate_up: &Self::Weight,
        down: &Self::Weight,
        ids: &Self::Ids,
        weights: &Self::Buf,
        out: &mut Self::Buf,
    ) -> Result<()> {
        host::moe_experts(self, a, x, gate_up, down, ids, weights, out)
    }
}
