//! Shared by the criterion benches in `benches/benches/`: deterministic random weights and
//! activations at real Gemma shapes. Run with `cargo bench -p garnet-benches`.

use garnet_kernels::{DType, HostTensor};

/// Deterministic values in `[-scale, scale)` (splitmix64).
pub fn values(n: usize, seed: u64, scale: f32) -> Vec<f32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            (((z ^ (z >> 31)) >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
        })
        .collect()
}

/// A random `[n, k]` weight stored as `dtype`: quantized by garnet where it writes the format
/// (F32, F16, BF16, Q8_0, Q4_0, Q4_K), else random blocks whose f16 scales are kept small.
pub fn weight(dtype: DType, n: usize, k: usize) -> HostTensor {
    if let Ok(t) = HostTensor::from_f32_as(&values(n * k, 7, 0.05), vec![n, k], dtype) {
        return t;
    }
    let (elems, size) = dtype.block();
    let mut bytes: Vec<u8> = values(n * k / elems * size, 3, 1.0).iter().map(|v| (v * 127.0 + 128.0) as u8).collect();
    let scales: &[usize] = match dtype {
        DType::Q2_K => &[80, 82],
        DType::Q3_K => &[108],
        DType::Q6_K => &[208],
        _ => &[0, 2],
    };
    for b in bytes.chunks_exact_mut(size) {
        for &at in scales {
            b[at + 1] = 0x1c | (b[at + 1] & 0x03);
        }
    }
    HostTensor::new(std::sync::Arc::new(bytes), 0, dtype, vec![n, k]).expect("whole blocks")
}

/// Runs `f` `iters` times on a rayon worker and returns the elapsed time (criterion's
/// `iter_custom`): the engine runs each forward inside the pool, so kernels' parallel loops start
/// hot there; timed from outside the pool every op would also pay a cold wake-up (~15 us).
pub fn in_pool(iters: u64, mut f: impl FnMut() + Send) -> std::time::Duration {
    rayon::scope(|_| {
        let t = std::time::Instant::now();
        for _ in 0..iters {
            f();
        }
        t.elapsed()
    })
}
