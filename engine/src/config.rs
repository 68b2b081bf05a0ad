//! Model configuration: `config.json` parsed into a per-layer description of the decoder.
//!
//! Accepts both layouts of Gemma 4 checkpoints: Google's released ones (settings nested under
//! `text_config`, full-layer geometry in `global_head_dim` / `num_global_key_value_heads`) and
//! transformers' text-only saves (flat, or with the geometry in `per_layer_config`). Everything
//! the forward pass needs is resolved here, once, into [`LayerConfig`]s: head_dim and KV heads per
//! layer, which layer a KV-shared layer reads, the MLP width, the RoPE of the layer.

use crate::error::{Error, Result};
use crate::files::{read_capped, read_text_capped, MAX_CONFIG_BYTES};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Most decoder layers garnet accepts: Gemma's deepest has 62; checked before anything is sized
/// by the layer count.
pub const MAX_LAYERS: usize = 4096;
/// Longest context (`max_position_embeddings`, GGUF `context_length`, `sliding_window`) garnet
/// accepts: Gemma 4 supports 256K positions; 16M keeps every size derived from a context (KV
/// cache, positions) far from overflow.
pub const MAX_CONTEXT: usize = 1 << 24;

/// Attention type of a layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LayerKind {
    /// Local attention over the last `sliding_window` positions.
    Sliding,
    /// Global attention over the whole context.
    Full,
}

/// RoPE of a layer type: pairs `i < rotary_pairs` turn by `pos * theta^(-2i / head_dim)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RopeConfig {
    /// RoPE base.
    pub theta: f32,
    /// Dimension pairs that rotate (the rest pass through).
    pub rotary_pairs: usize,
    /// Frequency multiplier: `1 / factor` of linear RoPE scaling, else 1.0.
    pub freq_scale: f32,
}

/// Everything about one decoder layer.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerConfig {
    /// Sliding or full attention.
    pub kind: LayerKind,
    /// Elements per head.
    pub head_dim: usize,
    /// Key/value heads (GQA groups).
    pub n_kv_heads: usize,
    /// Full layers of K=V models have no `v_proj`: values are the raw `k_proj` output.
    pub k_eq_v: bool,
    /// KV-shared layers read the cache of this earlier layer and write none of their own.
    pub kv_source: Option<usize>,
    /// Dense MLP width (doubled on the KV-shared layers of E2B).
    pub mlp_inter: usize,
    /// RoPE of this layer type.
    pub rope: RopeConfig,
    /// `Some(sliding_window)` on sliding layers.
    pub window: Option<usize>,
}

/// The mixture-of-experts block (26B-A4B).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MoeConfig {
    /// Experts per MoE layer.
    pub n_experts: usize,
    /// Experts per token.
    pub top_k: usize,
    /// Expert FFN width.
    pub inter: usize,
}

/// The model family. Differences between families are data in [`ModelConfig`], not code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    /// Gemma 4 (E2B, E4B, 26B-A4B, 31B).
    Gemma4,
    /// Gemma 3 (RMSNorm with `1 + w`, scaled attention, no v-norm).
    Gemma3,
}

/// A Gemma text decoder, resolved per layer.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelConfig {
    /// Model family.
    pub arch: Arch,
    /// Norm weights are stored as `w` and used as `1 + w` (HF Gemma 3 checkpoints; GGUF files
    /// have the `+1` baked in).
    pub norm_plus_one: bool,
    /// Values are RMS-normalised without a weight (Gemma 4's v_norm).
    pub v_norm: bool,
    /// Tokens in the vocabulary.
    pub vocab_size: usize,
    /// Model width H.
    pub hidden_size: usize,
    /// Query heads.
    pub n_heads: usize,
    /// One entry per decoder layer.
    pub layers: Vec<LayerConfig>,
    /// RMSNorm epsilon.
    pub rms_norm_eps: f32,
    /// Keys a sliding layer sees.
    pub sliding_window: usize,
    /// Softcap on the logits (`None`: none).
    pub final_logit_softcap: Option<f32>,
    /// Per-layer embedding width (0 = no PLE).
    pub ple_dim: usize,
    /// Rows of the PLE table.
    pub ple_vocab_size: usize,
    /// The MoE block, on MoE models.
    pub moe: Option<MoeConfig>,
    /// Multiplier on q.k (1.0 in Gemma 4).
    pub attention_scale: f32,
    /// Longest context the model supports.
    pub max_position_embeddings: usize,
    /// Beginning-of-sequence id.
    pub bos_token_id: u32,
    /// Ids that end generation.
    pub eos_token_ids: Vec<u32>,
    /// Padding id.
    pub pad_token_id: u32,
}

