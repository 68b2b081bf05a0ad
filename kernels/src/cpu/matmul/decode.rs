//! Block decoding for the fast matmuls: one block of a GGUF format -> integer quants and
//! per-16-element factors, so one dot-product loop serves every format.
//!
//! Layout of a decoded [`Block`]: element `e` (< 32 for the legacy formats, < 256 for the
//! k-quants) is `scale[e / 16] * q[e] - min[e / 16]`, the reference's decoding (quant/mod.rs)
//! with the factors repeated per 16 elements (a format with 32-element sub-blocks has both
//! halves equal). `q` is signed (`|q| <= 128`), ready for int8 dot products.
//!
//! Versions: v1 the reference unpackers (quant/legacy.rs, quant/kquants.rs), regrouped; v2
//! loops shaped for the auto-vectoriser for the formats that dominate real files (Q8_0, Q4_0,
//! Q5_0, Q4_K, Q6_K), inlined into each kernel through [`with_decoder`]. Both are checked against `quant::dequantize` in the tests.

use crate::quant::{unpacker, Unpack, Unpacked};
use crate::tensor::DType;

/// One decoded block (see the module docs).
pub(crate) struct Block {
    /// Quants.
    pub q: [i8; 256],
    /// Scale per 16 elements.
    pub scale: [f32; 16],
    /// Subtracted value per 16 elements.
    pub min: [f32; 16],
}

impl Block {
    pub fn new() -> Self {
        Block { q: [0; 256], scale: [0.0; 16], min: [0.0; 16] }
    }
}

/// A kernel generic over the block decoder, so that decoding inlines into it (one copy per
/// format and instruction set): see [`with_decoder`].
pub(crate) trait DecodeJob {
    /// What the kernel returns.
    type Out;
    /// Runs the kernel with `decode` for a format described by `f`.
    fn run<D: Fn(&[u8], &mut Block) + Copy>(self, decode: D, f: Format) -> Self::Out;
}

/// What a kernel needs to know of a block format besides its decoder.
#[derive(Clone, Copy)]
pub(crate) struct Format {
    /// Elements per block.
    pub elems: usize,
    /// Bytes per block.
    pub size: usize,
    /// Whether the format subtracts per-sub-block values (`min != 0`).
    pub mins: bool,
    /// Whether the two halves of a 32-group can have different scales (16-element sub-blocks).
    pub sub16: bool,
}

/// Calls `job` with the decoder of block format `dtype`; `None` for the plain floats.
#[inline(always)]
pub(crate) fn with_decoder<J: DecodeJob>(dtype: DType, job: J) -> Option<J::Out> {
    let (elems, size) = dtype.block();
    let f = |mins, sub16| Format { elems, size, mins, sub16 };
    Some(match dtype {
        DType::F32 | DType::F16 | DType::BF16 => return None,
        DType::Q8_0 => job.run(q8_0, f(false, false)),
        DType::Q4_0 => job.run(q4_0, f(false, false)),
        DType::Q5_0 => job.run(q5_0, f(false, false)),
        DType::Q4_K => job.run(q4_k, f(true, false)),
        DType::Q6_K => job.run(q6_k, f(false, true)),
        DType::Q3_K => job.run(|b: &[u8], o: &mut Block| generic(DType::Q3_K, b, o), f(false, true)),
        DType::Q8_K => job.run(|b: &[u8], o: &mut Block| generic(DType::Q8_K, b, o), f(false, false)),
        // The formats with an added min (stored negated by the reference unpacker).
        DType::Q4_1 => job.run(|b: &[u8], o: &mut Block| generic(DType::Q4_1, b, o), f(true, false)),
        DType::Q5_1 => job.run(|b: &[u8], o: &mut Block| generic(DType::Q5_1, b, o), f(true, false)),
        DType::Q2_K => job.run(|b: &[u8], o: &mut Block| generic(DType::Q2_K, b, o), f(true, true)),
        DType::Q5_K => job.run(|b: &[u8], o: &mut Block| generic(DType::Q5_K, b, o), f(true, false)),
    })
}

