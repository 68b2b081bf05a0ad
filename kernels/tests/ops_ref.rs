//! The CPU reference backend (`RefCpu`) against a second, independent f64 implementation of every
//! op written here (explicit score vectors, complex rotations, sorted routing tables), on real
//! Gemma 4 shapes with deterministic random data (splitmix64). Errors are normalised:
//! `max |got - want| / max(1e-6, max |want|)`, bound [`TOL`]. Also: bad arguments return `Err`
//! (never panic), and the rayon-parallel ops give bit-identical results on any thread count.

use garnet_kernels::reference::gather_rows;
use garnet_kernels::*;

/// Bound on the normalised error of every f32 path against its f64 twin.
const TOL: f64 = 1e-5;

mod common;
use common::*;

/// A resident weight of `shape` holding `values` rounded to `dtype`, and the rounded values.
fn weight(values: &[f32], shape: &[usize], dtype: DType) -> (HostTensor, Vec<f32>) {
    let t = HostTensor::from_f32_as(values, shape.to_vec(), dtype).unwrap();
    let rounded = values.iter().map(|&v| dtype.round(v)).collect();
    (be().weight(&t).unwrap(), rounded)
}

#[track_caller]
fn check(what: &str, got: &[f32], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let max_want = want.iter().fold(0.0f64, |m, w| m.max(w.abs()));
    let diffs = got.iter().zip(want).map(|(&g, w)| (g as f64 - w).abs());
    let e = diffs.fold(0.0f64, f64::max) / max_want.max(1e-6);
    assert!(e <= TOL, "{what}: normalised error {e:e} > {TOL:e}");
}

fn dot64(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum()
}

fn gelu_f64(x: f64) -> f64 {
    let inner = (2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x.powi(3));
    0.5 * x * (1.0 + inner.tanh())
}

/// `softmax(x)` in f64 over a materialised vector.
fn softmax_f64(x: &[f64]) -> Vec<f64> {
    let max = x.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = x.iter().map(|v| (v - max).exp()).collect();
    let s: f64 = e.iter().sum();
    e.iter().map(|v| v / s).collect()
}

// ---- matmul ----

/// `x[m, k] W[n, k]^T` in f64, one output column at a time.
fn matmul_f64(x: &[f32], w: &[f32], m: usize, n: usize, k: usize) -> Vec<f64> {
    let mut out = vec![0.0; m * n];
    for (j, w_row) in w.chunks(k).enumerate() {
        for (i, x_row) in x.chunks(k).enumerate() {
            out[i * n + j] = dot64(x_row, w_row);
        }
    }
    out
}

fn check_matmul(dtype: DType, seed: u64) {
    let (n, k) = (2048, 1536);
    let mut rng = Rng(seed);
    let (w, w_vals) = weight(&rng.vec(n * k, 0.05), &[n, k], dtype);
    for m in [1, 7] {
        let x = rng.vec(m * k, 1.0);
        let mut out = z(m * n);
        be().matmul(&MatmulArgs { m, n, k }, &buf(&x), &w, &mut out).unwrap();
        let want = matmul_f64(&x, &w_vals, m, n, k);
        check(&format!("matmul {dtype:?} m={m}"), &host(&out), &want);
    }
}

#[test]
fn matmul_bf16() {
    check_matmul(DType::BF16, 1);
}

#[test]
fn matmul_f16() {
    check_matmul(DType::F16, 2);
}

#[test]
fn matmul_f32() {
    check_matmul(DType::F32, 3);
}

// ---- rms_norm ----

fn rms_norm_f64(x: &[f32], w: Option<&[f32]>, dim: usize, eps: f32) -> Vec<f64> {
    let mut out = Vec::with_capacity(x.len());
    for row in x.chunks(dim) {
        let ms = dot64(row, row) / dim as f64;
        let r = 1.0 / (ms + eps as f64).sqrt();
        for (j, &v) in row.iter().enumerate() {
            out.push(v as f64 * r * w.map_or(1.0, |w| w[j] as f64));
        }
    }
    out
}

