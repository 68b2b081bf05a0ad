// moe.cu: the mixture-of-experts router and the selected experts' FFNs.
//
// moe_route: per token, softmax over the n_experts router scores (f32: max, sum of
// exp(s - max), p = exp(s - max) / sum), the top_k most probable experts (probability descending,
// ties to the lower id: the order of `f32::total_cmp`, through an order-preserving u32 key packed
// with ~id into one u64 rank, larger = first), their probabilities renormalised to sum 1 (summed
// in rank order, as the reference does), each times per_expert_scale[e].
//   Layout: scores [tokens, n_experts] f32; scale [n_experts] f32 (1-D weights are widened at
//   upload); ids [tokens, top_k] u32 and weights [tokens, top_k] f32, written.
//   One warp per token (grid-stride over tokens), warp collectives only. A probability is
//   recomputed from its score wherever needed (the same arithmetic, so the same value), so no
//   per-expert storage is needed for any n_experts. The top k are found in k rounds: each takes
//   the best rank below the previous round's (a strided scan, then a u64 warp max). Lane 0
//   writes each id and probability, then rescales its own writes.
//
// moe_experts: out[t] = sum_j weights[t, j] * down[e] (gelu_tanh(g) * u), e = ids[t, j],
// [g | u] = gate_up[e] x[t]; only the selected experts' rows are read. Two kernels, each
// templated on its weight's dtype (weights.cuh codes; entries moe_gate_up_<dt>, moe_down_<dt>):
// - moe_gate_up: h[r, i] = gelu_tanh(gate_up[e][i] . x[t]) * (gate_up[e][inter + i] . x[t]) for
//   routed pair r = t * top_k + j; one warp per (r, i).
// - moe_down: out[t, c] = sum_j weights[t, j] * (down[e][c] . h[t * top_k + j]); one warp per
//   (t, c), slots summed in j order: a fixed order, no atomics, so the result is deterministic.
//   Layout: x, out [tokens, hidden] f32; ids, weights [tokens, top_k]; h [tokens * top_k, inter]
//   f32 scratch; gate_up [n_experts, 2 * inter, hidden] (first inter rows gate), down
//   [n_experts, hidden, inter], in their storage dtypes.
//   Dot products: one warp per output element, wrow_dot (weights.cuh) then a warp sum.
//   Ids live on the device, so the host cannot check them (as in the WGSL backend): a pair whose
//   id is >= n_experts reads nothing and contributes nothing (its h row is written as 0).
// Params: RouteParams, MoeParams (kernels/src/cuda/moe.rs).
// Prefill (tokens > 1) is grouped by expert: moe_sort orders the routed pairs by expert id (one
// block: counts by atomics, an exclusive scan, scatter), moe_gate_up takes the pairs in that
// order, moe_down_pairs_<dt> writes y[pair, c] = down[e][c] . h[pair] in that order too, and
// moe_combine sums out[t, c] = sum_j weights[t, j] y[t * top_k + j, c] in j order. Consecutive
// blocks then work on the same expert, so its rows come from DRAM about once per chunk (then
// from L2) instead of once per (token, slot). The order within an expert does not change any
// value: each pair is computed on its own.
// Versions: route v1; experts v4 (v1: one warp per output element; v2: 8 lanes per output
// element, 4 per warp: a quarter of the shuffles; v3: prefill grouped by expert; v4: a warp per
// output element again, through wrow_dot: coalesced loads, where v3's lanes read their blocks
// byte by byte at the block stride, 12-19% of the fetched sectors used).
#pragma once
#include "weights.cuh"

struct RouteParams {
    u64 scores;
    u64 scale;
    u64 ids;
    u64 weights;
    u32 tokens;
    u32 n_experts;
    u32 top_k;
    u32 pad;
};

// The rank key of a probability: u32 order of keys = `f32::total_cmp` order of values.
__device__ __forceinline__ u32 moe_rank_key(float v) {
    u32 b = __float_as_uint(v);
    return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}

// (probability, expert) as one u64 whose order is the routing order: larger ranks first (higher
// probability, then the lower id). Never 0 for an id below 2^32 - 1.
__device__ __forceinline__ u64 moe_rank(float prob, u32 e) { return (u64)moe_rank_key(prob) << 32 | (u64)(~e); }

__device__ __forceinline__ u64 warp_max_u64(u64 v) {
    for (int o = 16; o > 0; o >>= 1) {
        u64 w = __shfl_xor_sync(FULL_MASK, v, o);
        v = w > v ? w : v;
    }
    return v;
}

