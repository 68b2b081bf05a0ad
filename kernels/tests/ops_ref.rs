//! The CPU reference backend (`RefCpu`) against a second, independent f64 implementation of every
//! op written here (explicit score vectors, complex rotations, sorted routing tables), on real
//! Gemma 4 shapes with deterministic random data (splitmix64). Errors are normalised:
//! `max |got - want| / max(1e-6, max |want|)`. Also: bad arguments return `Err` (never panic), and
//! the rayon-parallel ops give bit-identical results on one thread.

use garnet_kernels::cpu::{gather_rows, RefCpu};
use garnet_kernels::*;

// ---- test utilities ----

/// splitmix64: a tiny deterministic PRNG.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `[-scale, scale)`.
    fn uniform(&mut self, scale: f32) -> f32 {
        ((self.next_u64() >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
    }
    fn vec(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| self.uniform(scale)).collect()
    }
    /// `k` distinct values of `0..n` in random order (partial Fisher-Yates).
    fn distinct(&mut self, n: usize, k: usize) -> Vec<u32> {
        let mut all: Vec<u32> = (0..n as u32).collect();
        for i in 0..k {
            let j = i + (self.next_u64() % (n - i) as u64) as usize;
            all.swap(i, j);
        }
        all.truncate(k);
        all
    }
}

fn be() -> RefCpu {
    RefCpu::new()
}

/// A device buffer holding `x`.
fn buf(x: &[f32]) -> Vec<f32> {
    let mut b = be().alloc(x.len()).unwrap();
    be().upload(x, &mut b).unwrap();
    b
}

fn ids_buf(x: &[u32]) -> Vec<u32> {
    let mut b = be().alloc_ids(x.len()).unwrap();
    be().upload_ids(x, &mut b).unwrap();
    b
}

fn host(b: &Vec<f32>) -> Vec<f32> {
    let mut out = vec![0.0; be().buf_len(b)];
    be().download(b, 0, &mut out).unwrap();
    out
}

/// A weight of `shape` holding `values` rounded to `dtype`, and the rounded values.
fn weight(values: &[f32], shape: &[usize], dtype: DType) -> (HostTensor, Vec<f32>) {
    let t = HostTensor::from_f32_as(values, shape.to_vec(), dtype).unwrap();
    (
        be().weight(&t).unwrap(),
        values.iter().map(|&v| dtype.round(v)).collect(),
    )
}

fn norm_err(got: &[f32], want: &[f64]) -> f64 {
    assert_eq!(got.len(), want.len(), "length");
    let max_want = want.iter().fold(0.0f64, |m, w| m.max(w.abs()));
    let max_diff = got
        .iter()
        .zip(want)
        .fold(0.0f64, |m, (&g, w)| m.max((g as f64 - w).abs()));
    max_diff / max_want.max(1e-6)
}

fn assert_close(what: &str, got: &[f32], want: &[f64], tol: f64) {
    let e = norm_err(got, want);
    assert!(e <= tol, "{what}: normalised error {e:e} > {tol:e}");
}

fn f64s(x: &[f32]) -> Vec<f64> {
    x.iter().map(|&v| v as f64).collect()
}

fn gelu_f64(x: f64) -> f64 {
    0.5 * x * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x.powi(3))).tanh())
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
    for j in 0..n {
        let w_row = &w[j * k..(j + 1) * k];
        for i in 0..m {
            out[i * n + j] = x[i * k..(i + 1) * k]
                .iter()
                .zip(w_row)
                .map(|(&a, &b)| a as f64 * b as f64)
                .sum();
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
        let mut out = be().alloc(m * n).unwrap();
        be().matmul(&MatmulArgs { m, n, k }, &buf(&x), &w, &mut out)
            .unwrap();
        assert_close(
            &format!("matmul {dtype:?} m={m}"),
            &host(&out),
            &matmul_f64(&x, &w_vals, m, n, k),
            1e-5,
        );
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
        let ms = row.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / dim as f64;
        let r = 1.0 / (ms + eps as f64).sqrt();
        out.extend(
            row.iter()
                .enumerate()
                .map(|(j, &v)| v as f64 * r * w.map_or(1.0, |w| w[j] as f64)),
        );
    }
    out
}

