//! The WGSL backend's `matmul` (matvec and tiled) and `embed` against the reference, for every
//! dtype (the shaders decode them all, none is widened at upload): decoding bit for bit (identity
//! inputs and embed gathers), products on small odd and real Gemma 4 shapes (including the
//! vocab-sized output layers, split into chunks by the binding limit), weights forced into
//! several chunks, both reductions (subgroup and workgroup), and the argument errors.
#![cfg(feature = "wgpu")]

mod common;
use common::*;
use garnet_kernels::wgpu::{weights, Wgpu};
use garnet_kernels::*;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

/// Every dtype: the shaders decode them all.
const DTYPES: [DType; 14] = DType::ALL;

/// The backend shared by the tests (one device per reduction variant, so each pipeline compiles
/// once: lavapipe takes a noticeable fraction of a second per pipeline), with the lock that
/// runs the tests one at a time: a download submits whatever has been recorded on the device,
/// so a test running alongside could submit another's half-recorded work out of order.
struct Shared {
    g: Wgpu,
    _serial: MutexGuard<'static, ()>,
}

impl std::ops::Deref for Shared {
    type Target = Wgpu;
    fn deref(&self) -> &Wgpu {
        &self.g
    }
}

/// The shared backend with subgroup operations if the adapter has them, or without.
fn gpu(subgroups: bool) -> Option<Shared> {
    static SERIAL: Mutex<()> = Mutex::new(());
    static WITH: OnceLock<Option<Wgpu>> = OnceLock::new();
    static WITHOUT: OnceLock<Option<Wgpu>> = OnceLock::new();
    let serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let cell = if subgroups { &WITH } else { &WITHOUT };
    let opened =
        cell.get_or_init(|| Wgpu::with_subgroups(None, subgroups).map_err(|e| println!("no wgpu adapter: {e}")).ok());
    match opened {
        Some(g) => Some(Shared { g: g.clone(), _serial: serial }),
        None => {
            println!("skipped: no wgpu adapter");
            None
        }
    }
}

/// `k` for an `[n, k]` weight of `dtype`: `want` rounded up to whole blocks.
fn cols(dtype: DType, want: usize) -> usize {
    want.next_multiple_of(dtype.block().0)
}

/// The reference and the device `matmul` of `w` on random `x`; returns the normalised error.
fn check_matmul(g: &Wgpu, w: &HostTensor, gw: &<Wgpu as Backend>::Weight, m: usize, rng: &mut Rng) -> f64 {
    let (n, k) = (w.shape()[0], w.shape()[1]);
    let a = MatmulArgs { m, n, k };
    let x = rng.vec(m * k, 1.0);
    let mut want = z(m * n);
    be().matmul(&a, &buf(&x), w, &mut want).unwrap();
    let mut got = g.alloc(m * n).unwrap();
    g.matmul(&a, &to_gpu(g, &x), gw, &mut got).unwrap();
    nerr(&from_gpu(g, &got), &host(&want))
}

/// Runs `check_matmul` on each shape and `m`, asserting [`BOUND`]; returns the worst error.
fn sweep(g: &Wgpu, dtype: DType, shapes: &[(usize, usize)], ms: &[usize], rng: &mut Rng) -> f64 {
    let mut worst = 0.0f64;
    for &(n, k) in shapes {
        let k = cols(dtype, k);
        let w = random_weight(dtype, n, k, rng);
        let gw = g.weight(&w).unwrap();
        for &m in ms {
            let e = check_matmul(g, &w, &gw, m, rng);
            assert!(e < BOUND, "matmul {} m={m} n={n} k={k}: {e:e}", dtype.name());
            worst = worst.max(e);
        }
    }
    worst
}

/// Small odd shapes: `[37, 64]` (k rounded up to whole blocks), and for the floats `[5, 45]`,
/// whose rows are not a multiple of 32 (odd F16 / BF16 row starts, an element-wise tail).
fn small_shapes(dtype: DType) -> &'static [(usize, usize)] {
    if dtype.is_quantized() {
        &[(37, 64)]
    } else {
        &[(37, 64), (5, 45)]
    }
}

