//! Ops-test cases of the ops that read weight matrices: `embed` (row gather) and `matmul`
//! (`x W^T`). Weights come from [`weight`]: every element bit pattern of the block formats, not
//! just what a quantizer writes.

use super::inputs::{get_out, poisoned, put, put_ids, weight, Exec, Failed, Rng, Timer};
use crate::args::{EmbedArgs, MatmulArgs};
use crate::backend::Backend;
use crate::error::Result;
use crate::tensor::{DType, HostTensor};

/// Bytes of `n` elements of `dtype` (a fraction of a block counts pro rata).
pub(super) fn dtype_bytes(dtype: DType, n: usize) -> usize {
    let (elems, bytes) = dtype.block();
    n * bytes / elems
}

/// An embedding gather from a random table; the ids include the table's first and last rows.
pub(super) struct Embed {
    args: EmbedArgs,
    table: HostTensor,
    ids: Vec<u32>,
}

impl Embed {
    pub(super) fn new(
        rng: &mut Rng,
        args: EmbedArgs,
        rows: usize,
        row_len: usize,
        dtype: DType,
    ) -> Result<Self, Failed> {
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
    fn exec<B: Backend>(&self, be: &B, t: &mut Timer<B>) -> Result<Vec<f32>> {
        let table = be.weight(&self.table)?;
        let ids = put_ids(be, &self.ids)?;
        let mut out = put(be, &poisoned(self.args.tokens * self.args.width))?;
        be.embed(&self.args, &table, &ids, &mut out)?;
        let got = get_out(be, &out, self.args.tokens * self.args.width)?;
        t.time(|| be.embed(&self.args, &table, &ids, &mut out))?;
        Ok(got)
    }
}

pub(super) fn embed_cost(a: &EmbedArgs, dtype: DType) -> (usize, usize) {
    let n = a.tokens * a.width;
    (dtype_bytes(dtype, n) + 4 * n + 4 * a.tokens, n)
}

/// `x W^T` with `x` uniform in [-1, 1) and weights about 0.1.
pub(super) struct Matmul {
    args: MatmulArgs,
    x: Vec<f32>,
    w: HostTensor,
}

impl Matmul {
    pub(super) fn new(rng: &mut Rng, args: MatmulArgs, dtype: DType) -> Result<Self, Failed> {
        let w = weight(rng, dtype, &[args.n, args.k], 0.1).map_err(Failed::Setup)?;
        Ok(Matmul { args, x: rng.vec(args.m * args.k, 1.0), w })
    }
}

impl Exec for Matmul {
    type Out = Vec<f32>;
    fn exec<B: Backend>(&self, be: &B, t: &mut Timer<B>) -> Result<Vec<f32>> {
        let w = be.weight(&self.w)?;
        let x = put(be, &self.x)?;
        let mut out = put(be, &poisoned(self.args.m * self.args.n))?;
        be.matmul(&self.args, &x, &w, &mut out)?;
        let got = get_out(be, &out, self.args.m * self.args.n)?;
        t.time(|| be.matmul(&self.args, &x, &w, &mut out))?;
        Ok(got)
    }
}

pub(super) fn matmul_cost(a: &MatmulArgs, dtype: DType) -> (usize, usize) {
    (dtype_bytes(dtype, a.n * a.k) + 4 * (a.m * a.k + a.m * a.n), 2 * a.m * a.n * a.k)
}
