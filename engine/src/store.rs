//! [`TensorStore`]: memory-mapped safetensors checkpoints, never copying tensor data.
//!
//! A safetensors file is `u64 LE header length N` + `N bytes of JSON header` + a data section. The
//! header maps each tensor name to `{"dtype", "shape", "data_offsets": [begin, end]}` (offsets are
//! relative to the data section); an optional `"__metadata__"` entry is ignored.
//!
//! Opening maps each file once and reads only its header (O(header), no pass over tensor bytes).
//! Everything is verified before any tensor is handed out, and any inconsistency is an
//! [`Error::Format`] naming the file and the problem: header length past the end of the file,
//! header not UTF-8 JSON, unknown dtypes, offsets reversed or past the data section, sizes not
//! matching `dtype × shape`, overlapping tensors, holes, and a data section whose length differs
//! from what the tensors cover (a truncated or padded file). Nothing is allocated from a size read
//! from the file before it is checked against the file length.
//!
//! A checkpoint is either one file or a sharded directory with `model.safetensors.index.json`,
//! whose `weight_map` maps tensor names to shard files: every shard must exist and hold the tensors
//! mapped to it, and no tensor may appear in two shards.
//!
//! Tensors of dtypes garnet cannot compute with (I64, U8... e.g. in vision towers) are recorded and
//! only fail when requested through [`TensorStore::get`].

use crate::error::{Error, Result};
use garnet_kernels::{DType, HostTensor, Storage};
use memmap2::Mmap;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Name of the index file of a sharded checkpoint.
const INDEX_FILE: &str = "model.safetensors.index.json";

/// One tensor's header entry after validation.
#[derive(Debug)]
struct Entry {
    /// Index into `TensorStore::maps` / `files`.
    shard: usize,
    /// The safetensors dtype spelling ("F32", "I64", ...).
    dtype_name: String,
    /// `Some` for the dtypes garnet computes with.
    dtype: Option<DType>,
    shape: Vec<usize>,
    /// Absolute byte offset of the data in the file (8 + header length + begin).
    offset: usize,
    /// Data length in bytes.
    len: usize,
}

/// A header entry as written in the file.
#[derive(Deserialize)]
struct RawEntry {
    dtype: String,
    shape: Vec<usize>,
    data_offsets: (usize, usize),
}

/// The part of `model.safetensors.index.json` garnet uses.
#[derive(Deserialize)]
struct Index {
    /// Where the index was read from (for error messages).
    #[serde(skip)]
    path: PathBuf,
    weight_map: BTreeMap<String, String>,
}

/// A read-only view of the tensors of a safetensors checkpoint (one file or sharded).
///
/// Tensors returned by [`get`](Self::get) are views of the memory map (cheap to clone, kept alive
/// by the tensors themselves). The store is `Send + Sync`: share it behind an `Arc`.
pub struct TensorStore {
    files: Vec<PathBuf>,
    maps: Vec<Storage>,
    tensors: BTreeMap<String, Entry>,
}

impl std::fmt::Debug for TensorStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TensorStore({} tensors in {:?})", self.tensors.len(), self.files)
    }
}

fn format_err(path: &Path, why: impl Into<String>) -> Error {
    Error::Format { path: path.to_path_buf(), why: why.into() }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io { path: path.to_path_buf(), err: source }
}

/// Bits per element of a safetensors dtype name (some dtypes are sub-byte), or `None` if
/// safetensors does not know it.
fn dtype_bits(name: &str) -> Option<usize> {
    let dtype: safetensors::Dtype = serde_json::from_value(serde_json::Value::from(name)).ok()?;
    Some(dtype.bitsize())
}

/// Maps `path` and validates its header; returns the map and its entries (with `shard` unset).
fn open_file(path: &Path) -> Result<(Storage, BTreeMap<String, Entry>)> {
    crate::files::regular_file(path)?;
    let file = File::open(path).map_err(io_err(path))?;
    // SAFETY: the file is opened read-only and we treat the mapping as immutable; nothing in this
    // process writes to it. The documented hazard of mmap remains: if another process truncates
    // the file while it is mapped, touching the lost pages raises SIGBUS (the process dies), and
    // in-place writes by others would show through. Checkpoints must not be modified while loaded.
    // (memmap2 maps empty files as an empty slice.)
    let map = unsafe { Mmap::map(&file) }.map_err(io_err(path))?;
    let tensors = parse_header(&map).map_err(|why| format_err(path, why))?;
    Ok((Arc::new(map), tensors))
}

