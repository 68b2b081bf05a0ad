// matmul.cu: the matmul family, out[i, r] = sum_j x[i, j] * w[r, j], one entry per kernel and
// device dtype (FOR_EACH_DTYPE in weights.cuh). Two kernels, chosen by kernels/src/cuda/matmul.rs:
// the matvec for decode (m <= 8) and the GEMMs for prefill.
// Layout: x [m, k] f32 row-major, w [n, k] in its file dtype (weights.cuh), out [m, n] f32.
#pragma once
#include "weights.cuh"

// ---------------------------------------------------------------------------------------------
// Decode (matvec_<dt>, matvec8_<dt>), for a few token rows (m <= 8): every weight row is read
// once and dotted with each of the m rows of x.
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
// for every device dtype. Params: MatvecParams (kernels/src/cuda/matmul.rs). Versions: v1.
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
            const uint4* wr = vec_at<const uint4>(w + rbase * (DT == DT_F32 ? 4 : 2));
            for (u32 u = u0; u < units; u += stride) {
                float v[8];
                w_unpack16<DT>(gld(wr + u), v);
#pragma unroll
                for (int i = 0; i < MT; i++) {
                    if (i < (int)p.m) {
                        const float4* xr = vec_at<const float4>(x + (u64)i * k + (u64)u * per);
                        float4 a = gld(xr);
                        float s = acc[i];
                        s = fmaf(a.x, v[0], s);
                        s = fmaf(a.y, v[1], s);
                        s = fmaf(a.z, v[2], s);
                        s = fmaf(a.w, v[3], s);
                        if (per == 8) {
                            float4 b = gld(xr + 1);
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
                    if (i < (int)p.m) acc[i] = fmaf(gld(x + (u64)i * k + e), v, acc[i]);
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
                    const float4* xr = vec_at<const float4>(x + (u64)i * k + (u64)g * 32);
                    float s = acc[i];
#pragma unroll
                    for (int q = 0; q < 8; q++) {
                        float4 a = gld(xr + q);
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
            if (i < (int)p.m) sst(&part[warp][r * p.m + i][lane], acc[i]);
    }
    __syncthreads();
    float* out = (float*)p.out;
    const u32 slots = p.rows * p.m;
    if (!split) {
        if (lane < slots) {
            float s = 0.0f;
#pragma unroll 8
            for (int j = 0; j < 32; j++) s += sld(&part[warp][lane][j]);
            const u32 row = row0 + lane / p.m, i = lane % p.m;
            if (row < p.n) gst(out + (u64)i * p.n + row, s);
        }
    } else if (threadIdx.x < slots) {
        const u32 t = threadIdx.x;
        float s = 0.0f;
        for (int w = 0; w < 4; w++) {
#pragma unroll 8
            for (int j = 0; j < 32; j++) s += sld(&part[w][t][j]);
        }
        const u32 row = row0 + t / p.m, i = t % p.m;
        if (row < p.n) gst(out + (u64)i * p.n + row, s);
    }
}

#define MATVEC_ENTRIES(name, DT)                                                       \
    KERNEL void __launch_bounds__(128) matvec_##name(MatvecParams p) { matvec_impl<DT, 1>(p); } \
    KERNEL void __launch_bounds__(128) matvec8_##name(MatvecParams p) { matvec_impl<DT, 8>(p); }

FOR_EACH_DTYPE(MATVEC_ENTRIES)

// ---------------------------------------------------------------------------------------------
// Prefill (gemm_tc_<dt>, gemm_f32_<dt>): the matmul for more token rows.
// Grid: x over 64-wide tiles of n, y over 64-high tiles of m. Edges are zero-filled.
//
// gemm_tc_<dt> (v1), tensor cores, for every device dtype but f32:
//   block tile 64 (m) x 64 (n), k step 32, 4 warps as 2 x 2, each warp 32 x 32 = 2 x 4
//   mma.m16n8k16 tiles with f32 accumulators. x is rounded to bf16 on its way into shared
//   memory (never to f16: Gemma's activations exceed f16's 65504); bf16 weights come in by
//   cp.async (16 bytes a copy; when k * 2 % 16 != 0 by plain loads), f16 weights and block
//   formats are decoded in registers into the shared bf16 tile (as the CPU's native GEMM rounds
//   f16 weights to bf16). Two shared buffers: tile s + 1 loads while tile s is multiplied. Shared rows are
//   40 halves (80 bytes): 16-byte aligned for ldmatrix and cp.async, and the 8 row addresses of
//   an ldmatrix fall in 8 distinct 4-bank groups.
// gemm_f32_<dt> (v1), exact f32 SIMT for every dtype (Precision::Exact, and f32 weights whose
//   bound bf16 activations cannot meet): 64 x 64 tile, k step 16, 256 threads of 4 x 4 outputs,
//   each output summed over k in order with f32 fma.
// Params: GemmParams (kernels/src/cuda/matmul.rs).
struct GemmParams {
    u64 x, w, out;
    u32 m, n, k;
    u32 w_async;  // bf16 weights: k * 2 % 16 == 0 and the base 16-byte aligned (cp.async)
};

// 16 elements of a block-format weight from e0 (e0 % 16 == 0): the first or second half of a
// 32-element group, decoded like w_load32.
template <int DT>
__device__ __forceinline__ void w_load16(const u8* w, u64 e0, float v[16]) {
    const int h = (int)(e0 >> 4) & 1;
    if (DT == DT_Q8_0) {
        const u8* b = w + (e0 >> 5) * 34;
        float d = w_f16(b);
#pragma unroll
        for (int i = 0; i < 16; i++) v[i] = d * (float)(i8)b[2 + 16 * h + i];
    } else if (DT == DT_Q4_0) {
        const u8* b = w + (e0 >> 5) * 18;
        float d = w_f16(b);
#pragma unroll
        for (int i = 0; i < 16; i++) v[i] = d * (float)(((b[2 + i] >> (4 * h)) & 15) - 8);
    } else if (DT == DT_Q5_0) {
        const u8* b = w + (e0 >> 5) * 22;
        float d = w_f16(b);
        u32 qh = (b[2] | b[3] << 8 | b[4] << 16 | (u32)b[5] << 24) >> (16 * h);
#pragma unroll
        for (int i = 0; i < 16; i++) {
            int q = ((b[6 + i] >> (4 * h)) & 15) | ((qh >> i) & 1) << 4;
            v[i] = d * (float)(q - 16);
        }
    } else if (DT == DT_Q4_K) {
        const u8* b = w + (e0 >> 8) * 144;
        int j = (e0 >> 5) & 7;
        float2 sm = q4k_scale_min(b, j);
        const u8* q = b + 16 + 32 * (j >> 1) + 16 * h;
        int shift = 4 * (j & 1);
#pragma unroll
        for (int i = 0; i < 16; i++) v[i] = sm.x * (float)((q[i] >> shift) & 15) - sm.y;
    } else if (DT == DT_Q6_K) {
        const u8* b = w + (e0 >> 8) * 210;
        int i0 = e0 & 255, n = i0 >> 7, k = (i0 >> 5) & 3;
        const u8* ql = b + 64 * n + 32 * (k & 1) + 16 * h;
        const u8* qh = b + 128 + 32 * n + 16 * h;
        float sc = w_f16(b + 208) * (float)(i8)b[192 + (i0 >> 4)];
#pragma unroll
        for (int l = 0; l < 16; l++) {
            int q = ((ql[l] >> (4 * (k >> 1))) & 15) | ((qh[l] >> (2 * k)) & 3) << 4;
            v[l] = sc * (float)(q - 32);
        }
    }
}

// ---------------------------------------------------------------- tensor cores
#define TC_BM 64
#define TC_BN 64
#define TC_BK 32
#define TC_LD 40  // shared row length in halves (32 + 8 padding)

struct alignas(16) TcSmem {
    u16 a[2][TC_BM][TC_LD];  // x tile, [token][k]
    u16 b[2][TC_BN][TC_LD];  // w tile, [row][k]
};

// x tile of step k0 into a: thread t converts 16 elements of row t / 2.
__device__ __forceinline__ void tc_load_x(const GemmParams& p, u16 (*a)[TC_LD], u32 m0, u32 k0) {
    const float* x = (const float*)p.x;
    const u32 t = threadIdx.x, row = t >> 1, c0 = (t & 1) * 16, gr = m0 + row, kc = k0 + c0;
    float v[16];
    if (gr < p.m && kc + 16 <= p.k && (p.k & 3) == 0) {
        const float4* src = vec_at<const float4>(x + (u64)gr * p.k + kc);
#pragma unroll
        for (int q = 0; q < 4; q++) {
            float4 f = src[q];
            v[4 * q] = f.x;
            v[4 * q + 1] = f.y;
            v[4 * q + 2] = f.z;
            v[4 * q + 3] = f.w;
        }
    } else {
#pragma unroll
        for (int i = 0; i < 16; i++) v[i] = (gr < p.m && kc + i < p.k) ? x[(u64)gr * p.k + kc + i] : 0.0f;
    }
    uint4* dst = vec_at<uint4>(&a[row][c0]);
    dst[0] = uint4{pack_bf16(v[0], v[1]), pack_bf16(v[2], v[3]), pack_bf16(v[4], v[5]), pack_bf16(v[6], v[7])};
    dst[1] = uint4{pack_bf16(v[8], v[9]), pack_bf16(v[10], v[11]), pack_bf16(v[12], v[13]),
                   pack_bf16(v[14], v[15])};
}

// w tile of step k0 into b (see the file comment for the three ways).
template <int DT>
__device__ __forceinline__ void tc_load_w(const GemmParams& p, u16 (*b)[TC_LD], u32 n0, u32 k0) {
    const u8* w = (const u8*)p.w;
    const u32 t = threadIdx.x;
    if (DT == DT_BF16) {
        if (p.w_async) {
#pragma unroll
            for (int c = 0; c < 2; c++) {
                const u32 id = t + 128 * c, row = id >> 2, kc = k0 + (id & 3) * 8, gr = n0 + row;
                const bool valid = gr < p.n && kc < p.k;
                const u8* src = valid ? w + ((u64)gr * p.k + kc) * 2 : w;
                cp_async16(&b[row][(id & 3) * 8], src, valid);
            }
        } else {
            const u16* wh = (const u16*)w;
            const u32 row = t >> 1, c0 = (t & 1) * 16, gr = n0 + row, kc = k0 + c0;
            u32 r[8];
#pragma unroll
            for (int i = 0; i < 8; i++) {
                u32 lo = (gr < p.n && kc + 2 * i < p.k) ? wh[(u64)gr * p.k + kc + 2 * i] : 0u;
                u32 hi = (gr < p.n && kc + 2 * i + 1 < p.k) ? wh[(u64)gr * p.k + kc + 2 * i + 1] : 0u;
                r[i] = lo | hi << 16;
            }
            uint4* dst = vec_at<uint4>(&b[row][c0]);
            dst[0] = uint4{r[0], r[1], r[2], r[3]};
            dst[1] = uint4{r[4], r[5], r[6], r[7]};
        }
    } else {
        // f16 widened, or a block format (k % 32 == 0, so the 32 columns of a step are one group
        // of each row), rounded to bf16.
        const u32 row = t >> 1, c0 = (t & 1) * 16, gr = n0 + row;
        float v[16];
        if (DT == DT_F16) {
            const u16* wh = (const u16*)w;
#pragma unroll
            for (int i = 0; i < 16; i++)
                v[i] = (gr < p.n && k0 + c0 + i < p.k) ? f16_to_f32(wh[(u64)gr * p.k + k0 + c0 + i]) : 0.0f;
        } else if (gr < p.n) {
            w_load16<DT>(w, (u64)gr * p.k + k0 + c0, v);
        } else {
#pragma unroll
            for (int i = 0; i < 16; i++) v[i] = 0.0f;
        }
        uint4* dst = vec_at<uint4>(&b[row][c0]);
        dst[0] = uint4{pack_bf16(v[0], v[1]), pack_bf16(v[2], v[3]), pack_bf16(v[4], v[5]), pack_bf16(v[6], v[7])};
        dst[1] = uint4{pack_bf16(v[8], v[9]), pack_bf16(v[10], v[11]), pack_bf16(v[12], v[13]),
                       pack_bf16(v[14], v[15])};
    }
}

template <int DT>
__device__ __forceinline__ void gemm_tc_impl(const GemmParams& p) {
    __shared__ TcSmem sm;
    const u32 lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const u32 wm = warp >> 1, wn = warp & 1;
    const u32 m0 = blockIdx.y * TC_BM, n0 = blockIdx.x * TC_BN;
    const u32 steps = (p.k + TC_BK - 1) / TC_BK;
    float acc[2][4][4];
#pragma unroll
    for (int i = 0; i < 2; i++)
#pragma unroll
        for (int j = 0; j < 4; j++)
#pragma unroll
            for (int e = 0; e < 4; e++) acc[i][j][e] = 0.0f;

    if (steps > 0) {
        tc_load_x(p, sm.a[0], m0, 0);
        tc_load_w<DT>(p, sm.b[0], n0, 0);
    }
    cp_async_commit();
    for (u32 s = 0; s < steps; s++) {
        const u32 buf = s & 1;
        cp_async_wait<0>();
        __syncthreads();  // tile s is in; everyone is done with tile s - 1 (the other buffer)
        if (s + 1 < steps) {
            tc_load_x(p, sm.a[buf ^ 1], m0, (s + 1) * TC_BK);
            tc_load_w<DT>(p, sm.b[buf ^ 1], n0, (s + 1) * TC_BK);
        }
        cp_async_commit();
#pragma unroll
        for (int kk = 0; kk < TC_BK; kk += 16) {
            u32 a[2][4], b[4][2];
#pragma unroll
            for (int i = 0; i < 2; i++) {
                const u32 row = wm * 32 + i * 16 + (lane & 7) + ((lane >> 3) & 1) * 8;
                ldmatrix_x4(a[i], &sm.a[buf][row][kk + (lane >> 4) * 8]);
            }
#pragma unroll
            for (int jp = 0; jp < 2; jp++) {
                const u32 row = wn * 32 + jp * 16 + (lane & 7) + ((lane >> 4) & 1) * 8;
                u32 r[4];
                ldmatrix_x4(r, &sm.b[buf][row][kk + ((lane >> 3) & 1) * 8]);
                b[2 * jp][0] = r[0];
                b[2 * jp][1] = r[1];
                b[2 * jp + 1][0] = r[2];
                b[2 * jp + 1][1] = r[3];
            }
#pragma unroll
            for (int i = 0; i < 2; i++)
#pragma unroll
                for (int j = 0; j < 4; j++) mma_bf16_16816(acc[i][j], a[i], b[j], acc[i][j]);
        }
    }
    cp_async_wait<0>();

    float* out = (float*)p.out;
    const u32 g = lane >> 2, tig = lane & 3;
#pragma unroll
    for (int i = 0; i < 2; i++)
#pragma unroll
        for (int j = 0; j < 4; j++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const u32 row = m0 + wm * 32 + i * 16 + g + (e >> 1) * 8;
                const u32 col = n0 + wn * 32 + j * 8 + tig * 2 + (e & 1);
                if (row < p.m && col < p.n) out[(u64)row * p.n + col] = acc[i][j][e];
            }
}

// ---------------------------------------------------------------- exact f32 SIMT
#define SG_BM 64
#define SG_BN 64
#define SG_BK 16

template <int DT>
__device__ __forceinline__ void gemm_f32_impl(const GemmParams& p) {
    __shared__ float xs[SG_BK][SG_BM + 4];  // [k][token]
    __shared__ float ws[SG_BK][SG_BN + 4];  // [k][row]
    const float* x = (const float*)p.x;
    const u8* w = (const u8*)p.w;
    const u32 t = threadIdx.x, tx = t & 15, ty = t >> 4;
    const u32 m0 = blockIdx.y * SG_BM, n0 = blockIdx.x * SG_BN;
    float acc[4][4];
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) acc[i][j] = 0.0f;
    for (u32 k0 = 0; k0 < p.k; k0 += SG_BK) {
        __syncthreads();  // everyone is done with the previous tile
#pragma unroll 1
        for (int q = 0; q < 4; q++) {
            const u32 id = t + 256 * q, r = id >> 4, kk = id & 15, kc = k0 + kk;
            const u32 gm = m0 + r, gn = n0 + r;
            xs[kk][r] = (gm < p.m && kc < p.k) ? x[(u64)gm * p.k + kc] : 0.0f;
            ws[kk][r] = (gn < p.n && kc < p.k) ? w_at<DT>(w, (u64)gn * p.k + kc) : 0.0f;
        }
        __syncthreads();
#pragma unroll 4
        for (int kk = 0; kk < SG_BK; kk++) {
            float a[4], b[4];
#pragma unroll
            for (int i = 0; i < 4; i++) {
                a[i] = xs[kk][ty * 4 + i];
                b[i] = ws[kk][tx * 4 + i];
            }
#pragma unroll
            for (int i = 0; i < 4; i++)
#pragma unroll
                for (int j = 0; j < 4; j++) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
        }
    }
    float* out = (float*)p.out;
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) {
            const u32 row = m0 + ty * 4 + i, col = n0 + tx * 4 + j;
            if (row < p.m && col < p.n) out[(u64)row * p.n + col] = acc[i][j];
        }
}

#define GEMM_TC_ENTRY(name, DT) \
    KERNEL void __launch_bounds__(128) gemm_tc_##name(GemmParams p) { gemm_tc_impl<DT>(p); }
#define GEMM_F32_ENTRY(name, DT) \
    KERNEL void __launch_bounds__(256) gemm_f32_##name(GemmParams p) { gemm_f32_impl<DT>(p); }

// f32 weights have no tensor-core entry: they take the exact GEMM.
FOR_EACH_DTYPE_BUT_F32(GEMM_TC_ENTRY)
FOR_EACH_DTYPE(GEMM_F32_ENTRY)
