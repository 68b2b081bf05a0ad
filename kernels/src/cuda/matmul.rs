//! `matmul` on the CUDA device: `out[m, n] = x[m, k] W[n, k]^T`, the weight in its storage dtype.
//! Three kernels, each one entry per weight dtype (tables indexed by [`CudaWeight::code`]):
//! - `matvec.cu` (`matvec_<dt>`, `matvec8_<dt>`) for decode, `m <= MATVEC_MAX_M`: each weight
//!   row read once for all token rows;
//! - `gemm.cu` `gemm_tc_<dt>`: tensor-core GEMM (activations rounded to bf16, f16 against f16
//!   weights) for prefill under [`Precision::Native`];
//! - `gemm.cu` `gemm_f32_<dt>`: exact f32 GEMM for prefill under [`Precision::Reference`] and for f32
//!   weights (their bound, 1e-5, is out of bf16 activations' reach).
//!
//! Same checks and errors as the reference (`reference/matmul.rs`).

use super::device::{u32_arg, Device, Dims, Params};
use super::kernels::{kernel, Kernel};
use super::{Cuda, CudaBuf, CudaWeight};
use crate::args::*;
use crate::error::Result;
use crate::Precision;

/// `matvec_<dt>` (one token row), by dtype code.
const MATVEC: [Kernel; 8] = [
    kernel!(Matvec, "matvec_f32", garnet_emu_matvec_f32),
    kernel!(Matvec, "matvec_f16", garnet_emu_matvec_f16),
    kernel!(Matvec, "matvec_bf16", garnet_emu_matvec_bf16),
    kernel!(Matvec, "matvec_q8_0", garnet_emu_matvec_q8_0),
    kernel!(Matvec, "matvec_q4_0", garnet_emu_matvec_q4_0),
    kernel!(Matvec, "matvec_q5_0", garnet_emu_matvec_q5_0),
    kernel!(Matvec, "matvec_q4_k", garnet_emu_matvec_q4_k),
    kernel!(Matvec, "matvec_q6_k", garnet_emu_matvec_q6_k),
];

/// `matvec8_<dt>` (2 to 8 token rows), by dtype code.
const MATVEC8: [Kernel; 8] = [
    kernel!(Matvec, "matvec8_f32", garnet_emu_matvec8_f32),
    kernel!(Matvec, "matvec8_f16", garnet_emu_matvec8_f16),
    kernel!(Matvec, "matvec8_bf16", garnet_emu_matvec8_bf16),
    kernel!(Matvec, "matvec8_q8_0", garnet_emu_matvec8_q8_0),
    kernel!(Matvec, "matvec8_q4_0", garnet_emu_matvec8_q4_0),
    kernel!(Matvec, "matvec8_q5_0", garnet_emu_matvec8_q5_0),
    kernel!(Matvec, "matvec8_q4_k", garnet_emu_matvec8_q4_k),
    kernel!(Matvec, "matvec8_q6_k", garnet_emu_matvec8_q6_k),
];

/// `gemm_tc_<dt>`, by dtype code (none for f32 weights: they take the exact GEMM).
const GEMM_TC: [Option<Kernel>; 8] = [
    None,
    Some(kernel!(Gemm, "gemm_tc_f16", garnet_emu_gemm_tc_f16)),
    Some(kernel!(Gemm, "gemm_tc_bf16", garnet_emu_gemm_tc_bf16)),
    Some(kernel!(Gemm, "gemm_tc_q8_0", garnet_emu_gemm_tc_q8_0)),
    Some(kernel!(Gemm, "gemm_tc_q4_0", garnet_emu_gemm_tc_q4_0)),
    Some(kernel!(Gemm, "gemm_tc_q5_0", garnet_emu_gemm_tc_q5_0)),
    Some(kernel!(Gemm, "gemm_tc_q4_k", garnet_emu_gemm_tc_q4_k)),
    Some(kernel!(Gemm, "gemm_tc_q6_k", garnet_emu_gemm_tc_q6_k)),
];

/// `gemm_f32_<dt>`, by dtype code.
const GEMM_F32: [Kernel; 8] = [
    kernel!(Gemm, "gemm_f32_f32", garnet_emu_gemm_f32_f32),
    kernel!(Gemm, "gemm_f32_f16", garnet_emu_gemm_f32_f16),
    kernel!(Gemm, "gemm_f32_bf16", garnet_emu_gemm_f32_bf16),
    kernel!(Gemm, "gemm_f32_q8_0", garnet_emu_gemm_f32_q8_0),
    kernel!(Gemm, "gemm_f32_q4_0", garnet_emu_gemm_f32_q4_0),
    kernel!(Gemm, "gemm_f32_q5_0", garnet_emu_gemm_f32_q5_0),
    kernel!(Gemm, "gemm_f32_q4_k", garnet_emu_gemm_f32_q4_k),
    kernel!(Gemm, "gemm_f32_q6_k", garnet_emu_gemm_f32_q6_k),
];

