// rope.cu: rotary position embedding, rotate-half in place: for token t at pos = pos0 + t and
// pair i < rotary_pairs, angle = pos * freq_scale / theta^(2i / head_dim), x[i], x[i + d/2]
// rotated; pairs past rotary_pairs pass through (proportional RoPE).
// Layout: x [tokens, heads, head_dim] f32. Params: RopeParams (kernels/src/cuda/rope.rs).
// One thread per (token, head, pair), sincosf (the accurate one: angles reach thousands of
// radians). Versions: v1.
#pragma once
#include "common.cuh"

struct RopeParams {
    u64 x;
    u32 tokens, heads, head_dim, rotary_pairs, pos0;
    float theta, freq_scale;
    u32 pad;
};

KERNEL void rope(RopeParams p) {
    u64 n = (u64)p.tokens * p.heads * p.rotary_pairs;
    float* x = (float*)p.x;
    for (u64 id = (u64)blockIdx.x * blockDim.x + threadIdx.x; id < n; id += (u64)gridDim.x * blockDim.x) {
        u32 i = (u32)(id % p.rotary_pairs);
        u64 row = id / p.rotary_pairs;  // token * heads + head
        u32 t = (u32)(row / p.heads);
        float inv_freq = p.freq_scale / powf(p.theta, (float)(2 * i) / (float)p.head_dim);
        float s, c;
        sincosf((float)(p.pos0 + t) * inv_freq, &s, &c);
        u64 lo = row * p.head_dim + i, hi = lo + p.head_dim / 2;
        float a = gld(x + lo), b = gld(x + hi);
        gst(x + lo, a * c - b * s);
        gst(x + hi, b * c + a * s);
    }
}
