//! `garnet::store::TensorStore` on real testdata, sharded checkpoints, malformed files and a bounded
//! mutation fuzz loop.

mod common;
use common::{testdata, TempDir};
use garnet::store::TensorStore;
use garnet::Error;
use garnet_kernels::DType;
use std::path::Path;

const VARIANTS: [&str; 4] = ["dense_31b_like", "moe_26b_a4b_like", "edge_e2b_like", "edge_e4b_like"];

/// A tensor to serialize: name, dtype spelling, shape, raw bytes.
type Spec = (String, String, Vec<usize>, Vec<u8>);

fn spec(name: &str, dtype: &str, shape: &[usize], elem: usize) -> Spec {
    let n = shape.iter().product::<usize>() * elem;
    let bytes = (0..n).map(|i| (i * 7 + name.len()) as u8).collect();
    (name.to_string(), dtype.to_string(), shape.to_vec(), bytes)
}

/// The bytes of a safetensors file: 8-byte length, `header`, `data`.
fn raw_file(header: &str, data: &[u8]) -> Vec<u8> {
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

/// A valid safetensors file holding `tensors` laid out contiguously in order.
fn build(tensors: &[Spec]) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    header.insert("__metadata__".into(), serde_json::json!({"format": "pt"}));
    let mut data = Vec::new();
    for (name, dtype, shape, bytes) in tensors {
        let begin = data.len();
        data.extend_from_slice(bytes);
        let entry = serde_json::json!({"dtype": dtype, "shape": shape, "data_offsets": [begin, data.len()]});
        header.insert(name.clone(), entry);
    }
    raw_file(&serde_json::Value::Object(header).to_string(), &data)
}

/// A small valid file: two floats of different dtypes and an I64 tensor.
fn small() -> Vec<u8> {
    build(&[spec("a", "F32", &[2, 3], 4), spec("b", "BF16", &[4], 2), spec("ids", "I64", &[3], 8)])
}

/// Writes `bytes` as a file, opens it and returns the error text (fails if it opened).
fn open_err(bytes: &[u8]) -> String {
    let dir = TempDir::new("bad");
    let path = dir.write("model.safetensors", bytes);
    match TensorStore::open(&path) {
        Ok(s) => panic!("opened a bad file: {s:?}"),
        Err(e @ Error::Format { .. }) => e.to_string(),
        Err(e) => panic!("expected Error::Format, got {e:?}"),
    }
}

fn assert_has(msg: &str, needle: &str) {
    assert!(msg.contains(needle), "error {msg:?} should mention {needle:?}");
}

#[test]
fn store_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<TensorStore>();
}

#[test]
fn opens_every_testdata_variant_and_layout() {
    for variant in VARIANTS {
        for (layout, dtype, embed) in [
            ("f32", "F32", "model.embed_tokens.weight"),
            ("bf16", "BF16", "model.embed_tokens.weight"),
            ("bf16_cg", "BF16", "model.language_model.embed_tokens.weight"),
        ] {
            let dir = testdata(&format!("{variant}/{layout}"));
            let store = TensorStore::open(&dir).unwrap();
            let file = dir.join("model.safetensors");
            assert_eq!(store.files(), std::slice::from_ref(&file));
            assert!(store.contains(embed), "{variant}/{layout}");
            assert_eq!(store.shape(embed), Some(&[512, 96][..]));
            assert_eq!(store.dtype_name(embed), Some(dtype));
            let t = store.get(embed, &[512, 96]).unwrap();
            assert_eq!(t.dtype().name(), dtype);
            assert_eq!(t.bytes().len(), t.dtype().bytes_for(512 * 96).unwrap());
            let names = store.names();
            assert!(names.windows(2).all(|w| w[0] < w[1]), "names sorted");
            let norm = names.iter().find(|n| n.ends_with("layers.0.input_layernorm.weight")).unwrap();
            assert_eq!(store.shape(norm), Some(&[96][..]));
            // The data section is exactly the file minus the length field and the header.
            let raw = std::fs::read(&file).unwrap();
            let header_len = u64::from_le_bytes(raw[..8].try_into().unwrap());
            assert_eq!(store.total_bytes(), raw.len() as u64 - 8 - header_len);
            // Opening the file directly gives the same tensors.
            let direct = TensorStore::open(&file).unwrap();
            assert_eq!(direct.names(), names);
        }
    }
}