/// Bound on the normalised error of the f32 dot products (the reference sums sequentially,
/// the shaders in 32-element groups and trees): the worst measured is 2.2e-6, at k = 6144.
const BOUND: f64 = 1e-5;

#[test]
fn matmul_matches_reference_on_every_dtype() {
    let Some(g) = gpu(true) else { return };
    println!("adapter: {} (subgroups: {})", g.gpu().describe(), g.gpu().subgroups());
    let mut rng = Rng(11);
    for dtype in DTYPES {
        // Small odd shapes on both sides of the matvec / tiled threshold, with partial tiles.
        let e_small = sweep(&g, dtype, small_shapes(dtype), &[1, 2, 7, 8, 9, 64, 70], &mut rng);
        // Gemma 4 E2B: the attention output [2048, 1536] in decode and a 256-row slice of it in
        // a 64-token prefill.
        let e_real = sweep(&g, dtype, &[(2048, 1536)], &[1], &mut rng);
        let e_tiled = sweep(&g, dtype, &[(256, 1536)], &[64], &mut rng);
        println!(
            "{:5} worst nerr: small {e_small:.2e}, 2048x1536 {e_real:.2e}, 256x1536 m=64 {e_tiled:.2e}",
            dtype.name()
        );
    }
    // The rest of the real shapes for a few dtypes (the code past decoding is the same for all,
    // and decoding is checked bit for bit below): the FFN down projection [1536, 6144] (the
    // widest matvec workgroups), a 7-token matvec, whole shapes through the tiled kernel.
    let mut worst = 0.0f64;
    for dtype in [DType::BF16, DType::Q8_0, DType::Q6_K] {
        worst = worst.max(sweep(&g, dtype, &[(1536, 6144)], &[1], &mut rng));
    }
    worst = worst.max(sweep(&g, DType::Q4_K, &[(2048, 1536)], &[7, 64], &mut rng));
    println!("1536x6144 m=1, 2048x1536 m=7 and m=64: worst nerr {worst:.2e}");
}

#[test]
fn matvec_workgroup_reduction_matches_reference() {
    // The portable reduction (no subgroup operations), whatever the adapter offers; the
    // reduction does not depend on the dtype.
    let Some(g) = gpu(false) else { return };
    assert!(!g.gpu().subgroups());
    let mut rng = Rng(12);
    let mut worst = 0.0f64;
    for dtype in [DType::F16, DType::Q8_0, DType::Q6_K] {
        worst = worst.max(sweep(&g, dtype, small_shapes(dtype), &[1, 2, 7, 8], &mut rng));
    }
    worst = worst.max(sweep(&g, DType::Q4_K, &[(2048, 1536), (64, 6144)], &[1, 7], &mut rng));
    println!("workgroup reduction: worst nerr {worst:.2e}");
}

/// The matvec's layouts: it gives a row more lanes (1 to 64 of a workgroup of 64) the fewer
/// rows a chunk has (relative to the cores, on a CPU adapter), so row counts from 1 to 333 on
/// long rows take many lane counts (all seven on 2 cores) and partial last workgroups, with
/// every token count the matvec takes (each a pipeline of its own). F32 rows of 2044 end in a
/// partial group (the 4-at-a-time tail). Both devices: with and without subgroup operations.
#[test]
fn matvec_every_lane_count_and_token_count() {
    let mut rng = Rng(19);
    for subgroups in [true, false] {
        let Some(g) = gpu(subgroups) else { return };
        let mut worst = 0.0f64;
        for (dtype, k) in [(DType::Q4_K, 2048), (DType::F32, 2044)] {
            worst =
                worst.max(sweep(&g, dtype, &[(1, k), (3, k), (20, k), (37, k), (80, k), (160, k)], &[1, 8], &mut rng));
            worst = worst.max(sweep(&g, dtype, &[(9, k), (333, k)], &[1, 2, 3, 4, 5, 6, 7, 8], &mut rng));
        }
        println!("subgroups {subgroups}: lane and token counts, worst nerr {worst:.2e}");
    }
}

