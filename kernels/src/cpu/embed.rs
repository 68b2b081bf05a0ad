//! The embedding gather on the fast CPU path: rows gathered from the mapped table (only the
//! gathered rows are read), widened, scaled; the reference's semantics (see
//! `crate::reference::embed`).

use super::elementwise::{map, Op};
use super::isa::Isa;
use super::simd::{self, rows_per_task, PAR_MIN};
use crate::args::EmbedArgs;
use crate::error::numel;
use crate::error::{check_len, Result};
use crate::tensor::HostTensor;
use rayon::prelude::*;

/// `out[t, j] = table[ids[t], col_offset + j] * scale`: rows widened from the mapped table
/// (only the gathered rows are read), in parallel over tokens for large gathers.
pub(crate) fn embed(isa: Isa, a: &EmbedArgs, table: &HostTensor, ids: &[u32], out: &mut [f32]) -> Result<()> {
    const OP: &str = "embed";
    a.check(table.shape(), ids)?;
    let len = numel(OP, &[a.tokens, a.width])?;
    check_len(OP, "out", out.len(), len)?;
    if a.width == 0 {
        return Ok(());
    }
    let row_len = table.row_len();
    let gather = |t0: usize, out: &mut [f32]| {
        for (dst, &id) in out.chunks_exact_mut(a.width).zip(&ids[t0..]) {
            simd::widen(table, id as usize * row_len + a.col_offset, dst);
        }
        map(isa, Op::Scale(a.scale), out);
    };
    if len < PAR_MIN {
        gather(0, &mut out[..len]);
    } else {
        let rows = rows_per_task(a.width);
        out[..len].par_chunks_mut(rows * a.width).enumerate().for_each(|(i, out)| gather(i * rows, out));
    }
    Ok(())
}
