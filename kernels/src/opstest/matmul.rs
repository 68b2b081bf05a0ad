//! Ops-test cases of the ops that read weight matrices: `embed` (row gather) and `matmul`
//! (`x W^T`). Weights come from `inputs::weight`: every element bit pattern of the block formats, not
//! just what a quantizer writes.

use super::inputs::{get_out, on_both, poisoned, put, put_ids, weight, Exec, Failed, Pair, Rng, Timer};
use super::{Device, OpCase};
use crate::args::{EmbedArgs, MatmulArgs};
use crate::error::Result;
use crate::op::Op;
use crate::tensor::{DType, HostTensor};

/// `embed`: a gather from a `[rows, row_len]` table of `dtype`.
#[derive(Clone, Debug, PartialEq)]
pub struct EmbedCase {
    /// The op's arguments.
    pub args: EmbedArgs,
    /// Table rows.
    pub rows: usize,
    /// Table row length.
    pub row_len: usize,
    /// Table dtype.
    pub dtype: DType,
}

impl OpCase for EmbedCase {
    fn op(&self) -> Op {
        Op::Embed
    }
    fn name(&self) -> String {
        let a = &self.args;
        format!(
            "{} tokens={} width={} col_offset={} scale={} table={}x{} {}",
            self.op(),
            a.tokens,
            a.width,
            a.col_offset,
            a.scale,
            self.rows,
            self.row_len,
            self.dtype.name()
        )
    }
    /// A gather is exact; a block format's `d * q` may be evaluated in another order.
    fn bound(&self) -> f64 {
        if self.dtype.is_quantized() {
            1e-6
        } else {
            0.0
        }
    }
    fn cost(&self) -> (usize, usize) {
        let n = self.args.tokens * self.args.width;
        (dtype_bytes(self.dtype, n) + 4 * n + 4 * self.args.tokens, n)
    }
    fn run(&self, rng: &mut Rng, be: &dyn Device, perf: bool) -> Result<Pair<Vec<f32>>, Failed> {
        on_both(be, &Embed::new(rng, self.args, self.rows, self.row_len, self.dtype)?, perf)
    }
}

/// `matmul`: `x W^T` with a weight of `dtype`.
#[derive(Clone, Debug, PartialEq)]
pub struct MatmulCase {
    /// The op's arguments.
    pub args: MatmulArgs,
    /// Weight dtype.
    pub dtype: DType,
    /// `x` is uniform in `[-x_scale, x_scale)` (1 for O(1) inputs; Gemma's activations reach
    /// 1e5, beyond f16's range).
    pub x_scale: f32,
}

impl OpCase for MatmulCase {
    fn op(&self) -> Op {
        Op::Matmul
    }
    fn name(&self) -> String {
        let a = &self.args;
        let scale = if self.x_scale == 1.0 { String::new() } else { format!(" |x|<{:e}", self.x_scale) };
        format!("{} m={} n={} k={} {}{scale}", self.op(), a.m, a.n, a.k, self.dtype.name())
    }
    fn bound(&self) -> f64 {
        product_bound(self.dtype)
    }
    fn cost(&self) -> (usize, usize) {
        let a = &self.args;
        (dtype_bytes(self.dtype, a.n * a.k) + 4 * (a.m * a.k + a.m * a.n), 2 * a.m * a.n * a.k)
    }
    fn run(&self, rng: &mut Rng, be: &dyn Device, perf: bool) -> Result<Pair<Vec<f32>>, Failed> {
        on_both(be, &Matmul::new(rng, self.args, self.dtype, self.x_scale)?, perf)
    }
}

/// The bound of a product with weights of `dtype`: f32 weights leave only summation order;
/// bf16 weights allow a backend that rounds activations to bf16; f16 weights one that rounds
/// both sides to bf16 (a tensor-core MMA takes one type for both operands, and f16 activations
/// would overflow: the CUDA GEMM and the CPU's native GEMM do this, 2.4e-3 on these inputs);
/// block formats allow one that quantizes activations to 8-bit blocks (llama.cpp's q8_1 / q8_K:
/// about 4e-3 on these inputs).
pub(super) fn product_bound(dtype: DType) -> f64 {
    match dtype {
        DType::F32 => 1e-5,
        DType::BF16 => 2e-3,
        DType::F16 => 4e-3,
        _ => 1e-2,
    }
}

/// Bytes of `n` elements of `dtype` (a fraction of a block counts pro rata).
pub(super) fn dtype_bytes(dtype: DType, n: usize) -> usize {
    let (elems, bytes) = dtype.block();
    n * bytes / elems
}

/// An embedding gather from a random table; the ids include the table's first and last rows.
struct Embed {
    args: EmbedArgs,
    table: HostTensor,
    ids: Vec<u32>,
}

impl Embed {
    fn new(rng: &mut Rng, args: EmbedArgs, rows: usize, row_len: usize, dtype: DType) -> Result<Self, Failed> {
        let table = weight(rng, dtype, &[rows, row_len], 1.0).map_err(Failed::Setup)?;
        let mut ids: Vec<u32> = (0..args.tokens).map(|_| rng.below(rows) as u32).collect();
        for (id, edge) in ids.iter_mut().zip([rows.saturating_sub(1), 0]) {
            *id = edge as u32;
        }
        Ok(Embed { args, table, ids })
    }
}

impl Exec for Embed {
    type Out = Vec<f32>;
    fn exec(&self, be: &dyn Device, t: &mut Timer) -> Result<Vec<f32>> {
        let table = be.weight(&self.table)?;
        let ids = put_ids(be, &self.ids)?;
        let mut out = put(be, &poisoned(self.args.tokens * self.args.width))?;
        be.embed(&self.args, &table, &ids, &mut out)?;
        let got = get_out(be, &out, self.args.tokens * self.args.width)?;
        t.time(|| be.embed(&self.args, &table, &ids, &mut out))?;
        Ok(got)
    }
}

/// `x W^T` with `x` uniform in [-x_scale, x_scale) and weights about 0.1.
struct Matmul {
    args: MatmulArgs,
    x: Vec<f32>,
    w: HostTensor,
}

impl Matmul {
    fn new(rng: &mut Rng, args: MatmulArgs, dtype: DType, x_scale: f32) -> Result<Self, Failed> {
        let w = weight(rng, dtype, &[args.n, args.k], 0.1).map_err(Failed::Setup)?;
        Ok(Matmul { args, x: rng.vec(args.m * args.k, x_scale), w })
    }
}

impl Exec for Matmul {
    type Out = Vec<f32>;
    fn exec(&self, be: &dyn Device, t: &mut Timer) -> Result<Vec<f32>> {
        let w = be.weight(&self.w)?;
        let x = put(be, &self.x)?;
        let mut out = put(be, &poisoned(self.args.m * self.args.n))?;
        be.matmul(&self.args, &x, &w, &mut out)?;
        let got = get_out(be, &out, self.args.m * self.args.n)?;
        t.time(|| be.matmul(&self.args, &x, &w, &mut out))?;
        Ok(got)
    }
}
