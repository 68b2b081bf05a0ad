//! Weight storage formats: plain floats and ggml's block-quantized formats (as in GGUF files).
//!
//! For each format: [`dequantize`] (blocks -> f32), [`dot`] (a row of blocks . f32 vector) and, for
//! the formats garnet writes, [`quantize`] (f32 -> blocks). These are the scalar reference
//! definitions, bit-exact to ggml's; fast backends are tested against them.
//!
//! Every block format is decoded the same way: a format-specific unpacker (`legacy.rs` for the
//! 32-element formats, `kquants.rs` for the 256-element super-blocks) turns one block into integer
//! quants `q[e]` and per-sub-block f32 factors, and element `e` is then
//! `scale[e / sub] * q[e] - min[e / sub]`, evaluated in f32 in exactly that order. That order
//! is ggml's for every format (for the formats with an added min, `min` holds its negation,
//! which is exact; for formats without one, `min` is 0 and `a - 0 == a` bit for bit), so the
//! decoded values equal ggml's `dequantize_row_*` bit for bit. Scales are widened from f16 with
//! `half` (Q8_K's is an f32).
//!
//! Malformed lengths never panic: the functions work on the whole blocks that both sides hold
//! (the minimum of the two) and leave the rest alone.

mod dtype;
mod format;
mod kquants;
mod legacy;

pub use dtype::{f32_le_bytes, DType};
pub use format::Format;
pub(crate) use format::FORMATS;
use format::{Decode, Encode};

use crate::error::{KernelError, Result};
use half::f16;

/// The largest block, in elements (the k-quant super-block).
const MAX_BLOCK: usize = 256;
/// The most sub-blocks a block has (16 sub-blocks of 16 in Q2_K, Q3_K and Q6_K).
const MAX_SUB: usize = 16;

/// One block unpacked: element `e` is `scale[e / sub] * q[e] - min[e / sub]` (f32, in that order).
pub(crate) struct Unpacked {
    /// Integer quants, offsets already applied (e.g. `nibble - 8` for Q4_0).
    pub(crate) q: [i8; MAX_BLOCK],
    /// Per-sub-block scale.
    pub(crate) scale: [f32; MAX_SUB],
    /// Per-sub-block value subtracted after scaling (0 for the symmetric formats).
    pub(crate) min: [f32; MAX_SUB],
    /// Elements per sub-block.
    pub(crate) sub: usize,
}

impl Unpacked {
    pub(crate) fn new() -> Self {
        Unpacked { q: [0; MAX_BLOCK], scale: [0.0; MAX_SUB], min: [0.0; MAX_SUB], sub: MAX_BLOCK }
    }
}

/// Unpacks one block (`bytes.len()` is exactly the block size) into `u`.
pub(crate) type Unpack = fn(&[u8], &mut Unpacked);
/// Encodes one block (`values` and `out` are exactly one block each); `out` arrives zeroed.
pub(crate) type Pack = fn(&[f32], &mut [u8]);

/// The unpacker of a block format, `None` for the plain floats.
pub(crate) fn unpacker(dtype: DType) -> Option<Unpack> {
    match dtype.format().decode {
        Decode::Blocks(unpack) => Some(unpack),
        Decode::Float(_) => None,
    }
}

/// The little-endian f16 at `b[at..at + 2]`, widened to f32.
fn f16_at(b: &[u8], at: usize) -> f32 {
    f16::from_le_bytes([b[at], b[at + 1]]).to_f32()
}

/// ggml's `nearest_int`: `v` rounded to the nearest integer, ties to even, by adding 1.5 * 2^23
/// and reading the low mantissa bits. Exact for `|v| < 2^22`; other inputs (huge, infinite, NaN)
/// give some finite value without panicking, as in ggml (which only asserts the range).
fn nearest_int(v: f32) -> i32 {
    let t = v + 12_582_912.0;
    (t.to_bits() & 0x007f_ffff) as i32 - 0x0040_0000
}

/// The first value of largest magnitude in `x` (0 if all are 0; NaNs are skipped), as ggml's
/// quantizers pick it.
fn first_absmax(x: &[f32]) -> f32 {
    let (mut amax, mut max) = (0.0f32, 0.0f32);
    for &v in x {
        if v.abs() > amax {
            amax = v.abs();
            max = v;
        }
    }
    max
}

