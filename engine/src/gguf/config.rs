//! GGUF metadata → [`ModelConfig`], for `gemma3` and `gemma4` files as llama.cpp's converter
//! writes them: the same config [`ModelConfig::from_json`] builds for the equivalent HF checkpoint,
//! except `norm_plus_one = false` (the converter stores Gemma 3 norm weights as `1 + w`).
//!
//! Gemma 4: layer kinds from `attention.sliding_window_pattern` (true = sliding), head_dim from
//! `attention.key_length` (full) / `key_length_swa` (sliding), KV heads and MLP widths scalar or
//! per layer, KV sharing from `attention.shared_kv_layers`, K=V full layers from the absence of
//! `attn_v`, the rotated pairs of the full layers from `rope_freqs` (1.0 = rotated, ≥ 1e20 = not),
//! MoE from `expert_count` / `expert_used_count` / `expert_feed_forward_length`, PLE from
//! `embedding_length_per_layer_input`. Gemma 3 (as llama.cpp reads it): every 6th layer full,
//! local RoPE theta 10000, attention scale `1/sqrt(key_length)` (`1/sqrt(H / heads)` for the
//! 62-layer 27B), no v_norm.

use super::names::gguf_name;
use super::{GgufFile, MetaValue};
use crate::config::{Arch, LayerConfig, LayerKind, ModelConfig, MoeConfig, RopeConfig};
use crate::error::{Error, Result};

/// Builds the model configuration of a `gemma3` or `gemma4` GGUF file. Anything missing,
/// inconsistent or unsupported is an [`Error::Config`] naming the key.
pub fn model_config(file: &GgufFile) -> Result<ModelConfig> {
    let err = |why: String| Error::Config { path: file.path().to_path_buf(), why };
    let arch = file.architecture().ok_or_else(|| err("no general.architecture string".into()))?;
    let m = Meta { file, arch };
    let cfg = match arch {
        "gemma4" => gemma4(&m),
        "gemma3" => gemma3(&m),
        other => Err(format!("architecture {other:?} is not supported (gemma3, gemma4)")),
    }
    .map_err(err)?;
    cfg.validate().map_err(err)?;
    Ok(cfg)
}

/// Typed access to `{arch}.*` keys.
struct Meta<'a> {
    file: &'a GgufFile,
    arch: &'a str,
}

type R<T> = std::result::Result<T, String>;

