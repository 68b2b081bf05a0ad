//! Mixture-of-experts router and expert FFNs on the fast CPU path, with the reference's semantics
//! and argument checks (see `crate::reference::moe`).
//!
//! Router: per token, softmax over the `[n_experts]` scores (f32, std `exp`, summed in index
//! order: the reference's arithmetic, so the chosen ids are identical), the `top_k` most probable
//! experts by insertion into a sorted list (descending, ties to the lower id: the reference's
//! order), renormalised, times `per_expert_scale[e]`. Scratch lives on the stack up to 256
//! experts (a `Vec` above); tokens run in rayon tasks from `PAR_MIN` scores on.
//!
//! Experts: only the selected experts' rows are read. The `(token, j)` pairs are grouped by
//! expert (counting sort); for each expert with work, its tokens' rows of `x` are gathered into
//! `[m, hidden]`, multiplied by its `[2 * inter, hidden]` gate/up rows (`row0 = e * 2 * inter`)
//! through the fast `matmul::linear` (one matvec per token in decode, a GEMM reading the expert
//! once in prefill), passed through GeGLU, and by its `[hidden, inter]` down rows
//! (`row0 = e * hidden`) into the result row of each pair. Each token then sums
//! `weights[t, j] * y[t, j]` over `j = 0..top_k` in order, exactly as the reference does, so the
//! results differ from it only by the matmul's rounding. Buffers are per-thread scratch (the
//! largest is `tokens * top_k * hidden` floats, kept for the next call).

use super::elementwise::geglu_rows;
use super::isa::Isa;
use super::matmul::linear;
use super::simd::{self, with_scratch, PAR_MIN};
use crate::args::{MoeArgs, RouteArgs};
use crate::error::Result;
use crate::tensor::HostTensor;
use crate::Precision;
use rayon::prelude::*;
use std::cell::Cell;
use std::cmp::Ordering;

/// Experts whose router scratch fits on the stack.
const STACK_EXPERTS: usize = 256;

thread_local! {
    /// Expert FFN activations: gathered rows, gate/up, GeGLU, per-pair results.
    static F32: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
    /// Expert FFN grouping: per-expert starts, pairs sorted by expert, each pair's sorted slot.
    static U32: Cell<Vec<u32>> = const { Cell::new(Vec::new()) };
}

/// Runs `f` on `n` zeroed floats: on the stack up to [`STACK_EXPERTS`], else in a `Vec`.
fn with_small<R>(n: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    if n <= STACK_EXPERTS {
        f(&mut [0.0; STACK_EXPERTS][..n])
    } else {
        f(&mut vec![0.0; n])
    }
}

/// Top-k routing of each token's router scores.
pub(crate) fn moe_route(
    a: &RouteArgs,
    scores: &[f32],
    per_expert_scale: &HostTensor,
    ids: &mut [u32],
    weights: &mut [f32],
) -> Result<()> {
    let out_len = a.check(scores.len(), per_expert_scale.shape(), ids.len(), weights.len())?;
    let scores_len = a.tokens * a.n_experts; // checked not to overflow by the validation
    if a.tokens == 0 {
        return Ok(());
    }

    let (n, k) = (a.n_experts, a.top_k);
    with_small(n, |expert_scale| {
        simd::widen(per_expert_scale, 0, expert_scale);
        let expert_scale = &*expert_scale;
        let route_tokens = |scores: &[f32], ids: &mut [u32], weights: &mut [f32]| {
            with_small(n, |probs| {
                let rows = scores.chunks_exact(n).zip(ids.chunks_exact_mut(k)).zip(weights.chunks_exact_mut(k));
                for ((s, ids_t), w_t) in rows {
                    route_one(s, expert_scale, probs, ids_t, w_t);
                }
            })
        };
        if scores_len < PAR_MIN {
            route_tokens(&scores[..scores_len], &mut ids[..out_len], &mut weights[..out_len]);
        } else {
            let tokens = (PAR_MIN / 4).div_ceil(n);
            let scores = scores[..scores_len].par_chunks(tokens * n);
            let outs = ids[..out_len].par_chunks_mut(tokens * k).zip(weights[..out_len].par_chunks_mut(tokens * k));
            scores.zip(outs).for_each(|(s, (i, w))| route_tokens(s, i, w));
        }
    });
    Ok(())
}

