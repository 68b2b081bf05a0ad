// sample.cu: choosing the next token on the device, so a decode step reads back an id, not the
// vocabulary's logits.
//   argmax: per row of logits, out[2r] = the lowest index of the largest value (as f32, exact
//           below 2^24) and out[2r + 1] = -ln(sum_i exp(x_i - max)) (its log-softmax); a row
//           holding NaN or +inf, or nothing above -inf, gives index len and a NaN logprob (see
//           reference/sample.rs).
// Layout: x [rows, len] f32, out [rows, 2] f32.
// One block per row: each thread keeps (max, index, sum of exp(x - max), bad) over a strided
// slice, rescaling its sum when the max grows, then warp shuffles and one shared-memory round
// merge the tuples.
// Versions: v1.
#pragma once
#include "common.cuh"

struct ArgmaxParams {
    u64 x, out;
    u32 rows, len;
};

struct Best {
    float max, sum;
    u32 idx, bad;
};

// exp(a - m), with a = -inf contributing 0 (also when m = -inf).
__device__ __forceinline__ float rel_exp(float a, float m) { return a == NEG_INF ? 0.0f : expf(a - m); }

__device__ __forceinline__ Best merge(Best a, Best b) {
    Best r;
    r.max = fmaxf(a.max, b.max);
    r.idx = (b.max > a.max || (b.max == a.max && b.idx < a.idx)) ? b.idx : a.idx;
    r.sum = a.sum * rel_exp(a.max, r.max) + b.sum * rel_exp(b.max, r.max);
    r.bad = a.bad | b.bad;
    return r;
}

__device__ __forceinline__ Best shfl_best(Best b, int o) {
    Best r;
    r.max = __shfl_xor_sync(FULL_MASK, b.max, o);
    r.sum = __shfl_xor_sync(FULL_MASK, b.sum, o);
    r.idx = __shfl_xor_sync(FULL_MASK, b.idx, o);
    r.bad = __shfl_xor_sync(FULL_MASK, b.bad, o);
    return r;
}

KERNEL void argmax(ArgmaxParams p) {
    __shared__ Best warps[32];
    const float* x = (const float*)p.x + (u64)blockIdx.x * p.len;
    Best b{NEG_INF, 0.0f, p.len, 0u};
    for (u32 i = threadIdx.x; i < p.len; i += blockDim.x) {
        float v = gld(x + i);
        if (!(v <= 3.40282347e38f)) {  // NaN or +inf
            b.bad = 1;
        } else if (v > b.max) {
            b.sum = b.sum * rel_exp(b.max, v) + 1.0f;
            b.max = v;
            b.idx = i;
        } else {
            b.sum += rel_exp(v, b.max);
        }
    }
    for (int o = 16; o > 0; o >>= 1) b = merge(b, shfl_best(b, o));
    u32 lane = threadIdx.x & 31, w = threadIdx.x >> 5;
    if (lane == 0) sst(warps + w, b);
    __syncthreads();
    if (w == 0) {
        Best none{NEG_INF, 0.0f, p.len, 0u};
        b = lane < (blockDim.x >> 5) ? sld(warps + lane) : none;
        for (int o = 16; o > 0; o >>= 1) b = merge(b, shfl_best(b, o));
        if (lane == 0) {
            bool none_left = b.bad || b.max == NEG_INF;
            float* out = (float*)p.out + 2 * (u64)blockIdx.x;
            gst(out, (float)(none_left ? p.len : b.idx));
            gst(out + 1, none_left ? __int_as_float(0x7fc00000) : -logf(b.sum));
        }
    }
}
