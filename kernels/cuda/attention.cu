// attention.cu: causal GQA attention of `tokens` queries at positions pos0..pos0+tokens (the
// reference is kernels/src/reference/attention.rs): the query at position P sees keys j <= P with
// j > P - window (window 0 = all); key j < pos0 is in the cache ring at slot j % capacity, key
// j >= pos0 is row j - pos0 of the new k/v. out = softmax(scale * q.K) V per query head, all
// arithmetic in f32 (no tensor cores: the op's bound is 5e-5).
//
// Layout: q, out [tokens, n_heads, hd]; k, v [tokens, n_kv_heads, hd]; cache_k, cache_v
// [capacity, n_kv_heads, hd]; scratch (split runs only) [tokens * n_heads, splits, hd] partial
// outputs, then [tokens * n_heads, splits, 2] (running max, sum). f32 throughout.
//
// attention_d<MAXD>_r<R> (flash attention; hd <= MAXD): a block of 128 threads takes a tile of
// R rows of one KV head, where the rows of a KV head are its (token, query head) pairs in that
// order, so a decode step's GQA group shares every key and value read; and one split of the keys
// the tile sees. It streams BK keys at a time through one shared buffer (rows hd + 1 apart, so
// lanes reading different keys hit different banks):
//   1. the K tile goes in;
//   2. scores: a warp per row, lanes over the head dimension (q read once per row and tile,
//      coalesced; K from shared memory without conflicts), then a transposing warp reduction
//      that leaves key j's score on lane j (warp_transpose_sum, common.cuh);
//   3. the V tile replaces the K tile while one thread per row runs the online softmax (running
//      max and sum, causal and window masks) and publishes its probabilities and rescale factor;
//   4. each row's 128 / R threads rescale and accumulate their columns of the output (registers).
// With splits = 1 (prefill, short contexts) the block writes out = acc / sum. Otherwise
// (flash-decoding: few queries, many keys) it writes its partial (acc, max, sum) to scratch and
// attention_combine merges the splits. A split that sees none of a row's keys writes max = NEG,
// sum = 0, acc = 0, which weighs nothing.
// Shared memory: BK * (MAXD + 1) + R * (BK + 1) + 2R floats: (MAXD, BK) = (128, 32), (256, 32),
// (512, 16), at most 33.2 KiB. The host picks MAXD (smallest >= hd) and R (2, 8 or 16: the
// smallest covering the rows of a KV head) and the splits.
//
// attention_combine: one block per output row, threads over hd:
//   M = max_s m_s,   out = sum_s (exp(m_s - M) / sum_s' exp(m_s' - M) l_s') acc_s.
//
// Params: AttentionParams / CombineParams (kernels/src/cuda/attention.rs).
// Global and shared accesses go through gld / gst / sld / sst (the emulator's memory model).
// Versions: v1 (a thread per score, reading q[d] through L1 as a broadcast: 30-57% of the fetched
// sectors used at hd 256 / 512); v2 (scores by warps, step 2); v3 (the V tile by cp.async during
// the softmax, step 3).
#pragma once
#include "common.cuh"

struct AttentionParams {
    u64 q, k, v, cache_k, cache_v, out, scratch;
    u32 tokens, n_heads, n_kv_heads, group;
    u32 head_dim, pos0, capacity;
    u32 window;  // 0 = no window
    float scale;
    u32 rows;    // rows per KV head: tokens * group
    u32 splits;  // key splits per tile (1 = write out directly)
    u32 pad;
};

#define ATT_THREADS 128
#define ATT_NEG (-3.0e38f)

// One row of a tile: validity, its output row (token * n_heads + head), position, first key.
struct AttRow {
    bool valid;
    u32 idx, pos, first;
};

__device__ __forceinline__ u32 att_first_key(const AttentionParams& p, u32 pos) {
    return (p.window == 0u || pos < p.window) ? 0u : pos + 1u - p.window;
}

__device__ __forceinline__ AttRow att_row(const AttentionParams& p, u32 row0, u32 kvh, u32 r) {
    u32 gr = row0 + r;
    u32 t = min(gr, p.rows - 1u) / p.group;
    AttRow row;
    row.valid = gr < p.rows;
    row.idx = t * p.n_heads + kvh * p.group + gr % p.group;
    row.pos = p.pos0 + t;
    row.first = att_first_key(p, row.pos);
    return row;
}

// Keys (or values) k0..k0+BK of KV head kvh into buf (rows KS apart), zeros past k_end. Values
// come by cp.async (4 bytes a lane: rows are hd + 1 floats apart), landing at the caller's wait,
// so their loads fly while the softmax runs; keys are needed at once and are plain loads.
template <int BK>
__device__ __forceinline__ void att_load_tile(const AttentionParams& p, float* buf, u32 KS, u32 k0, u32 k_end,
                                              u32 kvh, bool values) {
    const float* cache = (const float*)(values ? p.cache_v : p.cache_k);
    const float* fresh = (const float*)(values ? p.v : p.k);
    u32 lane = threadIdx.x & 31u, warp = threadIdx.x >> 5;
    u32 hd = p.head_dim;
    for (u32 j = warp; j < (u32)BK; j += ATT_THREADS / 32) {
        u32 kp = k0 + j;
        float* dst = buf + j * KS;
        const bool valid = kp < k_end;
        const float* src = !valid         ? fresh
                           : kp < p.pos0 ? cache + ((kp % p.capacity) * p.n_kv_heads + kvh) * hd
                                         : fresh + ((kp - p.pos0) * p.n_kv_heads + kvh) * hd;
        for (u32 d = lane; d < hd; d += 32) {
            if (values)
                cp_async<4>(dst + d, src + (valid ? d : 0), valid);
            else
                sst(dst + d, valid ? gld(src + d) : 0.0f);
        }
    }
    if (values) cp_async_commit();
}

