//! The non-matmul ops on the fast CPU backend at Gemma shapes: attention (decode over a long
//! cache, and a 512-token prefill; GFLOP/s of the `QK^T` and `PV` products actually needed),
//! RMSNorm, GeGLU and softcap (GB/s of activations read and written).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use garnet_benches::{in_pool, values};
use garnet_kernels::cpu::FastCpu;
use garnet_kernels::Precision;
use garnet_kernels::{AttentionArgs, Backend, GegluArgs, HostTensor, RmsNormArgs, SoftcapArgs};

fn attention(c: &mut Criterion) {
    let b = FastCpu::new(Precision::Native);
    let mut g = c.benchmark_group(format!("attention/{}", b.isa().name()));
    g.sample_size(10);
    // Gemma 3 270M: 4 query heads over 1 KV head of 256; E2B full layers: 8 over 1 of 512.
    for (nh, nkv, hd) in [(4, 1, 256), (8, 1, 512)] {
        for (tokens, pos0) in [(1, 4095), (512, 0)] {
            let capacity = 4096;
            let a = AttentionArgs {
                tokens,
                n_heads: nh,
                n_kv_heads: nkv,
                head_dim: hd,
                pos0,
                capacity,
                window: None,
                scale: 1.0,
            };
            let q = values(tokens * nh * hd, 1, 1.0);
            let k = values(tokens * nkv * hd, 2, 1.0);
            let v = values(tokens * nkv * hd, 3, 1.0);
            let ck = values(capacity * nkv * hd, 4, 1.0);
            let cv = values(capacity * nkv * hd, 5, 1.0);
            let mut out = vec![0.0; tokens * nh * hd];
            // Keys seen per query summed over the chunk (causal), two products per key.
            let pairs: usize = (0..tokens).map(|t| pos0 + t + 1).sum();
            g.throughput(Throughput::Elements((4 * pairs * nh * hd) as u64));
            g.bench_function(format!("{nh}x{nkv}x{hd}/t{tokens}/pos{pos0}"), |bench| {
                bench.iter_custom(|iters| {
                    in_pool(iters, || b.attention(&a, &q, &k, &v, &ck, &cv, &mut out).expect("attention"))
                })
            });
        }
    }
    g.finish();
}

fn elementwise(c: &mut Criterion) {
    let b = FastCpu::new(Precision::Native);
    let mut g = c.benchmark_group(format!("elementwise/{}", b.isa().name()));
    let (rows, dim) = (512, 1536);
    let x = values(rows * dim, 1, 2.0);
    let w = b.weight(&HostTensor::from_f32(&values(dim, 2, 1.0), vec![dim]).expect("norm weight")).expect("weight");
    let mut out = vec![0.0; rows * dim];
    g.throughput(Throughput::Bytes((8 * rows * dim) as u64));
    let norm = RmsNormArgs { rows, dim, eps: 1e-6 };
    g.bench_function("rms_norm/512x1536", |bench| {
        bench.iter_custom(|iters| in_pool(iters, || b.rms_norm(&norm, &x, Some(&w), &mut out).expect("rms_norm")))
    });
    let (rows, width) = (512, 6144);
    let gate = values(rows * width, 3, 3.0);
    let up = values(rows * width, 4, 3.0);
    let mut act = vec![0.0; rows * width];
    g.throughput(Throughput::Bytes((12 * rows * width) as u64));
    g.bench_function("geglu/512x6144", |bench| {
        bench.iter_custom(|iters| {
            in_pool(iters, || b.geglu(&GegluArgs { rows, width }, &gate, &up, &mut act).expect("geglu"))
        })
    });
    let vocab = 262_144;
    let mut logits = values(vocab, 5, 40.0);
    g.throughput(Throughput::Bytes((8 * vocab) as u64));
    g.bench_function("softcap/262144", |bench| {
        bench.iter_custom(|iters| {
            in_pool(iters, || b.softcap(&SoftcapArgs { len: vocab, cap: 30.0 }, &mut logits).expect("softcap"))
        })
    });
    g.finish();
}

criterion_group!(benches, attention, elementwise);
criterion_main!(benches);