fn check_rms_norm(rows: usize, dim: usize, seed: u64) {
    let mut rng = Rng(seed);
    let eps = 1e-6;
    let a = RmsNormArgs { rows, dim, eps };
    let x = rng.vec(rows * dim, 3.0);
    let (w, w_vals) = weight(&rng.around_one(dim, 1.0), &[dim], DType::BF16);
    let what = format!("rms_norm {rows}x{dim}");
    let mut out = z(rows * dim);
    be().rms_norm(&a, &buf(&x), Some(&w), &mut out).unwrap();
    check(&what, &host(&out), &rms_norm_f64(&x, Some(&w_vals), dim, eps));
    be().rms_norm(&a, &buf(&x), None, &mut out).unwrap();
    check(&what, &host(&out), &rms_norm_f64(&x, None, dim, eps));

    let residual = rng.vec(rows * dim, 2.0);
    let normed = rms_norm_f64(&x, Some(&w_vals), dim, eps);
    let want: Vec<f64> = normed.iter().zip(&residual).map(|(n, &r)| n + r as f64).collect();
    let mut acc = buf(&residual);
    be().add_rms_norm(&a, &buf(&x), &w, &mut acc).unwrap();
    check(&format!("add_{what}"), &host(&acc), &want);
}

#[test]
fn rms_norm_hidden() {
    check_rms_norm(3, 1536, 10);
    check_rms_norm(5, 2816, 11);
}

#[test]
fn rms_norm_per_head() {
    check_rms_norm(4 * 8, 256, 12); // tokens * heads, sliding head_dim
    check_rms_norm(3 * 32, 512, 13); // full-attention head_dim
}

// ---- rope ----

/// RoPE in f64 as a complex rotation `(x_i + i x_{i+d/2}) * e^{i angle}`. `f32_angle`: the angle
/// as the spec (and HF) compute it in f32; otherwise the exact angle `pos * theta^(-2i/d)`.
fn rope_f64(x: &[f32], a: &RopeArgs, f32_angle: bool) -> Vec<f64> {
    let mut out: Vec<f64> = x.iter().map(|&v| v as f64).collect();
    let (d, half) = (a.head_dim, a.head_dim / 2);
    for (row, head) in out.chunks_mut(d).enumerate() {
        let pos = a.pos0 + row / a.heads;
        for i in 0..a.rotary_pairs {
            let angle = if f32_angle {
                let inv_freq = 1.0f32 / a.theta.powf((2 * i) as f32 / d as f32);
                (pos as f32 * inv_freq) as f64
            } else {
                pos as f64 * (a.theta as f64).powf(-2.0 * i as f64 / d as f64)
            };
            let (re, im) = (head[i], head[i + half]);
            let (s, c) = angle.sin_cos();
            (head[i], head[i + half]) = (re * c - im * s, re * s + im * c);
        }
    }
    out
}

/// Runs `a` on random data; returns the input and the output.
fn run_rope(a: &RopeArgs, seed: u64) -> (Vec<f32>, Vec<f32>) {
    let x = Rng(seed).vec(a.tokens * a.heads * a.head_dim, 1.0);
    let mut b = buf(&x);
    be().rope(a, &mut b).unwrap();
    (x, host(&b))
}

#[test]
fn rope_default_256() {
    for pos0 in [0usize, 1000, 129_990] {
        let a = rope_args(256, 128, 1e4, pos0);
        let (x, got) = run_rope(&a, 20 + pos0 as u64);
        check(&format!("rope 256 pos0={pos0}"), &got, &rope_f64(&x, &a, true));
        if pos0 == 0 {
            // At small positions the f32 angle is close to the exact one.
            check("rope 256 exact angle", &got, &rope_f64(&x, &a, false));
        }
    }
}

