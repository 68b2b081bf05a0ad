//! [`HostFallback`]: a backend whose ops run natively where it supports them and is not forced
//! otherwise, and through the counted host fallback everywhere else.

use crate::args::*;
use crate::backend::host_fallback as ops;
use crate::backend::{Backend, DeviceStats, OpTimes};
use crate::error::Result;
use crate::op::{Op, OpSet};
use crate::tensor::HostTensor;
use std::sync::atomic::{AtomicU64, Ordering};

/// Backend `B` with the host fallback: see the [module](super).
pub struct HostFallback<B> {
    inner: B,
    forced: OpSet,
    calls: [AtomicU64; Op::ALL.len()],
}

impl<B: Backend> HostFallback<B> {
    /// `inner`, with the ops of `forced` always through the fallback.
    pub fn new(inner: B, forced: OpSet) -> Self {
        HostFallback { inner, forced, calls: std::array::from_fn(|_| AtomicU64::new(0)) }
    }

    /// The wrapped backend.
    pub fn inner(&self) -> &B {
        &self.inner
    }

    /// Whether `op` runs on the backend's own kernel; counts a fallback call when not.
    fn native(&self, op: Op) -> bool {
        if self.supports(op) {
            return true;
        }
        self.calls[op as usize].fetch_add(1, Ordering::Relaxed);
        false
    }
}

impl<B: Backend> Backend for HostFallback<B> {
    type Buf = B::Buf;
    type Ids = B::Ids;
    type Weight = B::Weight;

    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn supports(&self, op: Op) -> bool {
        !self.forced.contains(op) && self.inner.supports(op)
    }

    fn fallback_calls(&self) -> Vec<(Op, u64)> {
        let counted = Op::ALL.into_iter().map(|op| (op, self.calls[op as usize].load(Ordering::Relaxed)));
        counted.filter(|&(_, n)| n > 0).collect()
    }

    fn stats(&self) -> DeviceStats {
        self.inner.stats()
    }

    fn enable_profiling(&self) -> bool {
        self.inner.enable_profiling()
    }

    fn profile(&self) -> OpTimes {
        self.inner.profile()
    }

    fn alloc(&self, len: usize) -> Result<B::Buf> {
        self.inner.alloc(len)
    }

    fn alloc_ids(&self, len: usize) -> Result<B::Ids> {
        self.inner.alloc_ids(len)
    }

    fn buf_len(&self, buf: &B::Buf) -> usize {
        self.inner.buf_len(buf)
    }

    fn ids_len(&self, ids: &B::Ids) -> usize {
        self.inner.ids_len(ids)
    }

    fn upload(&self, src: &[f32], dst: &mut B::Buf) -> Result<()> {
        self.inner.upload(src, dst)
    }

    fn upload_ids(&self, src: &[u32], dst: &mut B::Ids) -> Result<()> {
        self.inner.upload_ids(src, dst)
    }

    fn download(&self, src: &B::Buf, offset: usize, dst: &mut [f32]) -> Result<()> {
        self.inner.download(src, offset, dst)
    }

    fn download_ids(&self, src: &B::Ids, dst: &mut [u32]) -> Result<()> {
        self.inner.download_ids(src, dst)
    }

    fn weight(&self, t: &HostTensor) -> Result<B::Weight> {
        self.inner.weight(t)
    }

    fn host_weight(&self, w: &B::Weight) -> Result<HostTensor> {
        self.inner.host_weight(w)
    }

    fn embed(&self, a: &EmbedArgs, table: &B::Weight, ids: &B::Ids, out: &mut B::Buf) -> Result<()> {
        match self.native(Op::Embed) {
            true => self.inner.embed(a, table, ids, out),
            false => ops::embed(&self.inner, a, table, ids, out),
        }
    }

    fn embed_host(&self, a: &EmbedArgs, table: &HostTensor, ids: &[u32], out: &mut B::Buf) -> Result<()> {
        self.inner.embed_host(a, table, ids, out)
    }

    fn matmul(&self, a: &MatmulArgs, x: &B::Buf, w: &B::Weight, out: &mut B::Buf) -> Result<()> {
        match self.native(Op::Matmul) {
            true => self.inner.matmul(a, x, w, out),
            false => ops::matmul(&self.inner, a, x, w, out),
        }
    }

    fn rms_norm(&self, a: &RmsNormArgs, x: &B::Buf, w: Option<&B::Weight>, out: &mut B::Buf) -> Result<()> {
        match self.native(Op::RmsNorm) {
            true => self.inner.rms_norm(a, x, w, out),
            false => ops::rms_norm(&self.inner, a, x, w, out),
        }
    }

