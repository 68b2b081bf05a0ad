//! `garnet::gguf`: the real Gemma 3 270M GGUF (when `GARNET_GEMMA3_GGUF` names it), gguf-py
//! conversions of the tiny Gemma 4 fixtures (`tools/scripts/make_gguf_fixtures.py`) checked
//! byte for byte against the safetensors store, malformed files, and a bounded mutation fuzz loop.

mod common;
use common::{testdata, TempDir};
use garnet::config::{Arch, LayerKind, ModelConfig};
use garnet::gguf::{model_config, GgufFile, MetaValue};
use garnet::store::TensorStore;
use garnet::Error;
use garnet_kernels::DType;
use std::path::{Path, PathBuf};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name)
}

fn gstr(s: &[u8]) -> Vec<u8> {
    let mut v = (s.len() as u64).to_le_bytes().to_vec();
    v.extend(s);
    v
}

/// Writes GGUF files by hand, including broken ones.
struct Builder {
    magic: [u8; 4],
    version: u32,
    align: usize,
    n_kv: u64,
    kv: Vec<u8>,
    n_tensors: u64,
    infos: Vec<u8>,
    data: Vec<u8>,
}

impl Builder {
    fn new(arch: &str) -> Builder {
        let b = Builder {
            magic: *b"GGUF",
            version: 3,
            align: 32,
            n_kv: 0,
            kv: vec![],
            n_tensors: 0,
            infos: vec![],
            data: vec![],
        };
        b.kv("general.architecture", 8, &gstr(arch.as_bytes()))
    }
    /// A metadata entry with raw value bytes of GGUF type `ty`.
    fn kv(mut self, key: &str, ty: u32, value: &[u8]) -> Builder {
        self.kv.extend(gstr(key.as_bytes()));
        self.kv.extend(ty.to_le_bytes());
        self.kv.extend(value);
        self.n_kv += 1;
        self
    }
    fn u32(self, key: &str, v: u32) -> Builder {
        self.kv(key, 4, &v.to_le_bytes())
    }
    fn f32(self, key: &str, v: f32) -> Builder {
        self.kv(key, 6, &v.to_le_bytes())
    }
    /// An array of `count` elements of type `ty` with raw element bytes.
    fn array(self, key: &str, ty: u32, count: u64, elems: &[u8]) -> Builder {
        let mut v = ty.to_le_bytes().to_vec();
        v.extend(count.to_le_bytes());
        v.extend(elems);
        self.kv(key, 9, &v)
    }
    fn bools(self, key: &str, v: &[bool]) -> Builder {
        let bytes: Vec<u8> = v.iter().map(|&b| b as u8).collect();
        self.array(key, 7, v.len() as u64, &bytes)
    }
    /// A tensor info with an explicit data-section offset (no data written).
    fn info(mut self, name: &str, ne: &[u64], ty: u32, offset: u64) -> Builder {
        self.infos.extend(gstr(name.as_bytes()));
        self.infos.extend((ne.len() as u32).to_le_bytes());
        for d in ne {
            self.infos.extend(d.to_le_bytes());
        }
        self.infos.extend(ty.to_le_bytes());
        self.infos.extend(offset.to_le_bytes());
        self.n_tensors += 1;
        self
    }
    /// A tensor with its data appended (aligned).
    fn tensor(mut self, name: &str, ne: &[u64], ty: u32, bytes: &[u8]) -> Builder {
        let offset = self.data.len() as u64;
        self.data.extend(bytes);
        self.data.resize(self.data.len().next_multiple_of(self.align), 0);
        self.info(name, ne, ty, offset)
    }
    fn f32_tensor(self, name: &str, ne: &[u64], values: &[f32]) -> Builder {
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.tensor(name, ne, 0, &bytes)
    }
    fn build(&self) -> Vec<u8> {
        let mut out = self.magic.to_vec();
        out.extend(self.version.to_le_bytes());
        out.extend(self.n_tensors.to_le_bytes());
        out.extend(self.n_kv.to_le_bytes());
        out.extend(&self.kv);
        out.extend(&self.infos);
        out.resize(out.len().next_multiple_of(self.align), 0);
        out.extend(&self.data);
        out
    }
}

