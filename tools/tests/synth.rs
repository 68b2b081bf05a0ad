//! `garnet synth` end to end: the full-size tensor tables have the published parameter counts; each
//! architecture cut to a few layers (real widths, a small vocabulary to keep the test fast) is
//! written as BF16 safetensors and as a Q4_0 GGUF, has exactly the tensors the variant's shapes give (docs/GEMMA4.md; derived
//! here independently), loads through the public API and gives finite logits, the same model in
//! both files (same seed: the Q4_0 logits follow the BF16 ones); `--dtype q4_k_m` picks the
//! types llama.cpp's quantizer picks.

#[path = "../../engine/tests/common/mod.rs"]
mod common;

use common::TempDir;
use garnet::api::{Engine, LoadOptions, SessionOptions};
use garnet::gguf::GgufFile;
use garnet::store::TensorStore;
use garnet_kernels::DType;
use std::collections::BTreeMap;
use std::process::{Command, Output};

/// HF name prefix of the released checkpoints.
const PREFIX: &str = "model.language_model.";

fn garnet(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_garnet")).args(args).output().expect("garnet runs")
}

/// docs/GEMMA4.md's table, the fields the tensor list depends on.
struct Facts {
    arch: &'static str,
    hidden: usize,
    inter: usize,
    layers: usize,
    heads: usize,
    kv: (usize, usize),
    period: usize,
    k_eq_v: bool,
    shared: usize,
    ple: usize,
    moe: Option<(usize, usize)>,
    billions: f64,
}

const FACTS: [Facts; 4] = [
    Facts {
        arch: "e2b",
        hidden: 1536,
        inter: 6144,
        layers: 35,
        heads: 8,
        kv: (1, 1),
        period: 5,
        k_eq_v: false,
        shared: 20,
        ple: 256,
        moe: None,
        billions: 4.6,
    },
    Facts {
        arch: "e4b",
        hidden: 2560,
        inter: 10240,
        layers: 42,
        heads: 8,
        kv: (2, 2),
        period: 6,
        k_eq_v: false,
        shared: 18,
        ple: 256,
        moe: None,
        billions: 7.5,
    },
    Facts {
        arch: "26b-a4b",
        hidden: 2816,
        inter: 2112,
        layers: 30,
        heads: 16,
        kv: (8, 2),
        period: 6,
        k_eq_v: true,
        shared: 0,
        ple: 0,
        moe: Some((128, 704)),
        billions: 25.2,
    },
    Facts {
        arch: "31b",
        hidden: 5376,
        inter: 21504,
        layers: 60,
        heads: 32,
        kv: (16, 4),
        period: 6,
        k_eq_v: true,
        shared: 0,
        ple: 0,
        moe: None,
        billions: 30.7,
    },
];