template <int MAXD, int R, int BK>
__device__ __forceinline__ void attention_body(const AttentionParams& p) {
    constexpr int T = ATT_THREADS;
    constexpr int TPR = T / R;                  // threads per output row
    constexpr int NC = (MAXD + TPR - 1) / TPR;  // output columns per thread
    constexpr int PS = BK + 1;                  // score row stride
    __shared__ float kv[BK * (MAXD + 1)];
    __shared__ float sc[R * PS];  // scores, then probabilities
    __shared__ float alpha[R];    // per tile: rescale of the running output
    __shared__ float lsum[R];     // at the end: the running sums

    const u32 tid = threadIdx.x, lane = tid & 31u, warp = tid >> 5;
    const u32 hd = p.head_dim, KS = hd + 1u;
    const float* q = (const float*)p.q;

    u32 b = blockIdx.x;
    u32 split = b % p.splits;
    u32 kvh = (b / p.splits) % p.n_kv_heads;
    u32 tile = b / (p.splits * p.n_kv_heads);
    u32 row0 = tile * R;

    // The keys the tile sees: from its first row's first key to its last row's position; this
    // block's split of them is [k_begin, k_end).
    u32 lo = att_first_key(p, p.pos0 + row0 / p.group);
    u32 hi = p.pos0 + (min(row0 + (u32)R, p.rows) - 1u) / p.group + 1u;
    u32 per_split = (hi - lo + p.splits - 1u) / p.splits;
    u32 k_begin = min(lo + split * per_split, hi);
    u32 k_end = min(k_begin + per_split, hi);

    // Roles: the softmax thread of row `tid` (tid < R); the output columns of row `ro`.
    AttRow me = att_row(p, row0, kvh, min(tid, (u32)R - 1u));
    u32 ro_r = tid / TPR, col0 = tid % TPR;
    AttRow ro = att_row(p, row0, kvh, ro_r);
    float m_run = ATT_NEG, l_run = 0.0f;
    float acc[NC];
#pragma unroll
    for (int c = 0; c < NC; c++) acc[c] = 0.0f;

    for (u32 k0 = k_begin; k0 < k_end; k0 += BK) {
        u32 nk = min((u32)BK, k_end - k0);
        att_load_tile<BK>(p, kv, KS, k0, k_end, kvh, false);
        __syncthreads();
        // Scores: warp w takes rows w, w + 4, ...; lane l multiplies q[d] (read once per row,
        // coalesced) with column d = l + 32 i of every key, then a transposing reduction leaves
        // key j's score on lane j (mod BK).
        for (u32 r = warp; r < (u32)R; r += T / 32) {
            const AttRow rs = att_row(p, row0, kvh, r);
            float part[BK];
#pragma unroll
            for (int j = 0; j < BK; j++) part[j] = 0.0f;
            if (rs.valid) {
                const float* qr = q + rs.idx * hd;
#pragma unroll
                for (int i = 0; i < (MAXD + 31) / 32; i++) {
                    const u32 d = lane + 32u * i;
                    if (d < hd) {
                        const float qd = gld(qr + d);
#pragma unroll
                        for (int j = 0; j < BK; j++) part[j] = fmaf(qd, sld(kv + j * KS + d), part[j]);
                    }
                }
            }
            const float s = warp_transpose_sum<BK>(part, lane);
            if (lane < (u32)BK) sst(sc + r * PS + lane, lane < nk ? p.scale * s : 0.0f);
        }
        __syncthreads();
        // Every read of the K tile is behind us: the V tile's copies are issued into its place
        // and land while the row threads update their softmax.
        att_load_tile<BK>(p, kv, KS, k0, k_end, kvh, true);
        if (tid < (u32)R) {
            float* srow = sc + tid * PS;
            float mx = m_run;
            for (u32 j = 0; j < nk; j++) {
                u32 kp = k0 + j;
                if (me.valid && kp >= me.first && kp <= me.pos) mx = fmaxf(mx, sld(srow + j));
            }
            float sum = 0.0f;
            for (u32 j = 0; j < (u32)BK; j++) {
                u32 kp = k0 + j;
                float e = 0.0f;
                if (me.valid && j < nk && kp >= me.first && kp <= me.pos) e = expf(sld(srow + j) - mx);
                sst(srow + j, e);
                sum += e;
            }
            float a = m_run == ATT_NEG ? 0.0f : expf(m_run - mx);
            sst(alpha + tid, a);
            l_run = l_run * a + sum;
            m_run = mx;
        }
        cp_async_wait<0>();  // this thread's V copies; the barrier makes everyone's visible
        __syncthreads();
        {
            float a = sld(alpha + ro_r);
#pragma unroll
            for (int c = 0; c < NC; c++) acc[c] *= a;
            const float* prow = sc + ro_r * PS;
            for (u32 j = 0; j < nk; j++) {
                float pj = sld(prow + j);
                const float* vr = kv + j * KS;
#pragma unroll
                for (int c = 0; c < NC; c++) {
                    u32 d = col0 + (u32)(TPR * c);
                    if (d < hd) acc[c] += pj * sld(vr + d);
                }
            }
        }
        __syncthreads();
    }

    float* scratch = (float*)p.scratch;
    u32 out_rows = p.tokens * p.n_heads;
    if (tid < (u32)R) {
        sst(lsum + tid, l_run);
        if (me.valid && p.splits > 1u) {
            u32 ml = out_rows * p.splits * hd + (me.idx * p.splits + split) * 2u;
            gst(scratch + ml, m_run);
            gst(scratch + ml + 1u, l_run);
        }
    }
    __syncthreads();
    if (ro.valid) {
        if (p.splits == 1u) {
            float inv = 1.0f / sld(lsum + ro_r);  // >= 1 term: the row sees itself
            float* out = (float*)p.out + ro.idx * hd;
#pragma unroll
            for (int c = 0; c < NC; c++) {
                u32 d = col0 + (u32)(TPR * c);
                if (d < hd) gst(out + d, acc[c] * inv);
            }
        } else {
            float* part = scratch + (ro.idx * p.splits + split) * hd;
#pragma unroll
            for (int c = 0; c < NC; c++) {
                u32 d = col0 + (u32)(TPR * c);
                if (d < hd) gst(part + d, acc[c]);
            }
        }
    }
}

