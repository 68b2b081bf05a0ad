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
use crate::args::{AttentionArgs, KvWriteArgs};
use crate::error::Result;
use rayon::prelude::*;

/// Copies the keys and values of positions `pos0..pos0 + tokens` into slots `pos % capacity`, in
/// position order (with `tokens > capacity` the last `capacity` tokens remain).
pub(crate) fn kv_write(a: &KvWriteArgs, k: &[f32], v: &[f32], cache_k: &mut [f32], cache_v: &mut [f32]) -> Result<()> {
    a.check(k.len(), v.len(), cache_k.len(), cache_v.len())?;
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
    let q_len = a.check(q.len(), k.len(), v.len(), cache_k.len(), cache_v.len(), out.len())?;
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
