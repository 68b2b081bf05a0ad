// elementwise.cu: the one-pass ops, one thread per element (64-bit indices; grid-stride loops
// so any length fits one launch of at most 65535 blocks).
//   scale:    x[i] *= value
//   add:      acc[i] = (acc[i] + x[i]) * value
//   softcap:  x[i] = value * tanh(x[i] / value), the argument clamped to +-10 (tanh(10) is 1 in f32);
//             NaN stays NaN
//   geglu:    out[i] = gelu_tanh(gate[i]) * up[i]
//   kv_write: rows of k and v into their cache slots (see kv_write below)
// Layout: f32 arrays. Params: ElementwiseParams / KvWriteParams (kernels/src/cuda/elementwise.rs).
// Versions: v1.
#pragma once
#include "common.cuh"

struct ElementwiseParams {
    u64 x;    // the input (scale, softcap: in place)
    u64 y;    // add: acc; geglu: up
    u64 out;  // geglu: out
    u64 len;
    float value;
    u32 pad;
};

#define GRID_STRIDE(i, n) for (u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (u64)gridDim.x * blockDim.x)

KERNEL void scale(ElementwiseParams p) {
    float* x = (float*)p.x;
    GRID_STRIDE(i, p.len) x[i] *= p.value;
}

KERNEL void add(ElementwiseParams p) {
    const float* x = (const float*)p.x;
    float* acc = (float*)p.y;
    GRID_STRIDE(i, p.len) acc[i] = (acc[i] + x[i]) * p.value;
}

// A NaN passes through (fminf/fmaxf would turn it into -value): the engine must see broken logits.
KERNEL void softcap(ElementwiseParams p) {
    float* x = (float*)p.x;
    GRID_STRIDE(i, p.len) {
        float v = x[i] / p.value;
        bool nan = (__float_as_uint(v) & 0x7fffffffu) > 0x7f800000u;
        x[i] = nan ? v : p.value * tanhf(fminf(fmaxf(v, -10.0f), 10.0f));
    }
}

__device__ __forceinline__ float gelu_tanh(float g) {
    float inner = 0.7978845608028654f * (g + 0.044715f * g * g * g);
    return 0.5f * g * (1.0f + tanhf(fminf(fmaxf(inner, -10.0f), 10.0f)));
}

KERNEL void geglu(ElementwiseParams p) {
    const float* gate = (const float*)p.x;
    const float* up = (const float*)p.y;
    float* out = (float*)p.out;
    GRID_STRIDE(i, p.len) out[i] = gelu_tanh(gate[i]) * up[i];
}

// kv_write: the keys and values of positions pos0..pos0+tokens into slots pos % capacity. Only
// the last `rows` = min(tokens, capacity) tokens are copied (earlier ones would be overwritten
// within the call), so every slot is written once. The host passes the first copied token t0
// and its slot slot0; row r goes to slot0 + r, wrapping once.
struct KvWriteParams {
    u64 k, v, cache_k, cache_v;
    u32 rows, kv_dim, t0, slot0, capacity, pad;
};

KERNEL void kv_write(KvWriteParams p) {
    const float* k = (const float*)p.k;
    const float* v = (const float*)p.v;
    float* ck = (float*)p.cache_k;
    float* cv = (float*)p.cache_v;
    GRID_STRIDE(i, (u64)p.rows * p.kv_dim) {
        u64 r = i / p.kv_dim, c = i % p.kv_dim;
        u64 room = p.capacity - p.slot0;
        u64 slot = r < room ? p.slot0 + r : r - room;
        ck[slot * p.kv_dim + c] = k[(p.t0 + r) * p.kv_dim + c];
        cv[slot * p.kv_dim + c] = v[(p.t0 + r) * p.kv_dim + c];
    }
}
