//! The fast CPU backend (`FastCpu`, every instruction-set level this machine supports, exact
//! activations) against the reference (`RefCpu`), ggml test-backend-ops style: one list of cases
//! per op family (small odd shapes and real Gemma shapes), each run on both backends and compared
//! as normalised error `max |fast - ref| / max |ref|` under a per-op bound. The worst error of
//! each op and level is printed (`cargo test --test ops_fast -- --nocapture`).
//! Bad arguments: `ops_fast_errors.rs`.

mod common;
use common::*;
use garnet_kernels::cpu::{FastCpu, Isa};
use garnet_kernels::Precision;
use garnet_kernels::*;
use std::sync::Arc;

/// Every level this CPU supports, exact activations.
fn levels() -> Vec<FastCpu> {
    Isa::supported().into_iter().map(|isa| FastCpu::with_isa(isa, Precision::Reference)).collect()
}

/// `max |got - want| / max |want|` (0 when both are all zero).
fn nerr(got: &[f32], want: &[f32]) -> f64 {
    assert_eq!(got.len(), want.len(), "lengths");
    let max_want = want.iter().fold(0.0f64, |m, w| m.max(w.abs() as f64));
    let max_diff = got.iter().zip(want).fold(0.0f64, |m, (g, w)| m.max((*g as f64 - *w as f64).abs()));
    assert!(got.iter().all(|g| g.is_finite()), "non-finite output");
    if max_diff == 0.0 {
        0.0
    } else {
        max_diff / max_want.max(1e-30)
    }
}

/// Worst normalised error per (op, level), checked against a bound as cases come in.
#[derive(Default)]
struct Report(Vec<(String, f64)>);

impl Report {
    #[track_caller]
    fn check(&mut self, op: &str, be: &FastCpu, case: &str, got: &[f32], want: &[f32], bound: f64) {
        let e = nerr(got, want);
        assert!(e <= bound, "{op} [{}] {case}: normalised error {e:e} > {bound:e}", be.isa().name());
        let key = format!("{op} [{}]", be.isa().name());
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some((_, w)) => *w = w.max(e),
            None => self.0.push((key, e)),
        }
    }
}

impl Drop for Report {
    fn drop(&mut self) {
        for (key, e) in &self.0 {
            println!("worst {key}: {e:.3e}");
        }
    }
}

fn bf16_weight(values: &[f32], shape: &[usize]) -> HostTensor {
    HostTensor::from_f32_as(values, shape.to_vec(), DType::BF16).unwrap()
}

// ---- elementwise ----

#[test]
fn fast_elementwise() {
    let mut rep = Report::default();
    let mut rng = Rng(1);
    for (rows, width, spread) in [(1, 5, 3.0), (3, 37, 12.0), (1, 6144, 6.0), (512, 6144, 4.0)] {
        // Wide spread covers the tails of tanh; add exact zeros and tiny values near 0.
        let mut gate = rng.vec(rows * width, spread);
        gate.iter_mut().step_by(97).for_each(|g| *g *= 1e-4);
        gate[0] = 0.0;
        let up = rng.vec(rows * width, 2.0);
        let a = GegluArgs { rows, width };
        let mut want = z(rows * width);
        be().geglu(&a, &gate, &up, &mut want).unwrap();
        for f in levels() {
            let mut got = z(rows * width);
            f.geglu(&a, &gate, &up, &mut got).unwrap();
            rep.check("geglu", &f, &format!("{rows}x{width}"), &got, &want, 1e-6);
        }
    }
    for (len, scale, cap) in [(7, 100.0, 30.0), (1001, 40.0, 30.0), (262_144, 60.0, 30.0), (5000, 3.0, 0.5)] {
        let x = rng.vec(len, scale);
        let a = SoftcapArgs { len, cap };
        let mut want = x.clone();
        be().softcap(&a, &mut want).unwrap();
        for f in levels() {
            let mut got = x.clone();
            f.softcap(&a, &mut got).unwrap();
            rep.check("softcap", &f, &format!("{len} cap {cap}"), &got, &want, 1e-6);
        }
    }
    for len in [3, 100_000] {
        let (x, acc) = (rng.vec(len + 2, 1.0), rng.vec(len + 1, 1.0));
        let (sa, aa) = (ScaleArgs { len, factor: 0.37 }, AddArgs { len, scale: 0.7 });
        let ca = CopyArgs { len: len - 1, src_offset: 2, dst_offset: 1 };
        let (mut ws, mut wa, mut wc) = (x.clone(), acc.clone(), acc.clone());
        be().scale(&sa, &mut ws).unwrap();
        be().add(&aa, &x, &mut wa).unwrap();
        be().copy(&ca, &x, &mut wc).unwrap();
        for f in levels() {
            let (mut gs, mut ga, mut gc) = (x.clone(), acc.clone(), acc.clone());
            f.scale(&sa, &mut gs).unwrap();
            f.add(&aa, &x, &mut ga).unwrap();
            f.copy(&ca, &x, &mut gc).unwrap();
            rep.check("scale", &f, &format!("{len}"), &gs, &ws, 0.0);
            rep.check("add", &f, &format!("{len}"), &ga, &wa, 0.0);
            rep.check("copy", &f, &format!("{len}"), &gc, &wc, 0.0);
        }
    }
}

