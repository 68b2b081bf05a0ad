//! Causal GQA attention on the fast CPU path, with the reference's semantics and argument checks
//! (see `crate::reference::attention` and [`AttentionArgs`]): the query at position `p` sees keys
//! `first(p)..=p` (`first(p) = p + 1 - window` on sliding layers); key `j < pos0` is cache slot
//! `j % capacity`, the others are rows of the new `k` / `v`. All arithmetic is f32.
//!
//! Work items: the query rows of one KV head are its group's `n_heads / n_kv_heads` query heads
//! of a block of tokens (row `r` = token `r / group`, head `r % group`), so each key and value
//! row is read once for the whole group. An item is (query block, KV head, key split); items run
//! in parallel (rayon) and each leaves, per row, the normalised output, its running max `m` and
//! sum `l` in a slot; a final pass merges the splits (flash-decoding) into `out`. Splits appear
//! only when there are too few (block, head) pairs to occupy the threads: decode on long caches.
//!
//! Two item kernels, both online softmax over key blocks of [`BK`] (max, rescale, sum in f32):
//! - small (fewer than 16 rows per KV head: decode): per row and key block, dot products four
//!   keys at a time, then `o = o * alpha + P V` with 64 output dims held in registers; the
//!   block's key and value rows stay in cache for the other rows of the group. Auto-vectorised.
//! - tile (prefill): flash-style tiles of up to [`TILE_ROWS`] query rows x [`BK`] keys. Queries
//!   are packed transposed in panels of 16 rows (`qt[panel][dim][16]`), so `S^T = K Q^T` is a
//!   register-blocked product of broadcast key elements and query vectors, and the softmax
//!   statistics are vectors over 16 rows. `O += P V` is register-blocked over 4 rows x 64
//!   dims. Tiles fully below the diagonal and inside the window skip the mask; the key range of
//!   a query block is clipped to its visible keys (causal and sliding window).
//!
//! Versions: v1 auto-vectorised bodies compiled per instruction set ([`simd::run`]); v2 AVX-512
//! intrinsics for the two tile products ([`x86`]).

use super::isa::Isa;
use super::simd::{self, exp, madd, with_scratch, Job, LANES, PAR_MIN};
use crate::args::{AttentionArgs, KvWriteArgs};
use crate::error::Result;
use rayon::prelude::*;
use std::cell::Cell;

/// Keys per block of the online softmax.
const BK: usize = 64;
/// Keys per register tile of the `K Q^T` product (the key block is padded to a multiple).
const KC: usize = 8;
/// Query rows (tokens x group heads) per prefill tile at head_dim <= 256; half at 512, so the
/// packed queries and the outputs of a tile stay within half of a 1 MB L2.
const TILE_ROWS: usize = 128;
/// Rows x dims of the `P V` register tile.
const PV_ROWS: usize = 4;
const PV_DIMS: usize = 64;

thread_local! {
    /// Per-call partial results of every item.
    static PARTIALS: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
    /// Per-item working memory of the tile kernel (packed tiles, scores).
    static WORK: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
}

/// The call: arguments, buffers and the partition into items.
struct Plan<'a> {
    a: &'a AttentionArgs,
    q: &'a [f32],
    k: &'a [f32],
    v: &'a [f32],
    cache_k: &'a [f32],
    cache_v: &'a [f32],
    /// Query heads per KV head.
    group: usize,
    /// Tokens per query block.
    tq: usize,
    /// Rows per slot (`tq * group`, rounded up to 16 for the tile kernel).
    rows_cap: usize,
    /// Whether items use the tile kernel.
    tiled: bool,
    /// Key splits per (query block, KV head).
    splits: usize,
    /// Items: query blocks x KV heads x splits.
    items: usize,
}

/// One item's share: tokens `t0..t1` of KV head `g`, keys `lo..hi`.
#[derive(Clone, Copy)]
struct Item {
    t0: usize,
    t1: usize,
    g: usize,
    lo: usize,
    hi: usize,
}

