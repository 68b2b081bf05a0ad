//! The WGSL backend's `moe_route` and `moe_experts` against the reference: small odd shapes, 8
//! and 128 experts, exact ties, every expert dtype the shaders decode, expert weights split into
//! chunks, out-of-range device ids, a real 26B-A4B-shaped layer, and bad arguments.
#![cfg(feature = "wgpu")]

mod common;
use common::*;
use garnet_kernels::wgpu::weights::upload_capped;
use garnet_kernels::wgpu::Wgpu;
use garnet_kernels::*;
use std::sync::Arc;

fn gpu() -> Option<Wgpu> {
    gpu_with(true)
}

/// The device with subgroup reductions if `subgroups` (and the adapter has them), else the
/// workgroup-memory ones.
fn gpu_with(subgroups: bool) -> Option<Wgpu> {
    match Wgpu::with_subgroups(None, subgroups) {
        Ok(g) => Some(g),
        Err(e) => {
            println!("skipped: no wgpu adapter ({e})");
            None
        }
    }
}

fn ids_to_gpu(g: &Wgpu, x: &[u32]) -> <Wgpu as Backend>::Ids {
    let mut b = g.alloc_ids(x.len()).unwrap();
    g.upload_ids(x, &mut b).unwrap();
    b
}

/// Router scores with exact ties: every 4th token is rounded to whole numbers (ties everywhere,
/// including across the top-k boundary), token 1 has all scores equal, token 2 a three-way tie
/// at the top.
fn tied_scores(rng: &mut Rng, tokens: usize, n: usize) -> Vec<f32> {
    let mut s = rng.gauss_vec(tokens * n, 2.0);
    for (t, row) in s.chunks_exact_mut(n).enumerate() {
        if t % 4 == 0 {
            row.iter_mut().for_each(|v| *v = v.round());
        } else if t == 1 {
            row.fill(0.5);
        } else if t == 2 {
            let top = row.iter().copied().fold(f32::MIN, f32::max) + 1.0;
            for e in [n - 1, n / 2, 1] {
                row[e] = top;
            }
        }
    }
    s
}

#[test]
fn route_matches_reference() {
    let Some(g) = gpu() else { return };
    println!("adapter: {}", g.gpu().describe());
    let mut rng = Rng(11);
    let (mut worst, mut order_diffs, mut set_diffs, mut rows) = (0.0f64, 0, 0, 0);
    for n in [4, 128] {
        for k in [1, 2, 8].into_iter().filter(|&k| k <= n) {
            for tokens in [1, 5, 64] {
                let a = RouteArgs { tokens, n_experts: n, top_k: k };
                let scores = tied_scores(&mut rng, tokens, n);
                let scale = HostTensor::from_f32_as(&rng.around_one(n, 0.3), vec![n], DType::BF16).unwrap();
                let (mut want_ids, mut want_w) = (ids_buf(&vec![0; tokens * k]), z(tokens * k));
                be().moe_route(&a, &buf(&scores), &scale, &mut want_ids, &mut want_w).unwrap();
                let (mut ids, mut w) = (g.alloc_ids(tokens * k).unwrap(), g.alloc(tokens * k).unwrap());
                g.moe_route(&a, &to_gpu(&g, &scores), &g.weight(&scale).unwrap(), &mut ids, &mut w).unwrap();
                let mut got_ids = vec![0; tokens * k];
                g.download_ids(&ids, &mut got_ids).unwrap();
                let got_w = from_gpu(&g, &w);
                let want_w = host(&want_w);
                for t in 0..tokens {
                    let (gi, wi) = (&got_ids[t * k..(t + 1) * k], &want_ids[t * k..(t + 1) * k]);
                    rows += 1;
                    order_diffs += (gi != wi) as usize;
                    let (mut gs, mut ws) = (gi.to_vec(), wi.to_vec());
                    gs.sort_unstable();
                    ws.sort_unstable();
                    if gs != ws {
                        set_diffs += 1;
                        println!("n {n} k {k} token {t}: got {gi:?}, want {wi:?}");
                        continue;
                    }
                    // Weights by id (the sets agree).
                    for (j, id) in wi.iter().enumerate() {
                        let at = gi.iter().position(|x| x == id).unwrap();
                        worst = worst.max(nerr(&[got_w[t * k + at]], &[want_w[t * k + j]]));
                    }
                }
            }
        }
    }
    println!("route: {rows} token rows, {set_diffs} with other id sets, {order_diffs} in another order");
    println!("route: worst normalised weight error {worst:.2e}");
    assert_eq!(set_diffs, 0, "id sets differ");
    assert_eq!(order_diffs, 0, "id order differs");
    assert!(worst < 1e-5, "weights: {worst:e}");
}

