//! Ops-test cases of the row-wise ops: `rms_norm` (with and without a weight), `add_rms_norm`
//! (into a residual), `layer_norm` and `rope` (in place).

use super::inputs::{get_out, guarded, on_both, poisoned, put, Exec, Failed, Pair, Rng, Timer};
use super::{Device, OpCase};
use crate::args::{LayerNormArgs, RmsNormArgs, RopeArgs};
use crate::error::Result;
use crate::op::Op;
use crate::tensor::{DType, HostTensor};

/// The name of a norm case: `rms_norm rows=1 dim=1536 eps=1e-6 w=BF16`.
fn norm_name(op: Op, [rows, dim]: [usize; 2], eps: f32, weight: &str) -> String {
    format!("{op} rows={rows} dim={dim} eps={eps:e} w={weight}")
}

/// `rms_norm` with a weight of `weight` (or none).
#[derive(Clone, Debug, PartialEq)]
pub struct RmsNormCase {
    /// The op's arguments.
    pub args: RmsNormArgs,
    /// Weight dtype; `None`: the scale-free norm.
    pub weight: Option<DType>,
}

impl OpCase for RmsNormCase {
    fn op(&self) -> Op {
        Op::RmsNorm
    }
    fn name(&self) -> String {
        let a = &self.args;
        norm_name(self.op(), [a.rows, a.dim], a.eps, self.weight.map_or("none", |d| d.name()))
    }
    fn bound(&self) -> f64 {
        1e-5
    }
    fn cost(&self) -> (usize, usize) {
        rms_norm_cost(&self.args, self.weight.is_some(), false)
    }
    fn run(&self, rng: &mut Rng, be: &dyn Device, perf: bool) -> Result<Pair<Vec<f32>>, Failed> {
        on_both(be, &Norm::new(rng, self.args, self.weight, false)?, perf)
    }
}

/// `add_rms_norm`: `residual += RMSNorm(x) * w`.
#[derive(Clone, Debug, PartialEq)]
pub struct AddRmsNormCase {
    /// The op's arguments.
    pub args: RmsNormArgs,
    /// Weight dtype.
    pub weight: DType,
}

impl OpCase for AddRmsNormCase {
    fn op(&self) -> Op {
        Op::AddRmsNorm
    }
    fn name(&self) -> String {
        let a = &self.args;
        norm_name(self.op(), [a.rows, a.dim], a.eps, self.weight.name())
    }
    fn bound(&self) -> f64 {
        1e-5
    }
    fn cost(&self) -> (usize, usize) {
        rms_norm_cost(&self.args, true, true)
    }
    fn run(&self, rng: &mut Rng, be: &dyn Device, perf: bool) -> Result<Pair<Vec<f32>>, Failed> {
        on_both(be, &Norm::new(rng, self.args, Some(self.weight), true)?, perf)
    }
}

/// `layer_norm` with a weight and a bias of `weight`'s dtype.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerNormCase {
    /// The op's arguments.
    pub args: LayerNormArgs,
    /// Weight and bias dtype.
    pub weight: DType,
}

impl OpCase for LayerNormCase {
    fn op(&self) -> Op {
        Op::LayerNorm
    }
    fn name(&self) -> String {
        let a = &self.args;
        norm_name(self.op(), [a.rows, a.dim], a.eps, self.weight.name())
    }
    fn bound(&self) -> f64 {
        1e-5
    }
    fn cost(&self) -> (usize, usize) {
        let n = self.args.rows * self.args.dim;
        (8 * n + 8 * self.args.dim, 7 * n)
    }
    fn run(&self, rng: &mut Rng, be: &dyn Device, perf: bool) -> Result<Pair<Vec<f32>>, Failed> {
        on_both(be, &LayerNorm::new(rng, self.args, self.weight)?, perf)
    }
}

/// `rope` in place (default, proportional or frequency-scaled, as the arguments say).
#[derive(Clone, Debug, PartialEq)]
pub struct RopeCase {
    /// The op's arguments.
    pub args: RopeArgs,
}

impl OpCase for RopeCase {
    fn op(&self) -> Op {
        Op::Rope
    }
    fn name(&self) -> String {
        let a = &self.args;
        let kind = match (a.rotary_pairs * 2 == a.head_dim, a.freq_scale == 1.0) {
            (true, true) => "default",
            (false, true) => "proportional",
            (true, false) => "freq_scale",
            (false, false) => "proportional freq_scale",
        };
        format!(
            "{} tokens={} heads={} head_dim={} pairs={} theta={} pos0={} freq_scale={} ({kind})",
            self.op(),
            a.tokens,
            a.heads,
            a.head_dim,
            a.rotary_pairs,
            a.theta,
            a.pos0,
            a.freq_scale
        )
    }
    /// sin/cos of angles up to thousands of radians.
    fn bound(&self) -> f64 {
        1e-4
    }
    fn cost(&self) -> (usize, usize) {
        let a = &self.args;
        let rotated = a.tokens * a.heads * a.rotary_pairs * 2;
        (8 * rotated, 3 * rotated)
    }
    fn run(&self, rng: &mut Rng, be: &dyn Device, perf: bool) -> Result<Pair<Vec<f32>>, Failed> {
        on_both(be, &Rope::new(rng, self.args), perf)
    }
}

