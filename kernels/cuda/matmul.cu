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
// - split == 1: each warp owns `rows` consecutive weight rows, one at a time.
// - split == 4 (split-K, when n is small and k large: few rows would leave most SMs idle): the
//   4 warps of a block share its `rows` rows, warp w taking every 4th unit of k.
// A row is one wrow_dot (weights.cuh): coalesced weight and x loads, block formats staged
// through the warp's shared buffer. m == 1 (matvec_<dt>): each row's lanes summed by warp_sum.
// m in 2..=8 (matvec8_<dt>, x rows unrolled by 8 with guards): each lane keeps one partial sum
// per (row, token) and writes it to shared memory; after a single barrier, one thread per (row,
// token) adds the 32 (or 128) partials: one sync point per block instead of a warp_sum per
// (row, token) (rows * m <= 32 per warp). Params: MatvecParams (kernels/src/cuda/matmul.rs).
// Versions: v1 (a lane per 32-element group, its bytes read one by one at the block stride: 12-19%
// of the fetched sectors used for the block formats, 60% for f16; 16.9 KB of shared partials
// even at m == 1); v2 (wrow_dot; m == 1 without the shared partials).
struct MatvecParams {
    u64 x, w, out;
    u32 m, n, k;
    u32 rows;   // weight rows per warp (split 1) or per block (split 4); rows * m <= 32
    u32 split;  // 1 or 4 (see above)
    u32 vec;    // float dtypes: k % 4 == 0 and w, x 16-byte aligned (wrow_dot's vector loads)
};

// m == 1: each row's lanes summed by warp_sum (split-K: the 4 warps' sums through 512 bytes of
// shared memory), so the shared partials below are not reserved where they would go unused.
template <int DT>
__device__ __forceinline__ void matvec1_impl(const MatvecParams& p) {
    __shared__ float sums[4][32];  // split-K: [warp][row]
    __shared__ uint4 stage[4][WROW_STAGE / 16];
    const u32 lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const bool split = p.split == 4;
    const u32 row0 = split ? blockIdx.x * p.rows : (blockIdx.x * 4 + warp) * p.rows;
    float* out = (float*)p.out;
    for (u32 r = 0; r < p.rows; r++) {
        float acc[1] = {0.0f};
        const u32 row = row0 + r;
        if (row < p.n)
            wrow_dot<DT, 1>((const u8*)p.w, (u64)row * p.k, p.k, (const float*)p.x, p.k, 1, p.vec, split ? warp : 0,
                            split ? 4 : 1, (u8*)stage[warp], acc);
        const float s = warp_sum(acc[0]);
        if (lane == 0) {
            if (split)
                sst(&sums[warp][r], s);
            else if (row < p.n)
                gst(out + row, s);
        }
    }
    if (split) {
        __syncthreads();
        const u32 t = threadIdx.x, row = row0 + t;
        if (t < p.rows && row < p.n)
            gst(out + row, sld(&sums[0][t]) + sld(&sums[1][t]) + sld(&sums[2][t]) + sld(&sums[3][t]));
    }
}

