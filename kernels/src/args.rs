//! Typed arguments of every op, one struct per op. Shapes are in elements; all activation
//! buffers are f32, row-major, with the last dimension contiguous.
//!
//! The same structs are the parameters of the WGSL and CUDA kernels (mirrored there), so they
//! hold only plain numbers.

/// `out[t, j] = table[ids[t], col_offset + j] * scale` for `j < width`: token embedding and
/// per-layer-embedding (PLE) row gather. `table` is `[rows, row_len]`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EmbedArgs {
    /// Tokens (rows) in the call.
    pub tokens: usize,
    /// Columns gathered per row.
    pub width: usize,
    /// First gathered column of each table row (PLE: `layer * ple_dim`).
    pub col_offset: usize,
    /// Multiplier.
    pub scale: f32,
}

/// `out[m, n] = sum_k x[m, k] * w[n, k]`: a linear layer (`x W^T`), `w` stored `[n, k]`.
/// `m == 1` is the decode matvec; `m > 1` is the prefill GEMM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MatmulArgs {
    /// Rows of `x` and `out` (tokens).
    pub m: usize,
    /// Output features (rows of the weight).
    pub n: usize,
    /// Input features (columns of the weight).
    pub k: usize,
}

/// RMSNorm over each of `rows` rows of `dim`: `x * (mean(x^2) + eps)^-0.5 * w`, in f32. The weight
/// is used as-is (Gemma 4), not `1 + w`; without a weight it is the scale-free norm.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RmsNormArgs {
    /// Rows normalised independently.
    pub rows: usize,
    /// Elements per row.
    pub dim: usize,
    /// Added to the mean square.
    pub eps: f32,
}

/// Rotary position embedding in place, rotate-half layout (dim `i` pairs with `i + head_dim/2`).
/// Token `t` is at position `pos0 + t`. Pair `i < rotary_pairs` turns by
/// `pos * theta^(-2i / head_dim)`; pairs `rotary_pairs..head_dim/2` are left as they are.
/// Default RoPE: `rotary_pairs = head_dim / 2`; Gemma 4's proportional RoPE on full layers:
/// `rotary_pairs = partial_rotary_factor * head_dim / 2` (the exponent keeps the full head_dim).
/// Linear scaling multiplies every frequency by `freq_scale`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RopeArgs {
    /// Tokens (rows) in the call.
    pub tokens: usize,
    /// Heads per token.
    pub heads: usize,
    /// Elements per head.
    pub head_dim: usize,
    /// Dimension pairs that rotate (the rest pass through).
    pub rotary_pairs: usize,
    /// RoPE base.
    pub theta: f32,
    /// Position of the first token.
    pub pos0: usize,
    /// Multiplies every frequency: linear RoPE scaling (`1 / factor`, Gemma 3 4B+ global layers);
    /// 1.0 without scaling.
    pub freq_scale: f32,
}

/// Writes the keys and values of tokens at positions `pos0..pos0 + tokens` into a layer's cache,
/// slot `pos % capacity` (a ring when `capacity` is smaller than the context: sliding layers).
/// `k`, `v`: `[tokens, kv_dim]`; caches: `[capacity, kv_dim]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KvWriteArgs {
    /// Tokens (rows) in the call.
    pub tokens: usize,
    /// `n_kv_heads * head_dim`.
    pub kv_dim: usize,
    /// Position of the first token.
    pub pos0: usize,
    /// Slots in the cache ring.
    pub capacity: usize,
}

