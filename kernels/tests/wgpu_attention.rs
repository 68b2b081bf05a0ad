//! The WGSL backend's `rope`, `kv_write` and `attention` against the reference: small odd shapes
//! and Gemma 4 shapes (E2B sliding: 8 heads x 256 on 1 KV head, window 512; 31B full: 32 heads x
//! 512 on 4 KV heads), prefill and split decode, sliding rings, and the argument errors.
#![cfg(feature = "wgpu")]

mod common;
use common::*;
use garnet_kernels::wgpu::Wgpu;
use garnet_kernels::*;

/// Normalised error bounds (measured worst: see the printed figures).
const ROPE_BOUND: f64 = 1e-6;
const ATTENTION_BOUND: f64 = 1e-5;

fn gpu() -> Option<Wgpu> {
    match Wgpu::new() {
        Ok(g) => Some(g),
        Err(e) => {
            println!("skipped: no wgpu adapter ({e})");
            None
        }
    }
}

#[test]
fn rope_matches_reference() {
    let Some(g) = gpu() else { return };
    let mut rng = Rng(11);
    let mut worst = 0.0f64;
    // (tokens, heads, head_dim, rotary_pairs, theta, pos0, freq_scale)
    let cases = [
        (5, 8, 256, 128, 10_000.0, 0, 1.0),      // E2B sliding, default RoPE
        (3, 32, 512, 64, 1_000_000.0, 700, 1.0), // 31B full, proportional (0.25)
        (2, 4, 512, 256, 1_000_000.0, 5000, 0.125),
        (4, 3, 256, 128, 10_000.0, 262_000, 1.0), // long context: large angles
        (3, 2, 8, 4, 10_000.0, 1, 1.0),
        (7, 3, 6, 2, 100.0, 123, 0.5),
        (1, 1, 2, 1, 10_000.0, 9, 1.0),
        (2, 2, 10, 0, 10_000.0, 3, 1.0), // nothing rotates
    ];
    for (tokens, heads, head_dim, rotary_pairs, theta, pos0, freq_scale) in cases {
        let a = RopeArgs { tokens, heads, head_dim, rotary_pairs, theta, pos0, freq_scale };
        let x = rng.vec(tokens * heads * head_dim + 3, 2.0); // a longer buffer: the tail stays
        let mut want = buf(&x);
        be().rope(&a, &mut want).unwrap();
        let mut got = to_gpu(&g, &x);
        g.rope(&a, &mut got).unwrap();
        let e = nerr(&from_gpu(&g, &got), &host(&want));
        println!("rope {tokens}x{heads}x{head_dim} pairs {rotary_pairs} pos0 {pos0} scale {freq_scale}: {e:.2e}");
        assert!(e < ROPE_BOUND, "rope {a:?}: {e:e}");
        worst = worst.max(e);
    }
    println!("rope worst normalised error {worst:.2e}");
}

#[test]
fn kv_write_matches_reference() {
    let Some(g) = gpu() else { return };
    let mut rng = Rng(12);
    let (kv_dim, capacity) = (7, 5);
    // (tokens, pos0): plain, wrapping, exactly the ring, more tokens than slots, empty.
    for (tokens, pos0) in [(3, 0), (3, 4), (5, 5), (12, 3), (11, 1_000_003), (0, 9), (1, 4)] {
        let a = KvWriteArgs { tokens, kv_dim, pos0, capacity };
        let (k, v) = (rng.vec(tokens * kv_dim, 1.0), rng.vec(tokens * kv_dim, 1.0));
        let (ck, cv) = (rng.vec(capacity * kv_dim, 1.0), rng.vec(capacity * kv_dim, 1.0));
        let (mut wk, mut wv) = (buf(&ck), buf(&cv));
        be().kv_write(&a, &buf(&k), &buf(&v), &mut wk, &mut wv).unwrap();
        let (mut gk, mut gv) = (to_gpu(&g, &ck), to_gpu(&g, &cv));
        g.kv_write(&a, &to_gpu(&g, &k), &to_gpu(&g, &v), &mut gk, &mut gv).unwrap();
        assert_eq!(from_gpu(&g, &gk), host(&wk), "cache_k {a:?}");
        assert_eq!(from_gpu(&g, &gv), host(&wv), "cache_v {a:?}");
    }
}

