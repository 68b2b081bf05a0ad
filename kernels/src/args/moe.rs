//! `moe_route` and `moe_experts`.

use crate::error::{bad_arg, check_len, check_shape, numel, KernelError, Result};

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

/// Fails unless `1 <= top_k <= n_experts`.
fn check_top_k(op: &'static str, top_k: usize, n_experts: usize) -> Result<()> {
    if top_k == 0 || top_k > n_experts {
        return Err(bad_arg(op, format!("top_k {top_k} is not in 1..={n_experts} experts")));
    }
    Ok(())
}

impl RouteArgs {
    /// The checks on lengths and shapes; returns the output length (`tokens * top_k`).
    pub fn check(&self, scores: usize, per_expert_scale: &[usize], ids: usize, weights: usize) -> Result<usize> {
        const OP: &str = "moe_route";
        check_top_k(OP, self.top_k, self.n_experts)?;
        if u32::try_from(self.n_experts).is_err() {
            return Err(bad_arg(OP, format!("{} experts do not fit u32 ids", self.n_experts)));
        }
        check_len(OP, "scores", scores, numel(OP, &[self.tokens, self.n_experts])?)?;
        check_shape(OP, "per_expert_scale", per_expert_scale, &[self.n_experts])?;
        let out_len = numel(OP, &[self.tokens, self.top_k])?;
        check_len(OP, "ids", ids, out_len)?;
        check_len(OP, "weights", weights, out_len)?;
        Ok(out_len)
    }
}

impl MoeArgs {
    /// The checks on lengths and shapes; returns the lengths of the activations (`tokens *
    /// hidden`) and of the routing (`tokens * top_k`). The expert ids are checked separately
    /// ([`Self::check_ids`]) where they live on the host.
    #[allow(clippy::too_many_arguments)]
    pub fn check(
        &self,
        x: usize,
        gate_up: &[usize],
        down: &[usize],
        ids: usize,
        weights: usize,
        out: usize,
    ) -> Result<(usize, usize)> {
        const OP: &str = "moe_experts";
        let a = self;
        check_top_k(OP, a.top_k, a.n_experts)?;
        let act_len = numel(OP, &[a.tokens, a.hidden])?;
        let routed = numel(OP, &[a.tokens, a.top_k])?;
        check_len(OP, "x", x, act_len)?;
        check_shape(OP, "gate_up", gate_up, &[a.n_experts, numel(OP, &[2, a.inter])?, a.hidden])?;
        check_shape(OP, "down", down, &[a.n_experts, a.hidden, a.inter])?;
        check_len(OP, "ids", ids, routed)?;
        check_len(OP, "weights", weights, routed)?;
        check_len(OP, "out", out, act_len)?;
        Ok((act_len, routed))
    }

    /// Fails with [`KernelError::IdOutOfRange`] if one of the first `routed` expert ids is not
    /// below `n_experts` (host ids only: a GPU backend skips such ids on the device instead).
    pub fn check_ids(&self, ids: &[u32], routed: usize) -> Result<()> {
        if let Some(&id) = ids[..routed].iter().find(|&&id| id as usize >= self.n_experts) {
            return Err(KernelError::IdOutOfRange { op: "moe_experts", id, len: self.n_experts });
        }
        Ok(())
    }
}
