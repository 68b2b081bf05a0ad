//! Host-side tensors: typed views of bytes that usually live in a memory-mapped checkpoint.
//!
//! A [`HostTensor`] never copies its bytes: it holds a shared handle to the storage (an `Mmap`
//! in practice) and a byte range. Elements are little-endian and may be unaligned, so readers go
//! through [`HostTensor::get`] / [`HostTensor::read_f32`], which decode byte by byte.

use crate::error::{KernelError, Result};
use half::{bf16, f16};
use std::sync::Arc;

/// Storage dtypes of weights.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    /// IEEE f32.
    F32,
    /// IEEE f16.
    F16,
    /// bfloat16.
    BF16,
}

impl DType {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::F32 => 4,
            DType::F16 | DType::BF16 => 2,
        }
    }
    /// The safetensors spelling ("F32", "F16", "BF16").
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "F32",
            DType::F16 => "F16",
            DType::BF16 => "BF16",
        }
    }
    /// `x` rounded to this dtype (round to nearest even) and widened back to f32.
    pub fn round(self, x: f32) -> f32 {
        match self {
            DType::F32 => x,
            DType::F16 => f16::from_f32(x).to_f32(),
            DType::BF16 => bf16::from_f32(x).to_f32(),
        }
    }
}

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
        let end = numel
            .checked_mul(dtype.size())
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
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        Self::new(Arc::new(bytes), 0, DType::F32, shape)
    }

    /// An owned tensor of `dtype` holding `values` rounded to it (tests).
    pub fn from_f32_as(values: &[f32], shape: Vec<usize>, dtype: DType) -> Result<Self> {
        let bytes: Vec<u8> = match dtype {
            DType::F32 => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            DType::F16 => values.iter().flat_map(|v| f16::from_f32(*v).to_le_bytes()).collect(),
            DType::BF16 => values.iter().flat_map(|v| bf16::from_f32(*v).to_le_bytes()).collect(),
        };
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
        self.numel() * self.dtype.size()
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
        let offset = self.offset + start * self.row_len() * self.dtype.size();
        HostTensor::new(self.storage.clone(), offset, self.dtype, shape)
    }

    /// Element `i` (flat index) widened to f32. Panics only on a programming error (i >= numel);
    /// callers index within shapes they validated.
    pub fn get(&self, i: usize) -> f32 {
        let b = &self.bytes()[i * self.dtype.size()..];
        match self.dtype {
            DType::F32 => f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            DType::F16 => f16::from_le_bytes([b[0], b[1]]).to_f32(),
            DType::BF16 => bf16::from_le_bytes([b[0], b[1]]).to_f32(),
        }
    }

    /// Elements `start..start + out.len()` (flat) widened into `out`.
    pub fn read_f32(&self, start: usize, out: &mut [f32]) {
        for (j, o) in out.iter_mut().enumerate() {
            *o = self.get(start + j);
        }
    }

    /// The whole tensor widened to f32 (tests and small tensors only).
    pub fn to_f32_vec(&self) -> Vec<f32> {
        (0..self.numel()).map(|i| self.get(i)).collect()
    }
}