impl<'a> Plan<'a> {
    fn new(a: &'a AttentionArgs, q: &'a [f32], k: &'a [f32], v: &'a [f32], ck: &'a [f32], cv: &'a [f32]) -> Self {
        let group = a.n_heads / a.n_kv_heads;
        let tiled = a.tokens * group >= LANES;
        let tq = if tiled { (TILE_ROWS * 256 / a.head_dim.max(256) / group).max(1) } else { a.tokens };
        let rows_cap = if tiled { (tq * group).next_multiple_of(LANES) } else { tq * group };
        let blocks = a.tokens.div_ceil(tq) * a.n_kv_heads;
        let threads = rayon::current_num_threads();
        // Keys seen by the last query block: the most any item has.
        let last = a.pos0 + a.tokens - 1;
        let keys = last + 1 - first_key(a, (a.pos0 + a.tokens - tq.min(a.tokens)).max(a.pos0));
        let splits = if blocks >= 2 * threads { 1 } else { (2 * threads).div_ceil(blocks).min(keys / 256).max(1) };
        let mut plan = Plan { a, q, k, v, cache_k: ck, cache_v: cv, group, tq, rows_cap, tiled, splits, items: 0 };
        plan.items = blocks * splits;
        plan
    }

    /// Floats per item slot: outputs, then `m`, then `l`, of `rows_cap` rows.
    fn slot_len(&self) -> usize {
        self.rows_cap * (self.a.head_dim + 2)
    }

    fn item(&self, i: usize) -> Item {
        let (block, s) = (i / self.splits, i % self.splits);
        let (qb, g) = (block / self.a.n_kv_heads, block % self.a.n_kv_heads);
        let t0 = qb * self.tq;
        let t1 = (t0 + self.tq).min(self.a.tokens);
        let lo = first_key(self.a, self.a.pos0 + t0);
        let n = self.a.pos0 + t1 - lo;
        Item { t0, t1, g, lo: lo + n * s / self.splits, hi: lo + n * (s + 1) / self.splits }
    }

    /// Query row `r` of `it` (token `t0 + r / group`, head `g * group + r % group`).
    fn q_row(&self, it: &Item, r: usize) -> &'a [f32] {
        let d = self.a.head_dim;
        let (t, h) = (it.t0 + r / self.group, it.g * self.group + r % self.group);
        &self.q[(t * self.a.n_heads + h) * d..][..d]
    }

    /// The key and value rows of KV head `g` at position `p`.
    fn kv(&self, p: usize, g: usize) -> (&'a [f32], &'a [f32]) {
        let (k, v, row) = if p < self.a.pos0 {
            (self.cache_k, self.cache_v, p % self.a.capacity)
        } else {
            (self.k, self.v, p - self.a.pos0)
        };
        let start = (row * self.a.n_kv_heads + g) * self.a.head_dim;
        (&k[start..start + self.a.head_dim], &v[start..start + self.a.head_dim])
    }
}

/// The first key a query at `pos` sees.
fn first_key(a: &AttentionArgs, pos: usize) -> usize {
    a.window.map_or(0, |w| (pos + 1).saturating_sub(w))
}

