// norm.cu: RMSNorm (plain, and fused with the residual add).
//   rms_norm:     out[r] = x[r] * (mean(x[r]^2) + eps)^-0.5 * w        (w = 1 when absent)
//   add_rms_norm: out[r] += x[r] * (mean(x[r]^2) + eps)^-0.5 * w       (a sublayer's post-norm
//                 fused with the residual add)
// Layout: x, out [rows, dim] f32, w [dim] f32 (1-D weights are widened at upload).
// rms_norm: one block per row, each thread a strided slice (float4 when dim % 4 == 0 and the row
// is 16-byte aligned), block_sum for the mean square.
// Versions: v1.
#pragma once
#include "common.cuh"

struct RmsNormParams {
    u64 x, w, out;
    u32 rows, dim;
    float eps;
    u32 has_weight;
};

// The row's scale (mean square + eps)^-0.5, on every thread.
__device__ __forceinline__ float row_scale(const float* x, u32 dim, float eps) {
    __shared__ float scratch[32];
    float s = 0.0f;
    if ((dim & 3) == 0 && ((u64)x & 15) == 0) {
        const float4* x4 = vec_at<const float4>(x);
        for (u32 i = threadIdx.x; i < dim / 4; i += blockDim.x) {
            float4 v = gld(x4 + i);
            s += v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w;
        }
    } else {
        for (u32 i = threadIdx.x; i < dim; i += blockDim.x) {
            float v = gld(x + i);
            s += v * v;
        }
    }
    s = block_sum(s, scratch);
    return rsqrtf(s / (float)dim + eps);
}

template <bool ADD>
__device__ __forceinline__ void rms_norm_row(RmsNormParams p) {
    u64 base = (u64)blockIdx.x * p.dim;
    const float* x = (const float*)p.x + base;
    const float* w = (const float*)p.w;
    float* out = (float*)p.out + base;
    float r = row_scale(x, p.dim, p.eps);
    for (u32 i = threadIdx.x; i < p.dim; i += blockDim.x) {
        float y = gld(x + i) * r * (p.has_weight ? gld(w + i) : 1.0f);
        gst(out + i, ADD ? gld(out + i) + y : y);
    }
}

KERNEL void rms_norm(RmsNormParams p) { rms_norm_row<false>(p); }

KERNEL void add_rms_norm(RmsNormParams p) { rms_norm_row<true>(p); }