// ---- norms and rope ----

#[test]
fn fast_norms() {
    let mut rep = Report::default();
    let mut rng = Rng(2);
    // (rows, dim): odd, hidden widths of Gemma 3 270M / E2B, per-head norms, a prefill.
    for (rows, dim) in [(3, 17), (1, 640), (2, 1536), (4 * 7, 256), (8, 512), (512, 1536)] {
        let x = rng.vec(rows * dim, 3.0);
        let w = bf16_weight(&rng.around_one(dim, 1.0), &[dim]);
        let w32 = HostTensor::from_f32(&rng.around_one(dim, 0.5), vec![dim]).unwrap();
        let a = RmsNormArgs { rows, dim, eps: 1e-6 };
        let res = rng.vec(rows * dim, 1.0);
        let case = format!("{rows}x{dim}");
        for (name, w) in [("rms_norm", Some(&w)), ("rms_norm f32 w", Some(&w32)), ("rms_norm no w", None)] {
            let mut want = z(rows * dim);
            be().rms_norm(&a, &x, w, &mut want).unwrap();
            for f in levels() {
                let mut got = z(rows * dim);
                f.rms_norm(&a, &x, w, &mut got).unwrap();
                rep.check(name, &f, &case, &got, &want, 1e-6);
            }
        }
        let mut want = res.clone();
        be().add_rms_norm(&a, &x, &w, &mut want).unwrap();
        for f in levels() {
            let mut got = res.clone();
            f.add_rms_norm(&a, &x, &w, &mut got).unwrap();
            rep.check("add_rms_norm", &f, &case, &got, &want, 1e-6);
        }
    }
}

#[test]
fn fast_rope_is_bit_exact() {
    let mut rep = Report::default();
    let mut rng = Rng(3);
    let rope = |tokens, heads, head_dim, rotary_pairs, theta, pos0, freq_scale| RopeArgs {
        tokens,
        heads,
        head_dim,
        rotary_pairs,
        theta,
        pos0,
        freq_scale,
    };
    let cases = [
        rope(3, 2, 6, 2, 1e4, 0, 1.0),
        rope(5, 4, 256, 128, 1e4, 0, 1.0),
        rope(1, 1, 256, 128, 1e4, 4000, 1.0), // k of a decode step
        rope(7, 8, 512, 64, 1e6, 4093, 1.0),  // proportional RoPE
        rope(9, 4, 256, 128, 1e6, 37, 0.125), // linear scaling
        rope(512, 4, 256, 128, 1e4, 0, 1.0),  // prefill (parallel)
        rope(512, 1, 256, 128, 1e4, 0, 1.0),  // the k of the same prefill: cached table
        rope(3, 4, 256, 128, 1e4, 100, 1.0),  // inside the cached range
        rope(2, 3, 8, 0, 1e4, 5, 1.0),        // nothing rotates
    ];
    for a in cases {
        let x = rng.vec(a.tokens * a.heads * a.head_dim, 2.0);
        let mut want = x.clone();
        be().rope(&a, &mut want).unwrap();
        for f in levels() {
            let mut got = x.clone();
            f.rope(&a, &mut got).unwrap();
            rep.check("rope", &f, &format!("{a:?}"), &got, &want, 0.0);
        }
    }
}