template <int DT, int MT>
__device__ __forceinline__ void matvec_impl(const MatvecParams& p) {
    __shared__ float part[4][32][33];  // [warp][row * m + token][lane], padded against bank conflicts
    __shared__ uint4 stage[4][WROW_STAGE / 16];
    const u32 lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const bool split = p.split == 4;
    // First row of this warp (split 1) or of the block (split 4).
    const u32 row0 = split ? blockIdx.x * p.rows : (blockIdx.x * 4 + warp) * p.rows;
    for (u32 r = 0; r < p.rows; r++) {
        float acc[MT];
#pragma unroll
        for (int i = 0; i < MT; i++) acc[i] = 0.0f;
        const u32 row = row0 + r;
        if (row < p.n)
            wrow_dot<DT, MT>((const u8*)p.w, (u64)row * p.k, p.k, (const float*)p.x, p.k, p.m, p.vec,
                             split ? warp : 0, split ? 4 : 1, (u8*)stage[warp], acc);
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
    KERNEL void __launch_bounds__(128, 8) matvec_##name(MatvecParams p) { matvec1_impl<DT>(p); } \
    KERNEL void __launch_bounds__(128) matvec8_##name(MatvecParams p) { matvec_impl<DT, 8>(p); }

FOR_EACH_DTYPE(MATVEC_ENTRIES)

// ---------------------------------------------------------------------------------------------
// Prefill (gemm_tc_<dt>, gemm_f32_<dt>): the matmul for more token rows.
// Grid: x over 64-wide tiles of n, y over 64-high tiles of m. Edges are zero-filled.
//
// gemm_tc_<dt> (v2), tensor cores, for every device dtype but f32:
//   block tile 64 (m) x 64 (n), k step 32, 4 warps as 2 x 2, each warp 32 x 32 = 2 x 4
//   mma.m16n8k16 tiles with f32 accumulators. x is rounded to bf16 on its way into shared
//   memory (never to f16: Gemma's activations exceed f16's 65504); bf16 weights come in by
//   cp.async (16 bytes a copy; when k * 2 % 16 != 0 by plain loads), f16 weights and block
//   formats are decoded in registers into the shared bf16 tile (as the CPU's native GEMM rounds
//   f16 weights to bf16). Two shared buffers: tile s + 1 loads while tile s is multiplied. Shared rows are
//   40 halves (80 bytes): 16-byte aligned for ldmatrix and cp.async, and the 8 row addresses of
//   an ldmatrix fall in 8 distinct 4-bank groups; the stores give each quarter-warp 8
//   consecutive rows for the same reason (v1 gave it 4 rows x 2 chunks: 2-way conflicts).
// gemm_f32_<dt> (v2), exact f32 SIMT for every dtype (Precision::Exact, and f32 weights whose
//   bound bf16 activations cannot meet): 64 x 64 tile, k step 16, 256 threads of 4 x 4 outputs,
//   each output summed over k in order with f32 fma (v1: 2-way bank conflicts on the tile
//   loads and stores; v2 pads rows to 66 and spreads a thread's columns 16 apart).
// Params: GemmParams (kernels/src/cuda/matmul.rs).
struct GemmParams {
    u64 x, w, out;
    u32 m, n, k;
    u32 w_async;  // bf16 weights: k * 2 % 16 == 0 and the base 16-byte aligned (cp.async)
};

// ---------------------------------------------------------------- tensor cores
#define TC_BM 64
#define TC_BN 64
#define TC_BK 32
#define TC_LD 40  // shared row length in halves (32 + 8 padding)

struct alignas(16) TcSmem {
    u16 a[2][TC_BM][TC_LD];  // x tile, [token][k]
    u16 b[2][TC_BN][TC_LD];  // w tile, [row][k]
};

// The 16 columns of a 64 x 32 tile that thread t (< 128) converts: row (t % 8) + 8 (t / 16),
// columns from 16 ((t / 8) % 2). The 8 lanes of a quarter-warp then store to 8 consecutive
// rows, whose 80-byte starts fall in 8 distinct 4-bank groups: conflict-free 16-byte stores.
__device__ __forceinline__ u32 tc_row(u32 t) { return (t & 7) + 8 * (t >> 4); }
__device__ __forceinline__ u32 tc_col(u32 t) { return ((t >> 3) & 1) * 16; }

// 16 values as bf16 into the shared tile row at dst (two 16-byte stores).
__device__ __forceinline__ void tc_store16(u16* dst, const float v[16]) {
    uint4* d = vec_at<uint4>(dst);
    sst(d, uint4{pack_bf16(v[0], v[1]), pack_bf16(v[2], v[3]), pack_bf16(v[4], v[5]), pack_bf16(v[6], v[7])});
    sst(d + 1, uint4{pack_bf16(v[8], v[9]), pack_bf16(v[10], v[11]), pack_bf16(v[12], v[13]), pack_bf16(v[14], v[15])});
}

// x tile of step k0 into a: thread t converts 16 elements of row tc_row(t).
__device__ __forceinline__ void tc_load_x(const GemmParams& p, u16 (*a)[TC_LD], u32 m0, u32 k0) {
    const float* x = (const float*)p.x;
    const u32 t = threadIdx.x, row = tc_row(t), c0 = tc_col(t), gr = m0 + row, kc = k0 + c0;
    float v[16];
    if (gr < p.m && kc + 16 <= p.k && (p.k & 3) == 0) {
        const float4* src = vec_at<const float4>(x + (u64)gr * p.k + kc);
#pragma unroll
        for (int q = 0; q < 4; q++) {
            float4 f = gld(src + q);
            v[4 * q] = f.x;
            v[4 * q + 1] = f.y;
            v[4 * q + 2] = f.z;
            v[4 * q + 3] = f.w;
        }
    } else {
#pragma unroll
        for (int i = 0; i < 16; i++) v[i] = (gr < p.m && kc + i < p.k) ? gld(x + (u64)gr * p.k + kc + i) : 0.0f;
    }
    tc_store16(&a[row][c0], v);
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
                // Lanes 8j..8j+7 take 16-byte chunk j % 4 of 8 consecutive rows: distinct bank
                // groups in shared memory, and each row's 64 bytes whole in one warp request.
                const u32 id = t + 128 * c, row = (id & 7) + 8 * (id >> 5), ch = (id >> 3) & 3;
                const u32 kc = k0 + ch * 8, gr = n0 + row;
                const bool valid = gr < p.n && kc < p.k;
                const u8* src = valid ? w + ((u64)gr * p.k + kc) * 2 : w;
                cp_async16(&b[row][ch * 8], src, valid);
            }
        } else {
            const u16* wh = (const u16*)w;
            const u32 row = tc_row(t), c0 = tc_col(t), gr = n0 + row, kc = k0 + c0;
            u32 r[8];
#pragma unroll
            for (int i = 0; i < 8; i++) {
                u32 lo = (gr < p.n && kc + 2 * i < p.k) ? gld(wh + (u64)gr * p.k + kc + 2 * i) : 0u;
                u32 hi = (gr < p.n && kc + 2 * i + 1 < p.k) ? gld(wh + (u64)gr * p.k + kc + 2 * i + 1) : 0u;
                r[i] = lo | hi << 16;
            }
            uint4* dst = vec_at<uint4>(&b[row][c0]);
            sst(dst, uint4{r[0], r[1], r[2], r[3]});
            sst(dst + 1, uint4{r[4], r[5], r[6], r[7]});
        }
    } else {
        // f16 widened, or a block format (k % 32 == 0, so the 32 columns of a step are one group
        // of each row), rounded to bf16.
        const u32 row = tc_row(t), c0 = tc_col(t), gr = n0 + row;
        float v[16];
        if (DT == DT_F16) {
            const u16* wh = (const u16*)w;
#pragma unroll
            for (int i = 0; i < 16; i++)
                v[i] = (gr < p.n && k0 + c0 + i < p.k) ? f16_to_f32(gld(wh + (u64)gr * p.k + k0 + c0 + i)) : 0.0f;
        } else if (gr < p.n) {
            const u64 e = (u64)gr * p.k + k0 + c0;
            w_dec<DT, GMem, 16>(w + e / w_block(DT) * w_bytes(DT), (int)(e % w_block(DT)), v);
        } else {
#pragma unroll
            for (int i = 0; i < 16; i++) v[i] = 0.0f;
        }
        tc_store16(&b[row][c0], v);
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
                if (row < p.m && col < p.n) gst(out + (u64)row * p.n + col, acc[i][j][e]);
            }
}

