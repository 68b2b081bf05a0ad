//! The CPU reference backend [`RefCpu`]: plain scalar Rust, f32 accumulation, one small function
//! per op. It is the oracle every other backend (SIMD CPU, WGSL, CUDA) is tested against, so it is
//! written for clarity, not speed.
//!
//! Buffers are `Vec<f32>` / `Vec<u32>` in host memory; weights are the [`HostTensor`](crate::HostTensor)s themselves
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
use crate::op::Op;

/// The op methods of [`RefCpu`]: each op's reference function, as named in the op table.
macro_rules! reference_ops {
    ($($(#[$doc:meta])* $op:ident $name:ident($args:ident; $($p:ident: $kind:ident),*) = $reference:path;)*) => {
        $(
            fn $name(&self, a: &$args, $($p: crate::op::buffer_type!(Self, $kind)),*) -> Result<()> {
                $reference(a, $($p),*)
            }
        )*
    };
}

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

    // Every op of the table in `crate::op` runs its reference function, e.g.
    //
    //     fn layer_norm(&self, a: &LayerNormArgs, x: &Vec<f32>, w: &HostTensor, bias: &HostTensor,
    //                   out: &mut Vec<f32>) -> Result<()> {
    //         norm::layer_norm(a, x, w, bias, out)
    //     }
    crate::op::for_each_op!(reference_ops);
}
