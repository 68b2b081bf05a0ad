//! Loading is O(header): a checkpoint with the real Gemma 4 E2B shapes (35 layers, vocab 262144,
//! PLE, KV sharing; ~9 GB of bf16) written as a sparse file loads without reading or copying the
//! weights: resident memory grows by a few MB, not by the file size. The tensor list is derived
//! here independently of the loader, from the variant's shapes (docs/GEMMA4.md), and the parameter count is
//! checked against the published 4.6 B (text decoder).

use garnet::api::{Engine, LoadOptions, SessionOptions};
use std::io::Write;

const H: usize = 1536;
const L: usize = 35;
const V: usize = 262_144;
const P: usize = 256;
const SHARED: usize = 20;

fn e2b_config() -> String {
    let types: Vec<String> =
        (0..L).map(|i| if i % 5 == 4 { "\"full_attention\"".into() } else { "\"sliding_attention\"".into() }).collect();
    format!(
        r#"{{"model_type": "gemma4_text", "hidden_size": {H}, "num_hidden_layers": {L}, "num_attention_heads": 8,
        "num_key_value_heads": 1, "head_dim": 256, "global_head_dim": 512, "intermediate_size": 6144,
        "vocab_size": {V}, "vocab_size_per_layer_input": {V}, "hidden_size_per_layer_input": {P},
        "sliding_window": 512, "num_kv_shared_layers": {SHARED}, "use_double_wide_mlp": true,
        "attention_k_eq_v": false, "final_logit_softcapping": 30.0, "max_position_embeddings": 131072,
        "layer_types": [{}]}}"#,
        types.join(",")
    )
}

/// (name, shape) of every E2B tensor, from the E2B shapes in docs/GEMMA4.md.
fn e2b_tensors() -> Vec<(String, Vec<usize>)> {
    let mut t: Vec<(String, Vec<usize>)> = vec![
        ("model.embed_tokens.weight".into(), vec![V, H]),
        ("model.norm.weight".into(), vec![H]),
        ("model.embed_tokens_per_layer.weight".into(), vec![V, L * P]),
        ("model.per_layer_model_projection.weight".into(), vec![L * P, H]),
        ("model.per_layer_projection_norm.weight".into(), vec![P]),
    ];
    for i in 0..L {
        let full = i % 5 == 4;
        let hd = if full { 512 } else { 256 };
        let shared = i >= L - SHARED;
        let inter = if shared { 2 * 6144 } else { 6144 };
        let mut add = |n: &str, s: Vec<usize>| t.push((format!("model.layers.{i}.{n}"), s));
        for n in
            ["input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm", "post_feedforward_layernorm"]
        {
            add(&format!("{n}.weight"), vec![H]);
        }
        add("layer_scalar", vec![1]);
        add("self_attn.q_proj.weight", vec![8 * hd, H]);
        add("self_attn.q_norm.weight", vec![hd]);
        add("self_attn.o_proj.weight", vec![H, 8 * hd]);
        if !shared {
            add("self_attn.k_proj.weight", vec![hd, H]);
            add("self_attn.v_proj.weight", vec![hd, H]);
            add("self_attn.k_norm.weight", vec![hd]);
        }
        add("mlp.gate_proj.weight", vec![inter, H]);
        add("mlp.up_proj.weight", vec![inter, H]);
        add("mlp.down_proj.weight", vec![H, inter]);
        add("per_layer_input_gate.weight", vec![P, H]);
        add("per_layer_projection.weight", vec![H, P]);
        add("post_per_layer_input_norm.weight", vec![H]);
    }
    t
}

/// Writes the header and extends the file to its full length without writing the data (sparse).
fn write_sparse_checkpoint(dir: &std::path::Path) -> u64 {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("config.json"), e2b_config()).unwrap();
    let mut offset = 0usize;
    let mut entries = Vec::new();
    for (name, shape) in e2b_tensors() {
        let bytes = shape.iter().product::<usize>() * 2;
        entries.push(format!(
            r#""{name}":{{"dtype":"BF16","shape":{shape:?},"data_offsets":[{offset},{}]}}"#,
            offset + bytes
        ));
        offset += bytes;
    }
    let mut header = format!("{{{}}}", entries.join(","));
    while header.len() % 8 != 0 {
        header.push(' ');
    }
    let mut f = std::fs::File::create(dir.join("model.safetensors")).unwrap();
    f.write_all(&(header.len() as u64).to_le_bytes()).unwrap();
    f.write_all(header.as_bytes()).unwrap();
    let total = (8 + header.len() + offset) as u64;
    f.set_len(total).unwrap();
    total
}

/// Resident set size of this process in bytes (Linux).
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    statm.split_whitespace().nth(1).and_then(|p| p.parse::<u64>().ok()).unwrap_or(0) * 4096
}

#[test]
fn real_e2b_shapes_load_in_place() {
    let dir = std::env::temp_dir().join(format!("garnet-e2b-sparse-{}", std::process::id()));
    let file_bytes = write_sparse_checkpoint(&dir);
    let before = rss();
    let engine = Engine::load(&dir, LoadOptions::default()).unwrap();
    let grown = rss().saturating_sub(before);
    let c = engine.config();
    assert_eq!(c.variant(), "E2B");
    assert_eq!(c.layers.iter().filter(|l| l.kv_source.is_some()).count(), SHARED);
    // The published figure: E2B has 4.6 B text parameters (the decoder with its PLE table).
    let params = engine.info().params as f64 / 1e9;
    assert!((params - 4.6).abs() < 0.05, "{params} B parameters");
    eprintln!(
        "E2B shapes: {:.2} GB file, {params:.3} B params, RSS grew {:.1} MB while loading",
        file_bytes as f64 / 1e9,
        grown as f64 / 1e6
    );
    #[cfg(target_os = "linux")]
    assert!(grown < 64 << 20, "loading made {grown} bytes resident for a {file_bytes}-byte file");
    // A session's cache is allocated up front: sliding rings of 512 plus the full layers' context.
    let s = engine.session(SessionOptions { context: 1024, prefill_chunk: 16 }).unwrap();
    assert_eq!(s.position(), 0);
    drop(engine);
    let _ = std::fs::remove_dir_all(&dir);
}
