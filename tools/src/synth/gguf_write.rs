//! A small typed GGUF v3 writer: the header (metadata, tensor infos, padding to the alignment) as
//! bytes, and the tensor offsets that the data written after it must follow.
//!
//! Layout (little-endian): `"GGUF"`, u32 version 3, u64 tensor count, u64 metadata count; each
//! metadata entry `string key, u32 type, value`; each tensor info `string name, u32 n_dims,
//! n_dims × u64 ne (innermost first), u32 ggml type, u64 offset`; zero padding to [`ALIGNMENT`];
//! the data section, each tensor starting at its offset (a multiple of [`ALIGNMENT`]).

use garnet_kernels::DType;

/// `general.alignment`'s default, which this writer uses (and does not write).
pub const ALIGNMENT: u64 = 32;

/// A metadata value (the GGUF types garnet's Gemma 4 metadata needs).
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// GGUF type 4.
    U32(u32),
    /// GGUF type 6.
    F32(f32),
    /// GGUF type 8.
    Str(String),
    /// An array (type 9) of u32.
    U32s(Vec<u32>),
    /// An array (type 9) of bools (type 7).
    Bools(Vec<bool>),
}

/// One tensor of the file.
#[derive(Clone, Debug)]
pub struct Tensor {
    /// GGUF name.
    pub name: String,
    /// Dimensions, outermost first (written reversed, as `ne`).
    pub shape: Vec<usize>,
    /// Storage dtype.
    pub dtype: DType,
}

impl Tensor {
    /// Data bytes (`shape`'s rows are whole blocks of `dtype`; checked by the caller's plan).
    pub fn nbytes(&self) -> u64 {
        self.dtype.bytes_for(self.shape.iter().product()).unwrap_or(0) as u64
    }
}

/// The ggml type id of `dtype` (gguf-py's `GGMLQuantizationType`).
pub fn ggml_type(dtype: DType) -> u32 {
    match dtype {
        DType::F32 => 0,
        DType::F16 => 1,
        DType::Q4_0 => 2,
        DType::Q4_1 => 3,
        DType::Q5_0 => 6,
        DType::Q5_1 => 7,
        DType::Q8_0 => 8,
        DType::Q2_K => 10,
        DType::Q3_K => 11,
        DType::Q4_K => 12,
        DType::Q5_K => 13,
        DType::Q6_K => 14,
        DType::Q8_K => 15,
        DType::BF16 => 30,
    }
}

/// Zero bytes that follow `len` bytes of data to reach the alignment.
pub fn padding(len: u64) -> u64 {
    len.next_multiple_of(ALIGNMENT) - len
}

fn string(out: &mut Vec<u8>, s: &str) {
    out.extend((s.len() as u64).to_le_bytes());
    out.extend(s.as_bytes());
}

fn value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::U32(x) => {
            out.extend(4u32.to_le_bytes());
            out.extend(x.to_le_bytes());
        }
        Value::F32(x) => {
            out.extend(6u32.to_le_bytes());
            out.extend(x.to_le_bytes());
        }
        Value::Str(s) => {
            out.extend(8u32.to_le_bytes());
            string(out, s);
        }
        Value::U32s(xs) => {
            out.extend(9u32.to_le_bytes());
            out.extend(4u32.to_le_bytes());
            out.extend((xs.len() as u64).to_le_bytes());
            xs.iter().for_each(|x| out.extend(x.to_le_bytes()));
        }
        Value::Bools(xs) => {
            out.extend(9u32.to_le_bytes());
            out.extend(7u32.to_le_bytes());
            out.extend((xs.len() as u64).to_le_bytes());
            out.extend(xs.iter().map(|&b| b as u8));
        }
    }
}

/// The header up to the data section (padded to the alignment). Tensor `i`'s data goes at the
/// data-section offset that the sum of the earlier tensors' [`Tensor::nbytes`] + [`padding`] gives.
pub fn header(meta: &[(String, Value)], tensors: &[Tensor]) -> Vec<u8> {
    let mut out = b"GGUF".to_vec();
    out.extend(3u32.to_le_bytes());
    out.extend((tensors.len() as u64).to_le_bytes());
    out.extend((meta.len() as u64).to_le_bytes());
    for (key, v) in meta {
        string(&mut out, key);
        value(&mut out, v);
    }
    let mut offset = 0u64;
    for t in tensors {
        string(&mut out, &t.name);
        out.extend((t.shape.len() as u32).to_le_bytes());
        t.shape.iter().rev().for_each(|&d| out.extend((d as u64).to_le_bytes()));
        out.extend(ggml_type(t.dtype).to_le_bytes());
        out.extend(offset.to_le_bytes());
        offset += t.nbytes() + padding(t.nbytes());
    }
    out.resize(out.len() + padding(out.len() as u64) as usize, 0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_aligned_and_offsets_follow_padding() {
        let t = |name: &str, shape: Vec<usize>, dtype| Tensor { name: name.into(), shape, dtype };
        let tensors = [t("a", vec![3], DType::F32), t("b", vec![2, 32], DType::Q4_0)];
        let meta = [("k".to_string(), Value::Bools(vec![true, false]))];
        let h = header(&meta, &tensors);
        assert_eq!(h.len() as u64 % ALIGNMENT, 0);
        assert_eq!(&h[..4], b"GGUF");
        // "b" starts after a's 12 bytes padded to 32.
        let needle = [b"b".as_slice(), &2u32.to_le_bytes(), &32u64.to_le_bytes(), &2u64.to_le_bytes()].concat();
        let at = h.windows(needle.len()).position(|w| w == needle).unwrap() + needle.len();
        assert_eq!(&h[at..at + 12], [2u32.to_le_bytes().as_slice(), &32u64.to_le_bytes()].concat());
    }
}