KERNEL void moe_route(RouteParams p) {
    const float* scores = (const float*)p.scores;
    const float* scale = (const float*)p.scale;
    u32* ids = (u32*)p.ids;
    float* weights = (float*)p.weights;
    const u32 lane = threadIdx.x & 31, warps = blockDim.x >> 5, n = p.n_experts;
    // Warp-uniform loop: the whole warp works on one token.
    for (u32 t = blockIdx.x * warps + (threadIdx.x >> 5); t < p.tokens; t += gridDim.x * warps) {
        const float* s = scores + (u64)t * n;
        float m = __int_as_float((int)0xff800000u);  // -inf, as the reference's fold
        for (u32 e = lane; e < n; e += 32) m = fmaxf(m, gld(s + e));
        m = warp_max(m);
        float sum = 0.0f;
        for (u32 e = lane; e < n; e += 32) sum += expf(gld(s + e) - m);
        sum = warp_sum(sum);

        u32* ids_t = ids + (u64)t * p.top_k;
        float* w_t = weights + (u64)t * p.top_k;
        u64 prev = 0;
        for (u32 j = 0; j < p.top_k; j++) {
            u64 best = 0;  // no candidate
            for (u32 e = lane; e < n; e += 32) {
                u64 r = moe_rank(expf(gld(s + e) - m) / sum, e);
                if ((j == 0 || r < prev) && r > best) best = r;
            }
            best = warp_max_u64(best);
            prev = best;
            // Every expert ranks below the previous while j < top_k <= n_experts, so one is
            // always found; the clamp only keeps a broken invariant from reading out of bounds.
            u32 e = min(~(u32)best, n - 1);
            if (lane == 0) {
                gst(ids_t + j, e);
                gst(w_t + j, expf(gld(s + e) - m) / sum);
            }
        }
        if (lane == 0) {
            float ksum = 0.0f;
            for (u32 j = 0; j < p.top_k; j++) ksum += gld(w_t + j);
            for (u32 j = 0; j < p.top_k; j++) gst(w_t + j, gld(w_t + j) / ksum * gld(scale + gld(ids_t + j)));
        }
    }
}

struct MoeParams {
    u64 x;        // [tokens, hidden]
    u64 w;        // gate_up (moe_gate_up) or down (moe_down)
    u64 ids;      // [tokens, top_k]
    u64 weights;  // [tokens, top_k]
    u64 h;        // [tokens * top_k, inter] scratch
    u64 out;      // [tokens, hidden]
    u64 order;    // [tokens * top_k] u32: pairs sorted by expert (0: in pair order)
    u64 y;        // [tokens * top_k, hidden] scratch of moe_down_pairs
    u32 tokens;
    u32 top_k;
    u32 hidden;
    u32 inter;
    u32 n_experts;
    u32 pad;
};

// gelu_tanh as elementwise.cu's: the tanh argument clamped to +-10 (tanh(10) is 1 in f32).
__device__ __forceinline__ float moe_gelu_tanh(float g) {
    float inner = 0.7978845608028654f * (g + 0.044715f * g * g * g);
    return 0.5f * g * (1.0f + tanhf(fminf(fmaxf(inner, -10.0f), 10.0f)));
}

// Warps per block (THREADS in kernels/src/cuda/moe.rs): one staging buffer each.
constexpr u32 MOE_WARPS = 8;

// The dot product of the weight row at flat element `row` (len elements) with x[0 .. len], by
// the whole warp (wrow_dot, then a warp sum: every lane gets it).
template <int DT>
__device__ __forceinline__ float row_dot(const u8* w, u64 row, const float* x, u32 len, u8* stage) {
    float acc[1][1] = {};
    const bool vec = (len & 3) == 0 && (((u64)w | (u64)x) & 15) == 0;
    wrow_dot<DT, 1, 1>(w, row, 0, 1, len, x, 0, 1, vec, 0, 1, stage, acc);
    return warp_sum(acc[0][0]);
}

template <int DT>
__device__ __forceinline__ void gate_up_impl(const MoeParams& p) {
    __shared__ uint4 stage[MOE_WARPS][WROW_STAGE / 16];
    const float* x = (const float*)p.x;
    const u8* w = (const u8*)p.w;
    const u32* ids = (const u32*)p.ids;
    float* h = (float*)p.h;
    const u32 lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    const u64 rows = (u64)p.tokens * p.top_k * p.inter;  // (pair, i)
    // Warp-uniform loop: the whole warp works on one (pair, i).
    for (u64 r = (u64)blockIdx.x * warps + warp; r < rows; r += (u64)gridDim.x * warps) {
        const u64 pair = p.order ? gld((const u32*)p.order + r / p.inter) : r / p.inter;
        const u32 i = (u32)(r % p.inter), e = gld(ids + pair);
        float g = 0.0f, u = 0.0f;
        if (e < p.n_experts) {
            const float* xt = x + pair / p.top_k * p.hidden;
            const u64 gate = ((u64)e * 2 * p.inter + i) * p.hidden;
            g = row_dot<DT>(w, gate, xt, p.hidden, (u8*)stage[warp]);
            u = row_dot<DT>(w, gate + (u64)p.inter * p.hidden, xt, p.hidden, (u8*)stage[warp]);
        }
        // An out-of-range expert leaves g = u = 0: h = 0.
        if (lane == 0) gst(h + pair * p.inter + i, moe_gelu_tanh(g) * u);
    }
}