/// Random q, k, v and caches for `a`; the worst normalised error of the GPU against the reference.
fn attention_error(g: &Wgpu, rng: &mut Rng, a: &AttentionArgs) -> f64 {
    let d = a.head_dim;
    let q = rng.vec(a.tokens * a.n_heads * d, 1.0);
    let (k, v) = (rng.vec(a.tokens * a.n_kv_heads * d, 1.0), rng.vec(a.tokens * a.n_kv_heads * d, 1.0));
    let (ck, cv) = (rng.vec(a.capacity * a.n_kv_heads * d, 1.0), rng.vec(a.capacity * a.n_kv_heads * d, 1.0));
    let mut want = z(q.len());
    be().attention(a, &buf(&q), &buf(&k), &buf(&v), &buf(&ck), &buf(&cv), &mut want).unwrap();
    let mut got = g.alloc(q.len()).unwrap();
    let (gq, gk, gv, gck, gcv) = (to_gpu(g, &q), to_gpu(g, &k), to_gpu(g, &v), to_gpu(g, &ck), to_gpu(g, &cv));
    g.attention(a, &gq, &gk, &gv, &gck, &gcv, &mut got).unwrap();
    nerr(&from_gpu(g, &got), &host(&want))
}

fn attn(
    tokens: usize,
    (n_heads, n_kv_heads, head_dim): (usize, usize, usize),
    pos0: usize,
    capacity: usize,
    window: Option<usize>,
) -> AttentionArgs {
    // A sharper softmax than 1/sqrt(d) on these uniform inputs: the weights vary by ~e^3.
    let scale = 4.0 / (head_dim as f32).sqrt();
    AttentionArgs { tokens, n_heads, n_kv_heads, head_dim, pos0, capacity, window, scale }
}

const E2B_SLIDING: (usize, usize, usize) = (8, 1, 256);
const FULL_31B: (usize, usize, usize) = (32, 4, 512);

#[test]
fn attention_prefill_matches_reference() {
    let Some(g) = gpu() else { return };
    let mut rng = Rng(13);
    let mut worst = 0.0f64;
    let cases = [
        attn(37, (4, 2, 64), 0, 0, None),
        attn(20, (8, 1, 8), 0, 0, Some(5)),
        attn(40, (3, 3, 64), 0, 0, Some(16)), // tokens past the window
        attn(9, (2, 1, 256), 700, 1024, None),
        attn(9, (4, 4, 256), 700, 512, Some(512)), // a ring of the window
        attn(6, (2, 2, 8), 13, 3, Some(4)),        // a small ring, wrapped several times
        attn(5, (4, 2, 12), 0, 0, Some(1)),        // each query sees itself only
        attn(3, (4, 2, 64), 5000, 5003, None),     // few tiles, long cache: split prefill
        attn(64, E2B_SLIDING, 0, 0, Some(512)),
        attn(24, E2B_SLIDING, 700, 512, Some(512)),
        attn(16, FULL_31B, 0, 0, None),
        attn(4, FULL_31B, 300, 304, None),
    ];
    for a in cases {
        let e = attention_error(&g, &mut rng, &a);
        println!(
            "attention prefill {} tokens {}:{}x{} pos0 {} cap {} window {:?}: {e:.2e}",
            a.tokens, a.n_heads, a.n_kv_heads, a.head_dim, a.pos0, a.capacity, a.window
        );
        assert!(e < ATTENTION_BOUND, "{a:?}: {e:e}");
        worst = worst.max(e);
    }
    println!("attention prefill worst normalised error {worst:.2e}");
}