// ---------------------------------------------------------------- exact f32 SIMT
#define SG_BM 64
#define SG_BN 64
#define SG_BK 16

template <int DT>
__device__ __forceinline__ void gemm_f32_impl(const GemmParams& p) {
    // Rows of 66 floats: the stores (16 k by 2 rows per warp) and the loads (16 columns a lane
    // apart) meet 32 distinct banks; a thread's 4 columns are 16 apart for the same reason.
    __shared__ float xs[SG_BK][SG_BM + 2];  // [k][token]
    __shared__ float ws[SG_BK][SG_BN + 2];  // [k][row]
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
            const u32 id = t + 256 * q, r = id >> 4, kk = id & 15, kc = k0 + kk, gm = m0 + r;
            sst(&xs[kk][r], (gm < p.m && kc < p.k) ? gld(x + (u64)gm * p.k + kc) : 0.0f);
        }
        {
            // Thread t: elements kk .. kk + 4 of row t / 4; one scale serves a block format's
            // four (k0 and kk are multiples of 4, k of 32).
            const u32 r = t >> 2, kk = (t & 3) * 4, kc = k0 + kk, gn = n0 + r;
            float v[4] = {0.0f, 0.0f, 0.0f, 0.0f};
            if (DT == DT_F32 || DT == DT_F16 || DT == DT_BF16) {
                const u64 e = (u64)gn * p.k + kc;
                if (gn < p.n && kc < p.k) v[0] = w_at<DT>(w, e);
                if (gn < p.n && kc + 1 < p.k) v[1] = w_at<DT>(w, e + 1);
                if (gn < p.n && kc + 2 < p.k) v[2] = w_at<DT>(w, e + 2);
                if (gn < p.n && kc + 3 < p.k) v[3] = w_at<DT>(w, e + 3);
            } else if (gn < p.n && kc < p.k) {
                const u64 e = (u64)gn * p.k + kc;
                w_dec<DT, GMem, 4>(w + e / w_block(DT) * w_bytes(DT), (int)(e % w_block(DT)), v);
            }
#pragma unroll
            for (int i = 0; i < 4; i++) sst(&ws[kk + i][r], v[i]);
        }
        __syncthreads();
#pragma unroll 4
        for (int kk = 0; kk < SG_BK; kk++) {
            float a[4], b[4];
#pragma unroll
            for (int i = 0; i < 4; i++) {
                a[i] = sld(&xs[kk][ty * 4 + i]);
                b[i] = sld(&ws[kk][tx + 16 * i]);
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
            const u32 row = m0 + ty * 4 + i, col = n0 + tx + 16 * j;
            if (row < p.m && col < p.n) gst(out + (u64)row * p.n + col, acc[i][j]);
        }
}

#define GEMM_TC_ENTRY(name, DT) \
    KERNEL void __launch_bounds__(128) gemm_tc_##name(GemmParams p) { gemm_tc_impl<DT>(p); }
#define GEMM_F32_ENTRY(name, DT) \
    KERNEL void __launch_bounds__(256, 2) gemm_f32_##name(GemmParams p) { gemm_f32_impl<DT>(p); }

// f32 weights have no tensor-core entry: they take the exact GEMM.
FOR_EACH_DTYPE_BUT_F32(GEMM_TC_ENTRY)
FOR_EACH_DTYPE(GEMM_F32_ENTRY)
