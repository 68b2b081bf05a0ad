//! Weights resident on the CUDA device: uploaded once, in their storage dtype, which a kernel
//! decodes (`kernels/cuda/weights.cuh`), as the file's bytes with rows contiguous.
//! - Every format has a device code in the format table (`quant/format.rs`): as stored, the
//!   allocation padded with zeros to a multiple of 16 bytes (`wrow_dot` stages block rows with
//!   16-byte loads that may end up to 15 bytes past a row).
//! - One-dimensional tensors (norm weights, scales) are always widened to F32: tiny, and every
//!   kernel then reads them the same way.

use super::device::Device;
use crate::error::{KernelError, Result};
use crate::tensor::{DType, HostTensor};

/// A weight on the device.
pub struct CudaWeight<M> {
    pub(crate) mem: M,
    /// The dtype of the device copy (the file's, or F32 for a widened vector).
    pub dtype: DType,
    /// The file's dtype.
    pub source: DType,
    /// The shape, outermost first.
    pub shape: Vec<usize>,
    /// The tensor it was uploaded from (shared bytes): what the host fallback reads.
    pub host: HostTensor,
}

impl<M> CudaWeight<M> {
    /// True when the device copy was widened from the file's dtype.
    pub fn converted(&self) -> bool {
        self.dtype != self.source
    }
    /// Elements per leading row.
    pub fn row_len(&self) -> usize {
        self.shape.iter().skip(1).product()
    }
    /// The index of the device copy's dtype in a per-dtype kernel table (`weights.cuh`'s
    /// `enum DType` order), or `op`'s dtype error (a device copy always has one: see
    /// [`HostTensor::gpu_dtype`]).
    pub fn kernel_index(&self, op: &'static str) -> Result<usize> {
        self.dtype.kernel_code().map(|c| c as usize).ok_or(KernelError::DType { op, dtype: self.dtype.name() })
    }
}

/// Uploads `t` once (see the module docs for the layout).
pub fn upload<D: Device>(dev: &D, t: &HostTensor) -> Result<CudaWeight<D::Mem>> {
    let dtype = t.gpu_dtype();
    let widened;
    let bytes = if dtype == t.dtype() {
        t.bytes()
    } else {
        widened = t.f32_le_bytes();
        &widened
    };
    let mem = dev.alloc(bytes.len().next_multiple_of(16))?;
    dev.write(&mem, 0, bytes)?;
    Ok(CudaWeight { mem, dtype, source: t.dtype(), shape: t.shape().to_vec(), host: t.clone() })
}