/// One token: softmax of `scores` into `probs`, then the top `ids.len()` experts and weights.
fn route_one(scores: &[f32], expert_scale: &[f32], probs: &mut [f32], ids: &mut [u32], weights: &mut [f32]) {
    // The reference's softmax, operation for operation.
    let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0f32;
    for (p, s) in probs.iter_mut().zip(scores) {
        *p = (s - max).exp();
        sum += *p;
    }
    for p in probs.iter_mut() {
        *p /= sum;
    }
    // Expert `i` goes before `j` as in the reference's sort: higher probability, then lower id.
    let before = |i: u32, j: u32| probs[j as usize].total_cmp(&probs[i as usize]).then(i.cmp(&j)) == Ordering::Less;
    let k = ids.len();
    let mut len = 0;
    for e in 0..probs.len() as u32 {
        if len == k && !before(e, ids[k - 1]) {
            continue;
        }
        let mut at = len.min(k - 1);
        while at > 0 && before(e, ids[at - 1]) {
            ids[at] = ids[at - 1];
            at -= 1;
        }
        ids[at] = e;
        len = (len + 1).min(k);
    }
    let mut sum = 0.0f32;
    for &e in ids.iter() {
        sum += probs[e as usize];
    }
    for (w, &e) in weights.iter_mut().zip(ids.iter()) {
        *w = probs[e as usize] / sum * expert_scale[e as usize];
    }
}

/// Weighted sum of each token's selected experts' FFNs into `out`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn moe_experts(
    isa: Isa,
    act: Precision,
    a: &MoeArgs,
    x: &[f32],
    gate_up: &HostTensor,
    down: &HostTensor,
    ids: &[u32],
    weights: &[f32],
    out: &mut [f32],
) -> Result<()> {
    let (act_len, routed) = a.check(x.len(), gate_up.shape(), down.shape(), ids.len(), weights.len(), out.len())?;
    a.check_ids(ids, routed)?;
    // The shapes exist in memory, so these products fit.
    let (h, inter, n_exp) = (a.hidden, a.inter, a.n_experts);
    if routed == 0 {
        return Ok(());
    }
    if inter == 0 {
        out[..act_len].fill(0.0); // every expert's down projection is an empty sum
        return Ok(());
    }

    with_scratch(&U32, n_exp + 1 + 2 * routed, |grouping| {
        let (starts, rest) = grouping.split_at_mut(n_exp + 1);
        let (order, slot_of) = rest.split_at_mut(routed);
        // Counting sort of the (token, j) pairs by expert: expert e's pairs are
        // order[starts[e]..starts[e + 1]]; pair r's result row is slot_of[r].
        starts.fill(0);
        for &e in &ids[..routed] {
            starts[e as usize + 1] += 1;
        }
        let mut max_m = 0;
        for e in 0..n_exp {
            max_m = max_m.max(starts[e + 1] as usize);
            starts[e + 1] += starts[e];
        }
        for (r, &e) in ids[..routed].iter().enumerate() {
            let at = &mut starts[e as usize];
            order[*at as usize] = r as u32;
            slot_of[r] = *at;
            *at += 1;
        }
        // starts[e] is now the end of expert e; shift back to starts.
        starts.copy_within(0..n_exp, 1);
        starts[0] = 0;

        let f32_len = max_m * (h + 3 * inter) + routed * h;
        with_scratch(&F32, f32_len, |buf| {
            let (xg, rest) = buf.split_at_mut(max_m * h);
            let (gu, rest) = rest.split_at_mut(max_m * 2 * inter);
            let (hidden_act, y) = rest.split_at_mut(max_m * inter);
            for e in 0..n_exp {
                let (s, end) = (starts[e] as usize, starts[e + 1] as usize);
                let m = end - s;
                if m == 0 {
                    continue;
                }
                for (dst, &r) in xg.chunks_exact_mut(h).zip(&order[s..end]) {
                    let t = r as usize / a.top_k;
                    dst.copy_from_slice(&x[t * h..(t + 1) * h]);
                }
                linear(isa, act, gate_up, h, e * 2 * inter, 2 * inter, &xg[..m * h], &mut gu[..m * 2 * inter]);
                for (g_u, dst) in gu.chunks_exact(2 * inter).zip(hidden_act.chunks_exact_mut(inter)).take(m) {
                    let (g, u) = g_u.split_at(inter);
                    geglu_rows(isa, g, u, dst);
                }
                linear(isa, act, down, inter, e * h, h, &hidden_act[..m * inter], &mut y[s * h..end * h]);
            }
            // Per token, the reference's sum over j in order.
            let y = &*y;
            let sum_token = |t: usize, out_t: &mut [f32]| {
                out_t.fill(0.0);
                for j in 0..a.top_k {
                    let r = t * a.top_k + j;
                    let (w, slot) = (weights[r], slot_of[r] as usize);
                    for (o, v) in out_t.iter_mut().zip(&y[slot * h..(slot + 1) * h]) {
                        *o += w * v;
                    }
                }
            };
            if act_len < PAR_MIN || h == 0 {
                for (t, out_t) in out[..act_len].chunks_exact_mut(h.max(1)).enumerate() {
                    sum_token(t, out_t);
                }
            } else {
                out[..act_len].par_chunks_mut(h).enumerate().for_each(|(t, out_t)| sum_token(t, out_t));
            }
        });
    });
    Ok(())
}