fn check_rms_norm(rows: usize, dim: usize, seed: u64) {
    let mut rng = Rng(seed);
    let a = RmsNormArgs {
        rows,
        dim,
        eps: 1e-6,
    };
    let x = rng.vec(rows * dim, 3.0);
    let (w, w_vals) = weight(
        &rng.vec(dim, 1.0)
            .iter()
            .map(|v| v + 1.0)
            .collect::<Vec<_>>(),
        &[dim],
        DType::BF16,
    );
    let mut out = be().alloc(rows * dim).unwrap();
    be().rms_norm(&a, &buf(&x), Some(&w), &mut out).unwrap();
    assert_close(
        &format!("rms_norm {rows}x{dim}"),
        &host(&out),
        &rms_norm_f64(&x, Some(&w_vals), dim, a.eps),
        1e-5,
    );
    be().rms_norm(&a, &buf(&x), None, &mut out).unwrap();
    assert_close(
        &format!("rms_norm {rows}x{dim} no w"),
        &host(&out),
        &rms_norm_f64(&x, None, dim, a.eps),
        1e-5,
    );

    let residual = rng.vec(rows * dim, 2.0);
    let mut acc = buf(&residual);
    be().add_rms_norm(&a, &buf(&x), &w, &mut acc).unwrap();
    let want: Vec<f64> = rms_norm_f64(&x, Some(&w_vals), dim, a.eps)
        .iter()
        .zip(&residual)
        .map(|(n, &r)| n + r as f64)
        .collect();
    assert_close(
        &format!("add_rms_norm {rows}x{dim}"),
        &host(&acc),
        &want,
        1e-5,
    );
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
    let mut out = f64s(x);
    let half = a.head_dim / 2;
    for (row, head) in out.chunks_mut(a.head_dim).enumerate() {
        let pos = a.pos0 + row / a.heads;
        for i in 0..a.rotary_pairs {
            let angle = if f32_angle {
                ((pos as f32) * (1.0f32 / a.theta.powf((2 * i) as f32 / a.head_dim as f32))) as f64
            } else {
                pos as f64 * (a.theta as f64).powf(-2.0 * i as f64 / a.head_dim as f64)
            };
            let (re, im) = (head[i], head[i + half]);
            let (s, c) = angle.sin_cos();
            (head[i], head[i + half]) = (re * c - im * s, re * s + im * c);
        }
    }
    out
}

fn run_rope(a: &RopeArgs, seed: u64) -> (Vec<f32>, Vec<f32>) {
    let x = Rng(seed).vec(a.tokens * a.heads * a.head_dim, 1.0);
    let mut b = buf(&x);
    be().rope(a, &mut b).unwrap();
    (x, host(&b))
}

#[test]
fn rope_default_256() {
    for (i, pos0) in [0usize, 1000, 129_990].into_iter().enumerate() {
        let a = RopeArgs {
            tokens: 4,
            heads: 8,
            head_dim: 256,
            rotary_pairs: 128,
            theta: 1e4,
            pos0,
        };
        let (x, got) = run_rope(&a, 20 + i as u64);
        assert_close(
            &format!("rope 256 pos0={pos0}"),
            &got,
            &rope_f64(&x, &a, true),
            1e-5,
        );
        if pos0 == 0 {
            // At small positions the f32 angle is close to the exact one.
            assert_close("rope 256 exact angle", &got, &rope_f64(&x, &a, false), 1e-5);
        }
    }
}

#[test]
fn rope_proportional_512() {
    for pos0 in [7usize, 129_995] {
        let a = RopeArgs {
            tokens: 3,
            heads: 4,
            head_dim: 512,
            rotary_pairs: 64,
            theta: 1e6,
            pos0,
        };
        let (x, got) = run_rope(&a, 30);
        assert_close(
            &format!("rope 512 pos0={pos0}"),
            &got,
            &rope_f64(&x, &a, true),
            1e-5,
        );
        for (g, x) in got.chunks(512).zip(x.chunks(512)) {
            assert_eq!(g[64..256], x[64..256], "unrotated first half changed");
            assert_eq!(g[320..512], x[320..512], "unrotated second half changed");
        }
    }
}

// ---- kv cache and attention ----

/// A layer's KV history (every position's keys/values) and its device cache.
struct Kv {
    hist_k: Vec<f32>,
    hist_v: Vec<f32>,
    kv_dim: usize,
    capacity: usize,
    cache_k: Vec<f32>,
    cache_v: Vec<f32>,
}

