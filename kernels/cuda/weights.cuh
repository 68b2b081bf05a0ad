// weights.cuh: decoding the weight dtypes on the device, for the kernels that read weights
// (matmul, embed, moe), and the warp dot product of one weight row that the decode kernels share.
// A weight is its file's bytes, rows contiguous (the allocation padded to 16 bytes):
//   DT_F32, DT_F16, DT_BF16: plain arrays.
//   Every ggml block format, blocks back to back: Q8_0 34, Q4_0 18, Q4_1 20, Q5_0 22, Q5_1 24
//   bytes per 32 elements; Q2_K 84, Q3_K 110, Q4_K 144, Q5_K 176, Q6_K 210, Q8_K 292 per 256.
//   Rows are whole blocks, so element e of an [n, k] weight is row e / k. Nothing is widened.
// API: w_at<DT>(w, e) -> one element; w_dec<DT, Mem, N>(b, e, v) -> the N (1, 4 or 16) elements
// e.. of the block at b (e % N == 0: they share a scale), read through Mem (global or shared);
// wrow_dot (below) for the decode kernels.
// Values are bit-exact with kernels/src/quant: `scale * q - min` in f32 in that order, with
// `scale = d * sc` first for the K-quants (PTX from NVRTC with --fmad=false, so nothing fuses).
// Every load goes through gld / sld (common.cuh), so the emulator's memory model sees it.
// Versions: v1 (eight dtypes, others widened to f32 at upload); v2 (every format; one decoder
// per format; wrow_dot's coalesced loads); v3 (wrow_dot over R rows per x load).
#pragma once
#include "common.cuh"

// The dtype codes: the `kernel_code` column of the format table (kernels/src/quant/format.rs).
enum DType : int {
    DT_F32 = 0, DT_F16 = 1, DT_BF16 = 2, DT_Q8_0 = 3, DT_Q4_0 = 4, DT_Q4_1 = 5, DT_Q5_0 = 6, DT_Q5_1 = 7,
    DT_Q2_K = 8, DT_Q3_K = 9, DT_Q4_K = 10, DT_Q5_K = 11, DT_Q6_K = 12, DT_Q8_K = 13
};

// The one list of the device dtypes, in code order: X(suffix, DT) for each. Per-dtype entry
// points are `<kernel>_<suffix>`, instantiated from this list here, in emu/*.cpp, and in Rust
// (kernels/src/cuda/kernels.rs `for_device_dtypes!`, the same suffixes in the same order).
#define FOR_EACH_DTYPE_BUT_F32(X)                                                                        \
    X(f16, DT_F16) X(bf16, DT_BF16) X(q8_0, DT_Q8_0) X(q4_0, DT_Q4_0) X(q4_1, DT_Q4_1) X(q5_0, DT_Q5_0) \
    X(q5_1, DT_Q5_1) X(q2_k, DT_Q2_K) X(q3_k, DT_Q3_K) X(q4_k, DT_Q4_K) X(q5_k, DT_Q5_K) X(q6_k, DT_Q6_K)  \
    X(q8_k, DT_Q8_K)
#define FOR_EACH_DTYPE(X) X(f32, DT_F32) FOR_EACH_DTYPE_BUT_F32(X)

// Elements and bytes per block (an element for the floats).
__device__ __forceinline__ constexpr int w_block(int dt) { return dt <= DT_BF16 ? 1 : dt <= DT_Q5_1 ? 32 : 256; }
__device__ __forceinline__ constexpr int w_bytes(int dt) {
    return dt == DT_F32    ? 4
           : dt <= DT_BF16 ? 2
           : dt == DT_Q8_0 ? 34
           : dt == DT_Q4_0 ? 18
           : dt == DT_Q4_1 ? 20
           : dt == DT_Q5_0 ? 22
           : dt == DT_Q5_1 ? 24
           : dt == DT_Q2_K ? 84
           : dt == DT_Q3_K ? 110
           : dt == DT_Q4_K ? 144
           : dt == DT_Q5_K ? 176
           : dt == DT_Q6_K ? 210
                           : 292;
}

// Where a decoder reads: global or shared memory (the memory model tells them apart).
struct GMem {
    template <class T>
    __device__ __forceinline__ static T ld(const T* p) { return gld(p); }
};
struct SMem {
    template <class T>
    __device__ __forceinline__ static T ld(const T* p) { return sld(p); }
};

