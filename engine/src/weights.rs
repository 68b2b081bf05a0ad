//! The model's tensors by role, each checked against the config (name, dtype, shape) at load.
//!
//! [`Weights<W>`] is generic over the weight handle: the loader builds `Weights<HostTensor>`
//! (views into the memory-mapped checkpoint, nothing read yet), and [`Weights::map`] turns it into
//! `Weights<B::Weight>` for a backend (the CPU keeps the mapped bytes; a GPU uploads them). The PLE
//! table never becomes a backend weight: it stays in the map and only the current tokens' rows are
//! read. Vision/audio tensors and the unused K/V weights of KV-shared layers are ignored.

use crate::config::ModelConfig;
use crate::error::{Error, Result};
use crate::store::TensorStore;
use garnet_kernels::{DType, HostTensor};

/// Attention weights of a layer that computes its own keys and values.
#[derive(Debug)]
pub struct KvWeights<W> {
    /// `[kv_heads * head_dim, H]`.
    pub k_proj: W,
    /// `None` on K=V full layers: values are the raw `k_proj` output.
    pub v_proj: Option<W>,
    /// `[head_dim]`.
    pub k_norm: W,
}

/// The mixture-of-experts block.
#[derive(Debug)]
pub struct MoeWeights<W> {
    /// `[experts, H]`.
    pub router_proj: W,
    /// `[H]`, scales the router input.
    pub router_scale: W,
    /// `[experts]`.
    pub per_expert_scale: W,
    /// `[experts, 2 * inter, H]`: gate rows then up rows.
    pub gate_up: W,
    /// `[experts, H, inter]`.
    pub down: W,
    /// Norm of the experts' input.
    pub pre_norm_2: W,
    /// Norm of the dense MLP's output.
    pub post_norm_1: W,
    /// Norm of the experts' output.
    pub post_norm_2: W,
}

/// Per-layer-embedding weights of one layer.
#[derive(Debug)]
pub struct PleLayerWeights<W> {
    /// `[ple_dim, H]`.
    pub input_gate: W,
    /// `[H, ple_dim]`.
    pub projection: W,
    /// `[H]`.
    pub post_norm: W,
    /// This layer's rows of `per_layer_model_projection` ([ple_dim, hidden]).
    pub model_projection: W,
}

/// One decoder layer.
#[derive(Debug)]
pub struct LayerWeights<W> {
    /// `input_layernorm`.
    pub input_norm: W,
    /// `[heads * head_dim, H]`.
    pub q_proj: W,
    /// `[head_dim]`.
    pub q_norm: W,
    /// `None` on KV-shared layers.
    pub kv: Option<KvWeights<W>>,
    /// `[H, heads * head_dim]`.
    pub o_proj: W,
    /// `post_attention_layernorm`.
    pub post_attn_norm: W,
    /// `pre_feedforward_layernorm`.
    pub pre_ff_norm: W,
    /// `[inter, H]`.
    pub gate_proj: W,
    /// `[inter, H]`.
    pub up_proj: W,
    /// `[H, inter]`.
    pub down_proj: W,
    /// `post_feedforward_layernorm`.
    pub post_ff_norm: W,
    /// The MoE block, on MoE models.
    pub moe: Option<MoeWeights<W>>,
    /// Per-layer-embedding weights, on PLE models.
    pub ple: Option<PleLayerWeights<W>>,
    /// The layer's output multiplier, read once at load.
    pub layer_scalar: f32,
}

/// The whole decoder.
#[derive(Debug)]
pub struct Weights<W> {
    /// `[vocab, hidden]`: the input embedding and (tied) the LM head.
    pub embed: W,
    /// `norm` before the LM head.
    pub final_norm: W,
    /// `per_layer_projection_norm` (`[ple_dim]`) on PLE models.
    pub ple_norm: Option<W>,
    /// One entry per decoder layer.
    pub layers: Vec<LayerWeights<W>>,
}