#[test]
fn attention_decode_matches_reference() {
    let Some(g) = gpu() else { return };
    let mut rng = Rng(14);
    let mut worst = 0.0f64;
    for pos0 in [0, 1, 700, 5000] {
        let cases = [
            attn(1, E2B_SLIDING, pos0, 512, Some(512)),
            attn(1, FULL_31B, pos0, pos0 + 1, None),
            attn(1, (2, 1, 256), pos0, pos0.max(1), None),
            attn(1, (3, 3, 8), pos0, 7, Some(7)),
            attn(1, (4, 2, 64), pos0, 32, Some(32)),
            attn(2, (4, 2, 64), pos0, 1000, Some(1000)), // two-token decode (speculative)
        ];
        for a in cases {
            let e = attention_error(&g, &mut rng, &a);
            println!(
                "attention decode {}:{}x{} pos0 {} cap {} window {:?}: {e:.2e}",
                a.n_heads, a.n_kv_heads, a.head_dim, a.pos0, a.capacity, a.window
            );
            assert!(e < ATTENTION_BOUND, "{a:?}: {e:e}");
            worst = worst.max(e);
        }
    }
    println!("attention decode worst normalised error {worst:.2e}");
}

/// A prompt then decode steps through `kv_write` and a ring of `window` slots on both backends:
/// the cache contents the GPU writes are the ones its attention reads back.
#[test]
fn ring_cache_session_matches_reference() {
    let Some(g) = gpu() else { return };
    let mut rng = Rng(15);
    let (heads, kv_heads, d, window) = (4, 2, 16, 6);
    let kv_dim = kv_heads * d;
    let (mut ck, mut cv) = (z(window * kv_dim), z(window * kv_dim));
    let (mut gck, mut gcv) = (g.alloc(window * kv_dim).unwrap(), g.alloc(window * kv_dim).unwrap());
    let mut pos0 = 0;
    let mut worst = 0.0f64;
    for tokens in [9, 1, 1, 3, 1, 1, 1, 1, 8, 1] {
        let a = attn(tokens, (heads, kv_heads, d), pos0, window, Some(window));
        let (q, k, v) =
            (rng.vec(tokens * heads * d, 1.0), rng.vec(tokens * kv_dim, 1.0), rng.vec(tokens * kv_dim, 1.0));
        let (bk, bv) = (buf(&k), buf(&v));
        let mut want = z(q.len());
        be().attention(&a, &buf(&q), &bk, &bv, &ck, &cv, &mut want).unwrap();
        let (gk, gv) = (to_gpu(&g, &k), to_gpu(&g, &v));
        let mut got = g.alloc(q.len()).unwrap();
        g.attention(&a, &to_gpu(&g, &q), &gk, &gv, &gck, &gcv, &mut got).unwrap();
        let w = KvWriteArgs { tokens, kv_dim, pos0, capacity: window };
        be().kv_write(&w, &bk, &bv, &mut ck, &mut cv).unwrap();
        g.kv_write(&w, &gk, &gv, &mut gck, &mut gcv).unwrap();
        let e = nerr(&from_gpu(&g, &got), &host(&want));
        assert!(e < ATTENTION_BOUND, "step at pos0 {pos0}: {e:e}");
        worst = worst.max(e);
        pos0 += tokens;
    }
    assert_eq!(from_gpu(&g, &gck), host(&ck));
    assert_eq!(from_gpu(&g, &gcv), host(&cv));
    println!("ring session worst normalised error {worst:.2e}");
}

