//! One table of the storage formats (like ggml's `type_traits`): for each [`DType`], its name,
//! block geometry, GPU device code, decoder and encoder. The `DType` methods, the quantizers, the
//! tensor code and the GPU uploads all read it, so a format's facts live in one row.

use super::{kquants, legacy, DType, Pack, Unpack};
use half::{bf16, f16};

/// How a format's bytes become f32.
#[derive(Clone, Copy)]
pub(crate) enum Decode {
    /// A plain float: widens the elements of little-endian bytes into `out`, as many as both
    /// hold whole (a whole run per call, so the loop is the float's own, not a call per element).
    Float(fn(&[u8], &mut [f32])),
    /// A block format: one block unpacked into quants and per-sub-block factors.
    Blocks(Unpack),
}

/// How f32 values become a format's bytes.
#[derive(Clone, Copy)]
pub(crate) enum Encode {
    /// A plain float: rounds (to nearest even) a whole run of values into `out`, as many as both
    /// hold whole.
    Float(fn(&[f32], &mut [u8])),
    /// A block format: one block.
    Blocks(Pack),
}

/// The facts of one storage format.
pub struct Format {
    /// The dtype this row describes (its index in the table).
    pub dtype: DType,
    /// The safetensors / ggml spelling ("F32", "BF16", "Q4_K", ...).
    pub name: &'static str,
    /// Elements per block (1 for the plain floats).
    pub block: usize,
    /// Bytes per block.
    pub bytes: usize,
    /// The code the GPU kernels switch on for the formats they decode on the device
    /// (`shaders/weights.wgsl`'s `DTYPE`, `kernels/cuda/weights.cuh`'s `enum DType`, and the
    /// order of the CUDA per-dtype kernel tables); `None` would make the GPU backends widen the
    /// format to f32 at upload (every format has a code today).
    pub kernel_code: Option<u32>,
    /// The decoder.
    pub(crate) decode: Decode,
    /// The encoder (`None`: garnet does not write this format).
    pub(crate) encode: Option<Encode>,
}

/// A block format's row.
const fn blocks(
    dtype: DType,
    name: &'static str,
    (block, bytes): (usize, usize),
    kernel_code: Option<u32>,
    unpack: Unpack,
    pack: Option<Pack>,
) -> Format {
    let encode = match pack {
        Some(p) => Some(Encode::Blocks(p)),
        None => None,
    };
    Format { dtype, name, block, bytes, kernel_code, decode: Decode::Blocks(unpack), encode }
}

/// A plain float's row (blocks of one element, always encodable).
const fn float(
    dtype: DType,
    name: &'static str,
    bytes: usize,
    kernel_code: Option<u32>,
    decode: fn(&[u8], &mut [f32]),
    encode: fn(&[f32], &mut [u8]),
) -> Format {
    let (decode, encode) = (Decode::Float(decode), Some(Encode::Float(encode)));
    Format { dtype, name, block: 1, bytes, kernel_code, decode, encode }
}

/// Widens the `N`-byte little-endian floats of `b` into `out` with `get`.
fn widen<const N: usize>(b: &[u8], out: &mut [f32], get: impl Fn([u8; N]) -> f32) {
    for (o, c) in out.iter_mut().zip(b.chunks_exact(N)) {
        let mut a = [0u8; N];
        a.copy_from_slice(c);
        *o = get(a);
    }
}

/// Narrows `values` into `N`-byte little-endian floats in `out` with `put`.
fn narrow<const N: usize>(values: &[f32], out: &mut [u8], put: impl Fn(f32) -> [u8; N]) {
    for (c, &v) in out.chunks_exact_mut(N).zip(values) {
        c.copy_from_slice(&put(v));
    }
}

fn f32_decode(b: &[u8], out: &mut [f32]) {
    widen(b, out, f32::from_le_bytes);
}
fn f32_encode(values: &[f32], out: &mut [u8]) {
    narrow(values, out, f32::to_le_bytes);
}
fn f16_decode(b: &[u8], out: &mut [f32]) {
    widen(b, out, |a| f16::from_le_bytes(a).to_f32());
}
fn f16_encode(values: &[f32], out: &mut [u8]) {
    narrow(values, out, |v| f16::from_f32(v).to_le_bytes());
}
fn bf16_decode(b: &[u8], out: &mut [f32]) {
    widen(b, out, |a| bf16::from_le_bytes(a).to_f32());
}
fn bf16_encode(values: &[f32], out: &mut [u8]) {
    narrow(values, out, |v| bf16::from_f32(v).to_le_bytes());
}

/// Every format, in `DType` declaration order. The device codes are the GPU kernels' numbering:
/// changing one means changing `weights.wgsl`, `weights.cuh` and the CUDA entry lists with it.
pub(crate) const FORMATS: [Format; 14] = [
    float(DType::F32, "F32", 4, Some(0), f32_decode, f32_encode),
    float(DType::F16, "F16", 2, Some(1), f16_decode, f16_encode),
    float(DType::BF16, "BF16", 2, Some(2), bf16_decode, bf16_encode),
    blocks(DType::Q8_0, "Q8_0", (32, 34), Some(3), legacy::unpack_q8_0, Some(legacy::quantize_q8_0)),
    blocks(DType::Q4_0, "Q4_0", (32, 18), Some(4), legacy::unpack_q4_0, Some(legacy::quantize_q4_0)),
    blocks(DType::Q4_1, "Q4_1", (32, 20), Some(5), legacy::unpack_q4_1, None),
    blocks(DType::Q5_0, "Q5_0", (32, 22), Some(6), legacy::unpack_q5_0, Some(legacy::quantize_q5_0)),
    blocks(DType::Q5_1, "Q5_1", (32, 24), Some(7), legacy::unpack_q5_1, None),
    blocks(DType::Q2_K, "Q2_K", (256, 84), Some(8), kquants::unpack_q2_k, None),
    blocks(DType::Q3_K, "Q3_K", (256, 110), Some(9), kquants::unpack_q3_k, None),
    blocks(DType::Q4_K, "Q4_K", (256, 144), Some(10), kquants::unpack_q4_k, Some(kquants::quantize_q4_k)),
    blocks(DType::Q5_K, "Q5_K", (256, 176), Some(11), kquants::unpack_q5_k, None),
    blocks(DType::Q6_K, "Q6_K", (256, 210), Some(12), kquants::unpack_q6_k, Some(kquants::quantize_q6_k)),
    blocks(DType::Q8_K, "Q8_K", (256, 292), Some(13), kquants::unpack_q8_k, Some(kquants::quantize_q8_k)),
];

// Row `i` describes the dtype whose discriminant is `i` ([`DType::format`] indexes by it), and
// the device codes are 0, 1, 2, ... in table order (the CUDA kernel tables are built in that
// order, see `cuda/kernels.rs`).
const _: () = {
    let mut i = 0;
    let mut code = 0;
    while i < FORMATS.len() {
        assert!(FORMATS[i].dtype as usize == i, "FORMATS is out of DType order");
        if let Some(c) = FORMATS[i].kernel_code {
            assert!(c == code, "device codes must count up in table order");
            code += 1;
        }
        i += 1;
    }
};

impl DType {
    /// This dtype's row of the format table.
    pub const fn format(self) -> &'static Format {
        &FORMATS[self as usize]
    }
}