impl ModelConfig {
    /// Reads `config.json` (and `generation_config.json` for extra eos ids) from a checkpoint
    /// directory, or from the directory of a `.safetensors` file.
    pub fn load(checkpoint: &Path) -> Result<ModelConfig> {
        let dir = if checkpoint.is_dir() { checkpoint } else { checkpoint.parent().unwrap_or(Path::new(".")) };
        let path = dir.join("config.json");
        let text = read_text_capped(&path, MAX_CONFIG_BYTES, "config")?;
        let json: Value = serde_json::from_str(&text).map_err(|e| config_err(&path, e.to_string()))?;
        let mut cfg = Self::from_json(&json).map_err(|why| config_err(&path, why))?;
        // generation_config.json may list more stop ids (e.g. <turn|>); a malformed one is ignored,
        // since config.json already gave the model's own eos. One that cannot be read as a file
        // (a FIFO, a device, too big) is an error: it would otherwise block or exhaust memory.
        let gen_path = dir.join("generation_config.json");
        if std::fs::symlink_metadata(&gen_path).is_ok() {
            let gen = read_capped(&gen_path, MAX_CONFIG_BYTES, "generation config")?;
            if let Ok(g) = serde_json::from_slice::<Value>(&gen) {
                for id in ids(g.get("eos_token_id")).map_err(|why| config_err(&gen_path, why))? {
                    if !cfg.eos_token_ids.contains(&id) {
                        cfg.eos_token_ids.push(id);
                    }
                }
            }
        }
        Ok(cfg)
    }

