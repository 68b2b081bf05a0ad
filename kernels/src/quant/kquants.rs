//! ggml's k-quants: super-blocks of 256 elements split into sub-blocks with their own quantized
//! scales (and mins), plus Q8_K, the 8-bit activation format of the k-quant dot products.
//! Byte layouts (f16 little-endian; element indices within the super-block):
//!
//! * **Q2_K** (84 bytes): `scales: [u8; 16], qs: [u8; 64], d: f16, dmin: f16`. 16 sub-blocks of
//!   16; `scales[s]` holds the 4-bit scale (low nibble) and 4-bit min (high nibble) of sub-block
//!   `s`. Element `e = 128 n + 32 j + l` (`n < 2, j < 4, l < 32`) has the 2-bit quant
//!   `(qs[32 n + l] >> 2 j) & 3`; value `d * sc * q - dmin * m`.
//! * **Q3_K** (110 bytes): `hmask: [u8; 32], qs: [u8; 64], scales: [u8; 12], d: f16`. 16
//!   sub-blocks of 16 with signed 6-bit scales: scale `i` has its low 4 bits in the low nibble of
//!   `scales[i]` (`i < 8`) or the high nibble of `scales[i - 8]`, its high 2 bits at bit
//!   `2 (i / 4)` of `scales[8 + i % 4]`, and is used as `sc - 32`. Element `e = 128 n + 32 j + l`
//!   has low bits `(qs[32 n + l] >> 2 j) & 3`, minus 4 when bit `4 n + j` of `hmask[l]` is
//!   *clear*; value `d * (sc - 32) * q`.
//! * **Q4_K** (144 bytes): `d: f16, dmin: f16, scales: [u8; 12], qs: [u8; 128]`. 8 sub-blocks of
//!   32 with 6-bit scales and mins packed as in `get_scale_min_k4`: for `j < 4`, scale
//!   `scales[j] & 63` and min `scales[j + 4] & 63`; for `j >= 4`, scale
//!   `scales[j + 4] & 15 | (scales[j - 4] >> 6) << 4` and min
//!   `scales[j + 4] >> 4 | (scales[j] >> 6) << 4`. Element `e = 64 g + 32 h + l` is nibble `h`
//!   (low first) of `qs[32 g + l]`; value `d * sc * q - dmin * m`.
//! * **Q5_K** (176 bytes): `d, dmin, scales: [u8; 12], qh: [u8; 32], qs: [u8; 128]`: Q4_K plus a
//!   fifth bit, bit `2 g + h` of `qh[l]`, worth 16.
//! * **Q6_K** (210 bytes): `ql: [u8; 128], qh: [u8; 64], scales: [i8; 16], d: f16`. 16 sub-blocks
//!   of 16 with int8 scales. Element `e = 128 n + 32 k + l` (`k < 4`) has low nibble `k / 2` of
//!   `ql[64 n + 32 (k % 2) + l]` and high 2 bits `(qh[32 n + l] >> 2 k) & 3`, used as
//!   `q - 32`; value `d * sc * q`.
//! * **Q8_K** (292 bytes): `d: f32, qs: [i8; 256], bsums: [i16; 16]` (`bsums[s]` = sum of the 16
//!   quants of group `s`, only for dot kernels); value `d * q`.
//!
//! Quantizers: Q4_K as ggml's `quantize_row_q4_K_ref` (per sub-block, a weighted least-squares
//! search for scale and min over 21 candidate grids, `make_qkx2_quants`, then the scales and
//! mins quantized to 6 bits against the super-block maxima and the quants recomputed with the
//! rounded scales); Q6_K as `quantize_row_q6_K_ref` (per sub-block of 16, `make_qx_quants`'
//! search over 19 grids for an `x²`-weighted least-squares scale, the scales quantized to int8
//! and the quants recomputed with them); Q8_K as `quantize_row_q8_K_ref` (`d = max / -127` for
//! the value of largest magnitude, ties-to-even rounding).

use super::{f16_at, first_absmax, nearest_int, Unpacked};
use half::f16;

