//! Bad input through the public API: every case is a typed error with a clear message, no panic.
//! (File-format corruption in depth, sharding and the header fuzz loop: tests/store_files.rs.)

use garnet::api::{Engine, LoadOptions, SessionOptions};
use garnet::{Error, Sampling};
use safetensors::{tensor::TensorView, SafeTensors};
use std::path::{Path, PathBuf};

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata/gemma4-tiny/edge_e2b_like/bf16")
}

/// A scratch copy of the E2B-like fixture; `edit` rewrites its tensors before they are saved.
fn checkpoint_with(name: &str, edit: impl FnOnce(&mut Vec<(String, String, Vec<usize>, Vec<u8>)>)) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("garnet-bad-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["config.json", "tokenizer.json"] {
        std::fs::copy(fixture().join(f), dir.join(f)).unwrap();
    }
    let bytes = std::fs::read(fixture().join("model.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let mut tensors: Vec<(String, String, Vec<usize>, Vec<u8>)> = st
        .tensors()
        .into_iter()
        .map(|(n, t)| (n, format!("{:?}", t.dtype()), t.shape().to_vec(), t.data().to_vec()))
        .collect();
    edit(&mut tensors);
    let views: Vec<(String, TensorView)> = tensors
        .iter()
        .map(|(n, d, s, b)| {
            let dtype = match d.as_str() {
                "BF16" => safetensors::Dtype::BF16,
                "I64" => safetensors::Dtype::I64,
                _ => safetensors::Dtype::F32,
            };
            (n.clone(), TensorView::new(dtype, s.clone(), b).unwrap())
        })
        .collect();
    safetensors::serialize_to_file(views, None, &dir.join("model.safetensors")).unwrap();
    dir
}

fn load_err(path: &Path) -> Error {
    match Engine::load(path, LoadOptions::default()) {
        Ok(_) => panic!("{} loaded", path.display()),
        Err(e) => e,
    }
}

#[test]
fn missing_tensor() {
    let dir = checkpoint_with("missing", |t| t.retain(|(n, ..)| n != "model.layers.3.mlp.up_proj.weight"));
    let e = load_err(&dir);
    assert!(matches!(&e, Error::MissingTensor { name } if name == "model.layers.3.mlp.up_proj.weight"), "{e}");
}

#[test]
fn wrong_shape() {
    let dir = checkpoint_with("shape", |t| {
        let q = t.iter_mut().find(|(n, ..)| n == "model.layers.0.self_attn.q_norm.weight").unwrap();
        q.2 = vec![8];
        q.3.truncate(16);
    });
    let e = load_err(&dir);
    assert!(matches!(&e, Error::Shape { got, want, .. } if got == &[8] && want == &[16]), "{e}");
    assert!(e.to_string().contains("q_norm"), "{e}");
}

#[test]
fn wrong_dtype() {
    let dir = checkpoint_with("dtype", |t| {
        let w = t.iter_mut().find(|(n, ..)| n == "model.norm.weight").unwrap();
        w.1 = "I64".into();
        w.3.extend_from_within(..);
        w.3.extend_from_within(..); // 96 bf16 -> 96 i64
    });
    let e = load_err(&dir);
    assert!(matches!(&e, Error::DType { name, .. } if name == "model.norm.weight"), "{e}");
}

#[test]
fn unused_kv_weights_of_shared_layers_may_be_absent() {
    // Layers 3..6 of the E2B-like model reuse earlier K/V: their k/v weights are optional.
    let dir = checkpoint_with("noshared", |t| {
        t.retain(|(n, ..)| !["3", "4", "5"].iter().any(|l| n.starts_with(&format!("model.layers.{l}.self_attn.k_"))))
    });
    Engine::load(&dir, LoadOptions::default()).unwrap();
}

#[test]
fn corrupt_files() {
    let good = std::fs::read(fixture().join("model.safetensors")).unwrap();
    let header_len = u64::from_le_bytes(good[..8].try_into().unwrap()) as usize;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("truncated", good[..good.len() / 2].to_vec()),
        ("header beyond file", [&(1u64 << 40).to_le_bytes()[..], &good[8..]].concat()),
        ("header not json", [&good[..8], &vec![b'x'; header_len][..], &good[8 + header_len..]].concat()),
        ("offsets out of range", {
            let h = String::from_utf8(good[8..8 + header_len].to_vec()).unwrap();
            let h = h.replacen("\"data_offsets\":[0,", "\"data_offsets\":[99999999,", 1);
            let mut v = (h.len() as u64).to_le_bytes().to_vec();
            v.extend(h.as_bytes());
            v.extend(&good[8 + header_len..]);
            v
        }),
    ];
    for (what, bytes) in cases {
        let dir = checkpoint_with(&what.replace(' ', "_"), |_| {});
        std::fs::write(dir.join("model.safetensors"), &bytes).unwrap();
        let e = load_err(&dir);
        assert!(matches!(e, Error::Format { .. } | Error::Io { .. }), "{what}: {e}");
    }
}

#[test]
fn bad_configs() {
    let missing = checkpoint_with("noconfig", |_| {});
    std::fs::remove_file(missing.join("config.json")).unwrap();
    assert!(matches!(load_err(&missing), Error::Io { .. }));

    for (what, text) in [("garbage", "{not json"), ("no hidden", r#"{"model_type": "gemma4_text"}"#)] {
        let dir = checkpoint_with(&format!("config-{}", what.replace(' ', "_")), |_| {});
        std::fs::write(dir.join("config.json"), text).unwrap();
        let e = load_err(&dir);
        assert!(matches!(e, Error::Config { .. }), "{what}: {e}");
    }
}

#[test]
fn bad_session_input() {
    let engine = Engine::load(fixture(), LoadOptions::default()).unwrap();
    let vocab = engine.config().vocab_size as u32;
    let mut s = engine.session(SessionOptions { context: 16, prefill_chunk: 8 }).unwrap();
    assert!(matches!(s.prefill(&[2, vocab]), Err(Error::TokenOutOfRange { id, .. }) if id == vocab));
    assert!(matches!(s.prefill(&[]), Err(Error::Invalid(_))));
    assert!(matches!(s.prefill(&[2; 17]), Err(Error::ContextOverflow { need: 17, ctx: 16 })));
    // Nothing was consumed by the failed calls.
    assert_eq!(s.position(), 0);
    s.prefill(&[2; 10]).unwrap();
    assert!(matches!(s.step(vocab + 7), Err(Error::TokenOutOfRange { .. })));
    // A prompt over the context is refused before any work; a generation stops at a full context.
    let over = Sampling { max_new_tokens: 10, stop_tokens: Some(vec![]), ..Sampling::greedy() };
    assert!(matches!(s.generate_ids(&[5; 7], &over), Err(Error::ContextOverflow { need: 17, ctx: 16 })));
    let bad = Sampling { top_p: 0.0, ..Sampling::greedy() };
    assert!(matches!(s.generate_ids(&[5], &bad), Err(Error::Invalid(_))));
    assert_eq!(s.position(), 10);
    let mut gen = s.generate_ids(&[5, 6], &over).unwrap();
    assert_eq!(gen.by_ref().map(|t| t.unwrap().id).collect::<Vec<_>>().len(), 4);
    assert_eq!(gen.finish_reason(), Some(&garnet::FinishReason::ContextFull));
    // A context over the model's maximum is capped to it.
    let capped = engine.session(SessionOptions { context: 1 << 30, prefill_chunk: 8 }).unwrap();
    assert_eq!(capped.context(), engine.config().max_position_embeddings);
}
