//! Elementwise ops on the fast CPU path, with the reference's semantics (see
//! `crate::reference::elementwise`):
//!
//! - `geglu`:   `out = gelu_tanh(gate) * up` over `rows * width` (vectorised tanh)
//! - `softcap`: `x = cap * tanh(x / cap)` in place (vectorised tanh)
//! - `scale`:   `x *= factor`;  `add`: `acc = (acc + x) * scale`
//!
//! Layout: flat f32 buffers. The four maps share one [`Job`] ([`Map`]): a match on the op around
//! 16-lane loops, compiled per instruction set by [`simd::run`]. Calls of [`PAR_MIN`] elements
//! or more are split into chunks run by rayon; smaller ones run on the calling thread.
//! v1: auto-vectorised bodies (the transcendentals are branch-free, see [`simd`]).

use super::isa::Isa;
use super::simd::{self, gelu_tanh, tanh, Job, PAR_MIN};
use crate::args::{AddArgs, GegluArgs, ScaleArgs, SoftcapArgs};
use crate::error::Result;
use rayon::prelude::*;

/// Elements per parallel task of a map.
const CHUNK: usize = 1 << 14;

/// One elementwise op; the slices are the inputs matching the output chunk.
#[derive(Clone, Copy)]
pub(super) enum Op<'a> {
    /// `out = gelu_tanh(gate) * up`.
    Geglu { gate: &'a [f32], up: &'a [f32] },
    /// `out = tanh(out / cap) * cap`.
    Softcap(f32),
    /// `out *= factor`.
    Scale(f32),
    /// `out = (out + x) * scale`.
    Add { x: &'a [f32], scale: f32 },
}

impl<'a> Op<'a> {
    /// The op restricted to elements `start..start + len`.
    fn slice(self, start: usize, len: usize) -> Op<'a> {
        match self {
            Op::Geglu { gate, up } => Op::Geglu { gate: &gate[start..start + len], up: &up[start..start + len] },
            Op::Add { x, scale } => Op::Add { x: &x[start..start + len], scale },
            other => other,
        }
    }
}

/// An op over one output chunk.
struct Map<'a> {
    op: Op<'a>,
    out: &'a mut [f32],
}

impl Job for Map<'_> {
    type Out = ();
    #[inline(always)]
    fn run<const FMA: bool>(self) {
        match self.op {
            Op::Geglu { gate, up } => {
                for ((o, g), u) in self.out.iter_mut().zip(gate).zip(up) {
                    *o = gelu_tanh::<FMA>(*g) * u;
                }
            }
            Op::Softcap(cap) => {
                for v in self.out.iter_mut() {
                    *v = tanh::<FMA>(*v / cap) * cap;
                }
            }
            Op::Scale(factor) => {
                for v in self.out.iter_mut() {
                    *v *= factor;
                }
            }
            Op::Add { x, scale } => {
                for (s, v) in self.out.iter_mut().zip(x) {
                    *s = (*s + v) * scale;
                }
            }
        }
    }
}

/// Runs `op` over all of `out`: on this thread below [`PAR_MIN`] elements, else in rayon chunks.
pub(super) fn map(isa: Isa, op: Op, out: &mut [f32]) {
    if out.len() < PAR_MIN {
        return simd::run(isa, Map { op, out });
    }
    out.par_chunks_mut(CHUNK).enumerate().for_each(|(i, out)| {
        let op = op.slice(i * CHUNK, out.len());
        simd::run(isa, Map { op, out });
    });
}

/// `out = gelu_tanh(gate) * up` over the first `rows * width` elements (the geglu from a MoE
/// expert calls [`geglu_rows`] directly).
pub(crate) fn geglu(isa: Isa, a: &GegluArgs, gate: &[f32], up: &[f32], out: &mut [f32]) -> Result<()> {
    let len = a.check(gate.len(), up.len(), out.len())?;
    map(isa, Op::Geglu { gate: &gate[..len], up: &up[..len] }, &mut out[..len]);
    Ok(())
}

/// `out = gelu_tanh(gate) * up` on validated, equally long slices.
pub(crate) fn geglu_rows(isa: Isa, gate: &[f32], up: &[f32], out: &mut [f32]) {
    map(isa, Op::Geglu { gate, up }, out);
}

/// `x = cap * tanh(x / cap)` over the first `len` elements.
pub(crate) fn softcap(isa: Isa, a: &SoftcapArgs, x: &mut [f32]) -> Result<()> {
    a.check(x.len())?;
    map(isa, Op::Softcap(a.cap), &mut x[..a.len]);
    Ok(())
}

/// `x *= factor` over the first `len` elements.
pub(crate) fn scale(isa: Isa, a: &ScaleArgs, x: &mut [f32]) -> Result<()> {
    a.check(x.len())?;
    map(isa, Op::Scale(a.factor), &mut x[..a.len]);
    Ok(())
}

/// `acc = (acc + x) * scale` over the first `len` elements.
pub(crate) fn add(isa: Isa, a: &AddArgs, x: &[f32], acc: &mut [f32]) -> Result<()> {
    a.check(x.len(), acc.len())?;
    map(isa, Op::Add { x: &x[..a.len], scale: a.scale }, &mut acc[..a.len]);
    Ok(())
}
