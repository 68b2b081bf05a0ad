// weights: decoding of the weight dtypes on the device, prepended to the shaders that read
// weights (matvec, matmul, embed, moe_experts). The includer binds one weight chunk as
// `var<storage, read> w: array<u32>` at a binding of its own (WGSL allows the forward
// reference) and picks the dtype with the pipeline constant DTYPE, the format table's device
// code (kernels/src/quant/format.rs), so every format is decoded here, none widened at upload:
//   0 F32 (a word per element), 1 F16, 2 BF16 (two per word, the lower index in the low half),
//   3 Q8_0, 4 Q4_0, 5 Q4_1, 6 Q5_0, 7 Q5_1 (blocks of 32: 34, 18, 20, 22, 24 bytes),
//   8 Q2_K, 9 Q3_K, 10 Q4_K, 11 Q5_K, 12 Q6_K, 13 Q8_K (blocks of 256: 84, 110, 144, 176, 210,
//   292 bytes). ggml's blocks back to back: Q4_1, Q5_1, Q2_K, Q4_K, Q5_K and Q8_K blocks are
//   word-aligned, the others (Q8_0, Q4_0, Q5_0, Q3_K, Q6_K) only 2-byte aligned, so they are
//   read as bytes or funnel-shifted words. Element e is the flat index into the chunk; rows are
//   whole blocks, so row r of an [n, k] chunk starts at element r * k.
// API: w_at(e) -> f32, one element of any dtype; w_load32(e0) -> array<f32, 32>, the 32
// elements from e0 (e0 a multiple of 32, a legacy block or a K-quant sub-block or two, for the
// block dtypes; any e0 for F32/F16/BF16), reading whole words. Every other name here starts
// with w_ too. Each dtype's w_load32 is a function of its own with its own private array: with
// DTYPE a pipeline constant the other cases are dead code and go away whole, and the loops have
// constant trip counts, so once unrolled the arrays live in registers.
// Values are bit-exact with kernels/src/quant: `scale * q - min` in f32 in that order, with
// `scale = d * sc` (and `min = dmin * m`) first for the K-quants, the f16 scales widened by
// unpack2x16float and Q8_K's f32 d read as is. Q4_1 / Q5_1 add their f16 m (quant/ subtracts
// -m: the same value).
// Versions: v1: F32, F16, BF16, Q8_0, Q4_0, Q5_0, Q4_K, Q6_K (codes 0-7; other formats were
// widened to F32 at upload). v2: every format, Q4_1, Q5_1, Q2_K, Q3_K, Q5_K, Q8_K added and the
// codes renumbered to the format table's.

override DTYPE: u32 = 0u;

// The byte at byte offset b of the chunk.
fn w_byte(b: u32) -> u32 {
    return (w[b >> 2u] >> ((b & 3u) * 8u)) & 0xffu;
}

// The f16 at the even byte offset b, widened (every scale sits at an even offset: all block
// sizes are even).
fn w_f16(b: u32) -> f32 {
    return unpack2x16float(w[b >> 2u])[(b >> 1u) & 1u];
}

// Byte i (< 4) of the word v, sign-extended.
fn w_i8(v: u32, i: u32) -> i32 {
    return extractBits(bitcast<i32>(v), i * 8u, 8u);
}

// The n (<= 8) little-endian words starting at byte b, at any alignment. Reads only words that
// hold requested bytes, so it never runs past the chunk.
fn w_words(b: u32, n: u32) -> array<u32, 8> {
    var r: array<u32, 8>;
    let i = b >> 2u;
    let s = (b & 3u) * 8u;
    if (s == 0u) {
        for (var k = 0u; k < n; k++) {
            r[k] = w[i + k];
        }
    } else {
        var lo = w[i];
        for (var k = 0u; k < n; k++) {
            let hi = w[i + k + 1u];
            r[k] = (lo >> s) | (hi << (32u - s));
            lo = hi;
        }
    }
    return r;
}