/// Attention of `tokens` queries at positions `pos0..pos0 + tokens` into `out`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn attention(
    isa: Isa,
    a: &AttentionArgs,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    cache_k: &[f32],
    cache_v: &[f32],
    out: &mut [f32],
) -> Result<()> {
    let q_len = a.check(q.len(), k.len(), v.len(), cache_k.len(), cache_v.len(), out.len())?;
    if q_len == 0 {
        return Ok(());
    }
    let plan = Plan::new(a, q, k, v, cache_k, cache_v);
    let slot_len = plan.slot_len();
    with_scratch(&PARTIALS, plan.items * slot_len, |partials| {
        let run_item = |i: usize, slot: &mut [f32]| {
            let it = plan.item(i);
            if plan.tiled {
                tile_item(isa, &plan, it, slot);
            } else {
                simd::run(isa, Small { plan: &plan, it, slot });
            }
        };
        let work = q_len * (a.pos0 + a.tokens - first_key(a, a.pos0));
        if plan.items == 1 || work < PAR_MIN * 4 {
            partials.chunks_exact_mut(slot_len).enumerate().for_each(|(i, slot)| run_item(i, slot));
        } else {
            partials.par_chunks_exact_mut(slot_len).enumerate().for_each(|(i, slot)| run_item(i, slot));
        }
        merge(&plan, partials, &mut out[..q_len]);
    });
    Ok(())
}

/// Writes each query row's output: the one split's slot as is, or the splits' outputs weighted
/// by their share `l_s * exp(m_s - max m)` of the softmax sum.
fn merge<'p>(plan: &Plan, partials: &'p [f32], out: &mut [f32]) {
    let a = plan.a;
    let (d, slot_len) = (a.head_dim, plan.slot_len());
    let merge_token = |t: usize, out_t: &mut [f32]| {
        for (h, dst) in out_t.chunks_exact_mut(d).enumerate() {
            let (qb, g) = (t / plan.tq, h / plan.group);
            let r = (t - qb * plan.tq) * plan.group + h % plan.group;
            let first = (qb * a.n_kv_heads + g) * plan.splits;
            let slots = partials[first * slot_len..(first + plan.splits) * slot_len].chunks_exact(slot_len);
            let row = |slot: &'p [f32]| {
                let (o, stats) = slot.split_at(plan.rows_cap * d);
                (&o[r * d..(r + 1) * d], stats[r], stats[plan.rows_cap + r])
            };
            if plan.splits == 1 {
                dst.copy_from_slice(row(&partials[first * slot_len..]).0);
                continue;
            }
            let m_max = slots.clone().map(|s| row(s).1).fold(f32::NEG_INFINITY, f32::max);
            let total: f32 = slots.clone().map(|s| row(s).2 * (row(s).1 - m_max).exp()).sum();
            dst.fill(0.0);
            for s in slots {
                let (o, m, l) = row(s);
                let w = if l > 0.0 { l * (m - m_max).exp() / total } else { 0.0 };
                if w > 0.0 {
                    for (x, y) in dst.iter_mut().zip(o) {
                        *x += w * y;
                    }
                }
            }
        }
    };
    let token_len = a.n_heads * d;
    if out.len() < PAR_MIN {
        out.chunks_exact_mut(token_len).enumerate().for_each(|(t, o)| merge_token(t, o));
    } else {
        out.par_chunks_exact_mut(token_len).enumerate().for_each(|(t, o)| merge_token(t, o));
    }
}

/// Folds a block of scores `s` (masked ones `-inf`) into a row's running max `m` and sum `l`:
/// `s` becomes `exp(s - m_new)`; returns the factor `exp(m_old - m_new)` for the row's output.
#[inline(always)]
fn online_row<const FMA: bool>(s: &mut [f32], m: &mut f32, l: &mut f32) -> f32 {
    let mut mx = [f32::NEG_INFINITY; LANES];
    for c in s.chunks(LANES) {
        for (x, v) in mx.iter_mut().zip(c) {
            *x = if *v > *x { *v } else { *x };
        }
    }
    let m_new = mx.iter().fold(*m, |a, &b| if b > a { b } else { a });
    if m_new == f32::NEG_INFINITY {
        s.fill(0.0);
        return 1.0;
    }
    let alpha = exp::<FMA>(*m - m_new);
    let mut sum = [0.0f32; LANES];
    for c in s.chunks_mut(LANES) {
        for (acc, v) in sum.iter_mut().zip(c.iter_mut()) {
            *v = exp::<FMA>(*v - m_new);
            *acc += *v;
        }
    }
    *l = *l * alpha + simd::hsum(sum);
    *m = m_new;
    alpha
}