// The f16 / u32 / f32 at b, byte by byte (block fields are only 2-byte aligned).
template <class M>
__device__ __forceinline__ float w_f16(const u8* b) { return f16_to_f32((u16)(M::ld(b) | M::ld(b + 1) << 8)); }
template <class M>
__device__ __forceinline__ u32 w_u32(const u8* b) {
    return M::ld(b) | M::ld(b + 1) << 8 | M::ld(b + 2) << 16 | (u32)M::ld(b + 3) << 24;
}

// Q4_K / Q5_K sub-block j (< 8) of the block at b: d * scale and dmin * min, ggml's get_scale_min_k4.
template <class M>
__device__ __forceinline__ void k4_scale_min(const u8* b, int j, float& scale, float& min) {
    const u8* s = b + 4;
    int sc, m;
    if (j < 4) {
        sc = M::ld(s + j) & 63;
        m = M::ld(s + (j + 4)) & 63;
    } else {
        sc = (M::ld(s + (j + 4)) & 15) | ((M::ld(s + (j - 4)) >> 6) << 4);
        m = (M::ld(s + (j + 4)) >> 4) | ((M::ld(s + j) >> 6) << 4);
    }
    scale = w_f16<M>(b) * (float)sc;
    min = w_f16<M>(b + 2) * (float)m;
}

// Elements e .. e + N of the block-format block at b (N in 1, 4, 16; e % N == 0, so one scale
// and, for the 32-element formats, one nibble half serve them all), as kernels/src/quant unpacks.
template <int DT, class M, int N>
__device__ __forceinline__ void w_dec(const u8* b, int e, float v[N]) {
    if (DT == DT_Q8_0 || DT == DT_Q8_K) {
        const float d = DT == DT_Q8_0 ? w_f16<M>(b) : __uint_as_float(w_u32<M>(b));
        const u8* q = b + (DT == DT_Q8_0 ? 2 : 4) + e;
#pragma unroll
        for (int i = 0; i < N; i++) v[i] = d * (float)(i8)M::ld(q + i);
    } else if (DT == DT_Q4_0 || DT == DT_Q4_1 || DT == DT_Q5_0 || DT == DT_Q5_1) {
        // d [, m] [, qh: bit e is element e's fifth bit], qs: byte j holds elements j, j + 16.
        const bool has_m = DT == DT_Q4_1 || DT == DT_Q5_1, five = DT == DT_Q5_0 || DT == DT_Q5_1;
        const int qs = 2 + (has_m ? 2 : 0) + (five ? 4 : 0);
        const int off = has_m ? 0 : five ? 16 : 8;  // the symmetric formats' zero point
        const float d = w_f16<M>(b), m = has_m ? w_f16<M>(b + 2) : 0.0f;
        const u32 qh = five ? w_u32<M>(b + qs - 4) : 0;
        const int shift = 4 * (e >> 4);
#pragma unroll
        for (int i = 0; i < N; i++) {
            int q = (M::ld(b + qs + ((e + i) & 15)) >> shift) & 15;
            if (five) q |= ((qh >> (e + i)) & 1) << 4;
            v[i] = has_m ? d * (float)q + m : d * (float)(q - off);
        }
    } else if (DT == DT_Q2_K || DT == DT_Q3_K || DT == DT_Q6_K) {
        // 16 sub-blocks of 16; element e is bit field j = e / 32 % 4 of byte l = e % 32 of the
        // 32-byte row n = e / 128 (2 bits; Q6_K: 4 low bits in ql, 2 high in qh).
        const int n = e >> 7, j = (e >> 5) & 3, l = e & 31, s = e >> 4;
        float sc, mn = 0.0f;
        if (DT == DT_Q2_K) {
            const int x = M::ld(b + s);
            sc = w_f16<M>(b + 80) * (float)(x & 15);
            mn = w_f16<M>(b + 82) * (float)(x >> 4);
        } else if (DT == DT_Q3_K) {
            const u8* scales = b + 96;
            const int lo = s < 8 ? M::ld(scales + s) & 15 : M::ld(scales + (s - 8)) >> 4;
            const int hi = (M::ld(scales + (8 + (s & 3))) >> (2 * (s >> 2))) & 3;
            sc = w_f16<M>(b + 108) * (float)((lo | hi << 4) - 32);
        } else {
            sc = w_f16<M>(b + 208) * (float)(i8)M::ld(b + (192 + s));
        }
#pragma unroll
        for (int i = 0; i < N; i++) {
            int q;
            if (DT == DT_Q2_K) {
                q = (M::ld(b + (16 + 32 * n + l + i)) >> (2 * j)) & 3;
            } else if (DT == DT_Q3_K) {
                q = (M::ld(b + (32 + 32 * n + l + i)) >> (2 * j)) & 3;
                if (((M::ld(b + (l + i)) >> (4 * n + j)) & 1) == 0) q -= 4;
            } else {
                const int lo = (M::ld(b + (64 * n + 32 * (j & 1) + l + i)) >> (4 * (j >> 1))) & 15;
                q = (lo | ((M::ld(b + (128 + 32 * n + l + i)) >> (2 * j)) & 3) << 4) - 32;
            }
            v[i] = sc * (float)q - mn;
        }
    } else if (DT == DT_Q4_K || DT == DT_Q5_K) {
        // 8 sub-blocks of 32; element e is nibble h = e / 32 % 2 of byte l = e % 32 of the
        // 32-byte row g = e / 64 (Q5_K: fifth bit 2 g + h of qh[l]).
        const int g = e >> 6, h = (e >> 5) & 1, l = e & 31;
        float sc, mn;
        k4_scale_min<M>(b, e >> 5, sc, mn);
        const int qs = DT == DT_Q4_K ? 16 : 48;
#pragma unroll
        for (int i = 0; i < N; i++) {
            int q = (M::ld(b + (qs + 32 * g + l + i)) >> (4 * h)) & 15;
            if (DT == DT_Q5_K) q |= ((M::ld(b + (16 + l + i)) >> (2 * g + h)) & 1) << 4;
            v[i] = sc * (float)q - mn;
        }
    }
}

