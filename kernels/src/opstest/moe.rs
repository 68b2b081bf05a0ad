//! Ops-test cases of the mixture-of-experts ops. `moe_route` is compared as the set of experts
//! each token chose (the order within a token's `top_k` is free), then the routing weights
//! matched by expert id; `moe_experts` is compared as plain values.

use super::inputs::{
    check_guard, get_out, on_both, poisoned, put, put_ids, weight, Exec, Failed, Pair, Rng, Timer, GUARD,
};
use super::matmul::{dtype_bytes, product_bound};
use super::{Device, OpCase};
use crate::args::{MoeArgs, RouteArgs};
use crate::error::Result;
use crate::op::Op;
use crate::tensor::{DType, HostTensor};

/// `moe_route`: top-k routing; `ties` makes runs of equal scores (ties go to the lower id).
#[derive(Clone, Debug, PartialEq)]
pub struct MoeRouteCase {
    /// The op's arguments.
    pub args: RouteArgs,
    /// Scores on a coarse grid, so that many are equal.
    pub ties: bool,
}

impl OpCase for MoeRouteCase {
    fn op(&self) -> Op {
        Op::MoeRoute
    }
    fn name(&self) -> String {
        let a = &self.args;
        let ties = if self.ties { " ties" } else { "" };
        format!("{} tokens={} experts={} top_k={}{ties}", self.op(), a.tokens, a.n_experts, a.top_k)
    }
    fn bound(&self) -> f64 {
        1e-5
    }
    fn cost(&self) -> (usize, usize) {
        let a = &self.args;
        (4 * a.tokens * a.n_experts + 8 * a.tokens * a.top_k + 4 * a.n_experts, 5 * a.tokens * a.n_experts)
    }
    fn run(&self, rng: &mut Rng, be: &dyn Device, perf: bool) -> Result<Pair<Vec<f32>>, Failed> {
        route(be, &Route::new(rng, self.args, self.ties)?, perf)
    }
}

/// `moe_experts`: the selected experts' FFNs, weights of `dtype`.
#[derive(Clone, Debug, PartialEq)]
pub struct MoeExpertsCase {
    /// The op's arguments.
    pub args: MoeArgs,
    /// Dtype of `gate_up` and `down`.
    pub dtype: DType,
}

impl OpCase for MoeExpertsCase {
    fn op(&self) -> Op {
        Op::MoeExperts
    }
    fn name(&self) -> String {
        let a = &self.args;
        format!(
            "{} tokens={} hidden={} inter={} experts={} top_k={} {}",
            self.op(),
            a.tokens,
            a.hidden,
            a.inter,
            a.n_experts,
            a.top_k,
            self.dtype.name()
        )
    }
    fn bound(&self) -> f64 {
        product_bound(self.dtype)
    }
    fn cost(&self) -> (usize, usize) {
        let a = &self.args;
        // Every token's experts distinct (a bound: shared experts are read once by a good kernel).
        let experts = (a.tokens * a.top_k).min(a.n_experts);
        let bytes = experts * dtype_bytes(self.dtype, 3 * a.inter * a.hidden) + 8 * a.tokens * (a.hidden + a.top_k);
        (bytes, 2 * a.tokens * a.top_k * 3 * a.inter * a.hidden)
    }
    fn run(&self, rng: &mut Rng, be: &dyn Device, perf: bool) -> Result<Pair<Vec<f32>>, Failed> {
        on_both(be, &Experts::new(rng, self.args, self.dtype)?, perf)
    }
}

/// What the ids buffer holds past the op's range (it must come back unchanged).
const IDS_GUARD: u32 = 0xdead;

/// Router scores uniform in [-3, 3) (`ties`: on a grid of 0.5 with a bump on every 7th, so that
/// many experts tie, at the top-k boundary too) and per-expert scales around 1.
struct Route {
    args: RouteArgs,
    scores: Vec<f32>,
    scale: HostTensor,
}

impl Route {
    fn new(rng: &mut Rng, args: RouteArgs, ties: bool) -> Result<Self, Failed> {
        let mut scores = rng.vec(args.tokens * args.n_experts, 3.0);
        if ties {
            for (i, s) in scores.iter_mut().enumerate() {
                *s = (*s * 2.0).round() / 2.0 + if i % 7 == 0 { 1.0 } else { 0.0 };
            }
        }
        let scale = HostTensor::from_f32_as(&rng.around_one(args.n_experts, 0.5), vec![args.n_experts], DType::BF16)
            .map_err(Failed::Setup)?;
        Ok(Route { args, scores, scale })
    }
}