/// Reads the checkpoint's tensors by role. Returns the weights and, on PLE models, the PLE table
/// (`[ple_vocab, layers * ple_dim]`, left in the map).
pub fn load(store: &TensorStore, cfg: &ModelConfig) -> Result<(Weights<HostTensor>, Option<HostTensor>)> {
    let p = prefix(store);
    let get = |name: &str, shape: &[usize]| store.get(&format!("{p}{name}"), shape);
    let (h, nh, v) = (cfg.hidden_size, cfg.n_heads, cfg.vocab_size);
    let (l_count, pd) = (cfg.n_layers(), cfg.ple_dim);

    let (ple_table, ple_proj) = if pd > 0 {
        let table = get("embed_tokens_per_layer.weight", &[cfg.ple_vocab_size, l_count * pd])?;
        (Some(table), Some(get("per_layer_model_projection.weight", &[l_count * pd, h])?))
    } else {
        (None, None)
    };

    let mut layers = Vec::with_capacity(l_count);
    for (i, lc) in cfg.layers.iter().enumerate() {
        let ln = |n: &str, shape: &[usize]| get(&format!("layers.{i}.{n}"), shape);
        let norm = |n: &str, shape: &[usize]| ln(n, shape).and_then(|t| norm_weight(cfg, t));
        let (hd, kvd) = (lc.head_dim, lc.n_kv_heads * lc.head_dim);
        let kv = match lc.kv_source {
            Some(_) => None,
            None => Some(KvWeights {
                k_proj: ln("self_attn.k_proj.weight", &[kvd, h])?,
                v_proj: if lc.k_eq_v { None } else { Some(ln("self_attn.v_proj.weight", &[kvd, h])?) },
                k_norm: norm("self_attn.k_norm.weight", &[hd])?,
            }),
        };
        let moe = match cfg.moe {
            None => None,
            Some(m) => Some(MoeWeights {
                router_proj: ln("router.proj.weight", &[m.n_experts, h])?,
                router_scale: ln("router.scale", &[h])?,
                per_expert_scale: ln("router.per_expert_scale", &[m.n_experts])?,
                gate_up: expert_gate_up(store, &format!("{p}layers.{i}.experts."), [m.n_experts, m.inter, h])?,
                down: ln("experts.down_proj", &[m.n_experts, h, m.inter])?,
                pre_norm_2: ln("pre_feedforward_layernorm_2.weight", &[h])?,
                post_norm_1: ln("post_feedforward_layernorm_1.weight", &[h])?,
                post_norm_2: ln("post_feedforward_layernorm_2.weight", &[h])?,
            }),
        };
        let ple = match &ple_proj {
            None => None,
            Some(proj) => Some(PleLayerWeights {
                input_gate: ln("per_layer_input_gate.weight", &[pd, h])?,
                projection: ln("per_layer_projection.weight", &[h, pd])?,
                post_norm: ln("post_per_layer_input_norm.weight", &[h])?,
                model_projection: proj.rows(i * pd, pd)?,
            }),
        };
        let scalar_name = format!("{p}layers.{i}.layer_scalar");
        let layer_scalar =
            if store.contains(&scalar_name) { get(&format!("layers.{i}.layer_scalar"), &[1])?.get(0) } else { 1.0 };
        if !layer_scalar.is_finite() {
            return Err(Error::Invalid(format!("{scalar_name} is not finite")));
        }
        layers.push(LayerWeights {
            input_norm: norm("input_layernorm.weight", &[h])?,
            q_proj: ln("self_attn.q_proj.weight", &[nh * hd, h])?,
            q_norm: norm("self_attn.q_norm.weight", &[hd])?,
            kv,
            o_proj: ln("self_attn.o_proj.weight", &[h, nh * hd])?,
            post_attn_norm: norm("post_attention_layernorm.weight", &[h])?,
            pre_ff_norm: norm("pre_feedforward_layernorm.weight", &[h])?,
            gate_proj: ln("mlp.gate_proj.weight", &[lc.mlp_inter, h])?,
            up_proj: ln("mlp.up_proj.weight", &[lc.mlp_inter, h])?,
            down_proj: ln("mlp.down_proj.weight", &[h, lc.mlp_inter])?,
            post_ff_norm: norm("post_feedforward_layernorm.weight", &[h])?,
            moe,
            ple,
            layer_scalar,
        });
    }
    let weights = Weights {
        embed: get("embed_tokens.weight", &[v, h])?,
        final_norm: norm_weight(cfg, get("norm.weight", &[h])?)?,
        ple_norm: if pd > 0 { Some(get("per_layer_projection_norm.weight", &[pd])?) } else { None },
        layers,
    };
    Ok((weights, ple_table))
}

