//! Host-side tensors: typed views of bytes that usually live in a memory-mapped checkpoint.
//!
//! A [`HostTensor`] never copies its bytes: it holds a shared handle to the storage (an `Mmap`
//! in practice) and a byte range. Elements are little-endian and may be unaligned, so readers go
//! through [`HostTensor::get`] / [`HostTensor::read_f32`], which decode byte by byte.

use crate::error::{KernelError, Result};
pub use crate::quant::{f32_le_bytes, DType};
use std::sync::Arc;

/// Shared, read-only bytes (an `Mmap`, a `Vec<u8>`, ...).
pub type Storage = Arc<dyn AsRef<[u8]> + Send + Sync>;

/// A typed, shaped view of bytes in shared storage. Cloning is cheap (the storage is shared).
#[derive(Clone)]
pub struct HostTensor {
    storage: Storage,
    offset: usize,
    dtype: DType,
    shape: Vec<usize>,
}

impl std::fmt::Debug for HostTensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HostTensor({} {:?} @{})", self.dtype.name(), self.shape, self.offset)
    }
}

impl HostTensor {
    /// A view of `shape` elements of `dtype` starting at byte `offset` of `storage`.
    /// Fails if the bytes do not fit inside the storage (checked arithmetic throughout).
    pub fn new(storage: Storage, offset: usize, dtype: DType, shape: Vec<usize>) -> Result<Self> {
        let numel = shape
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .ok_or_else(|| KernelError::Bounds(format!("shape {shape:?} overflows")))?;
        let last = shape.last().copied().unwrap_or(1);
        if !last.is_multiple_of(dtype.block().0) {
            return Err(KernelError::Bounds(format!(
                "{} rows of {last} elements are not whole blocks of {}",
                dtype.name(),
                dtype.block().0
            )));
        }
        let end = dtype
            .bytes_for(numel)
            .and_then(|n| n.checked_add(offset))
            .ok_or_else(|| KernelError::Bounds(format!("shape {shape:?} at offset {offset} overflows")))?;
        let len = (*storage).as_ref().len();
        if end > len {
            return Err(KernelError::Bounds(format!(
                "{} {shape:?} at bytes {offset}..{end} exceeds storage of {len} bytes",
                dtype.name()
            )));
        }
        Ok(HostTensor { storage, offset, dtype, shape })
    }

    /// An owned f32 tensor (tests, small computed tensors).
    pub fn from_f32(values: &[f32], shape: Vec<usize>) -> Result<Self> {
        Self::new(Arc::new(f32_le_bytes(values)), 0, DType::F32, shape)
    }

    /// An owned tensor of `dtype` holding `values` rounded (or quantized, row by row) to it.
    pub fn from_f32_as(values: &[f32], shape: Vec<usize>, dtype: DType) -> Result<Self> {
        let bytes = crate::quant::quantize(dtype, values)?;
        Self::new(Arc::new(bytes), 0, dtype, shape)
    }

    /// Storage dtype.
    pub fn dtype(&self) -> DType {
        self.dtype
    }
    /// Dimensions, outermost first.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }
    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
    /// Size of the data in bytes.
    pub fn nbytes(&self) -> usize {
        // `new` checked that the elements are whole blocks and that the size fits.
        self.dtype.bytes_for(self.numel()).unwrap_or(0)
    }
    /// The raw little-endian bytes.
    pub fn bytes(&self) -> &[u8] {
        &(*self.storage).as_ref()[self.offset..self.offset + self.nbytes()]
    }
    /// Elements per row of the leading dimension (product of the trailing dims).
    pub fn row_len(&self) -> usize {
        self.shape.iter().skip(1).product()
    }
    /// Rows `start..start + count` of the leading dimension, as a view of the same storage.
    pub fn rows(&self, start: usize, count: usize) -> Result<HostTensor> {
        let lead = self.shape.first().copied().unwrap_or(1);
        if start.checked_add(count).is_none_or(|e| e > lead) {
            return Err(KernelError::Bounds(format!("rows {start}+{count} of {:?}", self.shape)));
        }
        let mut shape = self.shape.clone();
        if let Some(d) = shape.first_mut() {
            *d = count;
        }
        let offset = self.offset + start * self.dtype.bytes_for(self.row_len()).unwrap_or(0);
        HostTensor::new(self.storage.clone(), offset, self.dtype, shape)
    }

    /// Element `i` (flat index) widened to f32 (a block format decodes the element's block).
    /// Panics only on a programming error (i >= numel); callers index within validated shapes.
    pub fn get(&self, i: usize) -> f32 {
        let mut one = [0.0f32; 256];
        let (elems, bytes) = self.dtype.block();
        let first = i / elems;
        crate::quant::dequantize(self.dtype, &self.bytes()[first * bytes..(first + 1) * bytes], &mut one[..elems]);
        one[i % elems]
    }

    /// Elements `start..start + out.len()` (flat) widened into `out`; for block formats, `start`
    /// and `out.len()` should be whole blocks (rows always are), else it decodes block by block.
    pub fn read_f32(&self, start: usize, out: &mut [f32]) {
        let (elems, bytes) = self.dtype.block();
        if start.is_multiple_of(elems) && out.len().is_multiple_of(elems) {
            let b = &self.bytes()[start / elems * bytes..(start + out.len()) / elems * bytes];
            crate::quant::dequantize(self.dtype, b, out);
        } else {
            for (j, o) in out.iter_mut().enumerate() {
                *o = self.get(start + j);
            }
        }
    }

    /// The dtype a GPU backend (WGSL, CUDA) keeps this tensor in: its own for a matrix whose
    /// dtype the kernels decode on the device ([`DType::kernel_code`]: every format today), else
    /// F32 (vectors are widened at upload: tiny, and every kernel reads them the same way).
    pub fn gpu_dtype(&self) -> DType {
        if self.shape().len() < 2 || self.dtype.kernel_code().is_none() {
            DType::F32
        } else {
            self.dtype
        }
    }

    /// The whole tensor as little-endian f32 bytes: what a GPU backend uploads for a tensor it
    /// widens ([`HostTensor::gpu_dtype`]). Whole rows are whole blocks, so this is one
    /// dequantize call, not a block decode per element.
    pub fn f32_le_bytes(&self) -> Vec<u8> {
        let mut values = vec![0.0f32; self.numel()];
        self.read_f32(0, &mut values);
        f32_le_bytes(&values)
    }

    /// The whole tensor widened to f32 (tests and small tensors only).
    pub fn to_f32_vec(&self) -> Vec<f32> {
        (0..self.numel()).map(|i| self.get(i)).collect()
    }
}