/// Decoding is bit-exact: `x` = identity rows picks weight columns out unchanged (`w * 1` plus
/// zeros), through the tiled matmul (all columns at once) and the matvec (8 at a time). Float
/// rows of 301 (odd F16 / BF16 row starts, an element-wise tail; the tiled kernel takes them
/// at any m, as the matvec reads x as vec4s) and of 300 (the matvec's 4-at-a-time tail); two
/// K-quant super-blocks.
#[test]
fn decode_is_bit_exact() {
    let Some(g) = gpu(true) else { return };
    let mut rng = Rng(13);
    for dtype in DTYPES {
        let ks = if dtype.is_quantized() { vec![cols(dtype, 512)] } else { vec![301, 300] };
        for k in ks {
            let n = 37;
            let w = random_weight(dtype, n, k, &mut rng);
            let gw = g.weight(&w).unwrap();
            assert!(!gw.converted(), "{} is decoded on the device", dtype.name());
            let want = w.to_f32_vec();
            let eye: Vec<f32> = (0..k * k).map(|i| if i / k == i % k { 1.0 } else { 0.0 }).collect();
            for step in [k, 8] {
                let mut got = g.alloc(k * n).unwrap();
                for c0 in (0..k).step_by(step) {
                    let m = step.min(k - c0);
                    let mut part = g.alloc(m * n).unwrap();
                    let x = to_gpu(&*g, &eye[c0 * k..(c0 + m) * k]);
                    g.matmul(&MatmulArgs { m, n, k }, &x, &gw, &mut part).unwrap();
                    g.copy(&CopyArgs { src_offset: 0, dst_offset: c0 * n, len: m * n }, &part, &mut got).unwrap();
                }
                let got = from_gpu(&*g, &got); // got[c, j] = w[j, c]
                for (e, &v) in want.iter().enumerate() {
                    let (j, c) = (e / k, e % k);
                    assert_eq!(got[c * n + j], v, "{} k={k} m={step}: w[{j}, {c}]", dtype.name());
                }
            }
        }
    }
}

/// An `[n, k]` BF16 weight of random bits with exponents in [-7, 0] (finite), made without an
/// f32 copy (a vocab-sized one would take 1.6 GB).
fn bf16_weight(n: usize, k: usize, rng: &mut Rng) -> HostTensor {
    let mut bytes = Vec::with_capacity(2 * n * k);
    for _ in 0..n * k / 4 {
        let r = rng.next_u64();
        for i in 0..4 {
            let h = (r >> (16 * i)) as u16;
            bytes.extend_from_slice(&((h & 0x807f) | ((((h >> 7) & 7) + 120) << 7)).to_le_bytes());
        }
    }
    HostTensor::new(Arc::new(bytes), 0, DType::BF16, vec![n, k]).unwrap()
}

/// A vocab-sized `[262144, k]` weight of `dtype` for one token.
fn check_vocab(dtype: DType, k: usize) {
    let Some(g) = gpu(true) else { return };
    let mut rng = Rng(14);
    let n = 262_144;
    let w = if dtype == DType::BF16 { bf16_weight(n, k, &mut rng) } else { random_weight(dtype, n, k, &mut rng) };
    let gw = g.weight(&w).unwrap();
    let e = check_matmul(&g, &w, &gw, 1, &mut rng);
    println!("{} {n}x{k} in {} chunks: nerr {e:.2e}", dtype.name(), gw.chunks.len());
    assert!(e < BOUND, "{} {n}x{k}: {e:e}", dtype.name());
}

/// Vocab-sized weights (262144 rows: the tied embedding as the output layer) at PLE width
/// 640: 178 MB in Q8_0 and 335 MB in BF16, both past lavapipe's 128 MiB binding, so they run
/// in 2 and 3 chunks there.
#[test]
fn vocab_sized_matvec() {
    check_vocab(DType::Q8_0, 640);
    check_vocab(DType::BF16, 640);
}

