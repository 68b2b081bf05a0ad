//! The WGSL backend [`Wgpu`]: every op as a compute shader in `shaders/`, run through wgpu on
//! Vulkan, Metal or DX12 (and on Mesa's lavapipe where there is no GPU, which is how the tests
//! verify it).
//!
//! Weights are uploaded once ([`weights`]); activations, ids and the KV cache are storage
//! buffers that stay on the device. Every op records one or more dispatches into the encoder of
//! the current forward pass ([`device::Gpu`]); nothing runs until a download submits it, so a
//! decode step is one submission and one host sync for the logits. Op parameters are the
//! `#[repr(C)]` structs of each op file, mirrored field for field in the shader.
//!
//! Files: `device` (adapter, encoder, pipeline cache, dispatch, profiler), `shaders` (the WGSL
//! sources), `weights` (upload and chunking), and one file per op family: `elementwise` (scale,
//! add, softcap, geglu, copy), `norm` (rms_norm, add_rms_norm), `rope`, `attention` (attention,
//! kv_write), `matmul` (matvec and tiled matmul), `embed`, `moe` (moe_route, moe_experts).

mod attention;
pub mod check;
pub mod device;
mod elementwise;
mod embed;
mod matmul;
mod moe;
mod norm;
mod rope;
mod sample;
pub mod shaders;
pub mod weights;

pub use device::{adapters, hardware_adapter, Gpu};
pub use weights::GpuWeight;

use crate::args::*;
use crate::backend::{Backend, DeviceStats, OpTimes};
use crate::error::{check_len, Result};
use crate::op::Op;
use crate::tensor::HostTensor;
use std::sync::Arc;

/// A device buffer of `len` 4-byte elements (f32 activations or u32 ids).
pub struct GpuBuf {
    pub(crate) buf: wgpu::Buffer,
    pub(crate) len: usize,
}

/// The WGSL backend on one adapter.
#[derive(Clone)]
pub struct Wgpu {
    gpu: Arc<Gpu>,
}

impl Wgpu {
    /// The backend on the best adapter found (see [`adapters`]).
    pub fn new() -> Result<Self> {
        Self::on_adapter(None)
    }

    /// The backend on adapter `index` of [`adapters`] (the best when `None`).
    pub fn on_adapter(index: Option<usize>) -> Result<Self> {
        Ok(Wgpu { gpu: Arc::new(Gpu::new(index)?) })
    }

    /// The backend on adapter `index`, using subgroup operations only if `allow_subgroups` (and
    /// the adapter has them): the workgroup-memory fallback can be tested on any adapter.
    pub fn with_subgroups(index: Option<usize>, allow_subgroups: bool) -> Result<Self> {
        Ok(Wgpu { gpu: Arc::new(Gpu::with_subgroups(index, allow_subgroups)?) })
    }

    /// The device: its description, limits, counters and profiler.
    pub fn gpu(&self) -> &Gpu {
        &self.gpu
    }

    fn alloc_words(&self, len: usize) -> Result<GpuBuf> {
        let bytes = (len as u64).checked_mul(4).ok_or_else(|| device::unavailable("buffer size overflows"))?;
        Ok(GpuBuf { buf: self.gpu.storage(bytes)?, len })
    }

    fn upload_words(&self, op: &'static str, bytes: &[u8], dst: &GpuBuf) -> Result<()> {
        check_len(op, "dst", dst.len, bytes.len() / 4)?;
        self.gpu.write(bytes, &dst.buf, 0)
    }

    fn download_words(&self, src: &GpuBuf, offset: usize, n: usize) -> Result<Vec<u8>> {
        let end = offset.checked_add(n).ok_or_else(|| device::unavailable("download range overflows"))?;
        check_len("download", "src", src.len, end)?;
        self.gpu.read(&src.buf, 4 * offset as u64, 4 * n as u64)
    }
}

impl Backend for Wgpu {
    type Buf = GpuBuf;
    type Ids = GpuBuf;
    type Weight = GpuWeight;