/// Parses and validates the header of the safetensors file `bytes` (without reading tensor data).
fn parse_header(bytes: &[u8]) -> Result<BTreeMap<String, Entry>, String> {
    let Some((len8, rest)) = bytes.split_first_chunk::<8>() else {
        let n = bytes.len();
        return Err(format!("file is {n} bytes, too short for the 8-byte header length"));
    };
    let header_len = match usize::try_from(u64::from_le_bytes(*len8)) {
        Ok(n) if n <= rest.len() => n,
        // The length is not printed: in a file that is not safetensors it is the file's first bytes.
        _ => {
            let avail = rest.len();
            return Err(format!(
                "header length exceeds the {avail} bytes after it (not a safetensors file, or truncated)"
            ));
        }
    };
    let header = std::str::from_utf8(&rest[..header_len]).map_err(|e| format!("header is not UTF-8: {e}"))?;
    let json: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(header).map_err(|e| format!("header is not a JSON object: {e}"))?;
    let data_start = 8 + header_len;
    let data_len = bytes.len() - data_start;
    let mut tensors = BTreeMap::new();
    let mut spans = Vec::with_capacity(json.len());
    for (name, value) in json.into_iter().filter(|(n, _)| n != "__metadata__") {
        let raw: RawEntry =
            serde_json::from_value(value).map_err(|e| format!("tensor {name}: bad header entry: {e}"))?;
        let bits = dtype_bits(&raw.dtype).ok_or_else(|| format!("tensor {name}: unknown dtype {:?}", raw.dtype))?;
        let (begin, end) = raw.data_offsets;
        let what = format!("tensor {name} ({} {:?}, data_offsets [{begin}, {end}])", raw.dtype, raw.shape);
        let want = match raw.shape.iter().try_fold(bits, |a, &d| a.checked_mul(d)) {
            Some(b) if b % 8 == 0 => b / 8,
            _ => return Err(format!("{what}: size overflows or is not whole bytes")),
        };
        if begin > end {
            return Err(format!("{what}: offsets are reversed"));
        }
        if end > data_len {
            let why = "offsets out of range (file truncated?)";
            return Err(format!("{what}: {why}, the data section has {data_len} bytes"));
        }
        if end - begin != want {
            return Err(format!("{what}: spans {} bytes, dtype × shape needs {want}", end - begin));
        }
        spans.push((begin, end, name.clone()));
        let dtype = [DType::F32, DType::F16, DType::BF16].into_iter().find(|d| d.name() == raw.dtype);
        let offset = data_start + begin;
        let entry = Entry { shard: 0, dtype, dtype_name: raw.dtype, shape: raw.shape, offset, len: want };
        tensors.insert(name, entry);
    }
    // The tensors must tile the data section exactly: no overlap, no hole, nothing left over.
    spans.sort();
    let (mut covered, mut prev) = (0usize, "");
    for (begin, end, name) in &spans {
        if *begin < covered {
            return Err(format!("tensor {name} overlaps tensor {prev} (bytes {begin}..{covered})"));
        }
        if *begin > covered {
            return Err(format!("hole in the data section at bytes {covered}..{begin}, before tensor {name}"));
        }
        (covered, prev) = (*end, name);
    }
    if covered != data_len {
        return Err(format!("tensors cover {covered} bytes of data but the file holds {data_len} (trailing bytes)"));
    }
    Ok(tensors)
}

/// The checkpoint files of directory `dir`: the index's shards (with their weight map), else
/// `model.safetensors`, else the only `*.safetensors`.
fn resolve_dir(dir: &Path) -> Result<(Vec<PathBuf>, Option<Index>)> {
    let index_path = dir.join(INDEX_FILE);
    if std::fs::symlink_metadata(&index_path).is_ok() {
        let text = crate::files::read_text_capped(&index_path, crate::files::MAX_CONFIG_BYTES, "index")?;
        let mut index: Index = serde_json::from_str(&text)
            .map_err(|e| format_err(&index_path, format!("index is not valid JSON with a weight_map: {e}")))?;
        let shards: BTreeSet<&String> = index.weight_map.values().collect();
        let mut files = Vec::with_capacity(shards.len());
        for shard in shards {
            // The index is data from the checkpoint: its names may not leave the directory, and
            // nothing is said about files outside it.
            let file = crate::files::confined(dir, shard).map_err(|why| format_err(&index_path, why))?;
            if !file.is_file() {
                let why = format!("shard {shard} listed in the weight_map does not exist in the model directory");
                return Err(format_err(&index_path, why));
            }
            files.push(file);
        }
        index.path = index_path;
        return Ok((files, Some(index)));
    }
    let single = dir.join("model.safetensors");
    if single.is_file() {
        return Ok((vec![single], None));
    }
    let mut found = Vec::new();
    for item in std::fs::read_dir(dir).map_err(io_err(dir))? {
        let p = item.map_err(io_err(dir))?.path();
        if p.is_file() && p.extension().is_some_and(|e| e == "safetensors") {
            found.push(p);
        }
    }
    match found.len() {
        1 => Ok((found, None)),
        0 => Err(format_err(dir, format!("no {INDEX_FILE}, model.safetensors or other *.safetensors file"))),
        n => Err(format_err(dir, format!("{n} *.safetensors files and no {INDEX_FILE} to say which to use"))),
    }
}