/// The kernels of `matvec.cu` and `gemm.cu`.
pub(super) const KERNELS: &[Kernel] = &{
    let mut all = [MATVEC[0]; 31];
    let mut i = 0;
    while i < 8 {
        all[i] = MATVEC[i];
        all[8 + i] = MATVEC8[i];
        all[16 + i] = GEMM_F32[i];
        if i > 0 {
            all[23 + i] = match GEMM_TC[i] {
                Some(k) => k,
                None => MATVEC[0],
            };
        }
        i += 1;
    }
    all
};

/// Token rows up to which the matvec runs: its weight traffic is one read of `w` whatever `m`,
/// and at 8 rows its arithmetic (8 FMAs per weight) still hides under the loads; beyond, the
/// tensor-core GEMM's tile reuse wins.
const MATVEC_MAX_M: usize = 8;

/// Weight rows per warp grow once there are this many rows per warp-row already
/// (`n / MATVEC_ROWS_AT` rows each, at most 32 / m): big outputs (LM heads) then keep 8192 warps
/// in flight, enough for any GPU, with fewer, longer-lived warps.
const MATVEC_ROWS_AT: usize = 8192;

/// Split-K (the 4 warps of a block on one row) when `n` is below this and `k` at least
/// `MATVEC_SPLIT_K`: with one warp per row, n < 1024 leaves under ~8 warps per SM on a
/// 132-SM GPU, too few to cover the latency of long rows.
const MATVEC_SPLIT_N: usize = 1024;
const MATVEC_SPLIT_K: usize = 1024;

/// `MatvecParams` in `matvec.cu`.
#[repr(C)]
#[derive(Clone, Copy)]
struct MatvecParams {
    x: u64,
    w: u64,
    out: u64,
    m: u32,
    n: u32,
    k: u32,
    rows: u32,
    split: u32,
    vec: u32,
}
// SAFETY: repr(C), plain numbers, mirrors `MatvecParams` in matvec.cu.
unsafe impl Params for MatvecParams {}

/// `GemmParams` in `gemm.cu`.
#[repr(C)]
#[derive(Clone, Copy)]
struct GemmParams {
    x: u64,
    w: u64,
    out: u64,
    m: u32,
    n: u32,
    k: u32,
    w_async: u32,
}
// SAFETY: repr(C), plain numbers, mirrors `GemmParams` in gemm.cu.
unsafe impl Params for GemmParams {}

/// Bytes per element of the float dtypes (codes 0..=2); block formats have none.
fn float_size(code: usize) -> Option<u64> {
    match code {
        0 => Some(4),
        1 | 2 => Some(2),
        _ => None,
    }
}

impl<D: Device> Cuda<D> {
    pub(super) fn op_matmul(
        &self,
        a: &MatmulArgs,
        x: &CudaBuf<D::Mem>,
        w: &CudaWeight<D::Mem>,
        out: &mut CudaBuf<D::Mem>,
    ) -> Result<()> {
        const OP: &str = "matmul";
        a.check(x.len, &w.shape, out.len)?;
        if a.m == 0 || a.n == 0 {
            return Ok(());
        }
        let (m, n, k) = (u32_arg(OP, "size", a.m)?, u32_arg(OP, "size", a.n)?, u32_arg(OP, "size", a.k)?);
        let code = w.kernel_index(OP)?;
        let (xp, wp, op) = (self.ptr(x), self.dev.ptr(&w.mem), self.ptr(out));

        if a.m <= MATVEC_MAX_M {
            let split = a.n < MATVEC_SPLIT_N && a.k >= MATVEC_SPLIT_K;
            let rows = if split { 1 } else { (a.n / MATVEC_ROWS_AT).clamp(1, 32 / a.m) };
            let vec = float_size(code)
                .is_some_and(|s| (a.k as u64 * s).is_multiple_of(16) && wp.is_multiple_of(16) && xp.is_multiple_of(16));
            let per_block = if split { rows } else { 4 * rows };
            let p = MatvecParams {
                x: xp,
                w: wp,
                out: op,
                m,
                n,
                k,
                rows: rows as u32,
                split: if split { 4 } else { 1 },
                vec: vec as u32,
            };
            let kernel = if a.m == 1 { MATVEC[code] } else { MATVEC8[code] };
            return self.dev.launch(kernel, Dims::linear(u32_arg(OP, "size", a.n.div_ceil(per_block))?, 128), &p);
        }

        let tc = match self.precision {
            Precision::Native if a.k > 0 => GEMM_TC[code],
            _ => None,
        };
        let w_async = float_size(code).is_some_and(|s| (a.k as u64 * s).is_multiple_of(16) && wp.is_multiple_of(16));
        let p = GemmParams { x: xp, w: wp, out: op, m, n, k, w_async: w_async as u32 };
        let grid = [u32_arg(OP, "size", a.n.div_ceil(64))?, u32_arg(OP, "size", a.m.div_ceil(64))?, 1];
        match tc {
            Some(kernel) => self.dev.launch(kernel, Dims { grid, block: [128, 1, 1] }, &p),
            None => self.dev.launch(GEMM_F32[code], Dims { grid, block: [256, 1, 1] }, &p),
        }
    }
}