impl Kv {
    fn new(rng: &mut Rng, positions: usize, kv_dim: usize, capacity: usize) -> Kv {
        let (hist_k, hist_v) = (
            rng.vec(positions * kv_dim, 1.0),
            rng.vec(positions * kv_dim, 1.0),
        );
        let (cache_k, cache_v) = (
            be().alloc(capacity * kv_dim).unwrap(),
            be().alloc(capacity * kv_dim).unwrap(),
        );
        Kv {
            hist_k,
            hist_v,
            kv_dim,
            capacity,
            cache_k,
            cache_v,
        }
    }
    /// Rows `pos0..pos0 + tokens` of a history, as a device buffer.
    fn rows(&self, hist: &[f32], pos0: usize, tokens: usize) -> Vec<f32> {
        buf(&hist[pos0 * self.kv_dim..(pos0 + tokens) * self.kv_dim])
    }
    fn write(&mut self, pos0: usize, tokens: usize) {
        let a = KvWriteArgs {
            tokens,
            kv_dim: self.kv_dim,
            pos0,
            capacity: self.capacity,
        };
        let (k, v) = (
            self.rows(&self.hist_k, pos0, tokens),
            self.rows(&self.hist_v, pos0, tokens),
        );
        be().kv_write(&a, &k, &v, &mut self.cache_k, &mut self.cache_v)
            .unwrap();
    }
}

#[test]
fn kv_write_ring() {
    let (kv_dim, capacity) = (16, 8);
    let mut kv = Kv::new(&mut Rng(40), 40, kv_dim, capacity);
    let mut latest: Vec<Option<usize>> = vec![None; capacity]; // which position each slot holds
    for (pos0, tokens) in [(0, 5), (5, 6), (11, 20), (31, 1)] {
        kv.write(pos0, tokens);
        for p in pos0..pos0 + tokens {
            latest[p % capacity] = Some(p);
        }
        let (ck, cv) = (host(&kv.cache_k), host(&kv.cache_v));
        for (slot, p) in latest.iter().enumerate() {
            let s = slot * kv_dim..(slot + 1) * kv_dim;
            let (want_k, want_v) = match p {
                Some(p) => (
                    kv.hist_k[p * kv_dim..(p + 1) * kv_dim].to_vec(),
                    kv.hist_v[p * kv_dim..(p + 1) * kv_dim].to_vec(),
                ),
                None => (vec![0.0; kv_dim], vec![0.0; kv_dim]),
            };
            assert_eq!(
                (&ck[s.clone()], &cv[s]),
                (&want_k[..], &want_v[..]),
                "slot {slot} after {pos0}+{tokens}"
            );
        }
    }
}

/// Attention in f64 from the full history: for each query, the list of visible positions, an
/// explicit score vector, its softmax and the weighted sum of values.
fn attention_f64(a: &AttentionArgs, q: &[f32], kv: &Kv) -> Vec<f64> {
    let (hd, mut out) = (a.head_dim, Vec::new());
    for t in 0..a.tokens {
        let p = a.pos0 + t;
        let visible: Vec<usize> = (0..=p)
            .filter(|&j| a.window.is_none_or(|w| p - j < w))
            .collect();
        for h in 0..a.n_heads {
            let kvh = h * a.n_kv_heads / a.n_heads;
            let q_row = &q[(t * a.n_heads + h) * hd..][..hd];
            let at = |hist: &[f32], j: usize| hist[j * kv.kv_dim + kvh * hd..][..hd].to_vec();
            let scores: Vec<f64> = visible
                .iter()
                .map(|&j| {
                    a.scale as f64
                        * q_row
                            .iter()
                            .zip(at(&kv.hist_k, j))
                            .map(|(&x, y)| x as f64 * y as f64)
                            .sum::<f64>()
                })
                .collect();
            let probs = softmax_f64(&scores);
            out.extend((0..hd).map(|d| {
                visible
                    .iter()
                    .zip(&probs)
                    .map(|(&j, pr)| pr * at(&kv.hist_v, j)[d] as f64)
                    .sum::<f64>()
            }));
        }
    }
    out
}

/// Runs `a` on a cache filled by `kv_write` calls of `fill` tokens each (summing to `a.pos0`)
/// and checks it; then appends the new tokens to the cache.
fn check_attention(kv: &mut Kv, a: &AttentionArgs, fill: &[usize], rng: &mut Rng) {
    let mut pos = a.pos0 - fill.iter().sum::<usize>();
    for &n in fill {
        kv.write(pos, n);
        pos += n;
    }
    let q = rng.vec(a.tokens * a.n_heads * a.head_dim, 1.0);
    let (k, v) = (
        kv.rows(&kv.hist_k, a.pos0, a.tokens),
        kv.rows(&kv.hist_v, a.pos0, a.tokens),
    );
    let mut out = be().alloc(q.len()).unwrap();
    be().attention(a, &buf(&q), &k, &v, &kv.cache_k, &kv.cache_v, &mut out)
        .unwrap();
    let what = format!(
        "attention hd={} {}/{} pos0={} tokens={}",
        a.head_dim, a.n_heads, a.n_kv_heads, a.pos0, a.tokens
    );
    assert_close(&what, &host(&out), &attention_f64(a, &q, kv), 1e-5);
    kv.write(a.pos0, a.tokens);
}