#[test]
fn f32_and_bf16_layouts_agree_after_rounding() {
    let f = TensorStore::open(&testdata("dense_31b_like/f32")).unwrap();
    let b = TensorStore::open(&testdata("dense_31b_like/bf16")).unwrap();
    let name = "model.embed_tokens.weight";
    let (tf, tb) = (f.get(name, &[512, 96]).unwrap(), b.get(name, &[512, 96]).unwrap());
    for i in (0..512 * 96).step_by(97) {
        assert_eq!(DType::BF16.round(tf.get(i)), tb.get(i), "element {i}");
    }
}

#[test]
fn sharded_checkpoint_matches_unsharded() {
    let src = testdata("moe_26b_a4b_like/f32/model.safetensors");
    let whole = TensorStore::open(&src).unwrap();
    let names = whole.names();
    let specs: Vec<Spec> = names
        .iter()
        .map(|n| {
            let t = whole.get_any(n).unwrap();
            (n.to_string(), whole.dtype_name(n).unwrap().to_string(), t.shape().to_vec(), t.bytes().to_vec())
        })
        .collect();
    let (first, second) = specs.split_at(specs.len() / 2);
    let dir = TempDir::new("sharded");
    let shard_names = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"];
    dir.write(shard_names[0], &build(first));
    dir.write(shard_names[1], &build(second));
    let mut map = serde_json::Map::new();
    for (i, part) in [first, second].iter().enumerate() {
        for (name, ..) in part.iter() {
            map.insert(name.clone(), shard_names[i].into());
        }
    }
    let index = serde_json::json!({"metadata": {"total_size": whole.total_bytes()}, "weight_map": map});
    dir.write("model.safetensors.index.json", index.to_string().as_bytes());

    let sharded = TensorStore::open(&dir.0).unwrap();
    assert_eq!(sharded.files().len(), 2);
    assert_eq!(sharded.names(), names);
    assert_eq!(sharded.total_bytes(), whole.total_bytes());
    for n in &names {
        let (a, b) = (whole.get_any(n).unwrap(), sharded.get_any(n).unwrap());
        assert_eq!(a.shape(), b.shape(), "{n}");
        assert_eq!(a.dtype(), b.dtype(), "{n}");
        assert_eq!(a.bytes(), b.bytes(), "{n}");
    }

    // The index naming a shard that is not there.
    std::fs::remove_file(dir.0.join(shard_names[1])).unwrap();
    let msg = TensorStore::open(&dir.0).unwrap_err().to_string();
    assert_has(&msg, "does not exist");
    assert_has(&msg, shard_names[1]);

    // The index mapping a tensor to a shard that lacks it (shard 2 now only has one tensor).
    dir.write(shard_names[1], &build(&second[..1]));
    let msg = TensorStore::open(&dir.0).unwrap_err().to_string();
    assert_has(&msg, "does not contain");
    assert_has(&msg, &second[1].0);

    // A tensor present in two shards.
    let mut dup = second.to_vec();
    dup.push(first[0].clone());
    dir.write(shard_names[1], &build(&dup));
    let msg = TensorStore::open(&dir.0).unwrap_err().to_string();
    assert_has(&msg, "also in shard");
    assert_has(&msg, &first[0].0);
}

#[test]
fn directory_resolution() {
    let dir = TempDir::new("dirs");
    let msg = TensorStore::open(&dir.0).unwrap_err().to_string();
    assert_has(&msg, "no model.safetensors.index.json, model.safetensors");
    dir.write("weights.safetensors", &small());
    let store = TensorStore::open(&dir.0).unwrap();
    assert_eq!(store.files(), [dir.0.join("weights.safetensors")]);
    dir.write("other.safetensors", &small());
    assert_has(&TensorStore::open(&dir.0).unwrap_err().to_string(), "2 *.safetensors files");
    dir.write("model.safetensors", &small());
    assert_eq!(TensorStore::open(&dir.0).unwrap().files(), [dir.0.join("model.safetensors")]);
    let missing = dir.0.join("nope");
    assert!(matches!(TensorStore::open(&missing), Err(Error::Io { .. })));
}

