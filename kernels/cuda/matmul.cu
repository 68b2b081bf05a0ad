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
// - split == 1: each warp owns `rows` consecutive weight rows, MV_R1 (m == 1) or MV_R8 at once.
// - split == 4 (split-K, when n is small and k large: few rows would leave most SMs idle): the
//   4 warps of a block share its `rows` rows, warp w taking every 4th unit of k.
// Rows go through wrow_dot (weights.cuh) R at a time: coalesced weight and x loads, block formats
// staged through the warp's shared buffer, each x load used for R rows. m == 1 (matvec_<dt>):
// the R rows' lanes summed by one warp_transpose_sum. m in 2..=8 (matvec8_<dt>, x rows unrolled
// by 8 with guards): each lane keeps one partial sum per (row, token) and writes it to shared
// memory; after a single barrier, one thread per (row, token) adds the 32 (or 128) partials: one
// sync point per block instead of a warp_sum per (row, token) (rows * m <= 32 per warp).
// Params: MatvecParams (kernels/src/cuda/matmul.rs).
// Versions: v1 (a lane per 32-element group, its bytes read one by one at the block stride: 12-19%
// of the fetched sectors used for the block formats, 60% for f16; 16.9 KB of shared partials
// even at m == 1); v2 (wrow_dot; m == 1 without the shared partials); v3 (R rows per x load:
// 4 at m == 1, 2 above; x requests per weight row / R).
struct MatvecParams {
    u64 x, w, out;
    u32 m, n, k;
    u32 rows;   // weight rows per warp (split 1) or per block (split 4); rows * m <= 32
    u32 split;  // 1 or 4 (see above)
    u32 vec;    // float dtypes: k % 4 == 0 and w, x 16-byte aligned (wrow_dot's vector loads)
};

// Rows a warp takes at once (wrow_dot's R: each x load serves them all): m == 1, m in 2..=8.
#define MV_R1 4
#define MV_R8 2

