//! Weights resident on the GPU: uploaded once, in their storage dtype (the shaders decode it),
//! split into chunks of whole leading-dimension rows (matrix rows, or whole experts) so no
//! binding exceeds the adapter's `max_storage_buffer_binding_size`.
//!
//! Layout on the device, as `array<u32>` words (little-endian, the file's bytes):
//! - F32: one word per element. F16 / BF16: two elements per word, the lower index in the low half.
//! - The block formats (every one has a device code in the format table, `quant/format.rs`):
//!   ggml's blocks back to back, rows contiguous, read a byte or a funnel-shifted word at a time
//!   where blocks are not word-aligned (`shaders/weights.wgsl`).
//! - A dtype without a device code would be widened to F32 at upload ([`HostTensor::gpu_dtype`],
//!   reported by [`GpuWeight::converted`]); none is today.
//! - One-dimensional tensors (norm weights, scales) are always widened to F32: they are tiny and
//!   every shader then reads them the same way.

use super::device::{unavailable, Gpu};
use crate::error::Result;
use crate::tensor::{DType, HostTensor};

/// A chunk of a weight: leading rows `row0..row0 + rows` in one buffer.
pub struct Chunk {
    /// First leading-dimension row held.
    pub row0: usize,
    /// Rows held.
    pub rows: usize,
    /// The bytes (padded to a whole word).
    pub buf: wgpu::Buffer,
}

/// A weight on the device.
pub struct GpuWeight {
    /// The dtype of the device copy (the file's, or F32 when widened).
    pub dtype: DType,
    /// The file's dtype.
    pub source: DType,
    /// The shape, outermost first.
    pub shape: Vec<usize>,
    /// Whole leading rows, in order.
    pub chunks: Vec<Chunk>,
    /// The tensor it was uploaded from (shared bytes): what the host fallback reads.
    pub host: HostTensor,
}

impl GpuWeight {
    /// True when the device copy was widened from the file's dtype.
    pub fn converted(&self) -> bool {
        self.dtype != self.source
    }
    /// Elements per leading row.
    pub fn row_len(&self) -> usize {
        self.shape.iter().skip(1).product()
    }
    /// The shader dtype code of the device copy.
    pub fn code(&self) -> u32 {
        self.dtype.kernel_code().unwrap_or(0)
    }
    /// The only chunk of a weight that fits one binding (norm weights, small matrices).
    pub fn single(&self, op: &'static str) -> Result<&wgpu::Buffer> {
        match self.chunks.as_slice() {
            [c] => Ok(&c.buf),
            _ => Err(unavailable(format!(
                "{op}: a weight of {:?} split into {} bindings",
                self.shape,
                self.chunks.len()
            ))),
        }
    }
}

/// Uploads `t` once (see the module docs for the layout).
pub fn upload(gpu: &Gpu, t: &HostTensor) -> Result<GpuWeight> {
    upload_capped(gpu, t, u64::MAX)
}

/// [`upload`] with chunks of at most `max_chunk_bytes` (at least one row each): tests force
/// small weights into several chunks with it.
#[doc(hidden)]
pub fn upload_capped(gpu: &Gpu, t: &HostTensor, max_chunk_bytes: u64) -> Result<GpuWeight> {
    let shape = t.shape().to_vec();
    let dtype = t.gpu_dtype();
    let widen = dtype != t.dtype();
    let lead = shape.first().copied().unwrap_or(1).max(1);
    let row_len = t.row_len().max(if shape.is_empty() { 1 } else { 0 });
    let row_bytes = dtype.bytes_for(row_len).unwrap_or(0).max(1) as u64;
    // Chunks stay under 1 GiB too, so a flat element index inside one fits a shader's u32.
    let limit = gpu.max_binding().min(1 << 30);
    let per_chunk_bytes = limit.min(max_chunk_bytes);
    let per_chunk = (per_chunk_bytes / row_bytes).max(1) as usize;
    if row_bytes > limit {
        return Err(unavailable(format!(
            "a row of {row_bytes} bytes of {:?} exceeds the binding limit {limit}",
            shape
        )));
    }
    use wgpu::BufferUsages as U;
    let mut chunks = Vec::new();
    let mut row0 = 0;
    while row0 < lead {
        let rows = per_chunk.min(lead - row0);
        let part = if shape.is_empty() { t.clone() } else { t.rows(row0, rows)? };
        let buf = if widen {
            gpu.buffer_with(&part.f32_le_bytes(), U::STORAGE)?
        } else {
            gpu.buffer_with(part.bytes(), U::STORAGE)?
        };
        chunks.push(Chunk { row0, rows, buf });
        row0 += rows;
    }
    Ok(GpuWeight { dtype, source: t.dtype(), shape, chunks, host: t.clone() })
}