    /// Parses a config object (either layout). The error is a sentence naming the bad key.
    pub fn from_json(root: &Value) -> std::result::Result<ModelConfig, String> {
        let c = root.get("text_config").filter(|v| v.is_object()).unwrap_or(root);
        let model_type = c.get("model_type").and_then(Value::as_str).unwrap_or("");
        let arch = match model_type {
            "gemma4_text" | "gemma4" => Arch::Gemma4,
            "gemma3_text" | "gemma3" => Arch::Gemma3,
            _ => return Err(format!("model_type {model_type:?} is not a Gemma 4 or Gemma 3 text model")),
        };
        if c.get("attn_logit_softcapping").is_some_and(|v| !v.is_null()) {
            return Err("attn_logit_softcapping is not supported (no Gemma 3/4 model uses it)".into());
        }
        let act = c.get("hidden_activation").and_then(Value::as_str).unwrap_or("gelu_pytorch_tanh");
        if !matches!(act, "gelu_pytorch_tanh" | "gelu_tanh") {
            return Err(format!("hidden_activation {act:?} is not supported (gelu_pytorch_tanh)"));
        }
        let n_layers = usize_key(c, "num_hidden_layers")?;
        if n_layers == 0 || n_layers > MAX_LAYERS {
            return Err(format!("num_hidden_layers {n_layers} is not a plausible layer count (1..={MAX_LAYERS})"));
        }
        let hidden_size = usize_key(c, "hidden_size")?;
        let n_heads = usize_key(c, "num_attention_heads")?;
        let head_dim = usize_key(c, "head_dim")?;
        let n_kv = usize_key(c, "num_key_value_heads")?;
        let inter = usize_key(c, "intermediate_size")?;
        let vocab_size = usize_key(c, "vocab_size")?;
        let sliding_window = usize_key(c, "sliding_window")?;
        let k_eq_v = bool_key(c, "attention_k_eq_v");
        let kinds = layer_kinds(c, n_layers, arch)?;
        let (global_head_dim, global_kv) = match arch {
            Arch::Gemma4 => global_geometry(c, &kinds, head_dim, n_kv, k_eq_v)?,
            Arch::Gemma3 => (head_dim, n_kv),
        };

        let n_shared = opt_usize(c, "num_kv_shared_layers")?.unwrap_or(0);
        if n_shared >= n_layers && n_shared > 0 {
            return Err(format!("num_kv_shared_layers {n_shared} leaves no layer to share from"));
        }
        let first_shared = n_layers - n_shared;
        let double_wide = bool_key(c, "use_double_wide_mlp");
        let ropes = match (arch, c.get("rope_parameters").is_some_and(Value::is_object)) {
            (Arch::Gemma3, false) => gemma3_ropes(c, head_dim)?,
            _ => rope_configs(c, head_dim, global_head_dim)?,
        };

        let mut layers = Vec::with_capacity(n_layers);
        for (i, &kind) in kinds.iter().enumerate() {
            let kv_source = kv_source(&kinds, first_shared, i)?;
            let full = kind == LayerKind::Full;
            layers.push(LayerConfig {
                kind,
                head_dim: if full { global_head_dim } else { head_dim },
                n_kv_heads: if full { global_kv } else { n_kv },
                k_eq_v: full && k_eq_v,
                kv_source,
                mlp_inter: if double_wide && kv_source.is_some() { 2 * inter } else { inter },
                rope: if full { ropes.1 } else { ropes.0 },
                window: (!full).then_some(sliding_window),
            });
        }

        let ple_dim = opt_usize(c, "hidden_size_per_layer_input")?.unwrap_or(0);
        let moe = if bool_key(c, "enable_moe_block") {
            Some(MoeConfig {
                n_experts: usize_key(c, "num_experts")?,
                top_k: usize_key(c, "top_k_experts")?,
                inter: usize_key(c, "moe_intermediate_size")?,
            })
        } else {
            None
        };
        let eos = ids(c.get("eos_token_id").or(root.get("eos_token_id")))?;
        let attention_scale = match arch {
            Arch::Gemma4 => 1.0,
            Arch::Gemma3 => (opt_f32(c, "query_pre_attn_scalar")?.unwrap_or(head_dim as f32)).powf(-0.5),
        };
        let cfg = ModelConfig {
            arch,
            norm_plus_one: arch == Arch::Gemma3,
            v_norm: arch == Arch::Gemma4,
            vocab_size,
            hidden_size,
            n_heads,
            layers,
            rms_norm_eps: opt_f32(c, "rms_norm_eps")?.unwrap_or(1e-6),
            sliding_window,
            final_logit_softcap: opt_f32(c, "final_logit_softcapping")?,
            ple_dim,
            ple_vocab_size: opt_usize(c, "vocab_size_per_layer_input")?.unwrap_or(vocab_size),
            moe,
            attention_scale,
            max_position_embeddings: opt_usize(c, "max_position_embeddings")?.unwrap_or(131_072),
            bos_token_id: opt_u32(c, "bos_token_id")?.unwrap_or(2),
            eos_token_ids: if eos.is_empty() { vec![1] } else { eos },
            pad_token_id: opt_u32(c, "pad_token_id")?.unwrap_or(0),
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// Consistency checks that keep every later shape computation in range (shared by the
    /// safetensors and GGUF paths).
    pub(crate) fn validate(&self) -> std::result::Result<(), String> {
        let nonzero = [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("num_attention_heads", self.n_heads),
            ("sliding_window", self.sliding_window),
        ];
        if let Some((k, _)) = nonzero.iter().find(|(_, v)| *v == 0) {
            return Err(format!("{k} must be positive"));
        }
        let huge = self.vocab_size > u32::MAX as usize || self.hidden_size > 1 << 20 || self.n_heads > 1 << 12;
        if huge || self.layers.is_empty() || self.layers.len() > MAX_LAYERS {
            return Err("sizes beyond any Gemma model".into());
        }
        for (key, v) in
            [("max_position_embeddings", self.max_position_embeddings), ("sliding_window", self.sliding_window)]
        {
            if v > MAX_CONTEXT {
                return Err(format!("{key} {v} exceeds garnet's limit of {MAX_CONTEXT} positions"));
            }
        }
        let wide = self.ple_dim > 1 << 16 || self.ple_vocab_size > u32::MAX as usize;
        if wide || self.layers.iter().any(|l| l.mlp_inter > 1 << 20 || l.n_kv_heads > self.n_heads) {
            return Err("MLP, PLE or KV-head sizes beyond any Gemma model".into());
        }
        for (i, l) in self.layers.iter().enumerate() {
            let bad_heads = l.n_kv_heads == 0 || !self.n_heads.is_multiple_of(l.n_kv_heads);
            if l.head_dim == 0 || !l.head_dim.is_multiple_of(2) || l.head_dim > 1 << 14 || bad_heads {
                return Err(format!(
                    "layer {i}: head_dim {} / {} KV heads do not fit {} attention heads",
                    l.head_dim, l.n_kv_heads, self.n_heads
                ));
            }
            let bad_theta = l.rope.theta.is_nan() || l.rope.theta <= 0.0;
            if l.rope.rotary_pairs > l.head_dim / 2 || l.mlp_inter == 0 || bad_theta {
                return Err(format!("layer {i}: bad RoPE or MLP width"));
            }
        }
        if let Some(m) = self.moe {
            if m.n_experts == 0 || m.n_experts > 1 << 12 || m.top_k == 0 || m.top_k > m.n_experts || m.inter == 0 {
                return Err(format!("MoE with {} experts, top-{}, width {}", m.n_experts, m.top_k, m.inter));
            }
        }
        Ok(())
    }

    /// Number of decoder layers.
    pub fn n_layers(&self) -> usize {
        self.layers.len()
    }

    /// The released checkpoint this config resembles: "E2B", "E4B", "26B-A4B", "31B" (Gemma 4),
    /// "270M", "1B", "4B", "12B", "27B" (Gemma 3), or "custom".
    pub fn variant(&self) -> &'static str {
        match (self.arch, self.hidden_size, self.layers.len(), self.moe.is_some()) {
            (Arch::Gemma4, 1536, 35, false) => "E2B",
            (Arch::Gemma4, 2560, 42, false) => "E4B",
            (Arch::Gemma4, 2816, 30, true) => "26B-A4B",
            (Arch::Gemma4, 5376, 60, false) => "31B",
            (Arch::Gemma3, 640, 18, _) => "270M",
            (Arch::Gemma3, 1152, 26, _) => "1B",
            (Arch::Gemma3, 2560, 34, _) => "4B",
            (Arch::Gemma3, 3840, 48, _) => "12B",
            (Arch::Gemma3, 5376, 62, _) => "27B",
            _ => "custom",
        }
    }

    /// The layer-type pattern, e.g. "SSSSF SSSSF ..." grouped by full layers.
    pub fn layer_pattern(&self) -> String {
        let mut s = String::new();
        for l in &self.layers {
            s.push(if l.kind == LayerKind::Full { 'F' } else { 'S' });
            if l.kind == LayerKind::Full {
                s.push(' ');
            }
        }
        s.trim_end().to_string()
    }

    /// Floats of KV cache one position of context costs in the layers of `kind` that own a cache.
    pub fn kv_floats_per_position(&self, kind: LayerKind) -> usize {
        self.layers
            .iter()
            .filter(|l| l.kind == kind && l.kv_source.is_none())
            .map(|l| 2 * l.n_kv_heads * l.head_dim)
            .sum()
    }
}

/// The layer a KV-shared layer `i` reads (layers from `first_shared` on share): the last earlier
/// non-shared layer of the same kind. `None` for layers that compute their own K/V.
pub(crate) fn kv_source(
    kinds: &[LayerKind],
    first_shared: usize,
    i: usize,
) -> std::result::Result<Option<usize>, String> {
    if i < first_shared {
        return Ok(None);
    }
    let kind = kinds[i];
    let src = (0..first_shared).rev().find(|&j| kinds[j] == kind);
    src.map(Some).ok_or(format!("KV-shared layer {i} has no earlier {kind:?} layer to read"))
}

fn config_err(path: &Path, why: String) -> Error {
    Error::Config { path: PathBuf::from(path), why }
}

fn usize_key(c: &Value, key: &str) -> std::result::Result<usize, String> {
    opt_usize(c, key)?.ok_or_else(|| format!("missing key {key:?}"))
}

fn opt_usize(c: &Value, key: &str) -> std::result::Result<Option<usize>, String> {
    match c.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => {
            v.as_u64().map(|n| Some(n as usize)).ok_or_else(|| format!("{key:?} must be a non-negative integer"))
        }
    }
}

