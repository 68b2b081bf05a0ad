//! KV cache write and causal GQA attention, reference version (see [`KvWriteArgs`],
//! [`AttentionArgs`]).
//!
//! Layout: `q`, `out` `[tokens, n_heads, head_dim]`; new `k`, `v` `[tokens, n_kv_heads, head_dim]`;
//! caches `[capacity, n_kv_heads, head_dim]`, position `p` in slot `p % capacity` (a ring on
//! sliding layers). All f32.
//!
//! The query at position `p` sees keys `j <= p` (and `j > p - window` when `window` is set); key
//! `j < pos0` comes from the cache, `j >= pos0` from the new `k`/`v`. For each query head:
//! `scores = scale * q.k` over exactly the visible keys, softmax in f32 with max subtraction,
//! `out = sum_j prob_j * v_j` in key order. Query heads run in parallel (rayon); each output row
//! is computed by the same sequential loops, so results do not depend on the thread count.

use super::elementwise::softmax;
use super::matmul::dot;
use super::{bad_arg, numel};
use crate::args::{AttentionArgs, KvWriteArgs};
use crate::error::{check_len, Result};
use rayon::prelude::*;

/// The argument checks of `kv_write` on the buffer lengths (shared with the fast and WGSL backends).
pub(crate) fn validate_kv_write(a: &KvWriteArgs, k: usize, v: usize, cache_k: usize, cache_v: usize) -> Result<()> {
    const OP: &str = "kv_write";
    let new_len = numel(OP, &[a.tokens, a.kv_dim])?;
    let cache_len = numel(OP, &[a.capacity, a.kv_dim])?;
    check_len(OP, "k", k, new_len)?;
    check_len(OP, "v", v, new_len)?;
    check_len(OP, "cache_k", cache_k, cache_len)?;
    check_len(OP, "cache_v", cache_v, cache_len)?;
    if a.capacity == 0 && a.tokens > 0 {
        return Err(bad_arg(OP, "capacity is 0".into()));
    }
    if a.pos0.checked_add(a.tokens).is_none() {
        return Err(bad_arg(OP, format!("positions {}+{} overflow", a.pos0, a.tokens)));
    }
    Ok(())
}

/// Copies the keys and values of positions `pos0..pos0 + tokens` into slots `pos % capacity`, in
/// position order (with `tokens > capacity` the last `capacity` tokens remain).
pub(crate) fn kv_write(a: &KvWriteArgs, k: &[f32], v: &[f32], cache_k: &mut [f32], cache_v: &mut [f32]) -> Result<()> {
    validate_kv_write(a, k.len(), v.len(), cache_k.len(), cache_v.len())?;
    for (src, cache) in [(k, cache_k), (v, cache_v)] {
        for t in 0..a.tokens {
            let slot = (a.pos0 + t) % a.capacity;
            cache[slot * a.kv_dim..(slot + 1) * a.kv_dim].copy_from_slice(&src[t * a.kv_dim..(t + 1) * a.kv_dim]);
        }
    }
    Ok(())
}

/// Where the keys and values of every visible position live.
struct Keys<'a> {
    k: &'a [f32],
    v: &'a [f32],
    cache_k: &'a [f32],
    cache_v: &'a [f32],
    pos0: usize,
    capacity: usize,
    n_kv_heads: usize,
    head_dim: usize,
}

impl Keys<'_> {
    /// The key and value rows of KV head `kv_head` at position `p`.
    fn at(&self, p: usize, kv_head: usize) -> (&[f32], &[f32]) {
        let (k, v, row) = if p < self.pos0 {
            (self.cache_k, self.cache_v, p % self.capacity)
        } else {
            (self.k, self.v, p - self.pos0)
        };
        let start = (row * self.n_kv_heads + kv_head) * self.head_dim;
        let span = start..start + self.head_dim;
        (&k[span.clone()], &v[span])
    }
}

/// Attention of `tokens` queries at positions `pos0..pos0 + tokens` into `out`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn attention(
    a: &AttentionArgs,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    cache_k: &[f32],
    cache_v: &[f32],
    out: &mut [f32],
) -> Result<()> {
    let q_len = validate(a, q.len(), k.len(), v.len(), cache_k.len(), cache_v.len(), out.len())?;
    if a.head_dim == 0 {
        return Ok(());
    }
    let keys = Keys {
        k,
        v,
        cache_k,
        cache_v,
        pos0: a.pos0,
        capacity: a.capacity,
        n_kv_heads: a.n_kv_heads,
        head_dim: a.head_dim,
    };
    let group = a.n_heads / a.n_kv_heads;
    out[..q_len].par_chunks_mut(a.head_dim).enumerate().for_each_init(Vec::new, |scores, (row, dst)| {
        let (t, h) = (row / a.n_heads, row % a.n_heads);
        let q_row = &q[row * a.head_dim..(row + 1) * a.head_dim];
        attend_one(a, &keys, a.pos0 + t, h / group, q_row, scores, dst);
    });
    Ok(())
}

/// One query row at position `pos` against KV head `kv_head`: `dst = softmax(scale * q.K) V`.
fn attend_one(
    a: &AttentionArgs,
    keys: &Keys,
    pos: usize,
    kv_head: usize,
    q: &[f32],
    scores: &mut Vec<f32>,
    dst: &mut [f32],
) {
    let first = match a.window {
        Some(w) => (pos + 1).saturating_sub(w),
        None => 0,
    };
    scores.clear();
    for p in first..=pos {
        scores.push(a.scale * dot(q, keys.at(p, kv_head).0));
    }
    softmax(scores);
    dst.fill(0.0);
    for (p, &prob) in (first..=pos).zip(scores.iter()) {
        for (o, x) in dst.iter_mut().zip(keys.at(p, kv_head).1) {
            *o += prob * x;
        }
    }
}

/// Checks the head counts, the window and the buffer lengths; returns `tokens * n_heads * head_dim`
/// (shared with the fast and WGSL backends).
pub(crate) fn validate(
    a: &AttentionArgs,
    q: usize,
    k: usize,
    v: usize,
    cache_k: usize,
    cache_v: usize,
    out: usize,
) -> Result<usize> {
    const OP: &str = "attention";
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