/// Gemma 4 E2B's output layer, 262144 x 1536 BF16 (805 MB, 7 chunks on lavapipe): ignored by
/// default for its cost on lavapipe (about 10 s and 2.5 GB); run with `--ignored`.
#[test]
#[ignore]
fn vocab_sized_matvec_bf16_1536() {
    check_vocab(DType::BF16, 1536);
}

/// Weights forced into chunks of a few rows (uneven: the last is shorter) give the same
/// results as whole ones, through the matvec, the tiled matmul and embed.
#[test]
fn chunked_weights_match() {
    let Some(g) = gpu(true) else { return };
    let mut rng = Rng(15);
    for dtype in [DType::F16, DType::Q4_0, DType::Q6_K] {
        let (n, k) = (37, cols(dtype, 256));
        let w = random_weight(dtype, n, k, &mut rng);
        let row_bytes = dtype.bytes_for(k).unwrap() as u64;
        let gw = weights::upload_capped(g.gpu(), &w, 5 * row_bytes).unwrap();
        assert_eq!(gw.chunks.len(), 8);
        for m in [1, 7, 64] {
            let e = check_matmul(&g, &w, &gw, m, &mut rng);
            assert!(e < BOUND, "chunked {} m={m}: {e:e}", dtype.name());
        }
        let ids = [36, 0, 5, 4, 35, 17];
        let a = EmbedArgs { tokens: ids.len(), width: k - 3, col_offset: 3, scale: 1.5 };
        let want = embed_ref(&a, &w, &ids);
        assert_eq!(embed_gpu(&g, &a, &gw, &ids), want, "chunked embed {}", dtype.name());
    }
}

fn embed_ref(a: &EmbedArgs, table: &HostTensor, ids: &[u32]) -> Vec<f32> {
    let mut out = z(a.tokens * a.width);
    be().embed(a, table, &ids_buf(ids), &mut out).unwrap();
    host(&out)
}

fn embed_gpu(g: &Wgpu, a: &EmbedArgs, table: &<Wgpu as Backend>::Weight, ids: &[u32]) -> Vec<f32> {
    let mut gids = g.alloc_ids(ids.len()).unwrap();
    g.upload_ids(ids, &mut gids).unwrap();
    // Start from non-zero garbage: every output element must be written.
    let mut out = to_gpu(g, &vec![f32::NAN; a.tokens * a.width]);
    g.embed(a, table, &gids, &mut out).unwrap();
    from_gpu(g, &out)
}

/// The gather is exact: the same widened values times the same scale.
#[test]
fn embed_matches_reference_on_every_dtype() {
    let Some(g) = gpu(true) else { return };
    let mut rng = Rng(16);
    for dtype in DTYPES {
        let (rows, row_len) = (50, cols(dtype, 512));
        let table = random_weight(dtype, rows, row_len, &mut rng);
        let gt = g.weight(&table).unwrap();
        let ids: Vec<u32> = (0..9).map(|_| (rng.next_u64() % rows as u64) as u32).collect();
        // The token embedding (whole rows, scaled) and a PLE-like column window.
        for (col_offset, width, scale) in [(0, row_len, 39.19), (row_len / 2 + 3, row_len / 4 - 5, 0.25)] {
            let a = EmbedArgs { tokens: ids.len(), width, col_offset, scale };
            let want = embed_ref(&a, &table, &ids);
            assert_eq!(embed_gpu(&g, &a, &gt, &ids), want, "embed {} {a:?}", dtype.name());
        }
        // The trait's host gather.
        let a = EmbedArgs { tokens: 3, width: 7, col_offset: 1, scale: 2.0 };
        let mut out = g.alloc(21).unwrap();
        g.embed_host(&a, &table, &ids[..3], &mut out).unwrap();
        assert_eq!(from_gpu(&*g, &out), embed_ref(&a, &table, &ids[..3]));
    }
}

