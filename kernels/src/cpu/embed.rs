//! Embedding gather, reference version: `out[t, j] = table[ids[t], col_offset + j] * scale` for
//! `t < tokens`, `j < width` (see [`EmbedArgs`]).
//!
//! Layout: `table` is `[rows, row_len]` (any trailing dims are flattened into `row_len`), in its
//! storage dtype; `ids` `[tokens]`; `out` `[tokens, width]` f32. The token embedding gathers whole
//! rows; the per-layer embedding (PLE) gathers the `width` columns of one layer from each row.

use super::matmul::widen;
use super::{bad_arg, numel};
use crate::args::EmbedArgs;
use crate::error::{check_len, KernelError, Result};
use crate::tensor::HostTensor;

const OP: &str = "embed";

/// The gathered rows, `tokens * width` floats (also the default [`crate::Backend::embed_host`]).
/// Fails on an id `>=` the table's rows or on columns outside the table's rows.
pub fn gather_rows(a: &EmbedArgs, table: &HostTensor, ids: &[u32]) -> Result<Vec<f32>> {
    validate(a, table.shape(), ids)?;
    let mut out = vec![0.0; numel(OP, &[a.tokens, a.width])?];
    gather(a, table, ids, &mut out);
    Ok(out)
}

/// Writes the gathered rows into the first `tokens * width` elements of `out`.
pub(crate) fn embed(a: &EmbedArgs, table: &HostTensor, ids: &[u32], out: &mut [f32]) -> Result<()> {
    validate(a, table.shape(), ids)?;
    check_len(OP, "out", out.len(), numel(OP, &[a.tokens, a.width])?)?;
    gather(a, table, ids, out);
    Ok(())
}

/// Checks the column range and the ids against the table (before anything is allocated).
pub(crate) fn validate(a: &EmbedArgs, table_shape: &[usize], ids: &[u32]) -> Result<()> {
    let rows = validate_shape(a, table_shape, ids.len())?;
    match ids[..a.tokens].iter().find(|&&id| id as usize >= rows) {
        Some(&id) => Err(KernelError::IdOutOfRange { op: OP, id, len: rows }),
        None => Ok(()),
    }
}

/// The checks that need no id values (all a device backend can do when the ids live on the
/// device): the column range against the table's rows and the ids' length. Returns the rows.
pub(crate) fn validate_shape(a: &EmbedArgs, table_shape: &[usize], ids_len: usize) -> Result<usize> {
    let Some(&rows) = table_shape.first() else {
        return Err(bad_arg(OP, "table is a scalar, needs [rows, row_len]".into()));
    };
    let row_len: usize = table_shape[1..].iter().product();
    if a.col_offset.checked_add(a.width).is_none_or(|end| end > row_len) {
        let (start, width) = (a.col_offset, a.width);
        return Err(bad_arg(OP, format!("columns {start}+{width} exceed table rows of {row_len}")));
    }
    check_len(OP, "ids", ids_len, a.tokens)?;
    Ok(rows)
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