/// The experts' fused `[E, 2I, H]` gate/up weight (`gate_up_proj`), or, from files that store
/// them apart (`gate_proj` and `up_proj`, `[E, I, H]` each: GGUF `ffn_gate_exps`/`ffn_up_exps`),
/// the two fused per expert. Rows are whole blocks in every format, so fusing is a byte copy; it
/// costs memory for the gate/up experts, which the fused layout avoids.
fn expert_gate_up(store: &TensorStore, prefix: &str, [e, inter, h]: [usize; 3]) -> Result<HostTensor> {
    let fused = format!("{prefix}gate_up_proj");
    let (gate_name, up_name) = (format!("{prefix}gate_proj"), format!("{prefix}up_proj"));
    if store.contains(&fused) || !(store.contains(&gate_name) && store.contains(&up_name)) {
        return store.get(&fused, &[e, 2 * inter, h]);
    }
    let (gate, up) = (store.get(&gate_name, &[e, inter, h])?, store.get(&up_name, &[e, inter, h])?);
    if gate.dtype() != up.dtype() {
        return Err(Error::DType { name: up_name, got: up.dtype().name().into(), want: gate.dtype().name().into() });
    }
    let half = gate.nbytes() / e.max(1);
    let mut bytes = Vec::with_capacity(2 * gate.nbytes());
    for (g, u) in gate.bytes().chunks_exact(half).zip(up.bytes().chunks_exact(half)) {
        bytes.extend_from_slice(g);
        bytes.extend_from_slice(u);
    }
    Ok(HostTensor::new(std::sync::Arc::new(bytes), 0, gate.dtype(), vec![e, 2 * inter, h])?)
}

/// A norm weight as the forward pass uses it: `1 + w` (in f32, as HF computes it) where the
/// checkpoint stores `w` (Gemma 3), else the mapped tensor itself.
fn norm_weight(cfg: &ModelConfig, t: HostTensor) -> Result<HostTensor> {
    if !cfg.norm_plus_one {
        return Ok(t);
    }
    let plus_one: Vec<f32> = t.to_f32_vec().iter().map(|w| 1.0 + w).collect();
    Ok(HostTensor::from_f32(&plus_one, t.shape().to_vec())?)
}

/// `model.language_model.` (released multimodal checkpoints) or `model.` (text-only saves).
fn prefix(store: &TensorStore) -> &'static str {
    if store.contains("model.language_model.embed_tokens.weight") {
        "model.language_model."
    } else {
        "model."
    }
}