/// A minimal complete Gemma 4 header: 2 layers [sliding, full], head_dim 4 / 8, rope_freqs `freqs`.
fn gemma4_tiny(freqs: &[f32]) -> Builder {
    Builder::new("gemma4")
        .u32("gemma4.block_count", 2)
        .u32("gemma4.embedding_length", 8)
        .u32("gemma4.attention.head_count", 2)
        .u32("gemma4.attention.head_count_kv", 1)
        .u32("gemma4.attention.key_length", 8)
        .u32("gemma4.attention.key_length_swa", 4)
        .u32("gemma4.feed_forward_length", 16)
        .u32("gemma4.attention.sliding_window", 4)
        .bools("gemma4.attention.sliding_window_pattern", &[true, false])
        .f32_tensor("rope_freqs.weight", &[freqs.len() as u64], freqs)
        .f32_tensor("token_embd.weight", &[8, 3], &[0.5; 24])
}

fn open_bytes(dir: &TempDir, name: &str, bytes: &[u8]) -> garnet::Result<GgufFile> {
    GgufFile::open(dir.write(name, bytes))
}

fn format_err(r: garnet::Result<GgufFile>, want: &str) {
    match r {
        Err(Error::Format { why, .. }) => assert!(why.contains(want), "expected {want:?} in {why:?}"),
        Err(e) => panic!("expected a Format error about {want:?}, got {e}"),
        Ok(_) => panic!("expected a Format error about {want:?}, got Ok"),
    }
}

#[test]
fn real_gemma3_270m() {
    let Ok(path) = std::env::var("GARNET_GEMMA3_GGUF") else {
        println!("skipped: GARNET_GEMMA3_GGUF not set");
        return;
    };
    let g = GgufFile::open(&path).unwrap();
    assert_eq!((g.version(), g.architecture(), g.alignment()), (3, Some("gemma3"), 32));
    assert_eq!(g.tensor_names().len(), 236);
    let md = g.metadata();
    assert_eq!(md["tokenizer.ggml.tokens"].as_strings().unwrap().len(), 262_144);
    assert_eq!(md["tokenizer.ggml.scores"].as_f32s().unwrap().len(), 262_144);
    assert_eq!(md["tokenizer.ggml.token_type"].as_i32s().unwrap().len(), 262_144);
    assert_eq!(md["tokenizer.ggml.tokens"].as_strings().unwrap()[2], "<bos>");
    let id = |k: &str| md[&format!("tokenizer.ggml.{k}")].as_u64().unwrap();
    assert_eq!([id("bos_token_id"), id("eos_token_id"), id("unknown_token_id"), id("padding_token_id")], [2, 1, 3, 0]);
    assert_eq!(md["tokenizer.ggml.add_bos_token"].as_bool(), Some(true));
    assert_eq!(md["tokenizer.ggml.add_space_prefix"].as_bool(), Some(false));

    let cfg = model_config(&g).unwrap();
    assert_eq!((cfg.arch, cfg.norm_plus_one, cfg.v_norm), (Arch::Gemma3, false, false));
    assert_eq!((cfg.n_layers(), cfg.hidden_size, cfg.n_heads, cfg.vocab_size), (18, 640, 4, 262_144));
    assert_eq!((cfg.sliding_window, cfg.max_position_embeddings, cfg.final_logit_softcap), (512, 32_768, None));
    assert_eq!(cfg.attention_scale, 1.0 / 16.0);
    let full: Vec<usize> = (0..18).filter(|&i| cfg.layers[i].kind == LayerKind::Full).collect();
    assert_eq!(full, [5, 11, 17]);
    for l in &cfg.layers {
        assert_eq!(
            (l.head_dim, l.n_kv_heads, l.mlp_inter, l.rope.rotary_pairs, l.kv_source),
            (256, 1, 2048, 128, None)
        );
        let theta = if l.kind == LayerKind::Full { 1e6 } else { 1e4 };
        assert_eq!((l.rope.theta, l.window.is_some()), (theta, l.kind == LayerKind::Sliding));
    }
    assert_eq!((cfg.bos_token_id, &cfg.eos_token_ids[..], cfg.pad_token_id), (2, &[1][..], 0));

    let store = g.into_store().unwrap();
    assert_eq!(store.names().len(), 236);
    let check = |name: &str, shape: &[usize], dtype: DType| {
        let t = store.get(name, shape).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(t.dtype(), dtype, "{name}");
        assert!(t.rows(0, 1).unwrap().to_f32_vec().iter().all(|x| x.is_finite()), "{name}");
    };
    check("model.embed_tokens.weight", &[262_144, 640], DType::Q8_0);
    check("model.norm.weight", &[640], DType::F32);
    check("model.layers.0.self_attn.q_proj.weight", &[1024, 640], DType::Q5_0);
    check("model.layers.0.self_attn.v_proj.weight", &[256, 640], DType::Q8_0);
    check("model.layers.0.self_attn.o_proj.weight", &[640, 1024], DType::Q4_K);
    check("model.layers.0.mlp.down_proj.weight", &[640, 2048], DType::Q6_K);
    check("model.layers.17.pre_feedforward_layernorm.weight", &[640], DType::F32);
    // The converter stores Gemma 3 norms as 1 + w: the final norm's weights are mostly positive.
    let norm = store.get_any("model.norm.weight").unwrap().to_f32_vec();
    assert!(norm.iter().filter(|&&x| x > 0.0).count() > 600, "{:?}", &norm[..8]);
    garnet::weights::load(&store, &cfg).unwrap();
}