/// Normalises the outputs `o` of the first `rows` rows by their softmax sums `l` (0 if empty).
#[inline(always)]
fn finish_rows(o: &mut [f32], l: &[f32], rows: usize, d: usize) {
    for (r, &l) in l.iter().enumerate().take(rows) {
        let inv = if l > 0.0 { 1.0 / l } else { 0.0 };
        for x in &mut o[r * d..(r + 1) * d] {
            *x *= inv;
        }
    }
}

/// The small-row kernel (decode): fewer than 16 query rows per KV head. Per block of keys and
/// per row: scores four keys at a time, the online softmax, then `o = o * alpha + P V` with the
/// output in registers 64 dims at a time; the block's key and value rows stay in cache across
/// the rows of the group.
struct Small<'p, 'a> {
    plan: &'p Plan<'a>,
    it: Item,
    slot: &'p mut [f32],
}

impl Job for Small<'_, '_> {
    type Out = ();
    #[inline(always)]
    fn run<const FMA: bool>(self) {
        let (plan, it) = (self.plan, self.it);
        let a = plan.a;
        let d = a.head_dim;
        let rows = (it.t1 - it.t0) * plan.group;
        let (o, stats) = self.slot.split_at_mut(plan.rows_cap * d);
        o.fill(0.0);
        let (m, l) = stats.split_at_mut(plan.rows_cap);
        m.fill(f32::NEG_INFINITY);
        l.fill(0.0);
        let mut s = [0.0f32; BK];
        let (mut krows, mut vrows): ([&[f32]; BK], [&[f32]; BK]) = ([&[]; BK], [&[]; BK]);
        let mut j0 = it.lo;
        while j0 < it.hi {
            let n = BK.min(it.hi - j0);
            for c in 0..n {
                (krows[c], vrows[c]) = plan.kv(j0 + c, it.g);
            }
            for r in 0..rows {
                let q = plan.q_row(&it, r);
                let mut c = 0;
                while c + 4 <= n {
                    let k4 = [krows[c], krows[c + 1], krows[c + 2], krows[c + 3]];
                    for (x, dot) in s[c..c + 4].iter_mut().zip(dot4::<FMA>(q, k4)) {
                        *x = a.scale * dot;
                    }
                    c += 4;
                }
                for c in c..n {
                    s[c] = a.scale * simd::dot::<FMA>(q, krows[c]);
                }
                let pos = a.pos0 + it.t0 + r / plan.group;
                let first = first_key(a, pos);
                if j0 + n - 1 > pos || j0 < first {
                    for (c, x) in s[..n].iter_mut().enumerate() {
                        if j0 + c > pos || j0 + c < first {
                            *x = f32::NEG_INFINITY;
                        }
                    }
                }
                let alpha = online_row::<FMA>(&mut s[..n], &mut m[r], &mut l[r]);
                weighted_row::<FMA>(&s[..n], &vrows[..n], alpha, &mut o[r * d..(r + 1) * d]);
            }
            j0 += n;
        }
        finish_rows(o, l, rows, d);
    }
}

/// `q . k[j]` for four key rows at once (four independent 16-lane accumulators).
#[inline(always)]
fn dot4<const FMA: bool>(q: &[f32], k: [&[f32]; 4]) -> [f32; 4] {
    let n = q.len();
    let k = k.map(|k| &k[..n]);
    let whole = n / LANES * LANES;
    let mut acc = [[0.0f32; LANES]; 4];
    for i in (0..whole).step_by(LANES) {
        let qc = &q[i..i + LANES];
        for (acc, k) in acc.iter_mut().zip(&k) {
            for ((x, q), k) in acc.iter_mut().zip(qc).zip(&k[i..i + LANES]) {
                *x = madd::<FMA>(*q, *k, *x);
            }
        }
    }
    for (acc, k) in acc.iter_mut().zip(&k) {
        for ((x, q), k) in acc.iter_mut().zip(&q[whole..]).zip(&k[whole..]) {
            *x = madd::<FMA>(*q, *k, *x);
        }
    }
    acc.map(simd::hsum)
}