// Q4_K's / Q5_K's sub-block j (< 8) of the (word-aligned) block at byte b: (d * scale,
// dmin * min), ggml's get_scale_min_k4 on the 12 packed bytes after d and dmin.
fn w_q4k_scale_min(b: u32, j: u32) -> vec2<f32> {
    let s = b + 4u;
    var sc: u32;
    var m: u32;
    if (j < 4u) {
        sc = w_byte(s + j) & 63u;
        m = w_byte(s + j + 4u) & 63u;
    } else {
        sc = (w_byte(s + j + 4u) & 15u) | ((w_byte(s + j - 4u) >> 6u) << 4u);
        m = (w_byte(s + j + 4u) >> 4u) | ((w_byte(s + j) >> 6u) << 4u);
    }
    let dd = unpack2x16float(w[b >> 2u]);
    return vec2<f32>(dd.x * f32(sc), dd.y * f32(m));
}

// Q2_K's sub-block s (< 16) of the block at byte b: (d * scale, dmin * min) from the nibbles
// of scales[s], with d and dmin in the word at byte 80.
fn w_q2k_scale_min(b: u32, s: u32) -> vec2<f32> {
    let sc = w_byte(b + s);
    let dd = unpack2x16float(w[(b >> 2u) + 20u]);
    return vec2<f32>(dd.x * f32(sc & 15u), dd.y * f32(sc >> 4u));
}

// Q3_K's d * (scale - 32) for sub-block s (< 16) of the block at byte b: the 6-bit scale's low
// 4 bits are nibble s / 8 of scales[s % 8], its high 2 bits 2 (s / 4) of scales[8 + s % 4].
fn w_q3k_scale(b: u32, s: u32) -> f32 {
    let low = (w_byte(b + 96u + (s & 7u)) >> (4u * (s >> 3u))) & 15u;
    let high = (w_byte(b + 104u + (s & 3u)) >> (2u * (s >> 2u))) & 3u;
    return w_f16(b + 108u) * f32(i32(low | (high << 4u)) - 32);
}

// Q6_K's quant (offset applied) and scale of element i (< 256) of the block at byte b.
fn w_q6k_at(b: u32, i: u32) -> f32 {
    let n = i >> 7u;
    let k = (i >> 5u) & 3u;
    let l = i & 31u;
    let low = (w_byte(b + 64u * n + 32u * (k & 1u) + l) >> (4u * (k >> 1u))) & 15u;
    let high = (w_byte(b + 128u + 32u * n + l) >> (2u * k)) & 3u;
    let sc = w_f16(b + 208u) * f32(extractBits(bitcast<i32>(w_byte(b + 192u + (i >> 4u))), 0u, 8u));
    return sc * f32(i32(low | (high << 4u)) - 32);
}

