//! Ops-test cases of the elementwise ops: `geglu`, `softcap`, `scale`, `add` and `copy`.

use super::inputs::{get, get_out, guarded, on_both, poisoned, put, Exec, Failed, Pair, Rng, Timer, GUARD};
use super::{Device, OpCase};
use crate::args::{AddArgs, CopyArgs, GegluArgs, ScaleArgs, SoftcapArgs};
use crate::error::Result;
use crate::op::Op;

/// `geglu`: `gelu_tanh(gate) * up`.
#[derive(Clone, Debug, PartialEq)]
pub struct GegluCase {
    /// The op's arguments.
    pub args: GegluArgs,
}

impl OpCase for GegluCase {
    fn op(&self) -> Op {
        Op::Geglu
    }
    fn name(&self) -> String {
        let a = &self.args;
        format!("{} rows={} width={}", self.op(), a.rows, a.width)
    }
    fn bound(&self) -> f64 {
        1e-5
    }
    fn cost(&self) -> (usize, usize) {
        let a = &self.args;
        (12 * a.rows * a.width, 20 * a.rows * a.width)
    }
    fn run(&self, rng: &mut Rng, be: &dyn Device, perf: bool) -> Result<Pair<Vec<f32>>, Failed> {
        on_both(be, &Geglu::new(rng, self.args), perf)
    }
}

/// `softcap`: `cap * tanh(x / cap)` in place.
#[derive(Clone, Debug, PartialEq)]
pub struct SoftcapCase {
    /// The op's arguments.
    pub args: SoftcapArgs,
}

impl OpCase for SoftcapCase {
    fn op(&self) -> Op {
        Op::Softcap
    }
    fn name(&self) -> String {
        let a = &self.args;
        format!("{} len={} cap={}", self.op(), a.len, a.cap)
    }
    fn bound(&self) -> f64 {
        1e-5
    }
    fn cost(&self) -> (usize, usize) {
        let a = &self.args;
        (8 * a.len, 20 * a.len)
    }
    fn run(&self, rng: &mut Rng, be: &dyn Device, perf: bool) -> Result<Pair<Vec<f32>>, Failed> {
        on_both(be, &Softcap::new(rng, self.args), perf)
    }
}

/// `scale`: `x *= factor` in place.
#[derive(Clone, Debug, PartialEq)]
pub struct ScaleCase {
    /// The op's arguments.
    pub args: ScaleArgs,
}

impl OpCase for ScaleCase {
    fn op(&self) -> Op {
        Op::Scale
    }
    fn name(&self) -> String {
        let a = &self.args;
        format!("{} len={} factor={}", self.op(), a.len, a.factor)
    }
    fn bound(&self) -> f64 {
        1e-6
    }
    fn cost(&self) -> (usize, usize) {
        let a = &self.args;
        (8 * a.len, a.len)
    }
    fn run(&self, rng: &mut Rng, be: &dyn Device, perf: bool) -> Result<Pair<Vec<f32>>, Failed> {
        on_both(be, &Scale::new(rng, self.args), perf)
    }
}

/// `add`: `acc = (acc + x) * scale` in place.
#[derive(Clone, Debug, PartialEq)]
pub struct AddCase {
    /// The op's arguments.
    pub args: AddArgs,
}

impl OpCase for AddCase {
    fn op(&self) -> Op {
        Op::Add
    }
    fn name(&self) -> String {
        let a = &self.args;
        format!("{} len={} scale={}", self.op(), a.len, a.scale)
    }
    fn bound(&self) -> f64 {
        1e-6
    }
    fn cost(&self) -> (usize, usize) {
        let a = &self.args;
        (12 * a.len, 2 * a.len)
    }
    fn run(&self, rng: &mut Rng, be: &dyn Device, perf: bool) -> Result<Pair<Vec<f32>>, Failed> {
        on_both(be, &Add::new(rng, self.args), perf)
    }
}

/// `copy`: a range of one buffer into another (pure data movement).
#[derive(Clone, Debug, PartialEq)]
pub struct CopyCase {
    /// The op's arguments.
    pub args: CopyArgs,
}

impl OpCase for CopyCase {
    fn op(&self) -> Op {
        Op::Copy
    }
    fn name(&self) -> String {
        let a = &self.args;
        format!("{} len={} src_offset={} dst_offset={}", self.op(), a.len, a.src_offset, a.dst_offset)
    }
    fn bound(&self) -> f64 {
        0.0
    }
    fn cost(&self) -> (usize, usize) {
        let a = &self.args;
        (8 * a.len, 0)
    }
    fn run(&self, rng: &mut Rng, be: &dyn Device, perf: bool) -> Result<Pair<Vec<f32>>, Failed> {
        on_both(be, &Copy::new(rng, self.args), perf)
    }
}