/// A token id: an integer that fits in u32 (larger ones are refused, not truncated).
fn opt_u32(c: &Value, key: &str) -> std::result::Result<Option<u32>, String> {
    match opt_usize(c, key)? {
        None => Ok(None),
        Some(n) => u32::try_from(n).map(Some).map_err(|_| format!("{key:?} {n} is not a token id (above 2^32)")),
    }
}

fn opt_f32(c: &Value, key: &str) -> std::result::Result<Option<f32>, String> {
    match c.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_f64().map(|x| Some(x as f32)).ok_or_else(|| format!("{key:?} must be a number")),
    }
}

fn bool_key(c: &Value, key: &str) -> bool {
    c.get(key).and_then(Value::as_bool).unwrap_or(false)
}

/// An id or a list of ids (`eos_token_id` is either); ids above u32 are refused, not truncated.
fn ids(v: Option<&Value>) -> std::result::Result<Vec<u32>, String> {
    let one = |x: &Value| match x.as_u64().map(u32::try_from) {
        Some(Ok(id)) => Ok(Some(id)),
        Some(Err(_)) => Err(format!("eos_token_id {x} is not a token id (above 2^32)")),
        None => Ok(None),
    };
    let found: std::result::Result<Vec<Option<u32>>, String> = match v {
        Some(Value::Array(a)) => a.iter().map(one).collect(),
        Some(v) => one(v).map(|x| vec![x]),
        None => Ok(vec![]),
    };
    Ok(found?.into_iter().flatten().collect())
}