// down[e][c] . h[pair] for expert e = ids[pair] (0 for an id out of range).
template <int DT>
__device__ __forceinline__ float down_dot(const MoeParams& p, u64 pair, u32 c, u8* stage) {
    const u32 e = gld((const u32*)p.ids + pair);
    if (e >= p.n_experts) return 0.0f;
    return row_dot<DT>((const u8*)p.w, ((u64)e * p.hidden + c) * p.inter, (const float*)p.h + pair * p.inter, p.inter,
                       stage);
}

template <int DT>
__device__ __forceinline__ void down_impl(const MoeParams& p) {
    __shared__ uint4 stage[MOE_WARPS][WROW_STAGE / 16];
    const float* weights = (const float*)p.weights;
    float* out = (float*)p.out;
    const u32 lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    const u64 rows = (u64)p.tokens * p.hidden;  // (t, c)
    for (u64 r = (u64)blockIdx.x * warps + warp; r < rows; r += (u64)gridDim.x * warps) {
        const u64 t = r / p.hidden;
        const u32 c = (u32)(r % p.hidden);
        // Slots in j order: a fixed summation order.
        float acc = 0.0f;
        for (u32 j = 0; j < p.top_k; j++) {
            const u64 pair = t * p.top_k + j;
            acc += gld(weights + pair) * down_dot<DT>(p, pair, c, (u8*)stage[warp]);
        }
        if (lane == 0) gst(out + r, acc);
    }
}

// y[pair, c] = down[e][c] . h[pair] for the pairs in expert order (prefill).
template <int DT>
__device__ __forceinline__ void down_pairs_impl(const MoeParams& p) {
    __shared__ uint4 stage[MOE_WARPS][WROW_STAGE / 16];
    const u32* order = (const u32*)p.order;
    float* y = (float*)p.y;
    const u32 lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    const u64 rows = (u64)p.tokens * p.top_k * p.hidden;  // (sorted pair, c)
    for (u64 r = (u64)blockIdx.x * warps + warp; r < rows; r += (u64)gridDim.x * warps) {
        const u64 pair = gld(order + r / p.hidden);
        const u32 c = (u32)(r % p.hidden);
        const float d = down_dot<DT>(p, pair, c, (u8*)stage[warp]);
        if (lane == 0) gst(y + pair * p.hidden + c, d);
    }
}

// out[t, c] = sum_j weights[t, j] y[t * top_k + j, c], slots in j order (prefill).
KERNEL void moe_combine(MoeParams p) {
    const float* weights = (const float*)p.weights;
    const float* y = (const float*)p.y;
    float* out = (float*)p.out;
    const u64 n = (u64)p.tokens * p.hidden;
    for (u64 r = (u64)blockIdx.x * blockDim.x + threadIdx.x; r < n; r += (u64)gridDim.x * blockDim.x) {
        u64 t = r / p.hidden, c = r % p.hidden;
        float acc = 0.0f;
        for (u32 j = 0; j < p.top_k; j++) {
            u64 pair = t * p.top_k + j;
            acc += gld(weights + pair) * gld(y + pair * p.hidden + c);
        }
        gst(out + r, acc);
    }
}

struct SortParams {
    u64 ids;     // [pairs] expert per routed pair
    u64 order;   // [pairs] written: pair indices sorted by expert (ids out of range last)
    u64 slot;    // [pairs] scratch: each pair's place among its expert's
    u64 counts;  // [n_experts + 1] scratch: counts, then first positions
    u32 pairs, n_experts;
};

// One block: counts per expert (atomics; the order within an expert is free), an exclusive scan
// by one thread, then every pair to its place. Global writes are visible to the block after
// each __syncthreads.
KERNEL void moe_sort(SortParams p) {
    const u32* ids = (const u32*)p.ids;
    u32* order = (u32*)p.order;
    u32* slot = (u32*)p.slot;
    u32* counts = (u32*)p.counts;
    const u32 n = p.n_experts;
    for (u32 e = threadIdx.x; e <= n; e += blockDim.x) gst(counts + e, 0u);
    __syncthreads();
    for (u32 r = threadIdx.x; r < p.pairs; r += blockDim.x)
        gst(slot + r, atomicAdd(&counts[min(gld(ids + r), n)], 1u));  // atomics never race: not noted
    __syncthreads();
    if (threadIdx.x == 0) {
        u32 run = 0;
        for (u32 e = 0; e <= n; e++) {
            u32 c = gld(counts + e);
            gst(counts + e, run);
            run += c;
        }
    }
    __syncthreads();
    for (u32 r = threadIdx.x; r < p.pairs; r += blockDim.x)
        gst(order + gld(counts + min(gld(ids + r), n)) + gld(slot + r), r);
}

#define MOE_ENTRIES(name, DT)                                                \
    KERNEL void moe_gate_up_##name(MoeParams p) { gate_up_impl<DT>(p); }       \
    KERNEL void moe_down_##name(MoeParams p) { down_impl<DT>(p); }             \
    KERNEL void moe_down_pairs_##name(MoeParams p) { down_pairs_impl<DT>(p); }

FOR_EACH_DTYPE(MOE_ENTRIES)