/// Q2_K: 16 sub-blocks of 16, 2-bit quants, 4-bit scales and mins.
pub(super) fn unpack_q2_k(b: &[u8], u: &mut Unpacked) {
    let (d, dmin) = (f16_at(b, 80), f16_at(b, 82));
    u.sub = 16;
    for (s, &sc) in b[..16].iter().enumerate() {
        u.scale[s] = d * f32::from(sc & 0x0f);
        u.min[s] = dmin * f32::from(sc >> 4);
    }
    let qs = &b[16..80];
    for (e, q) in u.q.iter_mut().enumerate() {
        let (n, j, l) = (e / 128, e / 32 % 4, e % 32);
        *q = ((qs[32 * n + l] >> (2 * j)) & 3) as i8;
    }
}

/// Q3_K: 16 sub-blocks of 16, 3-bit quants (2 low bits + inverted high bit), 6-bit scales.
pub(super) fn unpack_q3_k(b: &[u8], u: &mut Unpacked) {
    let (hmask, qs, scales) = (&b[..32], &b[32..96], &b[96..108]);
    let d = f16_at(b, 108);
    u.sub = 16;
    for i in 0..16 {
        let low = if i < 8 { scales[i] & 0x0f } else { scales[i - 8] >> 4 };
        let high = (scales[8 + i % 4] >> (2 * (i / 4))) & 3;
        u.scale[i] = d * (i32::from(low | high << 4) - 32) as f32;
        u.min[i] = 0.0;
    }
    for (e, q) in u.q.iter_mut().enumerate() {
        let (n, j, l) = (e / 128, e / 32 % 4, e % 32);
        let low = ((qs[32 * n + l] >> (2 * j)) & 3) as i8;
        let high_clear = (hmask[l] >> (4 * n + j)) & 1 == 0;
        *q = if high_clear { low - 4 } else { low };
    }
}

/// ggml's `get_scale_min_k4`: the 6-bit scale and min of sub-block `j` (< 8) of Q4_K / Q5_K.
fn scale_min_k4(j: usize, s: &[u8]) -> (u8, u8) {
    if j < 4 {
        (s[j] & 63, s[j + 4] & 63)
    } else {
        ((s[j + 4] & 0x0f) | (s[j - 4] >> 6) << 4, (s[j + 4] >> 4) | (s[j] >> 6) << 4)
    }
}

/// The 8 scales and mins of a Q4_K / Q5_K block (`b` starts with `d, dmin, scales[12]`).
fn scales_k4(b: &[u8], u: &mut Unpacked) {
    let (d, dmin) = (f16_at(b, 0), f16_at(b, 2));
    u.sub = 32;
    for j in 0..8 {
        let (sc, m) = scale_min_k4(j, &b[4..16]);
        u.scale[j] = d * f32::from(sc);
        u.min[j] = dmin * f32::from(m);
    }
}

/// Q4_K: 8 sub-blocks of 32, 4-bit quants, 6-bit scales and mins.
pub(super) fn unpack_q4_k(b: &[u8], u: &mut Unpacked) {
    scales_k4(b, u);
    let qs = &b[16..144];
    for (e, q) in u.q.iter_mut().enumerate() {
        let (g, h, l) = (e / 64, e / 32 % 2, e % 32);
        *q = ((qs[32 * g + l] >> (4 * h)) & 0x0f) as i8;
    }
}

/// Q5_K: Q4_K plus a fifth bit per quant in `qh`.
pub(super) fn unpack_q5_k(b: &[u8], u: &mut Unpacked) {
    scales_k4(b, u);
    let (qh, qs) = (&b[16..48], &b[48..176]);
    for (e, q) in u.q.iter_mut().enumerate() {
        let (g, h, l) = (e / 64, e / 32 % 2, e % 32);
        let low = (qs[32 * g + l] >> (4 * h)) & 0x0f;
        let high = (qh[l] >> (2 * g + h)) & 1;
        *q = (low | high << 4) as i8;
    }
}

/// Q6_K: 16 sub-blocks of 16, 6-bit quants (offset 32) split into `ql` nibbles and `qh` pairs,
/// int8 scales.
pub(super) fn unpack_q6_k(b: &[u8], u: &mut Unpacked) {
    let (ql, qh, scales) = (&b[..128], &b[128..192], &b[192..208]);
    let d = f16_at(b, 208);
    u.sub = 16;
    for (s, &sc) in scales.iter().enumerate() {
        u.scale[s] = d * f32::from(sc as i8);
        u.min[s] = 0.0;
    }
    for (e, q) in u.q.iter_mut().enumerate() {
        let (n, k, l) = (e / 128, e / 32 % 4, e % 32);
        let low = (ql[64 * n + 32 * (k % 2) + l] >> (4 * (k / 2))) & 0x0f;
        let high = (qh[32 * n + l] >> (2 * k)) & 3;
        *q = (low | high << 4) as i8 - 32;
    }
}