#[test]
fn get_checks_presence_dtype_and_shape() {
    let dir = TempDir::new("get");
    let bytes = build(&[
        spec("a", "F32", &[2, 3], 4),
        spec("h", "F16", &[5], 2),
        spec("ids", "I64", &[3], 8),
        spec("pix", "U8", &[7], 1),
        spec("empty", "BF16", &[0, 4], 2),
    ]);
    let store = TensorStore::open(&dir.write("x.safetensors", &bytes)).unwrap();
    assert_eq!(store.names(), ["a", "empty", "h", "ids", "pix"]);
    assert_eq!(store.total_bytes(), 24 + 10 + 24 + 7);
    assert_eq!(store.dtype_name("ids"), Some("I64"));
    assert_eq!(store.shape("pix"), Some(&[7][..]));
    assert!(!store.contains("zzz") && store.shape("zzz").is_none() && store.dtype_name("zzz").is_none());

    let a = store.get("a", &[2, 3]).unwrap();
    assert_eq!(a.bytes(), &spec("a", "F32", &[2, 3], 4).3[..]);
    assert_eq!(store.get("h", &[5]).unwrap().dtype(), DType::F16);
    assert_eq!(store.get("empty", &[0, 4]).unwrap().numel(), 0);
    assert_eq!(store.get_any("a").unwrap().shape(), [2, 3]);

    let e = store.get("zzz", &[1]).unwrap_err();
    assert!(matches!(&e, Error::MissingTensor { name } if name == "zzz"), "{e:?}");
    let e = store.get("a", &[3, 2]).unwrap_err();
    assert!(matches!(&e, Error::Shape { got, want, .. } if got == &[2, 3] && want == &[3, 2]), "{e:?}");
    for name in ["ids", "pix"] {
        let e = store.get_any(name).unwrap_err();
        assert!(matches!(&e, Error::DType { want, .. } if want.contains("float")), "{e:?}");
        assert_has(&e.to_string(), name);
    }
    assert_has(&store.get("ids", &[3]).unwrap_err().to_string(), "I64");
}

#[test]
fn golden_file_with_i64_tensors_opens_and_refuses_them() {
    let store = TensorStore::open(&testdata("dense_31b_like/golden_f32.safetensors")).unwrap();
    assert_eq!(store.dtype_name("prompt_ids"), Some("I64"));
    assert_eq!(store.shape("prompt_ids"), Some(&[40][..]));
    let e = store.get("prompt_ids", &[40]).unwrap_err();
    assert!(matches!(&e, Error::DType { got, .. } if got == "I64"), "{e:?}");
    assert_eq!(store.get("prefill_logits", &[40, 512]).unwrap().dtype(), DType::F32);
}

/// A header entry with explicit offsets.
fn entry(dtype: &str, shape: &[usize], begin: usize, end: usize) -> serde_json::Value {
    serde_json::json!({"dtype": dtype, "shape": shape, "data_offsets": [begin, end]})
}

fn header_of(entries: &[(&str, serde_json::Value)]) -> String {
    let map: serde_json::Map<_, _> = entries.iter().map(|(n, v)| (n.to_string(), v.clone())).collect();
    serde_json::Value::Object(map).to_string()
}

#[test]
fn malformed_files_are_format_errors() {
    assert_has(&open_err(b""), "too short");
    assert_has(&open_err(&[1, 0, 0, 0, 0]), "too short");

    let good = small();
    let header_len = u64::from_le_bytes(good[..8].try_into().unwrap()) as usize;
    let mut long = good.clone();
    long[..8].copy_from_slice(&(good.len() as u64).to_le_bytes());
    assert_has(&open_err(&long), "exceeds");
    long[..8].copy_from_slice(&u64::MAX.to_le_bytes());
    assert_has(&open_err(&long), "exceeds");

    assert_has(&open_err(&raw_file("this is not json", &[])), "not a JSON object");
    assert_has(&open_err(&raw_file("[1, 2]", &[])), "not a JSON object");
    assert_has(&open_err(&raw_file("\u{0}\u{0}\u{0}", &[])), "not a JSON object");
    let mut bad_utf8 = good.clone();
    bad_utf8[9] = 0xff;
    assert_has(&open_err(&bad_utf8), "not UTF-8");

    // Truncated: the last tensor's bytes are cut short.
    let msg = open_err(&good[..good.len() - 5]);
    assert_has(&msg, "out of range");
    assert_has(&msg, "tensor ids");
    // Truncated inside the header.
    assert_has(&open_err(&good[..8 + header_len / 2]), "exceeds");
    // Trailing bytes after the last tensor.
    let mut padded = good.clone();
    padded.extend_from_slice(&[0; 3]);
    assert_has(&open_err(&padded), "trailing");

    let data = [0u8; 32];
    let cases: [(&[(&str, serde_json::Value)], &str); 7] = [
        (&[("x", entry("F32", &[4], 0, 16)), ("y", entry("F32", &[8], 16, 48))], "out of range"),
        (&[("x", entry("F32", &[4], 0, 16)), ("y", entry("F32", &[3], 16, 32))], "needs 12"),
        (&[("x", entry("F32", &[4], 0, 16)), ("y", entry("F32", &[5], 12, 32))], "overlaps"),
        (&[("x", entry("F32", &[4], 0, 16)), ("y", entry("F32", &[2], 24, 32))], "hole"),
        (&[("x", entry("F32", &[4], 16, 0)), ("y", entry("F32", &[4], 16, 32))], "reversed"),
        (&[("x", entry("Q4_K", &[4], 0, 16)), ("y", entry("F32", &[4], 16, 32))], "unknown dtype"),
        (&[("x", serde_json::json!({"dtype": "F32", "shape": [4]})), ("y", entry("F32", &[4], 16, 32))], "bad header"),
    ];
    for (entries, needle) in cases {
        let msg = open_err(&raw_file(&header_of(entries), &data));
        assert_has(&msg, needle);
        assert_has(&msg, "model.safetensors: invalid weights file");
    }
    let huge = [("x", entry("F32", &[usize::MAX, 4], 0, 32))];
    assert_has(&open_err(&raw_file(&header_of(&huge), &data)), "overflows");
}