/// `o = o * alpha + sum_c p[c] v[c]`, accumulating 64 dims at a time in registers.
#[inline(always)]
fn weighted_row<const FMA: bool>(p: &[f32], v: &[&[f32]], alpha: f32, o: &mut [f32]) {
    let d = o.len();
    let whole = d / PV_DIMS * PV_DIMS;
    for (d0, oc) in (0..whole).step_by(PV_DIMS).zip(o.chunks_exact_mut(PV_DIMS)) {
        let mut acc = [0.0f32; PV_DIMS];
        for (x, y) in acc.iter_mut().zip(oc.iter()) {
            *x = y * alpha;
        }
        for (&pc, v) in p.iter().zip(v) {
            for (x, y) in acc.iter_mut().zip(&v[d0..d0 + PV_DIMS]) {
                *x = madd::<FMA>(pc, *y, *x);
            }
        }
        oc.copy_from_slice(&acc);
    }
    let tail = &mut o[whole..];
    tail.iter_mut().for_each(|x| *x *= alpha);
    for (&pc, v) in p.iter().zip(v) {
        simd::axpy::<FMA>(pc, &v[whole..], tail);
    }
}

/// The tile kernel (prefill) on one item, with this thread's working memory.
fn tile_item(isa: Isa, plan: &Plan, it: Item, slot: &mut [f32]) {
    let (d, panels) = (plan.a.head_dim, plan.rows_cap / LANES);
    let work_len = panels * d * LANES + panels * BK * LANES + plan.rows_cap;
    with_scratch(&WORK, work_len, |work| simd::run(isa, Tile { plan, it, slot, work, isa }));
}

/// A prefill tile item (see the module documentation).
struct Tile<'p, 'a> {
    plan: &'p Plan<'a>,
    it: Item,
    slot: &'p mut [f32],
    work: &'p mut [f32],
    isa: Isa,
}

impl Job for Tile<'_, '_> {
    type Out = ();
    #[inline(always)]
    fn run<const FMA: bool>(self) {
        let (plan, it) = (self.plan, self.it);
        let a = plan.a;
        let (d, rc) = (a.head_dim, plan.rows_cap);
        let panels = rc / LANES;
        let rows = (it.t1 - it.t0) * plan.group;
        let (o, stats) = self.slot.split_at_mut(rc * d);
        o.fill(0.0);
        let (m, l) = stats.split_at_mut(rc);
        m.fill(f32::NEG_INFINITY);
        l.fill(0.0);
        let (qt, rest) = self.work.split_at_mut(panels * d * LANES);
        let (st, alpha) = rest.split_at_mut(panels * BK * LANES);

        // Q^T in panels of 16 rows: qt[(panel * d + i) * 16 + lane]; padding rows are zero.
        for r in 0..rc {
            let (p, lane) = (r / LANES, r % LANES);
            let panel = &mut qt[p * d * LANES..(p + 1) * d * LANES];
            if r < rows {
                for (x, v) in panel.iter_mut().skip(lane).step_by(LANES).zip(plan.q_row(&it, r)) {
                    *x = *v;
                }
            } else {
                panel.iter_mut().skip(lane).step_by(LANES).for_each(|x| *x = 0.0);
            }
        }
        // Row r is at position pos(r); padding rows repeat the last row's.
        let pos = |r: usize| a.pos0 + it.t0 + r.min(rows - 1) / plan.group;
        let (p_min, p_max) = (a.pos0 + it.t0, a.pos0 + it.t1 - 1);

        let (mut krows, mut vrows): ([&[f32]; BK], [&[f32]; BK]) = ([&[]; BK], [&[]; BK]);
        let mut j0 = it.lo;
        while j0 < it.hi {
            let n = BK.min(it.hi - j0);
            let nk = n.next_multiple_of(KC);
            for c in 0..n {
                (krows[c], vrows[c]) = plan.kv(j0 + c, it.g);
            }
            // Padding keys (masked below) repeat the first.
            for c in n..nk {
                krows[c] = krows[0];
            }
            scores::<FMA>(self.isa, qt, &krows[..nk], st, panels, d, a.scale);
            let unmasked = n == nk && j0 + n - 1 <= p_min && j0 >= first_key(a, p_max);
            if !unmasked {
                for p in 0..panels {
                    for c in 0..nk {
                        let (key, s) = (j0 + c, &mut st[(p * BK + c) * LANES..][..LANES]);
                        for (lane, x) in s.iter_mut().enumerate() {
                            let pr = pos(p * LANES + lane);
                            if c >= n || key > pr || key < first_key(a, pr) {
                                *x = f32::NEG_INFINITY;
                            }
                        }
                    }
                }
            }
            for p in 0..panels {
                let span = p * LANES..(p + 1) * LANES;
                let s = &mut st[p * BK * LANES..][..nk * LANES];
                online_panel::<FMA>(s, &mut m[span.clone()], &mut l[span.clone()], &mut alpha[span]);
            }
            weighted_values::<FMA>(self.isa, st, &vrows[..n], o, alpha, d);
            j0 += n;
        }
        finish_rows(o, l, rows, d);
    }
}

