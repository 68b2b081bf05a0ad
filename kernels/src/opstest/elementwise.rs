//! Ops-test cases of the elementwise ops: `geglu`, `softcap`, `scale`, `add` and `copy`.

use super::inputs::{get, get_out, guarded, poisoned, put, Exec, Rng, Timer, GUARD};
use crate::args::{AddArgs, CopyArgs, GegluArgs, ScaleArgs, SoftcapArgs};
use crate::backend::Backend;
use crate::error::Result;

/// `gelu_tanh(gate) * up` with gates over the tails of tanh, exact zeros and tiny values.
pub(super) struct Geglu {
    args: GegluArgs,
    gate: Vec<f32>,
    up: Vec<f32>,
}

impl Geglu {
    pub(super) fn new(rng: &mut Rng, args: GegluArgs) -> Self {
        let n = args.rows * args.width;
        let mut gate = rng.vec(n, 6.0);
        gate.iter_mut().step_by(97).for_each(|g| *g *= 1e-4);
        gate.iter_mut().skip(1).step_by(101).for_each(|g| *g = 0.0);
        Geglu { args, gate, up: rng.vec(n, 2.0) }
    }
}

impl Exec for Geglu {
    type Out = Vec<f32>;
    fn exec<B: Backend>(&self, be: &B, t: &mut Timer<B>) -> Result<Vec<f32>> {
        let (gate, up) = (put(be, &self.gate)?, put(be, &self.up)?);
        let mut out = put(be, &poisoned(self.args.rows * self.args.width))?;
        be.geglu(&self.args, &gate, &up, &mut out)?;
        let got = get_out(be, &out, self.args.rows * self.args.width)?;
        t.time(|| be.geglu(&self.args, &gate, &up, &mut out))?;
        Ok(got)
    }
}

/// `cap * tanh(x / cap)` in place on values up to three times the cap (the saturated tail).
pub(super) struct Softcap {
    args: SoftcapArgs,
    x: Vec<f32>,
}

impl Softcap {
    pub(super) fn new(rng: &mut Rng, args: SoftcapArgs) -> Self {
        Softcap { args, x: guarded(rng.vec(args.len, 3.0 * args.cap)) }
    }
}

impl Exec for Softcap {
    type Out = Vec<f32>;
    fn exec<B: Backend>(&self, be: &B, t: &mut Timer<B>) -> Result<Vec<f32>> {
        let mut x = put(be, &self.x)?;
        be.softcap(&self.args, &mut x)?;
        let got = get_out(be, &x, self.args.len)?;
        t.time(|| be.softcap(&self.args, &mut x))?;
        Ok(got)
    }
}

/// `x *= factor` in place.
pub(super) struct Scale {
    args: ScaleArgs,
    x: Vec<f32>,
}

impl Scale {
    pub(super) fn new(rng: &mut Rng, args: ScaleArgs) -> Self {
        Scale { args, x: guarded(rng.vec(args.len, 4.0)) }
    }
}

impl Exec for Scale {
    type Out = Vec<f32>;
    fn exec<B: Backend>(&self, be: &B, t: &mut Timer<B>) -> Result<Vec<f32>> {
        let mut x = put(be, &self.x)?;
        be.scale(&self.args, &mut x)?;
        let got = get_out(be, &x, self.args.len)?;
        t.time(|| be.scale(&self.args, &mut x))?;
        Ok(got)
    }
}

/// `acc = (acc + x) * scale` in place.
pub(super) struct Add {
    args: AddArgs,
    x: Vec<f32>,
    acc: Vec<f32>,
}

impl Add {
    pub(super) fn new(rng: &mut Rng, args: AddArgs) -> Self {
        Add { args, x: rng.vec(args.len, 2.0), acc: guarded(rng.vec(args.len, 2.0)) }
    }
}

impl Exec for Add {
    type Out = Vec<f32>;
    fn exec<B: Backend>(&self, be: &B, t: &mut Timer<B>) -> Result<Vec<f32>> {
        let x = put(be, &self.x)?;
        let mut acc = put(be, &self.acc)?;
        be.add(&self.args, &x, &mut acc)?;
        let got = get_out(be, &acc, self.args.len)?;
        t.time(|| be.add(&self.args, &x, &mut acc))?;
        Ok(got)
    }
}

/// `dst[dst_offset..][..len] = src[src_offset..][..len]` between random buffers: `src` ends
/// [`GUARD`] elements after the range, `dst` is compared whole (it keeps its values outside).
pub(super) struct Copy {
    args: CopyArgs,
    src: Vec<f32>,
    dst: Vec<f32>,
}

impl Copy {
    pub(super) fn new(rng: &mut Rng, args: CopyArgs) -> Self {
        let src = rng.vec(args.src_offset + args.len + GUARD, 1.0);
        let dst = rng.vec(args.dst_offset + args.len + GUARD, 1.0);
        Copy { args, src, dst }
    }
}

impl Exec for Copy {
    type Out = Vec<f32>;
    fn exec<B: Backend>(&self, be: &B, t: &mut Timer<B>) -> Result<Vec<f32>> {
        let src = put(be, &self.src)?;
        let mut dst = put(be, &self.dst)?;
        be.copy(&self.args, &src, &mut dst)?;
        let got = get(be, &dst)?;
        t.time(|| be.copy(&self.args, &src, &mut dst))?;
        Ok(got)
    }
}
