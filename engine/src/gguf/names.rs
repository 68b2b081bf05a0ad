//! GGUF tensor names (llama.cpp / gguf-py `TENSOR_NAMES`) → the HF names garnet's loader asks for.
//!
//! Only the architectures `gemma3` and `gemma4` are mapped (Gemma 3 with the subset gguf-py lists
//! for `MODEL_ARCH.GEMMA3`). The HF names use the text-only prefix `model.`.
//!
//! Two GGUF spellings have no HF tensor of their own and get garnet-specific names:
//! - `rope_freqs.weight` (Gemma 4 proportional-RoPE frequency factors: 1.0 for the rotated pairs,
//!   1e30 for the others) → `model.rope_freqs`; [`super::model_config`] checks it;
//! - split experts `blk.N.ffn_gate_exps.weight` / `ffn_up_exps.weight` (`[E, I, H]` each; HF and
//!   llama.cpp's own converter fuse them into `experts.gate_up_proj` `[E, 2I, H]`) →
//!   `model.layers.N.experts.gate_proj` / `model.layers.N.experts.up_proj`.

/// Non-layer tensors: (GGUF name, HF name, present in Gemma 3 files).
const GLOBAL: &[(&str, &str, bool)] = &[
    ("token_embd.weight", "model.embed_tokens.weight", true),
    ("output_norm.weight", "model.norm.weight", true),
    ("output.weight", "lm_head.weight", true),
    ("rope_freqs.weight", "model.rope_freqs", false),
    ("per_layer_token_embd.weight", "model.embed_tokens_per_layer.weight", false),
    ("per_layer_model_proj.weight", "model.per_layer_model_projection.weight", false),
    ("per_layer_proj_norm.weight", "model.per_layer_projection_norm.weight", false),
];

/// Per-layer tensors `blk.N.<gguf>` → `model.layers.N.<hf>`, and whether Gemma 3 has them.
const LAYER: &[(&str, &str, bool)] = &[
    ("attn_norm.weight", "input_layernorm.weight", true),
    ("attn_q.weight", "self_attn.q_proj.weight", true),
    ("attn_k.weight", "self_attn.k_proj.weight", true),
    ("attn_v.weight", "self_attn.v_proj.weight", true),
    ("attn_output.weight", "self_attn.o_proj.weight", true),
    ("attn_q_norm.weight", "self_attn.q_norm.weight", true),
    ("attn_k_norm.weight", "self_attn.k_norm.weight", true),
    ("post_attention_norm.weight", "post_attention_layernorm.weight", true),
    ("ffn_norm.weight", "pre_feedforward_layernorm.weight", true),
    ("post_ffw_norm.weight", "post_feedforward_layernorm.weight", true),
    ("ffn_gate.weight", "mlp.gate_proj.weight", true),
    ("ffn_up.weight", "mlp.up_proj.weight", true),
    ("ffn_down.weight", "mlp.down_proj.weight", true),
    ("layer_output_scale.weight", "layer_scalar", false),
    ("ffn_gate_inp.weight", "router.proj.weight", false),
    ("ffn_gate_inp.scale", "router.scale", false),
    ("ffn_down_exps.scale", "router.per_expert_scale", false),
    ("pre_ffw_norm_2.weight", "pre_feedforward_layernorm_2.weight", false),
    ("post_ffw_norm_1.weight", "post_feedforward_layernorm_1.weight", false),
    ("post_ffw_norm_2.weight", "post_feedforward_layernorm_2.weight", false),
    ("ffn_gate_up_exps.weight", "experts.gate_up_proj", false),
    ("ffn_gate_exps.weight", "experts.gate_proj", false),
    ("ffn_up_exps.weight", "experts.up_proj", false),
    ("ffn_down_exps.weight", "experts.down_proj", false),
    ("inp_gate.weight", "per_layer_input_gate.weight", false),
    ("proj.weight", "per_layer_projection.weight", false),
    ("post_norm.weight", "post_per_layer_input_norm.weight", false),
];