/// The gguf-py conversions of two tiny fixtures against their safetensors originals.
#[test]
fn gemma4_tiny_matches_safetensors() {
    for (file, variant) in [("gemma4_moe_tiny.gguf", "moe_26b_a4b_like"), ("gemma4_e2b_tiny.gguf", "edge_e2b_like")] {
        let g = GgufFile::open(data(file)).unwrap();
        let cfg = model_config(&g).unwrap();
        let want = ModelConfig::load(&testdata(&format!("{variant}/f32"))).unwrap();
        assert_eq!(cfg, want, "{variant}");
        let tokens = g.get("tokenizer.ggml.tokens").and_then(MetaValue::as_strings).unwrap();
        assert_eq!((tokens.len(), tokens[106].as_str()), (512, "<turn|>"));

        let store = g.into_store().unwrap();
        let st = TensorStore::open(&testdata(&format!("{variant}/f32/model.safetensors"))).unwrap();
        let mut expected: Vec<&str> = st.names();
        expected.push("model.rope_freqs");
        expected.sort();
        assert_eq!(store.names(), expected, "{variant}");
        for name in st.names() {
            let (a, b) = (store.get_any(name).unwrap(), st.get_any(name).unwrap());
            assert_eq!((a.shape(), a.dtype()), (b.shape(), b.dtype()), "{variant} {name}");
            assert!(a.bytes() == b.bytes(), "{variant} {name}: bytes differ");
        }
        let freqs = store.get("model.rope_freqs", &[16]).unwrap().to_f32_vec();
        assert_eq!(&freqs[..5], &[1.0, 1.0, 1.0, 1.0, 1e30]);
        garnet::weights::load(&store, &cfg).unwrap();
    }
}

#[test]
fn metadata_value_types() {
    let g = GgufFile::open(data("tiny_valid.gguf")).unwrap();
    let get = |k: &str| g.get(&format!("test.{k}")).unwrap();
    assert_eq!(get("u8"), &MetaValue::U8(200));
    assert_eq!((get("i8").as_i64(), get("i8").as_u64()), (Some(-100), None));
    assert_eq!((get("u16").as_u64(), get("i16").as_i64()), (Some(60_000), Some(-30_000)));
    assert_eq!((get("u32").as_u64(), get("i32").as_i64()), (Some(4_000_000_000), Some(-2_000_000_000)));
    assert_eq!((get("u64").as_u64(), get("i64").as_i64()), (Some(1 << 40), Some(-(1 << 40))));
    assert_eq!((get("f32").as_f32(), get("f64").as_f64()), (Some(0.5), Some(0.25)));
    assert_eq!((get("bool").as_bool(), get("string").as_str()), (Some(true), Some("héllo")));
    assert_eq!(get("strings").as_strings().unwrap(), ["a", "", "\u{2581}b"]);
    assert_eq!(get("ints").as_i32s().unwrap(), [1, -2, 3]);
    assert_eq!(get("ints").as_array().unwrap().to_u64s(), None);
    assert_eq!(get("bools").as_array().unwrap().as_bools().unwrap(), [true, false]);
    assert_eq!(get("floats").as_f32s().unwrap(), [1.5, -2.0]);
    let nested = get("nested").as_array().unwrap();
    assert_eq!(nested.len(), 2);
    assert_eq!(g.tensor_names(), ["blk.0.attn_norm.weight", "token_embd.weight", "blk.0.attn_q.weight", "blk.0.ids"]);
    let q = g.tensor_info("blk.0.attn_q.weight").unwrap();
    assert_eq!((q.ne(), q.shape(), q.dtype(), q.nbytes()), (&[32u64, 2][..], vec![2, 32], Some(DType::Q8_0), Some(68)));
    let store = g.into_store().unwrap();
    assert_eq!(store.get("model.embed_tokens.weight", &[4, 8]).unwrap().dtype(), DType::F16);
    assert_eq!(store.get("model.layers.0.self_attn.q_proj.weight", &[2, 32]).unwrap().to_f32_vec().len(), 64);
    // I32 is a ggml type garnet does not compute with: listed, and an error only when requested.
    assert_eq!(store.dtype_name("blk.0.ids"), Some("I32"));
    assert!(matches!(store.get_any("blk.0.ids"), Err(Error::DType { .. })));
}

