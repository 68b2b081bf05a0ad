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
use crate::op::Op;
use crate::tensor::HostTensor;
use host_fallback as host;
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

/// The host fallback of every op: download the inputs (and the output, whose elements outside
/// the op's range must survive), run the reference op on the host, upload the result. Generic
/// over any backend's memory methods, so a backend that implements only those runs the whole
/// model (docs/BRINGUP.md). The [`Backend`] defaults and [`crate::HostFallback`] call these.
pub(crate) mod host_fallback {
    use super::Backend;
    use crate::args::*;
    use crate::error::Result;
    use crate::reference;

    /// A whole buffer on the host.
    fn get<B: Backend + ?Sized>(b: &B, x: &B::Buf) -> Result<Vec<f32>> {
        let mut host = vec![0.0; b.buf_len(x)];
        b.download(x, 0, &mut host)?;
        Ok(host)
    }

    /// A whole id buffer on the host.
    fn get_ids<B: Backend + ?Sized>(b: &B, ids: &B::Ids) -> Result<Vec<u32>> {
        let mut host = vec![0; b.ids_len(ids)];
        b.download_ids(ids, &mut host)?;
        Ok(host)
    }

    /// `f` on the host copy of `x`, then `x` uploaded back (an op writing `x` in place or into part of it).
    fn update<B: Backend + ?Sized>(b: &B, x: &mut B::Buf, f: impl FnOnce(&mut Vec<f32>) -> Result<()>) -> Result<()> {
        let mut host = get(b, x)?;
        f(&mut host)?;
        b.upload(&host, x)
    }

    pub(crate) fn embed<B: Backend + ?Sized>(
        b: &B,
        a: &EmbedArgs,
        table: &B::Weight,
        ids: &B::Ids,
        out: &mut B::Buf,
    ) -> Result<()> {
        let (table, ids) = (b.host_weight(table)?, get_ids(b, ids)?);
        update(b, out, |out| reference::embed::embed(a, &table, &ids, out))
    }

    pub(crate) fn matmul<B: Backend + ?Sized>(
        b: &B,
        a: &MatmulArgs,
        x: &B::Buf,
        w: &B::Weight,
        out: &mut B::Buf,
    ) -> Result<()> {
        let (x, w) = (get(b, x)?, b.host_weight(w)?);
        update(b, out, |out| reference::matmul::matmul(a, &x, &w, out))
    }

    pub(crate) fn rms_norm<B: Backend + ?Sized>(
        b: &B,
        a: &RmsNormArgs,
        x: &B::Buf,
        w: Option<&B::Weight>,
        out: &mut B::Buf,
    ) -> Result<()> {
        let (x, w) = (get(b, x)?, w.map(|w| b.host_weight(w)).transpose()?);
        update(b, out, |out| reference::norm::rms_norm(a, &x, w.as_ref(), out))
    }

    pub(crate) fn add_rms_norm<B: Backend + ?Sized>(
        b: &B,
        a: &RmsNormArgs,
        x: &B::Buf,
        w: &B::Weight,
        residual: &mut B::Buf,
    ) -> Result<()> {
        let (x, w) = (get(b, x)?, b.host_weight(w)?);
        update(b, residual, |residual| reference::norm::add_rms_norm(a, &x, &w, residual))
    }

    pub(crate) fn layer_norm<B: Backend + ?Sized>(
        b: &B,
        a: &LayerNormArgs,
        x: &B::Buf,
        w: &B::Weight,
        bias: &B::Weight,
        out: &mut B::Buf,
    ) -> Result<()> {
        let (x, w, bias) = (get(b, x)?, b.host_weight(w)?, b.host_weight(bias)?);
        update(b, out, |out| reference::norm::layer_norm(a, &x, &w, &bias, out))
    }

    pub(crate) fn rope<B: Backend + ?Sized>(b: &B, a: &RopeArgs, x: &mut B::Buf) -> Result<()> {
        update(b, x, |x| reference::rope::rope(a, x))
    }

