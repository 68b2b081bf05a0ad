//! The CPU reference backend [`RefCpu`]: plain scalar Rust, f32 accumulation, one small function
//! per op. It is the oracle every other backend (SIMD CPU, WGSL, CUDA) is tested against, so it is
//! written for clarity, not speed.
//!
//! Buffers are `Vec<f32>` / `Vec<u32>` in host memory; weights are the [`HostTensor`]s themselves
//! (mapped bytes in their storage dtype, widened to f32 one row at a time).
//!
//! The only concession to speed: `rayon` parallelism over independent output rows / heads in
//! matmul, attention and the MoE experts. Every output element is still computed by the same
//! sequential loop, so the results are bit-identical to a single-threaded run.
//!
//! Each op first runs its arguments' `check` (lengths and weight shapes, [`crate::args`]) and
//! returns a [`crate::KernelError`] on any mismatch; the files of this module hold one op family
//! each, named as on every backend.

pub(crate) mod attention;
pub(crate) mod elementwise;
pub(crate) mod embed;
pub(crate) mod matmul;
pub(crate) mod moe;
pub(crate) mod norm;
pub(crate) mod rope;
pub mod sample;

pub use embed::gather_rows;

use crate::args::*;
use crate::backend::Backend;
use crate::error::Result;
use crate::host;
use crate::op::Op;
use crate::tensor::HostTensor;

/// The scalar CPU reference backend.
#[derive(Clone, Copy, Debug, Default)]
pub struct RefCpu;

impl RefCpu {
    /// The reference backend (it holds no state).
    pub fn new() -> Self {
        RefCpu
    }
}

impl Backend for RefCpu {
    crate::host::memory_types!();

    fn name(&self) -> &'static str {
        "cpu-ref"
    }

    /// Every op: the reference is what the host fallback runs.
    fn supports(&self, _: Op) -> bool {
        true
    }

    crate::host::memory_methods!();

    fn embed(&self, a: &EmbedArgs, table: &HostTensor, ids: &Vec<u32>, out: &mut Vec<f32>) -> Result<()> {
        embed::embed(a, table, ids, out)
    }

    fn matmul(&self, a: &MatmulArgs, x: &Vec<f32>, w: &HostTensor, out: &mut Vec<f32>) -> Result<()> {
        matmul::matmul(a, x, w, out)
    }

    fn rms_norm(&self, a: &RmsNormArgs, x: &Vec<f32>, w: Option<&HostTensor>, out: &mut Vec<f32>) -> Result<()> {
        norm::rms_norm(a, x, w, out)
    }

    fn add_rms_norm(&self, a: &RmsNormArgs, x: &Vec<f32>, w: &HostTensor, residual: &mut Vec<f32>) -> Result<()> {
        norm::add_rms_norm(a, x, w, residual)
    }

    fn layer_norm(
        &self,
        a: &LayerNormArgs,
        x: &Vec<f32>,
        w: &HostTensor,
        b: &HostTensor,
        out: &mut Vec<f32>,
    ) -> Result<()> {
        norm::layer_norm(a, x, w, b, out)
    }

    fn rope(&self, a: &RopeArgs, x: &mut Vec<f32>) -> Result<()> {
        rope::rope(a, x)
    }

    fn kv_write(
        &self,
        a: &KvWriteArgs,
        k: &Vec<f32>,
        v: &Vec<f32>,
        cache_k: &mut Vec<f32>,
        cache_v: &mut Vec<f32>,
    ) -> Result<()> {
        attention::kv_write(a, k, v, cache_k, cache_v)
    }

    fn attention(
        &self,
        a: &AttentionArgs,
        q: &Vec<f32>,
        k: &Vec<f32>,
        v: &Vec<f32>,
        cache_k: &Vec<f32>,
        cache_v: &Vec<f32>,
        out: &mut Vec<f32>,
    ) -> Result<()> {
        attention::attention(a, q, k, v, cache_k, cache_v, out)
    }

    fn geglu(&self, a: &GegluArgs, gate: &Vec<f32>, up: &Vec<f32>, out: &mut Vec<f32>) -> Result<()> {
        elementwise::geglu(a, gate, up, out)
    }

    fn copy(&self, a: &CopyArgs, src: &Vec<f32>, dst: &mut Vec<f32>) -> Result<()> {
        host::copy(a, src, dst)
    }

    fn softcap(&self, a: &SoftcapArgs, x: &mut Vec<f32>) -> Result<()> {
        elementwise::softcap(a, x)
    }

    fn scale(&self, a: &ScaleArgs, x: &mut Vec<f32>) -> Result<()> {
        elementwise::scale(a, x)
    }

    fn add(&self, a: &AddArgs, x: &Vec<f32>, acc: &mut Vec<f32>) -> Result<()> {
        elementwise::add(a, x, acc)
    }

    fn argmax(&self, a: &ArgmaxArgs, x: &Vec<f32>, out: &mut Vec<f32>) -> Result<()> {
        sample::argmax(a, x, out)
    }

    fn moe_route(
        &self,
        a: &RouteArgs,
        scores: &Vec<f32>,
        per_expert_scale: &HostTensor,
        ids: &mut Vec<u32>,
        weights: &mut Vec<f32>,
    ) -> Result<()> {
        moe::moe_route(a, scores, per_expert_scale, ids, weights)
    }

    fn moe_experts(
        &self,
        a: &MoeArgs,
        x: &Vec<f32>,
        gate_up: &HostTensor,
        down: &HostTensor,
        ids: &Vec<u32>,
        weights: &Vec<f32>,
        out: &mut Vec<f32>,
    ) -> Result<()> {
        moe::moe_experts(a, x, gate_up, down, ids, weights, out)
    }
}