#[test]
fn split_experts_get_their_own_names() {
    let dir = TempDir::new("split");
    let (e, i, h) = (3u64, 2u64, 4u64);
    let vals: Vec<f32> = (0..e * i * h).map(|x| x as f32).collect();
    let b = Builder::new("gemma4")
        .f32_tensor("blk.0.ffn_gate_exps.weight", &[h, i, e], &vals)
        .f32_tensor("blk.0.ffn_up_exps.weight", &[h, i, e], &vals)
        .f32_tensor("blk.0.ffn_down_exps.weight", &[i, h, e], &vals);
    let store = open_bytes(&dir, "split.gguf", &b.build()).unwrap().into_store().unwrap();
    for n in ["gate_proj", "up_proj"] {
        let t = store.get(&format!("model.layers.0.experts.{n}"), &[3, 2, 4]).unwrap();
        assert_eq!(t.to_f32_vec(), vals);
    }
    assert!(store.get("model.layers.0.experts.down_proj", &[3, 4, 2]).is_ok());
}

#[test]
fn gemma4_rope_freqs_and_k_eq_v() {
    let dir = TempDir::new("rope");
    let cfg =
        model_config(&open_bytes(&dir, "ok.gguf", &gemma4_tiny(&[1.0, 1e30, 1e30, 1e30]).build()).unwrap()).unwrap();
    assert_eq!((cfg.layers[1].rope.rotary_pairs, cfg.layers[0].rope.rotary_pairs), (1, 2));
    assert_eq!((cfg.layers[1].head_dim, cfg.layers[0].head_dim, cfg.vocab_size), (8, 4, 3));
    // No attn_v on the full layer: K=V.
    assert!(cfg.layers[1].k_eq_v && !cfg.layers[0].k_eq_v);
    let with_v = gemma4_tiny(&[1.0, 1e30, 1e30, 1e30]).f32_tensor("blk.1.attn_v.weight", &[8, 8], &[0.0; 64]);
    let cfg = model_config(&open_bytes(&dir, "v.gguf", &with_v.build()).unwrap()).unwrap();
    assert!(!cfg.layers[1].k_eq_v);
    for bad in [&[1.0, 0.5, 1e30, 1e30][..], &[1.0, 1e30, 1.0, 1e30], &[1.0, 1e30], &[f32::NAN, 1e30, 1e30, 1e30]] {
        let g = open_bytes(&dir, "bad.gguf", &gemma4_tiny(bad).build()).unwrap();
        assert!(matches!(model_config(&g), Err(Error::Config { .. })), "{bad:?}");
    }
}

