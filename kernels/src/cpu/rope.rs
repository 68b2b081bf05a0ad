//! RoPE on the fast CPU path: rotate-half in place on `[tokens, heads, head_dim]`, with the
//! reference's semantics (see `crate::reference::rope`).
//!
//! The cos/sin table of each (position, pair) is computed exactly as the reference does (f32
//! `inv_freq = freq_scale / theta^(2i/d)`, f32 angle, std `cos`/`sin`), so results are
//! bit-identical to it, and applied to every head. The std trigonometry is the costly part, so
//! the last two tables (per RoPE configuration and position range) are kept per thread: the q
//! and k rotations of a layer, and every layer of the same kind in a chunk, share one table.
//! v1: auto-vectorised bodies.

use super::isa::Isa;
use super::simd::{self, rows_per_task, Job, PAR_MIN};
use crate::args::RopeArgs;
use crate::error::Result;
use rayon::prelude::*;
use std::cell::Cell;

thread_local! {
    /// Recently used RoPE tables, most recent first.
    static ROPE: Cell<Vec<RopeTable>> = const { Cell::new(Vec::new()) };
}

/// cos/sin of every rotating pair for a run of positions, for one RoPE configuration.
#[derive(Default)]
struct RopeTable {
    /// `(theta bits, freq_scale bits, head_dim, rotary_pairs)`.
    config: (u32, u32, usize, usize),
    /// First position of the table.
    pos0: usize,
    /// Positions in the table.
    len: usize,
    /// `cos[(p - pos0) * pairs + i]`.
    cos: Vec<f32>,
    /// `sin[(p - pos0) * pairs + i]`.
    sin: Vec<f32>,
}

impl RopeTable {
    /// Whether this table holds positions `pos0..pos0 + len` of `config`.
    fn covers(&self, config: (u32, u32, usize, usize), pos0: usize, len: usize) -> bool {
        self.config == config && self.pos0 <= pos0 && pos0 + len <= self.pos0 + self.len
    }

    /// Recomputes the table for `a` (positions `a.pos0..a.pos0 + a.tokens`), as the reference.
    fn fill(&mut self, a: &RopeArgs) {
        let pairs = a.rotary_pairs;
        self.config = rope_config(a);
        (self.pos0, self.len) = (a.pos0, a.tokens);
        self.cos.resize(a.tokens * pairs, 0.0);
        self.sin.resize(a.tokens * pairs, 0.0);
        // The reference's frequencies, computed once per table (not once per position).
        let inv_freq = a.inverse_frequencies();
        let row = |t: usize, cos: &mut [f32], sin: &mut [f32]| {
            let pos = (a.pos0 + t) as f32;
            for ((c, s), f) in cos.iter_mut().zip(sin.iter_mut()).zip(&inv_freq) {
                let angle = pos * f;
                *c = angle.cos();
                *s = angle.sin();
            }
        };
        if pairs == 0 {
            return;
        }
        if a.tokens * pairs < PAR_MIN / 8 {
            for (t, (c, s)) in self.cos.chunks_exact_mut(pairs).zip(self.sin.chunks_exact_mut(pairs)).enumerate() {
                row(t, c, s);
            }
        } else {
            let (cos, sin) = (self.cos.par_chunks_mut(pairs), self.sin.par_chunks_mut(pairs));
            cos.zip(sin).enumerate().for_each(|(t, (c, s))| row(t, c, s));
        }
    }
}

fn rope_config(a: &RopeArgs) -> (u32, u32, usize, usize) {
    (a.theta.to_bits(), a.freq_scale.to_bits(), a.head_dim, a.rotary_pairs)
}

/// Rotate-half of whole heads: `x` holds `heads` heads of one position per table row.
struct Rotate<'a> {
    x: &'a mut [f32],
    heads: usize,
    head_dim: usize,
    pairs: usize,
    cos: &'a [f32],
    sin: &'a [f32],
}

impl Job for Rotate<'_> {
    type Out = ();
    #[inline(always)]
    fn run<const FMA: bool>(self) {
        let pairs = self.pairs;
        let token_len = self.heads * self.head_dim;
        for (t, token) in self.x.chunks_exact_mut(token_len).enumerate() {
            let (cos, sin) = (&self.cos[t * pairs..(t + 1) * pairs], &self.sin[t * pairs..(t + 1) * pairs]);
            for head in token.chunks_exact_mut(self.head_dim) {
                let (lo, hi) = head.split_at_mut(self.head_dim / 2);
                // Plain multiplies and adds (never fused): the reference's rounding exactly.
                for (((x1, x2), c), s) in lo.iter_mut().zip(hi.iter_mut()).zip(cos).zip(sin) {
                    let (a, b) = (*x1, *x2);
                    *x1 = a * c - b * s;
                    *x2 = b * c + a * s;
                }
            }
        }
    }
}

/// Rotates the first `tokens * heads * head_dim` elements of `x` in place.
pub(crate) fn rope(isa: Isa, a: &RopeArgs, x: &mut [f32]) -> Result<()> {
    let len = a.check(x.len())?;
    if len == 0 || a.rotary_pairs == 0 {
        return Ok(());
    }

    let mut tables = ROPE.take();
    let config = rope_config(a);
    let hit = tables.iter().position(|t| t.covers(config, a.pos0, a.tokens));
    let table = match hit {
        Some(i) => tables.remove(i),
        None => {
            // Reuse the least recently used table's vectors.
            let mut t = if tables.len() >= 2 { tables.pop().unwrap_or_default() } else { RopeTable::default() };
            t.fill(a);
            t
        }
    };
    let pairs = a.rotary_pairs;
    let first = (a.pos0 - table.pos0) * pairs;
    let (cos, sin) = (&table.cos[first..first + a.tokens * pairs], &table.sin[first..first + a.tokens * pairs]);
    let (heads, head_dim) = (a.heads, a.head_dim);
    let token_len = heads * head_dim;
    if len < PAR_MIN {
        simd::run(isa, Rotate { x: &mut x[..len], heads, head_dim, pairs, cos, sin });
    } else {
        let tokens = rows_per_task(token_len);
        x[..len].par_chunks_mut(tokens * token_len).enumerate().for_each(|(i, x)| {
            let span = i * tokens * pairs..(i * tokens * pairs + x.len() / token_len * pairs);
            simd::run(isa, Rotate { x, heads, head_dim, pairs, cos: &cos[span.clone()], sin: &sin[span] });
        });
    }
    tables.insert(0, table);
    ROPE.set(tables);
    Ok(())
}
