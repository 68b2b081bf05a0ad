//! GGUF files (llama.cpp's container), memory-mapped and validated, exposed as a [`TensorStore`]
//! under the Hugging Face tensor names garnet's loader asks for.
//!
//! Layout (little-endian): `"GGUF"`, u32 version (2 or 3), u64 tensor count, u64 metadata count;
//! the metadata (`string key, u32 type, value`); the tensor infos (`string name, u32 n_dims,
//! n_dims × u64 ne` (innermost dimension first), `u32 ggml type, u64 offset`); padding to
//! `general.alignment` (u32, default 32); the data section, which the offsets are relative to.
//! A string is a u64 byte length and UTF-8 bytes; an array is a u32 element type, a u64 count and
//! the elements (arrays may nest).
//!
//! [`GgufFile::open`] checks everything before anything is handed out, and any inconsistency is an
//! [`Error::Format`] naming the file and the problem: every count, length and offset is checked
//! against the bytes left in the file before it is used (nothing is allocated from a size read from
//! the file first), tensor data must be aligned and lie inside the file, and tensors may not
//! overlap. Tensors of ggml types garnet does not compute with (IQ*, I8, ...) are fine until one is
//! requested. Then [`model_config`] builds the [`ModelConfig`](crate::config::ModelConfig) from the
//! metadata and [`GgufFile::into_store`] hands the tensors over as HF-named, HF-shaped views
//! (HF shape = GGUF `ne` reversed).

mod config;
mod names;
mod vocab;

pub use config::model_config;
pub use names::hf_name;
pub use vocab::tokenizer;

use crate::error::{Error, Result};
use crate::store::TensorStore;
use garnet_kernels::{DType, HostTensor, Storage};
use memmap2::Mmap;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

mod meta;
pub use meta::{MetaArray, MetaValue};

/// Largest `n_dims` of a tensor (ggml's GGML_MAX_DIMS).
const MAX_DIMS: u32 = 4;

/// ggml type ids (as in gguf-py's `GGMLQuantizationType`): name, elements and bytes per block, and
/// the garnet dtype if garnet computes with it.
const GGML_TYPES: &[(u32, &str, usize, usize, Option<DType>)] = &[
    (0, "F32", 1, 4, Some(DType::F32)),
    (1, "F16", 1, 2, Some(DType::F16)),
    (2, "Q4_0", 32, 18, Some(DType::Q4_0)),
    (3, "Q4_1", 32, 20, Some(DType::Q4_1)),
    (6, "Q5_0", 32, 22, Some(DType::Q5_0)),
    (7, "Q5_1", 32, 24, Some(DType::Q5_1)),
    (8, "Q8_0", 32, 34, Some(DType::Q8_0)),
    (9, "Q8_1", 32, 40, None),
    (10, "Q2_K", 256, 84, Some(DType::Q2_K)),
    (11, "Q3_K", 256, 110, Some(DType::Q3_K)),
    (12, "Q4_K", 256, 144, Some(DType::Q4_K)),
    (13, "Q5_K", 256, 176, Some(DType::Q5_K)),
    (14, "Q6_K", 256, 210, Some(DType::Q6_K)),
    (15, "Q8_K", 256, 292, Some(DType::Q8_K)),
    (16, "IQ2_XXS", 256, 66, None),
    (17, "IQ2_XS", 256, 74, None),
    (18, "IQ3_XXS", 256, 98, None),
    (19, "IQ1_S", 256, 50, None),
    (20, "IQ4_NL", 32, 18, None),
    (21, "IQ3_S", 256, 110, None),
    (22, "IQ2_S", 256, 82, None),
    (23, "IQ4_XS", 256, 136, None),
    (24, "I8", 1, 1, None),
    (25, "I16", 1, 2, None),
    (26, "I32", 1, 4, None),
    (27, "I64", 1, 8, None),
    (28, "F64", 1, 8, None),
    (29, "IQ1_M", 256, 56, None),
    (30, "BF16", 1, 2, Some(DType::BF16)),
    (34, "TQ1_0", 256, 54, None),
    (35, "TQ2_0", 256, 66, None),
    (39, "MXFP4", 32, 17, None),
    (40, "NVFP4", 64, 36, None),
    (41, "Q1_0", 128, 18, None),
];

fn ggml_type(id: u32) -> Option<&'static (u32, &'static str, usize, usize, Option<DType>)> {
    GGML_TYPES.iter().find(|t| t.0 == id)
}

/// The ggml spelling of type `id` ("Q4_K", ...), or `"ggml type <id>"` for ids garnet does not know.
pub fn ggml_type_name(id: u32) -> String {
    ggml_type(id).map_or_else(|| format!("ggml type {id}"), |t| t.1.to_string())
}