#[test]
fn gemma3_config_from_metadata() {
    let dir = TempDir::new("g3");
    let tokens: Vec<u8> = (0..10).flat_map(|i| gstr(format!("t{i}").as_bytes())).collect();
    let g3_kv = |layers: u32, hidden: u32, kv: u32| {
        Builder::new("gemma3")
            .u32("gemma3.block_count", layers)
            .u32("gemma3.embedding_length", hidden)
            .u32("gemma3.attention.head_count", 2)
            .u32("gemma3.attention.head_count_kv", kv)
            .u32("gemma3.attention.key_length", 4)
            .u32("gemma3.feed_forward_length", 16)
            .u32("gemma3.attention.sliding_window", 512)
            .f32("gemma3.rope.freq_base", 1e6)
            .array("tokenizer.ggml.tokens", 8, 10, &tokens)
    };
    let g3 = |layers: u32, hidden: u32| g3_kv(layers, hidden, 1);
    let cfg = model_config(&open_bytes(&dir, "1b.gguf", &g3(26, 8).build()).unwrap()).unwrap();
    let full: Vec<usize> = (0..26).filter(|&i| cfg.layers[i].kind == LayerKind::Full).collect();
    assert_eq!(full, [5, 11, 17, 23], "Gemma 3 does not force the last layer full");
    assert_eq!((cfg.attention_scale, cfg.vocab_size, cfg.arch), (0.5, 10, Arch::Gemma3));
    assert_eq!((cfg.layers[0].rope.theta, cfg.layers[5].rope.theta), (1e4, 1e6));
    let cfg = model_config(&open_bytes(&dir, "27b.gguf", &g3(62, 16).build()).unwrap()).unwrap();
    assert_eq!(cfg.attention_scale, 8f32.powf(-0.5), "27B: query_pre_attn_scalar = hidden / heads");
    let scaled = g3(26, 8).kv("gemma3.rope.scaling.type", 8, &gstr(b"linear")).f32("gemma3.rope.scaling.factor", 8.0);
    let g = open_bytes(&dir, "scaled.gguf", &scaled.build()).unwrap();
    let cfg = model_config(&g).unwrap();
    assert_eq!(
        (cfg.layers[0].rope.freq_scale, cfg.layers[5].rope.freq_scale),
        (1.0, 0.125),
        "linear x8 on full layers"
    );
    let yarn = g3(26, 8).kv("gemma3.rope.scaling.type", 8, &gstr(b"yarn")).f32("gemma3.rope.scaling.factor", 8.0);
    let g = open_bytes(&dir, "yarn.gguf", &yarn.build()).unwrap();
    assert!(matches!(model_config(&g), Err(Error::Config { .. })));
    let g = open_bytes(&dir, "llama.gguf", &Builder::new("llama").u32("llama.block_count", 1).build()).unwrap();
    assert!(matches!(model_config(&g), Err(Error::Config { .. })));
    // A layer count of 2^30 is refused before anything is allocated per layer; 3 KV heads for 2.
    for b in [g3(1 << 30, 8), g3_kv(26, 8, 3)] {
        let g = open_bytes(&dir, "bad.gguf", &b.build()).unwrap();
        assert!(matches!(model_config(&g), Err(Error::Config { .. })));
    }
}