/// Causal attention of `tokens` queries at positions `pos0..pos0 + tokens`.
/// - `q`, `out`: `[tokens, n_heads, head_dim]`
/// - `k`, `v`: the new tokens' keys/values `[tokens, n_kv_heads, head_dim]`
/// - caches: `[capacity, n_kv_heads, head_dim]`, position `p < pos0` in slot `p % capacity`
///
/// The query at `p` sees keys `j <= p` with `j > p - window` when `window` is set (sliding layers:
/// `window` keys including itself); `j < pos0` come from the cache, the rest from `k`/`v`.
/// GQA: query head `h` uses KV head `h / (n_heads / n_kv_heads)`. Softmax in f32.
///
/// Run attention *before* [`KvWriteArgs`] writes this call's tokens: a ring of `window` slots
/// still holds every past key the call needs only until they are written. `window` must not be
/// `Some(0)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AttentionArgs {
    /// Tokens (rows) in the call.
    pub tokens: usize,
    /// Query heads.
    pub n_heads: usize,
    /// Key/value heads (GQA groups).
    pub n_kv_heads: usize,
    /// Elements per head.
    pub head_dim: usize,
    /// Position of the first token.
    pub pos0: usize,
    /// Slots in the cache ring.
    pub capacity: usize,
    /// Keys a query sees including itself (sliding layers); `None` = all.
    pub window: Option<usize>,
    /// Multiplier.
    pub scale: f32,
}

impl AttentionArgs {
    /// The first past (cached) position any query of this call reads.
    pub fn first_past(&self) -> usize {
        match self.window {
            Some(w) => self.pos0.saturating_sub(w.saturating_sub(1)),
            None => 0,
        }
    }
}

/// `out = gelu_tanh(gate) * up` elementwise over `rows x width` (GeGLU; also the PLE gate).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GegluArgs {
    /// Rows (tokens).
    pub rows: usize,
    /// Columns per row.
    pub width: usize,
}

/// `x = cap * tanh(x / cap)` over `len` elements (final logit softcap); `cap` must be positive.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SoftcapArgs {
    /// Elements.
    pub len: usize,
    /// Softcap value (30 for Gemma 4).
    pub cap: f32,
}

/// `x *= factor` over `len` elements (`layer_scalar`, the router's `H^-0.5`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScaleArgs {
    /// Elements.
    pub len: usize,
    /// Multiplier.
    pub factor: f32,
}

/// `acc = (acc + x) * scale` over `len` elements (MoE branch sum, PLE combine).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AddArgs {
    /// Elements.
    pub len: usize,
    /// Multiplier.
    pub scale: f32,
}

/// MoE router on precomputed scores `[tokens, n_experts]`: softmax (f32), top-k by probability
/// (descending; ties to the lower expert id), renormalise the k weights to sum 1, multiply each by
/// `per_expert_scale[e]`. Outputs `ids [tokens, top_k]` and `weights [tokens, top_k]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteArgs {
    /// Tokens (rows) in the call.
    pub tokens: usize,
    /// Experts in the layer.
    pub n_experts: usize,
    /// Experts chosen per token.
    pub top_k: usize,
}

/// Expert FFN over the selected experts only:
/// `out[t] = sum_j weights[t, j] * down[e] (gelu_tanh(g) * u)` with `e = ids[t, j]` and
/// `[g | u] = gate_up[e] x[t]`. `gate_up`: `[n_experts, 2 * inter, hidden]` (first `inter` rows
/// gate), `down`: `[n_experts, hidden, inter]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MoeArgs {
    /// Tokens (rows) in the call.
    pub tokens: usize,
    /// Model width.
    pub hidden: usize,
    /// Expert FFN width.
    pub inter: usize,
    /// Experts in the layer.
    pub n_experts: usize,
    /// Experts chosen per token.
    pub top_k: usize,
}

/// `dst[dst_offset..][..len] = src[src_offset..][..len]` (e.g. the last row of a prefill for the LM head).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CopyArgs {
    /// Elements.
    pub len: usize,
    /// First element read.
    pub src_offset: usize,
    /// First element written.
    pub dst_offset: usize,
}

/// Greedy choice per row of `[rows, len]` logits, written as two f32 per row: `out[2r]` = the
/// index of the largest value (ties to the lowest index; exact in f32 as `len < 2^24`) and
/// `out[2r + 1]` = its log-softmax, `-ln sum_i exp(x_i - max)`. A row holding NaN or +inf, or
/// nothing above -inf, has no choice: index `len`, log-probability NaN. What greedy decoding
/// needs from the logits, read back in one 8-byte copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArgmaxArgs {
    /// Rows (tokens).
    pub rows: usize,
    /// Values per row (the vocabulary).
    pub len: usize,
}