    pub(crate) fn kv_write<B: Backend + ?Sized>(
        b: &B,
        a: &KvWriteArgs,
        k: &B::Buf,
        v: &B::Buf,
        cache_k: &mut B::Buf,
        cache_v: &mut B::Buf,
    ) -> Result<()> {
        let (k, v) = (get(b, k)?, get(b, v)?);
        let (mut ck, mut cv) = (get(b, cache_k)?, get(b, cache_v)?);
        reference::attention::kv_write(a, &k, &v, &mut ck, &mut cv)?;
        b.upload(&ck, cache_k)?;
        b.upload(&cv, cache_v)
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn attention<B: Backend + ?Sized>(
        b: &B,
        a: &AttentionArgs,
        q: &B::Buf,
        k: &B::Buf,
        v: &B::Buf,
        cache_k: &B::Buf,
        cache_v: &B::Buf,
        out: &mut B::Buf,
    ) -> Result<()> {
        let (q, k, v) = (get(b, q)?, get(b, k)?, get(b, v)?);
        let (ck, cv) = (get(b, cache_k)?, get(b, cache_v)?);
        update(b, out, |out| reference::attention::attention(a, &q, &k, &v, &ck, &cv, out))
    }

    pub(crate) fn geglu<B: Backend + ?Sized>(
        b: &B,
        a: &GegluArgs,
        gate: &B::Buf,
        up: &B::Buf,
        out: &mut B::Buf,
    ) -> Result<()> {
        let (gate, up) = (get(b, gate)?, get(b, up)?);
        update(b, out, |out| reference::elementwise::geglu(a, &gate, &up, out))
    }

    pub(crate) fn copy<B: Backend + ?Sized>(b: &B, a: &CopyArgs, src: &B::Buf, dst: &mut B::Buf) -> Result<()> {
        let src = get(b, src)?;
        update(b, dst, |dst| crate::host::copy(a, &src, dst))
    }

    pub(crate) fn softcap<B: Backend + ?Sized>(b: &B, a: &SoftcapArgs, x: &mut B::Buf) -> Result<()> {
        update(b, x, |x| reference::elementwise::softcap(a, x))
    }

    pub(crate) fn scale<B: Backend + ?Sized>(b: &B, a: &ScaleArgs, x: &mut B::Buf) -> Result<()> {
        update(b, x, |x| reference::elementwise::scale(a, x))
    }

    pub(crate) fn add<B: Backend + ?Sized>(b: &B, a: &AddArgs, x: &B::Buf, acc: &mut B::Buf) -> Result<()> {
        let x = get(b, x)?;
        update(b, acc, |acc| reference::elementwise::add(a, &x, acc))
    }

    pub(crate) fn argmax<B: Backend + ?Sized>(b: &B, a: &ArgmaxArgs, x: &B::Buf, out: &mut B::Buf) -> Result<()> {
        let x = get(b, x)?;
        update(b, out, |out| reference::sample::argmax(a, &x, out))
    }

    pub(crate) fn moe_route<B: Backend + ?Sized>(
        b: &B,
        a: &RouteArgs,
        scores: &B::Buf,
        per_expert_scale: &B::Weight,
        ids: &mut B::Ids,
        weights: &mut B::Buf,
    ) -> Result<()> {
        let (scores, scale) = (get(b, scores)?, b.host_weight(per_expert_scale)?);
        let (mut host_ids, mut host_weights) = (get_ids(b, ids)?, get(b, weights)?);
        reference::moe::moe_route(a, &scores, &scale, &mut host_ids, &mut host_weights)?;
        b.upload_ids(&host_ids, ids)?;
        b.upload(&host_weights, weights)
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn moe_experts<B: Backend + ?Sized>(
        b: &B,
        a: &MoeArgs,
        x: &B::Buf,
        gate_up: &B::Weight,
        down: &B::Weight,
        ids: &B::Ids,
        weights: &B::Buf,
        out: &mut B::Buf,
    ) -> Result<()> {
        let (x, ids, weights) = (get(b, x)?, get_ids(b, ids)?, get(b, weights)?);
        let (gate_up, down) = (b.host_weight(gate_up)?, b.host_weight(down)?);
        update(b, out, |out| reference::moe::moe_experts(a, &x, &gate_up, &down, &ids, &weights, out))
    }
}