/// Load-time quantization: the matrices (attention and MLP projections, experts, PLE projections,
/// the tied embedding that is also the LM head) become `target` blocks; norms, scales, the router
/// and the PLE table keep their dtype. Rows that are not whole blocks of `target` fall back to
/// Q8_0 (32-element blocks), else stay as they are; so do weights already block-quantized (GGUF).
/// This copies the quantized weights into memory: the mapped floats are no longer read.
pub fn quantize(w: &Weights<HostTensor>, target: DType) -> Result<Weights<HostTensor>> {
    if !target.is_quantized() {
        return Err(Error::Invalid(format!("--quant {} is not a block format", target.name())));
    }
    let q = |t: &HostTensor| -> Result<HostTensor> {
        let row = t.shape().last().copied().unwrap_or(0);
        let dtype = [target, DType::Q8_0].into_iter().find(|d| row % d.block().0 == 0);
        match dtype {
            Some(d) if !t.dtype().is_quantized() => {
                Ok(HostTensor::from_f32_as(&t.to_f32_vec(), t.shape().to_vec(), d)?)
            }
            _ => Ok(t.clone()),
        }
    };
    let mut out = w.map(&mut |t| Ok(t.clone()))?;
    out.embed = q(&w.embed)?;
    for (o, l) in out.layers.iter_mut().zip(&w.layers) {
        (o.q_proj, o.o_proj) = (q(&l.q_proj)?, q(&l.o_proj)?);
        (o.gate_proj, o.up_proj, o.down_proj) = (q(&l.gate_proj)?, q(&l.up_proj)?, q(&l.down_proj)?);
        if let (Some(okv), Some(kv)) = (o.kv.as_mut(), l.kv.as_ref()) {
            okv.k_proj = q(&kv.k_proj)?;
            okv.v_proj = kv.v_proj.as_ref().map(q).transpose()?;
        }
        if let (Some(om), Some(m)) = (o.moe.as_mut(), l.moe.as_ref()) {
            (om.gate_up, om.down) = (q(&m.gate_up)?, q(&m.down)?);
        }
        if let (Some(op), Some(p)) = (o.ple.as_mut(), l.ple.as_ref()) {
            (op.input_gate, op.projection) = (q(&p.input_gate)?, q(&p.projection)?);
            op.model_projection = q(&p.model_projection)?;
        }
    }
    Ok(out)
}

impl<W> Weights<W> {
    /// The same weights with every handle converted by `f` (e.g. made resident on a backend).
    pub fn map<U>(&self, f: &mut impl FnMut(&W) -> Result<U>) -> Result<Weights<U>> {
        Ok(Weights {
            embed: f(&self.embed)?,
            final_norm: f(&self.final_norm)?,
            ple_norm: self.ple_norm.as_ref().map(&mut *f).transpose()?,
            layers: self.layers.iter().map(|l| l.map(f)).collect::<Result<_>>()?,
        })
    }

    /// Every handle, in a fixed order (for counting bytes and parameters).
    pub fn for_each(&self, f: &mut impl FnMut(&W)) {
        // `map` visits every handle exactly once; reuse it rather than listing the fields twice.
        let _ = self.map(&mut |w| {
            f(w);
            Ok(())
        });
    }
}

impl<W> LayerWeights<W> {
    fn map<U>(&self, f: &mut impl FnMut(&W) -> Result<U>) -> Result<LayerWeights<U>> {
        Ok(LayerWeights {
            input_norm: f(&self.input_norm)?,
            q_proj: f(&self.q_proj)?,
            q_norm: f(&self.q_norm)?,
            kv: match &self.kv {
                None => None,
                Some(kv) => Some(KvWeights {
                    k_proj: f(&kv.k_proj)?,
                    v_proj: kv.v_proj.as_ref().map(&mut *f).transpose()?,
                    k_norm: f(&kv.k_norm)?,
                }),
            },
            o_proj: f(&self.o_proj)?,
            post_attn_norm: f(&self.post_attn_norm)?,
            pre_ff_norm: f(&self.pre_ff_norm)?,
            gate_proj: f(&self.gate_proj)?,
            up_proj: f(&self.up_proj)?,
            down_proj: f(&self.down_proj)?,
            post_ff_norm: f(&self.post_ff_norm)?,
            moe: match &self.moe {
                None => None,
                Some(m) => Some(MoeWeights {
                    router_proj: f(&m.router_proj)?,
                    router_scale: f(&m.router_scale)?,
                    per_expert_scale: f(&m.per_expert_scale)?,
                    gate_up: f(&m.gate_up)?,
                    down: f(&m.down)?,
                    pre_norm_2: f(&m.pre_norm_2)?,
                    post_norm_1: f(&m.post_norm_1)?,
                    post_norm_2: f(&m.post_norm_2)?,
                }),
            },
            ple: match &self.ple {
                None => None,
                Some(p) => Some(PleLayerWeights {
                    input_gate: f(&p.input_gate)?,
                    projection: f(&p.projection)?,
                    post_norm: f(&p.post_norm)?,
                    model_projection: f(&p.model_projection)?,
                }),
            },
            layer_scalar: self.layer_scalar,
        })
    }
}