    fn name(&self) -> &'static str {
        "wgpu"
    }

    /// Every op of the text decoder; the others run through the host fallback.
    fn supports(&self, op: Op) -> bool {
        Op::TEXT_DECODER.contains(&op)
    }

    fn stats(&self) -> DeviceStats {
        self.gpu.stats()
    }

    fn enable_profiling(&self) -> bool {
        self.gpu.enable_profiling()
    }

    fn profile(&self) -> OpTimes {
        self.gpu.profile()
    }

    fn alloc(&self, len: usize) -> Result<GpuBuf> {
        self.alloc_words(len)
    }

    fn alloc_ids(&self, len: usize) -> Result<GpuBuf> {
        self.alloc_words(len)
    }

    fn buf_len(&self, buf: &GpuBuf) -> usize {
        buf.len
    }

    fn ids_len(&self, ids: &GpuBuf) -> usize {
        ids.len
    }

    fn upload(&self, src: &[f32], dst: &mut GpuBuf) -> Result<()> {
        self.upload_words("upload", bytemuck::cast_slice(src), dst)
    }

    fn upload_ids(&self, src: &[u32], dst: &mut GpuBuf) -> Result<()> {
        self.upload_words("upload_ids", bytemuck::cast_slice(src), dst)
    }

    fn download(&self, src: &GpuBuf, offset: usize, dst: &mut [f32]) -> Result<()> {
        let bytes = self.download_words(src, offset, dst.len())?;
        for (d, w) in dst.iter_mut().zip(bytes.chunks_exact(4)) {
            *d = f32::from_le_bytes([w[0], w[1], w[2], w[3]]);
        }
        Ok(())
    }

    fn download_ids(&self, src: &GpuBuf, dst: &mut [u32]) -> Result<()> {
        let bytes = self.download_words(src, 0, dst.len())?;
        for (d, w) in dst.iter_mut().zip(bytes.chunks_exact(4)) {
            *d = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
        }
        Ok(())
    }

    fn weight(&self, t: &HostTensor) -> Result<GpuWeight> {
        weights::upload(&self.gpu, t)
    }

    fn host_weight(&self, w: &GpuWeight) -> Result<HostTensor> {
        Ok(w.host.clone())
    }

    fn embed(&self, a: &EmbedArgs, table: &GpuWeight, ids: &GpuBuf, out: &mut GpuBuf) -> Result<()> {
        embed::embed(&self.gpu, a, table, ids, out)
    }

    fn matmul(&self, a: &MatmulArgs, x: &GpuBuf, w: &GpuWeight, out: &mut GpuBuf) -> Result<()> {
        matmul::matmul(&self.gpu, a, x, w, out)
    }

    fn rms_norm(&self, a: &RmsNormArgs, x: &GpuBuf, w: Option<&GpuWeight>, out: &mut GpuBuf) -> Result<()> {
        norm::rms_norm(&self.gpu, a, x, w, out)
    }

    fn add_rms_norm(&self, a: &RmsNormArgs, x: &GpuBuf, w: &GpuWeight, residual: &mut GpuBuf) -> Result<()> {
        norm::add_rms_norm(&self.gpu, a, x, w, residual)
    }

    fn rope(&self, a: &RopeArgs, x: &mut GpuBuf) -> Result<()> {
        rope::rope(&self.gpu, a, x)
    }

    fn kv_write(
        &self,
        a: &KvWriteArgs,
        k: &GpuBuf,
        v: &GpuBuf,
        cache_k: &mut GpuBuf,
        cache_v: &mut GpuBuf,
    ) -> Result<()> {
        attention::kv_write(&self.gpu, a, k, v, cache_k, cache_v)
    }

    fn attention(
        &self,
        a: &AttentionArgs,
        q: &GpuBuf,
        k: &GpuBuf,
        v: &GpuBuf,
        cache_k: &GpuBuf,
        cache_v: &GpuBuf,
        out: &mut GpuBuf,
    ) -> Result<()> {
        attention::attention(&self.gpu, a, q, k, v, cache_k, cache_v, out)
    }

    fn geglu(&self, a: &GegluArgs, gate: &GpuBuf, up: &GpuBuf, out: &mut GpuBuf) -> Result<()> {
        elementwise::geglu(&self.gpu, a, gate, up, out)
    }

    fn copy(&self, a: &CopyArgs, src: &GpuBuf, dst: &mut GpuBuf) -> Result<()> {
        elementwise::copy(&self.gpu, a, src, dst)
    }

    fn softcap(&self, a: &SoftcapArgs, x: &mut GpuBuf) -> Result<()> {
        elementwise::softcap(&self.gpu, a, x)
    }

    fn scale(&self, a: &ScaleArgs, x: &mut GpuBuf) -> Result<()> {
        elementwise::scale(&self.gpu, a, x)
    }

    fn add(&self, a: &AddArgs, x: &GpuBuf, acc: &mut GpuBuf) -> Result<()> {
        elementwise::add(&self.gpu, a, x, acc)
    }

    fn argmax(&self, a: &ArgmaxArgs, x: &GpuBuf, out: &mut GpuBuf) -> Result<()> {
        sample::argmax(&self.gpu, a, x, out)
    }

    fn moe_route(
        &self,
        a: &RouteArgs,
        scores: &GpuBuf,
        per_expert_scale: &GpuWeight,
        ids: &mut GpuBuf,
        weights: &mut GpuBuf,
    ) -> Result<()> {
        moe::moe_route(&self.gpu, a, scores, per_expert_scale, ids, weights)
    }

    fn moe_experts(
        &self,
        a: &MoeArgs,
        x: &GpuBuf,
        gate_up: &GpuWeight,
        down: &GpuWeight,
        ids: &GpuBuf,
        weights: &GpuBuf,
        out: &mut GpuBuf,
    ) -> Result<()> {
        moe::moe_experts(&self.gpu, a, x, gate_up, down, ids, weights, out)
    }
}