/// `layer_types`, or transformers' default (every `sliding_window_pattern`-th layer full, 6 unless
/// set). Gemma 4 forces the last layer to full attention; Gemma 3 does not.
fn layer_kinds(c: &Value, n_layers: usize, arch: Arch) -> std::result::Result<Vec<LayerKind>, String> {
    let pattern = opt_usize(c, "sliding_window_pattern")?.unwrap_or(6).max(1);
    let mut kinds = match c.get("layer_types") {
        Some(Value::Array(a)) => a
            .iter()
            .map(|t| match t.as_str() {
                Some("sliding_attention") => Ok(LayerKind::Sliding),
                Some("full_attention") => Ok(LayerKind::Full),
                _ => Err(format!("unknown layer type {t}")),
            })
            .collect::<std::result::Result<Vec<_>, _>>()?,
        _ => (0..n_layers).map(|i| if (i + 1) % pattern == 0 { LayerKind::Full } else { LayerKind::Sliding }).collect(),
    };
    if kinds.len() != n_layers {
        return Err(format!("layer_types has {} entries for {n_layers} layers", kinds.len()));
    }
    if let (Arch::Gemma4, Some(last)) = (arch, kinds.last_mut()) {
        *last = LayerKind::Full;
    }
    Ok(kinds)
}

/// head_dim and KV heads of the full layers: `per_layer_config` (transformers' own saves) wins,
/// else `global_head_dim` (default 512) and, on K=V models, `num_global_key_value_heads`.
fn global_geometry(
    c: &Value,
    kinds: &[LayerKind],
    head_dim: usize,
    n_kv: usize,
    k_eq_v: bool,
) -> std::result::Result<(usize, usize), String> {
    if let Some(Value::Object(per_layer)) = c.get("per_layer_config") {
        let full = kinds.iter().position(|&k| k == LayerKind::Full).unwrap_or(0);
        let entry = per_layer.get(&full.to_string()).or(per_layer.get("full_attention"));
        let get = |key| entry.and_then(|e| e.get(key)).and_then(Value::as_u64).map(|x| x as usize);
        return Ok((get("head_dim").unwrap_or(head_dim), get("num_key_value_heads").unwrap_or(n_kv)));
    }
    let global_head_dim = opt_usize(c, "global_head_dim")?.unwrap_or(512);
    let global_kv = if k_eq_v { opt_usize(c, "num_global_key_value_heads")?.unwrap_or(n_kv) } else { n_kv };
    Ok((global_head_dim, global_kv))
}

