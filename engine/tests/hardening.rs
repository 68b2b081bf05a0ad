//! The model directory as a boundary, sizes checked before allocation, and broken numbers: each
//! test reproduces a hole found by trying garnet as an attacker would (issue 14).

mod common;

use common::{copy_of, testdata, TempDir};
use garnet::api::{BackendKind, Engine, LoadOptions, SessionOptions};
use garnet::config::ModelConfig;
use garnet::store::TensorStore;
use garnet::{Error, Sampling};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

const E2B: &str = "edge_e2b_like/bf16";
/// A session within the fixture's 256 positions.
const OPTS: SessionOptions = SessionOptions { context: 64, prefill_chunk: 64 };

fn load(path: &Path, backend: BackendKind) -> garnet::Result<Engine> {
    Engine::load(path, LoadOptions { backend, ..Default::default() })
}

fn load_err(path: &Path) -> String {
    match load(path, BackendKind::CpuRef) {
        Ok(_) => panic!("{} loaded", path.display()),
        Err(e) => e.to_string(),
    }
}

/// Overwrites elements `range` of BF16 tensor `name` in `dir/model.safetensors` with NaN.
fn poison(dir: &Path, name: &str, range: std::ops::Range<usize>) {
    let path = dir.join("model.safetensors");
    let mut bytes = std::fs::read(&path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let begin = 8 + n + header[name]["data_offsets"][0].as_u64().unwrap() as usize;
    for i in range {
        bytes[begin + 2 * i..begin + 2 * i + 2].copy_from_slice(&0x7fc0u16.to_le_bytes());
    }
    std::fs::write(&path, bytes).unwrap();
}

/// The backends this machine runs: the two CPU ones, CUDA emulated, and wgpu when an adapter
/// (lavapipe without a GPU) is there.
fn backends() -> Vec<BackendKind> {
    let mut all = vec![BackendKind::CpuRef, BackendKind::Cpu];
    #[cfg(feature = "wgpu")]
    if garnet_kernels::wgpu::Wgpu::new().is_ok() {
        all.push(BackendKind::Wgpu);
    } else {
        eprintln!("wgpu: no adapter, its NaN check is not run here");
    }
    all.push(BackendKind::CudaEmulated);
    all
}

fn non_finite<T: std::fmt::Debug>(r: garnet::Result<T>, what: &str) {
    match r {
        Err(Error::NonFinite(_)) => {}
        Err(e) => panic!("{what}: expected a NonFinite error, got {e}"),
        Ok(_) => panic!("{what}: expected a NonFinite error, got a result"),
    }
}

#[test]
fn nan_logits_are_errors_on_every_backend() {
    let prompt = [2u32, 17, 93, 401];
    let greedy = Sampling { max_new_tokens: 8, ..Sampling::greedy() };
    // The first greedy token of the clean model; its per-layer-embedding row is poisoned below,
    // so the prompt's logits stay finite and the NaN appears only when that token is fed back.
    let clean = load(&testdata(E2B), BackendKind::CpuRef).unwrap();
    let mut s = clean.session(OPTS).unwrap();
    let first = s.generate_ids(&prompt, &greedy).unwrap().next().unwrap().unwrap().id;
    assert!(!prompt.contains(&first));

    let all_nan = copy_of(E2B);
    poison(&all_nan.0, "model.norm.weight", 0..96);
    let row_nan = copy_of(E2B);
    poison(&row_nan.0, "model.embed_tokens_per_layer.weight", first as usize * 144..(first as usize + 1) * 144);
    // Sampled, but always the top token: the host path after the first token.
    let top1 = Sampling { temperature: 1.0, top_k: 1, ..greedy.clone() };
    for backend in backends() {
        let engine = load(&all_nan.0, backend).unwrap();
        let mut s = engine.session(OPTS).unwrap();
        non_finite(s.prefill(&prompt), &format!("{backend:?} prefill"));
        s.reset();
        non_finite(s.prefill_all(&prompt), "prefill_all");
        s.reset();
        non_finite(s.generate_ids(&prompt, &greedy).map(drop), "generate");

        let engine = load(&row_nan.0, backend).unwrap();
        for sampling in [greedy.clone(), top1.clone()] {
            let mut s = engine.session(OPTS).unwrap();
            let mut gen = s.generate_ids(&prompt, &sampling).unwrap();
            assert_eq!(gen.next().unwrap().unwrap().id, first, "{backend:?}");
            // Greedy: chosen on the device, where the log-probability carries the NaN.
            non_finite(gen.next().unwrap(), &format!("{backend:?} second token, {sampling:?}"));
            assert!(gen.next().is_none());
            drop(gen);
            non_finite(s.step(first), "step");
        }
    }
}

#[test]
fn index_names_outside_the_directory_are_refused_without_reading_them() {
    let outside = TempDir::new("outside");
    std::fs::copy(testdata(E2B).join("model.safetensors"), outside.0.join("secret.safetensors")).unwrap();
    let rel = format!("../{}/secret.safetensors", outside.0.file_name().unwrap().to_str().unwrap());
    for shard in ["/etc/passwd", "/no/such/dir/x", rel.as_str(), "a/../../b.safetensors"] {
        let dir = copy_of(E2B);
        std::fs::remove_file(dir.0.join("model.safetensors")).unwrap();
        let index = json!({"weight_map": {"model.norm.weight": shard}});
        std::fs::write(dir.0.join("model.safetensors.index.json"), index.to_string()).unwrap();
        let e = load_err(&dir.0);
        assert!(e.contains("must be a relative path inside the model directory"), "{shard}: {e}");
        // Nothing about the target: neither its bytes nor whether it exists.
        assert!(!e.contains("header") && !e.contains("exist"), "{shard}: {e}");
    }
}

#[test]
fn symlinked_shards_are_followed() {
    // The HF cache layout: snapshots/<rev>/file -> ../../blobs/<hash>.
    let cache = TempDir::new("hf-cache");
    let (blobs, snap) = (cache.0.join("blobs"), cache.0.join("snapshots/rev"));
    std::fs::create_dir_all(&blobs).unwrap();
    std::fs::create_dir_all(&snap).unwrap();
    for f in ["model.safetensors", "config.json", "tokenizer.json"] {
        std::fs::copy(testdata(E2B).join(f), blobs.join(format!("blob-{f}"))).unwrap();
        std::os::unix::fs::symlink(format!("../../blobs/blob-{f}"), snap.join(f)).unwrap();
    }
    let names = TensorStore::open(&testdata(E2B)).unwrap().names().iter().map(|n| n.to_string()).collect::<Vec<_>>();
    let map: serde_json::Map<String, Value> = names.into_iter().map(|n| (n, "model.safetensors".into())).collect();
    std::fs::write(snap.join("model.safetensors.index.json"), json!({"weight_map": map}).to_string()).unwrap();
    let engine = load(&snap, BackendKind::CpuRef).unwrap();
    assert!(engine.tokenizer().is_some());
}

#[test]
fn errors_name_what_the_user_gave() {
    let dir = TempDir::new("named");
    let text = dir.write("notes.txt", b"root:x:0:0:root:/root:/bin/bash\n");
    let e = load_err(&text);
    assert!(e.contains("notes.txt: invalid weights file") && !e.contains("config.json"), "{e}");
    assert!(!e.contains(&u64::from_le_bytes(*b"root:x:0").to_string()), "file contents in {e}");
    let gguf_dir = dir.0.join("x.gguf");
    std::fs::create_dir(&gguf_dir).unwrap();
    let e = load_err(&gguf_dir);
    assert!(e.contains("x.gguf: is a directory"), "{e}");
}

/// `name` in a copy of the fixture replaced by a symlink to `target`.
fn with_link(name: &str, target: &Path) -> TempDir {
    let dir = copy_of(E2B);
    std::fs::remove_file(dir.0.join(name)).ok();
    std::os::unix::fs::symlink(target, dir.0.join(name)).unwrap();
    dir
}

#[test]
fn fifos_devices_and_huge_files_are_refused_before_reading() {
    for name in ["config.json", "tokenizer.json", "generation_config.json"] {
        let e = load_err(&with_link(name, Path::new("/dev/zero")).0);
        assert!(e.contains(name) && e.contains("not a regular file"), "{name}: {e}");
        let dir = copy_of(E2B);
        let fifo = dir.0.join(name);
        std::fs::remove_file(&fifo).unwrap();
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        let e = load_err(&dir.0);
        assert!(e.contains("not a regular file"), "{name}: {e}");
    }
    // A sparse 17 MiB config.json: refused from its size, not read.
    let dir = copy_of(E2B);
    std::fs::File::create(dir.0.join("config.json")).unwrap().set_len(17 << 20).unwrap();
    let e = load_err(&dir.0);
    assert!(e.contains("exceeds the 16 MiB limit"), "{e}");
}

fn e2b_config() -> Value {
    serde_json::from_str(&std::fs::read_to_string(testdata(E2B).join("config.json")).unwrap()).unwrap()
}

#[test]
fn config_sizes_are_checked_before_anything_is_sized_by_them() {
    let cases: [(&str, Value, &str); 8] = [
        ("num_hidden_layers", json!(1u64 << 40), "num_hidden_layers"),
        ("num_hidden_layers", json!(0), "num_hidden_layers"),
        ("max_position_embeddings", json!(1u64 << 40), "max_position_embeddings"),
        ("sliding_window", json!(1u64 << 62), "sliding_window"),
        ("eos_token_id", json!([1, 1u64 << 33]), "eos_token_id"),
        ("bos_token_id", json!(1u64 << 33), "bos_token_id"),
        ("pad_token_id", json!(u64::MAX), "pad_token_id"),
        ("intermediate_size", json!(1u64 << 40), "MLP"),
    ];
    for (key, value, want) in cases {
        let mut j = e2b_config();
        // Without layer_types, the layer count alone would size the per-layer tables.
        if key == "num_hidden_layers" {
            j.as_object_mut().unwrap().remove("layer_types");
        }
        j[key] = value.clone();
        let e = ModelConfig::from_json(&j).unwrap_err();
        assert!(e.contains(want), "{key} = {value}: {e}");
    }
}

#[test]
fn sessions_beyond_the_machine_are_refused_before_allocating() {
    let dir = copy_of(E2B);
    let mut j = e2b_config();
    j["max_position_embeddings"] = json!(garnet::config::MAX_CONTEXT);
    std::fs::write(dir.0.join("config.json"), j.to_string()).unwrap();
    let engine = load(&dir.0, BackendKind::Cpu).unwrap();
    let context = garnet::config::MAX_CONTEXT;
    // 16M positions in one chunk: about 100 GB of buffers. Allocated blindly this aborted the
    // process; it is now refused, unless this machine really can hold it.
    match engine.session(SessionOptions { context, prefill_chunk: context }) {
        Err(e) => assert!(e.to_string().contains("more than this machine can allocate"), "{e}"),
        Ok(_) => assert!(garnet::kv::host_can_allocate(100 << 30)),
    }
    // A context over the model's maximum is capped to it, as documented.
    let capped = engine.session(SessionOptions { context: context + 1, prefill_chunk: 1 });
    if let Ok(s) = capped {
        assert_eq!(s.context(), context);
    }
}

#[test]
fn generation_lengths_cannot_wrap_the_context_check() {
    let engine = load(&testdata(E2B), BackendKind::CpuRef).unwrap();
    let mut s = engine.session(SessionOptions { context: 64, prefill_chunk: 64 }).unwrap();
    let sampling = Sampling { max_new_tokens: usize::MAX, stop_tokens: Some(vec![]), ..Sampling::greedy() };
    // Nothing is reserved up front: the generation runs until the context is full.
    let mut gen = s.generate_ids(&[2, 17], &sampling).unwrap();
    assert_eq!(gen.by_ref().map(|t| t.unwrap().id).collect::<Vec<_>>().len(), 62);
    assert_eq!(gen.finish_reason(), Some(&garnet::FinishReason::ContextFull));
    drop(gen);
    assert_eq!(s.position(), 64);
    match s.generate_ids(&[17], &sampling).map(drop) {
        Err(Error::ContextOverflow { ctx: 64, need: 65 }) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn strings_from_files_are_escaped_in_errors() {
    let dir = TempDir::new("escape");
    let header = json!({"evil\u{1b}[2J\nname": {"dtype": "Z9", "shape": [1], "data_offsets": [0, 4]}}).to_string();
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend(header.as_bytes());
    bytes.extend([0u8; 4]);
    let path = dir.write("evil\u{7}.safetensors", &bytes);
    let e = TensorStore::open(&path).unwrap_err().to_string();
    assert!(e.contains("evil\\u{1b}[2J\\nname") && e.contains("evil\\u{7}.safetensors"), "{e}");
    assert!(!e.chars().any(char::is_control), "{e:?}");
}

#[test]
fn paths_escape_in_io_errors() {
    let e = Error::Io { path: PathBuf::from("a\nb\u{1b}"), err: std::io::ErrorKind::NotFound.into() };
    assert!(!e.to_string().chars().any(char::is_control), "{e}");
}

/// The real Gemma 3 270M GGUF and Gemma's 33 MB tokenizer.json load under every cap, and a
/// session of the model's whole context passes the memory check (skipped without the files:
/// scripts/fetch-gemma3.sh, tools/scripts/fetch-tokenizer.sh).
#[test]
fn real_gemma3_loads_under_every_cap() {
    let vars = (std::env::var_os("GARNET_GEMMA3_GGUF"), std::env::var_os("GARNET_GEMMA_TOKENIZER_JSON"));
    let (Some(gguf), Some(tokenizer)) = vars else {
        eprintln!("skipped: GARNET_GEMMA3_GGUF or GARNET_GEMMA_TOKENIZER_JSON not set");
        return;
    };
    let opts = LoadOptions { tokenizer: Some(tokenizer.into()), ..Default::default() };
    let engine = Engine::load(PathBuf::from(gguf), opts).unwrap();
    let context = engine.config().max_position_embeddings;
    assert_eq!(context, 32_768);
    engine.session(SessionOptions { context, prefill_chunk: 512 }).unwrap();
    let ids = engine.tokenizer().unwrap().encode("The capital of France is", true).unwrap();
    assert_eq!(ids, [2, 818, 5279, 529, 7001, 563]);
}
