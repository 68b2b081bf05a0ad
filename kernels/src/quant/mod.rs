//! Weight storage formats: plain floats and ggml's block-quantized formats (as in GGUF files).
//!
//! For each format: `dequantize` (blocks -> f32), `dot` (a row of blocks . f32 vector) and, for
//! the formats garnet writes, `quantize` (f32 -> blocks). These are the scalar reference
//! definitions, bit-exact to ggml's; fast backends are tested against them.

use crate::error::{KernelError, Result};
use crate::tensor::DType;
use half::{bf16, f16};

/// Decodes whole blocks of `dtype` from `bytes` into `out` (`out.len()` = blocks x block size).
pub fn dequantize(dtype: DType, bytes: &[u8], out: &mut [f32]) {
    match dtype {
        DType::F32 => {
            for (o, b) in out.iter_mut().zip(bytes.chunks_exact(4)) {
                *o = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
        }
        DType::F16 => {
            for (o, b) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                *o = f16::from_le_bytes([b[0], b[1]]).to_f32();
            }
        }
        DType::BF16 => {
            for (o, b) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                *o = bf16::from_le_bytes([b[0], b[1]]).to_f32();
            }
        }
        _ => out.fill(f32::NAN), // block formats: being written (issue 3)
    }
}

/// Encodes `values` (whole blocks) as `dtype`.
pub fn quantize(dtype: DType, values: &[f32]) -> Result<Vec<u8>> {
    Ok(match dtype {
        DType::F32 => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        DType::F16 => values.iter().flat_map(|v| f16::from_f32(*v).to_le_bytes()).collect(),
        DType::BF16 => values.iter().flat_map(|v| bf16::from_f32(*v).to_le_bytes()).collect(),
        other => return Err(KernelError::DType { op: "quantize", dtype: other.name() }),
    })
}
