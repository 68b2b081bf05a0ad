//! GGUF metadata values: [`MetaValue`] scalars and typed [`MetaArray`]s, and their reader.

use super::Cursor;

/// Deepest nesting of arrays accepted (GGUF files in practice nest none).
const MAX_DEPTH: usize = 8;
/// Most elements of a metadata array: Gemma's longest are its 262144 tokens and their merges. A
/// string takes 8 bytes in the file but 24 in memory, so counts are capped, not only checked
/// against the file length.
const MAX_ARRAY_LEN: usize = 1 << 24;

/// One metadata value. Integer getters accept any integer type whose value fits.
#[derive(Clone, Debug, PartialEq)]
pub enum MetaValue {
    /// GGUF type 0.
    U8(u8),
    /// GGUF type 1.
    I8(i8),
    /// GGUF type 2.
    U16(u16),
    /// GGUF type 3.
    I16(i16),
    /// GGUF type 4.
    U32(u32),
    /// GGUF type 5.
    I32(i32),
    /// GGUF type 10.
    U64(u64),
    /// GGUF type 11.
    I64(i64),
    /// GGUF type 6.
    F32(f32),
    /// GGUF type 12.
    F64(f64),
    /// GGUF type 7.
    Bool(bool),
    /// GGUF type 8 (UTF-8).
    String(String),
    /// GGUF type 9.
    Array(MetaArray),
}

/// A metadata array, stored by element type (a 262144-entry token list is one `Vec<String>`).
#[derive(Clone, Debug, PartialEq)]
pub enum MetaArray {
    /// u8 elements.
    U8(Vec<u8>),
    /// i8 elements.
    I8(Vec<i8>),
    /// u16 elements.
    U16(Vec<u16>),
    /// i16 elements.
    I16(Vec<i16>),
    /// u32 elements.
    U32(Vec<u32>),
    /// i32 elements (gguf-py writes Python int lists as i32).
    I32(Vec<i32>),
    /// u64 elements.
    U64(Vec<u64>),
    /// i64 elements.
    I64(Vec<i64>),
    /// f32 elements.
    F32(Vec<f32>),
    /// f64 elements.
    F64(Vec<f64>),
    /// bool elements.
    Bool(Vec<bool>),
    /// string elements.
    String(Vec<String>),
    /// nested arrays.
    Array(Vec<MetaArray>),
}

impl MetaValue {
    /// An integer value (of any integer type) as u64, if non-negative.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            MetaValue::U8(v) => Some(v.into()),
            MetaValue::U16(v) => Some(v.into()),
            MetaValue::U32(v) => Some(v.into()),
            MetaValue::U64(v) => Some(v),
            MetaValue::I8(v) => u64::try_from(v).ok(),
            MetaValue::I16(v) => u64::try_from(v).ok(),
            MetaValue::I32(v) => u64::try_from(v).ok(),
            MetaValue::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }
    /// An integer value (of any integer type) as i64, if it fits.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            MetaValue::I8(v) => Some(v.into()),
            MetaValue::I16(v) => Some(v.into()),
            MetaValue::I32(v) => Some(v.into()),
            MetaValue::I64(v) => Some(v),
            _ => self.as_u64().and_then(|v| i64::try_from(v).ok()),
        }
    }
    /// A float (or integer) value as f64.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            MetaValue::F32(v) => Some(v.into()),
            MetaValue::F64(v) => Some(v),
            _ => self.as_i64().map(|v| v as f64),
        }
    }
    /// A float (or integer) value as f32.
    pub fn as_f32(&self) -> Option<f32> {
        self.as_f64().map(|v| v as f32)
    }
    /// A bool value.
    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            MetaValue::Bool(b) => Some(b),
            _ => None,
        }
    }
    /// A string value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            MetaValue::String(s) => Some(s),
            _ => None,
        }
    }
    /// An array value.
    pub fn as_array(&self) -> Option<&MetaArray> {
        match self {
            MetaValue::Array(a) => Some(a),
            _ => None,
        }
    }
    /// A string array (e.g. `tokenizer.ggml.tokens`).
    pub fn as_strings(&self) -> Option<&[String]> {
        self.as_array().and_then(MetaArray::as_strings)
    }
    /// An f32 array (e.g. `tokenizer.ggml.scores`).
    pub fn as_f32s(&self) -> Option<&[f32]> {
        self.as_array().and_then(MetaArray::as_f32s)
    }
    /// An i32 array (e.g. `tokenizer.ggml.token_type`).
    pub fn as_i32s(&self) -> Option<&[i32]> {
        self.as_array().and_then(MetaArray::as_i32s)
    }
}