/// IEEE half -> f32, branch-free so loops over it vectorise (subnormals, inf and NaN exact).
#[inline(always)]
pub(crate) fn f16_to_f32(h: u16) -> f32 {
    let em = u32::from(h & 0x7fff);
    // Shift the exponent and mantissa into place, then rebias by 2^112 (112 = 127 - 15);
    // a subnormal half lands on an f32 subnormal that the multiply normalises exactly.
    let v = f32::from_bits(em << 13) * f32::from_bits(0x7780_0000);
    let inf_nan = if em >= 0x7c00 { 0x7f80_0000 } else { 0 };
    f32::from_bits(v.to_bits() | inf_nan | (u32::from(h & 0x8000) << 16))
}

/// The little-endian f16 at `b[at..at + 2]`, widened.
#[inline(always)]
fn f16_at(b: &[u8], at: usize) -> f32 {
    f16_to_f32(u16::from_le_bytes([b[at], b[at + 1]]))
}

/// A 32-element block: both halves get `d`, no min.
#[inline(always)]
fn one_scale(o: &mut Block, d: f32) {
    o.scale[..2].fill(d);
    o.min[..2].fill(0.0);
}

/// Q8_0: `d: f16, qs: [i8; 32]`.
#[inline(always)]
fn q8_0(b: &[u8], o: &mut Block) {
    one_scale(o, f16_at(b, 0));
    for (q, &v) in o.q[..32].iter_mut().zip(&b[2..34]) {
        *q = v as i8;
    }
}

/// Q4_0: `d: f16, qs: [u8; 16]`; element `j` is the low nibble of byte `j`, `j + 16` the high.
#[inline(always)]
fn q4_0(b: &[u8], o: &mut Block) {
    one_scale(o, f16_at(b, 0));
    let qs: &[u8; 16] = b[2..18].try_into().unwrap_or(&[0; 16]);
    let (lo, hi) = o.q[..32].split_at_mut(16);
    for j in 0..16 {
        lo[j] = (qs[j] & 15) as i8 - 8;
        hi[j] = (qs[j] >> 4) as i8 - 8;
    }
}

/// Q5_0: `d: f16, qh: u32, qs: [u8; 16]`; bit `e` of `qh` is element `e`'s fifth bit.
#[inline(always)]
fn q5_0(b: &[u8], o: &mut Block) {
    one_scale(o, f16_at(b, 0));
    let qh = u32::from_le_bytes([b[2], b[3], b[4], b[5]]);
    let qs: &[u8; 16] = b[6..22].try_into().unwrap_or(&[0; 16]);
    let (lo, hi) = o.q[..32].split_at_mut(16);
    for j in 0..16 {
        let (h0, h1) = (((qh >> j) & 1) << 4, ((qh >> (j + 16)) & 1) << 4);
        lo[j] = ((qs[j] & 15) | h0 as u8) as i8 - 16;
        hi[j] = ((qs[j] >> 4) | h1 as u8) as i8 - 16;
    }
}

/// Q4_K: `d, dmin: f16, scales: [u8; 12], qs: [u8; 128]`: 8 sub-blocks of 32 with 6-bit scales
/// and mins; sub-block `2g` is the low nibbles of `qs[32g..32g + 32]`, `2g + 1` the high ones.
#[inline(always)]
fn q4_k(b: &[u8], o: &mut Block) {
    let (d, dmin) = (f16_at(b, 0), f16_at(b, 2));
    let s = &b[4..16];
    for j in 0..8 {
        let (sc, m) = if j < 4 {
            (s[j] & 63, s[j + 4] & 63)
        } else {
            ((s[j + 4] & 0x0f) | (s[j - 4] >> 6) << 4, (s[j + 4] >> 4) | (s[j] >> 6) << 4)
        };
        o.scale[2 * j..2 * j + 2].fill(d * f32::from(sc));
        o.min[2 * j..2 * j + 2].fill(dmin * f32::from(m));
    }
    for (qs, q) in b[16..144].chunks_exact(32).zip(o.q.chunks_exact_mut(64)) {
        let (lo, hi) = q.split_at_mut(32);
        for l in 0..32 {
            lo[l] = (qs[l] & 15) as i8;
            hi[l] = (qs[l] >> 4) as i8;
        }
    }
}