/// The online softmax of one panel (16 rows, one per lane) over a block of scores
/// `s[c * 16 + lane]`, vectorised over the rows; `alpha` gets each row's rescale factor.
#[inline(always)]
fn online_panel<const FMA: bool>(s: &mut [f32], m: &mut [f32], l: &mut [f32], alpha: &mut [f32]) {
    let mut mx = [f32::NEG_INFINITY; LANES];
    for c in s.chunks_exact(LANES) {
        for i in 0..LANES {
            mx[i] = if c[i] > mx[i] { c[i] } else { mx[i] };
        }
    }
    let mut safe = [0.0f32; LANES];
    for i in 0..LANES {
        let m_new = if mx[i] > m[i] { mx[i] } else { m[i] };
        // A row with no visible key yet keeps m = -inf; subtracting 0 gives exp(-inf) = 0.
        safe[i] = if m_new == f32::NEG_INFINITY { 0.0 } else { m_new };
        alpha[i] = exp::<FMA>(m[i] - safe[i]);
        m[i] = m_new;
    }
    let mut sum = [0.0f32; LANES];
    for c in s.chunks_exact_mut(LANES) {
        for i in 0..LANES {
            c[i] = exp::<FMA>(c[i] - safe[i]);
            sum[i] += c[i];
        }
    }
    for i in 0..LANES {
        l[i] = madd::<FMA>(l[i], alpha[i], sum[i]);
    }
}

/// `st[(panel * BK + c) * 16 + lane] = scale * q_row . k[c]` for the keys of the block (a
/// multiple of [`KC`], each row of `d`), every panel.
#[inline(always)]
fn scores<const FMA: bool>(isa: Isa, qt: &[f32], k: &[&[f32]], st: &mut [f32], panels: usize, d: usize, scale: f32) {
    #[cfg(target_arch = "x86_64")]
    if isa >= Isa::Avx512 {
        // SAFETY: `isa` is never above `Isa::detect()` (`FastCpu::with_isa` clamps it), so the
        // CPU has AVX-512F; the slices hold what `x86::scores` reads and writes (its contract).
        return unsafe { x86::scores(qt, k, st, panels, d, scale) };
    }
    let _ = isa;
    for (kg, keys) in k.chunks_exact(KC).enumerate() {
        for (p, qp) in qt.chunks_exact(d * LANES).take(panels).enumerate() {
            let mut acc = [[0.0f32; LANES]; KC];
            for (i, qv) in qp.chunks_exact(LANES).enumerate() {
                for (c, acc) in acc.iter_mut().enumerate() {
                    let kb = keys[c][i];
                    for (x, q) in acc.iter_mut().zip(qv) {
                        *x = madd::<FMA>(kb, *q, *x);
                    }
                }
            }
            for (c, acc) in acc.iter().enumerate() {
                let dst = &mut st[(p * BK + kg * KC + c) * LANES..][..LANES];
                for (s, x) in dst.iter_mut().zip(acc) {
                    *s = x * scale;
                }
            }
        }
    }
}