impl Exec for Route {
    /// The ids and the weights, each with its guard.
    type Out = (Vec<u32>, Vec<f32>);
    fn exec(&self, be: &dyn Device, t: &mut Timer) -> Result<(Vec<u32>, Vec<f32>)> {
        let n = self.args.tokens * self.args.top_k;
        let scale = be.weight(&self.scale)?;
        let scores = put(be, &self.scores)?;
        let mut init = vec![u32::MAX; n + GUARD];
        init[n..].fill(IDS_GUARD);
        let mut ids = put_ids(be, &init)?;
        let mut weights = put(be, &poisoned(n))?;
        be.moe_route(&self.args, &scores, &scale, &mut ids, &mut weights)?;
        let mut got_ids = vec![0; n + GUARD];
        be.download_ids(&ids, &mut got_ids)?;
        check_guard(&got_ids, n, |id| id == IDS_GUARD)?;
        got_ids.truncate(n);
        let got = (got_ids, get_out(be, &weights, n)?);
        t.time(|| be.moe_route(&self.args, &scores, &scale, &mut ids, &mut weights))?;
        Ok(got)
    }
}

/// Runs the router on both backends; fails on a token whose set of experts differs, else
/// returns the weights with the backend's reordered to the reference's order of expert ids.
fn route(be: &dyn Device, op: &Route, perf: bool) -> Result<Pair<Vec<f32>>, Failed> {
    let Pair { want: (want_ids, want_w), got: (got_ids, got_w), per_call } = on_both(be, op, perf)?;
    let k = op.args.top_k;
    let mut aligned = got_w.clone();
    for t in 0..op.args.tokens {
        let (want, got) = (&want_ids[t * k..(t + 1) * k], &got_ids[t * k..(t + 1) * k]);
        let (mut ws, mut gs) = (want.to_vec(), got.to_vec());
        ws.sort_unstable();
        gs.sort_unstable();
        if ws != gs {
            return Err(Failed::Mismatch(format!("token {t}: experts {got:?}, want {want:?}")));
        }
        for (j, e) in want.iter().enumerate() {
            // Present: the sorted sets are equal.
            let at = got.iter().position(|g| g == e).unwrap_or(j);
            aligned[t * k + j] = got_w[t * k + at];
        }
    }
    Ok(Pair { want: want_w, got: aligned, per_call })
}

/// The experts of random routing (distinct experts per token; token 1 shares half of token 0's,
/// in another order) over weights about 0.05 in `dtype`.
struct Experts {
    args: MoeArgs,
    x: Vec<f32>,
    gate_up: HostTensor,
    down: HostTensor,
    ids: Vec<u32>,
    weights: Vec<f32>,
}

impl Experts {
    fn new(rng: &mut Rng, a: MoeArgs, dtype: DType) -> Result<Self, Failed> {
        let gate_up = weight(rng, dtype, &[a.n_experts, 2 * a.inter, a.hidden], 0.05).map_err(Failed::Setup)?;
        let down = weight(rng, dtype, &[a.n_experts, a.hidden, a.inter], 0.05).map_err(Failed::Setup)?;
        let mut ids: Vec<u32> = Vec::with_capacity(a.tokens * a.top_k);
        for t in 0..a.tokens {
            let mut chosen = rng.distinct(a.n_experts, a.top_k);
            if t == 1 {
                let shared: Vec<u32> = ids[a.top_k / 2..a.top_k].to_vec();
                chosen.retain(|e| !shared.contains(e));
                chosen.truncate(a.top_k - shared.len());
                chosen.splice(0..0, shared.into_iter().rev());
            }
            ids.extend(chosen);
        }
        let x = rng.vec(a.tokens * a.hidden, 1.0);
        let weights = rng.around_one(a.tokens * a.top_k, 0.5);
        Ok(Experts { args: a, x, gate_up, down, ids, weights })
    }
}

impl Exec for Experts {
    type Out = Vec<f32>;
    fn exec(&self, be: &dyn Device, t: &mut Timer) -> Result<Vec<f32>> {
        let a = &self.args;
        let (gate_up, down) = (be.weight(&self.gate_up)?, be.weight(&self.down)?);
        let (x, ids, w) = (put(be, &self.x)?, put_ids(be, &self.ids)?, put(be, &self.weights)?);
        let mut out = put(be, &poisoned(a.tokens * a.hidden))?;
        be.moe_experts(a, &x, &gate_up, &down, &ids, &w, &mut out)?;
        let got = get_out(be, &out, a.tokens * a.hidden)?;
        t.time(|| be.moe_experts(a, &x, &gate_up, &down, &ids, &w, &mut out))?;
        Ok(got)
    }
}