// Element e of the chunk.
fn w_at(e: u32) -> f32 {
    switch DTYPE {
        case 0u: {
            return bitcast<f32>(w[e]);
        }
        case 1u: {
            return unpack2x16float(w[e >> 1u])[e & 1u];
        }
        case 2u: {
            return bitcast<f32>(((w[e >> 1u] >> ((e & 1u) * 16u)) & 0xffffu) << 16u);
        }
        case 3u: {
            let b = (e >> 5u) * 34u;
            return w_f16(b) * f32(extractBits(bitcast<i32>(w_byte(b + 2u + (e & 31u))), 0u, 8u));
        }
        case 4u: {
            let b = (e >> 5u) * 18u;
            let j = e & 31u;
            let q = (w_byte(b + 2u + (j & 15u)) >> ((j >> 4u) * 4u)) & 15u;
            return w_f16(b) * f32(i32(q) - 8);
        }
        case 5u: {
            let b = (e >> 5u) * 20u;
            let j = e & 31u;
            let q = (w_byte(b + 4u + (j & 15u)) >> ((j >> 4u) * 4u)) & 15u;
            let dm = unpack2x16float(w[b >> 2u]);
            return dm.x * f32(q) + dm.y;
        }
        case 6u: {
            let b = (e >> 5u) * 22u;
            let j = e & 31u;
            let nib = (w_byte(b + 6u + (j & 15u)) >> ((j >> 4u) * 4u)) & 15u;
            let hb = (w_words(b + 2u, 1u)[0] >> j) & 1u;
            return w_f16(b) * f32(i32(nib | (hb << 4u)) - 16);
        }
        case 7u: {
            let b = (e >> 5u) * 24u;
            let j = e & 31u;
            let nib = (w_byte(b + 8u + (j & 15u)) >> ((j >> 4u) * 4u)) & 15u;
            let hb = (w[(b >> 2u) + 1u] >> j) & 1u;
            let dm = unpack2x16float(w[b >> 2u]);
            return dm.x * f32(nib | (hb << 4u)) + dm.y;
        }
        // The 256-element formats: i = 128 n + 32 j + l, where j < 4 picks the bit pair (Q2_K,
        // Q3_K) or 64 g + 32 h + l, h picking the nibble (Q4_K, Q5_K); the Q3_K / Q5_K high bit
        // of element i is bit i / 32 of hmask[l] / qh[l].
        case 8u: {
            let b = (e >> 8u) * 84u;
            let i = e & 255u;
            let q = (w_byte(b + 16u + 32u * (i >> 7u) + (i & 31u)) >> (2u * ((i >> 5u) & 3u))) & 3u;
            let sm = w_q2k_scale_min(b, i >> 4u);
            return sm.x * f32(q) - sm.y;
        }
        case 9u: {
            let b = (e >> 8u) * 110u;
            let i = e & 255u;
            let low = i32((w_byte(b + 32u + 32u * (i >> 7u) + (i & 31u)) >> (2u * ((i >> 5u) & 3u))) & 3u);
            let hb = (w_byte(b + (i & 31u)) >> (i >> 5u)) & 1u;
            return w_q3k_scale(b, i >> 4u) * f32(select(low - 4, low, hb != 0u));
        }
        case 10u: {
            let b = (e >> 8u) * 144u;
            let i = e & 255u;
            let q = (w_byte(b + 16u + 32u * (i >> 6u) + (i & 31u)) >> (4u * ((i >> 5u) & 1u))) & 15u;
            let sm = w_q4k_scale_min(b, i >> 5u);
            return sm.x * f32(q) - sm.y;
        }
        case 11u: {
            let b = (e >> 8u) * 176u;
            let i = e & 255u;
            let low = (w_byte(b + 48u + 32u * (i >> 6u) + (i & 31u)) >> (4u * ((i >> 5u) & 1u))) & 15u;
            let hb = (w_byte(b + 16u + (i & 31u)) >> (i >> 5u)) & 1u;
            let sm = w_q4k_scale_min(b, i >> 5u);
            return sm.x * f32(low | (hb << 4u)) - sm.y;
        }
        case 12u: {
            return w_q6k_at((e >> 8u) * 210u, e & 255u);
        }
        case 13u: {
            let b = (e >> 8u) * 292u;
            return bitcast<f32>(w[b >> 2u]) * f32(extractBits(bitcast<i32>(w_byte(b + 4u + (e & 255u))), 0u, 8u));
        }
        default: {
            return 0.0;
        }
    }
}

// F32: 32 words.
fn w_load32_f32(e0: u32) -> array<f32, 32> {
    var v: array<f32, 32>;
    for (var i = 0u; i < 32u; i++) {
        v[i] = bitcast<f32>(w[e0 + i]);
    }
    return v;
}

