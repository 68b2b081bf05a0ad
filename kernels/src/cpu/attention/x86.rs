//! v2 of the attention tile products: `S^T = K Q^T` and `O = O * alpha + P V` with AVX-512
//! intrinsics, on the layouts and contracts of the portable versions in the parent module
//! (`scores`, `weighted_values`): queries packed transposed in panels of 16 rows, scores as
//! `st[(panel * BK + key) * 16 + lane]`, key and value rows as slices of the caller's buffers.

use super::{BK, KC, LANES, PV_DIMS, PV_ROWS};
use std::arch::x86_64::*;

/// `st[(p * BK + c) * 16 + lane] = scale * qt_panel_p[.. lane] . k[c]` for every panel `p`
/// and key `c < k.len()`.
///
/// # Safety
/// The CPU has AVX-512F. `qt` holds `panels * d * 16` floats, `k.len()` is a multiple of
/// `KC` and at most `BK`, each `k[c]` holds `d` floats, `st` holds `panels * BK * 16`.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn scores(qt: &[f32], k: &[&[f32]], st: &mut [f32], panels: usize, d: usize, scale: f32) {
    debug_assert!(qt.len() >= panels * d * LANES && k.len() <= BK && k.len().is_multiple_of(KC));
    debug_assert!(st.len() >= panels * BK * LANES && k.iter().all(|k| k.len() >= d));
    let sc = _mm512_set1_ps(scale);
    for kg in (0..k.len()).step_by(KC) {
        let keys: [*const f32; KC] = std::array::from_fn(|c| k[kg + c].as_ptr());
        for p in 0..panels {
            let qp = qt.as_ptr().add(p * d * LANES);
            let mut acc = [_mm512_setzero_ps(); KC];
            for i in 0..d {
                let qv = _mm512_loadu_ps(qp.add(i * LANES));
                for (c, acc) in acc.iter_mut().enumerate() {
                    *acc = _mm512_fmadd_ps(_mm512_set1_ps(*keys[c].add(i)), qv, *acc);
                }
            }
            let dst = st.as_mut_ptr().add((p * BK + kg) * LANES);
            for (c, acc) in acc.iter().enumerate() {
                _mm512_storeu_ps(dst.add(c * LANES), _mm512_mul_ps(*acc, sc));
            }
        }
    }
}

/// `o[r] = o[r] * alpha[r] + sum_c p[r, c] v_c` for every row `r < o.len() / d`, with
/// `p[r, c] = st[(r / 16 * BK + c) * 16 + r % 16]` and value rows `v[c]`.
///
/// # Safety
/// The CPU has AVX-512F. `d > 0`; `o.len() / d` rows, a multiple of 16, with as many
/// `alpha` entries and `o.len() / d / 16 * BK * 16` floats of `st`; `v.len() <= BK`, each
/// `v[c]` holds `d` floats.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn weighted_values(st: &[f32], v: &[&[f32]], o: &mut [f32], alpha: &[f32], d: usize) {
    let (rows, n) = (o.len() / d, v.len());
    debug_assert!(rows % LANES == 0 && alpha.len() >= rows && st.len() >= rows / LANES * BK * LANES);
    const CH: usize = PV_DIMS / LANES;
    let whole = d / PV_DIMS * PV_DIMS;
    debug_assert!(n <= BK && v.iter().all(|v| v.len() >= d));
    let o = o.as_mut_ptr();
    // Dims outer, rows inner: a 64-dim column of the value block stays in L1 for all rows.
    let mut d0 = 0;
    while d0 < whole {
        for r0 in (0..rows).step_by(PV_ROWS) {
            let probs = st.as_ptr().add(r0 / LANES * BK * LANES + r0 % LANES);
            let mut acc = [[_mm512_setzero_ps(); CH]; PV_ROWS];
            for (rr, acc) in acc.iter_mut().enumerate() {
                let al = _mm512_set1_ps(alpha[r0 + rr]);
                for (j, acc) in acc.iter_mut().enumerate() {
                    *acc = _mm512_mul_ps(_mm512_loadu_ps(o.add((r0 + rr) * d + d0 + j * LANES)), al);
                }
            }
            for (c, vr) in v.iter().enumerate() {
                let vp = vr.as_ptr().add(d0);
                let vc: [__m512; CH] = std::array::from_fn(|j| _mm512_loadu_ps(vp.add(j * LANES)));
                for (rr, acc) in acc.iter_mut().enumerate() {
                    let p = _mm512_set1_ps(*probs.add(c * LANES + rr));
                    for (acc, vc) in acc.iter_mut().zip(&vc) {
                        *acc = _mm512_fmadd_ps(p, *vc, *acc);
                    }
                }
            }
            for (rr, acc) in acc.iter().enumerate() {
                for (j, acc) in acc.iter().enumerate() {
                    _mm512_storeu_ps(o.add((r0 + rr) * d + d0 + j * LANES), *acc);
                }
            }
        }
        d0 += PV_DIMS;
    }
    for r0 in (0..rows).step_by(PV_ROWS) {
        let probs = st.as_ptr().add(r0 / LANES * BK * LANES + r0 % LANES);
        let al: [__m512; PV_ROWS] = std::array::from_fn(|rr| _mm512_set1_ps(alpha[r0 + rr]));
        let mut d0 = whole;
        // The last dims, 16 at a time (the final chunk masked).
        while d0 < d {
            let mask: __mmask16 = if d - d0 >= LANES { 0xffff } else { (1u16 << (d - d0)) - 1 };
            for (rr, al) in al.iter().enumerate() {
                let out = o.add((r0 + rr) * d + d0);
                let mut acc = _mm512_mul_ps(_mm512_maskz_loadu_ps(mask, out), *al);
                for (c, vr) in v.iter().enumerate() {
                    let p = _mm512_set1_ps(*probs.add(c * LANES + rr));
                    acc = _mm512_fmadd_ps(p, _mm512_maskz_loadu_ps(mask, vr.as_ptr().add(d0)), acc);
                }
                _mm512_mask_storeu_ps(out, mask, acc);
            }
            d0 += LANES;
        }
    }
}
