//! `attention` and `kv_write`.

use crate::error::{bad_arg, check_len, numel, Result};

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

impl KvWriteArgs {
    /// The checks on the buffer lengths, the capacity and the positions.
    pub fn check(&self, k: usize, v: usize, cache_k: usize, cache_v: usize) -> Result<()> {
        const OP: &str = "kv_write";
        let new_len = numel(OP, &[self.tokens, self.kv_dim])?;
        let cache_len = numel(OP, &[self.capacity, self.kv_dim])?;
        check_len(OP, "k", k, new_len)?;
        check_len(OP, "v", v, new_len)?;
        check_len(OP, "cache_k", cache_k, cache_len)?;
        check_len(OP, "cache_v", cache_v, cache_len)?;
        if self.capacity == 0 && self.tokens > 0 {
            return Err(bad_arg(OP, "capacity is 0".into()));
        }
        if self.pos0.checked_add(self.tokens).is_none() {
            return Err(bad_arg(OP, format!("positions {}+{} overflow", self.pos0, self.tokens)));
        }
        Ok(())
    }
}

impl AttentionArgs {
    /// The checks on the head counts, the window, the positions and the buffer lengths; returns
    /// `tokens * n_heads * head_dim`.
    pub fn check(&self, q: usize, k: usize, v: usize, cache_k: usize, cache_v: usize, out: usize) -> Result<usize> {
        const OP: &str = "attention";
        let a = self;
        if a.n_kv_heads == 0 || a.n_heads < a.n_kv_heads || !a.n_heads.is_multiple_of(a.n_kv_heads) {
            return Err(bad_arg(
                OP,
                format!("n_heads {} is not a positive multiple of n_kv_heads {}", a.n_heads, a.n_kv_heads),
            ));
        }
        if a.window == Some(0) {
            return Err(bad_arg(OP, "window 0 hides every key".into()));
        }
        if a.pos0.checked_add(a.tokens).is_none() {
            return Err(bad_arg(OP, format!("positions {}+{} overflow", a.pos0, a.tokens)));
        }
        let past = a.pos0 - a.first_past();
        if past > a.capacity {
            return Err(bad_arg(OP, format!("needs {past} past positions, the cache holds {}", a.capacity)));
        }
        let q_len = numel(OP, &[a.tokens, a.n_heads, a.head_dim])?;
        let kv_len = numel(OP, &[a.tokens, a.n_kv_heads, a.head_dim])?;
        let cache_len = numel(OP, &[a.capacity, a.n_kv_heads, a.head_dim])?;
        check_len(OP, "q", q, q_len)?;
        check_len(OP, "k", k, kv_len)?;
        check_len(OP, "v", v, kv_len)?;
        check_len(OP, "cache_k", cache_k, cache_len)?;
        check_len(OP, "cache_v", cache_v, cache_len)?;
        check_len(OP, "out", out, q_len)?;
        Ok(q_len)
    }
}