#define ATT_ENTRY(MAXD, R, BK) \
    KERNEL void __launch_bounds__(ATT_THREADS, 1) attention_d##MAXD##_r##R(AttentionParams p) { attention_body<MAXD, R, BK>(p); }

ATT_ENTRY(128, 2, 32)
ATT_ENTRY(128, 8, 32)
ATT_ENTRY(128, 16, 32)
ATT_ENTRY(256, 2, 32)
ATT_ENTRY(256, 8, 32)
ATT_ENTRY(256, 16, 32)
ATT_ENTRY(512, 2, 16)
ATT_ENTRY(512, 8, 16)
ATT_ENTRY(512, 16, 16)

struct CombineParams {
    u64 scratch, out;
    u32 rows, head_dim, splits, pad;
};

// Blocks over rows (x + y * gridDim.x), threads over columns. The (max, sum) pairs come in once,
// coalesced, into shared memory; warp 0 turns them into the splits' weights exp(m_s - M) / den.
#define ATT_MAX_SPLITS 128  // MAX_SPLITS in kernels/src/cuda/attention.rs
KERNEL void attention_combine(CombineParams p) {
    __shared__ float ml[2 * ATT_MAX_SPLITS];  // (m_s, l_s), then (weight_s, -)
    const u32 row = blockIdx.x + blockIdx.y * gridDim.x, n = p.splits;
    if (row >= p.rows) return;  // block-uniform: no thread of this block reaches a barrier
    const float* scratch = (const float*)p.scratch;
    const float* src = scratch + (u64)p.rows * n * p.head_dim + (u64)row * n * 2u;
    for (u32 i = threadIdx.x; i < 2u * n; i += blockDim.x) sst(ml + i, gld(src + i));
    __syncthreads();
    if (threadIdx.x < 32) {
        const u32 lane = threadIdx.x;
        float mx = ATT_NEG;
        for (u32 s = lane; s < n; s += 32) mx = fmaxf(mx, sld(ml + 2u * s));
        mx = warp_max(mx);
        float den = 0.0f;
        for (u32 s = lane; s < n; s += 32) {
            const float m = sld(ml + 2u * s);
            den += (m == ATT_NEG ? 0.0f : expf(m - mx)) * sld(ml + 2u * s + 1u);
        }
        const float inv = 1.0f / warp_sum(den);
        for (u32 s = lane; s < n; s += 32) {
            const float m = sld(ml + 2u * s);
            sst(ml + 2u * s, (m == ATT_NEG ? 0.0f : expf(m - mx)) * inv);
        }
    }
    __syncthreads();
    const float* part = scratch + (u64)row * n * p.head_dim;
    float* out = (float*)p.out + (u64)row * p.head_dim;
    for (u32 d = threadIdx.x; d < p.head_dim; d += blockDim.x) {
        float o = 0.0f;
        for (u32 s = 0; s < n; s++) o += sld(ml + 2u * s) * gld(part + s * p.head_dim + d);
        gst(out + d, o);
    }
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
        gst(ck + slot * p.kv_dim + c, gld(k + (p.t0 + r) * p.kv_dim + c));
        gst(cv + slot * p.kv_dim + c, gld(v + (p.t0 + r) * p.kv_dim + c));
    }
}