// ---- kv cache and attention ----

/// Attention with a cache filled from a random history of `pos0 + tokens` positions (written
/// through the reference's `kv_write` in chunks, so rings have wrapped); the new keys are the
/// history's last `tokens` rows.
fn attention_case(rep: &mut Report, a: AttentionArgs, rng: &mut Rng) {
    let kv_dim = a.n_kv_heads * a.head_dim;
    let positions = a.pos0 + a.tokens;
    let hist = [rng.vec(positions * kv_dim, 1.0), rng.vec(positions * kv_dim, 1.0)];
    let (mut ck, mut cv) = (z(a.capacity * kv_dim), z(a.capacity * kv_dim));
    let mut p = 0;
    while p < a.pos0 {
        let n = (a.pos0 - p).min(97);
        let w = KvWriteArgs { tokens: n, kv_dim, pos0: p, capacity: a.capacity };
        let rows = |h: &Vec<f32>| h[p * kv_dim..(p + n) * kv_dim].to_vec();
        be().kv_write(&w, &rows(&hist[0]), &rows(&hist[1]), &mut ck, &mut cv).unwrap();
        p += n;
    }
    let (k, v) = (hist[0][a.pos0 * kv_dim..].to_vec(), hist[1][a.pos0 * kv_dim..].to_vec());
    let q = rng.vec(a.tokens * a.n_heads * a.head_dim, 1.0);
    let mut want = z(q.len());
    be().attention(&a, &q, &k, &v, &ck, &cv, &mut want).unwrap();
    for f in levels() {
        let mut got = vec![f32::NAN; q.len()];
        f.attention(&a, &q, &k, &v, &ck, &cv, &mut got).unwrap();
        rep.check("attention", &f, &format!("{a:?}"), &got, &want, 1e-5);
    }
}

fn att(
    tokens: usize,
    nh: usize,
    nkv: usize,
    hd: usize,
    pos0: usize,
    cap: usize,
    window: Option<usize>,
) -> AttentionArgs {
    let scale = 1.0 / (hd as f32).sqrt();
    AttentionArgs { tokens, n_heads: nh, n_kv_heads: nkv, head_dim: hd, pos0, capacity: cap, window, scale }
}

#[test]
fn fast_attention_small_and_decode() {
    let mut rep = Report::default();
    let mut rng = Rng(4);
    let cases = [
        att(5, 6, 2, 24, 0, 16, None),           // odd head_dim, first prefill
        att(3, 6, 3, 10, 9, 16, Some(4)),        // window smaller than the chunk
        att(1, 4, 1, 256, 0, 8, None),           // the first token
        att(1, 4, 1, 256, 4000, 4096, None),     // decode on a long cache (key splits)
        att(1, 4, 1, 256, 5000, 512, Some(512)), // decode on a wrapped ring
        att(1, 8, 1, 512, 700, 1024, None),      // E2B full layer, 8:1
        att(1, 16, 8, 256, 993, 512, Some(512)), // 16:8, wrapped
        att(3, 16, 8, 256, 150, 64, Some(64)),   // capacity == window, pos0 > capacity
        att(2, 4, 1, 256, 300, 400, None),       // two tokens (speculative-like)
        att(1, 16, 1, 64, 40, 64, None),         // 16 rows: the tile kernel at tokens = 1
        att(1, 2, 2, 256, 5, 8, None),           // no grouping
        att(1, 4, 1, 256, 3000, 16, Some(16)),   // tiny ring, far position
        att(2, 8, 1, 256, 2000, 2048, None),     // 16 rows, long cache: tiles with key splits
        att(3, 4, 1, 128, 1500, 2048, None),     // 12 rows, key splits, the last split partly masked
    ];
    for a in cases {
        attention_case(&mut rep, a, &mut rng);
    }
}