/// HF name (after `model.language_model.`) -> shape of every tensor of `f` cut to `n` layers, of
/// which the last `shared` are KV-shared, with a `v`-token vocabulary.
fn expected(f: &Facts, n: usize, shared: usize, v: usize) -> BTreeMap<String, Vec<usize>> {
    let (h, p) = (f.hidden, f.ple);
    let mut t = BTreeMap::from([("embed_tokens.weight".to_string(), vec![v, h]), ("norm.weight".into(), vec![h])]);
    if p > 0 {
        t.insert("embed_tokens_per_layer.weight".into(), vec![v, n * p]);
        t.insert("per_layer_model_projection.weight".into(), vec![n * p, h]);
        t.insert("per_layer_projection_norm.weight".into(), vec![p]);
    }
    for i in 0..n {
        let full = (i + 1) % f.period == 0 || i == n - 1;
        let is_shared = i >= n - shared;
        let (hd, kv) = if full { (512, f.kv.1) } else { (256, f.kv.0) };
        let inter = if f.arch == "e2b" && is_shared { 2 * f.inter } else { f.inter };
        let mut add = |name: &str, shape: Vec<usize>| t.insert(format!("layers.{i}.{name}"), shape);
        for norm in
            ["input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm", "post_feedforward_layernorm"]
        {
            add(&format!("{norm}.weight"), vec![h]);
        }
        add("layer_scalar", vec![1]);
        add("self_attn.q_proj.weight", vec![f.heads * hd, h]);
        add("self_attn.q_norm.weight", vec![hd]);
        add("self_attn.o_proj.weight", vec![h, f.heads * hd]);
        if !is_shared {
            add("self_attn.k_proj.weight", vec![kv * hd, h]);
            add("self_attn.k_norm.weight", vec![hd]);
            if !(full && f.k_eq_v) {
                add("self_attn.v_proj.weight", vec![kv * hd, h]);
            }
        }
        add("mlp.gate_proj.weight", vec![inter, h]);
        add("mlp.up_proj.weight", vec![inter, h]);
        add("mlp.down_proj.weight", vec![h, inter]);
        if let Some((e, w)) = f.moe {
            add("router.proj.weight", vec![e, h]);
            add("router.scale", vec![h]);
            add("router.per_expert_scale", vec![e]);
            add("experts.gate_up_proj", vec![e, 2 * w, h]);
            add("experts.down_proj", vec![e, h, w]);
            for norm in ["pre_feedforward_layernorm_2", "post_feedforward_layernorm_1", "post_feedforward_layernorm_2"]
            {
                add(&format!("{norm}.weight"), vec![h]);
            }
        }
        if p > 0 {
            add("per_layer_input_gate.weight", vec![p, h]);
            add("per_layer_projection.weight", vec![h, p]);
            add("post_per_layer_input_norm.weight", vec![h]);
        }
    }
    t
}

