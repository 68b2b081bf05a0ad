//! The four released Gemma 4 text decoders as data (docs/GEMMA4.md), resolved for a chosen layer count
//! and vocabulary into a [`Plan`]: the layer pattern, KV sharing, every tensor (HF and GGUF names,
//! shape, how to fill it), the HF `config.json` and the GGUF metadata the engine's loaders read.
//!
//! Fewer layers keep the pattern: layer `i` is full attention when `(i + 1) % period == 0`, and the
//! last layer always is. KV sharing (E2B, E4B) scales with the layer count: see [`shared_layers`].

use super::gguf_write::Value;
use serde_json::json;

/// Released vocabulary size (all four models).
pub const VOCAB: usize = 262_144;
/// head_dim of the sliding layers.
const HEAD_DIM: usize = 256;
/// head_dim of the full layers.
const GLOBAL_HEAD_DIM: usize = 512;
/// Proportional RoPE of the full layers: a quarter of the pairs rotate.
const PARTIAL_ROTARY: f64 = 0.25;

/// Which released checkpoint to imitate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Variant {
    /// Gemma 4 E2B: PLE, 20 of 35 layers KV-shared, double-wide MLP on them.
    E2b,
    /// Gemma 4 E4B: PLE, 18 of 42 layers KV-shared.
    E4b,
    /// Gemma 4 26B-A4B: 128 experts, top-8, K=V full layers.
    #[value(name = "26b-a4b")]
    A26b,
    /// Gemma 4 31B: dense, K=V full layers.
    #[value(name = "31b")]
    B31,
}

/// One released text decoder (docs/GEMMA4.md's table).
#[derive(Debug)]
pub struct Released {
    /// "E2B", ...
    pub name: &'static str,
    hidden: usize,
    inter: usize,
    /// Layers of the released model.
    pub layers: usize,
    heads: usize,
    kv_sliding: usize,
    kv_full: usize,
    window: usize,
    /// Every `period`-th layer is full attention.
    pub period: usize,
    k_eq_v: bool,
    /// `num_kv_shared_layers` of the released model.
    pub kv_shared: usize,
    double_wide: bool,
    ple_dim: usize,
    /// (experts, top-k, expert width).
    moe: Option<(usize, usize, usize)>,
    max_context: usize,
}

const E2B: Released = Released {
    name: "E2B",
    hidden: 1536,
    inter: 6144,
    layers: 35,
    heads: 8,
    kv_sliding: 1,
    kv_full: 1,
    window: 512,
    period: 5,
    k_eq_v: false,
    kv_shared: 20,
    double_wide: true,
    ple_dim: 256,
    moe: None,
    max_context: 131_072,
};
const E4B: Released = Released {
    name: "E4B",
    hidden: 2560,
    inter: 10240,
    layers: 42,
    heads: 8,
    kv_sliding: 2,
    kv_full: 2,
    period: 6,
    kv_shared: 18,
    double_wide: false,
    ..E2B
};
const A26B: Released = Released {
    name: "26B-A4B",
    hidden: 2816,
    inter: 2112,
    layers: 30,
    heads: 16,
    kv_sliding: 8,
    kv_full: 2,
    window: 1024,
    period: 6,
    k_eq_v: true,
    kv_shared: 0,
    double_wide: false,
    ple_dim: 0,
    moe: Some((128, 8, 704)),
    max_context: 262_144,
};
const B31: Released = Released {
    name: "31B",
    hidden: 5376,
    inter: 21504,
    layers: 60,
    heads: 32,
    kv_sliding: 16,
    kv_full: 4,
    moe: None,
    ..A26B
};

impl Variant {
    /// The released model's numbers.
    pub fn released(self) -> &'static Released {
        match self {
            Variant::E2b => &E2B,
            Variant::E4b => &E4B,
            Variant::A26b => &A26B,
            Variant::B31 => &B31,
        }
    }
}

/// KV-shared layers of an `n`-layer cut of `r`: `max(1, round(S * n / L))`, capped at `n - period`
/// so the unshared layers include a full-attention layer for the shared ones to read (fewer than
/// `period + 1` layers: no sharing). The released `n = L` keeps `S`.
pub fn shared_layers(r: &Released, n: usize) -> usize {
    if r.kv_shared == 0 {
        return 0;
    }
    let scaled = ((r.kv_shared * n) as f64 / r.layers as f64).round() as usize;
    scaled.max(1).min(n.saturating_sub(r.period))
}

