//! The Gemma 4 forward pass over any [`Backend`]: token ids in, logits out.
//!
//! One call runs a chunk of `t` tokens at positions `pos0..pos0 + t` as matrices `[t, hidden]`
//! (prefill) or a single token (decode): the same code for both. Per layer (docs/GEMMA4.md):
//!
//! ```text
//! h = embed(ids) * sqrt(H)                    ple[l] = (norm(h W_l) + E_ple[ids, l]) / sqrt 2
//! for each layer:
//!   x = norm(h)            q = rope(norm(x Wq))     k = rope(norm(x Wk))    v = norm0(x Wv | x Wk)
//!   h += norm(attention(q, cache + k, v) Wo)
//!   x = norm(h)            m = down(gelu(x Wg) * x Wu)     [+ MoE branch on 26B-A4B]
//!   h += norm(m)
//!   h += norm(W_proj(gelu(h W_gate) * ple[l]))   [PLE models]
//!   h *= layer_scalar
//! logits = softcap(norm(h) E^T)
//! ```
//! KV-shared layers attend over their source layer's cache and new K/V; the source's cache write
//! is deferred to the end of the chunk so that, in a ring, no position they need is overwritten.

use crate::config::{LayerConfig, LayerKind, ModelConfig};
use crate::error::Result;
use crate::kv::KvCache;
use crate::weights::{LayerWeights, Weights};
use garnet_kernels::*;
use std::sync::Arc;

/// Which rows of logits a forward returns (the LM head runs only for those).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Logits {
    /// Only the last token's (generation).
    Last,
    /// Every token's (verification).
    All,
    /// The rows of tokens `i..` (perplexity scores the second half of a window).
    From(usize),
}

impl Logits {
    /// The first row returned for `n` tokens.
    fn first(self, n: usize) -> usize {
        match self {
            Logits::Last => n.saturating_sub(1),
            Logits::All => 0,
            Logits::From(i) => i.min(n.saturating_sub(1)),
        }
    }

    /// The same rows when `k` tokens are run in front of them.
    pub fn shifted(self, k: usize) -> Logits {
        match self {
            Logits::Last => Logits::Last,
            Logits::All => Logits::From(k),
            Logits::From(i) => Logits::From(i + k),
        }
    }
}

/// A loaded model on a backend.
pub struct Model<B: Backend> {
    /// The resolved configuration.
    pub cfg: ModelConfig,
    /// The backend holding the weights.
    pub backend: B,
    w: Weights<B::Weight>,
    /// `[ple_vocab, layers * ple_dim]`, left in the memory map.
    ple_table: Option<HostTensor>,
    embed_scale: f32,
    ple_scale: f32,
}

/// Per-session state behind [`Forward`]: the KV cache, scratch buffers, the position.
pub struct State<B: Backend> {
    model: Arc<Model<B>>,
    cache: KvCache<B>,
    s: Scratch<B>,
    pos: usize,
}

/// A session's forward pass with the backend type erased (what `Session` holds).
pub trait Forward: Send {
    /// Runs `ids` at the current position and advances it; returns `[rows, vocab]` logits.
    /// The caller has checked the ids and the context.
    fn forward(&mut self, ids: &[u32], want: Logits) -> Result<Vec<f32>>;
    /// Runs one token at the current position and advances it; returns the greedy next id and
    /// its log-probability, chosen on the device (no logits read back).
    fn step_greedy(&mut self, id: u32) -> Result<(u32, f32)>;
    /// Tokens consumed so far.
    fn position(&self) -> usize;
    /// Forgets the context (the cache is overwritten from position 0 on).
    fn reset(&mut self);
}