#[test]
fn fast_attention_prefill() {
    let mut rep = Report::default();
    let mut rng = Rng(5);
    let cases = [
        att(512, 4, 1, 256, 0, 512, Some(512)),    // Gemma 3 270M sliding layer prefill
        att(200, 8, 1, 512, 37, 300, None),        // E2B full layer, chunk with pos0 > 0
        att(130, 8, 1, 256, 300, 64, Some(64)),    // chunk > window on a wrapped ring
        att(40, 4, 1, 256, 100, 32, Some(32)),     // capacity == window == 32 < chunk
        att(70, 16, 8, 256, 1000, 512, Some(512)), // 16:8
        att(33, 4, 1, 40, 9, 64, None),            // head_dim not a multiple of 16
        att(48, 2, 1, 72, 0, 64, Some(5)),         // narrow window: most tiles masked
        att(9, 32, 4, 512, 40, 64, None),          // the reference tests' full layer
    ];
    for a in cases {
        attention_case(&mut rep, a, &mut rng);
    }
}

#[test]
fn fast_kv_write() {
    let mut rep = Report::default();
    let mut rng = Rng(6);
    for (tokens, kv_dim, pos0, capacity) in [(5, 16, 0, 8), (20, 16, 11, 8), (1, 256, 4095, 512), (3, 7, 2, 3)] {
        let a = KvWriteArgs { tokens, kv_dim, pos0, capacity };
        let (k, v) = (rng.vec(tokens * kv_dim, 1.0), rng.vec(tokens * kv_dim, 1.0));
        let init = rng.vec(capacity * kv_dim, 1.0);
        let (mut wk, mut wv) = (init.clone(), init.clone());
        be().kv_write(&a, &k, &v, &mut wk, &mut wv).unwrap();
        for f in levels() {
            let (mut gk, mut gv) = (init.clone(), init.clone());
            f.kv_write(&a, &k, &v, &mut gk, &mut gv).unwrap();
            rep.check("kv_write k", &f, &format!("{a:?}"), &gk, &wk, 0.0);
            rep.check("kv_write v", &f, &format!("{a:?}"), &gv, &wv, 0.0);
        }
    }
}

// ---- mixture of experts ----

#[test]
fn fast_moe_route() {
    let mut rep = Report::default();
    let mut rng = Rng(7);
    for (tokens, n_experts, top_k, ties) in
        [(5, 128, 8, false), (3, 128, 8, true), (600, 128, 8, true), (4, 300, 4, true)]
    {
        let mut scores = rng.vec(tokens * n_experts, 3.0);
        if ties {
            // Runs of equal scores: the order among them must be by id.
            for (i, s) in scores.iter_mut().enumerate() {
                *s = (*s * 2.0).round() / 2.0 + if i % 7 == 0 { 1.0 } else { 0.0 };
            }
        }
        let scale = bf16_weight(&rng.around_one(n_experts, 0.5), &[n_experts]);
        let a = RouteArgs { tokens, n_experts, top_k };
        let (mut want_ids, mut want_w) = (vec![0u32; tokens * top_k], z(tokens * top_k));
        be().moe_route(&a, &scores, &scale, &mut want_ids, &mut want_w).unwrap();
        for f in levels() {
            let (mut ids, mut w) = (vec![u32::MAX; tokens * top_k], z(tokens * top_k));
            f.moe_route(&a, &scores, &scale, &mut ids, &mut w).unwrap();
            assert_eq!(ids, want_ids, "moe_route ids {a:?}");
            rep.check("moe_route", &f, &format!("{a:?}"), &w, &want_w, 0.0);
        }
    }
}

/// A bf16 `[experts, rows, cols]` tensor that is zero (untouched, lazily mapped memory) except for
/// the experts in `used`, which hold random values.
fn sparse_experts(rng: &mut Rng, experts: usize, rows: usize, cols: usize, used: &[u32]) -> HostTensor {
    let per = rows * cols;
    let mut bytes = vec![0u8; experts * per * 2];
    for &e in used {
        let vals = rng.vec(per, 0.05);
        let b = DType::BF16.bytes_for(per).unwrap();
        bytes[e as usize * b..][..b].copy_from_slice(&garnet_kernels::quant::quantize(DType::BF16, &vals).unwrap());
    }
    HostTensor::new(Arc::new(bytes), 0, DType::BF16, vec![experts, rows, cols]).unwrap()
}