/// How to fill a tensor.
#[derive(Clone, Debug, PartialEq)]
pub enum Init {
    /// Uniform in `center ± half_width`.
    Uniform {
        /// Middle of the range.
        center: f32,
        /// Half the range's width (0: a constant).
        half_width: f32,
    },
    /// Exactly these values (`rope_freqs`).
    Values(Vec<f32>),
}

impl Init {
    /// `U(-a, a)` with `a = sqrt(3 / fan_in)`: unit variance in, unit variance out.
    fn matrix(fan_in: usize) -> Init {
        Init::Uniform { center: 0.0, half_width: (3.0 / fan_in as f32).sqrt() }
    }
    /// Norm weights and scales: `1 ± 0.1`.
    fn near_one() -> Init {
        Init::Uniform { center: 1.0, half_width: 0.1 }
    }
}

/// What a tensor is, for the choice of its stored dtype.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A weight matrix (2-D or stacked experts): stored in the requested dtype.
    Matrix,
    /// The MoE router: a matrix that GGUF keeps in F32 (as llama.cpp does).
    Router,
    /// Norms, scales, `layer_scalar`, `rope_freqs`: F32 in GGUF, the requested float otherwise.
    Vector,
}

/// One tensor to write.
#[derive(Clone, Debug)]
pub struct Spec {
    /// HF name after the `model.language_model.` prefix (`None`: GGUF-only, i.e. `rope_freqs`).
    pub hf: Option<String>,
    /// GGUF name (llama.cpp's gemma4 naming).
    pub gguf: String,
    /// Dimensions, outermost first.
    pub shape: Vec<usize>,
    /// How to fill it.
    pub init: Init,
    /// Its role.
    pub kind: Kind,
}

impl Spec {
    /// Elements.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// A released model cut to `n_layers` with a `vocab`-token vocabulary.
#[derive(Debug)]
pub struct Plan {
    /// The model imitated.
    pub released: &'static Released,
    /// Whether each layer is full attention.
    pub full: Vec<bool>,
    /// The last `n_shared` layers reuse earlier K/V.
    pub n_shared: usize,
    /// Tokens in the vocabulary (and rows of the PLE table).
    pub vocab: usize,
}

impl Plan {
    /// `layers` (default: all) and `vocab` (default: the released 262144) checked against `variant`.
    pub fn new(variant: Variant, layers: Option<usize>, vocab: Option<usize>) -> Result<Plan, String> {
        let r = variant.released();
        let n = layers.unwrap_or(r.layers);
        if n == 0 || n > r.layers {
            return Err(format!("--layers {n}: {} has 1 to {} layers", r.name, r.layers));
        }
        let vocab = vocab.unwrap_or(VOCAB);
        if !(4..=VOCAB).contains(&vocab) {
            return Err(format!("--vocab {vocab}: between 4 and {VOCAB}"));
        }
        let full = (0..n).map(|i| (i + 1) % r.period == 0 || i + 1 == n).collect();
        Ok(Plan { released: r, full, n_shared: shared_layers(r, n), vocab })
    }

    /// Layers.
    pub fn n_layers(&self) -> usize {
        self.full.len()
    }

    fn shared(&self, i: usize) -> bool {
        i >= self.n_layers() - self.n_shared
    }

    fn head_dim(&self, i: usize) -> usize {
        if self.full[i] {
            GLOBAL_HEAD_DIM
        } else {
            HEAD_DIM
        }
    }

    fn kv_heads(&self, i: usize) -> usize {
        if self.full[i] {
            self.released.kv_full
        } else {
            self.released.kv_sliding
        }
    }

    fn mlp_width(&self, i: usize) -> usize {
        let r = self.released;
        if r.double_wide && self.shared(i) {
            2 * r.inter
        } else {
            r.inter
        }
    }