/// Linear scaling (Gemma 3 4B+, factor 8): position 8p with frequencies x 1/8 turns exactly as
/// position p unscaled (scaling by a power of two is exact in binary floating point).
#[test]
fn rope_linear_scaling() {
    for p in [1usize, 37, 4096] {
        let one =
            |pos0: usize, freq_scale: f32| RopeArgs { tokens: 1, pos0, freq_scale, ..rope_args(256, 128, 1e6, 0) };
        let (_, scaled) = run_rope(&one(8 * p, 0.125), 5);
        let (_, plain) = run_rope(&one(p, 1.0), 5);
        assert_eq!(scaled, plain, "position {p}");
    }
    let bad = RopeArgs { freq_scale: 0.0, ..rope_args(256, 128, 1e4, 0) };
    assert!(be().rope(&bad, &mut buf(&vec![0.0; 3 * 4 * 256])).is_err());
}

#[test]
fn rope_proportional_512() {
    for pos0 in [7usize, 129_995] {
        let a = rope_args(512, 64, 1e6, pos0);
        let (x, got) = run_rope(&a, 30);
        check(&format!("rope 512 pos0={pos0}"), &got, &rope_f64(&x, &a, true));
        for (g, x) in got.chunks(512).zip(x.chunks(512)) {
            assert_eq!(g[64..256], x[64..256], "unrotated first half changed");
            assert_eq!(g[320..512], x[320..512], "unrotated second half changed");
        }
    }
}

// ---- kv cache and attention ----

/// A layer's KV history (every position's keys/values) and its device cache.
struct Kv {
    hist: [Vec<f32>; 2],
    kv_dim: usize,
    capacity: usize,
    cache: [Vec<f32>; 2],
}

impl Kv {
    fn new(rng: &mut Rng, positions: usize, kv_dim: usize, capacity: usize) -> Kv {
        let hist = [rng.vec(positions * kv_dim, 1.0), rng.vec(positions * kv_dim, 1.0)];
        let cache = [z(capacity * kv_dim), z(capacity * kv_dim)];
        Kv { hist, kv_dim, capacity, cache }
    }
    /// Row of position `p` of the key (`kv = 0`) or value (`kv = 1`) history.
    fn row(&self, kv: usize, p: usize) -> &[f32] {
        &self.hist[kv][p * self.kv_dim..(p + 1) * self.kv_dim]
    }
    /// Rows `pos0..pos0 + tokens` of the key or value history, as a device buffer.
    fn rows(&self, kv: usize, pos0: usize, tokens: usize) -> Vec<f32> {
        buf(&self.hist[kv][pos0 * self.kv_dim..(pos0 + tokens) * self.kv_dim])
    }
    fn write(&mut self, pos0: usize, tokens: usize) {
        let (kv_dim, capacity) = (self.kv_dim, self.capacity);
        let a = KvWriteArgs { tokens, kv_dim, pos0, capacity };
        let (k, v) = (self.rows(0, pos0, tokens), self.rows(1, pos0, tokens));
        let [ck, cv] = &mut self.cache;
        be().kv_write(&a, &k, &v, ck, cv).unwrap();
    }
}

#[test]
fn kv_write_ring() {
    let (kv_dim, capacity) = (16, 8);
    let mut kv = Kv::new(&mut Rng(40), 40, kv_dim, capacity);
    let mut latest: Vec<Option<usize>> = vec![None; capacity]; // the position each slot holds
    for (pos0, tokens) in [(0, 5), (5, 6), (11, 20), (31, 1)] {
        kv.write(pos0, tokens);
        for p in pos0..pos0 + tokens {
            latest[p % capacity] = Some(p);
        }
        for which in 0..2 {
            let cache = host(&kv.cache[which]);
            for (slot, p) in latest.iter().enumerate() {
                let want = p.map_or(vec![0.0; kv_dim], |p| kv.row(which, p).to_vec());
                let got = &cache[slot * kv_dim..(slot + 1) * kv_dim];
                assert_eq!(got, want, "slot {slot} after {pos0}+{tokens}");
            }
        }
    }
}