#[test]
fn malformed_files_are_errors() {
    let dir = TempDir::new("bad");
    let ok = |b: &Builder| open_bytes(&dir, "f.gguf", &b.build());
    let base = || Builder::new("gemma4").f32_tensor("a", &[8], &[1.0; 8]);
    ok(&base()).unwrap();

    let valid = std::fs::read(data("tiny_valid.gguf")).unwrap();
    let g = GgufFile::open(data("tiny_valid.gguf")).unwrap();
    let last_end = g
        .tensor_names()
        .iter()
        .map(|n| g.tensor_info(n).unwrap())
        .map(|t| t.offset() + t.nbytes().unwrap())
        .max()
        .unwrap();
    for len in 0..valid.len() {
        let r = open_bytes(&dir, "t.gguf", &valid[..len]);
        assert_eq!(r.is_ok(), len >= last_end, "prefix of {len} bytes");
    }
    let mut bad_magic = valid.clone();
    bad_magic[3] = b'X';
    format_err(open_bytes(&dir, "m.gguf", &bad_magic), "bad magic");
    for (version, why) in [(1, "version 1"), (4, "version 4"), (3 << 24, "big-endian")] {
        format_err(ok(&Builder { version, ..base() }), why);
    }
    let mut huge_key = base().build();
    huge_key[24..32].copy_from_slice(&(1u64 << 60).to_le_bytes()); // first key's length
    format_err(open_bytes(&dir, "k.gguf", &huge_key), "string length 1152921504606846976");
    let huge_value = base().kv("s", 8, &(1u64 << 60).to_le_bytes());
    format_err(ok(&huge_value), "string length");
    format_err(ok(&base().array("x", 0, 1 << 40, &[])), "count 1099511627776");
    format_err(ok(&base().array("x", 8, 1 << 40, &[])), "count 1099511627776");
    format_err(ok(&base().array("x", 9, 1 << 40, &[])), "count 1099511627776");
    let mut deep = vec![];
    for _ in 0..100 {
        deep.extend(9u32.to_le_bytes());
        deep.extend(1u64.to_le_bytes());
    }
    format_err(ok(&Builder::new("x").kv("deep", 9, &deep)), "nested deeper");
    format_err(ok(&base().kv("x", 13, &[0; 8])), "unknown metadata value type 13");
    format_err(ok(&base().kv("x", 7, &[2])), "bool value 2");
    format_err(ok(&base().kv("\u{0}\u{ff}", 0, &[0]).kv("general.architecture", 0, &[0])), "appears twice");
    let mut non_utf8 = base().build();
    let at = non_utf8.windows(7).position(|w| w == b"general").unwrap();
    non_utf8[at] = 0xff;
    format_err(open_bytes(&dir, "u.gguf", &non_utf8), "not UTF-8");
    format_err(ok(&base().u32("general.alignment", 3)), "general.alignment");
    format_err(ok(&base().kv("general.alignment", 10, &64u64.to_le_bytes())), "general.alignment");
    format_err(ok(&Builder { n_tensors: 1 << 50, ..base() }), "tensor count");

    format_err(ok(&base().info("b", &[8], 0, 4096)), "past the end of the file");
    format_err(ok(&base().info("b", &[8], 0, u64::MAX - 31)), "past the end of the file");
    format_err(ok(&base().info("b", &[8], 0, 4)), "not a multiple of the alignment 32");
    format_err(ok(&base().info("b", &[8], 0, 0)), "overlaps");
    format_err(ok(&base().info("b", &[1, 1, 1, 1, 1], 0, 32)), "5 dimensions");
    format_err(ok(&base().info("b", &[1 << 40, 1 << 40], 0, 32)), "overflows");
    format_err(ok(&base().info("b", &[16], 8, 32)), "not whole Q8_0 blocks");
    format_err(ok(&base().f32_tensor("a", &[1], &[0.0])), "tensor a appears twice");

    // Unknown and unsupported ggml types: fine until requested.
    let odd = base().tensor("blk.0.iq", &[32], 20, &[0; 18]).info("blk.0.odd", &[64], 99, 64).build();
    let store = open_bytes(&dir, "o.gguf", &odd).unwrap().into_store().unwrap();
    assert!(store.contains("blk.0.odd") && store.contains("blk.0.iq"));
    assert_eq!(store.dtype_name("blk.0.iq"), Some("IQ4_NL"));
    for n in ["blk.0.odd", "blk.0.iq"] {
        assert!(matches!(store.get_any(n), Err(Error::DType { .. })), "{n}");
    }
    // Two GGUF names for one HF name.
    let twice =
        base().f32_tensor("token_embd.weight", &[1], &[0.0]).f32_tensor("model.embed_tokens.weight", &[1], &[0.0]);
    assert!(matches!(ok(&twice).unwrap().into_store(), Err(Error::Format { .. })));
}

/// Exercises everything reachable from a file: metadata getters, config, every tensor's values.
fn touch(path: &Path) -> bool {
    let Ok(g) = GgufFile::open(path) else { return false };
    for v in g.metadata().values() {
        let _ = (v.as_u64(), v.as_i64(), v.as_f64(), v.as_bool(), v.as_str().map(str::len));
        if let Some(a) = v.as_array() {
            let _ = (a.len(), a.to_u64s(), a.as_strings().map(<[String]>::len), a.as_f32s().map(<[f32]>::len));
        }
    }
    let _ = model_config(&g);
    for name in g.tensor_names() {
        if let Ok(t) = g.tensor(name) {
            let _ = t.to_f32_vec();
        }
    }
    let Ok(store) = g.into_store() else { return false };
    for name in store.names() {
        if let Ok(t) = store.get_any(name) {
            let _ = t.to_f32_vec();
        }
    }
    true
}