/// One `moe_experts` case.
struct Case {
    tokens: usize,
    hidden: usize,
    inter: usize,
    n_experts: usize,
    top_k: usize,
    dtypes: (DType, DType),
    /// Upload the expert weights in chunks of this many experts (else as the binding limit allows).
    split: Option<usize>,
    /// Put ids `n_experts` and `u32::MAX` (with NaN weights) into the routing.
    bad_ids: bool,
}

/// `[n_experts, rows, cols]` expert weights of `dtype`: random values for the experts in `used`,
/// all-ones bytes (NaN in every format here) for the others, so reading an unused expert shows.
fn experts_tensor(rng: &mut Rng, n: usize, rows: usize, cols: usize, dtype: DType, used: &[bool]) -> HostTensor {
    let per = dtype.bytes_for(rows * cols).unwrap();
    let mut bytes = Vec::with_capacity(n * per);
    for &u in used {
        if u {
            let values = rng.vec(rows * cols, 1.0 / (cols as f32).sqrt());
            bytes.extend_from_slice(HostTensor::from_f32_as(&values, vec![rows, cols], dtype).unwrap().bytes());
        } else {
            bytes.resize(bytes.len() + per, 0xff);
        }
    }
    HostTensor::new(Arc::new(bytes), 0, dtype, vec![n, rows, cols]).unwrap()
}

/// Runs `c` on the device and the reference; returns the normalised error and the chunk counts.
fn run_case(g: &Wgpu, rng: &mut Rng, c: &Case) -> (f64, usize, usize) {
    let (t, h, i, n, k) = (c.tokens, c.hidden, c.inter, c.n_experts, c.top_k);
    let a = MoeArgs { tokens: t, hidden: h, inter: i, n_experts: n, top_k: k };
    let mut ids: Vec<u32> = (0..t).flat_map(|_| rng.distinct(n, k)).collect();
    let mut w = rng.around_one(t * k, 0.5);
    // The reference sees skipped pairs as expert 0 with weight 0: they add nothing.
    let (mut ref_ids, mut ref_w) = (ids.clone(), w.clone());
    if c.bad_ids {
        for (r, bad) in [(1.min(t * k - 1), n as u32), (t * k - 1, u32::MAX)] {
            ids[r] = bad;
            w[r] = f32::NAN;
            (ref_ids[r], ref_w[r]) = (0, 0.0);
        }
    }
    let mut used = vec![false; n];
    ref_ids.iter().for_each(|&e| used[e as usize] = true);
    let gate_up = experts_tensor(rng, n, 2 * i, h, c.dtypes.0, &used);
    let down = experts_tensor(rng, n, h, i, c.dtypes.1, &used);
    let x = rng.gauss_vec(t * h, 1.0);

    let mut want = z(t * h);
    be().moe_experts(&a, &buf(&x), &gate_up, &down, &ids_buf(&ref_ids), &buf(&ref_w), &mut want).unwrap();
    let upload = |t: &HostTensor| match c.split {
        Some(experts) => upload_capped(g.gpu(), t, (experts * t.nbytes() / n) as u64).unwrap(),
        None => g.weight(t).unwrap(),
    };
    let (gu, dn) = (upload(&gate_up), upload(&down));
    // Stale values in `out` must be overwritten.
    let mut out = to_gpu(g, &vec![f32::NAN; t * h]);
    g.moe_experts(&a, &to_gpu(g, &x), &gu, &dn, &ids_to_gpu(g, &ids), &to_gpu(g, &w), &mut out).unwrap();
    (nerr(&from_gpu(g, &out), &host(&want)), gu.chunks.len(), dn.chunks.len())
}

