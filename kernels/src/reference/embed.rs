//! Embedding gather, reference version: `out[t, j] = table[ids[t], col_offset + j] * scale` for
//! `t < tokens`, `j < width` (see [`EmbedArgs`]).
//!
//! Layout: `table` is `[rows, row_len]` (any trailing dims are flattened into `row_len`), in its
//! storage dtype; `ids` `[tokens]`; `out` `[tokens, width]` f32. The token embedding gathers whole
//! rows; the per-layer embedding (PLE) gathers the `width` columns of one layer from each row.

use super::matmul::widen;
use crate::args::EmbedArgs;
use crate::error::numel;
use crate::error::{check_len, Result};
use crate::tensor::HostTensor;

const OP: &str = "embed";

/// The gathered rows, `tokens * width` floats (also the default [`crate::Backend::embed_host`]).
/// Fails on an id `>=` the table's rows or on columns outside the table's rows.
pub fn gather_rows(a: &EmbedArgs, table: &HostTensor, ids: &[u32]) -> Result<Vec<f32>> {
    a.check(table.shape(), ids)?;
    let mut out = vec![0.0; numel(OP, &[a.tokens, a.width])?];
    gather(a, table, ids, &mut out);
    Ok(out)
}

/// Writes the gathered rows into the first `tokens * width` elements of `out`.
pub(crate) fn embed(a: &EmbedArgs, table: &HostTensor, ids: &[u32], out: &mut [f32]) -> Result<()> {
    a.check(table.shape(), ids)?;
    check_len(OP, "out", out.len(), numel(OP, &[a.tokens, a.width])?)?;
    gather(a, table, ids, out);
    Ok(())
}

/// The gather itself, on validated arguments: widen each selected row slice, then scale it.
fn gather(a: &EmbedArgs, table: &HostTensor, ids: &[u32], out: &mut [f32]) {
    for (t, &id) in ids[..a.tokens].iter().enumerate() {
        let dst = &mut out[t * a.width..(t + 1) * a.width];
        widen(table, id as usize * table.row_len() + a.col_offset, dst);
        for o in dst {
            *o *= a.scale;
        }
    }
}