    /// Every tensor, in file order: globals, then each layer.
    pub fn tensors(&self) -> Vec<Spec> {
        let r = self.released;
        let (h, v, p, l) = (r.hidden, self.vocab, r.ple_dim, self.n_layers());
        let mut out = Vec::new();
        let mut add = |hf: Option<String>, gguf: String, shape: Vec<usize>, init: Init, kind: Kind| {
            out.push(Spec { hf, gguf, shape, init, kind });
        };
        let mut global = |hf: &str, gguf: &str, shape: Vec<usize>, init: Init, kind: Kind| {
            add(Some(hf.into()), gguf.into(), shape, init, kind);
        };
        global("embed_tokens.weight", "token_embd.weight", vec![v, h], Init::matrix(h), Kind::Matrix);
        global("norm.weight", "output_norm.weight", vec![h], Init::near_one(), Kind::Vector);
        if p > 0 {
            let table = Init::matrix(p);
            global("embed_tokens_per_layer.weight", "per_layer_token_embd.weight", vec![v, l * p], table, Kind::Matrix);
            let proj = Init::matrix(h);
            global(
                "per_layer_model_projection.weight",
                "per_layer_model_proj.weight",
                vec![l * p, h],
                proj,
                Kind::Matrix,
            );
            global(
                "per_layer_projection_norm.weight",
                "per_layer_proj_norm.weight",
                vec![p],
                Init::near_one(),
                Kind::Vector,
            );
        }
        if self.full.contains(&true) {
            // GGUF only: proportional RoPE as frequency factors (1 = rotated pair, 1e30 = not).
            let pairs = GLOBAL_HEAD_DIM / 2;
            let rotated = (GLOBAL_HEAD_DIM as f64 * PARTIAL_ROTARY / 2.0) as usize;
            let freqs = (0..pairs).map(|i| if i < rotated { 1.0 } else { 1e30 }).collect();
            add(None, "rope_freqs.weight".into(), vec![pairs], Init::Values(freqs), Kind::Vector);
        }
        for i in 0..l {
            let (hd, kvd, q) = (self.head_dim(i), self.kv_heads(i) * self.head_dim(i), r.heads * self.head_dim(i));
            let inter = self.mlp_width(i);
            let mut layer = |hf: &str, gguf: &str, shape: Vec<usize>, init: Init, kind: Kind| {
                add(Some(format!("layers.{i}.{hf}")), format!("blk.{i}.{gguf}"), shape, init, kind);
            };
            let mut norm = |hf: &str, gguf: &str, dim: usize| {
                layer(&format!("{hf}.weight"), &format!("{gguf}.weight"), vec![dim], Init::near_one(), Kind::Vector);
            };
            norm("input_layernorm", "attn_norm", h);
            norm("self_attn.q_norm", "attn_q_norm", hd);
            if !self.shared(i) {
                norm("self_attn.k_norm", "attn_k_norm", hd);
            }
            norm("post_attention_layernorm", "post_attention_norm", h);
            norm("pre_feedforward_layernorm", "ffn_norm", h);
            norm("post_feedforward_layernorm", "post_ffw_norm", h);
            if r.moe.is_some() {
                norm("pre_feedforward_layernorm_2", "pre_ffw_norm_2", h);
                norm("post_feedforward_layernorm_1", "post_ffw_norm_1", h);
                norm("post_feedforward_layernorm_2", "post_ffw_norm_2", h);
            }
            if p > 0 {
                norm("post_per_layer_input_norm", "post_norm", h);
            }
            let one = Init::Uniform { center: 1.0, half_width: 0.0 };
            layer("layer_scalar", "layer_output_scale.weight", vec![1], one, Kind::Vector);
            let mut matrix = |hf: &str, gguf: &str, shape: Vec<usize>| {
                let init = Init::matrix(*shape.last().unwrap_or(&1));
                layer(hf, gguf, shape, init, Kind::Matrix);
            };
            matrix("self_attn.q_proj.weight", "attn_q.weight", vec![q, h]);
            if !self.shared(i) {
                matrix("self_attn.k_proj.weight", "attn_k.weight", vec![kvd, h]);
                if !(self.full[i] && r.k_eq_v) {
                    matrix("self_attn.v_proj.weight", "attn_v.weight", vec![kvd, h]);
                }
            }
            matrix("self_attn.o_proj.weight", "attn_output.weight", vec![h, q]);
            matrix("mlp.gate_proj.weight", "ffn_gate.weight", vec![inter, h]);
            matrix("mlp.up_proj.weight", "ffn_up.weight", vec![inter, h]);
            matrix("mlp.down_proj.weight", "ffn_down.weight", vec![h, inter]);
            if let Some((e, _, w)) = r.moe {
                matrix("experts.gate_up_proj", "ffn_gate_up_exps.weight", vec![e, 2 * w, h]);
                matrix("experts.down_proj", "ffn_down_exps.weight", vec![e, h, w]);
            }
            if p > 0 {
                matrix("per_layer_input_gate.weight", "inp_gate.weight", vec![p, h]);
                matrix("per_layer_projection.weight", "proj.weight", vec![h, p]);
            }
            if let Some((e, _, _)) = r.moe {
                layer("router.proj.weight", "ffn_gate_inp.weight", vec![e, h], Init::matrix(h), Kind::Router);
                layer("router.scale", "ffn_gate_inp.scale", vec![h], Init::near_one(), Kind::Vector);
                layer("router.per_expert_scale", "ffn_down_exps.scale", vec![e], Init::near_one(), Kind::Vector);
            }
        }
        out
    }

