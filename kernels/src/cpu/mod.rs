//! The fast CPU backend [`FastCpu`]: SIMD kernels for every op, runtime-dispatched on the
//! instruction set ([`Isa`]: AVX-512, AVX2, or portable auto-vectorised Rust), rayon over rows,
//! heads and key blocks for large calls, per-thread scratch instead of per-call allocation.
//!
//! Same buffers, weights and semantics as the reference [`crate::reference::RefCpu`] (`Vec<f32>`
//! buffers, the mapped [`HostTensor`]s as weights, never copied whole), and the same argument
//! checks and errors; results differ from it only by f32 rounding (summation order, fused
//! multiply-adds, the vectorised `exp` / `tanh`), bounded in `kernels/tests/ops_fast.rs`.
//!
//! Files: one per op family, named as on every backend: `attention` (decode and flash-style
//! prefill, KV write), `elementwise` (GeGLU, softcap, scale, add), `embed`, `matmul` (linear
//! layers, every weight dtype), `moe` (router and experts), `norm` (RMSNorm), `rope`; plus `isa`
//! (levels and detection) and `simd` (the dispatcher, vectorisable `exp` / `tanh`, scratch).

mod attention;
mod elementwise;
mod embed;
pub mod isa;
pub(crate) mod matmul;
mod moe;
mod norm;
mod rope;
mod simd;

use crate::Precision;
pub use isa::Isa;

use crate::args::*;
use crate::backend::Backend;
use crate::error::numel;
use crate::error::{check_len, Result};
use crate::host;
use crate::op::Op;
use crate::tensor::HostTensor;

/// The fast CPU backend.
#[derive(Clone, Copy, Debug)]
pub struct FastCpu {
    isa: Isa,
    act: Precision,
}

impl FastCpu {
    /// The backend at the best instruction set of this CPU (detected once, here).
    pub fn new(act: Precision) -> Self {
        FastCpu { isa: Isa::detect(), act }
    }

    /// The backend at instruction set `isa` (tests run every level). A level above what this CPU
    /// supports is clamped to [`Isa::detect()`]: every kernel relies on the CPU having the
    /// features of the level it runs, so no `FastCpu` ever holds a higher one.
    pub fn with_isa(isa: Isa, act: Precision) -> Self {
        FastCpu { isa: isa.min(Isa::detect()), act }
    }

    /// The backend at level `isa` when given (`--cpu-isa`: measure or test a lower level on this
    /// machine), else at the best this CPU supports. A level above that is an error, not a clamp:
    /// the user asked for kernels this CPU cannot run.
    pub fn at(isa: Option<Isa>, act: Precision) -> crate::Result<Self> {
        let best = Isa::detect();
        match isa {
            Some(isa) if isa > best => Err(crate::KernelError::Unavailable {
                backend: "cpu",
                why: format!("level {isa} asked for, this CPU supports up to {best}"),
            }),
            isa => Ok(FastCpu { isa: isa.unwrap_or(best), act }),
        }
    }

    /// The instruction set the kernels use.
    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// How matrix products take their activations.
    pub fn activations(&self) -> Precision {
        self.act
    }
}

impl Backend for FastCpu {
    crate::host::memory_types!();

    fn name(&self) -> &'static str {
        "cpu"
    }

    /// Every op but `argmax`, which reads host logits either way: its fallback is the
    /// reference's scan with no copy to spare.
    fn supports(&self, op: Op) -> bool {
        use Op::*;
        matches!(
            op,
            Embed
                | Matmul
                | RmsNorm
                | AddRmsNorm
                | LayerNorm
                | Rope
                | KvWrite
                | Attention
                | Geglu
                | Softcap
                | Scale
                | Add
                | Copy
                | MoeRoute
                | MoeExperts
        )
    }

    crate::host::memory_methods!();

    fn embed(&self, a: &EmbedArgs, table: &HostTensor, ids: &Vec<u32>, out: &mut Vec<f32>) -> Result<()> {
        embed::embed(self.isa, a, table, ids, out)
    }

    fn embed_host(&self, a: &EmbedArgs, table: &HostTensor, ids: &[u32], out: &mut Vec<f32>) -> Result<()> {
        // The same errors as the trait's default (a host gather, then an upload).
        a.check(table.shape(), ids)?;
        check_len("upload", "dst", out.len(), numel("embed", &[a.tokens, a.width])?)?;
        embed::embed(self.isa, a, table, ids, out)
    }

    fn matmul(&self, a: &MatmulArgs, x: &Vec<f32>, w: &HostTensor, out: &mut Vec<f32>) -> Result<()> {
        let (x_len, out_len) = a.check(x.len(), w.shape(), out.len())?;
        if a.k == 0 {
            out[..out_len].fill(0.0); // an empty dot product is 0 (and `linear` sees no rows)
            return Ok(());
        }
        matmul::linear(self.isa, self.act, w, a.k, 0, a.n, &x[..x_len], &mut out[..out_len]);
        Ok(())
    }

    fn rms_norm(&self, a: &RmsNormArgs, x: &Vec<f32>, w: Option<&HostTensor>, out: &mut Vec<f32>) -> Result<()> {
        norm::rms_norm(self.isa, a, x, w, out)
    }

    fn add_rms_norm(&self, a: &RmsNormArgs, x: &Vec<f32>, w: &HostTensor, residual: &mut Vec<f32>) -> Result<()> {
        norm::add_rms_norm(self.isa, a, x, w, residual)
    }

    fn layer_norm(
        &self,
        a: &LayerNormArgs,
        x: &Vec<f32>,
        w: &HostTensor,
        b: &HostTensor,
        out: &mut Vec<f32>,
    ) -> Result<()> {
        norm::layer_norm(self.isa, a, x, w, b, out)
    }

    fn rope(&self, a: &RopeArgs, x: &mut Vec<f32>) -> Result<()> {
        rope::rope(self.isa, a, x)
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
        attention::attention(self.isa, a, q, k, v, cache_k, cache_v, out)
    }

    fn geglu(&self, a: &GegluArgs, gate: &Vec<f32>, up: &Vec<f32>, out: &mut Vec<f32>) -> Result<()> {
        elementwise::geglu(self.isa, a, gate, up, out)
    }

    fn copy(&self, a: &CopyArgs, src: &Vec<f32>, dst: &mut Vec<f32>) -> Result<()> {
        host::copy(a, src, dst)
    }

    fn softcap(&self, a: &SoftcapArgs, x: &mut Vec<f32>) -> Result<()> {
        elementwise::softcap(self.isa, a, x)
    }

    fn scale(&self, a: &ScaleArgs, x: &mut Vec<f32>) -> Result<()> {
        elementwise::scale(self.isa, a, x)
    }

    fn add(&self, a: &AddArgs, x: &Vec<f32>, acc: &mut Vec<f32>) -> Result<()> {
        elementwise::add(self.isa, a, x, acc)
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
        moe::moe_experts(self.isa, self.act, a, x, gate_up, down, ids, weights, out)
    }
}
