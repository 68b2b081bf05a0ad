//! The CUDA backend's `matmul` on the emulator against the reference: the exact path
//! (`Precision::Reference`: the f32 SIMT GEMM for prefill, the matvec for decode) on every dtype with
//! odd shapes and partial tiles, and the tensor-core GEMM on shapes whose `m` is not a multiple
//! of 16 and `k` not a multiple of 32 (BF16 and F16 both through cp.async and plain loads,
//! Q4_0 decoded through registers).

mod common;
use common::*;
use garnet_kernels::cuda::{Cuda, Emulator};
use garnet_kernels::Precision;
use garnet_kernels::*;

type Emu = Cuda<Emulator>;

/// Every format: the device decodes them all.
const DTYPES: [DType; 14] = DType::ALL;

/// The reference and the emulated `matmul` of an `[n, k]` weight of `dtype` on random `x`
/// (`out` filled with garbage first, so every element must be written); the normalised error.
fn check(c: &Emu, dtype: DType, m: usize, n: usize, k: usize, rng: &mut Rng) -> f64 {
    let w = random_weight(dtype, n, k, rng);
    let a = MatmulArgs { m, n, k };
    let x = rng.vec(m * k, 1.0);
    let mut want = z(m * n);
    be().matmul(&a, &buf(&x), &w, &mut want).unwrap();

    let cw = c.weight(&w).unwrap();
    let mut cx = c.alloc(m * k).unwrap();
    c.upload(&x, &mut cx).unwrap();
    let mut out = c.alloc(m * n).unwrap();
    c.upload(&vec![f32::NAN; m * n], &mut out).unwrap();
    c.matmul(&a, &cx, &cw, &mut out).unwrap();
    let mut got = vec![0.0; m * n];
    c.download(&out, 0, &mut got).unwrap();
    if k == 0 {
        assert!(got.iter().all(|&v| v == 0.0), "k = 0 must give zeros");
        return 0.0;
    }
    nerr(&got, &host(&want))
}

/// `want` rounded up to whole blocks of `dtype`.
fn cols(dtype: DType, want: usize) -> usize {
    want.next_multiple_of(dtype.block().0)
}

#[test]
fn exact_matmul_matches_reference_on_every_dtype() {
    let c = Cuda::emulated(Precision::Reference).unwrap();
    let mut rng = Rng(7);
    for dtype in DTYPES {
        let mut worst = 0.0f64;
        let mut shapes = vec![(37, cols(dtype, 64)), (70, cols(dtype, 300))];
        if !dtype.is_quantized() {
            shapes.extend([(5, 45), (66, 33)]); // unaligned rows (scalar loads), k % 16 != 0
        }
        for (n, k) in shapes {
            // Decode (matvec, one and several rows) and prefill (partial 64 x 64 tiles).
            for m in [1, 3, 8, 9, 17, 70] {
                let e = check(&c, dtype, m, n, k, &mut rng);
                assert!(e < 1e-5, "exact matmul {} m={m} n={n} k={k}: {e:e}", dtype.name());
                worst = worst.max(e);
            }
        }
        // A real prefill shape: 64 tokens of a 256-row slice of E2B's q_proj.
        let e = check(&c, dtype, 64, 256, 1536, &mut rng);
        assert!(e < 1e-5, "exact matmul {} m=64 n=256 k=1536: {e:e}", dtype.name());
        println!("{:5} exact worst nerr {:.2e}", dtype.name(), worst.max(e));
    }
    // An empty dot product is 0, on both paths.
    for m in [1, 9] {
        check(&c, DType::F32, m, 3, 0, &mut rng);
    }
}

#[test]
fn tensor_core_gemm_handles_partial_tiles() {
    let c = Cuda::emulated(Precision::Native).unwrap();
    let mut rng = Rng(9);
    // (dtype, k, bound): k = 45 takes the plain-load path of bf16 weights (rows not 16-byte
    // aligned), k = 72 the cp.async path with a zero-filled partial k step; f16 weights are
    // rounded to bf16 in registers (both k), so they get bf16's bound; Q4_0 needs whole blocks,
    // so its odd k is 96 (three 32-steps, an odd count for the double buffer).
    let cases = [
        (DType::BF16, 45, 4e-3),
        (DType::BF16, 72, 4e-3),
        (DType::F16, 45, 4e-3),
        (DType::F16, 72, 4e-3),
        (DType::Q4_0, 96, 1e-2),
    ];
    for (dtype, k, bound) in cases {
        for (m, n) in [(21, 70), (9, 129)] {
            let e = check(&c, dtype, m, n, k, &mut rng);
            println!("{:5} m={m} n={n} k={k}: nerr {e:.2e}", dtype.name());
            assert!(e < bound, "tensor-core matmul {} m={m} n={n} k={k}: {e:e} >= {bound:e}", dtype.name());
        }
    }
}
