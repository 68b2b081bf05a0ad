// elementwise.cu: the one-pass ops, one thread per element (64-bit indices; grid-stride loops
// so any length fits one launch of at most 65535 blocks).
//   scale:    x[i] *= value
//   add:      acc[i] = (acc[i] + x[i]) * value
//   softcap:  x[i] = value * tanh(x[i] / value), the argument clamped to +-10 (tanh(10) is 1 in f32);
//             NaN stays NaN
//   geglu:    out[i] = gelu_tanh(gate[i]) * up[i]
// Layout: f32 arrays. Params: ElementwiseParams (kernels/src/cuda/elementwise.rs).
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

KERNEL void scale(ElementwiseParams p) {
    float* x = (float*)p.x;
    GRID_STRIDE(i, p.len) gst(x + i, gld(x + i) * p.value);
}

KERNEL void add(ElementwiseParams p) {
    const float* x = (const float*)p.x;
    float* acc = (float*)p.y;
    GRID_STRIDE(i, p.len) gst(acc + i, (gld(acc + i) + gld(x + i)) * p.value);
}

// A NaN passes through (fminf/fmaxf would turn it into -value): the engine must see broken logits.
KERNEL void softcap(ElementwiseParams p) {
    float* x = (float*)p.x;
    GRID_STRIDE(i, p.len) {
        float v = gld(x + i) / p.value;
        bool nan = (__float_as_uint(v) & 0x7fffffffu) > 0x7f800000u;
        gst(x + i, nan ? v : p.value * tanhf(fminf(fmaxf(v, -10.0f), 10.0f)));
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
    GRID_STRIDE(i, p.len) gst(out + i, gelu_tanh(gld(gate + i)) * gld(up + i));
}