#[test]
fn full_size_tables_have_the_published_parameter_counts() {
    for f in &FACTS {
        let o = garnet(&["synth", "--arch", f.arch, "--list"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let out = String::from_utf8_lossy(&o.stdout);
        let got: BTreeMap<String, Vec<usize>> = out
            .lines()
            .filter_map(|l| {
                let mut cols = l.split('\t');
                let name = cols.next()?.trim_start_matches(PREFIX).to_string();
                let shape = cols.nth(1)?.trim_matches(['[', ']']).split(", ").map(|d| d.parse().unwrap()).collect();
                Some((name, shape))
            })
            .collect();
        assert_eq!(got, expected(f, f.layers, f.shared, 262_144), "{}", f.arch);
        let total = out.lines().last().unwrap();
        let params: f64 = total.split(" tensors, ").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
        let rel = (params / 1e9 - f.billions).abs() / f.billions;
        assert!(rel < 0.01, "{}: {params} parameters, the published count is {} B", f.arch, f.billions);
    }
}

/// Logits of prompt [2, 17, 300] then one step of 5 (checked finite).
fn run(path: &std::path::Path, vocab: usize) -> Vec<f32> {
    let engine = Engine::load(path, LoadOptions::default()).unwrap();
    assert_eq!(engine.config().vocab_size, vocab);
    let mut session = engine.session(SessionOptions { context: 8, ..Default::default() }).unwrap();
    let mut logits = session.prefill(&[2, 17, 300]).unwrap();
    logits.extend(session.step(5).unwrap());
    assert_eq!(logits.len(), 2 * vocab);
    assert!(logits.iter().all(|x| x.is_finite()), "{}", path.display());
    logits
}

fn correlation(a: &[f32], b: &[f32]) -> f64 {
    let mean = |x: &[f32]| x.iter().map(|&v| v as f64).sum::<f64>() / x.len() as f64;
    let (ma, mb) = (mean(a), mean(b));
    let (mut ab, mut aa, mut bb) = (0.0, 0.0, 0.0);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (x as f64 - ma, y as f64 - mb);
        (ab, aa, bb) = (ab + x * y, aa + x * x, bb + y * y);
    }
    ab / (aa * bb).sqrt()
}

/// Synthesizes `f` cut to `layers` at BF16 and Q4_0 and checks both files.
fn synth_and_run(f: &Facts, layers: usize, shared: usize) {
    const VOCAB: usize = 512;
    let dir = TempDir::new(&format!("synth-{}", f.arch));
    let (bf16, q4) = (dir.0.join("bf16"), dir.0.join("q4_0"));
    for (dtype, out) in [("bf16", &bf16), ("q4_0", &q4)] {
        let (n, v) = (layers.to_string(), VOCAB.to_string());
        let args = ["synth", "--arch", f.arch, "--layers", &n, "--vocab", &v, "--dtype", dtype, "--seed", "3"];
        let o = garnet(&[&args[..], &["--out", out.to_str().unwrap()]].concat());
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let want = expected(f, layers, shared, VOCAB);
    let store = TensorStore::open(&bf16).unwrap();
    let got: BTreeMap<String, Vec<usize>> = store
        .names()
        .iter()
        .map(|n| (n.trim_start_matches(PREFIX).to_string(), store.shape(n).unwrap().to_vec()))
        .collect();
    assert_eq!(got, want, "{}", f.arch);
    assert!(store.names().iter().all(|n| store.dtype_name(n) == Some("BF16")));

    let gguf_path = q4.join("model.gguf");
    let gguf = GgufFile::open(&gguf_path).unwrap();
    assert_eq!(gguf.tensor_names().len(), want.len() + 1, "{}: + rope_freqs", f.arch);
    for name in gguf.tensor_names() {
        let hf = garnet::gguf::hf_name("gemma4", name).unwrap();
        let info = gguf.tensor_info(name).unwrap();
        if let Some(shape) = want.get(hf.trim_start_matches("model.")) {
            assert_eq!(&info.shape(), shape, "{name}");
            let matrix = shape.len() > 1 && !name.contains("ffn_gate_inp");
            assert_eq!(info.dtype(), Some(if matrix { DType::Q4_0 } else { DType::F32 }), "{name}");
        } else {
            assert_eq!(name, "rope_freqs.weight");
        }
    }
    let (a, b) = (run(&bf16, VOCAB), run(&gguf_path, VOCAB));
    let r = correlation(&a, &b);
    assert!(r > 0.9, "{}: BF16 and Q4_0 logits correlate {r}", f.arch);
}

#[test]
fn e2b_cut_to_6_layers_keeps_kv_sharing() {
    synth_and_run(&FACTS[0], 6, 1);
}

#[test]
fn e4b_cut_to_3_layers() {
    synth_and_run(&FACTS[1], 3, 0);
}

#[test]
fn moe_26b_a4b_cut_to_2_layers() {
    synth_and_run(&FACTS[2], 2, 0);
}

#[test]
fn dense_31b_cut_to_2_layers() {
    synth_and_run(&FACTS[3], 2, 0);
}

#[test]
fn bad_arguments_are_one_line_errors() {
    let dir = TempDir::new("synth-bad");
    let out = dir.0.to_str().unwrap();
    for args in [
        vec!["synth", "--arch", "e2b", "--layers", "36", "--out", out],
        vec!["synth", "--arch", "31b", "--layers", "0", "--out", out],
        vec!["synth", "--arch", "e2b", "--vocab", "2", "--out", out],
        vec!["synth", "--arch", "e2b", "--layers", "1", "--out", "/proc/garnet-synth"],
    ] {
        let o = garnet(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{args:?} succeeded");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("garnet: error: "), "{args:?}: {err}");
    }
}

/// Text with spaces, newlines, digits, byte fallback and a control token.
const SAMPLE: &str = "The capital of France is Paris.\n  Numbers: 1234, émoji 🦀 <start_of_turn>user";

/// `--vocab-from` the real Gemma 3 GGUF and Gemma's tokenizer.json: the synthesized GGUF carries a
/// tokenizer that encodes exactly as the source does (skipped without the files).
#[test]
fn vocab_from_gguf_and_tokenizer_json() {
    let sources = [("GARNET_GEMMA3_GGUF", "gguf"), ("GARNET_GEMMA_TOKENIZER_JSON", "json")];
    for (var, tag) in sources {
        let Some(src) = std::env::var_os(var) else {
            eprintln!("skipped: {var} is not set (scripts/test.sh sets it)");
            continue;
        };
        let src = std::path::PathBuf::from(src);
        let expected = if tag == "gguf" {
            let e = Engine::load(&src, LoadOptions::default()).unwrap();
            e.tokenizer().unwrap().encode(SAMPLE, true).unwrap()
        } else {
            garnet::tokenizer::Tokenizer::from_file(&src).unwrap().encode(SAMPLE, true).unwrap()
        };
        let dir = TempDir::new(&format!("synth-vocab-{tag}"));
        let out = dir.0.to_str().unwrap();
        let o = garnet(
            &["synth", "--arch", "e2b", "--layers", "1", "--dtype", "q4_0", "--vocab-from"]
                .into_iter()
                .chain([src.to_str().unwrap(), "--out", out])
                .collect::<Vec<_>>(),
        );
        assert!(o.status.success(), "{tag}: {}", String::from_utf8_lossy(&o.stderr));
        let path = dir.0.join("model.gguf");
        let file = GgufFile::open(&path).unwrap();
        let tokens = file.get("tokenizer.ggml.tokens").and_then(|v| v.as_strings()).unwrap().len();
        assert_eq!(tokens, 262_144, "{tag}");
        let engine = Engine::load(&path, LoadOptions::default()).unwrap();
        let ids = engine.tokenizer().expect("the synthesized file has a tokenizer").encode(SAMPLE, true).unwrap();
        assert_eq!(ids, expected, "{tag}");
        assert!(ids.len() > 10, "{ids:?}");
    }
    // A safetensors output has no place for a GGUF vocabulary.
    let dir = TempDir::new("synth-vocab-bf16");
    let o = garnet(&[
        "synth",
        "--arch",
        "e2b",
        "--layers",
        "1",
        "--vocab-from",
        "x.gguf",
        "--out",
        dir.0.to_str().unwrap(),
    ]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("--vocab-from"));
}

/// `--dtype q4_k_m` stores every tensor in the type llama.cpp's `llama-quantize ... Q4_K_M` picks
/// for it: `tests/data/q4_k_m/*.types` are `name<TAB>type` lines taken from llama-quantize's log
/// when it quantized `garnet synth --gguf` BF16 files of the same shapes (see the README there).
#[test]
fn q4_k_m_is_llama_cpps_mix() {
    let cases: [(&[&str], &str); 2] = [
        (&["--arch", "e2b", "--vocab", "1024"], include_str!("data/q4_k_m/e2b.types")),
        (&["--arch", "26b-a4b", "--layers", "2", "--vocab", "1024"], include_str!("data/q4_k_m/26b-a4b-2l.types")),
    ];
    for (args, want) in cases {
        let o = garnet(&[&["synth", "--dtype", "q4_k_m", "--list"], args].concat());
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let got: BTreeMap<String, String> = String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter_map(|l| {
                l.split_once('\t').map(|(name, rest)| (name.into(), rest.split('\t').next().unwrap_or("").into()))
            })
            .collect();
        let want: BTreeMap<String, String> =
            want.lines().filter_map(|l| l.split_once('\t')).map(|(n, t)| (n.into(), t.into())).collect();
        assert!(want.len() > 40, "{args:?}: golden has {} tensors", want.len());
        assert_eq!(got, want, "{args:?}");
    }
}

/// A Q4_K_M file loads and runs, the same model as its BF16 twin (same seed).
#[test]
fn q4_k_m_file_runs() {
    const VOCAB: usize = 512;
    let dir = TempDir::new("synth-q4km");
    let (bf16, q4km) = (dir.0.join("bf16"), dir.0.join("q4_k_m"));
    for (dtype, out) in [("bf16", &bf16), ("q4_k_m", &q4km)] {
        let args = ["synth", "--arch", "e2b", "--layers", "6", "--vocab", "512", "--dtype", dtype, "--seed", "3"];
        let o = garnet(&[&args[..], &["--out", out.to_str().unwrap()]].concat());
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let gguf_path = q4km.join("model.gguf");
    let gguf = GgufFile::open(&gguf_path).unwrap();
    let dtypes: Vec<DType> = gguf.tensor_names().iter().filter_map(|n| gguf.tensor_info(n).unwrap().dtype()).collect();
    assert!(dtypes.contains(&DType::Q6_K) && dtypes.contains(&DType::Q4_K), "{dtypes:?}");
    let r = correlation(&run(&bf16, VOCAB), &run(&gguf_path, VOCAB));
    assert!(r > 0.9, "BF16 and Q4_K_M logits correlate {r}");
}