impl Meta<'_> {
    fn raw(&self, key: &str) -> Option<&MetaValue> {
        self.file.get(&format!("{}.{key}", self.arch))
    }
    fn full(&self, key: &str) -> String {
        format!("{}.{key}", self.arch)
    }
    fn opt_usize_at(&self, full_key: &str) -> R<Option<usize>> {
        match self.file.get(full_key) {
            None => Ok(None),
            Some(v) => match v.as_u64().and_then(|x| usize::try_from(x).ok()) {
                Some(x) => Ok(Some(x)),
                None => Err(format!("{full_key} must be a non-negative integer, got {v:?}")),
            },
        }
    }
    fn opt_usize(&self, key: &str) -> R<Option<usize>> {
        self.opt_usize_at(&self.full(key))
    }
    fn usize(&self, key: &str) -> R<usize> {
        self.opt_usize(key)?.ok_or_else(|| format!("missing key {}", self.full(key)))
    }
    fn opt_f32(&self, key: &str) -> R<Option<f32>> {
        match self.raw(key) {
            None => Ok(None),
            Some(v) => v.as_f32().map(Some).ok_or_else(|| format!("{} must be a number, got {v:?}", self.full(key))),
        }
    }
    /// A scalar repeated per layer, or an array of one integer per layer.
    fn per_layer(&self, key: &str, n: usize) -> R<Option<Vec<usize>>> {
        let full = self.full(key);
        match self.raw(key) {
            None => Ok(None),
            Some(MetaValue::Array(a)) => {
                let v = a.to_u64s().ok_or_else(|| format!("{full} must hold non-negative integers"))?;
                if v.len() != n {
                    return Err(format!("{full} has {} entries for {n} layers", v.len()));
                }
                Ok(Some(v.into_iter().map(|x| x as usize).collect()))
            }
            Some(_) => Ok(self.opt_usize(key)?.map(|x| vec![x; n])),
        }
    }
    /// A per-layer value that must be the same on every layer.
    fn uniform(&self, key: &str, n: usize) -> R<usize> {
        let v = self.per_layer(key, n)?.ok_or_else(|| format!("missing key {}", self.full(key)))?;
        match v.first() {
            Some(&x) if v.iter().all(|&y| y == x) => Ok(x),
            _ => Err(format!("{} varies per layer, which garnet does not support", self.full(key))),
        }
    }
    /// `attention.sliding_window_pattern`: an array with one entry per layer, true / non-zero =
    /// sliding.
    fn pattern(&self, n: usize) -> R<Option<Vec<LayerKind>>> {
        let key = "attention.sliding_window_pattern";
        match self.raw(key) {
            None => Ok(None),
            Some(MetaValue::Array(_)) => {
                let flags = self.per_layer(key, n)?.unwrap_or_default();
                Ok(Some(flags.iter().map(|&s| if s != 0 { LayerKind::Sliding } else { LayerKind::Full }).collect()))
            }
            Some(v) => Err(format!("{} must be an array of one bool per layer, got {v:?}", self.full(key))),
        }
    }
    fn has(&self, hf: &str) -> bool {
        gguf_name(self.arch, hf).is_some_and(|g| self.file.tensor_info(&g).is_some())
    }
    /// Rows (dimension 1 of `ne`) of a 2-D tensor, by HF name.
    fn rows(&self, hf: &str) -> Option<usize> {
        let info = self.file.tensor_info(&gguf_name(self.arch, hf)?)?;
        info.ne().get(1).map(|&r| r as usize)
    }
    fn vocab_size(&self) -> R<usize> {
        if let Some(v) = self.opt_usize("vocab_size")? {
            return Ok(v);
        }
        self.rows("model.embed_tokens.weight")
            .or_else(|| self.file.get("tokenizer.ggml.tokens").and_then(MetaValue::as_array).map(|a| a.len()))
            .ok_or_else(|| "no vocab_size key, token_embd tensor or token list".to_string())
    }
    fn max_layers(&self) -> R<usize> {
        let n = self.usize("block_count")?;
        if n == 0 || n > crate::config::MAX_LAYERS {
            return Err(format!("{} = {n} is not a plausible layer count", self.full("block_count")));
        }
        Ok(n)
    }
    /// (bos, eos ids, pad) from the tokenizer keys (eos plus eot / eom when present).
    fn special_ids(&self) -> R<(u32, Vec<u32>, u32)> {
        let id = |k: &str| super::vocab::token_id(self.file, &format!("tokenizer.ggml.{k}"));
        let mut eos = vec![id("eos_token_id")?.unwrap_or(1)];
        for extra in ["eot_token_id", "eom_token_id"] {
            if let Some(x) = id(extra)? {
                if !eos.contains(&x) {
                    eos.push(x);
                }
            }
        }
        Ok((id("bos_token_id")?.unwrap_or(2), eos, id("padding_token_id")?.unwrap_or(0)))
    }
    /// `rope.dimension_count{suffix}` must be the whole head (partial rotation is expressed by
    /// `rope_freqs` in Gemma 4 files; garnet's RoPE exponent always divides by head_dim).
    fn check_rope_dims(&self, suffix: &str, head_dim: usize) -> R<()> {
        let key = format!("rope.dimension_count{suffix}");
        match self.opt_usize(&key)? {
            Some(d) if d != head_dim => {
                Err(format!("{} = {d} differs from head_dim {head_dim} (unsupported partial RoPE)", self.full(&key)))
            }
            _ => Ok(()),
        }
    }
    fn check_value_length(&self, suffix: &str, head_dim: usize) -> R<()> {
        match self.opt_usize(&format!("attention.value_length{suffix}"))? {
            Some(v) if v != head_dim => Err(format!("value_length{suffix} {v} differs from key_length {head_dim}")),
            _ => Ok(()),
        }
    }
}

