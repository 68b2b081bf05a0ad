//! The storage dtypes: what a weight's bytes are. Their facts (block size, bytes, device code,
//! decoder, encoder) are one table, `format.rs`; the byte layouts are in docs/KERNELS.md.

use half::{bf16, f16};

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
    /// Every dtype, in declaration (and format-table) order.
    pub const ALL: [DType; super::format::FORMATS.len()] = {
        let mut all = [DType::F32; super::format::FORMATS.len()];
        let mut i = 0;
        while i < all.len() {
            all[i] = super::format::FORMATS[i].dtype;
            i += 1;
        }
        all
    };
    /// The code the GPU kernels switch on for the dtypes they decode on the device
    /// (`shaders/weights.wgsl`'s `DTYPE`, `kernels/cuda/weights.cuh`'s `enum DType`): every
    /// format has one today. From [`DType::format`].
    pub fn kernel_code(self) -> Option<u32> {
        self.format().kernel_code
    }
    /// (elements per block, bytes per block); plain floats are blocks of one element.
    pub fn block(self) -> (usize, usize) {
        let f = self.format();
        (f.block, f.bytes)
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
        self.format().name
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

/// Little-endian bytes of f32 values.
pub fn f32_le_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}
