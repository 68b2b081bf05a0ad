//! The `Backend` trait: device memory, resident weights and one method per op.
//!
//! A forward pass is a fixed sequence of these calls on buffers that stay on the device; only
//! [`Backend::download`] brings data back (the logits). A GPU backend records the ops into a
//! command stream and may run them asynchronously: `download` is the synchronisation point.
//! Every op validates its arguments against the buffer sizes and returns an error, never panics.

use crate::args::*;
use crate::error::Result;
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

/// A compute backend. Implementations: [`crate::cpu::RefCpu`] (scalar reference, the oracle);
/// later the fast CPU, wgpu and CUDA backends.
pub trait Backend: Send + Sync + 'static {
    /// An f32 activation buffer on the device.
    type Buf: Send + Sync;
    /// A u32 buffer on the device (token ids, expert ids).
    type Ids: Send + Sync;
    /// A weight resident on (or, for the CPU, mapped for) the device, in its storage dtype.
    type Weight: Send + Sync;

    /// Short name: "cpu-ref", "cpu", "wgpu", "cuda".
    fn name(&self) -> &'static str;

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

    // ---- ops ----
    /// Embedding gather from a resident table (see [`EmbedArgs`]).
    fn embed(&self, a: &EmbedArgs, table: &Self::Weight, ids: &Self::Ids, out: &mut Self::Buf) -> Result<()>;
    /// Embedding gather from a table that stays in host memory (the PLE table): only the rows of
    /// `ids` are read. The default gathers on the host and uploads the rows.
    fn embed_host(&self, a: &EmbedArgs, table: &HostTensor, ids: &[u32], out: &mut Self::Buf) -> Result<()> {
        let rows = crate::cpu::gather_rows(a, table, ids)?;
        self.upload(&rows, out)
    }
    /// `out = x W^T` (see [`MatmulArgs`]).
    fn matmul(&self, a: &MatmulArgs, x: &Self::Buf, w: &Self::Weight, out: &mut Self::Buf) -> Result<()>;
    /// `out = RMSNorm(x) * w` per row (see [`RmsNormArgs`]).
    fn rms_norm(&self, a: &RmsNormArgs, x: &Self::Buf, w: Option<&Self::Weight>, out: &mut Self::Buf) -> Result<()>;
    /// `residual += RMSNorm(x) * w` per row: a sublayer's post-norm fused with the residual add.
    fn add_rms_norm(&self, a: &RmsNormArgs, x: &Self::Buf, w: &Self::Weight, residual: &mut Self::Buf) -> Result<()>;
    /// Rotary embedding in place (see [`RopeArgs`]).
    fn rope(&self, a: &RopeArgs, x: &mut Self::Buf) -> Result<()>;
    /// Appends keys and values to a layer's cache (see [`KvWriteArgs`]).
    fn kv_write(
        &self,
        a: &KvWriteArgs,
        k: &Self::Buf,
        v: &Self::Buf,
        cache_k: &mut Self::Buf,
        cache_v: &mut Self::Buf,
    ) -> Result<()>;
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
    ) -> Result<()>;
    /// `out = gelu_tanh(gate) * up` (see [`GegluArgs`]).
    fn geglu(&self, a: &GegluArgs, gate: &Self::Buf, up: &Self::Buf, out: &mut Self::Buf) -> Result<()>;
    /// Copies a range of one buffer into another (see [`CopyArgs`]). The default goes through the
    /// host; device backends override it.
    fn copy(&self, a: &CopyArgs, src: &Self::Buf, dst: &mut Self::Buf) -> Result<()> {
        let mut tmp = vec![0.0; a.len];
        self.download(src, a.src_offset, &mut tmp)?;
        let mut whole = vec![0.0; self.buf_len(dst)];
        crate::error::check_len("copy", "dst", whole.len(), a.dst_offset.saturating_add(a.len))?;
        self.download(dst, 0, &mut whole)?;
        whole[a.dst_offset..a.dst_offset + a.len].copy_from_slice(&tmp);
        self.upload(&whole, dst)
    }
    /// `x = cap * tanh(x / cap)` in place.
    fn softcap(&self, a: &SoftcapArgs, x: &mut Self::Buf) -> Result<()>;
    /// `x *= factor` in place.
    fn scale(&self, a: &ScaleArgs, x: &mut Self::Buf) -> Result<()>;
    /// `acc = (acc + x) * scale` in place.
    fn add(&self, a: &AddArgs, x: &Self::Buf, acc: &mut Self::Buf) -> Result<()>;
    /// Greedy choice per row of logits (see [`ArgmaxArgs`]): a decode step then reads back an
    /// id and its log-probability (8 bytes) instead of the vocabulary's logits. The default goes through
    /// the host (what the CPU backends want); device backends override it.
    fn argmax(&self, a: &ArgmaxArgs, x: &Self::Buf, out: &mut Self::Buf) -> Result<()> {
        let n = crate::cpu::argmax::validate(a, self.buf_len(x), self.buf_len(out))?;
        let mut host = vec![0.0; n];
        self.download(x, 0, &mut host)?;
        let mut picked = vec![0.0f32; 2 * a.rows];
        crate::cpu::argmax::argmax(a, &host, &mut picked)?;
        self.upload(&picked, out)
    }
    /// MoE top-k routing from router scores (see [`RouteArgs`]).
    fn moe_route(
        &self,
        a: &RouteArgs,
        scores: &Self::Buf,
        per_expert_scale: &Self::Weight,
        ids: &mut Self::Ids,
        weights: &mut Self::Buf,
    ) -> Result<()>;
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
    ) -> Result<()>;
}