fn sliding(n_heads: usize, n_kv_heads: usize, pos0: usize, tokens: usize) -> AttentionArgs {
    let head_dim = 256;
    let scale = 2.0 / (head_dim as f32).sqrt();
    AttentionArgs {
        tokens,
        n_heads,
        n_kv_heads,
        head_dim,
        pos0,
        capacity: 512,
        window: Some(512),
        scale,
    }
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
    check_attention(&mut kv, &sliding(8, 1, 0, 530), &[], &mut rng); // prompt > window
    check_attention(&mut kv, &sliding(8, 1, 530, 1), &[], &mut rng);
    check_attention(&mut kv, &sliding(8, 1, 531, 520), &[], &mut rng); // chunked prefill > window
}

#[test]
fn attention_full_512() {
    let mut rng = Rng(52);
    let full = |pos0, tokens| AttentionArgs {
        tokens,
        n_heads: 32,
        n_kv_heads: 4,
        head_dim: 512,
        pos0,
        capacity: 64,
        window: None,
        scale: 2.0 / (512f32).sqrt(),
    };
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
    let mut out = be().alloc(rows * width).unwrap();
    be().geglu(&GegluArgs { rows, width }, &buf(&gate), &buf(&up), &mut out)
        .unwrap();
    let want: Vec<f64> = gate
        .iter()
        .zip(&up)
        .map(|(&g, &u)| gelu_f64(g as f64) * u as f64)
        .collect();
    assert_close("geglu", &host(&out), &want, 1e-5);

    let logits = rng.vec(4096, 100.0);
    let mut x = buf(&logits);
    be().softcap(
        &SoftcapArgs {
            len: 4096,
            cap: 30.0,
        },
        &mut x,
    )
    .unwrap();
    let want: Vec<f64> = logits
        .iter()
        .map(|&l| 30.0 * (l as f64 / 30.0).tanh())
        .collect();
    assert_close("softcap", &host(&x), &want, 1e-5);

    // scale and add over a prefix of the buffer: the tail stays as it was.
    let (vals, other) = (rng.vec(1000, 3.0), rng.vec(1000, 3.0));
    let factor = 1.0 / (2816f32).sqrt();
    let mut x = buf(&vals);
    be().scale(&ScaleArgs { len: 900, factor }, &mut x).unwrap();
    let got = host(&x);
    assert_close(
        "scale",
        &got[..900],
        &vals[..900]
            .iter()
            .map(|&v| v as f64 * factor as f64)
            .collect::<Vec<_>>(),
        1e-6,
    );
    assert_eq!(got[900..], vals[900..]);
    let mut acc = buf(&vals);
    be().add(
        &AddArgs {
            len: 1000,
            scale: 0.5f32.sqrt(),
        },
        &buf(&other),
        &mut acc,
    )
    .unwrap();
    let want: Vec<f64> = vals
        .iter()
        .zip(&other)
        .map(|(&a, &b)| (a as f64 + b as f64) * 0.5f64.sqrt())
        .collect();
    assert_close("add", &host(&acc), &want, 1e-6);
}

// ---- MoE ----

