//! Elementwise ops, the KV-cache write and the embedding gather on the fast CPU path, with the
//! reference's semantics and argument checks (see `crate::cpu::elementwise`):
//!
//! - `geglu`:   `out = gelu_tanh(gate) * up` over `rows * width` (vectorised tanh)
//! - `softcap`: `x = cap * tanh(x / cap)` in place (vectorised tanh)
//! - `scale`:   `x *= factor`;  `add`: `acc = (acc + x) * scale`
//! - `copy`, `kv_write` (row copies into the ring; tokens overwritten within the call are skipped)
//! - `embed`: rows gathered from the mapped table, widened, scaled
//!
//! Layout: flat f32 buffers. The four maps share one [`Job`] ([`Map`]): a match on the op around
//! 16-lane loops, compiled per instruction set by [`simd::run`]. Calls of [`PAR_MIN`] elements
//! or more are split into chunks run by rayon; smaller ones run on the calling thread.
//! v1: auto-vectorised bodies (the transcendentals are branch-free, see [`simd`]).

use super::isa::Isa;
use super::simd::{self, gelu_tanh, rows_per_task, tanh, Job, PAR_MIN};
use crate::args::{AddArgs, EmbedArgs, GegluArgs, KvWriteArgs, ScaleArgs, SoftcapArgs};
use crate::cpu::{bad_arg, numel};
use crate::error::{check_len, Result};
use crate::tensor::HostTensor;
use rayon::prelude::*;

/// Elements per parallel task of a map.
const CHUNK: usize = 1 << 14;

/// One elementwise op; the slices are the inputs matching the output chunk.
#[derive(Clone, Copy)]
enum Op<'a> {
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
fn map(isa: Isa, op: Op, out: &mut [f32]) {
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
    const OP: &str = "geglu";
    let len = numel(OP, &[a.rows, a.width])?;
    check_len(OP, "gate", gate.len(), len)?;
    check_len(OP, "up", up.len(), len)?;
    check_len(OP, "out", out.len(), len)?;
    map(isa, Op::Geglu { gate: &gate[..len], up: &up[..len] }, &mut out[..len]);
    Ok(())
}

/// `out = gelu_tanh(gate) * up` on validated, equally long slices.
pub(crate) fn geglu_rows(isa: Isa, gate: &[f32], up: &[f32], out: &mut [f32]) {
    map(isa, Op::Geglu { gate, up }, out);
}

/// `x = cap * tanh(x / cap)` over the first `len` elements.
pub(crate) fn softcap(isa: Isa, a: &SoftcapArgs, x: &mut [f32]) -> Result<()> {
    check_len("softcap", "x", x.len(), a.len)?;
    if !(a.cap.is_finite() && a.cap > 0.0) {
        return Err(bad_arg("softcap", format!("cap {} must be positive", a.cap)));
    }
    map(isa, Op::Softcap(a.cap), &mut x[..a.len]);
    Ok(())
}

/// `x *= factor` over the first `len` elements.
pub(crate) fn scale(isa: Isa, a: &ScaleArgs, x: &mut [f32]) -> Result<()> {
    check_len("scale", "x", x.len(), a.len)?;
    map(isa, Op::Scale(a.factor), &mut x[..a.len]);
    Ok(())
}

/// `acc = (acc + x) * scale` over the first `len` elements.
pub(crate) fn add(isa: Isa, a: &AddArgs, x: &[f32], acc: &mut [f32]) -> Result<()> {
    check_len("add", "x", x.len(), a.len)?;
    check_len("add", "acc", acc.len(), a.len)?;
    map(isa, Op::Add { x: &x[..a.len], scale: a.scale }, &mut acc[..a.len]);
    Ok(())
}

/// Keys and values of positions `pos0..pos0 + tokens` into slots `pos % capacity`. Only the last
/// `capacity` tokens are copied: the earlier ones would be overwritten within the call.
pub(crate) fn kv_write(a: &KvWriteArgs, k: &[f32], v: &[f32], cache_k: &mut [f32], cache_v: &mut [f32]) -> Result<()> {
    crate::cpu::attention::validate_kv_write(a, k.len(), v.len(), cache_k.len(), cache_v.len())?;
    let d = a.kv_dim;
    for (src, cache) in [(k, cache_k), (v, cache_v)] {
        for t in a.tokens.saturating_sub(a.capacity)..a.tokens {
            let slot = (a.pos0 + t) % a.capacity;
            cache[slot * d..(slot + 1) * d].copy_from_slice(&src[t * d..(t + 1) * d]);
        }
    }
    Ok(())
}

/// `out[t, j] = table[ids[t], col_offset + j] * scale`: rows widened from the mapped table
/// (only the gathered rows are read), in parallel over tokens for large gathers.
pub(crate) fn embed(isa: Isa, a: &EmbedArgs, table: &HostTensor, ids: &[u32], out: &mut [f32]) -> Result<()> {
    const OP: &str = "embed";
    crate::cpu::embed::validate(a, table.shape(), ids)?;
    let len = numel(OP, &[a.tokens, a.width])?;
    check_len(OP, "out", out.len(), len)?;
    if a.width == 0 {
        return Ok(());
    }
    let row_len = table.row_len();
    let gather = |t0: usize, out: &mut [f32]| {
        for (dst, &id) in out.chunks_exact_mut(a.width).zip(&ids[t0..]) {
            simd::widen(table, id as usize * row_len + a.col_offset, dst);
        }
        map(isa, Op::Scale(a.scale), out);
    };
    if len < PAR_MIN {
        gather(0, &mut out[..len]);
    } else {
        let rows = rows_per_task(a.width);
        out[..len].par_chunks_mut(rows * a.width).enumerate().for_each(|(i, out)| gather(i * rows, out));
    }
    Ok(())
}