// F16 / BF16: 16 words of pairs.
fn w_load32_halves(e0: u32) -> array<f32, 32> {
    var v: array<f32, 32>;
    // An odd e0 takes each pair across a word boundary.
    let wi = e0 >> 1u;
    let odd = (e0 & 1u) != 0u;
    for (var i = 0u; i < 16u; i++) {
        var pair = w[wi + i];
        if (odd) {
            pair = (pair >> 16u) | (w[wi + i + 1u] << 16u);
        }
        if (DTYPE == 1u) {
            let h = unpack2x16float(pair);
            v[2u * i] = h.x;
            v[2u * i + 1u] = h.y;
        } else {
            v[2u * i] = bitcast<f32>(pair << 16u);
            v[2u * i + 1u] = bitcast<f32>(pair & 0xffff0000u);
        }
    }
    return v;
}

// Q8_0: the f16 scale, then 8 words of int8 quants.
fn w_load32_q8_0(e0: u32) -> array<f32, 32> {
    var v: array<f32, 32>;
    let b = (e0 >> 5u) * 34u;
    let d = w_f16(b);
    let qs = w_words(b + 2u, 8u);
    for (var q = 0u; q < 8u; q++) {
        let word = qs[q];
        for (var t = 0u; t < 4u; t++) {
            v[4u * q + t] = d * f32(w_i8(word, t));
        }
    }
    return v;
}

// Q4_0: the f16 scale, then 4 words of nibbles (element j low, j + 16 high).
fn w_load32_q4_0(e0: u32) -> array<f32, 32> {
    var v: array<f32, 32>;
    let b = (e0 >> 5u) * 18u;
    let d = w_f16(b);
    let qs = w_words(b + 2u, 4u);
    for (var j = 0u; j < 16u; j++) {
        let byte = (qs[j >> 2u] >> ((j & 3u) * 8u)) & 0xffu;
        v[j] = d * f32(i32(byte & 15u) - 8);
        v[j + 16u] = d * f32(i32(byte >> 4u) - 8);
    }
    return v;
}

// Q4_1: d and m in the first word, then 4 words of nibbles (element j low, j + 16 high).
fn w_load32_q4_1(e0: u32) -> array<f32, 32> {
    var v: array<f32, 32>;
    let wb = (e0 >> 5u) * 5u;
    let dm = unpack2x16float(w[wb]);
    for (var q = 0u; q < 4u; q++) {
        let word = w[wb + 1u + q];
        for (var t = 0u; t < 4u; t++) {
            let byte = (word >> (8u * t)) & 0xffu;
            v[4u * q + t] = dm.x * f32(byte & 15u) + dm.y;
            v[4u * q + t + 16u] = dm.x * f32(byte >> 4u) + dm.y;
        }
    }
    return v;
}

// Q5_0: Q4_0 plus the fifth bits in the u32 qh.
fn w_load32_q5_0(e0: u32) -> array<f32, 32> {
    var v: array<f32, 32>;
    // qh (the fifth bits) then the 16 nibble bytes: 5 words from byte 2.
    let b = (e0 >> 5u) * 22u;
    let d = w_f16(b);
    let r = w_words(b + 2u, 5u);
    let qh = r[0];
    for (var j = 0u; j < 16u; j++) {
        let byte = (r[1u + (j >> 2u)] >> ((j & 3u) * 8u)) & 0xffu;
        let lo = (byte & 15u) | (((qh >> j) & 1u) << 4u);
        let hi = (byte >> 4u) | (((qh >> (j + 16u)) & 1u) << 4u);
        v[j] = d * f32(i32(lo) - 16);
        v[j + 16u] = d * f32(i32(hi) - 16);
    }
    return v;
}