// m == 1: the rows' lanes summed by warp_transpose_sum, MV_R1 rows per 7 shuffles (split-K:
// the 4 warps' sums through 512 bytes of shared memory), no shared partials.
template <int DT>
__device__ __forceinline__ void matvec1_impl(const MatvecParams& p) {
    __shared__ float sums[4][32];  // split-K: [warp][row]
    __shared__ uint4 stage[4][MV_R1 * WROW_STAGE / 16];
    const u32 lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const bool split = p.split == 4;
    const u32 row0 = split ? blockIdx.x * p.rows : (blockIdx.x * 4 + warp) * p.rows;
    float* out = (float*)p.out;
    for (u32 r0 = 0; r0 < p.rows; r0 += MV_R1) {
        float acc[MV_R1][1] = {};
        const u32 row = row0 + r0;
        const u32 nr = row < p.n ? min(min((u32)MV_R1, p.rows - r0), p.n - row) : 0;
        wrow_dot<DT, 1, MV_R1>((const u8*)p.w, (u64)row * p.k, p.k, nr, p.k, (const float*)p.x, p.k, 1, p.vec,
                               split ? warp : 0, split ? 4 : 1, (u8*)stage[warp], acc);
        float part[MV_R1];
#pragma unroll
        for (int r = 0; r < MV_R1; r++) part[r] = acc[r][0];
        const float s = warp_transpose_sum<MV_R1>(part, lane);  // row + lane's sum on lane < MV_R1
        if (lane < nr) {
            if (split)
                sst(&sums[warp][r0 + lane], s);
            else
                gst(out + row + lane, s);
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
    __shared__ uint4 stage[4][MV_R8 * WROW_STAGE / 16];
    const u32 lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const bool split = p.split == 4;
    // First row of this warp (split 1) or of the block (split 4).
    const u32 row0 = split ? blockIdx.x * p.rows : (blockIdx.x * 4 + warp) * p.rows;
    for (u32 r0 = 0; r0 < p.rows; r0 += MV_R8) {
        float acc[MV_R8][MT] = {};
        const u32 row = row0 + r0;
        const u32 nr = row < p.n ? min(min((u32)MV_R8, p.rows - r0), p.n - row) : 0;
        wrow_dot<DT, MT, MV_R8>((const u8*)p.w, (u64)row * p.k, p.k, nr, p.k, (const float*)p.x, p.k, p.m, p.vec,
                                split ? warp : 0, split ? 4 : 1, (u8*)stage[warp], acc);
#pragma unroll
        for (int r = 0; r < MV_R8; r++) {
            if (r0 + r >= p.rows) break;
#pragma unroll
            for (int i = 0; i < MT; i++)
                if (i < (int)p.m) sst(&part[warp][(r0 + r) * p.m + i][lane], acc[r][i]);
        }
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
// gemm_tc_<dt> (v3), tensor cores, for every device dtype but f32:
//   block tile 64 (m) x 64 (n), k step 32, 4 warps as 2 x 2, each warp 32 x 32 = 2 x 4
//   mma.m16n8k16 tiles with f32 accumulators. x is rounded to bf16 on its way into shared
//   memory (never to f16: Gemma's activations exceed f16's 65504); bf16 weights come in by
//   cp.async (16 bytes a copy; when k * 2 % 16 != 0 by plain loads), f16 weights are widened
//   in registers and block formats decoded from their staged rows into the shared bf16 tile (f16
//   rounded to bf16, as the CPU's native GEMM does). Two shared buffers: tile s + 1's global loads (x and 16-bit weights
//   into registers, bf16 and block-format rows by cp.async) are issued before tile s's MMAs and
//   stored (converted, decoded) after them, so their latency hides behind the MMAs (v2 issued and
//   decoded them before the MMAs, stalling on each load). Block formats stage 128 or 256
//   elements of every row at once (tc_fetch). Shared rows are
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

// Staging of block-format rows (v3): TC_RAW_K(DT) elements of each of the tile's 64 rows (4
// blocks of 32, or one of 256) go into shared memory by cp.async, 4-byte copies from the 4-byte
// boundary at or below the first block, then every step's 32 columns are decoded from there. A
// row's bytes arrive as one contiguous run (v2 read each thread's 16 elements straight from
// global memory, 6-66% of the fetched sectors used), and the copies fly while the previous
// tile's MMAs run. Rows are an odd number of words apart, so the 16 rows a warp decodes start
// in 16 distinct banks (16-byte copies would force multiples of 4 words: 2-way conflicts).
__device__ __forceinline__ constexpr bool tc_blocks(int dt) { return dt > DT_BF16; }
__device__ __forceinline__ constexpr int tc_raw_k(int dt) { return w_block(dt) == 256 ? 256 : 128; }
// Bytes per staged row: the blocks and 3 of alignment slack, in an odd number of words.
__device__ __forceinline__ constexpr int tc_raw_stride(int dt) {
    return tc_blocks(dt) ? ((tc_raw_k(dt) / w_block(dt) * w_bytes(dt) + 6) / 4 | 1) * 4 : 4;
}

// What a thread loads for the next tile before the MMAs and stores after them (registers).
struct TcNext {
    float x[16];  // x: 16 elements of row tc_row(t)
    u16 w[16];    // f16 weights, and bf16 without cp.async: 16 elements of row tc_row(t)
};

// Issues the loads of step k0's tiles: x and 16-bit weights into registers, bf16 weights by
// cp.async into b, block formats by cp.async into raw when k0 starts a staged range.
template <int DT>
__device__ __forceinline__ void tc_fetch(const GemmParams& p, u16 (*b)[TC_LD], u8* raw, u32 m0, u32 n0, u32 k0,
                                         TcNext& nx) {
    const u32 t = threadIdx.x, row = tc_row(t), c0 = tc_col(t);
    {
        const float* x = (const float*)p.x;
        const u32 gr = m0 + row, kc = k0 + c0;
        if (gr < p.m && kc + 16 <= p.k && (p.k & 3) == 0) {
            const float4* src = vec_at<const float4>(x + (u64)gr * p.k + kc);
#pragma unroll
            for (int q = 0; q < 4; q++) {
                const float4 f = gld(src + q);
                nx.x[4 * q] = f.x, nx.x[4 * q + 1] = f.y, nx.x[4 * q + 2] = f.z, nx.x[4 * q + 3] = f.w;
            }
        } else {
#pragma unroll
            for (int i = 0; i < 16; i++) nx.x[i] = (gr < p.m && kc + i < p.k) ? gld(x + (u64)gr * p.k + kc + i) : 0.0f;
        }
    }
    const u8* w = (const u8*)p.w;
    if (DT == DT_BF16 && p.w_async) {
#pragma unroll
        for (int c = 0; c < 2; c++) {
            // Lanes 8j..8j+7 take 16-byte chunk j % 4 of 8 consecutive rows: distinct bank
            // groups in shared memory, and each row's 64 bytes whole in one warp request.
            const u32 id = t + 128 * c, r = (id & 7) + 8 * (id >> 5), ch = (id >> 3) & 3;
            const u32 kc = k0 + ch * 8, gr = n0 + r;
            const bool valid = gr < p.n && kc < p.k;
            cp_async<16>(&b[r][ch * 8], valid ? w + ((u64)gr * p.k + kc) * 2 : w, valid);
        }
    } else if (DT == DT_BF16 || DT == DT_F16) {
        const u16* wh = (const u16*)w;
        const u32 gr = n0 + row, kc = k0 + c0;
#pragma unroll
        for (int i = 0; i < 16; i++) nx.w[i] = (gr < p.n && kc + i < p.k) ? gld(wh + (u64)gr * p.k + kc + i) : (u16)0;
    } else if (tc_blocks(DT) && k0 % tc_raw_k(DT) == 0) {
        constexpr int B = w_block(DT), S = w_bytes(DT), RS = tc_raw_stride(DT), CH = RS / 4;
        const u32 blocks = min((u32)(tc_raw_k(DT) / B), (p.k - k0) / B);  // k % B == 0
        for (u32 id = t; id < 64 * CH; id += 128) {
            const u32 r = id / CH, c = id % CH, gr = n0 + r;
            const u8* first = w + ((u64)gr * p.k + k0) / B * S;
            const u8* base = (const u8*)((u64)first & ~(u64)3);
            const bool valid = gr < p.n && c < (u32)(first - base + blocks * S + 3) / 4;
            cp_async<4>(raw + r * RS + 4 * c, valid ? base + 4 * c : w, valid);
        }
    }
}

// Stores step k0's tiles into a and b (bf16) from the registers and the staged rows.
template <int DT>
__device__ __forceinline__ void tc_fill(const GemmParams& p, u16 (*a)[TC_LD], u16 (*b)[TC_LD], const u8* raw, u32 n0,
                                        u32 k0, const TcNext& nx) {
    const u32 t = threadIdx.x, row = tc_row(t), c0 = tc_col(t);
    tc_store16(&a[row][c0], nx.x);
    if (DT == DT_BF16 && p.w_async) return;
    float v[16];
    if (DT == DT_BF16 || DT == DT_F16) {
#pragma unroll
        for (int i = 0; i < 16; i++) v[i] = DT == DT_F16 ? f16_to_f32(nx.w[i]) : bf16_to_f32(nx.w[i]);
    } else if (n0 + row < p.n) {
        // The 32 columns of a step are one group of each row (k % 32 == 0), rounded to bf16.
        constexpr int B = w_block(DT), S = w_bytes(DT);
        const u32 kb = k0 - k0 % tc_raw_k(DT), e = k0 - kb + c0;  // staged from column kb
        const u32 skew = (u32)(((u64)p.w + ((u64)(n0 + row) * p.k + kb) / B * S) & 3);
        w_dec<DT, SMem, 16>(raw + row * tc_raw_stride(DT) + skew + e / B * S, (int)(e % B), v);
    } else {
#pragma unroll
        for (int i = 0; i < 16; i++) v[i] = 0.0f;
    }
    tc_store16(&b[row][c0], v);
}

template <int DT>
__device__ __forceinline__ void gemm_tc_impl(const GemmParams& p) {
    __shared__ TcSmem sm;
    __shared__ u32 raw_[tc_blocks(DT) ? 64 * tc_raw_stride(DT) / 4 : 1];
    u8* raw = (u8*)raw_;
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

    TcNext nx;
    if (steps > 0) {
        tc_fetch<DT>(p, sm.b[0], raw, m0, n0, 0, nx);
        cp_async_commit();
        cp_async_wait<0>();
        __syncthreads();  // the staged rows are in
        tc_fill<DT>(p, sm.a[0], sm.b[0], raw, n0, 0, nx);
    }
    for (u32 s = 0; s < steps; s++) {
        const u32 buf = s & 1, k1 = (s + 1) * TC_BK;
        const bool next = s + 1 < steps;
        cp_async_wait<0>();
        // Tile s is in; everyone is done with tile s - 1 (the other buffer) and with the staged
        // rows the fill of tile s read, which the fetch below may replace.
        __syncthreads();
        if (next) tc_fetch<DT>(p, sm.b[buf ^ 1], raw, m0, n0, k1, nx);
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
        if (next) {
            if (tc_blocks(DT) && k1 % tc_raw_k(DT) == 0) {  // new rows were staged: wait for everyone's
                cp_async_wait<0>();
                __syncthreads();
            }
            tc_fill<DT>(p, sm.a[buf ^ 1], sm.b[buf ^ 1], raw, n0, k1, nx);
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