/// `o[r] = o[r] * alpha[r] + sum_c p[r, c] v_c` for every row of `o` (`rows_cap` rows of `d`),
/// with `p[r, c] = st[(r / 16 * BK + c) * 16 + r % 16]` and the value rows `v` (each of `d`).
#[inline(always)]
fn weighted_values<const FMA: bool>(isa: Isa, st: &[f32], v: &[&[f32]], o: &mut [f32], alpha: &[f32], d: usize) {
    #[cfg(target_arch = "x86_64")]
    if isa >= Isa::Avx512 {
        // SAFETY: as in `scores`; the slices hold what `x86::weighted_values` reads and writes.
        return unsafe { x86::weighted_values(st, v, o, alpha, d) };
    }
    let _ = isa;
    let whole = d / PV_DIMS * PV_DIMS;
    for (rg, (og, al)) in o.chunks_exact_mut(PV_ROWS * d).zip(alpha.chunks_exact(PV_ROWS)).enumerate() {
        let r0 = rg * PV_ROWS;
        let probs = &st[(r0 / LANES * BK) * LANES + r0 % LANES..];
        for d0 in (0..whole).step_by(PV_DIMS) {
            let mut acc = [[0.0f32; PV_DIMS]; PV_ROWS];
            for (rr, acc) in acc.iter_mut().enumerate() {
                for (x, y) in acc.iter_mut().zip(&og[rr * d + d0..][..PV_DIMS]) {
                    *x = y * al[rr];
                }
            }
            for (c, v) in v.iter().enumerate() {
                let v = &v[d0..d0 + PV_DIMS];
                for (rr, acc) in acc.iter_mut().enumerate() {
                    let pr = probs[c * LANES + rr];
                    for (x, y) in acc.iter_mut().zip(v) {
                        *x = madd::<FMA>(pr, *y, *x);
                    }
                }
            }
            for (rr, acc) in acc.iter().enumerate() {
                og[rr * d + d0..][..PV_DIMS].copy_from_slice(acc);
            }
        }
        if whole < d {
            for rr in 0..PV_ROWS {
                let row = &mut og[rr * d + whole..(rr + 1) * d];
                row.iter_mut().for_each(|x| *x *= al[rr]);
                for (c, v) in v.iter().enumerate() {
                    simd::axpy::<FMA>(probs[c * LANES + rr], &v[whole..], row);
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86;

/// Keys and values of positions `pos0..pos0 + tokens` into slots `pos % capacity`. Only the last
/// `capacity` tokens are copied: the earlier ones would be overwritten within the call.
pub(crate) fn kv_write(a: &KvWriteArgs, k: &[f32], v: &[f32], cache_k: &mut [f32], cache_v: &mut [f32]) -> Result<()> {
    a.check(k.len(), v.len(), cache_k.len(), cache_v.len())?;
    let d = a.kv_dim;
    for (src, cache) in [(k, cache_k), (v, cache_v)] {
        for t in a.tokens.saturating_sub(a.capacity)..a.tokens {
            let slot = (a.pos0 + t) % a.capacity;
            cache[slot * d..(slot + 1) * d].copy_from_slice(&src[t * d..(t + 1) * d]);
        }
    }
    Ok(())
}