/// Runs and prints `c`. Both sides decode the same weight bytes, so only the f32 summation order
/// differs: one bound for every dtype.
fn check(g: &Wgpu, rng: &mut Rng, c: &Case) -> f64 {
    let (e, gu_chunks, down_chunks) = run_case(g, rng, c);
    println!(
        "experts{} t {} h {} i {} n {} k {} {}/{} chunks {gu_chunks}/{down_chunks}{}: {e:.2e}",
        if g.gpu().subgroups() { " (subgroups)" } else { "" },
        c.tokens,
        c.hidden,
        c.inter,
        c.n_experts,
        c.top_k,
        c.dtypes.0.name(),
        c.dtypes.1.name(),
        if c.bad_ids { " bad ids" } else { "" }
    );
    assert!(e < 1e-5, "{e:e}");
    e
}

#[test]
fn experts_match_reference() {
    let Some(g) = gpu() else { return };
    // Both reductions where the adapter has subgroups.
    let mut devices = vec![g];
    if devices[0].gpu().subgroups() {
        devices.extend(gpu_with(false));
    }
    use DType::*;
    let base = Case {
        tokens: 1,
        hidden: 64,
        inter: 32,
        n_experts: 8,
        top_k: 2,
        dtypes: (F32, F32),
        split: None,
        bad_ids: false,
    };
    let mut cases = Vec::new();
    for tokens in [1, 7] {
        for (n_experts, top_k) in [(8, 2), (128, 8)] {
            for dtypes in [(F32, F32), (F16, F16), (BF16, BF16), (Q8_0, Q8_0), (Q4_0, Q4_0), (Q8_0, Q4_0)] {
                cases.push(Case { tokens, n_experts, top_k, dtypes, ..base });
            }
        }
    }
    // Rows that are not whole 32-element segments (their last one decoded element by element).
    for dtypes in [(F32, BF16), (BF16, F32)] {
        cases.push(Case { tokens: 7, hidden: 40, inter: 24, dtypes, ..base });
    }
    // K-quant experts (rows of whole 256-element super-blocks), Q8_K among them.
    for dtypes in [(Q4_K, Q6_K), (Q8_K, Q4_K)] {
        cases.push(Case { tokens: 3, hidden: 256, inter: 256, dtypes, ..base });
    }
    // Expert weights in several chunks (the down pass accumulates across them).
    for (dtypes, split) in [((Q4_0, BF16), 3), ((F32, Q8_0), 1)] {
        cases.push(Case { tokens: 7, top_k: 3, dtypes, split: Some(split), ..base });
    }
    // Device ids out of range are skipped.
    for (tokens, split) in [(1, None), (7, Some(5))] {
        cases.push(Case { tokens, dtypes: (Q8_0, F32), split, bad_ids: true, ..base });
    }
    for g in &devices {
        let mut rng = Rng(23);
        let worst = cases.iter().fold(0.0f64, |w, c| w.max(check(g, &mut rng, c)));
        println!("experts (subgroups {}): worst normalised error {worst:.2e}", g.gpu().subgroups());
    }
}

/// A real Gemma 4 26B-A4B MoE layer (128 experts, top 8, hidden 2816, inter 704) in Q4_0, one
/// token; the weights exceed lavapipe's 128 MiB binding, so both are split into chunks.
#[test]
fn experts_real_layer() {
    let Some(g) = gpu() else { return };
    let mut rng = Rng(5);
    let c = Case {
        tokens: 1,
        hidden: 2816,
        inter: 704,
        n_experts: 128,
        top_k: 8,
        dtypes: (DType::Q4_0, DType::Q4_0),
        split: None,
        bad_ids: false,
    };
    let (e, gu_chunks, down_chunks) = run_case(&g, &mut rng, &c);
    println!("experts 26B-A4B layer Q4_0, chunks {gu_chunks}/{down_chunks}: {e:.2e}");
    assert!(e < 1e-5, "{e:e}");
}

