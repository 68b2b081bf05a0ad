//! Shared by the kernel tests: a deterministic PRNG (splitmix64) and the reference backend's
//! buffer helpers. Each test file uses a subset.
#![allow(dead_code)]

use garnet_kernels::reference::RefCpu;
use garnet_kernels::*;
use half::f16;
use std::sync::Arc;

/// splitmix64: a tiny deterministic PRNG.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `[-scale, scale)`.
    pub fn uniform(&mut self, scale: f32) -> f32 {
        ((self.next_u64() >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
    }
    pub fn vec(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| self.uniform(scale)).collect()
    }
    /// Uniform in `[1 - spread, 1 + spread)`: norm weights, expert scales, routing weights.
    pub fn around_one(&mut self, n: usize, spread: f32) -> Vec<f32> {
        (0..n).map(|_| 1.0 + self.uniform(spread)).collect()
    }
    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }
    /// Standard normal (Box-Muller).
    pub fn gauss(&mut self) -> f32 {
        let (u, v) = (1.0 - self.unit(), self.unit());
        (-2.0 * u.ln()).sqrt() * (std::f32::consts::TAU * v).cos()
    }
    pub fn gauss_vec(&mut self, n: usize, sigma: f32) -> Vec<f32> {
        (0..n).map(|_| self.gauss() * sigma).collect()
    }
    /// `k` distinct values of `0..n` in random order (partial Fisher-Yates).
    pub fn distinct(&mut self, n: usize, k: usize) -> Vec<u32> {
        let mut all: Vec<u32> = (0..n as u32).collect();
        for i in 0..k {
            let j = i + (self.next_u64() % (n - i) as u64) as usize;
            all.swap(i, j);
        }
        all.truncate(k);
        all
    }
}

pub fn be() -> RefCpu {
    RefCpu::new()
}

/// A zeroed device buffer.
pub fn z(len: usize) -> Vec<f32> {
    be().alloc(len).unwrap()
}

/// A device buffer holding `x`.
pub fn buf(x: &[f32]) -> Vec<f32> {
    let mut b = z(x.len());
    be().upload(x, &mut b).unwrap();
    b
}

pub fn ids_buf(x: &[u32]) -> Vec<u32> {
    let mut b = be().alloc_ids(x.len()).unwrap();
    be().upload_ids(x, &mut b).unwrap();
    b
}

pub fn host(b: &Vec<f32>) -> Vec<f32> {
    let mut out = vec![0.0; be().buf_len(b)];
    be().download(b, 0, &mut out).unwrap();
    out
}

pub fn rope_args(head_dim: usize, rotary_pairs: usize, theta: f32, pos0: usize) -> RopeArgs {
    let (tokens, heads) = (3, 4);
    RopeArgs { tokens, heads, head_dim, rotary_pairs, theta, pos0, freq_scale: 1.0 }
}

/// A full layer: head_dim 512, 32 query heads on 4 KV heads, a 64-position cache.
pub fn full(pos0: usize, tokens: usize) -> AttentionArgs {
    let (n_heads, n_kv_heads, head_dim, capacity) = (32, 4, 512, 64);
    let scale = 2.0 / (head_dim as f32).sqrt();
    AttentionArgs { tokens, n_heads, n_kv_heads, head_dim, pos0, capacity, window: None, scale }
}

/// `max|got - want| / max|want|`, after checking that every value is finite.
pub fn nerr(got: &[f32], want: &[f32]) -> f64 {
    assert_eq!(got.len(), want.len());
    assert!(got.iter().all(|v| v.is_finite()), "non-finite output");
    let m = want.iter().fold(0.0f64, |m, w| m.max(w.abs() as f64)).max(1e-30);
    got.iter().zip(want).fold(0.0f64, |e, (g, w)| e.max((*g as f64 - *w as f64).abs())) / m
}

/// Byte offsets of the f16 scales inside a block.
fn scale_offsets(dtype: DType) -> &'static [usize] {
    match dtype {
        DType::Q4_1 | DType::Q5_1 | DType::Q4_K | DType::Q5_K => &[0, 2],
        DType::Q2_K => &[80, 82],
        DType::Q3_K => &[108],
        DType::Q6_K => &[208],
        _ => &[0],
    }
}

/// An `[n, k]` weight of `dtype`: floats rounded from uniform values; blocks of random bytes
/// whose scales (and mins) are finite and modest.
pub fn random_weight(dtype: DType, n: usize, k: usize, rng: &mut Rng) -> HostTensor {
    if !dtype.is_quantized() {
        return HostTensor::from_f32_as(&rng.vec(n * k, 1.0), vec![n, k], dtype).unwrap();
    }
    let (elems, size) = dtype.block();
    let mut b: Vec<u8> = (0..n * k / elems * size).map(|_| rng.next_u64() as u8).collect();
    for blk in b.chunks_exact_mut(size) {
        for &at in scale_offsets(dtype) {
            let v = rng.uniform(0.05);
            if dtype == DType::Q8_K {
                blk[at..at + 4].copy_from_slice(&v.to_le_bytes()); // Q8_K's d is an f32
            } else {
                blk[at..at + 2].copy_from_slice(&f16::from_f32(v).to_le_bytes());
            }
        }
    }
    HostTensor::new(Arc::new(b), 0, dtype, vec![n, k]).unwrap()
}

/// `x` in a new buffer of backend `g` (a device backend under test).
pub fn to_gpu<B: Backend>(g: &B, x: &[f32]) -> B::Buf {
    let mut b = g.alloc(x.len()).unwrap();
    g.upload(x, &mut b).unwrap();
    b
}

/// The whole of buffer `b` of backend `g`, read back.
pub fn from_gpu<B: Backend>(g: &B, b: &B::Buf) -> Vec<f32> {
    let mut out = vec![0.0; g.buf_len(b)];
    g.download(b, 0, &mut out).unwrap();
    out
}
