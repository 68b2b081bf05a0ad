//! Host-side tensors: typed views of bytes that usually live in a memory-mapped checkpoint.
//!
//! A [`HostTensor`] never copies its bytes: it holds a shared handle to the storage (an `Mmap`
//! in practice) and a byte range. Elements are little-endian and may be unaligned, so readers go
//! through [`HostTensor::get`] / [`HostTensor::read_f32`], which decode byte by byte.

use crate::error::{KernelError, Result};
use half::{bf16, f16};
use std::sync::Arc;

/// Storage dtypes of weights: plain floats and ggml's block-quantized formats (GGUF).
/// A block format stores a row as blocks of `block().0` elements in `block().1` bytes each;
/// its definition and reference kernels are in [`crate::quant`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(non_camel_case_types)]
pub enum DType {
    /// IEEE f32.
    F32,
    /// IEEE f16.
    F16,
    /// bfloat16.
    BF16,
    /// 32 weights: f16 scale + 32 x i8.
    Q8_0,
    /// 32 weights: f16 scale + 32 x 4-bit (offset 8).
    Q4_0,
    /// 32 weights: f16 scale and min + 32 x 4-bit.
    Q4_1,
    /// 32 weights: f16 scale + 32 x 5-bit (offset 16).
    Q5_0,
    /// 32 weights: f16 scale and min + 32 x 5-bit.
    Q5_1,
    /// 256 weights: 16 sub-blocks of 2-bit with 4-bit scales and mins.
    Q2_K,
    /// 256 weights: 16 sub-blocks of 3-bit with 6-bit scales.
    Q3_K,
    /// 256 weights: 8 sub-blocks of 4-bit with 6-bit scales and mins.
    Q4_K,
    /// 256 weights: 8 sub-blocks of 5-bit with 6-bit scales and mins.
    Q5_K,
    /// 256 weights: 16 sub-blocks of 6-bit with 8-bit scales.
    Q6_K,
    /// 256 weights: f32 scale + 256 x i8 + 16 block sums (ggml's activation format for k-quants).
    Q8_K,
}

impl DType {
    /// The code the GPU kernels switch on for the dtypes they decode on the device
    /// (`shaders/weights.wgsl`'s `DTYPE`, `kernels/cuda/weights.cuh`'s `enum DType`); `None` for
    /// the block formats the GPU backends widen to f32 at upload.
    pub fn kernel_code(self) -> Option<u32> {
        Some(match self {
            DType::F32 => 0,
            DType::F16 => 1,
            DType::BF16 => 2,
            DType::Q8_0 => 3,
            DType::Q4_0 => 4,
            DType::Q5_0 => 5,
            DType::Q4_K => 6,
            DType::Q6_K => 7,
            _ => return None,
        })
    }

    /// (elements per block, bytes per block); plain floats are blocks of one element.
    pub fn block(self) -> (usize, usize) {
        match self {
            DType::F32 => (1, 4),
            DType::F16 | DType::BF16 => (1, 2),
            DType::Q8_0 => (32, 34),
            DType::Q4_0 => (32, 18),
            DType::Q4_1 => (32, 20),
            DType::Q5_0 => (32, 22),
            DType::Q5_1 => (32, 24),
            DType::Q2_K => (256, 84),
            DType::Q3_K => (256, 110),
            DType::Q4_K => (256, 144),
            DType::Q5_K => (256, 176),
            DType::Q6_K => (256, 210),
            DType::Q8_K => (256, 292),
        }
    }
    /// True for the block-quantized formats.
    pub fn is_quantized(self) -> bool {
        self.block().0 > 1
    }
    /// Bytes of `n` elements, or `None` if `n` is not a whole number of blocks (or overflows).
    pub fn bytes_for(self, n: usize) -> Option<usize> {
        let (elems, bytes) = self.block();
        n.is_multiple_of(elems).then(|| (n / elems).checked_mul(bytes)).flatten()
    }
    /// The safetensors / ggml spelling ("F32", "BF16", "Q4_K", ...).
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "F32",
            DType::F16 => "F16",
            DType::BF16 => "BF16",
            DType::Q8_0 => "Q8_0",
            DType::Q4_0 => "Q4_0",
            DType::Q4_1 => "Q4_1",
            DType::Q5_0 => "Q5_0",
            DType::Q5_1 => "Q5_1",
            DType::Q2_K => "Q2_K",
            DType::Q3_K => "Q3_K",
            DType::Q4_K => "Q4_K",
            DType::Q5_K => "Q5_K",
            DType::Q6_K => "Q6_K",
            DType::Q8_K => "Q8_K",
        }
    }
    /// `x` rounded to this dtype (round to nearest even) and widened back to f32. Block formats
    /// have no per-element rounding; they return `x`.
    pub fn round(self, x: f32) -> f32 {
        match self {
            DType::F16 => f16::from_f32(x).to_f32(),
            DType::BF16 => bf16::from_f32(x).to_f32(),
            _ => x,
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
    /// dtype the kernels decode on the device ([`DType::kernel_code`]), else F32 (vectors, and
    /// the block formats without a device decoder, are widened at upload).
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

/// Little-endian bytes of f32 values.
pub fn f32_le_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}