/// Attention in f64 from the full history: for each query, the list of visible positions, an
/// explicit score vector, its softmax and the weighted sum of values.
fn attention_f64(a: &AttentionArgs, q: &[f32], kv: &Kv) -> Vec<f64> {
    let hd = a.head_dim;
    let mut out = Vec::new();
    for (row, q_row) in q.chunks(hd).enumerate() {
        let (p, h) = (a.pos0 + row / a.n_heads, row % a.n_heads);
        let visible: Vec<usize> = (0..=p).filter(|&j| a.window.is_none_or(|w| p - j < w)).collect();
        let kv_head = h * a.n_kv_heads / a.n_heads;
        let head = |which: usize, j: usize| &kv.row(which, j)[kv_head * hd..][..hd];
        let scores: Vec<f64> = visible.iter().map(|&j| a.scale as f64 * dot64(q_row, head(0, j))).collect();
        let mut o = vec![0.0f64; hd];
        for (&j, prob) in visible.iter().zip(softmax_f64(&scores)) {
            for (o, &v) in o.iter_mut().zip(head(1, j)) {
                *o += prob * v as f64;
            }
        }
        out.extend(o);
    }
    out
}

/// Runs `a` on a cache filled by `kv_write` calls of `fill` tokens each (ending at `a.pos0`)
/// and checks it; then appends the new tokens to the cache.
fn check_attention(kv: &mut Kv, a: &AttentionArgs, fill: &[usize], rng: &mut Rng) {
    let mut pos = a.pos0 - fill.iter().sum::<usize>();
    for &n in fill {
        kv.write(pos, n);
        pos += n;
    }
    let q = rng.vec(a.tokens * a.n_heads * a.head_dim, 1.0);
    let (k, v) = (kv.rows(0, a.pos0, a.tokens), kv.rows(1, a.pos0, a.tokens));
    let mut out = z(q.len());
    let [ck, cv] = &kv.cache;
    be().attention(a, &buf(&q), &k, &v, ck, cv, &mut out).unwrap();
    let (hd, heads, pos0, tokens) = (a.head_dim, a.n_heads, a.pos0, a.tokens);
    let what = format!("attention hd={hd} {heads}/{} pos0={pos0} tokens={tokens}", a.n_kv_heads);
    check(&what, &host(&out), &attention_f64(a, &q, kv));
    kv.write(a.pos0, a.tokens);
}

/// A sliding layer: head_dim 256, window 512, a 512-slot ring.
fn sliding(n_heads: usize, n_kv_heads: usize, pos0: usize, tokens: usize) -> AttentionArgs {
    let (head_dim, capacity, window, scale) = (256, 512, Some(512), 2.0 / 16.0);
    AttentionArgs { tokens, n_heads, n_kv_heads, head_dim, pos0, capacity, window, scale }
}

#[test]
fn attention_sliding_wrapped() {
    let mut rng = Rng(50);
    // 8 query heads on 1 KV head: cache filled past the window (the ring has wrapped).
    let mut kv = Kv::new(&mut rng, 710, 256, 512);
    check_attention(&mut kv, &sliding(8, 1, 700, 5), &[300, 250, 150], &mut rng);
    check_attention(&mut kv, &sliding(8, 1, 705, 1), &[], &mut rng); // decode
    check_attention(&mut kv, &sliding(8, 1, 706, 1), &[], &mut rng);
    // 16 query heads on 8 KV heads.
    let mut kv = Kv::new(&mut rng, 1000, 8 * 256, 512);
    check_attention(&mut kv, &sliding(16, 8, 990, 3), &[512, 400, 78], &mut rng);
    check_attention(&mut kv, &sliding(16, 8, 993, 1), &[], &mut rng);
}

#[test]
fn attention_sliding_prefill_longer_than_window() {
    let mut rng = Rng(51);
    let mut kv = Kv::new(&mut rng, 1100, 256, 512);
    // 2 query heads on 1 KV head keep these long prefills fast.
    check_attention(&mut kv, &sliding(2, 1, 0, 530), &[], &mut rng); // prompt > window
    check_attention(&mut kv, &sliding(2, 1, 530, 1), &[], &mut rng);
    check_attention(&mut kv, &sliding(2, 1, 531, 520), &[], &mut rng); // chunk > window
}