/// The HF name of GGUF tensor `gguf` in a file of architecture `arch` ("gemma3" or "gemma4"), e.g.
/// `blk.3.attn_q.weight` → `model.layers.3.self_attn.q_proj.weight`. `None` for other
/// architectures and for names outside the mapping (vision tensors, typos, `blk.03...`).
pub fn hf_name(arch: &str, gguf: &str) -> Option<String> {
    let gemma3 = match arch {
        "gemma3" => true,
        "gemma4" => false,
        _ => return None,
    };
    let known = |in_gemma3: bool| !gemma3 || in_gemma3;
    if let Some(&(_, hf, g3)) = GLOBAL.iter().find(|e| e.0 == gguf) {
        return known(g3).then(|| hf.to_string());
    }
    let rest = gguf.strip_prefix("blk.")?;
    let (layer, rest) = rest.split_once('.')?;
    let index: usize = layer.parse().ok()?;
    if index.to_string() != layer {
        return None;
    }
    let &(_, hf, g3) = LAYER.iter().find(|e| e.0 == rest)?;
    known(g3).then(|| format!("model.layers.{index}.{hf}"))
}

/// The GGUF name of HF tensor `hf` (the inverse of [`hf_name`]), for `model_config`'s lookups.
pub(super) fn gguf_name(arch: &str, hf: &str) -> Option<String> {
    if let Some(&(gguf, _, _)) = GLOBAL.iter().find(|e| e.1 == hf) {
        return hf_name(arch, gguf).map(|_| gguf.to_string());
    }
    let rest = hf.strip_prefix("model.layers.")?;
    let (layer, rest) = rest.split_once('.')?;
    let &(gguf, _, _) = LAYER.iter().find(|e| e.1 == rest)?;
    let name = format!("blk.{layer}.{gguf}");
    hf_name(arch, &name).map(|_| name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_both_ways() {
        let cases = [
            ("blk.3.attn_q.weight", "model.layers.3.self_attn.q_proj.weight"),
            ("token_embd.weight", "model.embed_tokens.weight"),
            ("output_norm.weight", "model.norm.weight"),
            ("blk.0.post_attention_norm.weight", "model.layers.0.post_attention_layernorm.weight"),
            ("blk.0.ffn_norm.weight", "model.layers.0.pre_feedforward_layernorm.weight"),
            ("blk.0.post_ffw_norm.weight", "model.layers.0.post_feedforward_layernorm.weight"),
            ("blk.12.layer_output_scale.weight", "model.layers.12.layer_scalar"),
            ("blk.1.ffn_gate_inp.scale", "model.layers.1.router.scale"),
            ("blk.1.ffn_down_exps.scale", "model.layers.1.router.per_expert_scale"),
            ("blk.1.ffn_gate_up_exps.weight", "model.layers.1.experts.gate_up_proj"),
            ("per_layer_token_embd.weight", "model.embed_tokens_per_layer.weight"),
            ("blk.2.inp_gate.weight", "model.layers.2.per_layer_input_gate.weight"),
        ];
        for (g, h) in cases {
            assert_eq!(hf_name("gemma4", g).as_deref(), Some(h), "{g}");
            assert_eq!(gguf_name("gemma4", h).as_deref(), Some(g), "{h}");
        }
        assert_eq!(hf_name("gemma3", "blk.3.attn_q.weight").as_deref(), Some("model.layers.3.self_attn.q_proj.weight"));
        for unmapped in ["blk.03.attn_q.weight", "blk.x.attn_q.weight", "v.blk.0.attn_q.weight", "blk.1.attn_q"] {
            assert_eq!(hf_name("gemma4", unmapped), None, "{unmapped}");
        }
        assert_eq!(hf_name("gemma3", "blk.1.layer_output_scale.weight"), None);
        assert_eq!(hf_name("llama", "blk.1.attn_q.weight"), None);
    }
}
