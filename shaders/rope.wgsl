// rope: rotary position embedding in place, rotate-half layout (see `reference/rope.rs`): for token t
// at position pos = pos0 + t and pair i < rotary_pairs, angle = pos * inv_freq[i] in f32, and
//   x[i]' = x[i] * cos - x[i + d/2] * sin,   x[i + d/2]' = x[i + d/2] * cos + x[i] * sin.
// Pairs rotary_pairs..d/2 are untouched (proportional RoPE).
// Layout: x [tokens, heads, head_dim] f32, read-write; inv_freq [rotary_pairs] f32, computed on
// the host (`cpu::rope::inverse_frequencies`) so the frequencies are the reference's bit for bit.
// One thread per (token, head, pair), a 2-D grid of workgroups past 65535.
// sin/cos are our own (Cody-Waite reduction by pi/2, then cephes' minimax polynomials, ~1 ulp on
// the reduced range): the built-ins only promise 2^-11 absolute error on [-pi, pi] in Vulkan and
// less outside it, and angles reach pos radians.
// Versions: v1.

struct Params { tokens: u32, heads: u32, head_dim: u32, rotary_pairs: u32, pos0: u32, _pad0: u32, _pad1: u32, _pad2: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read> inv_freq: array<f32>;

override WG: u32 = 256u;

// (sin a, cos a). pi/2 in four parts: DP1..DP3 have 6 significant bits, so j * DPi is exact
// (fused or not) and the reduction loses almost nothing for j < 2^18: angles below ~4e5 rad,
// positions past 256K at inv_freq 1. Past that the error grows slowly with j.
fn sin_cos(a: f32) -> vec2<f32> {
    const DP1 = 1.5625;
    const DP2 = 8.056640625e-3;
    const DP3 = 2.3651123046875e-4;
    const DP4 = 3.1749393656355096e-6;
    let j = round(a * 0.636619772367581343);
    let r = (((a - j * DP1) - j * DP2) - j * DP3) - j * DP4;
    let z = r * r;
    let s = r + r * z * ((-1.9515295891e-4 * z + 8.3321608736e-3) * z - 1.6666654611e-1);
    let c = 1.0 - 0.5 * z + z * z * ((2.443315711809948e-5 * z - 1.388731625493765e-3) * z + 4.166664568298827e-2);
    // Quadrant j mod 4 (two's complement keeps it right for negative j).
    switch (u32(i32(j)) & 3u) {
        case 0u: { return vec2<f32>(s, c); }
        case 1u: { return vec2<f32>(c, -s); }
        case 2u: { return vec2<f32>(-s, -c); }
        default: { return vec2<f32>(-c, s); }
    }
}

@compute @workgroup_size(WG)
fn rope(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let id = (wid.x + wid.y * nwg.x) * WG + li;
    let pairs = p.rotary_pairs;
    if (id >= p.tokens * p.heads * pairs) {
        return;
    }
    let i = id % pairs;
    let row = id / pairs; // token * heads + head
    let t = row / p.heads;
    let sc = sin_cos(f32(p.pos0 + t) * inv_freq[i]);
    let lo = row * p.head_dim + i;
    let hi = lo + p.head_dim / 2u;
    let a = x[lo];
    let b = x[hi];
    x[lo] = a * sc.y - b * sc.x;
    x[hi] = b * sc.y + a * sc.x;
}