/// A model with the backend type erased (what `Engine` holds).
pub trait Runner: Send + Sync {
    /// The model's configuration.
    fn config(&self) -> &ModelConfig;
    /// The backend's name.
    fn backend_name(&self) -> &'static str;
    /// The backend's work counters (dispatches, host syncs; zero on the CPU).
    fn stats(&self) -> DeviceStats;
    /// Starts per-op device timing; false when the backend has no timestamp queries.
    fn enable_profiling(&self) -> bool;
    /// Device time per op since profiling started.
    fn profile(&self) -> OpTimes;
    /// Calls per op that ran through the host fallback (only ops with calls).
    fn fallback_calls(&self) -> Vec<(Op, u64)>;
    /// A fresh session state for `context` positions, running prompts in chunks of `chunk`.
    fn new_state(self: Arc<Self>, context: usize, chunk: usize) -> Result<Box<dyn Forward>>;
}

impl<B: Backend> Model<B> {
    /// Makes the weights resident on `backend`. `reference` selects HF's f32 semantics for the
    /// embedding scales (sqrt(H) kept in f32) instead of rounding them to the weight dtype as the
    /// model runs natively in bf16 (sqrt(1536) -> 39.25).
    pub fn new(
        cfg: ModelConfig,
        backend: B,
        host: &Weights<HostTensor>,
        ple_table: Option<HostTensor>,
        reference: bool,
        progress: &mut dyn FnMut(usize),
    ) -> Result<Self> {
        let round = |x: f32, t: &HostTensor| if reference { x } else { t.dtype().round(x) };
        let embed_scale = round((cfg.hidden_size as f64).sqrt() as f32, &host.embed);
        let ple_scale = ple_table.as_ref().map_or(1.0, |t| round((cfg.ple_dim as f64).sqrt() as f32, t));
        let w = host.map(&mut |t| {
            progress(t.nbytes());
            Ok(backend.weight(t)?)
        })?;
        Ok(Model { cfg, backend, w, ple_table, embed_scale, ple_scale })
    }

    fn norm(&self, rows: usize, dim: usize) -> RmsNormArgs {
        RmsNormArgs { rows, dim, eps: self.cfg.rms_norm_eps }
    }

    /// One chunk: embeddings, every layer, then the LM head for rows `first_row..` if asked.
    fn forward_chunk(&self, st: &mut State<B>, ids: &[u32], first_row: Option<usize>) -> Result<Vec<f32>> {
        self.decoder(st, ids)?;
        match first_row {
            Some(first) => self.lm_head(ids.len(), first, &mut st.s),
            None => Ok(Vec::new()),
        }
    }

    /// One token through the decoder, then the greedy choice on the device: reads back the
    /// chosen id and its log-probability (8 bytes), not the vocabulary's logits.
    fn greedy_step(&self, st: &mut State<B>, id: u32) -> Result<(u32, f32)> {
        self.decoder(st, &[id])?;
        let s = &mut st.s;
        self.logits_on_device(1, 0, s)?;
        let b = &self.backend;
        b.argmax(&ArgmaxArgs { rows: 1, len: self.cfg.vocab_size }, &s.logits, &mut s.picked)?;
        let mut picked = [0.0f32; 2];
        b.download(&s.picked, 0, &mut picked)?;
        // The argmax kernels return id = vocab for a NaN or +inf (or nothing above -inf), and a
        // NaN anywhere else makes the log-sum-exp, hence the log-probability, non-finite.
        if picked[0] >= self.cfg.vocab_size as f32 || !picked[1].is_finite() {
            return Err(crate::Error::NonFinite(format!(
                "greedy step: id {}, log-probability {}",
                picked[0], picked[1]
            )));
        }
        Ok((picked[0] as u32, picked[1]))
    }

