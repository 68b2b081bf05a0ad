//! Ops-test cases of the KV cache ops: `kv_write` (into a ring that may wrap within the call) and
//! `attention` (over a cache holding a random history).

use super::inputs::{get_out, guarded, on_both, poisoned, put, Exec, Failed, Pair, Rng, Timer};
use super::{Device, OpCase};
use crate::args::{AttentionArgs, KvWriteArgs};
use crate::error::Result;
use crate::op::Op;

/// `kv_write`: keys and values into a cache ring.
#[derive(Clone, Debug, PartialEq)]
pub struct KvWriteCase {
    /// The op's arguments.
    pub args: KvWriteArgs,
}

impl OpCase for KvWriteCase {
    fn op(&self) -> Op {
        Op::KvWrite
    }
    fn name(&self) -> String {
        let a = &self.args;
        format!("{} tokens={} kv_dim={} pos0={} capacity={}", self.op(), a.tokens, a.kv_dim, a.pos0, a.capacity)
    }
    /// Pure data movement.
    fn bound(&self) -> f64 {
        0.0
    }
    fn cost(&self) -> (usize, usize) {
        (2 * 2 * 4 * self.args.tokens * self.args.kv_dim, 0)
    }
    fn run(&self, rng: &mut Rng, be: &dyn Device, perf: bool) -> Result<Pair<Vec<f32>>, Failed> {
        on_both(be, &KvWrite::new(rng, self.args), perf)
    }
}

/// `attention`: causal GQA attention over a cache filled with a random history.
#[derive(Clone, Debug, PartialEq)]
pub struct AttentionCase {
    /// The op's arguments.
    pub args: AttentionArgs,
}

impl OpCase for AttentionCase {
    fn op(&self) -> Op {
        Op::Attention
    }
    fn name(&self) -> String {
        let a = &self.args;
        format!(
            "{} tokens={} heads={}/{} head_dim={} pos0={} capacity={} window={} scale={}",
            self.op(),
            a.tokens,
            a.n_heads,
            a.n_kv_heads,
            a.head_dim,
            a.pos0,
            a.capacity,
            a.window.map_or("none".into(), |w| w.to_string()),
            a.scale
        )
    }
    fn bound(&self) -> f64 {
        5e-5
    }
    fn cost(&self) -> (usize, usize) {
        let a = &self.args;
        let rows = a.tokens * a.n_heads * a.head_dim;
        let positions = a.pos0 + a.tokens - a.first_past();
        let bytes = 4 * 2 * rows + 4 * 2 * positions * a.n_kv_heads * a.head_dim;
        let keys: usize = (a.pos0..a.pos0 + a.tokens).map(|p| visible(a, p)).sum();
        (bytes, 4 * a.n_heads * a.head_dim * keys)
    }
    fn run(&self, rng: &mut Rng, be: &dyn Device, perf: bool) -> Result<Pair<Vec<f32>>, Failed> {
        on_both(be, &Attention::new(rng, self.args), perf)
    }
}

/// Keys and values into caches that start random (slots the call does not write must keep it).
struct KvWrite {
    args: KvWriteArgs,
    k: Vec<f32>,
    v: Vec<f32>,
    cache_k: Vec<f32>,
    cache_v: Vec<f32>,
}

impl KvWrite {
    fn new(rng: &mut Rng, args: KvWriteArgs) -> Self {
        let (new, cache) = (args.tokens * args.kv_dim, args.capacity * args.kv_dim);
        let (k, v) = (rng.vec(new, 1.0), rng.vec(new, 1.0));
        let (cache_k, cache_v) = (guarded(rng.vec(cache, 1.0)), guarded(rng.vec(cache, 1.0)));
        KvWrite { args, k, v, cache_k, cache_v }
    }
}

impl Exec for KvWrite {
    /// Both caches, `k`'s first.
    type Out = Vec<f32>;
    fn exec(&self, be: &dyn Device, t: &mut Timer) -> Result<Vec<f32>> {
        let (k, v) = (put(be, &self.k)?, put(be, &self.v)?);
        let (mut ck, mut cv) = (put(be, &self.cache_k)?, put(be, &self.cache_v)?);
        be.kv_write(&self.args, &k, &v, &mut ck, &mut cv)?;
        let cache = self.args.capacity * self.args.kv_dim;
        let mut got = get_out(be, &ck, cache)?;
        got.extend(get_out(be, &cv, cache)?);
        t.time(|| be.kv_write(&self.args, &k, &v, &mut ck, &mut cv))?;
        Ok(got)
    }
}

/// Attention of random queries over a cache that holds the random keys and values of positions
/// `pos0 - capacity..pos0` in their ring slots (slots of no position hold other, larger random
/// values: reading one shows in the output) and the call's own new keys and values.
struct Attention {
    args: AttentionArgs,
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    cache_k: Vec<f32>,
    cache_v: Vec<f32>,
}

impl Attention {
    fn new(rng: &mut Rng, a: AttentionArgs) -> Self {
        let kv_dim = a.n_kv_heads * a.head_dim;
        let q = rng.vec(a.tokens * a.n_heads * a.head_dim, 1.0);
        let (k, v) = (rng.vec(a.tokens * kv_dim, 1.0), rng.vec(a.tokens * kv_dim, 1.0));
        let mut cache = [rng.vec(a.capacity * kv_dim, 4.0), rng.vec(a.capacity * kv_dim, 4.0)];
        if a.capacity > 0 {
            for p in a.pos0.saturating_sub(a.capacity)..a.pos0 {
                let slot = p % a.capacity;
                for c in &mut cache {
                    c[slot * kv_dim..(slot + 1) * kv_dim].copy_from_slice(&rng.vec(kv_dim, 1.0));
                }
            }
        }
        let [cache_k, cache_v] = cache;
        Attention { args: a, q, k, v, cache_k, cache_v }
    }
}

impl Exec for Attention {
    type Out = Vec<f32>;
    fn exec(&self, be: &dyn Device, t: &mut Timer) -> Result<Vec<f32>> {
        let a = &self.args;
        let (q, k, v) = (put(be, &self.q)?, put(be, &self.k)?, put(be, &self.v)?);
        let (ck, cv) = (put(be, &self.cache_k)?, put(be, &self.cache_v)?);
        let mut out = put(be, &poisoned(a.tokens * a.n_heads * a.head_dim))?;
        be.attention(a, &q, &k, &v, &ck, &cv, &mut out)?;
        let got = get_out(be, &out, a.tokens * a.n_heads * a.head_dim)?;
        t.time(|| be.attention(a, &q, &k, &v, &ck, &cv, &mut out))?;
        Ok(got)
    }
}

/// Keys visible to the query at `pos`.
fn visible(a: &AttentionArgs, pos: usize) -> usize {
    a.window.map_or(pos + 1, |w| w.min(pos + 1))
}