// Element e of a weight.
template <int DT>
__device__ __forceinline__ float w_at(const u8* w, u64 e) {
    if (DT == DT_F32) return gld((const float*)w + e);
    if (DT == DT_F16) return f16_to_f32(gld((const u16*)w + e));
    if (DT == DT_BF16) return bf16_to_f32(gld((const u16*)w + e));
    float v[1];
    w_dec<DT, GMem, 1>(w + e / w_block(DT) * w_bytes(DT), (int)(e % w_block(DT)), v);
    return v[0];
}

// ---------------------------------------------------------------------------------------------
// wrow_dot (v3): one warp's partial dot products of R weight rows (the first at flat element
// `row`, the next `stride` elements on; rows r >= nr are skipped) with the m <= MT rows of x
// (x + i * xs), added into acc[r][i] (per lane; the caller sums the lanes). Split-K: the warp
// takes the units u with u % parts == part. Each x load serves all R rows ("x in registers":
// R times fewer x requests than a row at a time, v2).
// Every warp-wide load is contiguous, so a request uses whole 32-byte sectors:
// - F32 / F16 / BF16 with `vec` (len % 4 == 0, w and x 16-byte aligned): a unit is 32 lanes x 4
//   elements, lane l the 16 (f32) or 8 (f16) bytes at 4 l, x as one float4 per lane.
// - other float rows: a unit is 32 elements, one per lane.
// - block formats: a unit is a tile of WROW_TILE elements of each row, staged with 16-byte loads
//   (from the 16-byte boundary at or below the tile's first byte) into the warp's shared buffer
//   `stage` (R * WROW_STAGE bytes); lane l then decodes elements 4 l + 128 q (q < 4) from shared
//   memory and reads x as float4, so x too comes in 512-byte runs. Rows are whole blocks, so a
//   tile is too, but for the last.
// The staging reads at most 15 bytes past a row's end: inside the next row, or inside the
// allocation's padding (kernels/src/cuda/weights.rs pads every weight to 16 bytes).
#define WROW_TILE 512
#define WROW_STAGE 624  // bytes: the largest tile (Q8_K: 584) + 30 bytes of alignment slack, to 16

// acc[r][i] += x4 . v for the rows of x that exist.
template <int MT>
__device__ __forceinline__ void wrow_fma(float acc[MT], const float4 (&a)[MT], const float v[4], u32 m) {
#pragma unroll
    for (int i = 0; i < MT; i++)
        if (i < (int)m) acc[i] = fmaf(a[i].w, v[3], fmaf(a[i].z, v[2], fmaf(a[i].y, v[1], fmaf(a[i].x, v[0], acc[i]))));
}