/// One tensor of the file, as its header describes it (validated).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorInfo {
    name: String,
    ne: Vec<u64>,
    ggml_type: u32,
    offset: usize,
    len: Option<usize>,
}

impl TensorInfo {
    /// The GGUF name (`blk.3.attn_q.weight`).
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Dimensions as GGUF stores them, innermost (contiguous) first.
    pub fn ne(&self) -> &[u64] {
        &self.ne
    }
    /// Dimensions outermost first, as HF and [`HostTensor`] order them (`ne` reversed).
    pub fn shape(&self) -> Vec<usize> {
        // `open` checked that the element count fits in usize, so every dimension does.
        self.ne.iter().rev().map(|&d| d as usize).collect()
    }
    /// The ggml type id.
    pub fn ggml_type(&self) -> u32 {
        self.ggml_type
    }
    /// The garnet dtype, if garnet computes with this ggml type.
    pub fn dtype(&self) -> Option<DType> {
        ggml_type(self.ggml_type).and_then(|t| t.4)
    }
    /// Absolute byte offset of the data in the file.
    pub fn offset(&self) -> usize {
        self.offset
    }
    /// Data length in bytes (`None` for a ggml type whose block size garnet does not know).
    pub fn nbytes(&self) -> Option<usize> {
        self.len
    }
}

/// A memory-mapped, validated GGUF file: its metadata and tensor table.
pub struct GgufFile {
    path: PathBuf,
    map: Storage,
    version: u32,
    alignment: usize,
    metadata: BTreeMap<String, MetaValue>,
    tensors: Vec<TensorInfo>,
    by_name: BTreeMap<String, usize>,
}

impl std::fmt::Debug for GgufFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = (self.metadata.len(), self.tensors.len());
        write!(f, "GgufFile(v{}, {} keys, {} tensors, {:?})", self.version, n.0, n.1, self.path)
    }
}

/// Reads little-endian values off a byte slice, refusing to read past its end.
pub(crate) struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], String> {
        if n > self.remaining() {
            let (at, left) = (self.pos, self.remaining());
            return Err(format!("{what}: needs {n} bytes at offset {at} but only {left} are left (truncated?)"));
        }
        let out = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }
    fn u8(&mut self, what: &str) -> Result<u8, String> {
        Ok(self.take(1, what)?[0])
    }
    fn u32(&mut self, what: &str) -> Result<u32, String> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self, what: &str) -> Result<u64, String> {
        let b = self.take(8, what)?;
        Ok(u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
    }
    /// `count` items of at least `min` bytes each, checked against the bytes left.
    fn count(&mut self, count: u64, min: usize, what: &str) -> Result<usize, String> {
        let left = self.remaining();
        match usize::try_from(count).ok().filter(|&n| n.checked_mul(min).is_some_and(|b| b <= left)) {
            Some(n) => Ok(n),
            None => Err(format!("{what}: count {count} (at least {min} bytes each) exceeds the {left} bytes left")),
        }
    }
    fn string(&mut self, what: &str) -> Result<String, String> {
        let at = self.pos;
        let len = self.u64(what)?;
        let left = self.remaining();
        let len = usize::try_from(len)
            .ok()
            .filter(|&n| n <= left)
            .ok_or_else(|| format!("{what}: string length {len} at offset {at} exceeds the {left} bytes left"))?;
        let bytes = self.take(len, what)?;
        String::from_utf8(bytes.to_vec()).map_err(|e| format!("{what}: string at offset {at} is not UTF-8 ({e})"))
    }
}

/// The header of a GGUF file after validation.
struct Parsed {
    version: u32,
    alignment: usize,
    metadata: BTreeMap<String, MetaValue>,
    tensors: Vec<TensorInfo>,
}

