//! `matmul` on the CUDA device: `out[m, n] = x[m, k] W[n, k]^T`, the weight in its storage dtype.
//! Three kernels in `matmul.cu`, each one entry per device dtype (tables indexed by
//! [`CudaWeight::kernel_index`], built by `per_dtype!`):
//! - `matvec_<dt>`, `matvec8_<dt>` for decode, `m <= MATVEC_MAX_M`: each weight row read once
//!   for all token rows;
//! - `gemm_tc_<dt>`: tensor-core GEMM (activations rounded to bf16, f16 against f16 weights) for
//!   prefill under [`Precision::Native`];
//! - `gemm_f32_<dt>`: exact f32 GEMM for prefill under [`Precision::Reference`] and for f32
//!   weights (their bound, 1e-5, is out of bf16 activations' reach).
//!
//! Same checks and errors as the reference (`reference/matmul.rs`).

use super::device::{u32_arg, Device, Dims, Params};
use super::kernels::{for_device_dtypes, gather, kernel, per_dtype, some, Kernel, DEVICE_DTYPES};
use super::{Cuda, CudaBuf, CudaWeight};
use crate::args::*;
use crate::error::Result;
use crate::tensor::DType;
use crate::Precision;

/// `matvec_<dt>` (one token row), by dtype code.
const MATVEC: [Kernel; DEVICE_DTYPES] = per_dtype!(Matmul, "matvec_");
/// `matvec8_<dt>` (2 to 8 token rows), by dtype code.
const MATVEC8: [Kernel; DEVICE_DTYPES] = per_dtype!(Matmul, "matvec8_");
/// `gemm_f32_<dt>`, by dtype code.
const GEMM_F32: [Kernel; DEVICE_DTYPES] = per_dtype!(Matmul, "gemm_f32_");

/// `gemm_tc_<dt>` for every device dtype but f32 (f32 weights take the exact GEMM).
macro_rules! gemm_tc {
    ("f32") => {
        None
    };
    ($suffix:literal) => {
        Some(kernel!(Matmul, concat!("gemm_tc_", $suffix)))
    };
}
/// `gemm_tc_<dt>`, by dtype code.
const GEMM_TC: [Option<Kernel>; DEVICE_DTYPES] = for_device_dtypes!(gemm_tc!());

/// The kernels of `matmul.cu`.
pub(super) const KERNELS: &[Kernel] =
    &gather::<{ 4 * DEVICE_DTYPES - 1 }>(&[&some(MATVEC), &some(MATVEC8), &some(GEMM_F32), &GEMM_TC]);

/// Token rows up to which the matvec runs: its weight traffic is one read of `w` whatever `m`,
/// and at 8 rows its arithmetic (8 FMAs per weight) still hides under the loads; beyond, the
/// tensor-core GEMM's tile reuse wins.
const MATVEC_MAX_M: usize = 8;

/// Weight rows per warp grow once there are this many rows per warp-row already
/// (`n / MATVEC_ROWS_AT` rows each, at most 32 / m): big outputs (LM heads) then keep 8192 warps
/// in flight, enough for any GPU, with fewer, longer-lived warps.
const MATVEC_ROWS_AT: usize = 8192;

/// Rows a warp takes at once (`MV_R1`, `MV_R8` in matmul.cu): each x load serves them all
/// (m = 1: 4 rows, 4x fewer x requests than a row at a time; m in 2..=8: 2).
const MATVEC_R1: usize = 4;
const MATVEC_R8: usize = 2;

/// Split-K (the 4 warps of a block on one row) when `n` is below this and `k` at least
/// `MATVEC_SPLIT_K`: with one warp per row, n < 1024 leaves under ~8 warps per SM on a
/// 132-SM GPU, too few to cover the latency of long rows.
const MATVEC_SPLIT_N: usize = 1024;
const MATVEC_SPLIT_K: usize = 1024;

/// `MatvecParams` in `matmul.cu`.
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
// SAFETY: repr(C), plain numbers, mirrors `MatvecParams` in matmul.cu.
unsafe impl Params for MatvecParams {}

/// `GemmParams` in `matmul.cu`.
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
// SAFETY: repr(C), plain numbers, mirrors `GemmParams` in matmul.cu.
unsafe impl Params for GemmParams {}

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
        // Bytes per element of a float weight (the aligned-load paths); block formats have none.
        let float_size = (!w.dtype.is_quantized()).then_some(w.dtype.block().1 as u64);
        let (xp, wp, op) = (self.ptr(x), self.dev.ptr(&w.mem), self.ptr(out));

        if a.m <= MATVEC_MAX_M {
            let split = a.n < MATVEC_SPLIT_N && a.k >= MATVEC_SPLIT_K;
            // Each x load serves MATVEC_R1 (m = 1) or MATVEC_R8 rows, which a warp takes at once.
            let rows = match (split, a.m) {
                (true, _) => 1,
                (false, 1) => (a.n / MATVEC_ROWS_AT).clamp(MATVEC_R1, 32),
                (false, _) => (a.n / MATVEC_ROWS_AT).clamp(MATVEC_R8, 32 / a.m),
            };
            let vec = float_size.is_some() && a.k.is_multiple_of(4) && wp.is_multiple_of(16) && xp.is_multiple_of(16);
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
        let w_async = w.dtype == DType::BF16 && (a.k as u64 * 2).is_multiple_of(16) && wp.is_multiple_of(16);
        let p = GemmParams { x: xp, w: wp, out: op, m, n, k, w_async: w_async as u32 };
        let grid = [u32_arg(OP, "size", a.n.div_ceil(64))?, u32_arg(OP, "size", a.m.div_ceil(64))?, 1];
        match tc {
            Some(kernel) => self.dev.launch(kernel, Dims { grid, block: [128, 1, 1] }, &p),
            None => self.dev.launch(GEMM_F32[code], Dims { grid, block: [256, 1, 1] }, &p),
        }
    }
}
