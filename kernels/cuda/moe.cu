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
//   routed pair r = t * top_k + j; one group of GROUP = 8 lanes per (r, i), 4 per warp.
// - moe_down: out[t, c] = sum_j weights[t, j] * (down[e][c] . h[t * top_k + j]); one group of 8
//   lanes per (t, c). Each lane sums its segments of every slot j in j order, then a group sum: a
//   fixed order, no atomics, so the result is deterministic.
//   Layout: x, out [tokens, hidden] f32; ids, weights [tokens, top_k]; h [tokens * top_k, inter]
//   f32 scratch; gate_up [n_experts, 2 * inter, hidden] (first inter rows gate), down
//   [n_experts, hidden, inter], in their storage dtypes.
//   Dot products: each lane of a group takes whole 32-element segments (w_load32; w_at for a
//   partial last one, only possible for F32/F16/BF16 rows), strided by 8 segments, then the
//   group's sum (3 shuffles; a group reads 8 neighbouring segments of its row at a time).
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
// Versions: route v1; experts v3 (v1: one warp per output element; v2: 8 lanes per output
// element, 4 per warp: a quarter of the shuffles; v3: prefill grouped by expert).
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
        for (u32 e = lane; e < n; e += 32) m = fmaxf(m, s[e]);
        m = warp_max(m);
        float sum = 0.0f;
        for (u32 e = lane; e < n; e += 32) sum += expf(s[e] - m);
        sum = warp_sum(sum);

        u32* ids_t = ids + (u64)t * p.top_k;
        float* w_t = weights + (u64)t * p.top_k;
        u64 prev = 0;
        for (u32 j = 0; j < p.top_k; j++) {
            u64 best = 0;  // no candidate
            for (u32 e = lane; e < n; e += 32) {
                u64 r = moe_rank(expf(s[e] - m) / sum, e);
                if ((j == 0 || r < prev) && r > best) best = r;
            }
            best = warp_max_u64(best);
            prev = best;
            // Every expert ranks below the previous while j < top_k <= n_experts, so one is
            // always found; the clamp only keeps a broken invariant from reading out of bounds.
            u32 e = min(~(u32)best, n - 1);
            if (lane == 0) {
                ids_t[j] = e;
                w_t[j] = expf(s[e] - m) / sum;
            }
        }
        if (lane == 0) {
            float ksum = 0.0f;
            for (u32 j = 0; j < p.top_k; j++) ksum += w_t[j];
            for (u32 j = 0; j < p.top_k; j++) w_t[j] = w_t[j] / ksum * scale[ids_t[j]];
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

// Segment s (elements 32 s .. min(32 s + 32, len)) of the dot product of the weight row at flat
// element `row` with x[0 .. len]. A block-format row is whole blocks, so its segments are whole
// and start at multiples of 32; only F32/F16/BF16 rows can end in a partial segment.
template <int DT>
__device__ __forceinline__ float seg_dot(const u8* w, u64 row, const float* x, u32 len, u32 s) {
    u32 h0 = s * 32;
    float acc = 0.0f;
    if (h0 + 32 <= len) {
        float v[32];
        w_load32<DT>(w, row + h0, v);
#pragma unroll
        for (int k = 0; k < 32; k++) acc += v[k] * x[h0 + k];
    } else {
        for (u32 h = h0; h < len; h++) acc += w_at<DT>(w, row + h) * x[h];
    }
    return acc;
}

// Lanes per output row: a warp computes ROWS_PER_WARP rows at once, each by a group of GROUP
// consecutive lanes (neighbouring segments of one row), reduced within the group by
// log2(GROUP) shuffles.
constexpr u32 GROUP = 8, ROWS_PER_WARP = 32 / GROUP;

// Sum over this lane's group of GROUP lanes (every lane of the warp takes part).
__device__ __forceinline__ float group_sum(float v) {
#pragma unroll
    for (u32 o = GROUP / 2; o > 0; o >>= 1) v += __shfl_xor_sync(FULL_MASK, v, o);
    return v;
}

template <int DT>
__device__ __forceinline__ void gate_up_impl(const MoeParams& p) {
    const float* x = (const float*)p.x;
    const u8* w = (const u8*)p.w;
    const u32* ids = (const u32*)p.ids;
    float* h = (float*)p.h;
    const u32 lane = threadIdx.x & 31, sub = lane % GROUP, warps = blockDim.x >> 5;
    const u32 nseg = (p.hidden + 31) / 32;
    const u64 rows = (u64)p.tokens * p.top_k * p.inter;  // (pair, i)
    const u64 warp_items = (rows + ROWS_PER_WARP - 1) / ROWS_PER_WARP;
    // Warp-uniform loop: the warp's groups work on ROWS_PER_WARP consecutive (pair, i).
    for (u64 wi = (u64)blockIdx.x * warps + (threadIdx.x >> 5); wi < warp_items; wi += (u64)gridDim.x * warps) {
        u64 r = wi * ROWS_PER_WARP + lane / GROUP;
        float g = 0.0f, u = 0.0f;
        u64 pair = 0;
        u32 i = 0;
        if (r < rows) {
            pair = p.order ? ((const u32*)p.order)[r / p.inter] : r / p.inter;
            i = (u32)(r % p.inter);
            u32 e = ids[pair];
            if (e < p.n_experts) {
                const float* xt = x + pair / p.top_k * p.hidden;
                u64 gate = ((u64)e * 2 * p.inter + i) * p.hidden;
                u64 up = gate + (u64)p.inter * p.hidden;
                for (u32 s = sub; s < nseg; s += GROUP) {
                    g += seg_dot<DT>(w, gate, xt, p.hidden, s);
                    u += seg_dot<DT>(w, up, xt, p.hidden, s);
                }
            }
        }
        g = group_sum(g);
        u = group_sum(u);
        // An out-of-range expert leaves g = u = 0: h = 0.
        if (r < rows && sub == 0) h[pair * p.inter + i] = moe_gelu_tanh(g) * u;
    }
}

template <int DT>
__device__ __forceinline__ void down_impl(const MoeParams& p) {
    const u8* w = (const u8*)p.w;
    const u32* ids = (const u32*)p.ids;
    const float* weights = (const float*)p.weights;
    const float* h = (const float*)p.h;
    float* out = (float*)p.out;
    const u32 lane = threadIdx.x & 31, sub = lane % GROUP, warps = blockDim.x >> 5;
    const u32 nseg = (p.inter + 31) / 32;
    const u64 rows = (u64)p.tokens * p.hidden;  // (t, c)
    const u64 warp_items = (rows + ROWS_PER_WARP - 1) / ROWS_PER_WARP;
    for (u64 wi = (u64)blockIdx.x * warps + (threadIdx.x >> 5); wi < warp_items; wi += (u64)gridDim.x * warps) {
        u64 r = wi * ROWS_PER_WARP + lane / GROUP;
        float acc = 0.0f;
        if (r < rows) {
            u64 t = r / p.hidden;
            u32 c = (u32)(r % p.hidden);
            // Slots in j order, each lane its own segments: a fixed summation order.
            for (u32 j = 0; j < p.top_k; j++) {
                u64 pair = t * p.top_k + j;
                u32 e = ids[pair];
                if (e < p.n_experts) {
                    u64 row = ((u64)e * p.hidden + c) * p.inter;
                    const float* hp = h + pair * p.inter;
                    float d = 0.0f;
                    for (u32 s = sub; s < nseg; s += GROUP) d += seg_dot<DT>(w, row, hp, p.inter, s);
                    acc += weights[pair] * d;
                }
            }
        }
        acc = group_sum(acc);
        if (r < rows && sub == 0) out[r] = acc;
    }
}

// y[pair, c] = down[e][c] . h[pair] for the pairs in expert order (prefill).
template <int DT>
__device__ __forceinline__ void down_pairs_impl(const MoeParams& p) {
    const u8* w = (const u8*)p.w;
    const u32* ids = (const u32*)p.ids;
    const u32* order = (const u32*)p.order;
    const float* h = (const float*)p.h;
    float* y = (float*)p.y;
    const u32 lane = threadIdx.x & 31, sub = lane % GROUP, warps = blockDim.x >> 5;
    const u32 nseg = (p.inter + 31) / 32;
    const u64 rows = (u64)p.tokens * p.top_k * p.hidden;  // (sorted pair, c)
    const u64 warp_items = (rows + ROWS_PER_WARP - 1) / ROWS_PER_WARP;
    for (u64 wi = (u64)blockIdx.x * warps + (threadIdx.x >> 5); wi < warp_items; wi += (u64)gridDim.x * warps) {
        u64 r = wi * ROWS_PER_WARP + lane / GROUP;
        float d = 0.0f;
        u64 pair = 0;
        u32 c = 0;
        if (r < rows) {
            pair = order[r / p.hidden];
            c = (u32)(r % p.hidden);
            u32 e = ids[pair];
            if (e < p.n_experts) {
                u64 row = ((u64)e * p.hidden + c) * p.inter;
                const float* hp = h + pair * p.inter;
                for (u32 s = sub; s < nseg; s += GROUP) d += seg_dot<DT>(w, row, hp, p.inter, s);
            }
        }
        d = group_sum(d);
        if (r < rows && sub == 0) y[pair * p.hidden + c] = d;
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
            acc += weights[pair] * y[pair * p.hidden + c];
        }
        out[r] = acc;
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
    for (u32 e = threadIdx.x; e <= n; e += blockDim.x) counts[e] = 0;
    __syncthreads();
    for (u32 r = threadIdx.x; r < p.pairs; r += blockDim.x) slot[r] = atomicAdd(&counts[min(ids[r], n)], 1u);
    __syncthreads();
    if (threadIdx.x == 0) {
        u32 run = 0;
        for (u32 e = 0; e <= n; e++) {
            u32 c = counts[e];
            counts[e] = run;
            run += c;
        }
    }
    __syncthreads();
    for (u32 r = threadIdx.x; r < p.pairs; r += blockDim.x) order[counts[min(ids[r], n)] + slot[r]] = r;
}

#define MOE_ENTRIES(name, DT)                                                \
    KERNEL void moe_gate_up_##name(MoeParams p) { gate_up_impl<DT>(p); }       \
    KERNEL void moe_down_##name(MoeParams p) { down_impl<DT>(p); }             \
    KERNEL void moe_down_pairs_##name(MoeParams p) { down_pairs_impl<DT>(p); }

FOR_EACH_DTYPE(MOE_ENTRIES)
