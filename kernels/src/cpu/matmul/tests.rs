//! `linear` on every supported instruction set, activation mode, dtype and token count against
//! the scalar reference dot (`quant::dot`), as normalized error `max |got - want| / max |want|`.

use super::*;
use crate::tensor::DType;

/// splitmix64: raw 64-bit values (the matmul unit tests' one generator).
pub(super) fn splitmix(seed: u64) -> impl FnMut() -> u64 {
    let mut s = seed;
    move || {
        s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// Uniform values in `[-1, 1)`.
fn rng(seed: u64) -> impl FnMut() -> f32 {
    let mut next = splitmix(seed);
    move || (next() >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
}

/// A weight of `n` rows of `k` in `dtype`: f32 values quantized by garnet's quantizer, or, for
/// the formats garnet does not write, random bytes with tame scales.
fn weight(dtype: DType, n: usize, k: usize, seed: u64) -> HostTensor {
    let mut r = rng(seed);
    let vals: Vec<f32> = (0..n * k).map(|_| r()).collect();
    if let Ok(t) = HostTensor::from_f32_as(&vals, vec![n, k], dtype) {
        return t;
    }
    let bytes = random_blocks(dtype, n * k / dtype.block().0, seed);
    HostTensor::new(std::sync::Arc::new(bytes), 0, dtype, vec![n, k]).unwrap()
}

/// `blocks` random blocks of the block format `dtype`, with their f16 (Q8_K: f32) scale fields
/// set to small positive values so that sums stay finite.
pub(super) fn random_blocks(dtype: DType, blocks: usize, seed: u64) -> Vec<u8> {
    let mut next = splitmix(seed);
    let size = dtype.block().1;
    let mut bytes: Vec<u8> = (0..blocks * size).map(|_| next() as u8).collect();
    let fields: &[usize] = match dtype {
        DType::Q2_K => &[80, 82],
        DType::Q3_K => &[108],
        DType::Q6_K => &[208],
        DType::Q8_K => &[],
        DType::Q4_K | DType::Q5_K | DType::Q4_1 | DType::Q5_1 => &[0, 2],
        _ => &[0],
    };
    for b in bytes.chunks_exact_mut(size) {
        for &f in fields {
            b[f + 1] = 0x1c | (b[f + 1] & 0x03);
        }
        if dtype == DType::Q8_K {
            b[..4].copy_from_slice(&0.01f32.to_le_bytes());
        }
    }
    bytes
}

/// Every dtype the matmul reads.
pub(super) const DTYPES: [DType; 14] = DType::ALL;

#[test]
fn linear_matches_reference_everywhere() {
    let (n, rows) = (37, 45);
    // Odd and even block counts per row: the 512-bit kernels take blocks in pairs.
    for (dtype, k) in DTYPES.iter().flat_map(|&d| match d.block().0 {
        256 => [(d, 512), (d, 768)],
        32 => [(d, 96), (d, 128)],
        _ => [(d, 37), (d, 128)], // odd k: the bf16 GEMM pads the last pair
    }) {
        let w = weight(dtype, rows, k, 7);
        let row_bytes = dtype.bytes_for(k).unwrap();
        // 45 and 70: past both int8 GEMM crossovers, each leaving a partial tile of tokens.
        for m in [1, 3, 4, 11, 45, 70] {
            let x: Vec<f32> = {
                let mut r = rng(m as u64);
                (0..m * k).map(|_| r()).collect()
            };
            let row0 = 5;
            let want: Vec<f32> = (0..m)
                .flat_map(|i| {
                    let (x, w) = (&x, &w);
                    (0..n).map(move |j| {
                        let b = &w.bytes()[(row0 + j) * row_bytes..(row0 + j + 1) * row_bytes];
                        crate::quant::dot(dtype, b, &x[i * k..(i + 1) * k])
                    })
                })
                .collect();
            let scale = want.iter().fold(0.0f32, |a, v| a.max(v.abs()));
            for isa in Isa::supported() {
                for act in [Precision::Reference, Precision::Native] {
                    let mut out = vec![f32::NAN; m * n];
                    linear(isa, act, &w, k, row0, n, &x, &mut out);
                    let err = out.iter().zip(&want).fold(0.0f32, |a, (g, w)| a.max((g - w).abs())) / scale;
                    let bound = match act {
                        Precision::Reference => 2e-6,
                        Precision::Native => 1.5e-2,
                    };
                    if m == 1 || m == 11 {
                        eprintln!("{:5} m={m:2} {:12} {act:?}: {err:.2e}", dtype.name(), isa.name());
                    }
                    assert!(err <= bound, "{} m={m} {isa:?} {act:?}: error {err:e} > {bound:e}", dtype.name());
                }
            }
        }
    }
}

/// The multi-row matvec gives every token, bit for bit, the single-token (decode) result: on
/// every dtype, ISA and precision, odd row counts spanning several tiles per task, and token
/// counts that leave each remainder of the 4-token groups; 32-block rows of an odd and an even
/// number of blocks (the 512-bit kernels take block pairs).
#[test]
fn multi_row_matvec_is_bit_exact_per_token() {
    let (n, rows, row0) = (301, 305, 3);
    let lengths = DTYPES.into_iter().flat_map(|dtype| {
        let ks: &[usize] = match dtype.block().0 {
            256 => &[512],
            32 => &[96, 128],
            _ => &[37],
        };
        ks.iter().map(move |&k| (dtype, k))
    });
    for (dtype, k) in lengths {
        let w = weight(dtype, rows, k, 11);
        let row_bytes = dtype.bytes_for(k).unwrap();
        let bytes = &w.bytes()[row0 * row_bytes..(row0 + n) * row_bytes];
        for m in [2, 3, 5, 8, 13, multirow::M_MAX] {
            let x: Vec<f32> = {
                let mut r = rng(100 + m as u64);
                (0..m * k).map(|_| r()).collect()
            };
            for isa in Isa::supported() {
                for act in [Precision::Reference, Precision::Native] {
                    let mut got = vec![f32::NAN; m * n];
                    multirow::matvec_tokens(isa, act, dtype, bytes, row_bytes, k, &x, n, &mut got);
                    for (i, (xi, gi)) in x.chunks_exact(k).zip(got.chunks_exact(n)).enumerate() {
                        let mut one = vec![f32::NAN; n];
                        multirow::matvec_tokens(isa, act, dtype, bytes, row_bytes, k, xi, n, &mut one);
                        let same = gi.iter().zip(&one).all(|(a, b)| a.to_bits() == b.to_bits());
                        assert!(same, "{} m={m} token {i} {isa:?} {act:?}: differs from one token", dtype.name());
                    }
                }
            }
        }
    }
}
