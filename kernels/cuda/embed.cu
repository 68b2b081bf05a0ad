// embed.cu: the embedding gather, out[t, c] = table[ids[t], col_offset + c] * scale for
// t < tokens, c < width: the token embedding (whole rows) and the per-layer embedding (PLE: one
// layer's columns of each row).
// Layout: table [rows, row_len] in its storage dtype (weights.cuh decodes it: w_at, bit-exact
// with the reference's widening, then one f32 multiply by scale); ids [tokens] u32; out
// [tokens, width] f32. Params: EmbedParams (kernels/src/cuda/embed.rs).
// The host cannot check ids that live on the device (as in the WGSL backend): an id >= rows
// reads nothing and its output row is written as 0 (the engine checks token ids before upload).
// One thread per output element, 64-bit indices, grid-stride loop (any size in one launch).
// Entries: embed_<dtype> for every device dtype (FOR_EACH_DTYPE in weights.cuh).
// Versions: v1.
#pragma once
#include "weights.cuh"

struct EmbedParams {
    u64 table;
    u64 ids;
    u64 out;
    u64 rows;        // table rows: ids from here on are out of range
    u64 row_len;     // elements per table row
    u64 col_offset;  // first gathered column
    u32 tokens;
    u32 width;
    float scale;
    u32 pad;
};

template <int DT>
__device__ __forceinline__ void embed_impl(const EmbedParams& p) {
    const u8* table = (const u8*)p.table;
    const u32* ids = (const u32*)p.ids;
    float* out = (float*)p.out;
    u64 n = (u64)p.tokens * p.width;
    for (u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (u64)gridDim.x * blockDim.x) {
        u64 t = i / p.width, c = i % p.width;
        u64 id = gld(ids + t);
        gst(out + i, id < p.rows ? w_at<DT>(table, id * p.row_len + p.col_offset + c) * p.scale : 0.0f);
    }
}

#define EMBED_ENTRY(name, DT) \
    KERNEL void embed_##name(EmbedParams p) { embed_impl<DT>(p); }
FOR_EACH_DTYPE(EMBED_ENTRY)