/// The GPU rejects exactly what the reference rejects, with the same message.
#[test]
fn bad_arguments_are_errors() {
    let Some(g) = gpu() else { return };
    let same = |what: &str, cpu: Result<()>, gpu: Result<()>| {
        let (c, w) = (cpu.expect_err(what).to_string(), gpu.expect_err(what).to_string());
        assert_eq!(c, w, "{what}");
        println!("{what}: {w}");
    };

    let good = RopeArgs { tokens: 2, heads: 2, head_dim: 8, rotary_pairs: 4, theta: 1e4, pos0: 0, freq_scale: 1.0 };
    for (what, a, len) in [
        ("rope odd head_dim", RopeArgs { head_dim: 7, ..good }, 28),
        ("rope rotary_pairs", RopeArgs { rotary_pairs: 5, ..good }, 32),
        ("rope freq_scale", RopeArgs { freq_scale: 0.0, ..good }, 32),
        ("rope short x", good, 31),
        ("rope positions", RopeArgs { pos0: usize::MAX, ..good }, 32),
    ] {
        same(what, be().rope(&a, &mut z(len)), g.rope(&a, &mut g.alloc(len).unwrap()));
    }

    let good = KvWriteArgs { tokens: 2, kv_dim: 4, pos0: 3, capacity: 3 };
    for (what, a, lens) in [
        ("kv_write short k", good, [7, 8, 12, 12]),
        ("kv_write short v", good, [8, 7, 12, 12]),
        ("kv_write short cache", good, [8, 8, 12, 11]),
        ("kv_write capacity 0", KvWriteArgs { capacity: 0, ..good }, [8, 8, 0, 0]),
    ] {
        let [k, v, ck, cv] = lens;
        let cpu = be().kv_write(&a, &z(k), &z(v), &mut z(ck), &mut z(cv));
        let al = |n| g.alloc(n).unwrap();
        let gpu = g.kv_write(&a, &al(k), &al(v), &mut al(ck), &mut al(cv));
        same(what, cpu, gpu);
    }

    let good = attn(2, (4, 2, 8), 3, 4, None);
    let lens = |a: &AttentionArgs| {
        let d = a.head_dim;
        let q = a.tokens * a.n_heads * d;
        let kv = a.tokens * a.n_kv_heads.max(1) * d;
        let c = a.capacity * a.n_kv_heads.max(1) * d;
        [q, kv, kv, c, c, q]
    };
    let short = |i: usize| {
        let mut l = lens(&good);
        l[i] -= 1;
        l
    };
    let cases = [
        ("attention window 0", AttentionArgs { window: Some(0), ..good }, lens(&good)),
        ("attention heads not a multiple", AttentionArgs { n_heads: 3, ..good }, lens(&good)),
        ("attention no kv heads", AttentionArgs { n_kv_heads: 0, ..good }, lens(&good)),
        ("attention fewer heads than kv heads", AttentionArgs { n_heads: 1, ..good }, lens(&good)),
        ("attention cache too small", AttentionArgs { capacity: 2, ..good }, lens(&good)),
        ("attention positions", AttentionArgs { pos0: usize::MAX, ..good }, lens(&good)),
        ("attention short q", good, short(0)),
        ("attention short k", good, short(1)),
        ("attention short v", good, short(2)),
        ("attention short cache_k", good, short(3)),
        ("attention short cache_v", good, short(4)),
        ("attention short out", good, short(5)),
    ];
    for (what, a, [q, k, v, ck, cv, out]) in cases {
        let cpu = be().attention(&a, &z(q), &z(k), &z(v), &z(ck), &z(cv), &mut z(out));
        let al = |n| g.alloc(n).unwrap();
        let gpu = g.attention(&a, &al(q), &al(k), &al(v), &al(ck), &al(cv), &mut al(out));
        same(what, cpu, gpu);
    }

    // Positions past a u32 are the GPU's own limit (the reference takes them).
    let a = RopeArgs { tokens: 1, heads: 1, head_dim: 2, rotary_pairs: 1, theta: 1e4, pos0: 1 << 32, freq_scale: 1.0 };
    assert!(g.rope(&a, &mut g.alloc(2).unwrap()).is_err());
}