fn parse(bytes: &[u8]) -> Result<Parsed, String> {
    let mut c = Cursor { bytes, pos: 0 };
    let magic = c.take(4, "magic")?;
    if magic != b"GGUF" {
        return Err("bad magic: not a GGUF file".into());
    }
    let version = c.u32("version")?;
    match version {
        2 | 3 => {}
        v if matches!(v.swap_bytes(), 2 | 3) => return Err("big-endian GGUF files are not supported".into()),
        v => return Err(format!("GGUF version {v} is not supported (only 2 and 3)")),
    }
    let n_tensors = c.u64("tensor count")?;
    let n_kv = c.u64("metadata count")?;
    // A metadata entry takes at least 8 + 4 + 1 bytes; a tensor info at least 8 + 4 + 4 + 8.
    let n_kv = c.count(n_kv, 13, "metadata count")?;
    let n_tensors = c.count(n_tensors, 24, "tensor count")?;

    let mut metadata = BTreeMap::new();
    for _ in 0..n_kv {
        let key = c.string("metadata key")?;
        let ty = c.u32(&key)?;
        let value = meta::read_value(&mut c, ty, &key, 0)?;
        if metadata.insert(key.clone(), value).is_some() {
            return Err(format!("metadata key {key:?} appears twice"));
        }
    }
    let alignment = match metadata.get("general.alignment") {
        None => 32,
        Some(MetaValue::U32(a)) if a.is_power_of_two() => *a as usize,
        Some(v) => return Err(format!("general.alignment {v:?} is not a u32 power of two")),
    };
    if n_tensors > 0 {
        c.count(n_tensors as u64, 24, "tensor count")?;
    }

    let mut raw = Vec::with_capacity(n_tensors);
    for i in 0..n_tensors {
        let name = c.string(&format!("tensor info {i}: name"))?;
        let n_dims = c.u32(&name)?;
        if n_dims > MAX_DIMS {
            return Err(format!("tensor {name}: {n_dims} dimensions (at most {MAX_DIMS})"));
        }
        let mut ne = Vec::with_capacity(n_dims as usize);
        for _ in 0..n_dims {
            ne.push(c.u64(&name)?);
        }
        let ty = c.u32(&name)?;
        let offset = c.u64(&name)?;
        raw.push((name, ne, ty, offset));
    }
    let data_start = c.pos.checked_next_multiple_of(alignment).ok_or("data section start overflows")?;
    if n_tensors > 0 && data_start > bytes.len() {
        return Err(format!("data section would start at {data_start}, past the end of the file ({})", bytes.len()));
    }

    let mut tensors = Vec::with_capacity(raw.len());
    let mut spans = Vec::with_capacity(raw.len());
    for (name, ne, ty, offset) in raw {
        let what = format!("tensor {name} ({} ne {ne:?}, offset {offset})", ggml_type_name(ty));
        let numel = ne
            .iter()
            .try_fold(1usize, |a, &d| usize::try_from(d).ok().and_then(|d| a.checked_mul(d)))
            .filter(|&n| n as u64 <= i64::MAX as u64)
            .ok_or_else(|| format!("{what}: element count overflows"))?;
        let len = match ggml_type(ty) {
            Some(&(_, tname, elems, bytes, _)) => {
                let row = ne.first().copied().unwrap_or(1);
                if row % elems as u64 != 0 {
                    return Err(format!("{what}: rows of {row} elements are not whole {tname} blocks of {elems}"));
                }
                Some((numel / elems).checked_mul(bytes).ok_or_else(|| format!("{what}: size overflows"))?)
            }
            None => None,
        };
        if offset % alignment as u64 != 0 {
            return Err(format!("{what}: offset is not a multiple of the alignment {alignment}"));
        }
        let file_len = bytes.len();
        let start = usize::try_from(offset).ok().and_then(|o| o.checked_add(data_start));
        let end = start.and_then(|s| s.checked_add(len.unwrap_or(0)));
        let (start, end) = match (start, end) {
            (Some(s), Some(e)) if e <= file_len => (s, e),
            _ => {
                let why = format!("data (from data section offset {data_start}) runs past the end of the file");
                return Err(format!("{what}: {why} ({file_len} bytes)"));
            }
        };
        if end > start {
            spans.push((start, end, name.clone()));
        }
        tensors.push(TensorInfo { name, ne, ggml_type: ty, offset: start, len });
    }
    spans.sort();
    for pair in spans.windows(2) {
        let ((_, end_a, a), (start_b, _, b)) = (&pair[0], &pair[1]);
        if start_b < end_a {
            return Err(format!("tensor {b} overlaps tensor {a} (bytes {start_b}..{end_a})"));
        }
    }
    Ok(Parsed { version, alignment, metadata, tensors })
}

impl GgufFile {
    /// Maps a `.gguf` file and validates its header and tensor table (no pass over tensor data).
    pub fn open(path: impl AsRef<Path>) -> Result<GgufFile> {
        let path = path.as_ref();
        let io = |source| Error::Io { path: path.to_path_buf(), err: source };
        crate::files::regular_file(path)?;
        let file = std::fs::File::open(path).map_err(io)?;
        // SAFETY: read-only mapping treated as immutable. As with safetensors (see store.rs), a
        // file truncated by another process while mapped raises SIGBUS: do not modify loaded files.
        let map = unsafe { Mmap::map(&file) }.map_err(io)?;
        Self::from_storage(path, Arc::new(map))
    }

    /// Validates the GGUF file held in `bytes`; `path` names it in errors. [`GgufFile::open`]
    /// with the bytes already in memory (tests, fuzzing).
    pub fn from_storage(path: impl AsRef<Path>, bytes: Storage) -> Result<GgufFile> {
        let path = path.as_ref();
        let map = bytes;
        let parsed = parse((*map).as_ref()).map_err(|why| Error::Format { path: path.to_path_buf(), why })?;
        let mut by_name = BTreeMap::new();
        for (i, t) in parsed.tensors.iter().enumerate() {
            if by_name.insert(t.name.clone(), i).is_some() {
                let why = format!("tensor {} appears twice", t.name);
                return Err(Error::Format { path: path.to_path_buf(), why });
            }
        }
        Ok(GgufFile {
            path: path.to_path_buf(),
            map,
            version: parsed.version,
            alignment: parsed.alignment,
            metadata: parsed.metadata,
            tensors: parsed.tensors,
            by_name,
        })
    }