/// (sliding, full) RoPE from `rope_parameters`, defaulting to Gemma 4's: default theta 1e4 on
/// sliding layers, proportional theta 1e6 with a quarter of the pairs rotating on full layers.
fn rope_configs(
    c: &Value,
    head_dim: usize,
    global_head_dim: usize,
) -> std::result::Result<(RopeConfig, RopeConfig), String> {
    let params = c.get("rope_parameters");
    let one = |kind: &str, dim: usize, theta: f64, factor: f64| -> std::result::Result<RopeConfig, String> {
        let p = params.and_then(|p| p.get(kind));
        let rope_type = p.and_then(|p| p.get("rope_type")).and_then(Value::as_str).unwrap_or("default");
        let theta = p.and_then(|p| p.get("rope_theta")).and_then(Value::as_f64).unwrap_or(theta);
        let scaling = p.and_then(|p| p.get("factor")).and_then(Value::as_f64).unwrap_or(1.0);
        let (factor, scaling) = match rope_type {
            "default" => (1.0, 1.0),
            "linear" => (1.0, scaling),
            "proportional" => {
                (p.and_then(|p| p.get("partial_rotary_factor")).and_then(Value::as_f64).unwrap_or(factor), 1.0)
            }
            other => return Err(format!("rope_type {other:?} on {kind} layers is not supported")),
        };
        if !(0.0..=1.0).contains(&factor) || theta.is_nan() || theta <= 0.0 || scaling.is_nan() || scaling <= 0.0 {
            return Err(format!("bad RoPE parameters on {kind} layers"));
        }
        // transformers: int(partial_rotary_factor * head_dim // 2)
        let rotary_pairs = (factor * dim as f64 / 2.0).floor() as usize;
        Ok(RopeConfig { theta: theta as f32, rotary_pairs, freq_scale: (1.0 / scaling) as f32 })
    };
    let has_params = params.is_some_and(Value::is_object);
    Ok((
        one("sliding_attention", head_dim, 10_000.0, 1.0)?,
        if has_params {
            one("full_attention", global_head_dim, 1_000_000.0, 1.0)?
        } else {
            RopeConfig { theta: 1_000_000.0, rotary_pairs: global_head_dim / 8, freq_scale: 1.0 }
        },
    ))
}