#[test]
fn attention_full_512() {
    let mut rng = Rng(52);
    let mut kv = Kv::new(&mut rng, 64, 4 * 512, 64);
    check_attention(&mut kv, &full(0, 9), &[], &mut rng); // first prefill, no cache
    check_attention(&mut kv, &full(40, 7), &[17, 14], &mut rng);
    check_attention(&mut kv, &full(47, 1), &[], &mut rng); // decode
}

// ---- elementwise ----

#[test]
fn elementwise_ops() {
    let mut rng = Rng(60);
    let (rows, width) = (3, 704);
    let (gate, up) = (rng.vec(rows * width, 5.0), rng.vec(rows * width, 2.0));
    let mut out = z(rows * width);
    be().geglu(&GegluArgs { rows, width }, &buf(&gate), &buf(&up), &mut out).unwrap();
    let want: Vec<f64> = gate.iter().zip(&up).map(|(&g, &u)| gelu_f64(g as f64) * u as f64).collect();
    check("geglu", &host(&out), &want);

    let (len, cap) = (4096, 30.0);
    let logits = rng.vec(len, 100.0);
    let mut x = buf(&logits);
    be().softcap(&SoftcapArgs { len, cap }, &mut x).unwrap();
    let want: Vec<f64> = logits.iter().map(|&l| 30.0 * (l as f64 / 30.0).tanh()).collect();
    check("softcap", &host(&x), &want);

    // scale over a prefix of the buffer: the tail stays as it was.
    let (vals, other) = (rng.vec(1000, 3.0), rng.vec(1000, 3.0));
    let (len, factor) = (900, 1.0 / 2816f32.sqrt());
    let mut x = buf(&vals);
    be().scale(&ScaleArgs { len, factor }, &mut x).unwrap();
    let got = host(&x);
    let want: Vec<f64> = vals[..len].iter().map(|&v| v as f64 * factor as f64).collect();
    check("scale", &got[..len], &want);
    assert_eq!(got[len..], vals[len..]);

    let (len, scale) = (1000, 0.5f32.sqrt());
    let mut acc = buf(&vals);
    be().add(&AddArgs { len, scale }, &buf(&other), &mut acc).unwrap();
    let sums = vals.iter().zip(&other).map(|(&a, &b)| a as f64 + b as f64);
    check("add", &host(&acc), &sums.map(|s| s * 0.5f64.sqrt()).collect::<Vec<_>>());

    let (len, src_offset, dst_offset) = (300, 700, 100);
    let mut dst = buf(&other);
    be().copy(&CopyArgs { len, src_offset, dst_offset }, &buf(&vals), &mut dst).unwrap();
    let want: Vec<f32> = [&other[..100], &vals[700..], &other[400..]].concat();
    assert_eq!(host(&dst), want, "copy");
}

// ---- MoE ----

/// Runs the router; returns `(ids, weights)` on the host.
fn route(a: &RouteArgs, scores: &[f32], scale: &HostTensor) -> (Vec<u32>, Vec<f32>) {
    let (mut ids, mut w) = (be().alloc_ids(a.tokens * a.top_k).unwrap(), z(a.tokens * a.top_k));
    be().moe_route(a, &buf(scores), scale, &mut ids, &mut w).unwrap();
    let mut host_ids = vec![0u32; a.tokens * a.top_k];
    be().download_ids(&ids, &mut host_ids).unwrap();
    (host_ids, host(&w))
}