template <int DT, int MT, int R>
__device__ __forceinline__ void wrow_dot(const u8* w, u64 row, u64 stride, u32 nr, u32 len, const float* x, u64 xs,
                                         u32 m, bool vec, u32 part, u32 parts, u8* stage, float acc[R][MT]) {
    const u32 lane = threadIdx.x & 31;
    if (DT == DT_F32 || DT == DT_F16 || DT == DT_BF16) {
        if (vec) {
            const u32 units = len / 128;  // whole units; the rest (len % 128) lane by lane below
            for (u32 u = part; u <= units; u += parts) {
                const u32 e = u * 128 + lane * 4;
                if (e >= len) continue;
                float4 a[MT];
#pragma unroll
                for (int i = 0; i < MT; i++)
                    if (i < (int)m) a[i] = gld(vec_at<const float4>(x + i * xs + e));
#pragma unroll
                for (int r = 0; r < R; r++) {
                    if (r >= (int)nr) break;
                    const u64 at = row + r * stride + e;
                    float v[4];
                    if (DT == DT_F32) {
                        uint4 q = gld(vec_at<const uint4>(w + at * 4));
                        v[0] = __uint_as_float(q.x), v[1] = __uint_as_float(q.y);
                        v[2] = __uint_as_float(q.z), v[3] = __uint_as_float(q.w);
                    } else {
                        uint2 q = gld(vec_at<const uint2>(w + at * 2));
                        const u32 h[2] = {q.x, q.y};
#pragma unroll
                        for (int i = 0; i < 2; i++) {
                            v[2 * i] = DT == DT_BF16 ? __uint_as_float(h[i] << 16) : f16_to_f32((u16)(h[i] & 0xffffu));
                            v[2 * i + 1] =
                                DT == DT_BF16 ? __uint_as_float(h[i] & 0xffff0000u) : f16_to_f32((u16)(h[i] >> 16));
                        }
                    }
                    wrow_fma<MT>(acc[r], a, v, m);
                }
            }
        } else {
            for (u32 e = part * 32 + lane; e < len; e += parts * 32) {
                float a[MT];
#pragma unroll
                for (int i = 0; i < MT; i++)
                    if (i < (int)m) a[i] = gld(x + i * xs + e);
#pragma unroll
                for (int r = 0; r < R; r++) {
                    if (r >= (int)nr) break;
                    const float v = w_at<DT>(w, row + r * stride + e);
#pragma unroll
                    for (int i = 0; i < MT; i++)
                        if (i < (int)m) acc[r][i] = fmaf(a[i], v, acc[r][i]);
                }
            }
        }
        return;
    }
    constexpr int B = w_block(DT), S = w_bytes(DT);
    for (u32 t0 = part * WROW_TILE; t0 < len; t0 += parts * WROW_TILE) {
        const u32 tlen = min((u32)WROW_TILE, len - t0);
        __syncwarp();  // every lane is done with the previous tile
        u32 skew[R];   // each row's tile starts (first - base) bytes into its buffer
#pragma unroll
        for (int r = 0; r < R; r++) {
            if (r >= (int)nr) break;
            const u8* first = w + (row + r * stride + t0) / B * S;
            const u8* base = (const u8*)((u64)first & ~(u64)15);
            const u32 chunks = (u32)(first + tlen / B * S - base + 15) / 16;
            skew[r] = (u32)(first - base);
            for (u32 c = lane; c < chunks; c += 32)
                sst(vec_at<uint4>(stage + r * WROW_STAGE + 16 * c), gld(vec_at<const uint4>(base + 16 * c)));
        }
        __syncwarp();
#pragma unroll
        for (u32 q = 0; q < WROW_TILE / 128; q++) {
            const u32 i = q * 128 + lane * 4;
            if (i < tlen) {
                float4 a[MT];
#pragma unroll
                for (int j = 0; j < MT; j++)
                    if (j < (int)m) a[j] = gld(vec_at<const float4>(x + j * xs + t0 + i));
#pragma unroll
                for (int r = 0; r < R; r++) {
                    if (r >= (int)nr) break;
                    float v[4];
                    w_dec<DT, SMem, 4>(stage + r * WROW_STAGE + skew[r] + i / B * S, (int)(i % B), v);
                    wrow_fma<MT>(acc[r], a, v, m);
                }
            }
        }
    }
}
