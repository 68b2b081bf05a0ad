//! Ops-test cases of `argmax`: the indices must equal the reference's exactly (ties to the
//! lowest index; `len` for a row without a choice), then the log-probabilities are compared as
//! values (a row without a choice must give NaN on both sides and is then left out).

use super::inputs::{get_out, on_both, poisoned, put, Exec, Failed, Pair, Rng, Timer};
use super::{Device, OpCase};
use crate::args::ArgmaxArgs;
use crate::error::Result;
use crate::op::Op;

/// `argmax`: the greedy choice per row; `special` adds repeated maxima and rows without a choice.
#[derive(Clone, Debug, PartialEq)]
pub struct ArgmaxCase {
    /// The op's arguments.
    pub args: ArgmaxArgs,
    /// Ties, NaN, +inf and all -inf rows.
    pub special: bool,
}

impl OpCase for ArgmaxCase {
    fn op(&self) -> Op {
        Op::Argmax
    }
    fn name(&self) -> String {
        let a = &self.args;
        format!("{} rows={} len={}{}", self.op(), a.rows, a.len, if self.special { " special" } else { "" })
    }
    fn bound(&self) -> f64 {
        1e-5
    }
    fn cost(&self) -> (usize, usize) {
        let a = &self.args;
        (4 * a.rows * a.len + 8 * a.rows, 4 * a.rows * a.len)
    }
    fn run(&self, rng: &mut Rng, be: &dyn Device, perf: bool) -> Result<Pair<Vec<f32>>, Failed> {
        argmax(be, &Argmax::new(rng, self.args, self.special), perf)
    }
}

/// Logits uniform in [-20, 20) (`special`: on a coarse grid so the maximum repeats in a row, a
/// row with a NaN, one with +inf, one of -inf only and one whose maximum is in its last element).
struct Argmax {
    args: ArgmaxArgs,
    x: Vec<f32>,
}

impl Argmax {
    fn new(rng: &mut Rng, args: ArgmaxArgs, special: bool) -> Self {
        let (rows, len) = (args.rows, args.len);
        let mut x = rng.vec(rows * len, 20.0);
        if special {
            x.iter_mut().for_each(|v| *v = v.round());
            let row = |r: usize| r * len..(r + 1) * len;
            if rows > 1 {
                x[row(1)][len / 2] = f32::NAN;
            }
            if rows > 2 {
                x[row(2)][len / 3] = f32::INFINITY;
            }
            if rows > 3 {
                x[row(3)].fill(f32::NEG_INFINITY);
            }
            if rows > 4 {
                x[row(4)][len - 1] = 30.0;
            }
        }
        Argmax { args, x }
    }
}

impl Exec for Argmax {
    /// `[rows, 2]`: index (as f32) and log-probability per row.
    type Out = Vec<f32>;
    fn exec(&self, be: &dyn Device, t: &mut Timer) -> Result<Vec<f32>> {
        let x = put(be, &self.x)?;
        let mut out = put(be, &poisoned(2 * self.args.rows))?;
        be.argmax(&self.args, &x, &mut out)?;
        let got = get_out(be, &out, 2 * self.args.rows)?;
        t.time(|| be.argmax(&self.args, &x, &mut out))?;
        Ok(got)
    }
}

/// Runs `argmax` on both backends; fails on any index that differs, else returns the
/// log-probabilities of the rows that have a choice.
fn argmax(be: &dyn Device, op: &Argmax, perf: bool) -> Result<Pair<Vec<f32>>, Failed> {
    let Pair { want: w, got: g, per_call } = on_both(be, op, perf)?;
    let none = op.args.len as f32;
    let (mut want, mut got) = (Vec::new(), Vec::new());
    for r in 0..op.args.rows {
        let (wi, gi, wl, gl) = (w[2 * r], g[2 * r], w[2 * r + 1], g[2 * r + 1]);
        if wi != gi {
            return Err(Failed::Mismatch(format!("row {r}: index {gi}, want {wi}")));
        }
        if wi == none {
            if !gl.is_nan() {
                return Err(Failed::Mismatch(format!("row {r} has no choice: logprob {gl}, want NaN")));
            }
        } else {
            want.push(wl);
            got.push(gl);
        }
    }
    Ok(Pair { want, got, per_call })
}