#[test]
fn moe_route_128_top8() {
    let (tokens, n_experts, top_k) = (5, 128, 8);
    let mut rng = Rng(70);
    let scores = rng.vec(tokens * n_experts, 4.0);
    let scale_vals: Vec<f32> = rng.vec(n_experts, 0.5).iter().map(|v| v + 1.0).collect();
    let (per_expert_scale, scale_vals) = weight(&scale_vals, &[n_experts], DType::BF16);
    let (mut ids, mut w) = (
        be().alloc_ids(tokens * top_k).unwrap(),
        be().alloc(tokens * top_k).unwrap(),
    );
    be().moe_route(
        &RouteArgs {
            tokens,
            n_experts,
            top_k,
        },
        &buf(&scores),
        &per_expert_scale,
        &mut ids,
        &mut w,
    )
    .unwrap();
    let mut got_ids = vec![0u32; tokens * top_k];
    be().download_ids(&ids, &mut got_ids).unwrap();
    let got_w = host(&w);
    for t in 0..tokens {
        let probs = softmax_f64(&f64s(&scores[t * n_experts..(t + 1) * n_experts]));
        let mut by_prob: Vec<usize> = (0..n_experts).collect();
        by_prob.sort_by(|&a, &b| probs[b].partial_cmp(&probs[a]).unwrap().then(a.cmp(&b)));
        let total: f64 = by_prob[..top_k].iter().map(|&e| probs[e]).sum();
        let mut want: Vec<(u32, f64)> = by_prob[..top_k]
            .iter()
            .map(|&e| (e as u32, probs[e] / total * scale_vals[e] as f64))
            .collect();
        let mut got: Vec<(u32, f32)> = (t * top_k..(t + 1) * top_k)
            .map(|i| (got_ids[i], got_w[i]))
            .collect();
        assert!(
            got.windows(2)
                .all(|p| probs[p[0].0 as usize] >= probs[p[1].0 as usize]),
            "not descending"
        );
        want.sort_by_key(|p| p.0);
        got.sort_by_key(|p| p.0);
        assert_eq!(
            got.iter().map(|p| p.0).collect::<Vec<_>>(),
            want.iter().map(|p| p.0).collect::<Vec<_>>()
        );
        let (gw, ww): (Vec<f32>, Vec<f64>) = (
            got.iter().map(|p| p.1).collect(),
            want.iter().map(|p| p.1).collect(),
        );
        assert_close("moe_route weights", &gw, &ww, 1e-5);
    }
}

#[test]
fn moe_route_ties_to_lower_id() {
    let (per_expert_scale, _) = weight(&[2.0; 16], &[16], DType::F32);
    let (mut ids, mut w) = (be().alloc_ids(4).unwrap(), be().alloc(4).unwrap());
    be().moe_route(
        &RouteArgs {
            tokens: 1,
            n_experts: 16,
            top_k: 4,
        },
        &buf(&[0.5; 16]),
        &per_expert_scale,
        &mut ids,
        &mut w,
    )
    .unwrap();
    assert_eq!(ids, [0, 1, 2, 3]);
    assert_eq!(host(&w), [0.5; 4]);
}

/// The MoE FFN in f64, weights read through `gu(i)` / `dn(i)` (flat indices).
fn moe_f64(
    a: &MoeArgs,
    x: &[f32],
    gu: &dyn Fn(usize) -> f32,
    dn: &dyn Fn(usize) -> f32,
    ids: &[u32],
    w: &[f32],
) -> Vec<f64> {
    let (h, i_dim) = (a.hidden, a.inter);
    let mut out = vec![0.0f64; a.tokens * h];
    for t in 0..a.tokens {
        let x_t = &x[t * h..(t + 1) * h];
        for j in 0..a.top_k {
            let e = ids[t * a.top_k + j] as usize;
            let proj = |row: usize| {
                (0..h)
                    .map(|c| gu((e * 2 * i_dim + row) * h + c) as f64 * x_t[c] as f64)
                    .sum::<f64>()
            };
            let act: Vec<f64> = (0..i_dim)
                .map(|r| gelu_f64(proj(r)) * proj(i_dim + r))
                .collect();
            for o in 0..h {
                let y: f64 = (0..i_dim)
                    .map(|r| dn((e * h + o) * i_dim + r) as f64 * act[r])
                    .sum();
                out[t * h + o] += w[t * a.top_k + j] as f64 * y;
            }
        }
    }
    out
}

fn check_moe(a: &MoeArgs, seed: u64) {
    let mut rng = Rng(seed);
    let gate_up = HostTensor::from_f32_as(
        &rng.vec(a.n_experts * 2 * a.inter * a.hidden, 0.03),
        vec![a.n_experts, 2 * a.inter, a.hidden],
        DType::BF16,
    )
    .unwrap();
    let down = HostTensor::from_f32_as(
        &rng.vec(a.n_experts * a.hidden * a.inter, 0.05),
        vec![a.n_experts, a.hidden, a.inter],
        DType::BF16,
    )
    .unwrap();
    let x = rng.vec(a.tokens * a.hidden, 1.0);
    let ids: Vec<u32> = (0..a.tokens)
        .flat_map(|_| rng.distinct(a.n_experts, a.top_k))
        .collect();
    let w: Vec<f32> = rng.vec(ids.len(), 0.5).iter().map(|v| v + 0.5).collect();
    let mut out = be().alloc(a.tokens * a.hidden).unwrap();
    be().moe_experts(
        a,
        &buf(&x),
        &gate_up,
        &down,
        &ids_buf(&ids),
        &buf(&w),
        &mut out,
    )
    .unwrap();
    let want = moe_f64(a, &x, &|i| gate_up.get(i), &|i| down.get(i), &ids, &w);
    assert_close(&format!("moe_experts {a:?}"), &host(&out), &want, 1e-5);
}