    /// The decoder stack over `ids` at the session's position: embeddings, every layer, the KV
    /// writes; the final hidden states are left in the scratch's `h`.
    fn decoder(&self, st: &mut State<B>, ids: &[u32]) -> Result<()> {
        let (b, c, t, h) = (&self.backend, &self.cfg, ids.len(), self.cfg.hidden_size);
        st.s.ensure(b, c, t)?;
        let s = &mut st.s;
        b.upload_ids(ids, &mut s.ids)?;
        b.embed(
            &EmbedArgs { tokens: t, width: h, col_offset: 0, scale: self.embed_scale },
            &self.w.embed,
            &s.ids,
            &mut s.h,
        )?;
        if let Some(table) = &self.ple_table {
            self.per_layer_inputs(table, ids, s)?;
        }
        for (i, (lc, lw)) in c.layers.iter().zip(&self.w.layers).enumerate() {
            self.attention_block(i, lc, lw, st.pos, t, s, &mut st.cache)?;
            self.ffn_block(lc, lw, t, s)?;
            if let Some(p) = &lw.ple {
                b.matmul(&MatmulArgs { m: t, n: c.ple_dim, k: h }, &s.h, &p.input_gate, &mut s.ple_gate)?;
                b.geglu(&GegluArgs { rows: t, width: c.ple_dim }, &s.ple_gate, &s.ple[i], &mut s.ple_act)?;
                b.matmul(&MatmulArgs { m: t, n: h, k: c.ple_dim }, &s.ple_act, &p.projection, &mut s.o)?;
                b.add_rms_norm(&self.norm(t, h), &s.o, &p.post_norm, &mut s.h)?;
            }
            if lw.layer_scalar != 1.0 {
                b.scale(&ScaleArgs { len: t * h, factor: lw.layer_scalar }, &mut s.h)?;
            }
        }
        // The KV sources' writes were held back for the shared layers; the chunk is done now.
        for (i, lc) in c.layers.iter().enumerate() {
            if let Some(slot) = s.sources[i] {
                let (k, v) = &s.keep[slot];
                write_cache(b, lc, st.pos, t, k, v, &mut st.cache, i)?;
            }
        }
        Ok(())
    }

    /// PLE: `ple[l] = (RMSNorm(h0 W_l * H^-0.5) + E_ple[ids, l] * sqrt(P)) * 2^-0.5` per layer.
    fn per_layer_inputs(&self, table: &HostTensor, ids: &[u32], s: &mut Scratch<B>) -> Result<()> {
        let (b, c, t) = (&self.backend, &self.cfg, ids.len());
        let (h, pd) = (c.hidden_size, c.ple_dim);
        let ple_norm = self.w.ple_norm.as_ref();
        for (l, lw) in self.w.layers.iter().enumerate() {
            let Some(p) = &lw.ple else { continue };
            let proj = &mut s.ple_gate;
            b.matmul(&MatmulArgs { m: t, n: pd, k: h }, &s.h, &p.model_projection, proj)?;
            b.scale(&ScaleArgs { len: t * pd, factor: (h as f32).powf(-0.5) }, proj)?;
            b.rms_norm(&self.norm(t, pd), proj, ple_norm, &mut s.ple[l])?;
            let gather = EmbedArgs { tokens: t, width: pd, col_offset: l * pd, scale: self.ple_scale };
            b.embed_host(&gather, table, ids, &mut s.ple_act)?;
            b.add(&AddArgs { len: t * pd, scale: std::f32::consts::FRAC_1_SQRT_2 }, &s.ple_act, &mut s.ple[l])?;
        }
        Ok(())
    }

