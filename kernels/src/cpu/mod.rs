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
//! Each op validates its arguments against the buffer lengths and weight shapes first and returns
//! a [`KernelError`] on any mismatch; the files of this module hold one op family each.

pub mod argmax;
pub(crate) mod attention;
mod elementwise;
pub(crate) mod embed;
pub(crate) mod matmul;
pub(crate) mod moe;
mod norm;
pub(crate) mod rope;

pub use embed::gather_rows;

use crate::args::*;
use crate::backend::Backend;
use crate::error::{check_len, KernelError, Result};
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

/// The product of `dims` (an element count), or a [`KernelError::Shape`] if it overflows.
pub(crate) fn numel(op: &'static str, dims: &[usize]) -> Result<usize> {
    dims.iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| KernelError::Shape { op, what: format!("size {dims:?} overflows") })
}

/// Fails with [`KernelError::Shape`] unless a weight's shape `have` is exactly `want` (shared
/// by every backend: the device backends know their weights' shapes, not their bytes).
pub(crate) fn check_shape(op: &'static str, what: &str, have: &[usize], want: &[usize]) -> Result<()> {
    if have != want {
        return Err(KernelError::Shape { op, what: format!("{what} has shape {have:?}, needs {want:?}") });
    }
    Ok(())
}

/// A [`KernelError::Shape`] for an argument that is invalid on its own (not a buffer size).
pub(crate) fn bad_arg(op: &'static str, what: String) -> KernelError {
    KernelError::Shape { op, what }
}

impl Backend for RefCpu {
    type Buf = Vec<f32>;
    type Ids = Vec<u32>;
    type Weight = HostTensor;

    fn name(&self) -> &'static str {
        "cpu-ref"
    }

    fn alloc(&self, len: usize) -> Result<Vec<f32>> {
        Ok(vec![0.0; len])
    }

    fn alloc_ids(&self, len: usize) -> Result<Vec<u32>> {
        Ok(vec![0; len])
    }

    fn buf_len(&self, buf: &Vec<f32>) -> usize {
        buf.len()
    }

    fn upload(&self, src: &[f32], dst: &mut Vec<f32>) -> Result<()> {
        check_len("upload", "dst", dst.len(), src.len())?;
        dst[..src.len()].copy_from_slice(src);
        Ok(())
    }

    fn upload_ids(&self, src: &[u32], dst: &mut Vec<u32>) -> Result<()> {
        check_len("upload_ids", "dst", dst.len(), src.len())?;
        dst[..src.len()].copy_from_slice(src);
        Ok(())
    }

    fn download(&self, src: &Vec<f32>, offset: usize, dst: &mut [f32]) -> Result<()> {
        let end = offset
            .checked_add(dst.len())
            .ok_or_else(|| bad_arg("download", format!("offset {offset} + {} overflows", dst.len())))?;
        check_len("download", "src", src.len(), end)?;
        dst.copy_from_slice(&src[offset..end]);
        Ok(())
    }

    fn download_ids(&self, src: &Vec<u32>, dst: &mut [u32]) -> Result<()> {
        check_len("download_ids", "src", src.len(), dst.len())?;
        dst.copy_from_slice(&src[..dst.len()]);
        Ok(())
    }

    fn weight(&self, t: &HostTensor) -> Result<HostTensor> {
        Ok(t.clone())
    }

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
        elementwise::copy(a, src, dst)
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