#[test]
fn moe_route_128_top8() {
    let (tokens, n_experts, top_k) = (5, 128, 8);
    let mut rng = Rng(70);
    let scores = rng.vec(tokens * n_experts, 4.0);
    let (expert_scale, scale_vals) = weight(&rng.around_one(n_experts, 0.5), &[n_experts], DType::BF16);
    let (ids, weights) = route(&RouteArgs { tokens, n_experts, top_k }, &scores, &expert_scale);
    for t in 0..tokens {
        let probs: Vec<f64> = scores[t * n_experts..][..n_experts].iter().map(|&s| s as f64).collect();
        let probs = softmax_f64(&probs);
        let mut by_prob: Vec<usize> = (0..n_experts).collect();
        by_prob.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]).then(a.cmp(&b)));
        let top = &by_prob[..top_k];
        let total: f64 = top.iter().map(|&e| probs[e]).sum();
        // As sets: the kernel's (id, weight) pairs sorted by id against the f64 top-k by id.
        let mut want: Vec<(u32, f64)> =
            top.iter().map(|&e| (e as u32, probs[e] / total * scale_vals[e] as f64)).collect();
        let mut got: Vec<(u32, f32)> = (t * top_k..(t + 1) * top_k).map(|i| (ids[i], weights[i])).collect();
        let prob_of = |p: &(u32, f32)| probs[p.0 as usize];
        assert!(got.windows(2).all(|p| prob_of(&p[0]) >= prob_of(&p[1])), "not descending");
        want.sort_by_key(|p| p.0);
        got.sort_by_key(|p| p.0);
        let (got_ids, got_w): (Vec<u32>, Vec<f32>) = got.into_iter().unzip();
        let (want_ids, want_w): (Vec<u32>, Vec<f64>) = want.into_iter().unzip();
        assert_eq!(got_ids, want_ids, "token {t}: chosen experts");
        check("moe_route weights", &got_w, &want_w);
    }
}

#[test]
fn moe_route_ties_to_lower_id() {
    let (expert_scale, _) = weight(&[2.0; 16], &[16], DType::F32);
    let a = RouteArgs { tokens: 1, n_experts: 16, top_k: 4 };
    assert_eq!(route(&a, &[0.5; 16], &expert_scale), (vec![0, 1, 2, 3], vec![0.5; 4]));
}

/// Elements `start..start + len` of a weight, through `HostTensor::get`.
fn weight_row(t: &HostTensor, start: usize, len: usize) -> Vec<f32> {
    (start..start + len).map(|i| t.get(i)).collect()
}

/// The MoE FFN in f64, expert by expert as listed in `ids`.
fn moe_f64(a: &MoeArgs, x: &[f32], gate_up: &HostTensor, down: &HostTensor, ids: &[u32], w: &[f32]) -> Vec<f64> {
    let (h, inter) = (a.hidden, a.inter);
    let mut out = vec![0.0f64; a.tokens * h];
    for (slot, (&e, &weight)) in ids.iter().zip(w).enumerate() {
        let (t, e) = (slot / a.top_k, e as usize);
        let x_t = &x[t * h..(t + 1) * h];
        let proj = |r: usize| dot64(&weight_row(gate_up, (e * 2 * inter + r) * h, h), x_t);
        let act: Vec<f64> = (0..inter).map(|r| gelu_f64(proj(r)) * proj(inter + r)).collect();
        for o in 0..h {
            let down_row = weight_row(down, (e * h + o) * inter, inter);
            let y: f64 = down_row.iter().zip(&act).map(|(&d, a)| d as f64 * a).sum();
            out[t * h + o] += weight as f64 * y;
        }
    }
    out
}

fn check_moe(tokens: usize, hidden: usize, inter: usize, n_experts: usize, top_k: usize) {
    let a = MoeArgs { tokens, hidden, inter, n_experts, top_k };
    let mut rng = Rng((hidden * n_experts) as u64);
    let gate_up_shape = vec![n_experts, 2 * inter, hidden];
    let gate_up = rng.vec(gate_up_shape.iter().product(), 0.03);
    let gate_up = HostTensor::from_f32_as(&gate_up, gate_up_shape, DType::BF16).unwrap();
    let down = rng.vec(n_experts * hidden * inter, 0.05);
    let down = HostTensor::from_f32_as(&down, vec![n_experts, hidden, inter], DType::BF16).unwrap();
    let x = rng.vec(tokens * hidden, 1.0);
    let ids: Vec<u32> = (0..tokens).flat_map(|_| rng.distinct(n_experts, top_k)).collect();
    let w = rng.around_one(ids.len(), 0.5);
    let mut out = z(tokens * hidden);
    be().moe_experts(&a, &buf(&x), &gate_up, &down, &ids_buf(&ids), &buf(&w), &mut out).unwrap();
    let want = moe_f64(&a, &x, &gate_up, &down, &ids, &w);
    check(&format!("moe_experts {a:?}"), &host(&out), &want);
}

