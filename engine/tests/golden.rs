//! Golden tests: every tiny Gemma 4 variant against HF transformers 5.23.0's logits
//! (testdata/gemma4-tiny, computed in f32 from the same weights). Tolerance 2e-3 absolute on
//! logits of magnitude ~25; greedy ids must be identical.
//!
//! Checked per variant and layout: the prefill (one forward over the prompt), 20 greedy steps
//! through the KV cache, the teacher-forced forward over prompt + generation, the same forward in
//! small chunks (sliding-window rings wrap inside a chunk and across chunks), and token-by-token.
//! The checks run on both CPU backends: the fast one (`cpu`, f32 activations in reference
//! precision) and the scalar reference (`cpu-ref`). The native mode (8-bit / bf16 activations in
//! the matmuls) is not compared here: these random tiny models are chaotic (rounding only the
//! embedding scale to bf16 already moves their logits by 0.3 to 12), so its accuracy is measured
//! on the real Gemma 3 checkpoint instead (perplexity, tools/tests/gemma3.rs).

use garnet::api::{BackendKind, Engine, LoadOptions, OpSet, Precision, SessionOptions};
use garnet_kernels::cpu::Isa;
use garnet_kernels::fallback::MemoryOnly;
use safetensors::SafeTensors;
use std::path::PathBuf;

const TOL: f32 = 2e-3;
const VARIANTS: [&str; 4] = ["dense_31b_like", "moe_26b_a4b_like", "edge_e2b_like", "edge_e4b_like"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata/gemma4-tiny")
}

struct Golden {
    prompt: Vec<u32>,
    gen: Vec<u32>,
    full: Vec<u32>,
    prefill: Vec<f32>,
    steps: Vec<f32>,
    full_logits: Vec<f32>,
}

fn golden(variant: &str, file: &str) -> Golden {
    let bytes = std::fs::read(root().join(variant).join(file)).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let f32s = |name: &str| -> Vec<f32> {
        st.tensor(name).unwrap().data().chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect()
    };
    let ids = |name: &str| -> Vec<u32> {
        st.tensor(name)
            .unwrap()
            .data()
            .chunks_exact(8)
            .map(|b| i64::from_le_bytes(b.try_into().unwrap()) as u32)
            .collect()
    };
    Golden {
        prompt: ids("prompt_ids"),
        gen: ids("gen_ids"),
        full: ids("full_ids"),
        prefill: f32s("prefill_logits"),
        steps: f32s("step_logits"),
        full_logits: f32s("full_logits"),
    }
}

/// The backends every golden runs on: both CPU backends, the CUDA kernels in the emulator, the
/// WGSL one when this machine has a wgpu adapter (Mesa's lavapipe in CI) and CUDA when it has an
/// NVIDIA GPU; without them it says so.
fn backends() -> Vec<BackendKind> {
    let mut all = vec![BackendKind::Cpu, BackendKind::CpuRef, BackendKind::CudaEmulated];
    #[cfg(feature = "wgpu")]
    if garnet_kernels::wgpu::adapters().is_empty() {
        eprintln!("skipped on wgpu: no wgpu adapter (apt install mesa-vulkan-drivers)");
    } else {
        all.push(BackendKind::Wgpu);
    }
    match garnet_kernels::cuda::probe() {
        Ok(()) => all.push(BackendKind::Cuda),
        Err(e) => eprintln!("skipped on cuda: no CUDA device ({e})"),
    }
    all
}

fn load(variant: &str, layout: &str, backend: impl Into<On>) -> Engine {
    load_path(&root().join(variant).join(layout), backend)
}

/// Where a golden runs: a backend as it is, one with every op forced through the host fallback
/// (`--host-fallback all`), the fast CPU backend at a lower instruction-set level (`--cpu-isa`),
/// or the backend that implements only memory.
#[derive(Clone, Copy, Debug)]
enum On {
    Backend(BackendKind),
    CpuAt(Isa),
    HostFallback(BackendKind),
    MemoryOnly,
}

impl From<BackendKind> for On {
    fn from(b: BackendKind) -> On {
        On::Backend(b)
    }
}