    /// `h += RMSNorm(o_proj(attention(q, k, v)))`, writing this layer's K/V to the cache.
    #[allow(clippy::too_many_arguments)]
    fn attention_block(
        &self,
        i: usize,
        lc: &LayerConfig,
        lw: &LayerWeights<B::Weight>,
        pos0: usize,
        t: usize,
        s: &mut Scratch<B>,
        cache: &mut KvCache<B>,
    ) -> Result<()> {
        let (b, c) = (&self.backend, &self.cfg);
        let (h, nh, hd, nkv) = (c.hidden_size, c.n_heads, lc.head_dim, lc.n_kv_heads);
        let rope = |heads| RopeArgs {
            tokens: t,
            heads,
            head_dim: hd,
            rotary_pairs: lc.rope.rotary_pairs,
            theta: lc.rope.theta,
            pos0,
            freq_scale: lc.rope.freq_scale,
        };
        b.rms_norm(&self.norm(t, h), &s.h, Some(&lw.input_norm), &mut s.x)?;
        b.matmul(&MatmulArgs { m: t, n: nh * hd, k: h }, &s.x, &lw.q_proj, &mut s.raw)?;
        b.rms_norm(&self.norm(t * nh, hd), &s.raw, Some(&lw.q_norm), &mut s.q)?;
        b.rope(&rope(nh), &mut s.q)?;

        let source_slot = s.sources[i];
        if let Some(kv) = &lw.kv {
            let mm = MatmulArgs { m: t, n: nkv * hd, k: h };
            b.matmul(&mm, &s.x, &kv.k_proj, &mut s.raw)?;
            b.rms_norm(&self.norm(t * nkv, hd), &s.raw, Some(&kv.k_norm), &mut s.k)?;
            b.rope(&rope(nkv), &mut s.k)?;
            if let Some(v_proj) = &kv.v_proj {
                b.matmul(&mm, &s.x, v_proj, &mut s.raw)?;
            } // else K=V: values are the raw k_proj output still in `raw`
            if c.v_norm {
                b.rms_norm(&self.norm(t * nkv, hd), &s.raw, None, &mut s.v)?;
            } else {
                b.copy(&CopyArgs { len: t * nkv * hd, src_offset: 0, dst_offset: 0 }, &s.raw, &mut s.v)?;
            }
            if let Some(slot) = source_slot {
                let keep = &mut s.keep[slot];
                std::mem::swap(&mut s.k, &mut keep.0);
                std::mem::swap(&mut s.v, &mut keep.1);
            }
        }
        let (k, v) = match (lc.kv_source, source_slot) {
            (None, None) => (&s.k, &s.v),
            _ => {
                let (k, v) = &s.keep[kind_slot(lc.kind)];
                (k, v)
            }
        };
        let lcache = cache.layers[lc.kv_source.unwrap_or(i)]
            .as_ref()
            .ok_or_else(|| crate::Error::Invalid(format!("layer {i}: KV source has no cache")))?;
        let args = AttentionArgs {
            tokens: t,
            n_heads: nh,
            n_kv_heads: nkv,
            head_dim: hd,
            pos0,
            capacity: lcache.capacity,
            window: lc.window,
            scale: c.attention_scale,
        };
        b.attention(&args, &s.q, k, v, &lcache.k, &lcache.v, &mut s.attn)?;
        if lc.kv_source.is_none() && source_slot.is_none() {
            write_cache(b, lc, pos0, t, &s.k, &s.v, cache, i)?;
        }
        b.matmul(&MatmulArgs { m: t, n: h, k: nh * hd }, &s.attn, &lw.o_proj, &mut s.o)?;
        b.add_rms_norm(&self.norm(t, h), &s.o, &lw.post_attn_norm, &mut s.h)?;
        Ok(())
    }