#[test]
fn moe_experts_128_top8_small() {
    check_moe(
        &MoeArgs {
            tokens: 5,
            hidden: 256,
            inter: 64,
            n_experts: 128,
            top_k: 8,
        },
        80,
    );
}

#[test]
fn moe_experts_real_width_8_experts() {
    check_moe(
        &MoeArgs {
            tokens: 2,
            hidden: 2816,
            inter: 704,
            n_experts: 8,
            top_k: 8,
        },
        81,
    );
}

// ---- embed ----

#[test]
fn embed_and_gather_rows() {
    let (vocab, row_len) = (300, 4 * 64);
    let (table, vals) = weight(
        &Rng(90).vec(vocab * row_len, 1.0),
        &[vocab, row_len],
        DType::BF16,
    );
    let ids = [0u32, 299, 17, 17, 150, 3];
    for (col_offset, width, scale) in [(128, 64, 16.0f32), (0, row_len, 1536f32.sqrt())] {
        let a = EmbedArgs {
            tokens: ids.len(),
            width,
            col_offset,
            scale,
        };
        let mut want = Vec::new();
        for &id in &ids {
            let row = &vals[id as usize * row_len + col_offset..][..width];
            want.extend(row.iter().map(|&v| (v as f64 * scale as f64) as f32)); // one rounding: exact
        }
        let mut out = be().alloc(ids.len() * width).unwrap();
        be().embed(&a, &table, &ids_buf(&ids), &mut out).unwrap();
        assert_eq!(host(&out), want, "embed");
        assert_eq!(gather_rows(&a, &table, &ids).unwrap(), want, "gather_rows");
        let mut out = be().alloc(ids.len() * width).unwrap();
        be().embed_host(&a, &table, &ids, &mut out).unwrap();
        assert_eq!(host(&out), want, "embed_host");
    }
}

// ---- bad arguments: every op returns Err, none panics ----

fn shape_err<T>(r: Result<T>) -> bool {
    matches!(r, Err(KernelError::Shape { .. }))
}

fn id_err<T>(r: Result<T>) -> bool {
    matches!(r, Err(KernelError::IdOutOfRange { .. }))
}

fn f32w(shape: &[usize]) -> HostTensor {
    HostTensor::from_f32(&vec![0.5; shape.iter().product()], shape.to_vec()).unwrap()
}

#[test]
fn errors_matmul_norm_rope() {
    let z = |n: usize| vec![0.0f32; n];
    let a = MatmulArgs { m: 2, n: 3, k: 4 };
    let w = f32w(&[3, 4]);
    assert!(be().matmul(&a, &z(8), &w, &mut z(6)).is_ok());
    assert!(shape_err(be().matmul(&a, &z(7), &w, &mut z(6))));
    assert!(shape_err(be().matmul(&a, &z(8), &w, &mut z(5))));
    assert!(shape_err(be().matmul(&a, &z(8), &f32w(&[4, 3]), &mut z(6))));
    assert!(shape_err(be().matmul(&a, &z(8), &f32w(&[1, 3, 4]), &mut z(6))));
    assert!(shape_err(be().matmul(&MatmulArgs { m: usize::MAX, n: 3, k: 4 }, &z(8), &w, &mut z(6))));

    let a = RmsNormArgs { rows: 2, dim: 4, eps: 1e-6 };
    assert!(be().rms_norm(&a, &z(8), Some(&f32w(&[4])), &mut z(8)).is_ok());
    assert!(shape_err(be().rms_norm(&a, &z(8), Some(&f32w(&[5])), &mut z(8))));
    assert!(shape_err(be().rms_norm(&a, &z(7), None, &mut z(8))));
    assert!(shape_err(be().rms_norm(&a, &z(8), None, &mut z(7))));
    assert!(shape_err(be().add_rms_norm(&a, &z(8), &f32w(&[4]), &mut z(7))));
    assert!(shape_err(be().add_rms_norm(&a, &z(8), &f32w(&[2, 2]), &mut z(8))));

    let a = RopeArgs { tokens: 2, heads: 2, head_dim: 8, rotary_pairs: 4, theta: 1e4, pos0: 3 };
    assert!(be().rope(&a, &mut z(32)).is_ok());
    assert!(shape_err(be().rope(&a, &mut z(31))));
    assert!(shape_err(be().rope(&RopeArgs { rotary_pairs: 5, ..a }, &mut z(32))));
    assert!(shape_err(be().rope(&RopeArgs { head_dim: 7, rotary_pairs: 3, ..a }, &mut z(32))));
    assert!(shape_err(be().rope(&RopeArgs { pos0: usize::MAX, ..a }, &mut z(32))));
}

