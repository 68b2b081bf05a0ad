// matvec.cu: the decode matmul, out[i, r] = sum_j x[i, j] * w[r, j] for a few token rows
// (m <= 8): every weight row is read once and dotted with each of the m rows of x.
// Layout: x [m, k] f32 row-major, w [n, k] in its file dtype (weights.cuh), out [m, n] f32.
//
// One block = 4 warps (128 threads). Two shapes of work (MatvecParams.split):
// - split == 1: each warp owns `rows` consecutive weight rows; its 32 lanes stride over k.
// - split == 4 (split-K, when n is small and k large: few rows would leave most SMs idle): the
//   4 warps of a block share its `rows` rows, warp w taking every 4th unit of k.
// A unit of k is one 128-bit load of a float row (4 f32 or 8 f16/bf16 elements) when every row
// starts 16-byte aligned (k * size % 16 == 0, MatvecParams.vec), else one element; for the
// block formats it is one 32-element group (a Q8_0/Q4_0/Q5_0 block, a K-quant sub-block).
// Each lane keeps one partial sum per (row, token) and writes it to shared memory; after a
// single barrier, one thread per (row, token) adds the 32 (or 128) partials: one sync point per
// block instead of a warp_sum per row (rows * m <= 32 per warp).
// Entries: matvec_<dt> (m == 1) and matvec8_<dt> (m in 2..=8, x rows unrolled by 8 with guards)
// for dt in f32 f16 bf16 q8_0 q4_0 q5_0 q4_k q6_k. Params: MatvecParams (kernels/src/cuda/matmul.rs).
// Versions: v1.
#pragma once
#include "weights.cuh"

struct MatvecParams {
    u64 x, w, out;
    u32 m, n, k;
    u32 rows;   // weight rows per warp (split 1) or per block (split 4); rows * m <= 32
    u32 split;  // 1 or 4 (see above)
    u32 vec;    // float dtypes: rows start 16-byte aligned, use 128-bit loads
};

// The 8 (or 4 f32) weights of one 128-bit load.
template <int DT>
__device__ __forceinline__ void w_unpack16(uint4 q, float v[8]) {
    u32 r[4] = {q.x, q.y, q.z, q.w};
#pragma unroll
    for (int i = 0; i < 4; i++) {
        if (DT == DT_F32) {
            v[i] = __uint_as_float(r[i]);
        } else if (DT == DT_BF16) {
            v[2 * i] = __uint_as_float(r[i] << 16);
            v[2 * i + 1] = __uint_as_float(r[i] & 0xffff0000u);
        } else {
            v[2 * i] = f16_to_f32((u16)(r[i] & 0xffffu));
            v[2 * i + 1] = f16_to_f32((u16)(r[i] >> 16));
        }
    }
}