/// `gelu_tanh(gate) * up` with gates over the tails of tanh, exact zeros and tiny values.
struct Geglu {
    args: GegluArgs,
    gate: Vec<f32>,
    up: Vec<f32>,
}

impl Geglu {
    fn new(rng: &mut Rng, args: GegluArgs) -> Self {
        let n = args.rows * args.width;
        let mut gate = rng.vec(n, 6.0);
        gate.iter_mut().step_by(97).for_each(|g| *g *= 1e-4);
        gate.iter_mut().skip(1).step_by(101).for_each(|g| *g = 0.0);
        Geglu { args, gate, up: rng.vec(n, 2.0) }
    }
}

impl Exec for Geglu {
    type Out = Vec<f32>;
    fn exec(&self, be: &dyn Device, t: &mut Timer) -> Result<Vec<f32>> {
        let (gate, up) = (put(be, &self.gate)?, put(be, &self.up)?);
        let mut out = put(be, &poisoned(self.args.rows * self.args.width))?;
        be.geglu(&self.args, &gate, &up, &mut out)?;
        let got = get_out(be, &out, self.args.rows * self.args.width)?;
        t.time(|| be.geglu(&self.args, &gate, &up, &mut out))?;
        Ok(got)
    }
}

/// `cap * tanh(x / cap)` in place on values up to three times the cap (the saturated tail).
struct Softcap {
    args: SoftcapArgs,
    x: Vec<f32>,
}

impl Softcap {
    fn new(rng: &mut Rng, args: SoftcapArgs) -> Self {
        Softcap { args, x: guarded(rng.vec(args.len, 3.0 * args.cap)) }
    }
}

impl Exec for Softcap {
    type Out = Vec<f32>;
    fn exec(&self, be: &dyn Device, t: &mut Timer) -> Result<Vec<f32>> {
        let mut x = put(be, &self.x)?;
        be.softcap(&self.args, &mut x)?;
        let got = get_out(be, &x, self.args.len)?;
        t.time(|| be.softcap(&self.args, &mut x))?;
        Ok(got)
    }
}

/// `x *= factor` in place.
struct Scale {
    args: ScaleArgs,
    x: Vec<f32>,
}

impl Scale {
    fn new(rng: &mut Rng, args: ScaleArgs) -> Self {
        Scale { args, x: guarded(rng.vec(args.len, 4.0)) }
    }
}

impl Exec for Scale {
    type Out = Vec<f32>;
    fn exec(&self, be: &dyn Device, t: &mut Timer) -> Result<Vec<f32>> {
        let mut x = put(be, &self.x)?;
        be.scale(&self.args, &mut x)?;
        let got = get_out(be, &x, self.args.len)?;
        t.time(|| be.scale(&self.args, &mut x))?;
        Ok(got)
    }
}

/// `acc = (acc + x) * scale` in place.
struct Add {
    args: AddArgs,
    x: Vec<f32>,
    acc: Vec<f32>,
}

impl Add {
    fn new(rng: &mut Rng, args: AddArgs) -> Self {
        Add { args, x: rng.vec(args.len, 2.0), acc: guarded(rng.vec(args.len, 2.0)) }
    }
}

impl Exec for Add {
    type Out = Vec<f32>;
    fn exec(&self, be: &dyn Device, t: &mut Timer) -> Result<Vec<f32>> {
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
struct Copy {
    args: CopyArgs,
    src: Vec<f32>,
    dst: Vec<f32>,
}

impl Copy {
    fn new(rng: &mut Rng, args: CopyArgs) -> Self {
        let src = rng.vec(args.src_offset + args.len + GUARD, 1.0);
        let dst = rng.vec(args.dst_offset + args.len + GUARD, 1.0);
        Copy { args, src, dst }
    }
}

impl Exec for Copy {
    type Out = Vec<f32>;
    fn exec(&self, be: &dyn Device, t: &mut Timer) -> Result<Vec<f32>> {
        let src = put(be, &self.src)?;
        let mut dst = put(be, &self.dst)?;
        be.copy(&self.args, &src, &mut dst)?;
        let got = get(be, &dst)?;
        t.time(|| be.copy(&self.args, &src, &mut dst))?;
        Ok(got)
    }
}