impl TensorStore {
    /// Opens a checkpoint: a `.safetensors` file, or a directory holding
    /// `model.safetensors.index.json` (sharded; each shard is mapped once), else `model.safetensors`,
    /// else exactly one `*.safetensors` file. Reads and validates headers only.
    pub fn open(path: &Path) -> Result<TensorStore> {
        let meta = std::fs::metadata(path).map_err(io_err(path))?;
        let (files, index) = if meta.is_dir() { resolve_dir(path)? } else { (vec![path.to_path_buf()], None) };
        let mut store = TensorStore { files: Vec::new(), maps: Vec::new(), tensors: BTreeMap::new() };
        for file in files {
            let (map, tensors) = open_file(&file)?;
            let shard = store.maps.len();
            for (name, mut entry) in tensors {
                if let Some(other) = store.tensors.get(&name) {
                    let why = format!("tensor {name} is also in shard {}", store.files[other.shard].display());
                    return Err(format_err(&file, why));
                }
                entry.shard = shard;
                store.tensors.insert(name, entry);
            }
            store.maps.push(map);
            store.files.push(file);
        }
        if let Some(index) = index {
            for (name, shard) in &index.weight_map {
                let holder = store.tensors.get(name).map(|e| &store.files[e.shard]);
                if holder != Some(&path.join(shard)) {
                    let why = format!("weight_map puts tensor {name} in shard {shard}, which does not contain it");
                    return Err(format_err(&index.path, why));
                }
            }
        }
        Ok(store)
    }

    /// A store over the one safetensors file held in `bytes`; `path` names it in errors.
    /// [`TensorStore::open`] on a file with the bytes already in memory (tests, fuzzing).
    pub fn from_storage(path: impl AsRef<Path>, bytes: Storage) -> Result<TensorStore> {
        let path = path.as_ref();
        let tensors = parse_header((*bytes).as_ref()).map_err(|why| format_err(path, why))?;
        Ok(TensorStore { files: vec![path.to_path_buf()], maps: vec![bytes], tensors })
    }

    /// A store over tensors another container parser (GGUF) has already validated: `tensors` maps
    /// each name to `(shard, dtype name, dtype, shape, offset, len)`, where `shard` indexes `maps` /
    /// `files`, `offset..offset + len` lies inside that map, and `len` is what `dtype × shape`
    /// occupies (`dtype` is `None` for formats garnet cannot compute with; they fail on `get`).
    #[allow(clippy::type_complexity)]
    pub(crate) fn from_validated(
        files: Vec<PathBuf>,
        maps: Vec<Storage>,
        tensors: BTreeMap<String, (usize, String, Option<DType>, Vec<usize>, usize, usize)>,
    ) -> TensorStore {
        let tensors = tensors
            .into_iter()
            .map(|(name, (shard, dtype_name, dtype, shape, offset, len))| {
                (name, Entry { shard, dtype_name, dtype, shape, offset, len })
            })
            .collect();
        TensorStore { files, maps, tensors }
    }

    /// Whether the checkpoint has a tensor called `name` (of any dtype).
    pub fn contains(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    /// All tensor names, sorted.
    pub fn names(&self) -> Vec<&str> {
        self.tensors.keys().map(String::as_str).collect()
    }

    /// The shape of tensor `name`, if present.
    pub fn shape(&self, name: &str) -> Option<&[usize]> {
        self.tensors.get(name).map(|e| e.shape.as_slice())
    }

    /// The safetensors dtype spelling of tensor `name` ("F32", "BF16", "I64", ...), if present.
    pub fn dtype_name(&self, name: &str) -> Option<&str> {
        self.tensors.get(name).map(|e| e.dtype_name.as_str())
    }

    /// Tensor `name` as a zero-copy view of the map, checking that garnet can compute with its
    /// dtype and that its shape is exactly `want`.
    pub fn get(&self, name: &str, want: &[usize]) -> Result<HostTensor> {
        self.view(name, Some(want))
    }

    /// Like [`get`](Self::get) without the shape check.
    pub fn get_any(&self, name: &str) -> Result<HostTensor> {
        self.view(name, None)
    }

    fn view(&self, name: &str, want: Option<&[usize]>) -> Result<HostTensor> {
        let entry = self.tensors.get(name).ok_or_else(|| Error::MissingTensor { name: name.to_string() })?;
        let dtype = entry.dtype.ok_or_else(|| Error::DType {
            name: name.to_string(),
            got: entry.dtype_name.clone(),
            want: "a float or ggml block format garnet implements".to_string(),
        })?;
        if let Some(want) = want.filter(|w| *w != entry.shape.as_slice()) {
            return Err(Error::Shape { name: name.to_string(), got: entry.shape.clone(), want: want.to_vec() });
        }
        let storage = self.maps[entry.shard].clone();
        Ok(HostTensor::new(storage, entry.offset, dtype, entry.shape.clone())?)
    }

    /// Sum of the data bytes of all tensors (every dtype).
    pub fn total_bytes(&self) -> u64 {
        self.tensors.values().map(|e| e.len as u64).sum()
    }

    /// The mapped files, in shard order.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }
}