fn gemma4(m: &Meta) -> R<ModelConfig> {
    let n = m.max_layers()?;
    let hidden_size = m.usize("embedding_length")?;
    let n_heads = m.uniform("attention.head_count", n)?;
    let n_kv = m.per_layer("attention.head_count_kv", n)?.unwrap_or_else(|| vec![n_heads; n]);
    let inter = m.per_layer("feed_forward_length", n)?.ok_or("missing key gemma4.feed_forward_length")?;
    let mut kinds = m.pattern(n)?.unwrap_or_else(|| {
        (0..n).map(|i| if (i + 1) % 6 == 0 { LayerKind::Full } else { LayerKind::Sliding }).collect()
    });
    // As `ModelConfig::from_json`: the last layer is always full.
    if let Some(last) = kinds.last_mut() {
        *last = LayerKind::Full;
    }
    let head_full = m.usize("attention.key_length")?;
    let head_swa = m.opt_usize("attention.key_length_swa")?.unwrap_or(head_full);
    m.check_value_length("", head_full)?;
    m.check_value_length("_swa", head_swa)?;
    m.check_rope_dims("", head_full)?;
    m.check_rope_dims("_swa", head_swa)?;
    let n_shared = m.opt_usize("attention.shared_kv_layers")?.unwrap_or(0);
    if n_shared > 0 && n_shared >= n {
        return Err(format!("shared_kv_layers {n_shared} leaves no layer to share from"));
    }
    let first_shared = n - n_shared;
    let sliding_window = m.usize("attention.sliding_window")?;
    let rope_swa = RopeConfig {
        theta: m.opt_f32("rope.freq_base_swa")?.unwrap_or(10_000.0),
        rotary_pairs: head_swa / 2,
        freq_scale: 1.0,
    };
    let rope_full = RopeConfig {
        theta: m.opt_f32("rope.freq_base")?.unwrap_or(1_000_000.0),
        rotary_pairs: if kinds.contains(&LayerKind::Full) { rotary_pairs(m, head_full)? } else { head_full / 8 },
        freq_scale: 1.0,
    };
    // K=V: the full layers that compute their own K/V have no attn_v (llama.cpp: "v_proj is
    // optional, if it's not present, use k_proj").
    let own_full: Vec<usize> = (0..first_shared).filter(|&i| kinds[i] == LayerKind::Full).collect();
    let missing_v = own_full.iter().filter(|&&i| !m.has(&format!("model.layers.{i}.self_attn.v_proj.weight"))).count();
    if missing_v != 0 && missing_v != own_full.len() {
        return Err(format!("{missing_v} of {} full layers have no attn_v (K=V must hold on all)", own_full.len()));
    }
    let k_eq_v = missing_v > 0;

    let mut layers = Vec::with_capacity(n);
    for (i, &kind) in kinds.iter().enumerate() {
        let kv_source = crate::config::kv_source(&kinds, first_shared, i)?;
        let full = kind == LayerKind::Full;
        layers.push(LayerConfig {
            kind,
            head_dim: if full { head_full } else { head_swa },
            n_kv_heads: n_kv[i],
            k_eq_v: full && k_eq_v,
            kv_source,
            mlp_inter: inter[i],
            rope: if full { rope_full } else { rope_swa },
            window: (!full).then_some(sliding_window),
        });
    }
    let vocab_size = m.vocab_size()?;
    let moe = match m.opt_usize("expert_count")? {
        Some(e) if e > 0 => Some(MoeConfig {
            n_experts: e,
            top_k: m.usize("expert_used_count")?,
            inter: m.usize("expert_feed_forward_length")?,
        }),
        _ => None,
    };
    let (bos_token_id, eos_token_ids, pad_token_id) = m.special_ids()?;
    Ok(ModelConfig {
        arch: Arch::Gemma4,
        norm_plus_one: false,
        v_norm: true,
        vocab_size,
        hidden_size,
        n_heads,
        layers,
        rms_norm_eps: m.opt_f32("attention.layer_norm_rms_epsilon")?.unwrap_or(1e-6),
        sliding_window,
        final_logit_softcap: m.opt_f32("final_logit_softcapping")?,
        ple_dim: m.opt_usize("embedding_length_per_layer_input")?.unwrap_or(0),
        ple_vocab_size: m.rows("model.embed_tokens_per_layer.weight").unwrap_or(vocab_size),
        moe,
        attention_scale: 1.0,
        max_position_embeddings: m.opt_usize("context_length")?.unwrap_or(131_072),
        bos_token_id,
        eos_token_ids,
        pad_token_id,
    })
}