    /// `h += RMSNorm(MLP(x) [+ MoE(x)])` with `x = RMSNorm(h)`.
    fn ffn_block(&self, lc: &LayerConfig, lw: &LayerWeights<B::Weight>, t: usize, s: &mut Scratch<B>) -> Result<()> {
        let (b, c) = (&self.backend, &self.cfg);
        let (h, inter) = (c.hidden_size, lc.mlp_inter);
        b.rms_norm(&self.norm(t, h), &s.h, Some(&lw.pre_ff_norm), &mut s.x)?;
        b.matmul(&MatmulArgs { m: t, n: inter, k: h }, &s.x, &lw.gate_proj, &mut s.gate)?;
        b.matmul(&MatmulArgs { m: t, n: inter, k: h }, &s.x, &lw.up_proj, &mut s.up)?;
        b.geglu(&GegluArgs { rows: t, width: inter }, &s.gate, &s.up, &mut s.act)?;
        b.matmul(&MatmulArgs { m: t, n: h, k: inter }, &s.act, &lw.down_proj, &mut s.m)?;
        let Some(moe) = &lw.moe else {
            return b.add_rms_norm(&self.norm(t, h), &s.m, &lw.post_ff_norm, &mut s.h).map_err(Into::into);
        };
        let mc = c.moe.ok_or_else(|| crate::Error::Invalid("MoE weights without MoE config".into()))?;
        // m = RMSNorm(dense, post_1) + RMSNorm(experts(RMSNorm(h, pre_2)), post_2)
        b.rms_norm(&self.norm(t, h), &s.m, Some(&moe.post_norm_1), &mut s.m1)?;
        // The router reads the residual h: RMSNorm_noscale(h) * scale * H^-0.5.
        b.rms_norm(&self.norm(t, h), &s.h, Some(&moe.router_scale), &mut s.x)?;
        b.scale(&ScaleArgs { len: t * h, factor: (h as f32).powf(-0.5) }, &mut s.x)?;
        b.matmul(&MatmulArgs { m: t, n: mc.n_experts, k: h }, &s.x, &moe.router_proj, &mut s.scores)?;
        let route = RouteArgs { tokens: t, n_experts: mc.n_experts, top_k: mc.top_k };
        b.moe_route(&route, &s.scores, &moe.per_expert_scale, &mut s.expert_ids, &mut s.expert_w)?;
        b.rms_norm(&self.norm(t, h), &s.h, Some(&moe.pre_norm_2), &mut s.x)?;
        let args = MoeArgs { tokens: t, hidden: h, inter: mc.inter, n_experts: mc.n_experts, top_k: mc.top_k };
        b.moe_experts(&args, &s.x, &moe.gate_up, &moe.down, &s.expert_ids, &s.expert_w, &mut s.m)?;
        b.rms_norm(&self.norm(t, h), &s.m, Some(&moe.post_norm_2), &mut s.o)?;
        b.add(&AddArgs { len: t * h, scale: 1.0 }, &s.o, &mut s.m1)?;
        b.add_rms_norm(&self.norm(t, h), &s.m1, &lw.post_ff_norm, &mut s.h)?;
        Ok(())
    }

    /// `softcap(RMSNorm(h) E^T)` for rows `first..t`, downloaded to the host.
    fn lm_head(&self, t: usize, first: usize, s: &mut Scratch<B>) -> Result<Vec<f32>> {
        self.logits_on_device(t, first, s)?;
        let mut out = vec![0.0; (t - first) * self.cfg.vocab_size];
        self.backend.download(&s.logits, 0, &mut out)?;
        Ok(out)
    }

    /// `softcap(RMSNorm(h) E^T)` for rows `first..t` into the scratch's `logits`.
    fn logits_on_device(&self, t: usize, first: usize, s: &mut Scratch<B>) -> Result<()> {
        let (b, c, h, v) = (&self.backend, &self.cfg, self.cfg.hidden_size, self.cfg.vocab_size);
        let rows = t - first;
        let src = if first == 0 {
            &s.h
        } else {
            b.copy(&CopyArgs { len: rows * h, src_offset: first * h, dst_offset: 0 }, &s.h, &mut s.o)?;
            &s.o
        };
        b.rms_norm(&self.norm(rows, h), src, Some(&self.w.final_norm), &mut s.x)?;
        if b.buf_len(&s.logits) < rows * v {
            s.logits = b.alloc(rows * v)?;
        }
        b.matmul(&MatmulArgs { m: rows, n: v, k: h }, &s.x, &self.w.embed, &mut s.logits)?;
        if let Some(cap) = c.final_logit_softcap {
            b.softcap(&SoftcapArgs { len: rows * v, cap }, &mut s.logits)?;
        }
        Ok(())
    }
}

