//! `embed`: the token-embedding and PLE row gather.

use crate::error::{bad_arg, check_len, KernelError, Result};

/// `out[t, j] = table[ids[t], col_offset + j] * scale` for `j < width`: token embedding and
/// per-layer-embedding (PLE) row gather. `table` is `[rows, row_len]`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EmbedArgs {
    /// Tokens (rows) in the call.
    pub tokens: usize,
    /// Columns gathered per row.
    pub width: usize,
    /// First gathered column of each table row (PLE: `layer * ple_dim`).
    pub col_offset: usize,
    /// Multiplier.
    pub scale: f32,
}

impl EmbedArgs {
    /// The checks that need no id values (all a device backend can do when the ids live on the
    /// device): the column range against the table's rows and the ids' length. Returns the rows.
    pub fn check_shapes(&self, table_shape: &[usize], ids_len: usize) -> Result<usize> {
        const OP: &str = "embed";
        let Some(&rows) = table_shape.first() else {
            return Err(bad_arg(OP, "table is a scalar, needs [rows, row_len]".into()));
        };
        let row_len: usize = table_shape[1..].iter().product();
        if self.col_offset.checked_add(self.width).is_none_or(|end| end > row_len) {
            let (start, width) = (self.col_offset, self.width);
            return Err(bad_arg(OP, format!("columns {start}+{width} exceed table rows of {row_len}")));
        }
        check_len(OP, "ids", ids_len, self.tokens)?;
        Ok(rows)
    }

    /// [`Self::check_shapes`] plus every id below the table's rows (ids on the host).
    pub fn check(&self, table_shape: &[usize], ids: &[u32]) -> Result<()> {
        let rows = self.check_shapes(table_shape, ids.len())?;
        match ids[..self.tokens].iter().find(|&&id| id as usize >= rows) {
            Some(&id) => Err(KernelError::IdOutOfRange { op: "embed", id, len: rows }),
            None => Ok(()),
        }
    }
}
