//! Embedding gather, reference version: `out[t, j] = table[ids[t], col_offset + j] * scale` for
//! `t < tokens`, `j < width` (see [`EmbedArgs`]).
//!
//! Layout: `table` is `[rows, row_len]` (any trailing dims are flattened into `row_len`), in its
//! storage dtype; `ids` `[tokens]`; `out` `[tokens, width]` f32. The token embedding gathers whole
//! rows; the per-layer embedding (PLE) gathers the `width` columns of one layer from each row.

use super::{bad_arg, numel};
use crate::args::EmbedArgs;
use crate::error::{check_len, KernelError, Result};
use crate::tensor::HostTensor;

/// The gathered rows, `tokens * width` floats (also the default [`crate::Backend::embed_host`]).
/// Fails on an id `>= ` the table's rows or on columns outside the table's rows.
pub fn gather_rows(a: &EmbedArgs, table: &HostTensor, ids: &[u32]) -> Result<Vec<f32>> {
    let mut out = vec![0.0; numel("embed", &[a.tokens, a.width])?];
    embed(a, table, ids, &mut out)?;
    Ok(out)
}

/// Writes the gathered rows into the first `tokens * width` elements of `out`.
pub(crate) fn embed(a: &EmbedArgs, table: &HostTensor, ids: &[u32], out: &mut [f32]) -> Result<()> {
    const OP: &str = "embed";
    let Some(&rows) = table.shape().first() else {
        return Err(bad_arg(
            OP,
            "table is a scalar, needs [rows, row_len]".into(),
        ));
    };
    let row_len = table.row_len();
    if a.col_offset
        .checked_add(a.width)
        .is_none_or(|end| end > row_len)
    {
        return Err(bad_arg(
            OP,
            format!(
                "columns {}+{} exceed table rows of {row_len}",
                a.col_offset, a.width
            ),
        ));
    }
    check_len(OP, "ids", ids.len(), a.tokens)?;
    check_len(OP, "out", out.len(), numel(OP, &[a.tokens, a.width])?)?;
    if let Some(&id) = ids[..a.tokens].iter().find(|&&id| id as usize >= rows) {
        return Err(KernelError::IdOutOfRange {
            op: OP,
            id,
            len: rows,
        });
    }

    for (t, &id) in ids[..a.tokens].iter().enumerate() {
        let row_start = id as usize * row_len;
        let dst = &mut out[t * a.width..(t + 1) * a.width];
        for (j, o) in dst.iter_mut().enumerate() {
            *o = table.get(row_start + a.col_offset + j) * a.scale;
        }
    }
    Ok(())
}