#[allow(clippy::too_many_arguments)]
fn write_cache<B: Backend>(
    b: &B,
    lc: &LayerConfig,
    pos0: usize,
    t: usize,
    k: &B::Buf,
    v: &B::Buf,
    cache: &mut KvCache<B>,
    layer: usize,
) -> Result<()> {
    let Some(lcache) = cache.layers[layer].as_mut() else {
        return Ok(());
    };
    let args = KvWriteArgs { tokens: t, kv_dim: lc.n_kv_heads * lc.head_dim, pos0, capacity: lcache.capacity };
    b.kv_write(&args, k, v, &mut lcache.k, &mut lcache.v)?;
    Ok(())
}

fn kind_slot(kind: LayerKind) -> usize {
    match kind {
        LayerKind::Sliding => 0,
        LayerKind::Full => 1,
    }
}

/// Activation buffers for chunks of up to `tokens` tokens, reused across calls.
struct Scratch<B: Backend> {
    tokens: usize,
    ids: B::Ids,
    h: B::Buf,
    x: B::Buf,
    raw: B::Buf,
    q: B::Buf,
    k: B::Buf,
    v: B::Buf,
    attn: B::Buf,
    o: B::Buf,
    gate: B::Buf,
    up: B::Buf,
    act: B::Buf,
    m: B::Buf,
    m1: B::Buf,
    scores: B::Buf,
    expert_ids: B::Ids,
    expert_w: B::Buf,
    ple: Vec<B::Buf>,
    ple_gate: B::Buf,
    ple_act: B::Buf,
    /// K/V of the last non-shared layer of each kind (sliding, full) that shared layers read.
    keep: [(B::Buf, B::Buf); 2],
    /// Which layers are KV sources (their index in `keep`).
    sources: Vec<Option<usize>>,
    logits: B::Buf,
    /// The greedy choice of a decode step: (id as f32, log-probability).
    picked: B::Buf,
}

/// Per-token widths of the scratch buffers: hidden, query, key/value, MLP, experts, experts per
/// token, PLE (each at most 2^26 after `ModelConfig::validate`).
fn widths(c: &ModelConfig) -> [usize; 7] {
    let q = c.layers.iter().map(|l| c.n_heads * l.head_dim).max().unwrap_or(0);
    let kv = c.layers.iter().map(|l| l.n_kv_heads * l.head_dim).max().unwrap_or(0);
    let inter = c.layers.iter().map(|l| l.mlp_inter).max().unwrap_or(0);
    let (e, k) = c.moe.map_or((0, 0), |m| (m.n_experts, m.top_k));
    [c.hidden_size, q, kv, inter, e, k, c.ple_dim]
}

/// Bytes [`Scratch::new`] allocates for chunks of `tokens` (ids counted as 4 bytes), or `None` if
/// that overflows: checked before a session allocates.
pub(crate) fn scratch_bytes(c: &ModelConfig, tokens: usize) -> Option<usize> {
    let [h, q, kv, inter, e, k, pd] = widths(c);
    let ple_bufs = if pd > 0 { c.n_layers() + 2 } else { 2 };
    // The logits grow to a row per token when every row is asked for.
    let per_token = 5 * h + q.max(kv) + 2 * q + 6 * kv + 3 * inter.max(1) + e.max(1) + 2 * k.max(1) + 1;
    let per_token = per_token.checked_add(c.vocab_size)?;
    let per_token = per_token.checked_add(ple_bufs.checked_mul(pd.max(1))?)?;
    tokens.checked_mul(per_token)?.checked_add(2)?.checked_mul(4)
}