/// Decodes the whole blocks of `dtype` in `bytes` into `out` (block by block, as many as both
/// `bytes` and `out` hold whole; elements of `out` past them are left untouched).
/// Bit-exact to ggml's `dequantize_row_*` for every block format.
pub fn dequantize(dtype: DType, bytes: &[u8], out: &mut [f32]) {
    let (elems, size) = dtype.block();
    let unpack = match dtype.format().decode {
        Decode::Blocks(unpack) => unpack,
        Decode::Float(widen) => return widen(bytes, out),
    };
    let mut u = Unpacked::new();
    for (b, o) in bytes.chunks_exact(size).zip(out.chunks_exact_mut(elems)) {
        unpack(b, &mut u);
        for (e, (v, q)) in o.iter_mut().zip(&u.q).enumerate() {
            let s = e / u.sub;
            *v = u.scale[s] * f32::from(*q) - u.min[s];
        }
    }
}

/// `sum_e w[e] * x[e]` for the row `w` stored as blocks of `dtype` in `bytes`, over the whole
/// blocks that both `bytes` and `x` hold (the rest of the longer side is ignored).
///
/// The row is never materialised: each block is unpacked and, per sub-block, `Σ q·x` and `Σ x`
/// are accumulated in f32 and combined as `scale · Σ q·x − min · Σ x`; block sums are added to
/// the total in order. Plain floats are one sequential f32 sum. This regrouping differs from
/// `dequantize` + a plain dot only by f32 rounding (a few ulps of `Σ |w·x|`).
pub fn dot(dtype: DType, bytes: &[u8], x: &[f32]) -> f32 {
    let (elems, size) = dtype.block();
    let unpack = match dtype.format().decode {
        Decode::Blocks(unpack) => unpack,
        Decode::Float(widen) => {
            // Widened a run at a time, summed in element order.
            let mut run = [0.0f32; MAX_BLOCK];
            let mut sum = 0.0f32;
            for (b, xs) in bytes.chunks(MAX_BLOCK * size).zip(x.chunks(MAX_BLOCK)) {
                let n = xs.len().min(b.len() / size);
                widen(b, &mut run[..n]);
                for (w, xv) in run[..n].iter().zip(xs) {
                    sum += w * xv;
                }
            }
            return sum;
        }
    };
    let mut u = Unpacked::new();
    let mut total = 0.0f32;
    for (b, xb) in bytes.chunks_exact(size).zip(x.chunks_exact(elems)) {
        unpack(b, &mut u);
        let mut block = 0.0f32;
        for (s, (qs, xs)) in u.q[..elems].chunks_exact(u.sub).zip(xb.chunks_exact(u.sub)).enumerate() {
            let (mut qx, mut sx) = (0.0f32, 0.0f32);
            for (q, xv) in qs.iter().zip(xs) {
                qx += f32::from(*q) * xv;
                sx += xv;
            }
            block += u.scale[s] * qx;
            if u.min[s] != 0.0 {
                block -= u.min[s] * sx;
            }
        }
        total += block;
    }
    total
}

/// Encodes `values` as `dtype`: F32 / F16 / BF16 (round to nearest even), or blocks of Q8_0,
/// Q4_0, Q5_0, Q4_K, Q6_K or Q8_K as ggml's reference quantizers (`quantize_row_q8_0_ref`,
/// `quantize_row_q4_0_ref`, `quantize_row_q5_0_ref`, `quantize_row_q4_K_ref`,
/// `quantize_row_q6_K_ref`, `quantize_row_q8_K_ref`) write them.
///
/// Errors: `KernelError::DType` for the other block formats; `KernelError::Shape` if
/// `values.len()` is not a whole number of blocks.
pub fn quantize(dtype: DType, values: &[f32]) -> Result<Vec<u8>> {
    let format = dtype.format();
    let encode = format.encode.ok_or(KernelError::DType { op: "quantize", dtype: format.name })?;
    let (elems, size) = (format.block, format.bytes);
    if !values.len().is_multiple_of(elems) {
        return Err(KernelError::Shape {
            op: "quantize",
            what: format!("{} values are not whole {} blocks of {elems}", values.len(), dtype.name()),
        });
    }
    let mut out = vec![0u8; values.len() / elems * size];
    match encode {
        Encode::Float(narrow) => narrow(values, &mut out),
        Encode::Blocks(pack) => {
            for (v, b) in values.chunks_exact(elems).zip(out.chunks_exact_mut(size)) {
                pack(v, b);
            }
        }
    }
    Ok(out)
}