// Q5_1: Q4_1 plus the fifth bits, in the word after d and m.
fn w_load32_q5_1(e0: u32) -> array<f32, 32> {
    var v: array<f32, 32>;
    let wb = (e0 >> 5u) * 6u;
    let dm = unpack2x16float(w[wb]);
    let qh = w[wb + 1u];
    for (var q = 0u; q < 4u; q++) {
        let word = w[wb + 2u + q];
        for (var t = 0u; t < 4u; t++) {
            let j = 4u * q + t;
            let byte = (word >> (8u * t)) & 0xffu;
            let lo = (byte & 15u) | (((qh >> j) & 1u) << 4u);
            let hi = (byte >> 4u) | (((qh >> (j + 16u)) & 1u) << 4u);
            v[j] = dm.x * f32(lo) + dm.y;
            v[j + 16u] = dm.x * f32(hi) + dm.y;
        }
    }
    return v;
}

// Q2_K: two sub-blocks of 16, elements i0..i0 + 32 being bit pair j of the 32 aligned bytes of
// qs for half n (i0 = 128 n + 32 j).
fn w_load32_q2_k(e0: u32) -> array<f32, 32> {
    var v: array<f32, 32>;
    let b = (e0 >> 8u) * 84u;
    let i0 = e0 & 255u;
    let sm0 = w_q2k_scale_min(b, i0 >> 4u);
    let sm1 = w_q2k_scale_min(b, (i0 >> 4u) + 1u);
    let wq = (b + 16u + 32u * (i0 >> 7u)) >> 2u;
    let shift = 2u * ((i0 >> 5u) & 3u);
    for (var q = 0u; q < 8u; q++) {
        let word = w[wq + q] >> shift;
        let sm = select(sm0, sm1, q >= 4u);
        for (var t = 0u; t < 4u; t++) {
            v[4u * q + t] = sm.x * f32((word >> (8u * t)) & 3u) - sm.y;
        }
    }
    return v;
}

// Q3_K: Q2_K's bit pairs (qs from byte 32), minus 4 where bit i0 / 32 of hmask[l] is clear;
// the blocks are 2-byte aligned, so both arrays are funnel-shifted words.
fn w_load32_q3_k(e0: u32) -> array<f32, 32> {
    var v: array<f32, 32>;
    let b = (e0 >> 8u) * 110u;
    let i0 = e0 & 255u;
    let hm = w_words(b, 8u);
    let qs = w_words(b + 32u + 32u * (i0 >> 7u), 8u);
    let sc0 = w_q3k_scale(b, i0 >> 4u);
    let sc1 = w_q3k_scale(b, (i0 >> 4u) + 1u);
    let lshift = 2u * ((i0 >> 5u) & 3u);
    let hshift = i0 >> 5u;
    for (var q = 0u; q < 8u; q++) {
        let lw = qs[q] >> lshift;
        let hw = hm[q] >> hshift;
        let sc = select(sc0, sc1, q >= 4u);
        for (var t = 0u; t < 4u; t++) {
            let low = i32((lw >> (8u * t)) & 3u);
            v[4u * q + t] = sc * f32(select(low - 4, low, ((hw >> (8u * t)) & 1u) != 0u));
        }
    }
    return v;
}

// Q4_K: one sub-block of 32 (its scale and min, then 8 aligned words of nibbles).
fn w_load32_q4_k(e0: u32) -> array<f32, 32> {
    var v: array<f32, 32>;
    // Sub-block j: nibble j % 2 of the 32 bytes at 16 + 32 (j / 2), word-aligned.
    let b = (e0 >> 8u) * 144u;
    let j = (e0 >> 5u) & 7u;
    let sm = w_q4k_scale_min(b, j);
    let wq = (b + 16u + 32u * (j >> 1u)) >> 2u;
    let shift = 4u * (j & 1u);
    for (var i = 0u; i < 8u; i++) {
        let word = w[wq + i] >> shift;
        for (var t = 0u; t < 4u; t++) {
            v[4u * i + t] = sm.x * f32((word >> (8u * t)) & 15u) - sm.y;
        }
    }
    return v;
}