/// Q8_K: one f32 scale, 256 int8 quants (the trailing `bsums` are redundant for decoding).
pub(super) fn unpack_q8_k(b: &[u8], u: &mut Unpacked) {
    u.sub = 256;
    u.scale[0] = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    u.min[0] = 0.0;
    for (q, &byte) in u.q.iter_mut().zip(&b[4..260]) {
        *q = byte as i8;
    }
}

/// ggml's `make_qkx2_quants`: quants `l[i]` in `0..=nmax` and `(scale, min)` with
/// `x[i] ≈ scale * l[i] - min` (`min >= 0` is returned negated, as ggml does), minimising the
/// `w`-weighted squared error. Starts from the plain min/max grid, then tries `nstep + 1` grids
/// of `nmax + rmin + rdelta * is` steps over `[min, max]`, each refined by a closed-form weighted
/// least-squares fit of scale and offset (offset clamped to <= 0); keeps the best.
/// All arithmetic is f32 in ggml's order, so the choice matches ggml's bit for bit.
fn make_qkx2_quants(x: &[f32], w: &[f32], nmax: i32, grid: (f32, f32, usize), l: &mut [u8]) -> (f32, f32) {
    let (rmin, rdelta, nstep) = grid;
    let (mut min, mut max) = (x[0], x[0]);
    let mut sum_w = w[0];
    let mut sum_x = sum_w * x[0];
    for (&xi, &wi) in x.iter().zip(w).skip(1) {
        if xi < min {
            min = xi;
        }
        if xi > max {
            max = xi;
        }
        sum_w += wi;
        sum_x += wi * xi;
    }
    if min > 0.0 {
        min = 0.0;
    }
    if max == min {
        l.fill(0);
        return (0.0, -min);
    }
    // `min` is the current best offset: ggml quantizes later grids against it too.
    let quant = |iscale: f32, xi: f32, min: f32| nearest_int(iscale * (xi - min)).clamp(0, nmax);
    let mut iscale = nmax as f32 / (max - min);
    let mut scale = 1.0 / iscale;
    let mut best_error = 0.0f32;
    for ((li, &xi), &wi) in l.iter_mut().zip(x).zip(w) {
        *li = quant(iscale, xi, min) as u8;
        let diff = scale * f32::from(*li) + min - xi;
        best_error += wi * (diff * diff);
    }
    let mut laux = [0u8; 32];
    let laux = &mut laux[..x.len()];
    for is in 0..=nstep {
        iscale = (rmin + rdelta * is as f32 + nmax as f32) / (max - min);
        let (mut sum_l, mut sum_l2, mut sum_xl) = (0.0f32, 0.0f32, 0.0f32);
        for ((la, &xi), &wi) in laux.iter_mut().zip(x).zip(w) {
            let q = quant(iscale, xi, min);
            *la = q as u8;
            let lf = q as f32;
            sum_l += wi * lf;
            sum_l2 += wi * lf * lf;
            sum_xl += wi * lf * xi;
        }
        let det = sum_w * sum_l2 - sum_l * sum_l;
        if det > 0.0 {
            let mut this_scale = (sum_w * sum_xl - sum_x * sum_l) / det;
            let mut this_min = (sum_l2 * sum_x - sum_l * sum_xl) / det;
            if this_min > 0.0 {
                this_min = 0.0;
                this_scale = sum_xl / sum_l2;
            }
            let mut cur_error = 0.0f32;
            for ((&la, &xi), &wi) in laux.iter().zip(x).zip(w) {
                let diff = this_scale * f32::from(la) + this_min - xi;
                cur_error += wi * (diff * diff);
            }
            if cur_error < best_error {
                l.copy_from_slice(laux);
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    (scale, -min)
}

/// Q4_K from 256 values, as ggml's `quantize_row_q4_K_ref`.
pub(super) fn quantize_q4_k(x: &[f32], out: &mut [u8]) {
    let mut l = [0u8; 256];
    let (mut scales, mut mins) = ([0.0f32; 8], [0.0f32; 8]);
    let (mut max_scale, mut max_min) = (0.0f32, 0.0f32);
    for (j, (xs, ls)) in x.chunks_exact(32).zip(l.chunks_exact_mut(32)).enumerate() {
        let sum_x2 = xs.iter().fold(0.0f32, |a, v| a + v * v);
        let av_x = (sum_x2 / 32.0).sqrt();
        let mut weights = [0.0f32; 32];
        for (wi, xi) in weights.iter_mut().zip(xs) {
            *wi = av_x + xi.abs();
        }
        (scales[j], mins[j]) = make_qkx2_quants(xs, &weights, 15, (-1.0, 0.1, 20), ls);
        if scales[j] > max_scale {
            max_scale = scales[j];
        }
        if mins[j] > max_min {
            max_min = mins[j];
        }
    }

    let inv_scale = if max_scale > 0.0 { 63.0 / max_scale } else { 0.0 };
    let inv_min = if max_min > 0.0 { 63.0 / max_min } else { 0.0 };
    let packed = &mut out[4..16];
    for j in 0..8 {
        // ggml stores these through uint8_t before clamping: keep the wrap-around.
        let ls = (nearest_int(inv_scale * scales[j]) as u8).min(63);
        let lm = (nearest_int(inv_min * mins[j]) as u8).min(63);
        if j < 4 {
            packed[j] = ls;
            packed[j + 4] = lm;
        } else {
            packed[j + 4] = (ls & 0x0f) | (lm & 0x0f) << 4;
            packed[j - 4] |= (ls >> 4) << 6;
            packed[j] |= (lm >> 4) << 6;
        }
    }
    let d16 = f16::from_f32(max_scale / 63.0);
    let dmin16 = f16::from_f32(max_min / 63.0);
    out[..2].copy_from_slice(&d16.to_le_bytes());
    out[2..4].copy_from_slice(&dmin16.to_le_bytes());

    // Re-quantize against the scales as stored (6-bit, f16 super-scales).
    for (j, (xs, ls)) in x.chunks_exact(32).zip(l.chunks_exact_mut(32)).enumerate() {
        let (sc, m) = scale_min_k4(j, &out[4..16]);
        let d = d16.to_f32() * f32::from(sc);
        if d == 0.0 {
            continue;
        }
        let dm = dmin16.to_f32() * f32::from(m);
        for (li, &xi) in ls.iter_mut().zip(xs) {
            *li = nearest_int((xi + dm) / d).clamp(0, 15) as u8;
        }
    }
    for (qs, lg) in out[16..144].chunks_exact_mut(32).zip(l.chunks_exact(64)) {
        for (i, q) in qs.iter_mut().enumerate() {
            *q = lg[i] | lg[i + 32] << 4;
        }
    }
}

/// Q8_K from 256 values, as ggml's `quantize_row_q8_K_ref`: `d = max / -127` for the first value
/// of largest magnitude, quants `min(127, nearest_int(x / d))`, and the 16 group sums. An
/// all-zero block is all zeros.
pub(super) fn quantize_q8_k(x: &[f32], out: &mut [u8]) {
    let max = first_absmax(x);
    if max == 0.0 {
        return; // `out` arrives zeroed: d = 0, quants and sums 0
    }
    let iscale = -127.0 / max;
    for (o, &v) in out[4..260].iter_mut().zip(x) {
        *o = nearest_int(iscale * v).min(127) as i8 as u8;
    }
    for s in 0..16 {
        let sum: i32 = out[4 + 16 * s..4 + 16 * (s + 1)].iter().map(|&q| i32::from(q as i8)).sum();
        out[260 + 2 * s..262 + 2 * s].copy_from_slice(&(sum as i16).to_le_bytes());
    }
    out[..4].copy_from_slice(&(1.0 / iscale).to_le_bytes());
}

/// ggml's `GROUP_MAX_EPS`: a group whose largest magnitude is below this is quantized as zeros.
const GROUP_MAX_EPS: f32 = 1e-15;

/// ggml's `make_qx_quants` as Q6_K calls it (`rmse_type` 1, no importance weights): quants
/// `l[i]` in `0..2 nmax` (offset `nmax`) and the scale `s` with `x[i] ≈ s * (l[i] - nmax)`.
/// Starts from `iscale = -nmax / max` (`max` the first value of largest magnitude), then tries
/// `-(nmax + 0.1 is) / max` for `is` in -9..=9 and keeps the grid with the best `x²`-weighted
/// least-squares fit. All arithmetic is f32 in ggml's order, so the choice matches bit for bit.
fn make_qx_quants(x: &[f32], nmax: i32, l: &mut [u8]) -> f32 {
    let max = first_absmax(x);
    if max.abs() < GROUP_MAX_EPS {
        l.fill(0);
        return 0.0;
    }
    let quant = |iscale: f32, xi: f32| nearest_int(iscale * xi).clamp(-nmax, nmax - 1);
    // (Σ w x l, Σ w l²) with w = x², in ggml's association order.
    let sums = |iscale: f32| {
        let (mut sumlx, mut suml2) = (0.0f32, 0.0f32);
        for &xi in x {
            let lf = quant(iscale, xi) as f32;
            let w = xi * xi;
            sumlx += w * xi * lf;
            suml2 += w * lf * lf;
        }
        (sumlx, suml2)
    };
    let fill = |iscale: f32, l: &mut [u8]| {
        for (li, &xi) in l.iter_mut().zip(x) {
            *li = (quant(iscale, xi) + nmax) as u8;
        }
    };
    let iscale = -(nmax as f32) / max;
    fill(iscale, l);
    let (sumlx, suml2) = sums(iscale);
    let mut scale = if suml2 != 0.0 { sumlx / suml2 } else { 0.0 };
    let mut best = scale * sumlx;
    for is in (-9..=9).filter(|&is| is != 0) {
        let iscale = -(nmax as f32 + 0.1 * is as f32) / max;
        let (sumlx, suml2) = sums(iscale);
        if suml2 > 0.0 && sumlx * sumlx > best * suml2 {
            fill(iscale, l);
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    scale
}

/// Q6_K from 256 values, as ggml's `quantize_row_q6_K_ref`: per sub-block of 16 a scale from
/// `make_qx_quants`, the 16 scales quantized to int8 against the first of largest magnitude
/// (`d = max_scale / -128`), and the quants recomputed with the scales as stored. A block whose
/// scales are all (near) zero is all zeros.
pub(super) fn quantize_q6_k(x: &[f32], out: &mut [u8]) {
    let mut l = [0u8; 256];
    let mut scales = [0.0f32; 16];
    for (sc, (xs, ls)) in scales.iter_mut().zip(x.chunks_exact(16).zip(l.chunks_exact_mut(16))) {
        *sc = make_qx_quants(xs, 32, ls);
    }
    let max_scale = first_absmax(&scales);
    if max_scale.abs() < GROUP_MAX_EPS {
        return; // `out` arrives zeroed
    }
    let iscale = -128.0 / max_scale;
    let d16 = f16::from_f32(1.0 / iscale);
    out[208..210].copy_from_slice(&d16.to_le_bytes());
    for (s, (xs, ls)) in x.chunks_exact(16).zip(l.chunks_exact_mut(16)).enumerate() {
        // ggml stores the scale through int8_t: keep the wrap-around.
        let sc = nearest_int(iscale * scales[s]).min(127) as i8;
        out[192 + s] = sc as u8;
        let d = d16.to_f32() * f32::from(sc);
        if d == 0.0 {
            continue; // keep make_qx_quants' quants, as ggml does
        }
        for (li, &xi) in ls.iter_mut().zip(xs) {
            *li = (nearest_int(xi / d).clamp(-32, 31) + 32) as u8;
        }
    }
    // Element 128 n + 32 k + l: nibble k / 2 of ql[64 n + 32 (k % 2) + l], bits 2k of qh[32 n + l].
    for (e, &q) in l.iter().enumerate() {
        let (n, k, i) = (e / 128, e / 32 % 4, e % 32);
        out[64 * n + 32 * (k % 2) + i] |= (q & 0x0f) << (4 * (k / 2));
        out[128 + 32 * n + i] |= (q >> 4) << (2 * k);
    }
}
