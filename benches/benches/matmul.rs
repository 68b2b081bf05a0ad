//! Linear layers on the fast CPU backend at Gemma shapes: decode matvecs (reported as weight
//! GB/s: the roofline is the machine's read bandwidth, see `garnet bench`) and prefill GEMMs
//! (reported as GFLOP/s, `2 m n k` per call), per weight dtype, in the native activation mode.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use garnet_benches::{in_pool, values, weight};
use garnet_kernels::cpu::FastCpu;
use garnet_kernels::Precision;
use garnet_kernels::{Backend, DType, MatmulArgs};

fn matvec(c: &mut Criterion) {
    let b = FastCpu::new(Precision::Native);
    let mut g = c.benchmark_group(format!("matvec/{}", b.isa().name()));
    // (rows, k): Gemma 3 270M FFN, Gemma 4 E2B FFN, Gemma 3's tied LM head.
    let shapes: [(usize, usize); 3] = [(2048, 640), (6144, 1536), (262_144, 640)];
    let dtypes = [DType::BF16, DType::Q8_0, DType::Q5_0, DType::Q4_0, DType::Q4_K, DType::Q6_K];
    for (n, k) in shapes {
        for dtype in dtypes {
            if !k.is_multiple_of(dtype.block().0) || (n > 100_000 && dtype != DType::Q8_0) {
                continue;
            }
            let w = b.weight(&weight(dtype, n, k)).expect("weight");
            let x = values(k, 1, 1.0);
            let mut out = vec![0.0; n];
            g.throughput(Throughput::Bytes(w.nbytes() as u64));
            g.bench_function(BenchmarkId::new(dtype.name(), format!("{n}x{k}")), |bench| {
                bench.iter_custom(|iters| {
                    in_pool(iters, || b.matmul(&MatmulArgs { m: 1, n, k }, &x, &w, &mut out).expect("matmul"))
                })
            });
        }
    }
    g.finish();
}

fn gemm(c: &mut Criterion) {
    for act in [Precision::Native, Precision::Reference] {
        let b = FastCpu::new(act);
        let mut g = c.benchmark_group(format!("gemm/{}/{act:?}", b.isa().name()));
        g.sample_size(10);
        let m = 512;
        for (n, k) in [(2048usize, 640usize), (640, 2048)] {
            for dtype in [DType::BF16, DType::Q5_0, DType::Q4_0, DType::Q6_K] {
                if !k.is_multiple_of(dtype.block().0) {
                    continue;
                }
                let w = b.weight(&weight(dtype, n, k)).expect("weight");
                let x = values(m * k, 1, 1.0);
                let mut out = vec![0.0; m * n];
                g.throughput(Throughput::Elements(2 * (m * n * k) as u64));
                g.bench_function(BenchmarkId::new(dtype.name(), format!("{m}x{n}x{k}")), |bench| {
                    bench.iter_custom(|iters| {
                        in_pool(iters, || b.matmul(&MatmulArgs { m, n, k }, &x, &w, &mut out).expect("matmul"))
                    })
                });
            }
        }
        g.finish();
    }
}

criterion_group!(benches, matvec, gemm);
criterion_main!(benches);