#[test]
fn errors_kv_attention() {
    let z = |n: usize| vec![0.0f32; n];
    let a = KvWriteArgs { tokens: 2, kv_dim: 4, pos0: 7, capacity: 3 };
    assert!(be().kv_write(&a, &z(8), &z(8), &mut z(12), &mut z(12)).is_ok());
    assert!(shape_err(be().kv_write(&a, &z(7), &z(8), &mut z(12), &mut z(12))));
    assert!(shape_err(be().kv_write(&a, &z(8), &z(8), &mut z(12), &mut z(11))));
    assert!(shape_err(be().kv_write(&KvWriteArgs { capacity: 0, ..a }, &z(8), &z(8), &mut z(12), &mut z(12))));

    let a = AttentionArgs { tokens: 2, n_heads: 4, n_kv_heads: 2, head_dim: 8, pos0: 4, capacity: 4, window: None, scale: 1.0 };
    // Buffer lengths: q/out, new k/v, caches.
    let run = |a: AttentionArgs, q: usize, kv: usize, cache: usize, out: usize| {
        be().attention(&a, &z(q), &z(kv), &z(kv), &z(cache), &z(cache), &mut z(out))
    };
    assert!(run(a, 64, 32, 64, 64).is_ok());
    assert!(run(AttentionArgs { pos0: 10, window: Some(5), ..a }, 64, 32, 64, 64).is_ok()); // needs 4 past
    assert!(shape_err(run(AttentionArgs { n_kv_heads: 3, ..a }, 64, 48, 96, 64))); // 4 % 3 != 0
    assert!(shape_err(run(AttentionArgs { n_kv_heads: 0, ..a }, 64, 0, 0, 64)));
    assert!(shape_err(run(AttentionArgs { n_heads: 2, n_kv_heads: 4, ..a }, 64, 64, 128, 64)));
    assert!(shape_err(run(AttentionArgs { pos0: 5, ..a }, 64, 32, 64, 64))); // no window, pos0 > capacity
    assert!(shape_err(run(AttentionArgs { pos0: 10, window: Some(6), ..a }, 64, 32, 64, 64))); // needs 5 past
    assert!(shape_err(run(AttentionArgs { window: Some(0), ..a }, 64, 32, 64, 64)));
    assert!(shape_err(run(AttentionArgs { pos0: usize::MAX, window: Some(1), ..a }, 64, 32, 64, 64)));
    assert!(shape_err(run(a, 63, 32, 64, 64)));
    assert!(shape_err(run(a, 64, 31, 64, 64)));
    assert!(shape_err(run(a, 64, 32, 63, 64)));
    assert!(shape_err(run(a, 64, 32, 64, 63)));
}

