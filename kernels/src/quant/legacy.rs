//! ggml's original 32-element block formats. Byte layouts (f16 little-endian, `qs` nibbles hold
//! element `j` in the low half of byte `j` and element `j + 16` in the high half):
//!
//! | format | bytes | layout                                   | element `e`                  |
//! |--------|-------|------------------------------------------|------------------------------|
//! | Q8_0   | 34    | `d: f16, qs: [i8; 32]`                   | `d * qs[e]`                  |
//! | Q4_0   | 18    | `d: f16, qs: [u8; 16]`                   | `d * (nib - 8)`              |
//! | Q4_1   | 20    | `d: f16, m: f16, qs: [u8; 16]`           | `d * nib + m`                |
//! | Q5_0   | 22    | `d: f16, qh: u32, qs: [u8; 16]`          | `d * (nib + 16 hb - 16)`     |
//! | Q5_1   | 24    | `d: f16, m: f16, qh: u32, qs: [u8; 16]`  | `d * (nib + 16 hb) + m`      |
//!
//! In Q5_0 / Q5_1 the fifth bit `hb` of element `e` is bit `e` of the little-endian `qh`.
//!
//! Quantizers (ggml's `quantize_row_q8_0_ref` / `quantize_row_q4_0_ref` /
//! `quantize_row_q5_0_ref` semantics): Q8_0 takes `d = amax / 127` and rounds `x / d` half away
//! from zero; Q4_0 takes the value of largest magnitude `max` (the first one on ties),
//! `d = max / -8`, and stores `min(15, trunc(x / d + 8.5))`, so `max` itself maps to quant 0
//! (-8 d); Q5_0 is the same with 16 for 8 and 31 for 15.

use super::{f16_at, first_absmax, Unpacked};
use half::f16;

/// Splits the nibbles of `qs` (16 bytes) into 32 quants minus `offset`, plus the fifth bits of
/// `qh` (bit `e` -> `+16` for element `e`) when given.
fn nibbles(qs: &[u8], qh: u32, offset: i8, q: &mut [i8]) {
    for (j, &byte) in qs.iter().enumerate().take(16) {
        let lo = (byte & 0x0f) | (((qh >> j) & 1) << 4) as u8;
        let hi = (byte >> 4) | (((qh >> (j + 16)) & 1) << 4) as u8;
        q[j] = lo as i8 - offset;
        q[j + 16] = hi as i8 - offset;
    }
}

/// The little-endian u32 at `b[at..at + 4]`.
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// One sub-block of 32 with scale `d` and subtracted value `min`.
fn single(u: &mut Unpacked, d: f32, min: f32) {
    u.sub = 32;
    u.scale[0] = d;
    u.min[0] = min;
}

/// Q8_0: `d: f16, qs: [i8; 32]`.
pub(super) fn unpack_q8_0(b: &[u8], u: &mut Unpacked) {
    single(u, f16_at(b, 0), 0.0);
    for (q, &byte) in u.q.iter_mut().zip(&b[2..34]) {
        *q = byte as i8;
    }
}

/// Q4_0: `d: f16, qs: [u8; 16]`, quants `nibble - 8`.
pub(super) fn unpack_q4_0(b: &[u8], u: &mut Unpacked) {
    single(u, f16_at(b, 0), 0.0);
    nibbles(&b[2..18], 0, 8, &mut u.q);
}

/// Q4_1: `d: f16, m: f16, qs: [u8; 16]`, value `d * nibble + m`.
pub(super) fn unpack_q4_1(b: &[u8], u: &mut Unpacked) {
    single(u, f16_at(b, 0), -f16_at(b, 2));
    nibbles(&b[4..20], 0, 0, &mut u.q);
}

/// Q5_0: `d: f16, qh: u32, qs: [u8; 16]`, quants `(nibble | fifth bit << 4) - 16`.
pub(super) fn unpack_q5_0(b: &[u8], u: &mut Unpacked) {
    single(u, f16_at(b, 0), 0.0);
    nibbles(&b[6..22], u32_at(b, 2), 16, &mut u.q);
}

/// Q5_1: `d: f16, m: f16, qh: u32, qs: [u8; 16]`, value `d * (nibble | fifth bit << 4) + m`.
pub(super) fn unpack_q5_1(b: &[u8], u: &mut Unpacked) {
    single(u, f16_at(b, 0), -f16_at(b, 2));
    nibbles(&b[8..24], u32_at(b, 4), 0, &mut u.q);
}

/// Q8_0 from 32 values: `d = amax / 127`, quants `round(x / d)` (half away from zero).
pub(super) fn quantize_q8_0(x: &[f32], out: &mut [u8]) {
    let amax = x.iter().fold(0.0f32, |a, v| a.max(v.abs()));
    let d = amax / 127.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    out[..2].copy_from_slice(&f16::from_f32(d).to_le_bytes());
    for (o, v) in out[2..34].iter_mut().zip(x) {
        *o = (v * id).round() as i8 as u8;
    }
}

/// Q4_0 from 32 values: `d = max / -8` for the first value of largest magnitude, quants
/// `min(15, trunc(x / d + 8.5))`.
pub(super) fn quantize_q4_0(x: &[f32], out: &mut [u8]) {
    quantize_symmetric(x, 4, out);
}

/// Q5_0 from 32 values: `d = max / -16` for the first value of largest magnitude, quants
/// `min(31, trunc(x / d + 16.5))`, fifth bits in `qh`.
pub(super) fn quantize_q5_0(x: &[f32], out: &mut [u8]) {
    quantize_symmetric(x, 5, out);
}

/// Q4_0 (`bits` 4) or Q5_0 (`bits` 5), as ggml's `quantize_row_q4_0_ref` /
/// `quantize_row_q5_0_ref`: with `half = 2^(bits - 1)`, `d = max / -half` and quants
/// `min(2 half - 1, trunc(x / d + half + 0.5))`, so `max` itself maps to quant 0 (`-half d`).
fn quantize_symmetric(x: &[f32], bits: u32, out: &mut [u8]) {
    let half = f32::from(1u8 << (bits - 1));
    let (offset, top) = (half + 0.5, (1i8 << bits) - 1);
    let d = first_absmax(x) / -half;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    out[..2].copy_from_slice(&f16::from_f32(d).to_le_bytes());
    // ggml truncates through int8_t (`x * id + offset`, with the offset summed first); the
    // values lie in 0..=2 half for finite inputs.
    let quant = |v: f32| ((v * id + offset) as i8).clamp(0, top) as u8;
    let qs_at = if bits == 5 { 6 } else { 2 };
    let mut qh = 0u32;
    for j in 0..16 {
        let (lo, hi) = (quant(x[j]), quant(x[j + 16]));
        out[qs_at + j] = (lo & 0x0f) | (hi & 0x0f) << 4;
        qh |= u32::from(lo >> 4) << j | u32::from(hi >> 4) << (j + 16);
    }
    if bits == 5 {
        out[2..6].copy_from_slice(&qh.to_le_bytes());
    }
}