    /// The file this was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// GGUF version (2 or 3).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// Alignment of the data section and of every tensor (`general.alignment`, default 32).
    pub fn alignment(&self) -> usize {
        self.alignment
    }

    /// All metadata, by key (`general.architecture`, `gemma3.block_count`,
    /// `tokenizer.ggml.tokens`, ...). Arrays are stored once, typed ([`MetaArray`]).
    pub fn metadata(&self) -> &BTreeMap<String, MetaValue> {
        &self.metadata
    }

    /// Metadata value `key`, if present.
    pub fn get(&self, key: &str) -> Option<&MetaValue> {
        self.metadata.get(key)
    }

    /// `general.architecture` ("gemma3", "gemma4", ...), if present and a string.
    pub fn architecture(&self) -> Option<&str> {
        self.get("general.architecture").and_then(MetaValue::as_str)
    }

    /// `tokenizer.chat_template`: the model's Jinja chat template, if present and a string
    /// (see [`crate::template::ChatTemplate::for_checkpoint`]).
    pub fn chat_template(&self) -> Option<&str> {
        self.get("tokenizer.chat_template").and_then(MetaValue::as_str)
    }

    /// The GGUF tensor names, in file order.
    pub fn tensor_names(&self) -> Vec<&str> {
        self.tensors.iter().map(|t| t.name.as_str()).collect()
    }

    /// Header entry of tensor `name` (GGUF name), if present.
    pub fn tensor_info(&self, name: &str) -> Option<&TensorInfo> {
        self.by_name.get(name).map(|&i| &self.tensors[i])
    }

    /// Tensor `name` (GGUF name) as a zero-copy view of the map, shaped outermost first.
    pub fn tensor(&self, name: &str) -> Result<HostTensor> {
        let t = self.tensor_info(name).ok_or_else(|| Error::MissingTensor { name: name.to_string() })?;
        let dtype = t.dtype().ok_or_else(|| unsupported(name, t.ggml_type))?;
        let storage: Storage = self.map.clone();
        Ok(HostTensor::new(storage, t.offset, dtype, t.shape())?)
    }

    /// The tensors as a [`TensorStore`] under the HF names garnet's loader asks for ([`hf_name`];
    /// names it does not map are kept as they are), shaped outermost first. Fails if two tensors
    /// map to one name. Tensors of types garnet cannot compute with fail only when requested.
    pub fn into_store(self) -> Result<TensorStore> {
        let arch = self.architecture().unwrap_or("").to_string();
        let mut entries = BTreeMap::new();
        let mut source: BTreeMap<String, &str> = BTreeMap::new();
        for t in &self.tensors {
            let hf = hf_name(&arch, &t.name).unwrap_or_else(|| t.name.clone());
            if let Some(other) = source.insert(hf.clone(), &t.name) {
                let why = format!("tensors {other} and {} both map to {hf}", t.name);
                return Err(Error::Format { path: self.path.clone(), why });
            }
            let entry = (0, ggml_type_name(t.ggml_type), t.dtype(), t.shape(), t.offset, t.len.unwrap_or(0));
            entries.insert(hf, entry);
        }
        Ok(TensorStore::from_validated(vec![self.path], vec![self.map], entries))
    }
}

fn unsupported(name: &str, ty: u32) -> Error {
    Error::DType {
        name: name.to_string(),
        got: ggml_type_name(ty),
        want: "F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 or Q2_K..Q8_K".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ggml_block_sizes_match_garnet_dtypes() {
        for &(id, name, elems, bytes, dtype) in GGML_TYPES {
            if let Some(d) = dtype {
                assert_eq!(d.block(), (elems, bytes), "{name}");
                assert_eq!(d.name(), name, "{id}");
            }
        }
    }

    #[test]
    fn huge_counts_are_clean_errors() {
        let mut b = b"GGUF".to_vec();
        b.extend(3u32.to_le_bytes());
        b.extend(0u64.to_le_bytes());
        b.extend(1u64.to_le_bytes());
        b.extend(3u64.to_le_bytes());
        b.extend(b"key");
        b.extend(9u32.to_le_bytes()); // array
        b.extend(8u32.to_le_bytes()); // of strings
        b.extend((1u64 << 40).to_le_bytes());
        let err = parse(&b).err().unwrap();
        assert!(err.contains("count 1099511627776"), "{err}");
    }
}
