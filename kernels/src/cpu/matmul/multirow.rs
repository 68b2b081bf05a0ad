//! The matvec for 1 to [`M_MAX`] tokens. Rows are split over threads in tasks; with several
//! tokens a task walks its rows in tiles small enough to stay in L1 and runs every token over a
//! tile before moving on, so the weights come from memory once per call, not once per token;
//! inside a tile the x86 int8 kernels work in register tiles of rows x tokens
//! (`kquant_x86::RowTokens`).
//! Each token's sums come from the single-token kernels ([`matvec`]), so every output row is
//! bit for bit the one-token result (a K-token forward equals K decode steps).

use super::act::QAct;
use super::{matvec, OutPtr};
use crate::cpu::isa::Isa;
use crate::tensor::DType;
use crate::Precision;
use rayon::prelude::*;

/// The most tokens one call takes (more go to the packed GEMM).
pub(super) const M_MAX: usize = 64;
/// Weight bytes per parallel task (large enough to amortise scheduling).
const TASK_BYTES: usize = 64 << 10;
/// Weight bytes per tile that all tokens sweep: half of a 32 KB L1.
const TILE_BYTES: usize = 16 << 10;
/// Rows per tile at most (the size of a task's output buffer per token).
const TILE_ROWS: usize = 64;

/// Which single-token kernel the rows take.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kernel {
    /// Block formats against 8-bit activations (`Precision::Native`).
    Q8,
    /// Block formats against f32 activations (`Precision::Reference`).
    Exact,
    /// F32 / F16 / BF16 weights.
    Float,
}

/// `out[i * rows + j] = w[j] . x_i` for the rows of `w` and the tokens `x` (`k` each), by
/// `kern` (`acts` are the tokens quantized, for `Kernel::Q8`).
#[allow(clippy::too_many_arguments)]
fn rows(isa: Isa, kern: Kernel, dtype: DType, w: &[u8], k: usize, x: &[f32], acts: &[QAct], out: &mut [f32]) {
    let n = out.len() / (x.len() / k);
    match kern {
        Kernel::Q8 => matvec::q8_rows(isa, dtype, w, acts, out),
        Kernel::Exact => {
            x.chunks_exact(k).zip(out.chunks_exact_mut(n)).for_each(|(x, o)| matvec::exact_rows(isa, dtype, w, x, o))
        }
        Kernel::Float => {
            x.chunks_exact(k).zip(out.chunks_exact_mut(n)).for_each(|(x, o)| matvec::float_rows(isa, dtype, w, x, o))
        }
    }
}

/// `out[i * n + j] = x[i] . w_row(j)` for `i < m = x.len() / k <= M_MAX`, `j < n`; `w` holds
/// `n` rows of `row_bytes` (see `linear`).
#[allow(clippy::too_many_arguments)]
pub(super) fn matvec_tokens(
    isa: Isa,
    act: Precision,
    dtype: DType,
    w: &[u8],
    row_bytes: usize,
    k: usize,
    x: &[f32],
    n: usize,
    out: &mut [f32],
) {
    let m = x.len() / k;
    debug_assert!((1..=M_MAX).contains(&m));
    let kern = match (act, dtype.is_quantized()) {
        (Precision::Native, true) => Kernel::Q8,
        (Precision::Reference, true) => Kernel::Exact,
        (_, false) => Kernel::Float,
    };
    let per_task = (TASK_BYTES / row_bytes.max(1)).clamp(1, n.div_ceil(2 * rayon::current_num_threads()).max(1));
    // Taken out of the thread-local while in use, as `gemm`'s token scratch (work stealing may
    // run another forward on this thread meanwhile).
    let mut acts = ACTS.take();
    if kern == Kernel::Q8 {
        if acts.len() < m {
            acts.resize_with(m, QAct::default);
        }
        // In parallel: with 2 threads, one thread quantizing 16 tokens alone was ~10% of a
        // 16-token forward.
        // A decode step (one token) stays on this thread: rayon's fork costs more than it saves.
        if m == 1 {
            acts[0].quantize(isa, x);
        } else {
            acts[..m].par_iter_mut().zip(x.par_chunks_exact(k)).for_each(|(a, xi)| a.quantize(isa, xi));
        }
    }
    let xa = if kern == Kernel::Q8 { &acts[..m] } else { &[] };
    if m == 1 {
        // Decode: each task writes its own contiguous run of the output.
        out.par_chunks_mut(per_task).enumerate().for_each(|(c, dst)| {
            let w = &w[c * per_task * row_bytes..(c * per_task + dst.len()) * row_bytes];
            rows(isa, kern, dtype, w, k, x, xa, dst);
        });
    } else {
        // Whole 4-row register tiles of the int8 kernels (`RowTokens::ROWS`) wherever n allows.
        let tile = (TILE_BYTES / row_bytes.max(1)).clamp(4, TILE_ROWS) / 4 * 4;
        let per_task = per_task.min(n.div_ceil(8 * rayon::current_num_threads())).next_multiple_of(tile);
        let dst = OutPtr(out.as_mut_ptr());
        (0..n.div_ceil(per_task)).into_par_iter().for_each(|c| {
            let mut buf = [0.0f32; M_MAX * TILE_ROWS];
            let end = n.min((c + 1) * per_task);
            for j0 in (c * per_task..end).step_by(tile) {
                let nr = tile.min(end - j0);
                rows(isa, kern, dtype, &w[j0 * row_bytes..(j0 + nr) * row_bytes], k, x, xa, &mut buf[..m * nr]);
                for (i, b) in buf.chunks_exact(nr).take(m).enumerate() {
                    // SAFETY: `out` holds `m * n` floats (the caller's contract); this task alone
                    // writes columns `c * per_task..end` of each token's row, so the writes of
                    // parallel tasks are disjoint.
                    unsafe { std::ptr::copy_nonoverlapping(b.as_ptr(), dst.at(i * n + j0), nr) };
                }
            }
        });
    }
    ACTS.set(acts);
}

thread_local! {
    /// The calling thread's tokens quantized to 8 bits (one [`QAct`] each, storage reused).
    static ACTS: std::cell::RefCell<Vec<QAct>> = const { std::cell::RefCell::new(Vec::new()) };
}