#[test]
fn errors_moe_embed_elementwise() {
    let z = |n: usize| vec![0.0f32; n];
    let r = RouteArgs { tokens: 2, n_experts: 4, top_k: 2 };
    let route = |r: RouteArgs, scale: &HostTensor, ids: usize| be().moe_route(&r, &z(8), scale, &mut vec![0; ids], &mut z(4));
    assert!(route(r, &f32w(&[4]), 4).is_ok());
    assert!(shape_err(route(RouteArgs { top_k: 0, ..r }, &f32w(&[4]), 4)));
    assert!(shape_err(route(RouteArgs { top_k: 5, ..r }, &f32w(&[4]), 10)));
    assert!(shape_err(route(r, &f32w(&[5]), 4)));
    assert!(shape_err(route(r, &f32w(&[4]), 3)));

    let m = MoeArgs { tokens: 2, hidden: 4, inter: 3, n_experts: 4, top_k: 2 };
    let (gu, dn) = (f32w(&[4, 6, 4]), f32w(&[4, 4, 3]));
    let experts = |m: MoeArgs, gu: &HostTensor, dn: &HostTensor, ids: &[u32]| {
        be().moe_experts(&m, &z(8), gu, dn, &ids.to_vec(), &z(4), &mut z(8))
    };
    assert!(experts(m, &gu, &dn, &[0, 1, 2, 3]).is_ok());
    assert!(id_err(experts(m, &gu, &dn, &[0, 1, 4, 3])));
    assert!(shape_err(experts(m, &gu, &dn, &[0, 1, 2])));
    assert!(shape_err(experts(m, &f32w(&[4, 3, 4]), &dn, &[0, 1, 2, 3])));
    assert!(shape_err(experts(m, &gu, &f32w(&[4, 3, 4]), &[0, 1, 2, 3])));
    assert!(shape_err(experts(MoeArgs { top_k: 0, ..m }, &gu, &dn, &[0, 1, 2, 3])));
    assert!(shape_err(experts(MoeArgs { top_k: 5, ..m }, &gu, &dn, &[0; 10])));

    let table = f32w(&[10, 8]);
    let e = EmbedArgs { tokens: 2, width: 4, col_offset: 4, scale: 1.0 };
    assert!(be().embed(&e, &table, &vec![0, 9], &mut z(8)).is_ok());
    assert!(id_err(be().embed(&e, &table, &vec![0, 10], &mut z(8))));
    assert!(id_err(gather_rows(&e, &table, &[10, 0])));
    assert!(shape_err(gather_rows(&EmbedArgs { col_offset: 5, ..e }, &table, &[0, 1])));
    assert!(shape_err(gather_rows(&e, &table, &[0])));
    assert!(shape_err(be().embed(&e, &table, &vec![0, 1], &mut z(7))));
    assert!(shape_err(be().embed_host(&e, &table, &[0, 1], &mut z(7))));

    assert!(shape_err(be().geglu(&GegluArgs { rows: 2, width: 3 }, &z(6), &z(5), &mut z(6))));
    assert!(shape_err(be().softcap(&SoftcapArgs { len: 5, cap: 30.0 }, &mut z(4))));
    assert!(shape_err(be().scale(&ScaleArgs { len: 5, factor: 2.0 }, &mut z(4))));
    assert!(shape_err(be().add(&AddArgs { len: 5, scale: 1.0 }, &z(5), &mut z(4))));
    assert!(be().download(&z(4), 2, &mut [0.0; 3]).is_err());
    assert!(be().download(&z(4), usize::MAX, &mut [0.0; 3]).is_err());
    assert!(be().upload(&[0.0; 5], &mut z(4)).is_err());
    assert!(be().download_ids(&vec![0; 2], &mut [0; 3]).is_err());
}

// ---- parallel results do not depend on the thread count ----

#[test]
fn parallel_ops_are_deterministic() {
    let mut rng = Rng(100);
    let (m, n, k) = (5, 300, 384);
    let (w, _) = weight(&rng.vec(n * k, 0.1), &[n, k], DType::BF16);
    let x = buf(&rng.vec(m * k, 1.0));
    let a = sliding(8, 2, 0, 40);
    let (q, kv) = (buf(&rng.vec(40 * 8 * 256, 1.0)), buf(&rng.vec(40 * 2 * 256, 1.0)));
    let cache = be().alloc(512 * 2 * 256).unwrap();
    let moe = MoeArgs { tokens: 2, hidden: 256, inter: 64, n_experts: 16, top_k: 4 };
    let (gu, _) = weight(&rng.vec(16 * 128 * 256, 0.05), &[16, 128, 256], DType::BF16);
    let (dn, _) = weight(&rng.vec(16 * 256 * 64, 0.05), &[16, 256, 64], DType::BF16);
    let (ids, ws) = (ids_buf(&[3, 1, 15, 0, 7, 8, 9, 2]), buf(&rng.vec(8, 1.0)));
    let x_moe = buf(&rng.vec(2 * 256, 1.0));
    let run_all = || {
        let mut outs = vec![be().alloc(m * n).unwrap(), be().alloc(40 * 8 * 256).unwrap(), be().alloc(512).unwrap()];
        be().matmul(&MatmulArgs { m, n, k }, &x, &w, &mut outs[0]).unwrap();
        be().attention(&a, &q, &kv, &kv, &cache, &cache, &mut outs[1]).unwrap();
        be().moe_experts(&moe, &x_moe, &gu, &dn, &ids, &ws, &mut outs[2]).unwrap();
        outs.iter().map(|o| o.iter().map(|v| v.to_bits()).collect::<Vec<u32>>()).collect::<Vec<_>>()
    };
    let pool = |threads| rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
    assert!(pool(1).install(run_all) == pool(4).install(run_all), "results depend on the thread count");
}