// Q5_K: Q4_K (qs from byte 48) plus the fifth bits, bit j of the 32 aligned bytes of qh.
fn w_load32_q5_k(e0: u32) -> array<f32, 32> {
    var v: array<f32, 32>;
    let b = (e0 >> 8u) * 176u;
    let j = (e0 >> 5u) & 7u;
    let sm = w_q4k_scale_min(b, j);
    let wq = (b + 48u + 32u * (j >> 1u)) >> 2u;
    let wh = (b + 16u) >> 2u;
    let shift = 4u * (j & 1u);
    for (var i = 0u; i < 8u; i++) {
        let word = w[wq + i] >> shift;
        let hw = w[wh + i] >> j;
        for (var t = 0u; t < 4u; t++) {
            let q = ((word >> (8u * t)) & 15u) | (((hw >> (8u * t)) & 1u) << 4u);
            v[4u * i + t] = sm.x * f32(q) - sm.y;
        }
    }
    return v;
}

// Q6_K: two sub-blocks of 16.
fn w_load32_q6_k(e0: u32) -> array<f32, 32> {
    var v: array<f32, 32>;
    // Elements i0..i0 + 32 are column group k of half n: low nibbles from ql, high bit pairs
    // from qh, the scales of sub-blocks i0 / 16 and i0 / 16 + 1.
    let b = (e0 >> 8u) * 210u;
    let i0 = e0 & 255u;
    let n = i0 >> 7u;
    let k = (i0 >> 5u) & 3u;
    let ql = w_words(b + 64u * n + 32u * (k & 1u), 8u);
    let qh = w_words(b + 128u + 32u * n, 8u);
    let d = w_f16(b + 208u);
    let scw = w_words(b + 192u + (i0 >> 4u), 1u)[0];
    let sc0 = d * f32(w_i8(scw, 0u));
    let sc1 = d * f32(w_i8(scw, 1u));
    let lshift = 4u * (k >> 1u);
    let hshift = 2u * k;
    for (var q = 0u; q < 8u; q++) {
        let lw = ql[q] >> lshift;
        let hw = qh[q] >> hshift;
        let sc = select(sc0, sc1, q >= 4u);
        for (var t = 0u; t < 4u; t++) {
            let low = (lw >> (8u * t)) & 15u;
            let high = (hw >> (8u * t)) & 3u;
            v[4u * q + t] = sc * f32(i32(low | (high << 4u)) - 32);
        }
    }
    return v;
}

// Q8_K: the f32 d, then the int8 quants, all word-aligned.
fn w_load32_q8_k(e0: u32) -> array<f32, 32> {
    var v: array<f32, 32>;
    let b = (e0 >> 8u) * 292u;
    let d = bitcast<f32>(w[b >> 2u]);
    let wq = (b + 4u + (e0 & 255u)) >> 2u;
    for (var q = 0u; q < 8u; q++) {
        let word = w[wq + q];
        for (var t = 0u; t < 4u; t++) {
            v[4u * q + t] = d * f32(w_i8(word, t));
        }
    }
    return v;
}

// The 32 elements from e0 (see the API above for e0).
fn w_load32(e0: u32) -> array<f32, 32> {
    switch DTYPE {
        case 0u: {
            return w_load32_f32(e0);
        }
        case 1u, 2u: {
            return w_load32_halves(e0);
        }
        case 3u: {
            return w_load32_q8_0(e0);
        }
        case 4u: {
            return w_load32_q4_0(e0);
        }
        case 5u: {
            return w_load32_q4_1(e0);
        }
        case 6u: {
            return w_load32_q5_0(e0);
        }
        case 7u: {
            return w_load32_q5_1(e0);
        }
        case 8u: {
            return w_load32_q2_k(e0);
        }
        case 9u: {
            return w_load32_q3_k(e0);
        }
        case 10u: {
            return w_load32_q4_k(e0);
        }
        case 11u: {
            return w_load32_q5_k(e0);
        }
        case 12u: {
            return w_load32_q6_k(e0);
        }
        case 13u: {
            return w_load32_q8_k(e0);
        }
        default: {
            return array<f32, 32>();
        }
    }
}