#[test]
fn fuzz_mutations() {
    let dir = TempDir::new("fuzz");
    let seeds = [std::fs::read(data("tiny_valid.gguf")).unwrap(), gemma4_tiny(&[1.0, 1e30, 1e30, 1e30]).build()];
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut rand = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let interesting =
        [0u64, 1, 2, 5, 31, 32, 255, 1 << 31, u32::MAX as u64, 1 << 32, 1 << 40, 1 << 62, i64::MAX as u64, u64::MAX];
    let (mut ran, mut opened, mut panics) = (0usize, 0usize, 0usize);
    for i in 0..4000 {
        let mut b = seeds[i % 2].clone();
        for _ in 0..1 + rand() % 3 {
            let pos = (rand() as usize) % b.len().max(1);
            match rand() % 6 {
                0 => b[pos] ^= 1 << (rand() % 8),
                1 => b[pos] = rand() as u8,
                2 if pos + 8 <= b.len() => {
                    b[pos..pos + 8].copy_from_slice(&interesting[rand() as usize % interesting.len()].to_le_bytes())
                }
                3 if pos + 4 <= b.len() => b[pos..pos + 4].copy_from_slice(&(rand() as u32 % 16).to_le_bytes()),
                4 => b.truncate(pos),
                _ => {
                    let chunk = b[pos..(pos + 16).min(b.len())].to_vec();
                    b.splice(pos..pos, chunk);
                }
            }
        }
        let path = dir.write(&format!("f{i}.gguf"), &b);
        match std::panic::catch_unwind(|| touch(&path)) {
            Ok(ok) => opened += ok as usize,
            Err(_) => panics += 1,
        }
        let _ = std::fs::remove_file(&path);
        ran += 1;
    }
    println!("fuzz: {ran} mutated inputs ran, {opened} opened as valid stores, {panics} panics");
    assert_eq!(panics, 0);
}

/// A gemma4 GGUF ranks BPE merges with `tokenizer.ggml.merges`; the tokenizer garnet builds from
/// it must tokenize exactly like HF `tokenizers` on the tokenizer.json it came from.
#[test]
fn gemma4_merges_tokenizer_matches_tokenizer_json() {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let file = garnet::gguf::GgufFile::open(dir.join("tests/data/gemma4_e2b_tiny.gguf")).unwrap();
    let gguf_tok = garnet::gguf::tokenizer(&file).unwrap().expect("the file has a vocabulary");
    let hf =
        garnet::tokenizer::Tokenizer::from_file(&dir.join("../testdata/gemma4-tiny/edge_e2b_like/f32/tokenizer.json"))
            .unwrap();
    let texts = [
        "The quick brown fox jumps over the lazy dog.",
        "and then the thing in the string, the end\n\nnothing   spaced  out",
        "Ünïcödé → byte fallback: 日本語, emoji 🦀",
        "<|turn>user\nhello<turn|>\n<|turn>model\n",
        "",
    ];
    let mut tokens = 0;
    for t in texts {
        let (a, b) = (gguf_tok.encode(t, true).unwrap(), hf.encode(t, true).unwrap());
        assert_eq!(a, b, "{t:?}");
        tokens += a.len();
    }
    eprintln!("gemma4 merges tokenizer: {} texts, {tokens} tokens identical to tokenizer.json", texts.len());
}

#[test]
fn token_ids_above_u32_are_refused_and_keys_escaped() {
    let dir = TempDir::new("gguf-hardening");
    for key in ["tokenizer.ggml.eos_token_id", "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eot_token_id"] {
        let b = gemma4_tiny(&[1.0, 1e30, 1e30, 1e30]).kv(key, 10, &(1u64 << 33).to_le_bytes());
        let e = model_config(&open_bytes(&dir, "ids.gguf", &b.build()).unwrap()).unwrap_err().to_string();
        assert!(e.contains(key) && e.contains("token id"), "{key}: {e}");
    }
    // A key with escape sequences, of an unknown type: the error names it, escaped.
    let evil = Builder::new("gemma4").kv("evil\u{1b}]0;x\u{7}\nkey", 99, &[]);
    let e = open_bytes(&dir, "evil.gguf", &evil.build()).err().unwrap().to_string();
    assert!(e.contains("evil\\u{1b}]0;x\\u{7}\\nkey"), "{e}");
    assert!(!e.chars().any(char::is_control), "{e:?}");
    // A directory named like a GGUF file.
    std::fs::create_dir(dir.0.join("d.gguf")).unwrap();
    let e = GgufFile::open(dir.0.join("d.gguf")).err().unwrap().to_string();
    assert!(e.contains("d.gguf: is a directory"), "{e}");
}