/// Rotated pairs of the full layers, read from `rope_freqs` ([head_dim / 2] frequency factors:
/// 1.0 for the rotated pairs, then ≥ 1e20 — llama.cpp's converter writes 1e30 — for the rest).
fn rotary_pairs(m: &Meta, head_dim: usize) -> R<usize> {
    let t = m.file.tensor("rope_freqs.weight").map_err(|e| format!("rope_freqs (needed by full layers): {e}"))?;
    if t.shape() != [head_dim / 2] {
        return Err(format!("rope_freqs has shape {:?}, expected [{}]", t.shape(), head_dim / 2));
    }
    let f = t.to_f32_vec();
    let pairs = f.iter().take_while(|&&x| x == 1.0).count();
    if f[pairs..].iter().any(|&x| x.is_nan() || x < 1e20) {
        let why = "is not proportional RoPE (1.0 for rotated pairs, then >= 1e20)";
        return Err(format!("rope_freqs {f:?} {why}"));
    }
    Ok(pairs)
}

fn gemma3(m: &Meta) -> R<ModelConfig> {
    let n = m.max_layers()?;
    let hidden_size = m.usize("embedding_length")?;
    let n_heads = m.uniform("attention.head_count", n)?;
    let n_kv = m.per_layer("attention.head_count_kv", n)?.unwrap_or_else(|| vec![n_heads; n]);
    let inter = m.per_layer("feed_forward_length", n)?.ok_or("missing key gemma3.feed_forward_length")?;
    let head_dim = match m.opt_usize("attention.key_length")? {
        Some(d) => d,
        None if n_heads > 0 => hidden_size / n_heads,
        None => return Err("attention.head_count is 0".into()),
    };
    m.check_value_length("", head_dim)?;
    m.check_rope_dims("", head_dim)?;
    let kinds = m
        .pattern(n)?
        .unwrap_or_else(|| (0..n).map(|i| if i % 6 == 5 { LayerKind::Full } else { LayerKind::Sliding }).collect());
    // Gemma 3 4B+: linear RoPE scaling (x8) on the global layers; llama.cpp's rope.scaling.*.
    let mut freq_scale = 1.0f32;
    if let Some(MetaValue::String(t)) = m.raw("rope.scaling.type") {
        let factor = m.opt_f32("rope.scaling.factor")?.unwrap_or(1.0);
        match t.as_str() {
            "none" => {}
            "linear" if factor.is_finite() && factor > 0.0 => freq_scale = 1.0 / factor,
            _ => return Err(format!("RoPE scaling {t:?} x{factor} on full layers is not supported")),
        }
    }
    let sliding_window = m.usize("attention.sliding_window")?;
    // llama.cpp hard-codes theta 10000 for Gemma 3's local layers (rope.freq_base_swa is ignored).
    let rope_local = RopeConfig { theta: 10_000.0, rotary_pairs: head_dim / 2, freq_scale: 1.0 };
    let rope_global = RopeConfig {
        theta: m.opt_f32("rope.freq_base")?.unwrap_or(1_000_000.0),
        rotary_pairs: head_dim / 2,
        freq_scale,
    };
    let layers = kinds
        .iter()
        .enumerate()
        .map(|(i, &kind)| {
            let full = kind == LayerKind::Full;
            LayerConfig {
                kind,
                head_dim,
                n_kv_heads: n_kv[i],
                k_eq_v: false,
                kv_source: None,
                mlp_inter: inter[i],
                rope: if full { rope_global } else { rope_local },
                window: (!full).then_some(sliding_window),
            }
        })
        .collect();
    // llama.cpp: query_pre_attn_scalar is head_dim, except hidden / heads on the 27B (62 layers).
    let scalar = if n == 62 && n_heads > 0 { hidden_size / n_heads } else { head_dim };
    let vocab_size = m.vocab_size()?;
    let (bos_token_id, eos_token_ids, pad_token_id) = m.special_ids()?;
    Ok(ModelConfig {
        arch: Arch::Gemma3,
        norm_plus_one: false,
        v_norm: false,
        vocab_size,
        hidden_size,
        n_heads,
        layers,
        rms_norm_eps: m.opt_f32("attention.layer_norm_rms_epsilon")?.unwrap_or(1e-6),
        sliding_window,
        final_logit_softcap: m.opt_f32("final_logit_softcapping")?,
        ple_dim: 0,
        ple_vocab_size: vocab_size,
        moe: None,
        attention_scale: (scalar.max(1) as f32).powf(-0.5),
        max_position_embeddings: m.opt_usize("context_length")?.unwrap_or(131_072),
        bos_token_id,
        eos_token_ids,
        pad_token_id,
    })
}
