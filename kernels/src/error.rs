//! The kernels' error type: what an op or a buffer operation was asked that it cannot do.

/// Errors raised by backends. Shapes are validated before any kernel runs, so a wrong size is
/// an error here, never an out-of-bounds access.
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    /// A buffer or weight is smaller (or of another shape) than the op's arguments require.
    #[error("{op}: {what}")]
    Shape {
        /// The op.
        op: &'static str,
        /// What does not fit.
        what: String,
    },
    /// A weight dtype the op does not implement.
    #[error("{op}: unsupported dtype {dtype}")]
    DType {
        /// The op.
        op: &'static str,
        /// The weight's dtype.
        dtype: &'static str,
    },
    /// An argument that names nothing garnet has (a backend, a precision, an op).
    #[error("{what}")]
    Invalid {
        /// What was asked and what exists.
        what: String,
    },
    /// A host tensor whose bytes do not fit its storage.
    #[error("tensor bytes out of range: {0}")]
    Bounds(String),
    /// An id (token or expert) outside its table.
    #[error("{op}: id {id} out of range (table has {len} rows)")]
    IdOutOfRange {
        /// The op.
        op: &'static str,
        /// The offending id.
        id: u32,
        /// Rows in the table.
        len: usize,
    },
    /// The backend cannot run here (no device, driver error, compiled out).
    #[error("backend {backend} unavailable: {why}")]
    Unavailable {
        /// The backend.
        backend: &'static str,
        /// Why it cannot run.
        why: String,
    },
    /// A device operation failed after the backend started: a driver error, or a fault the CUDA
    /// emulator caught in a kernel (deadlock, divergent collective, misaligned async copy).
    #[error("backend {backend}: {what}")]
    Device {
        /// The backend.
        backend: &'static str,
        /// What failed.
        what: String,
    },
}

/// Result of a kernel or buffer operation.
pub type Result<T, E = KernelError> = std::result::Result<T, E>;

/// Fails with [`KernelError::Shape`] unless `have >= need` (a buffer holds at least what an op touches).
pub fn check_len(op: &'static str, what: &str, have: usize, need: usize) -> Result<()> {
    if have < need {
        return Err(KernelError::Shape { op, what: format!("{what} has {have} elements, needs {need}") });
    }
    Ok(())
}

/// The product of `dims` (an element count), or a [`KernelError::Shape`] if it overflows.
pub(crate) fn numel(op: &'static str, dims: &[usize]) -> Result<usize> {
    dims.iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| KernelError::Shape { op, what: format!("size {dims:?} overflows") })
}

/// Fails with [`KernelError::Shape`] unless a weight's shape `have` is exactly `want` (the
/// device backends know their weights' shapes, not their bytes).
pub(crate) fn check_shape(op: &'static str, what: &str, have: &[usize], want: &[usize]) -> Result<()> {
    if have != want {
        return Err(KernelError::Shape { op, what: format!("{what} has shape {have:?}, needs {want:?}") });
    }
    Ok(())
}

/// A [`KernelError::Shape`] for an argument that is invalid on its own (not a buffer size).
pub(crate) fn bad_arg(op: &'static str, what: String) -> KernelError {
    KernelError::Shape { op, what }
}