impl<B: Backend> Scratch<B> {
    fn new(b: &B, c: &ModelConfig, tokens: usize) -> Result<Self> {
        let t = tokens;
        let [h, q, kv, inter, e, k, pd] = widths(c);
        let buf = |n: usize| b.alloc(t * n.max(1));
        let mut sources = vec![None; c.n_layers()];
        for l in &c.layers {
            if let Some(src) = l.kv_source {
                sources[src] = Some(kind_slot(c.layers[src].kind));
            }
        }
        Ok(Scratch {
            tokens,
            ids: b.alloc_ids(t)?,
            h: buf(h)?,
            x: buf(h)?,
            raw: buf(q.max(kv))?,
            q: buf(q)?,
            k: buf(kv)?,
            v: buf(kv)?,
            attn: buf(q)?,
            o: buf(h)?,
            gate: buf(inter)?,
            up: buf(inter)?,
            act: buf(inter)?,
            m: buf(h)?,
            m1: buf(h)?,
            scores: buf(e)?,
            expert_ids: b.alloc_ids(t * k.max(1))?,
            expert_w: buf(k)?,
            ple: (0..if pd > 0 { c.n_layers() } else { 0 }).map(|_| buf(pd)).collect::<Result<_, _>>()?,
            ple_gate: buf(pd)?,
            ple_act: buf(pd)?,
            keep: [(buf(kv)?, buf(kv)?), (buf(kv)?, buf(kv)?)],
            sources,
            logits: b.alloc(c.vocab_size)?,
            picked: b.alloc(2)?,
        })
    }

    /// Grows the buffers when a chunk is longer than any before.
    fn ensure(&mut self, b: &B, c: &ModelConfig, tokens: usize) -> Result<()> {
        if tokens > self.tokens {
            *self = Scratch::new(b, c, tokens)?;
        }
        Ok(())
    }
}

impl<B: Backend> Forward for State<B> {
    fn forward(&mut self, ids: &[u32], want: Logits) -> Result<Vec<f32>> {
        // The whole pass runs on a rayon worker: the kernels' parallel loops then start from
        // inside the pool (the caller joins the work) instead of each waking the pool from
        // outside through a lock and a condition variable (~15 us per op, 100+ ops per token).
        rayon::scope(|_| self.forward_in_pool(ids, want))
    }

    fn step_greedy(&mut self, id: u32) -> Result<(u32, f32)> {
        let model = self.model.clone();
        let out = rayon::scope(|_| model.greedy_step(self, id))?;
        self.pos += 1;
        Ok(out)
    }

    fn position(&self) -> usize {
        self.pos
    }

    fn reset(&mut self) {
        self.pos = 0;
    }
}

impl<B: Backend> State<B> {
    fn forward_in_pool(&mut self, ids: &[u32], want: Logits) -> Result<Vec<f32>> {
        let model = self.model.clone();
        let chunk = self.s.tokens.max(1);
        let first = want.first(ids.len());
        let mut out = Vec::new();
        for (n, part) in ids.chunks(chunk).enumerate() {
            // Chunks before the first wanted row only fill the cache: no LM head for them.
            let (start, end) = (n * chunk, n * chunk + part.len());
            let rows = (first < end).then(|| first.saturating_sub(start));
            out.extend(model.forward_chunk(self, part, rows)?);
            self.pos += part.len();
        }
        Ok(out)
    }
}

impl<B: Backend> Runner for Model<B> {
    fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    fn backend_name(&self) -> &'static str {
        self.backend.name()
    }

    fn stats(&self) -> DeviceStats {
        self.backend.stats()
    }

    fn enable_profiling(&self) -> bool {
        self.backend.enable_profiling()
    }

    fn profile(&self) -> OpTimes {
        self.backend.profile()
    }

    fn fallback_calls(&self) -> Vec<(Op, u64)> {
        self.backend.fallback_calls()
    }

    fn new_state(self: Arc<Self>, context: usize, chunk: usize) -> Result<Box<dyn Forward>> {
        let cache = KvCache::new(&self.backend, &self.cfg, context)?;
        let s = Scratch::new(&self.backend, &self.cfg, chunk.max(1))?;
        Ok(Box::new(State { model: self, cache, s, pos: 0 }))
    }
}