/// Ids the host cannot see: one past the table reads nothing and gives a row of zeros.
#[test]
fn embed_out_of_range_id_writes_zeros() {
    let Some(g) = gpu(true) else { return };
    let mut rng = Rng(17);
    let table = random_weight(DType::Q8_0, 20, 64, &mut rng);
    let gt = weights::upload_capped(g.gpu(), &table, 3 * 68).unwrap();
    let a = EmbedArgs { tokens: 3, width: 64, col_offset: 0, scale: 1.0 };
    let got = embed_gpu(&g, &a, &gt, &[2, 20, u32::MAX]);
    assert_eq!(got[..64], embed_ref(&EmbedArgs { tokens: 1, ..a }, &table, &[2])[..]);
    assert!(got[64..].iter().all(|&v| v == 0.0), "out-of-range ids must give zeros");
}

/// Empty products are zeros, as in the reference (k = 0), and empty calls do nothing.
#[test]
fn empty_products_are_zeros() {
    let Some(g) = gpu(true) else { return };
    let w = HostTensor::from_f32(&[], vec![5, 0]).unwrap();
    let gw = g.weight(&w).unwrap();
    for m in [3, 9] {
        let mut out = to_gpu(&*g, &vec![f32::NAN; m * 5]);
        g.matmul(&MatmulArgs { m, n: 5, k: 0 }, &g.alloc(0).unwrap(), &gw, &mut out).unwrap();
        assert!(from_gpu(&*g, &out).iter().all(|&v| v == 0.0), "k = 0, m = {m}");
    }
    let mut out = to_gpu(&*g, &[7.0]);
    g.matmul(&MatmulArgs { m: 0, n: 5, k: 0 }, &g.alloc(0).unwrap(), &gw, &mut out).unwrap();
    let ids = g.alloc_ids(0).unwrap();
    g.embed(&EmbedArgs { tokens: 0, width: 0, col_offset: 0, scale: 1.0 }, &gw, &ids, &mut out).unwrap();
    assert_eq!(from_gpu(&*g, &out), [7.0]);
}

/// Wrong shapes and short buffers fail with the reference's errors, before any dispatch.
#[test]
fn bad_arguments_are_errors() {
    let Some(g) = gpu(true) else { return };
    let mut rng = Rng(18);
    let w = random_weight(DType::Q4_0, 8, 64, &mut rng);
    let gw = g.weight(&w).unwrap();
    let same = |cpu: Result<()>, gpu: Result<()>, what: &str| {
        let (c, d) = (cpu.expect_err(what).to_string(), gpu.expect_err(what).to_string());
        assert_eq!(c, d, "{what}");
    };
    let a = MatmulArgs { m: 2, n: 8, k: 64 };
    for (bad, xl, ol) in [
        (MatmulArgs { n: 9, ..a }, 128, 18),  // w is [8, 64]
        (MatmulArgs { k: 32, ..a }, 128, 16), // likewise
        (a, 127, 16),                         // x short
        (a, 128, 15),                         // out short
    ] {
        same(
            be().matmul(&bad, &z(xl), &w, &mut z(ol)),
            g.matmul(&bad, &g.alloc(xl).unwrap(), &gw, &mut g.alloc(ol).unwrap()),
            &format!("matmul {bad:?} x {xl} out {ol}"),
        );
    }
    let e = EmbedArgs { tokens: 2, width: 10, col_offset: 0, scale: 1.0 };
    for (bad, idl, ol) in [
        (EmbedArgs { col_offset: 60, ..e }, 2, 20), // columns past the row
        (e, 1, 20),                                 // ids short
        (e, 2, 19),                                 // out short
    ] {
        same(
            be().embed(&bad, &w, &vec![0; idl], &mut z(ol)),
            g.embed(&bad, &gw, &g.alloc_ids(idl).unwrap(), &mut g.alloc(ol).unwrap()),
            &format!("embed {bad:?} ids {idl} out {ol}"),
        );
    }
}