/// The device fails where the reference fails, with the same message.
#[test]
fn bad_arguments_are_errors() {
    let Some(g) = gpu() else { return };
    let same = |got: Result<()>, want: Result<()>| {
        let (got, want) = (got.expect_err("the device accepted it"), want.expect_err("the reference accepted it"));
        assert_eq!(got.to_string(), want.to_string());
    };
    let route = |a: RouteArgs, scale: &[usize], ids: usize| {
        let t = HostTensor::from_f32(&vec![1.0; scale.iter().product()], scale.to_vec()).unwrap();
        let want = be().moe_route(&a, &z(8), &t, &mut vec![0; ids], &mut z(4));
        let (mut i, mut w) = (g.alloc_ids(ids).unwrap(), g.alloc(4).unwrap());
        (g.moe_route(&a, &g.alloc(8).unwrap(), &g.weight(&t).unwrap(), &mut i, &mut w), want)
    };
    let a = RouteArgs { tokens: 2, n_experts: 4, top_k: 2 };
    let (got, want) = route(a, &[4], 4);
    got.unwrap();
    want.unwrap();
    for (a, scale, ids) in [
        (RouteArgs { top_k: 0, ..a }, &[4][..], 4),
        (RouteArgs { top_k: 5, ..a }, &[4], 10),
        (a, &[5], 4),
        (a, &[4], 3),
        (RouteArgs { tokens: 3, ..a }, &[4], 6),
    ] {
        let (got, want) = route(a, scale, ids);
        same(got, want);
    }

    let a = MoeArgs { tokens: 2, hidden: 4, inter: 3, n_experts: 4, top_k: 2 };
    let experts = |a: MoeArgs, gate_up: &[usize], down: &[usize], ids: &[u32], out: usize| {
        let f = |s: &[usize]| HostTensor::from_f32(&vec![0.5; s.iter().product()], s.to_vec()).unwrap();
        let (gu, dn) = (f(gate_up), f(down));
        let want = be().moe_experts(&a, &z(8), &gu, &dn, &ids.to_vec(), &z(4), &mut z(out));
        let (gu, dn) = (g.weight(&gu).unwrap(), g.weight(&dn).unwrap());
        let mut o = g.alloc(out).unwrap();
        (g.moe_experts(&a, &g.alloc(8).unwrap(), &gu, &dn, &ids_to_gpu(&g, ids), &g.alloc(4).unwrap(), &mut o), want)
    };
    let (gu, dn) = (&[4, 6, 4][..], &[4, 4, 3][..]);
    let (got, want) = experts(a, gu, dn, &[0, 1, 2, 3], 8);
    got.unwrap();
    want.unwrap();
    // An id out of range: the reference fails, the device skips it.
    let (got, want) = experts(a, gu, dn, &[0, 1, 4, 3], 8);
    got.unwrap();
    assert!(matches!(want, Err(KernelError::IdOutOfRange { .. })));
    for (a, gu, dn, ids, out) in [
        (a, gu, dn, &[0, 1, 2][..], 8),
        (a, &[4, 3, 4], dn, &[0, 1, 2, 3], 8),
        (a, gu, &[4, 3, 4], &[0, 1, 2, 3], 8),
        (a, &[3, 6, 4], dn, &[0, 1, 2, 3], 8),
        (a, gu, dn, &[0, 1, 2, 3], 7),
        (MoeArgs { top_k: 0, ..a }, gu, dn, &[0, 1, 2, 3], 8),
        (MoeArgs { top_k: 5, ..a }, gu, dn, &[0; 10], 8),
        (MoeArgs { tokens: 3, ..a }, gu, dn, &[0; 6], 12),
    ] {
        let (got, want) = experts(a, gu, dn, ids, out);
        same(got, want);
    }
}
