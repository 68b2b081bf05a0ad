//! A small typed GGUF v3 writer: the header (metadata, tensor infos, padding to the alignment) as
//! bytes, and the tensor offsets that the data written after it must follow.
//!
//! Layout (little-endian): `"GGUF"`, u32 version 3, u64 tensor count, u64 metadata count; each
//! metadata entry `string key, u32 type, value`; each tensor info `string name, u32 n_dims,
//! n_dims × u64 ne (innermost first), u32 ggml type, u64 offset`; zero padding to [`ALIGNMENT`];
//! the data section, each tensor starting at its offset (a multiple of [`ALIGNMENT`]).

use garnet::gguf::{MetaArray, MetaValue};
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
    /// Any value as read from a GGUF file (`--vocab-from`), written back with its own types.
    Meta(MetaValue),
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
        Value::Meta(m) => {
            out.extend(meta_type(m).to_le_bytes());
            meta_value(out, m);
        }
    }
}

/// The GGUF type id of a value.
fn meta_type(m: &MetaValue) -> u32 {
    match m {
        MetaValue::U8(_) => 0,
        MetaValue::I8(_) => 1,
        MetaValue::U16(_) => 2,
        MetaValue::I16(_) => 3,
        MetaValue::U32(_) => 4,
        MetaValue::I32(_) => 5,
        MetaValue::F32(_) => 6,
        MetaValue::Bool(_) => 7,
        MetaValue::String(_) => 8,
        MetaValue::Array(_) => 9,
        MetaValue::U64(_) => 10,
        MetaValue::I64(_) => 11,
        MetaValue::F64(_) => 12,
    }
}

/// A value's bytes after its type id.
fn meta_value(out: &mut Vec<u8>, m: &MetaValue) {
    match m {
        MetaValue::U8(x) => out.push(*x),
        MetaValue::I8(x) => out.extend(x.to_le_bytes()),
        MetaValue::U16(x) => out.extend(x.to_le_bytes()),
        MetaValue::I16(x) => out.extend(x.to_le_bytes()),
        MetaValue::U32(x) => out.extend(x.to_le_bytes()),
        MetaValue::I32(x) => out.extend(x.to_le_bytes()),
        MetaValue::U64(x) => out.extend(x.to_le_bytes()),
        MetaValue::I64(x) => out.extend(x.to_le_bytes()),
        MetaValue::F32(x) => out.extend(x.to_le_bytes()),
        MetaValue::F64(x) => out.extend(x.to_le_bytes()),
        MetaValue::Bool(x) => out.push(u8::from(*x)),
        MetaValue::String(s) => string(out, s),
        MetaValue::Array(a) => array(out, a),
    }
}

/// An array: element type, count, elements.
fn array(out: &mut Vec<u8>, a: &MetaArray) {
    fn each<T>(out: &mut Vec<u8>, ty: u32, xs: &[T], mut f: impl FnMut(&mut Vec<u8>, &T)) {
        out.extend(ty.to_le_bytes());
        out.extend((xs.len() as u64).to_le_bytes());
        xs.iter().for_each(|x| f(out, x));
    }
    match a {
        MetaArray::U8(xs) => each(out, 0, xs, |o, x| o.push(*x)),
        MetaArray::I8(xs) => each(out, 1, xs, |o, x| o.extend(x.to_le_bytes())),
        MetaArray::U16(xs) => each(out, 2, xs, |o, x| o.extend(x.to_le_bytes())),
        MetaArray::I16(xs) => each(out, 3, xs, |o, x| o.extend(x.to_le_bytes())),
        MetaArray::U32(xs) => each(out, 4, xs, |o, x| o.extend(x.to_le_bytes())),
        MetaArray::I32(xs) => each(out, 5, xs, |o, x| o.extend(x.to_le_bytes())),
        MetaArray::F32(xs) => each(out, 6, xs, |o, x| o.extend(x.to_le_bytes())),
        MetaArray::Bool(xs) => each(out, 7, xs, |o, x| o.push(u8::from(*x))),
        MetaArray::String(xs) => each(out, 8, xs, |o, x| string(o, x)),
        MetaArray::Array(xs) => each(out, 9, xs, array),
        MetaArray::U64(xs) => each(out, 10, xs, |o, x| o.extend(x.to_le_bytes())),
        MetaArray::I64(xs) => each(out, 11, xs, |o, x| o.extend(x.to_le_bytes())),
        MetaArray::F64(xs) => each(out, 12, xs, |o, x| o.extend(x.to_le_bytes())),
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