    fn add_rms_norm(&self, a: &RmsNormArgs, x: &B::Buf, w: &B::Weight, residual: &mut B::Buf) -> Result<()> {
        match self.native(Op::AddRmsNorm) {
            true => self.inner.add_rms_norm(a, x, w, residual),
            false => ops::add_rms_norm(&self.inner, a, x, w, residual),
        }
    }

    fn layer_norm(&self, a: &LayerNormArgs, x: &B::Buf, w: &B::Weight, b: &B::Weight, out: &mut B::Buf) -> Result<()> {
        match self.native(Op::LayerNorm) {
            true => self.inner.layer_norm(a, x, w, b, out),
            false => ops::layer_norm(&self.inner, a, x, w, b, out),
        }
    }

    fn rope(&self, a: &RopeArgs, x: &mut B::Buf) -> Result<()> {
        match self.native(Op::Rope) {
            true => self.inner.rope(a, x),
            false => ops::rope(&self.inner, a, x),
        }
    }

    fn kv_write(
        &self,
        a: &KvWriteArgs,
        k: &B::Buf,
        v: &B::Buf,
        cache_k: &mut B::Buf,
        cache_v: &mut B::Buf,
    ) -> Result<()> {
        match self.native(Op::KvWrite) {
            true => self.inner.kv_write(a, k, v, cache_k, cache_v),
            false => ops::kv_write(&self.inner, a, k, v, cache_k, cache_v),
        }
    }

    fn attention(
        &self,
        a: &AttentionArgs,
        q: &B::Buf,
        k: &B::Buf,
        v: &B::Buf,
        cache_k: &B::Buf,
        cache_v: &B::Buf,
        out: &mut B::Buf,
    ) -> Result<()> {
        match self.native(Op::Attention) {
            true => self.inner.attention(a, q, k, v, cache_k, cache_v, out),
            false => ops::attention(&self.inner, a, q, k, v, cache_k, cache_v, out),
        }
    }

    fn geglu(&self, a: &GegluArgs, gate: &B::Buf, up: &B::Buf, out: &mut B::Buf) -> Result<()> {
        match self.native(Op::Geglu) {
            true => self.inner.geglu(a, gate, up, out),
            false => ops::geglu(&self.inner, a, gate, up, out),
        }
    }

    fn copy(&self, a: &CopyArgs, src: &B::Buf, dst: &mut B::Buf) -> Result<()> {
        match self.native(Op::Copy) {
            true => self.inner.copy(a, src, dst),
            false => ops::copy(&self.inner, a, src, dst),
        }
    }

    fn softcap(&self, a: &SoftcapArgs, x: &mut B::Buf) -> Result<()> {
        match self.native(Op::Softcap) {
            true => self.inner.softcap(a, x),
            false => ops::softcap(&self.inner, a, x),
        }
    }

    fn scale(&self, a: &ScaleArgs, x: &mut B::Buf) -> Result<()> {
        match self.native(Op::Scale) {
            true => self.inner.scale(a, x),
            false => ops::scale(&self.inner, a, x),
        }
    }

    fn add(&self, a: &AddArgs, x: &B::Buf, acc: &mut B::Buf) -> Result<()> {
        match self.native(Op::Add) {
            true => self.inner.add(a, x, acc),
            false => ops::add(&self.inner, a, x, acc),
        }
    }

    fn argmax(&self, a: &ArgmaxArgs, x: &B::Buf, out: &mut B::Buf) -> Result<()> {
        match self.native(Op::Argmax) {
            true => self.inner.argmax(a, x, out),
            false => ops::argmax(&self.inner, a, x, out),
        }
    }

    fn moe_route(
        &self,
        a: &RouteArgs,
        scores: &B::Buf,
        per_expert_scale: &B::Weight,
        ids: &mut B::Ids,
        weights: &mut B::Buf,
    ) -> Result<()> {
        match self.native(Op::MoeRoute) {
            true => self.inner.moe_route(a, scores, per_expert_scale, ids, weights),
            false => ops::moe_route(&self.inner, a, scores, per_expert_scale, ids, weights),
        }
    }

    fn moe_experts(
        &self,
        a: &MoeArgs,
        x: &B::Buf,
        gate_up: &B::Weight,
        down: &B::Weight,
        ids: &B::Ids,
        weights: &B::Buf,
        out: &mut B::Buf,
    ) -> Result<()> {
        match self.native(Op::MoeExperts) {
            true => self.inner.moe_experts(a, x, gate_up, down, ids, weights, out),
            false => ops::moe_experts(&self.inner, a, x, gate_up, down, ids, weights, out),
        }
    }
}
