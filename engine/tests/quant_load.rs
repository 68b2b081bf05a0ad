//! Load-time quantization. The tiny random models amplify any weight change (engine/tests/golden.rs), so a
//! quantized model is not compared with the goldens; instead: the engine loaded with `quant`
//! must give exactly the logits of an unquantized engine whose f32 checkpoint holds the
//! dequantized values of the matrices quantization touches (and the original values elsewhere).
//! Checked on the reference backend and on the fast one in reference precision (f32 activations:
//! its block and float paths then add the same products in the same order); the native mode's
//! 8-bit activations exist only on the block path, so it has no such identity.

use garnet::api::{BackendKind, Engine, LoadOptions, Precision, SessionOptions};
use garnet_kernels::{quant, DType};
use safetensors::{tensor::TensorView, Dtype, SafeTensors};
use std::path::PathBuf;

fn fixture(variant: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata/gemma4-tiny").join(variant).join("f32")
}

/// The tensors `weights::quantize` turns into blocks: every matrix but the router and PLE table.
fn is_quantized_matrix(name: &str, shape: &[usize]) -> bool {
    let matrix = name.ends_with("_proj.weight")
        || name.ends_with("experts.gate_up_proj")
        || name.ends_with("experts.down_proj")
        || name.ends_with("per_layer_input_gate.weight")
        || name.ends_with("per_layer_model_projection.weight")
        || name == "model.embed_tokens.weight";
    matrix && !name.contains("router") && shape.len() >= 2
}

/// Writes a copy of `variant`'s f32 checkpoint whose quantized matrices hold dequant(quant(w)).
fn dequantized_copy(variant: &str, target: DType) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("garnet-quant-{}-{variant}-{}", std::process::id(), target.name()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(fixture(variant).join("config.json"), dir.join("config.json")).unwrap();
    let bytes = std::fs::read(fixture(variant).join("model.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for (name, t) in st.tensors() {
        let mut data = t.data().to_vec();
        let row = *t.shape().last().unwrap();
        // Rows that are not whole blocks of the target fall back to Q8_0, else stay f32.
        let dtype = [target, DType::Q8_0].into_iter().find(|d| row % d.block().0 == 0);
        if let (true, Some(dtype)) = (is_quantized_matrix(&name, t.shape()), dtype) {
            let values: Vec<f32> = data.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
            let blocks = quant::quantize(dtype, &values).unwrap();
            let mut back = vec![0.0f32; values.len()];
            quant::dequantize(dtype, &blocks, &mut back);
            data = back.iter().flat_map(|v| v.to_le_bytes()).collect();
        }
        tensors.push((name, t.shape().to_vec(), data));
    }
    let views: Vec<(String, TensorView)> =
        tensors.iter().map(|(n, s, d)| (n.clone(), TensorView::new(Dtype::F32, s.clone(), d).unwrap())).collect();
    safetensors::serialize_to_file(views, None, &dir.join("model.safetensors")).unwrap();
    dir
}

fn logits(path: &std::path::Path, quant: Option<DType>, backend: BackendKind) -> (Vec<f32>, u64) {
    let opts = LoadOptions { quant, backend, precision: Precision::Reference, ..Default::default() };
    let engine = Engine::load(path, opts).unwrap();
    let mut s = engine.session(SessionOptions { context: 64, prefill_chunk: 16 }).unwrap();
    let ids: Vec<u32> = (0..24).map(|i| (i * 37 + 2) % 500 + 2).collect();
    (s.prefill_all(&ids).unwrap(), engine.info().weight_bytes)
}

#[test]
fn quantized_engine_equals_dequantized_weights() {
    for variant in ["dense_31b_like", "moe_26b_a4b_like", "edge_e2b_like"] {
        for (target, backend) in [DType::Q8_0, DType::Q4_0, DType::Q4_K]
            .into_iter()
            .flat_map(|t| [(t, BackendKind::CpuRef), (t, BackendKind::Cpu)])
        {
            let (q, q_bytes) = logits(&fixture(variant), Some(target), backend);
            let (reference, f32_bytes) = logits(&dequantized_copy(variant, target), None, backend);
            let worst = q.iter().zip(&reference).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
            assert!(worst == 0.0, "{variant} {} {backend:?}: logits differ by up to {worst}", target.name());
            assert!(q_bytes * 2 < f32_bytes, "{variant} {}: {q_bytes} vs {f32_bytes} bytes", target.name());
        }
    }
}

#[test]
fn quant_to_a_float_type_is_refused() {
    let e = Engine::load(fixture("dense_31b_like"), LoadOptions { quant: Some(DType::BF16), ..Default::default() });
    assert!(matches!(e, Err(garnet::Error::Invalid(_))));
}