/// Gemma 3's older keys: `rope_local_base_freq` (sliding) and `rope_theta` (full), full rotation;
/// `rope_scaling` (linear, factor 8 on the 4B+ models) applies to the full layers only.
fn gemma3_ropes(c: &Value, head_dim: usize) -> std::result::Result<(RopeConfig, RopeConfig), String> {
    let mut freq_scale = 1.0;
    if let Some(s) = c.get("rope_scaling").filter(|v| !v.is_null()) {
        let kind = s.get("rope_type").or(s.get("type")).and_then(Value::as_str).unwrap_or("linear");
        let factor = s.get("factor").and_then(Value::as_f64).unwrap_or(1.0);
        if kind != "linear" || factor.is_nan() || factor <= 0.0 {
            return Err(format!("rope_scaling {s} is not supported (linear only)"));
        }
        freq_scale = (1.0 / factor) as f32;
    }
    let rope = |theta: f32, freq_scale: f32| RopeConfig { theta, rotary_pairs: head_dim / 2, freq_scale };
    Ok((
        rope(opt_f32(c, "rope_local_base_freq")?.unwrap_or(10_000.0), 1.0),
        rope(opt_f32(c, "rope_theta")?.unwrap_or(1_000_000.0), freq_scale),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(variant: &str, layout: &str) -> ModelConfig {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/gemma4-tiny").join(variant).join(layout);
        ModelConfig::load(&dir).unwrap()
    }

    #[test]
    fn both_layouts_resolve_the_same_layers() {
        for v in ["dense_31b_like", "moe_26b_a4b_like", "edge_e2b_like", "edge_e4b_like"] {
            assert_eq!(fixture(v, "bf16"), fixture(v, "bf16_cg"), "{v}");
        }
    }

    #[test]
    fn e2b_like_sharing_and_double_wide_mlp() {
        let c = fixture("edge_e2b_like", "f32");
        let src: Vec<_> = c.layers.iter().map(|l| l.kv_source).collect();
        assert_eq!(src, [None, None, None, Some(1), Some(1), Some(2)]);
        let inter: Vec<_> = c.layers.iter().map(|l| l.mlp_inter).collect();
        assert_eq!(inter, [128, 128, 128, 256, 256, 256]);
        assert_eq!((c.layers[2].head_dim, c.layers[2].rope.rotary_pairs), (32, 4));
        assert_eq!((c.layers[0].head_dim, c.layers[0].rope.rotary_pairs), (16, 8));
        assert_eq!(c.ple_dim, 24);
    }

    #[test]
    fn k_eq_v_global_kv_heads() {
        let c = fixture("moe_26b_a4b_like", "f32");
        assert_eq!((c.layers[0].n_kv_heads, c.layers[2].n_kv_heads), (4, 1));
        assert!(c.layers[2].k_eq_v && !c.layers[0].k_eq_v);
        assert_eq!(c.moe, Some(MoeConfig { n_experts: 8, top_k: 2, inter: 48 }));
    }

    #[test]
    fn transformers_native_per_layer_config() {
        let mut j: Value = serde_json::from_str(
            &std::fs::read_to_string(
                Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/gemma4-tiny/dense_31b_like/f32/config.json"),
            )
            .unwrap(),
        )
        .unwrap();
        let o = j.as_object_mut().unwrap();
        o.remove("global_head_dim");
        o.remove("num_global_key_value_heads");
        o.insert("per_layer_config".into(), serde_json::json!({"2": {"head_dim": 32, "num_key_value_heads": 1}, "5": {"head_dim": 32, "num_key_value_heads": 1}}));
        let c = ModelConfig::from_json(&j).unwrap();
        assert_eq!(c, fixture("dense_31b_like", "f32"));
    }

    #[test]
    fn gemma3_270m_config() {
        let j = serde_json::json!({
            "model_type": "gemma3_text", "hidden_size": 640, "intermediate_size": 2048, "num_hidden_layers": 18,
            "num_attention_heads": 4, "num_key_value_heads": 1, "head_dim": 256, "query_pre_attn_scalar": 256,
            "rope_theta": 1000000.0, "rope_local_base_freq": 10000.0, "sliding_window": 512, "vocab_size": 262144,
            "max_position_embeddings": 32768, "rms_norm_eps": 1e-6, "final_logit_softcapping": null,
            "attn_logit_softcapping": null, "rope_scaling": null, "hidden_activation": "gelu_pytorch_tanh"
        });
        let c = ModelConfig::from_json(&j).unwrap();
        assert_eq!((c.arch, c.norm_plus_one, c.v_norm, c.attention_scale), (Arch::Gemma3, true, false, 1.0 / 16.0));
        let full: Vec<_> = (0..18).filter(|&i| c.layers[i].kind == LayerKind::Full).collect();
        assert_eq!(full, [5, 11, 17]);
        assert_eq!(c.layers[0].rope, RopeConfig { theta: 10_000.0, rotary_pairs: 128, freq_scale: 1.0 });
        assert_eq!(c.layers[5].rope, RopeConfig { theta: 1_000_000.0, rotary_pairs: 128, freq_scale: 1.0 });
        assert_eq!((c.layers[5].head_dim, c.layers[5].n_kv_heads, c.final_logit_softcap), (256, 1, None));
        assert!(c.layers.iter().all(|l| l.kv_source.is_none() && !l.k_eq_v));
        // Gemma 3 4B+: linear scaling x8 on the global layers only.
        let mut scaled = j.clone();
        scaled["rope_scaling"] = serde_json::json!({"rope_type": "linear", "factor": 8.0});
        let s = ModelConfig::from_json(&scaled).unwrap();
        assert_eq!((s.layers[0].rope.freq_scale, s.layers[5].rope.freq_scale), (1.0, 0.125));
        scaled["rope_scaling"] = serde_json::json!({"rope_type": "yarn", "factor": 8.0});
        assert!(ModelConfig::from_json(&scaled).is_err());
    }

    #[test]
    fn bad_configs_are_errors() {
        let base: Value = serde_json::from_str(
            &std::fs::read_to_string(
                Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/gemma4-tiny/edge_e4b_like/f32/config.json"),
            )
            .unwrap(),
        )
        .unwrap();
        let cases: [(&str, Value); 6] = [
            ("hidden_size", Value::Null),
            ("model_type", "llama".into()),
            ("num_key_value_heads", 3.into()),
            ("layer_types", serde_json::json!(["sliding_attention"])),
            ("hidden_size", "big".into()),
            ("rope_parameters", serde_json::json!({"sliding_attention": {"rope_type": "yarn"}})),
        ];
        for (key, val) in cases {
            let mut j = base.clone();
            j[key] = val;
            let err = ModelConfig::from_json(&j).unwrap_err();
            assert!(!err.is_empty(), "{key}");
        }
        let missing = ModelConfig::load(Path::new("/nonexistent/garnet")).unwrap_err();
        assert!(missing.to_string().contains("config.json"), "{missing}");
    }
}