/// Q6_K: `ql: [u8; 128], qh: [u8; 64], scales: [i8; 16], d: f16`: 16 sub-blocks of 16, 6-bit
/// quants offset by 32 (low nibbles in `ql`, high bit pairs in `qh`).
#[inline(always)]
fn q6_k(b: &[u8], o: &mut Block) {
    let d = f16_at(b, 208);
    for (s, &sc) in o.scale.iter_mut().zip(&b[192..208]) {
        *s = d * f32::from(sc as i8);
    }
    o.min.fill(0.0);
    for n in 0..2 {
        let (ql, qh) = (&b[64 * n..64 * n + 64], &b[128 + 32 * n..160 + 32 * n]);
        let q = &mut o.q[128 * n..128 * n + 128];
        for l in 0..32 {
            let (a, c, h) = (ql[l], ql[32 + l], qh[l]);
            q[l] = ((a & 15) | (h & 3) << 4) as i8 - 32;
            q[32 + l] = ((c & 15) | ((h >> 2) & 3) << 4) as i8 - 32;
            q[64 + l] = ((a >> 4) | ((h >> 4) & 3) << 4) as i8 - 32;
            q[96 + l] = ((c >> 4) | ((h >> 6) & 3) << 4) as i8 - 32;
        }
    }
}

thread_local! {
    static UNPACKED: std::cell::RefCell<Unpacked> = std::cell::RefCell::new(Unpacked::new());
}

/// The other formats through the reference unpacker, regrouped per 16 elements.
fn generic(dtype: DType, b: &[u8], o: &mut Block) {
    let Some(unpack): Option<Unpack> = unpacker(dtype) else { return };
    UNPACKED.with_borrow_mut(|u| {
        unpack(b, u);
        o.q.copy_from_slice(&u.q);
        let sub = u.sub.max(1);
        for h in 0..16 {
            o.scale[h] = u.scale[(16 * h / sub).min(15)];
            o.min[h] = u.min[(16 * h / sub).min(15)];
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every decoder reproduces the reference dequantization bit for bit on random blocks.
    #[test]
    fn decoders_match_reference() {
        use super::super::tests::{random_blocks, DTYPES};
        for dtype in DTYPES.into_iter().filter(|d| d.is_quantized()) {
            let (elems, size) = dtype.block();
            let mut blk = Block::new();
            for bytes in random_blocks(dtype, 50, 1).chunks_exact(size) {
                let mut want = vec![0.0f32; elems];
                crate::quant::dequantize(dtype, bytes, &mut want);
                with_decoder(dtype, Once { bytes, blk: &mut blk }).unwrap();
                for (e, w) in want.iter().enumerate() {
                    let got = blk.scale[e / 16] * f32::from(blk.q[e]) - blk.min[e / 16];
                    assert_eq!(got.to_bits(), w.to_bits(), "{} element {e}", dtype.name());
                }
            }
        }
    }

    struct Once<'a> {
        bytes: &'a [u8],
        blk: &'a mut Block,
    }

    impl DecodeJob for Once<'_> {
        type Out = ();
        fn run<D: Fn(&[u8], &mut Block) + Copy>(self, decode: D, _: Format) {
            decode(self.bytes, self.blk);
        }
    }

    #[test]
    fn f16_conversion_is_exact() {
        for h in 0..=u16::MAX {
            let want = half::f16::from_bits(h).to_f32();
            let got = f16_to_f32(h);
            assert!(got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()), "{h:#x}");
        }
    }
}