    /// The released checkpoints' `config.json`: settings under `text_config`, Gemma 4 keys.
    pub fn config_json(&self) -> serde_json::Value {
        let r = self.released;
        let types: Vec<&str> =
            self.full.iter().map(|&f| if f { "full_attention" } else { "sliding_attention" }).collect();
        let (experts, top_k, moe_width) = match r.moe {
            Some((e, k, w)) => (json!(e), json!(k), json!(w)),
            None => (json!(null), json!(null), json!(null)),
        };
        let text = json!({
            "architectures": ["Gemma4ForCausalLM"],
            "model_type": "gemma4_text",
            "attention_bias": false,
            "attention_k_eq_v": r.k_eq_v,
            "bos_token_id": 2,
            "eos_token_id": 1,
            "pad_token_id": 0,
            "dtype": "bfloat16",
            "enable_moe_block": r.moe.is_some(),
            "final_logit_softcapping": 30.0,
            "global_head_dim": GLOBAL_HEAD_DIM,
            "head_dim": HEAD_DIM,
            "hidden_activation": "gelu_pytorch_tanh",
            "hidden_size": r.hidden,
            "hidden_size_per_layer_input": r.ple_dim,
            "intermediate_size": r.inter,
            "layer_types": types,
            "max_position_embeddings": r.max_context,
            "moe_intermediate_size": moe_width,
            "num_attention_heads": r.heads,
            "num_experts": experts,
            "num_global_key_value_heads": if r.k_eq_v { json!(r.kv_full) } else { json!(null) },
            "num_hidden_layers": self.n_layers(),
            "num_key_value_heads": r.kv_sliding,
            "num_kv_shared_layers": self.n_shared,
            "rms_norm_eps": 1e-6,
            "rope_parameters": {
                "full_attention": {
                    "partial_rotary_factor": PARTIAL_ROTARY, "rope_theta": 1_000_000.0, "rope_type": "proportional"
                },
                "sliding_attention": {"rope_theta": 10_000.0, "rope_type": "default"}
            },
            "sliding_window": r.window,
            "tie_word_embeddings": true,
            "top_k_experts": top_k,
            "use_double_wide_mlp": r.double_wide,
            "vocab_size": self.vocab,
            "vocab_size_per_layer_input": self.vocab,
        });
        json!({
            "architectures": ["Gemma4ForConditionalGeneration"],
            "model_type": "gemma4",
            "text_config": text,
            "tie_word_embeddings": true,
            "garnet_synth": format!("random weights shaped like Gemma 4 {}", r.name),
        })
    }