// The partial sums of this lane (units u0, u0 + stride, ...) of weight row `row` against the
// first m (<= MT) rows of x.
template <int DT, int MT>
__device__ __forceinline__ void row_partials(const MatvecParams& p, u32 row, u32 u0, u32 stride, float acc[MT]) {
    const float* x = (const float*)p.x;
    const u8* w = (const u8*)p.w;
    const u64 k = p.k;
    const u64 rbase = (u64)row * k;  // element index of the row's start
#pragma unroll
    for (int i = 0; i < MT; i++) acc[i] = 0.0f;
    if (DT == DT_F32 || DT == DT_F16 || DT == DT_BF16) {
        if (p.vec) {
            const int per = DT == DT_F32 ? 4 : 8;  // elements per 16 bytes
            const u32 units = p.k / per;
            const uint4* wr = (const uint4*)(w + rbase * (DT == DT_F32 ? 4 : 2));
            for (u32 u = u0; u < units; u += stride) {
                float v[8];
                w_unpack16<DT>(wr[u], v);
#pragma unroll
                for (int i = 0; i < MT; i++) {
                    if (i < (int)p.m) {
                        const float4* xr = (const float4*)(x + (u64)i * k + (u64)u * per);
                        float4 a = xr[0];
                        float s = acc[i];
                        s = fmaf(a.x, v[0], s);
                        s = fmaf(a.y, v[1], s);
                        s = fmaf(a.z, v[2], s);
                        s = fmaf(a.w, v[3], s);
                        if (per == 8) {
                            float4 b = xr[1];
                            s = fmaf(b.x, v[4], s);
                            s = fmaf(b.y, v[5], s);
                            s = fmaf(b.z, v[6], s);
                            s = fmaf(b.w, v[7], s);
                        }
                        acc[i] = s;
                    }
                }
            }
        } else {
            for (u32 e = u0; e < p.k; e += stride) {
                float v = w_at<DT>(w, rbase + e);
#pragma unroll
                for (int i = 0; i < MT; i++)
                    if (i < (int)p.m) acc[i] = fmaf(x[(u64)i * k + e], v, acc[i]);
            }
        }
    } else {
        const u32 groups = p.k / 32;
        for (u32 g = u0; g < groups; g += stride) {
            float v[32];
            w_load32<DT>(w, rbase + (u64)g * 32, v);
#pragma unroll
            for (int i = 0; i < MT; i++) {
                if (i < (int)p.m) {
                    const float4* xr = (const float4*)(x + (u64)i * k + (u64)g * 32);
                    float s = acc[i];
#pragma unroll
                    for (int q = 0; q < 8; q++) {
                        float4 a = xr[q];
                        s = fmaf(a.x, v[4 * q], s);
                        s = fmaf(a.y, v[4 * q + 1], s);
                        s = fmaf(a.z, v[4 * q + 2], s);
                        s = fmaf(a.w, v[4 * q + 3], s);
                    }
                    acc[i] = s;
                }
            }
        }
    }
}

template <int DT, int MT>
__device__ __forceinline__ void matvec_impl(const MatvecParams& p) {
    __shared__ float part[4][32][33];  // [warp][row * m + token][lane], padded against bank conflicts
    const u32 lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const bool split = p.split == 4;
    // First row of this warp (split 1) or of the block (split 4).
    const u32 row0 = split ? blockIdx.x * p.rows : (blockIdx.x * 4 + warp) * p.rows;
    const u32 u0 = split ? warp * 32 + lane : lane;
    const u32 stride = split ? 128 : 32;
    for (u32 r = 0; r < p.rows; r++) {
        float acc[MT];
        const u32 row = row0 + r;
        if (row < p.n) {
            row_partials<DT, MT>(p, row, u0, stride, acc);
        } else {
#pragma unroll
            for (int i = 0; i < MT; i++) acc[i] = 0.0f;
        }
#pragma unroll
        for (int i = 0; i < MT; i++)
            if (i < (int)p.m) part[warp][r * p.m + i][lane] = acc[i];
    }
    __syncthreads();
    float* out = (float*)p.out;
    const u32 slots = p.rows * p.m;
    if (!split) {
        if (lane < slots) {
            float s = 0.0f;
#pragma unroll 8
            for (int j = 0; j < 32; j++) s += part[warp][lane][j];
            const u32 row = row0 + lane / p.m, i = lane % p.m;
            if (row < p.n) out[(u64)i * p.n + row] = s;
        }
    } else if (threadIdx.x < slots) {
        const u32 t = threadIdx.x;
        float s = 0.0f;
        for (int w = 0; w < 4; w++) {
#pragma unroll 8
            for (int j = 0; j < 32; j++) s += part[w][t][j];
        }
        const u32 row = row0 + t / p.m, i = t % p.m;
        if (row < p.n) out[(u64)i * p.n + row] = s;
    }
}

#define MATVEC_ENTRIES(name, DT)                                                       \
    KERNEL void __launch_bounds__(128) matvec_##name(MatvecParams p) { matvec_impl<DT, 1>(p); } \
    KERNEL void __launch_bounds__(128) matvec8_##name(MatvecParams p) { matvec_impl<DT, 8>(p); }

MATVEC_ENTRIES(f32, DT_F32)
MATVEC_ENTRIES(f16, DT_F16)
MATVEC_ENTRIES(bf16, DT_BF16)
MATVEC_ENTRIES(q8_0, DT_Q8_0)
MATVEC_ENTRIES(q4_0, DT_Q4_0)
MATVEC_ENTRIES(q5_0, DT_Q5_0)
MATVEC_ENTRIES(q4_k, DT_Q4_K)
MATVEC_ENTRIES(q6_k, DT_Q6_K)
