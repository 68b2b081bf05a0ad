//! Mixture-of-experts router and expert FFNs, reference version (see [`RouteArgs`], [`MoeArgs`]).
//!
//! Router: `scores` `[tokens, n_experts]` f32 -> per token, softmax over all experts (f32), the
//! `top_k` most probable experts (descending; ties to the lower id), their probabilities
//! renormalised to sum 1, each times `per_expert_scale[e]` (a weight `[n_experts]`). Outputs
//! `ids` `[tokens, top_k]` u32 and `weights` `[tokens, top_k]` f32.
//!
//! Experts: `out[t] = sum_j weights[t, j] * down[e] (gelu_tanh(g) * u)`, `e = ids[t, j]`, summed
//! in `j` order, with `[g | u] = gate_up[e] x[t]`. Weights in their storage dtype:
//! `gate_up` `[n_experts, 2 * inter, hidden]` (first `inter` rows gate, next `inter` up),
//! `down` `[n_experts, hidden, inter]`. `x`, `out` `[tokens, hidden]` f32. Each expert matvec runs
//! its weight rows in parallel through the shared [`linear_rows`] (bit-identical to sequential).

use super::elementwise::{gelu_tanh, softmax};
use super::matmul::{linear_rows, widen};
use crate::args::{MoeArgs, RouteArgs};
use crate::error::Result;
use crate::tensor::HostTensor;

/// Top-k routing of each token's router scores.
pub(crate) fn moe_route(
    a: &RouteArgs,
    scores: &[f32],
    per_expert_scale: &HostTensor,
    ids: &mut [u32],
    weights: &mut [f32],
) -> Result<()> {
    a.check(scores.len(), per_expert_scale.shape(), ids.len(), weights.len())?;

    let mut expert_scale = vec![0.0; a.n_experts];
    widen(per_expert_scale, 0, &mut expert_scale);
    let mut probs = vec![0.0; a.n_experts];
    let mut order: Vec<usize> = Vec::with_capacity(a.n_experts);
    for t in 0..a.tokens {
        probs.copy_from_slice(&scores[t * a.n_experts..(t + 1) * a.n_experts]);
        softmax(&mut probs);
        // All experts sorted by probability, descending, ties to the lower id; keep the first k.
        order.clear();
        order.extend(0..a.n_experts);
        order.sort_by(|&i, &j| probs[j].total_cmp(&probs[i]).then(i.cmp(&j)));
        let chosen = &order[..a.top_k];
        let mut sum = 0.0f32;
        for &e in chosen {
            sum += probs[e];
        }
        let ids_t = &mut ids[t * a.top_k..(t + 1) * a.top_k];
        let weights_t = &mut weights[t * a.top_k..(t + 1) * a.top_k];
        for ((id, w), &e) in ids_t.iter_mut().zip(weights_t.iter_mut()).zip(chosen) {
            *id = e as u32;
            *w = probs[e] / sum * expert_scale[e];
        }
    }
    Ok(())
}

/// Weighted sum of each token's selected experts' FFNs into `out`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn moe_experts(
    a: &MoeArgs,
    x: &[f32],
    gate_up: &HostTensor,
    down: &HostTensor,
    ids: &[u32],
    weights: &[f32],
    out: &mut [f32],
) -> Result<()> {
    let (_, routed) = a.check(x.len(), gate_up.shape(), down.shape(), ids.len(), weights.len(), out.len())?;
    a.check_ids(ids, routed)?;

    let mut gate_up_out = vec![0.0; 2 * a.inter]; // [g | u]
    let mut act = vec![0.0; a.inter]; // gelu_tanh(g) * u
    let mut expert_out = vec![0.0; a.hidden]; // down[e] act
    for t in 0..a.tokens {
        let x_t = &x[t * a.hidden..(t + 1) * a.hidden];
        let out_t = &mut out[t * a.hidden..(t + 1) * a.hidden];
        out_t.fill(0.0);
        for j in 0..a.top_k {
            let (e, w) = (ids[t * a.top_k + j] as usize, weights[t * a.top_k + j]);
            linear_rows(gate_up, e * 2 * a.inter, x_t, a.hidden, &mut gate_up_out);
            let (g, u) = gate_up_out.split_at(a.inter);
            for ((h, g), u) in act.iter_mut().zip(g).zip(u) {
                *h = gelu_tanh(*g) * u;
            }
            linear_rows(down, e * a.hidden, &act, a.inter, &mut expert_out);
            for (o, y) in out_t.iter_mut().zip(&expert_out) {
                *o += w * y;
            }
        }
    }
    Ok(())
}