    /// GGUF metadata as llama.cpp's converter writes it for `gemma4` (`file_type`: llama.cpp's
    /// `LlamaFileType`). No tokenizer vocabulary: the loader does not need one.
    pub fn gguf_metadata(&self, file_type: u32) -> Vec<(String, Value)> {
        let r = self.released;
        let n = self.n_layers();
        let u = |x: usize| Value::U32(x as u32);
        let mut m: Vec<(&str, Value)> = vec![
            ("general.architecture", Value::Str("gemma4".into())),
            ("general.name", Value::Str(format!("garnet synth Gemma 4 {} ({n} layers, random weights)", r.name))),
            ("general.file_type", Value::U32(file_type)),
            ("gemma4.block_count", u(n)),
            ("gemma4.context_length", u(r.max_context)),
            ("gemma4.embedding_length", u(r.hidden)),
            ("gemma4.attention.head_count", u(r.heads)),
            ("gemma4.attention.layer_norm_rms_epsilon", Value::F32(1e-6)),
            ("gemma4.rope.freq_base", Value::F32(1_000_000.0)),
            ("gemma4.rope.freq_base_swa", Value::F32(10_000.0)),
            ("gemma4.final_logit_softcapping", Value::F32(30.0)),
            ("gemma4.attention.sliding_window", u(r.window)),
            ("gemma4.attention.shared_kv_layers", u(self.n_shared)),
            ("gemma4.embedding_length_per_layer_input", u(r.ple_dim)),
            ("gemma4.attention.sliding_window_pattern", Value::Bools(self.full.iter().map(|f| !f).collect())),
            ("gemma4.attention.key_length", u(GLOBAL_HEAD_DIM)),
            ("gemma4.attention.value_length", u(GLOBAL_HEAD_DIM)),
            ("gemma4.attention.key_length_swa", u(HEAD_DIM)),
            ("gemma4.attention.value_length_swa", u(HEAD_DIM)),
            ("gemma4.rope.dimension_count", u(GLOBAL_HEAD_DIM)),
            ("gemma4.rope.dimension_count_swa", u(HEAD_DIM)),
            ("tokenizer.ggml.bos_token_id", Value::U32(2)),
            ("tokenizer.ggml.eos_token_id", Value::U32(1)),
            ("tokenizer.ggml.padding_token_id", Value::U32(0)),
        ];
        m.push(if r.double_wide {
            ("gemma4.feed_forward_length", Value::U32s((0..n).map(|i| self.mlp_width(i) as u32).collect()))
        } else {
            ("gemma4.feed_forward_length", u(r.inter))
        });
        m.push(if r.kv_full != r.kv_sliding {
            ("gemma4.attention.head_count_kv", Value::U32s((0..n).map(|i| self.kv_heads(i) as u32).collect()))
        } else {
            ("gemma4.attention.head_count_kv", u(r.kv_sliding))
        });
        if let Some((e, k, w)) = r.moe {
            m.push(("gemma4.expert_count", u(e)));
            m.push(("gemma4.expert_used_count", u(k)));
            m.push(("gemma4.expert_feed_forward_length", u(w)));
        }
        m.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn released_sharing_is_kept_and_cuts_stay_valid() {
        for v in [Variant::E2b, Variant::E4b] {
            let r = v.released();
            assert_eq!(shared_layers(r, r.layers), r.kv_shared);
            for n in 1..=r.layers {
                let p = Plan::new(v, Some(n), None).unwrap();
                let first_shared = n - p.n_shared;
                // Every shared layer's kind has an unshared layer to read.
                for i in first_shared..n {
                    assert!((0..first_shared).any(|j| p.full[j] == p.full[i]), "{} n={n} layer {i}", r.name);
                }
                assert_eq!(p.n_shared > 0, n > r.period, "{} n={n}", r.name);
            }
        }
        assert_eq!(shared_layers(&A26B, 30), 0);
    }

    #[test]
    fn pattern_matches_facts() {
        let p = Plan::new(Variant::E2b, None, None).unwrap();
        let full: Vec<usize> = (0..35).filter(|&i| p.full[i]).collect();
        assert_eq!(full, [4, 9, 14, 19, 24, 29, 34]);
        let p = Plan::new(Variant::B31, Some(4), None).unwrap();
        assert_eq!(p.full, [false, false, false, true]);
        assert!(Plan::new(Variant::B31, Some(61), None).is_err());
        assert!(Plan::new(Variant::B31, Some(0), None).is_err());
    }
}