#[test]
fn moe_experts_128_top8_small() {
    check_moe(5, 256, 64, 128, 8);
}

#[test]
fn moe_experts_real_width_8_experts() {
    check_moe(2, 2816, 704, 8, 8);
}

// ---- embed ----

#[test]
fn embed_and_gather_rows() {
    let (vocab, row_len) = (300, 4 * 64);
    let (table, vals) = weight(&Rng(90).vec(vocab * row_len, 1.0), &[vocab, row_len], DType::BF16);
    let ids = [0u32, 299, 17, 17, 150, 3];
    let tokens = ids.len();
    for (col_offset, width, scale) in [(128, 64, 16.0f32), (0, row_len, 1536f32.sqrt())] {
        let a = EmbedArgs { tokens, width, col_offset, scale };
        let mut want = Vec::new();
        for &id in &ids {
            let row = &vals[id as usize * row_len + col_offset..][..width];
            // The f64 product of two f32 is exact, so one rounding gives the f32 product.
            want.extend(row.iter().map(|&v| (v as f64 * scale as f64) as f32));
        }
        let mut out = z(tokens * width);
        be().embed(&a, &table, &ids_buf(&ids), &mut out).unwrap();
        assert_eq!(host(&out), want, "embed");
        assert_eq!(gather_rows(&a, &table, &ids).unwrap(), want, "gather_rows");
        let mut out = z(tokens * width);
        be().embed_host(&a, &table, &ids, &mut out).unwrap();
        assert_eq!(host(&out), want, "embed_host");
    }
}

// ---- parallel results do not depend on the thread count ----

#[test]
fn parallel_ops_are_deterministic() {
    let mut rng = Rng(100);
    let (m, n, k) = (5, 300, 384);
    let (w, _) = weight(&rng.vec(n * k, 0.1), &[n, k], DType::BF16);
    let x = buf(&rng.vec(m * k, 1.0));
    let att = sliding(8, 2, 0, 40);
    let (q, kv, cache) = (buf(&rng.vec(40 * 8 * 256, 1.0)), buf(&rng.vec(40 * 2 * 256, 1.0)), z(512 * 512));
    let moe = MoeArgs { tokens: 2, hidden: 256, inter: 64, n_experts: 16, top_k: 4 };
    let (gate_up, _) = weight(&rng.vec(16 * 128 * 256, 0.05), &[16, 128, 256], DType::BF16);
    let (down, _) = weight(&rng.vec(16 * 256 * 64, 0.05), &[16, 256, 64], DType::BF16);
    let (ids, ws, x_moe) = (ids_buf(&[3, 1, 15, 0, 7, 8, 9, 2]), buf(&rng.vec(8, 1.0)), buf(&rng.vec(512, 1.0)));
    let run_all = || {
        let mut outs = [z(m * n), z(40 * 8 * 256), z(512)];
        be().matmul(&MatmulArgs { m, n, k }, &x, &w, &mut outs[0]).unwrap();
        be().attention(&att, &q, &kv, &kv, &cache, &cache, &mut outs[1]).unwrap();
        be().moe_experts(&moe, &x_moe, &gate_up, &down, &ids, &ws, &mut outs[2]).unwrap();
        outs.map(|o| o.iter().map(|v| v.to_bits()).collect::<Vec<u32>>())
    };
    let pool = |threads| rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
    let (one, four) = (pool(1).install(run_all), pool(4).install(run_all));
    assert!(one == four, "results depend on the thread count");
}