#[test]
fn fast_moe_experts() {
    let mut rep = Report::default();
    let mut rng = Rng(8);
    // (tokens, hidden, inter, experts, top_k): odd; prefill-like with several tokens per expert;
    // 26B-A4B's real widths (128 experts top-8, hidden 2816, inter 704), two tokens.
    for (tokens, hidden, inter, n_experts, top_k) in
        [(7, 40, 24, 5, 2), (3, 16, 0, 4, 2), (40, 256, 64, 16, 4), (1, 2816, 704, 128, 8), (2, 2816, 704, 128, 8)]
    {
        let mut ids = Vec::new();
        for t in 0..tokens {
            // Token 1 shares half of token 0's experts (grouping), in another order.
            let mut chosen = rng.distinct(n_experts, top_k);
            if t == 1 {
                chosen[..top_k / 2].copy_from_slice(&ids[top_k / 2..top_k]);
                chosen.sort_unstable();
                chosen.dedup();
                while chosen.len() < top_k {
                    let e = rng.distinct(n_experts, 1)[0];
                    if !chosen.contains(&e) {
                        chosen.push(e);
                    }
                }
            }
            ids.extend(chosen);
        }
        let mut used = ids.clone();
        used.sort_unstable();
        used.dedup();
        let gate_up = sparse_experts(&mut rng, n_experts, 2 * inter, hidden, &used);
        let down = sparse_experts(&mut rng, n_experts, hidden, inter, &used);
        let x = rng.vec(tokens * hidden, 1.0);
        let w = rng.around_one(tokens * top_k, 0.5);
        let a = MoeArgs { tokens, hidden, inter, n_experts, top_k };
        let mut want = z(tokens * hidden);
        be().moe_experts(&a, &x, &gate_up, &down, &ids, &w, &mut want).unwrap();
        for f in levels() {
            let mut got = vec![f32::NAN; tokens * hidden];
            f.moe_experts(&a, &x, &gate_up, &down, &ids, &w, &mut got).unwrap();
            rep.check("moe_experts", &f, &format!("{a:?}"), &got, &want, 1e-5);
        }
    }
}

// ---- embedding and matmul wiring ----

#[test]
fn fast_embed_and_matmul() {
    let mut rep = Report::default();
    let mut rng = Rng(9);
    let (vocab, row_len) = (300, 640);
    let vals = rng.vec(vocab * row_len, 1.0);
    for dtype in [DType::F32, DType::BF16, DType::F16, DType::Q8_0] {
        let table = HostTensor::from_f32_as(&vals, vec![vocab, row_len], dtype).unwrap();
        for (tokens, width, col_offset) in [(3, 640, 0), (600, 640, 0), (5, 64, 256)] {
            let ids: Vec<u32> = (0..tokens).map(|_| (rng.next_u64() % vocab as u64) as u32).collect();
            let a = EmbedArgs { tokens, width, col_offset, scale: 25.3 };
            let mut want = z(tokens * width);
            be().embed(&a, &table, &ids, &mut want).unwrap();
            for f in levels() {
                let mut got = z(tokens * width);
                f.embed(&a, &table, &ids, &mut got).unwrap();
                rep.check("embed", &f, &format!("{} {a:?}", dtype.name()), &got, &want, 0.0);
                let mut got = z(tokens * width);
                f.embed_host(&a, &table, &ids, &mut got).unwrap();
                rep.check("embed_host", &f, &format!("{} {a:?}", dtype.name()), &got, &want, 0.0);
            }
        }
    }
    for (m, n, k) in [(1, 5, 32), (3, 17, 64), (6, 33, 96), (2, 4, 0)] {
        let (x, w) = (rng.vec(m * k, 1.0), bf16_weight(&rng.vec(n * k, 1.0), &[n, k]));
        let a = MatmulArgs { m, n, k };
        let mut want = z(m * n);
        be().matmul(&a, &x, &w, &mut want).unwrap();
        for f in levels() {
            let mut got = vec![f32::NAN; m * n];
            f.matmul(&a, &x, &w, &mut got).unwrap();
            rep.check("matmul", &f, &format!("{a:?}"), &got, &want, 1e-5);
        }
    }
}