fn load_path(path: &std::path::Path, on: impl Into<On>) -> Engine {
    let opts = LoadOptions { precision: Precision::Reference, ..Default::default() };
    match on.into() {
        On::Backend(backend) => Engine::load(path, LoadOptions { backend, ..opts }).unwrap(),
        On::HostFallback(backend) => {
            Engine::load(path, LoadOptions { backend, host_fallback: OpSet::all(), ..opts }).unwrap()
        }
        On::CpuAt(isa) => {
            Engine::load(path, LoadOptions { backend: BackendKind::Cpu, cpu_isa: Some(isa), ..opts }).unwrap()
        }
        On::MemoryOnly => Engine::load_on(path, opts, MemoryOnly).unwrap(),
    }
}

fn max_err(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

fn argmax(x: &[f32]) -> u32 {
    garnet::sampling::argmax(x)
}

/// Checks one variant in one weight layout against one golden file; returns the worst errors
/// (prefill, steps, full, chunked) for the report.
fn check(variant: &str, layout: &str, golden_file: &str, backend: impl Into<On>) -> [f32; 4] {
    let backend = backend.into();
    let g = golden(variant, golden_file);
    let engine = load(variant, layout, backend);
    let v = engine.config().vocab_size;
    let opts = SessionOptions { context: 64, prefill_chunk: 64 };

    let mut s = engine.session(opts).unwrap();
    let prefill = s.prefill_all(&g.prompt).unwrap();
    let e_prefill = max_err(&prefill, &g.prefill);

    let mut row = prefill[prefill.len() - v..].to_vec();
    let mut e_steps = 0f32;
    for (i, &want) in g.gen.iter().enumerate() {
        e_steps = e_steps.max(max_err(&row, &g.steps[i * v..(i + 1) * v]));
        assert_eq!(argmax(&row), want, "{variant}/{layout}: greedy step {i}");
        if i + 1 < g.gen.len() {
            row = s.step(want).unwrap();
        }
    }

    let mut s = engine.session(opts).unwrap();
    let e_full = max_err(&s.prefill_all(&g.full).unwrap(), &g.full_logits);

    // Chunks of 5 (< window 8) and 13 (> window): rings wrap within and across chunks. Also only
    // the rows from 27 on (the LM head skips earlier chunks and rows).
    let mut e_chunked = 0f32;
    for chunk in [5, 13] {
        let mut s = engine.session(SessionOptions { context: 64, prefill_chunk: chunk }).unwrap();
        e_chunked = e_chunked.max(max_err(&s.prefill_all(&g.full).unwrap(), &g.full_logits));
        let mut s = engine.session(SessionOptions { context: 64, prefill_chunk: chunk }).unwrap();
        e_chunked = e_chunked.max(max_err(&s.prefill_from(&g.full, 27).unwrap(), &g.full_logits[27 * v..]));
    }
    let errs = [e_prefill, e_steps, e_full, e_chunked];
    eprintln!(
        "{backend:?} {variant:18} {layout:8} prefill {e_prefill:.2e} steps {e_steps:.2e} full {e_full:.2e} chunked {e_chunked:.2e}"
    );
    for (what, e) in ["prefill", "steps", "full", "chunked"].iter().zip(errs) {
        assert!(e < TOL, "{variant}/{layout}: {what} max abs error {e} >= {TOL}");
    }
    errs
}

#[test]
fn bf16_weights_text_only_layout() {
    for v in VARIANTS {
        for b in backends() {
            check(v, "bf16", "golden_bf16w_f32.safetensors", b);
        }
    }
}

/// The host fallback runs the whole model: every op forced through it on wgpu (when there is an
/// adapter) and in the CUDA emulator, and the backend that implements only memory. Each must
/// pass the goldens, and on a device backend every op call must have been counted.
#[test]
fn host_fallback_passes_goldens() {
    #[cfg_attr(not(feature = "wgpu"), allow(unused_mut))]
    let mut on = vec![On::MemoryOnly, On::HostFallback(BackendKind::CudaEmulated)];
    #[cfg(feature = "wgpu")]
    if !garnet_kernels::wgpu::adapters().is_empty() {
        on.push(On::HostFallback(BackendKind::Wgpu));
    }
    for v in VARIANTS {
        for &b in &on {
            check(v, "f32", "golden_f32.safetensors", b);
            check(v, "bf16", "golden_bf16w_f32.safetensors", b);
        }
    }
    let engine = load("edge_e2b_like", "f32", On::HostFallback(BackendKind::CudaEmulated));
    engine.session(SessionOptions { context: 8, prefill_chunk: 8 }).unwrap().prefill_all(&[2, 17, 93]).unwrap();
    let counted: Vec<_> = engine.fallback_calls().into_iter().map(|(op, _)| op).collect();
    for op in [garnet_kernels::Op::Embed, garnet_kernels::Op::Matmul, garnet_kernels::Op::Attention] {
        assert!(counted.contains(&op), "{op} not counted: {counted:?}");
    }
}

/// Every CPU level below this machine's best (which the tests above run) passes the goldens, so
/// an AVX-512 machine keeps the AVX2 and portable kernels tested on the whole model too.
#[test]
fn every_lower_cpu_level_passes_goldens() {
    let lower: Vec<Isa> = Isa::supported().into_iter().filter(|&i| i < Isa::detect()).collect();
    for &isa in &lower {
        for v in VARIANTS {
            check(v, "f32", "golden_f32.safetensors", On::CpuAt(isa));
            check(v, "bf16", "golden_bf16w_f32.safetensors", On::CpuAt(isa));
        }
    }
    eprintln!("lower CPU levels checked: {lower:?}");
}

#[test]
fn bf16_weights_released_layout() {
    for v in VARIANTS {
        for b in backends() {
            check(v, "bf16_cg", "golden_bf16w_f32.safetensors", b);
        }
    }
}

#[test]
fn f32_weights() {
    for v in VARIANTS {
        for b in backends() {
            check(v, "f32", "golden_f32.safetensors", b);
        }
    }
}

/// The same tiny models written as GGUF with llama.cpp's gemma4 names and metadata
/// (tools/scripts/make_gguf_fixtures.py): the GGUF path (metadata -> config, names -> tensors)
/// must reproduce HF's logits too.
#[test]
fn gguf_gemma4_files_match_goldens() {
    for (file, variant) in [("gemma4_moe_tiny.gguf", "moe_26b_a4b_like"), ("gemma4_e2b_tiny.gguf", "edge_e2b_like")] {
        let g = golden(variant, "golden_f32.safetensors");
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(file);
        for b in backends() {
            let engine = load_path(&path, b);
            let mut s = engine.session(SessionOptions { context: 64, prefill_chunk: 64 }).unwrap();
            let e = max_err(&s.prefill_all(&g.full).unwrap(), &g.full_logits);
            eprintln!("{b:?} {file}: full-forward max abs error {e:.2e}");
            assert!(e < TOL, "{file}: {e}");
        }
    }
}

/// Experts stored as separate gate and up tensors (`[E, I, H]` each, like GGUF's
/// ffn_gate_exps/ffn_up_exps) instead of the fused `gate_up_proj`: same logits.
#[test]
fn split_expert_tensors_match_goldens() {
    let src = root().join("moe_26b_a4b_like/f32");
    let dir = std::env::temp_dir().join(format!("garnet-split-experts-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(src.join("config.json"), dir.join("config.json")).unwrap();
    let bytes = std::fs::read(src.join("model.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = vec![];
    for (name, t) in st.tensors() {
        let Some(prefix) = name.strip_suffix("gate_up_proj") else {
            tensors.push((name, t.shape().to_vec(), t.data().to_vec()));
            continue;
        };
        let (e, two_i, h) = (t.shape()[0], t.shape()[1], t.shape()[2]);
        let half = two_i / 2 * h * 4;
        let per_expert = t.data().chunks_exact(2 * half);
        let gate: Vec<u8> = per_expert.clone().flat_map(|c| c[..half].to_vec()).collect();
        let up: Vec<u8> = per_expert.flat_map(|c| c[half..].to_vec()).collect();
        tensors.push((format!("{prefix}gate_proj"), vec![e, two_i / 2, h], gate));
        tensors.push((format!("{prefix}up_proj"), vec![e, two_i / 2, h], up));
    }
    let views: Vec<(String, safetensors::tensor::TensorView)> = tensors
        .iter()
        .map(|(n, s, d)| {
            (n.clone(), safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), d).unwrap())
        })
        .collect();
    safetensors::serialize_to_file(views, None, &dir.join("model.safetensors")).unwrap();

    let g = golden("moe_26b_a4b_like", "golden_f32.safetensors");
    for b in backends() {
        let engine = load_path(&dir, b);
        let mut s = engine.session(SessionOptions { context: 64, prefill_chunk: 64 }).unwrap();
        let e = max_err(&s.prefill_all(&g.full).unwrap(), &g.full_logits);
        assert!(e < TOL, "{b:?} split experts: {e}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn token_by_token_decode_matches_full_forward() {
    for v in VARIANTS {
        let g = golden(v, "golden_bf16w_f32.safetensors");
        let engine = load(v, "bf16", BackendKind::Cpu);
        let n = engine.config().vocab_size;
        let mut s = engine.session(SessionOptions { context: 64, prefill_chunk: 1 }).unwrap();
        for (i, &id) in g.full.iter().enumerate() {
            let row = s.step(id).unwrap();
            let e = max_err(&row, &g.full_logits[i * n..(i + 1) * n]);
            assert!(e < TOL, "{v}: position {i} error {e}");
        }
    }
}

#[test]
fn sessions_share_one_engine_across_threads() {
    let engine = std::sync::Arc::new(load("edge_e2b_like", "bf16", BackendKind::Cpu));
    let g = golden("edge_e2b_like", "golden_bf16w_f32.safetensors");
    let v = engine.config().vocab_size;
    let want = g.prefill[g.prefill.len() - v..].to_vec();
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let (engine, prompt, want) = (engine.clone(), g.prompt.clone(), want.clone());
            std::thread::spawn(move || {
                let mut s = engine.session(SessionOptions { context: 64, prefill_chunk: 16 }).unwrap();
                assert!(max_err(&s.prefill(&prompt).unwrap(), &want) < TOL);
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

/// The tensor-core GEMMs in a whole model: native precision on the CUDA kernels (emulated: the
/// prefill matmuls round activations to bf16) against the fast CPU backend's native mode (bf16
/// activations in its prefill GEMMs too, on CPUs with bf16 dot products). Both round the
/// embedding scales to bf16, so neither matches the f32 goldens; they must agree with each other
/// within what two independent bf16 roundings through every layer allow (logits reach about 28).
/// On the MoE model a near-tie in routing can pick another expert for a token, which moves that
/// row's logits by whole units: there the greedy choices must agree instead. The
/// reference-precision runs above take the exact GEMM.
#[test]
fn native_tensor_cores_agree_with_native_cpu() {
    let opts = |backend| LoadOptions { precision: Precision::Native, backend, ..Default::default() };
    for v in VARIANTS {
        let g = golden(v, "golden_bf16w_f32.safetensors");
        let logits: Vec<Vec<f32>> = [BackendKind::Cpu, BackendKind::CudaEmulated]
            .into_iter()
            .map(|b| {
                let engine = Engine::load(root().join(v).join("bf16"), opts(b)).unwrap();
                let mut s = engine.session(SessionOptions { context: 64, prefill_chunk: 64 }).unwrap();
                s.prefill_all(&g.full).unwrap()
            })
            .collect();
        let e = max_err(&logits[1], &logits[0]);
        let rows = g.full.len();
        let vocab = logits[0].len() / rows;
        let agree =
            logits[0].chunks(vocab).zip(logits[1].chunks(vocab)).filter(|(a, b)| argmax(a) == argmax(b)).count();
        eprintln!("native {v:18} {rows} rows: max |cuda-emulated - cpu| = {e:.2e}, same greedy token on {agree}");
        if v.starts_with("moe") {
            assert!(agree * 10 >= rows * 9, "{v}: greedy tokens agree on {agree} of {rows} rows");
        } else {
            assert!(e < NATIVE_TOL, "{v}: cuda-emulated vs cpu, native: {e} >= {NATIVE_TOL}");
        }
    }
}

/// Max abs logit difference allowed between two backends with bf16 activations in prefill.
const NATIVE_TOL: f32 = 0.5;