/// Deterministic xorshift64*.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Applies one random mutation to a copy of `input`, a (possibly already mutated) file whose
/// original header was `header_len` bytes.
fn mutate(input: &[u8], header_len: usize, rng: &mut Rng) -> Vec<u8> {
    let mut b = input.to_vec();
    if b.len() <= 8 {
        b.truncate(rng.below(b.len() + 1));
        return b;
    }
    // Bytes 8..header_end are (what is left of) the original header; never empty here.
    let header_end = (8 + header_len).min(b.len());
    const JSONISH: &[u8] = b"0123456789[]{},:\"-.eE FIU";
    match rng.below(5) {
        0 => {
            for _ in 0..1 + rng.below(3) {
                let i = 8 + rng.below(header_end - 8);
                b[i] ^= 1 << rng.below(8);
            }
        }
        1 => {
            let i = 8 + rng.below(header_end - 8);
            b[i] = JSONISH[rng.below(JSONISH.len())];
        }
        2 => b.truncate(rng.below(b.len())),
        3 => {
            let len = match rng.below(3) {
                0 => rng.next(),
                1 => header_len as u64 ^ (1 << rng.below(64)),
                _ => (header_len + rng.below(9)).saturating_sub(4) as u64,
            };
            b[..8].copy_from_slice(&len.to_le_bytes());
        }
        _ => {
            let i = rng.below(b.len());
            b[i] = rng.next() as u8;
            b.truncate(b.len() - rng.below(3));
        }
    }
    b
}

/// Replaces the contents of `path` without truncating it to zero first: on ext4, truncate-then-write
/// forces a flush at close (auto_da_alloc), which makes thousands of rewrites take seconds. Only
/// called while no store maps the file.
fn overwrite(path: &Path, bytes: &[u8]) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(false).open(path).unwrap();
    f.write_all(bytes).unwrap();
    f.set_len(bytes.len() as u64).unwrap();
}

/// Number of mutated inputs the fuzz loop runs.
const FUZZ_RUNS: usize = 5000;

#[test]
fn fuzzed_files_never_panic() {
    let dir = TempDir::new("fuzz");
    let path = dir.0.join("fuzz.safetensors");
    let base = small();
    let header_len = u64::from_le_bytes(base[..8].try_into().unwrap()) as usize;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut runs, mut opened) = (0usize, 0usize);
    for _ in 0..FUZZ_RUNS {
        let mut input = mutate(&base, header_len, &mut rng);
        for _ in 0..rng.below(3) {
            input = mutate(&input, header_len, &mut rng);
        }
        overwrite(&path, &input);
        let outcome = std::panic::catch_unwind(|| match TensorStore::open(&path) {
            Ok(store) => {
                for name in store.names() {
                    let shape = store.shape(name).unwrap().to_vec();
                    if let Ok(t) = store.get(name, &shape) {
                        assert_eq!(t.to_f32_vec().len(), t.numel());
                    }
                    let _ = store.get_any(name);
                    let _ = store.get(name, &[1, 2, 3]);
                }
                true
            }
            Err(e) => {
                assert!(!e.to_string().is_empty());
                false
            }
        });
        match outcome {
            Ok(ok) => opened += ok as usize,
            Err(_) => panic!("TensorStore panicked on fuzz input #{runs}: {input:?}"),
        }
        runs += 1;
    }
    println!("fuzz: {runs} inputs run, {opened} opened successfully, {} rejected", runs - opened);
    assert_eq!(runs, FUZZ_RUNS);
}