/// RMSNorm of rows uniform in [-3, 3) (some rows scaled down to 1e-3, where `eps` matters) with a
/// weight around 1; `add` runs `add_rms_norm` into a random residual instead.
struct Norm {
    args: RmsNormArgs,
    x: Vec<f32>,
    w: Option<HostTensor>,
    /// `add_rms_norm`'s residual (with the guard); `None` for `rms_norm`.
    residual: Option<Vec<f32>>,
}

impl Norm {
    fn new(rng: &mut Rng, args: RmsNormArgs, w: Option<DType>, add: bool) -> Result<Self, Failed> {
        let len = args.rows * args.dim;
        let mut x = rng.vec(len, 3.0);
        for row in x.chunks_mut(args.dim.max(1)).step_by(3).skip(1) {
            row.iter_mut().for_each(|v| *v *= 1e-3);
        }
        let w = match w {
            Some(dtype) => {
                let values = rng.around_one(args.dim, 0.5);
                Some(HostTensor::from_f32_as(&values, vec![args.dim], dtype).map_err(Failed::Setup)?)
            }
            None => None,
        };
        let residual = add.then(|| guarded(rng.vec(len, 1.0)));
        Ok(Norm { args, x, w, residual })
    }
}

impl Exec for Norm {
    type Out = Vec<f32>;
    fn exec(&self, be: &dyn Device, t: &mut Timer) -> Result<Vec<f32>> {
        let w = self.w.as_ref().map(|w| be.weight(w)).transpose()?;
        let x = put(be, &self.x)?;
        match (&self.residual, &w) {
            (Some(residual), Some(w)) => {
                let mut acc = put(be, residual)?;
                be.add_rms_norm(&self.args, &x, w, &mut acc)?;
                let got = get_out(be, &acc, self.args.rows * self.args.dim)?;
                t.time(|| be.add_rms_norm(&self.args, &x, w, &mut acc))?;
                Ok(got)
            }
            _ => {
                let mut out = put(be, &poisoned(self.args.rows * self.args.dim))?;
                be.rms_norm(&self.args, &x, w.as_ref(), &mut out)?;
                let got = get_out(be, &out, self.args.rows * self.args.dim)?;
                t.time(|| be.rms_norm(&self.args, &x, w.as_ref(), &mut out))?;
                Ok(got)
            }
        }
    }
}

fn rms_norm_cost(a: &RmsNormArgs, weight: bool, add: bool) -> (usize, usize) {
    let n = a.rows * a.dim;
    let bytes = 4 * n * if add { 3 } else { 2 } + if weight { 4 * a.dim } else { 0 };
    (bytes, n * if weight { 4 } else { 3 })
}

/// LayerNorm of rows uniform in [-3, 3) plus an offset in [-1, 1] (the mean it removes), some
/// rows scaled down to 1e-3 without offset (where `eps` matters; an offset there would leave the
/// result to the rounding of the mean, which no two summation orders share), a weight around 1
/// and a bias in [-1, 1).
struct LayerNorm {
    args: LayerNormArgs,
    x: Vec<f32>,
    w: HostTensor,
    b: HostTensor,
}

impl LayerNorm {
    fn new(rng: &mut Rng, args: LayerNormArgs, dtype: DType) -> Result<Self, Failed> {
        let mut x = rng.vec(args.rows * args.dim, 3.0);
        for (r, row) in x.chunks_mut(args.dim.max(1)).enumerate() {
            let (offset, scale) = if r % 3 == 1 { (0.0, 1e-3) } else { ((r % 5) as f32 * 0.5 - 1.0, 1.0) };
            row.iter_mut().for_each(|v| *v = *v * scale + offset);
        }
        let w =
            HostTensor::from_f32_as(&rng.around_one(args.dim, 0.5), vec![args.dim], dtype).map_err(Failed::Setup)?;
        let b = HostTensor::from_f32_as(&rng.vec(args.dim, 1.0), vec![args.dim], dtype).map_err(Failed::Setup)?;
        Ok(LayerNorm { args, x, w, b })
    }
}

impl Exec for LayerNorm {
    type Out = Vec<f32>;
    fn exec(&self, be: &dyn Device, t: &mut Timer) -> Result<Vec<f32>> {
        let (w, b, x) = (be.weight(&self.w)?, be.weight(&self.b)?, put(be, &self.x)?);
        let len = self.args.rows * self.args.dim;
        let mut out = put(be, &poisoned(len))?;
        be.layer_norm(&self.args, &x, &w, &b, &mut out)?;
        let got = get_out(be, &out, len)?;
        t.time(|| be.layer_norm(&self.args, &x, &w, &b, &mut out))?;
        Ok(got)
    }
}

/// RoPE in place on heads uniform in [-2, 2).
struct Rope {
    args: RopeArgs,
    x: Vec<f32>,
}

impl Rope {
    fn new(rng: &mut Rng, args: RopeArgs) -> Self {
        Rope { args, x: guarded(rng.vec(args.tokens * args.heads * args.head_dim, 2.0)) }
    }
}

impl Exec for Rope {
    type Out = Vec<f32>;
    fn exec(&self, be: &dyn Device, t: &mut Timer) -> Result<Vec<f32>> {
        let mut x = put(be, &self.x)?;
        be.rope(&self.args, &mut x)?;
        let got = get_out(be, &x, self.args.tokens * self.args.heads * self.args.head_dim)?;
        t.time(|| be.rope(&self.args, &mut x))?;
        Ok(got)
    }
}