impl MetaArray {
    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            MetaArray::U8(v) => v.len(),
            MetaArray::I8(v) => v.len(),
            MetaArray::U16(v) => v.len(),
            MetaArray::I16(v) => v.len(),
            MetaArray::U32(v) => v.len(),
            MetaArray::I32(v) => v.len(),
            MetaArray::U64(v) => v.len(),
            MetaArray::I64(v) => v.len(),
            MetaArray::F32(v) => v.len(),
            MetaArray::F64(v) => v.len(),
            MetaArray::Bool(v) => v.len(),
            MetaArray::String(v) => v.len(),
            MetaArray::Array(v) => v.len(),
        }
    }
    /// True if the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The elements, if strings.
    pub fn as_strings(&self) -> Option<&[String]> {
        match self {
            MetaArray::String(v) => Some(v),
            _ => None,
        }
    }
    /// The elements, if f32.
    pub fn as_f32s(&self) -> Option<&[f32]> {
        match self {
            MetaArray::F32(v) => Some(v),
            _ => None,
        }
    }
    /// The elements, if i32.
    pub fn as_i32s(&self) -> Option<&[i32]> {
        match self {
            MetaArray::I32(v) => Some(v),
            _ => None,
        }
    }
    /// The elements, if bools.
    pub fn as_bools(&self) -> Option<&[bool]> {
        match self {
            MetaArray::Bool(v) => Some(v),
            _ => None,
        }
    }
    /// The elements as u64, if every element is a non-negative integer (bools count as 0 / 1).
    pub fn to_u64s(&self) -> Option<Vec<u64>> {
        fn conv<T: Copy>(v: &[T], f: impl Fn(T) -> Option<u64>) -> Option<Vec<u64>> {
            v.iter().map(|&x| f(x)).collect()
        }
        match self {
            MetaArray::U8(v) => conv(v, |x| Some(x.into())),
            MetaArray::U16(v) => conv(v, |x| Some(x.into())),
            MetaArray::U32(v) => conv(v, |x| Some(x.into())),
            MetaArray::U64(v) => conv(v, Some),
            MetaArray::I8(v) => conv(v, |x| u64::try_from(x).ok()),
            MetaArray::I16(v) => conv(v, |x| u64::try_from(x).ok()),
            MetaArray::I32(v) => conv(v, |x| u64::try_from(x).ok()),
            MetaArray::I64(v) => conv(v, |x| u64::try_from(x).ok()),
            MetaArray::Bool(v) => conv(v, |x| Some(x.into())),
            _ => None,
        }
    }
}

fn bool_of(b: u8, key: &str) -> Result<bool, String> {
    match b {
        0 => Ok(false),
        1 => Ok(true),
        v => Err(format!("{key}: bool value {v} is neither 0 nor 1")),
    }
}

/// Bytes an element of GGUF value type `ty` takes at least (strings and arrays: their header).
fn min_size(ty: u32, key: &str) -> Result<usize, String> {
    match ty {
        0 | 1 | 7 => Ok(1),
        2 | 3 => Ok(2),
        4..=6 => Ok(4),
        8 | 10..=12 => Ok(8),
        9 => Ok(12),
        t => Err(format!("{key}: unknown metadata value type {t}")),
    }
}

/// Reads one value of GGUF type `ty` for metadata key `key` (for messages).
pub(super) fn read_value(c: &mut Cursor, ty: u32, key: &str, depth: usize) -> Result<MetaValue, String> {
    min_size(ty, key)?;
    Ok(match ty {
        0 => MetaValue::U8(c.u8(key)?),
        1 => MetaValue::I8(c.u8(key)? as i8),
        2 => MetaValue::U16(u16::from_le_bytes(arr(c.take(2, key)?))),
        3 => MetaValue::I16(i16::from_le_bytes(arr(c.take(2, key)?))),
        4 => MetaValue::U32(c.u32(key)?),
        5 => MetaValue::I32(c.u32(key)? as i32),
        6 => MetaValue::F32(f32::from_bits(c.u32(key)?)),
        7 => MetaValue::Bool(bool_of(c.u8(key)?, key)?),
        8 => MetaValue::String(c.string(key)?),
        10 => MetaValue::U64(c.u64(key)?),
        11 => MetaValue::I64(c.u64(key)? as i64),
        12 => MetaValue::F64(f64::from_bits(c.u64(key)?)),
        _ => MetaValue::Array(read_array(c, key, depth)?),
    })
}

fn arr<const N: usize>(b: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&b[..N]);
    out
}

fn read_array(c: &mut Cursor, key: &str, depth: usize) -> Result<MetaArray, String> {
    if depth >= MAX_DEPTH {
        return Err(format!("{key}: arrays nested deeper than {MAX_DEPTH}"));
    }
    let ty = c.u32(key)?;
    let min = min_size(ty, key)?;
    let count = c.u64(key)?;
    let n = c.count(count, min, &format!("{key}: array"))?;
    if n > MAX_ARRAY_LEN {
        return Err(format!("{key}: array of {n} elements (at most {MAX_ARRAY_LEN})"));
    }
    macro_rules! fixed {
        ($variant:ident, $t:ty, $size:expr) => {
            MetaArray::$variant(
                c.take(n * $size, key)?.chunks_exact($size).map(|b| <$t>::from_le_bytes(arr(b))).collect(),
            )
        };
    }
    Ok(match ty {
        0 => MetaArray::U8(c.take(n, key)?.to_vec()),
        1 => MetaArray::I8(c.take(n, key)?.iter().map(|&b| b as i8).collect()),
        2 => fixed!(U16, u16, 2),
        3 => fixed!(I16, i16, 2),
        4 => fixed!(U32, u32, 4),
        5 => fixed!(I32, i32, 4),
        6 => fixed!(F32, f32, 4),
        10 => fixed!(U64, u64, 8),
        11 => fixed!(I64, i64, 8),
        12 => fixed!(F64, f64, 8),
        7 => MetaArray::Bool(c.take(n, key)?.iter().map(|&b| bool_of(b, key)).collect::<Result<_, _>>()?),
        8 => {
            let mut v = Vec::with_capacity(n);
            for _ in 0..n {
                v.push(c.string(key)?);
            }
            MetaArray::String(v)
        }
        _ => {
            let mut v = Vec::with_capacity(n);
            for _ in 0..n {
                v.push(read_array(c, key, depth + 1)?);
            }
            MetaArray::Array(v)
        }
    })
}
