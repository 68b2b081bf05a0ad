// weights.cuh: decoding the weight dtypes on the device, for the kernels that read weights
// (matmul, embed, moe). A weight is its file's bytes, rows contiguous:
//   DT_F32, DT_F16, DT_BF16: plain arrays.
//   DT_Q8_0, DT_Q4_0, DT_Q5_0, DT_Q4_K, DT_Q6_K: ggml's blocks back to back (34, 18, 22, 144,
//   210 bytes). Rows are whole blocks, so element e of an [n, k] weight is row e / k.
// Other block formats are widened to f32 at upload (kernels/src/cuda/weights.rs).
// API: w_at<DT>(w, e) -> one element; w_load32<DT>(w, e0, v) -> the 32 elements from e0 (e0 a
// multiple of 32 for the block dtypes, any e0 for the float ones).
// Values are bit-exact with kernels/src/quant: `scale * q - min` in f32 in that order, with
// `scale = d * sc` first for the K-quants.
// Every load goes through gld (common.cuh), so the emulator's memory model sees it.
// Versions: v1.
#pragma once
#include "common.cuh"

// The dtype codes: the `kernel_code` column of the format table (kernels/src/quant/format.rs).
enum DType : int { DT_F32 = 0, DT_F16 = 1, DT_BF16 = 2, DT_Q8_0 = 3, DT_Q4_0 = 4, DT_Q5_0 = 5, DT_Q4_K = 6, DT_Q6_K = 7 };

// The one list of the device dtypes, in code order: X(suffix, DT) for each. Per-dtype entry
// points are `<kernel>_<suffix>`, instantiated from this list here, in emu/*.cpp, and in Rust
// (kernels/src/cuda/kernels.rs `for_device_dtypes!`, the same suffixes in the same order).
#define FOR_EACH_DTYPE_BUT_F32(X) \
    X(f16, DT_F16) X(bf16, DT_BF16) X(q8_0, DT_Q8_0) X(q4_0, DT_Q4_0) X(q5_0, DT_Q5_0) X(q4_k, DT_Q4_K) X(q6_k, DT_Q6_K)
#define FOR_EACH_DTYPE(X) X(f32, DT_F32) FOR_EACH_DTYPE_BUT_F32(X)

__device__ __forceinline__ float w_f16(const u8* p) { return f16_to_f32((u16)(gld(p + 0) | gld(p + 1) << 8)); }

// Q4_K sub-block j (< 8) of the block at b: (d * scale, dmin * min), ggml's get_scale_min_k4.
__device__ __forceinline__ float2 q4k_scale_min(const u8* b, int j) {
    const u8* s = b + 4;
    int sc, m;
    if (j < 4) {
        sc = gld(s + j) & 63;
        m = gld(s + (j + 4)) & 63;
    } else {
        sc = (gld(s + (j + 4)) & 15) | ((gld(s + (j - 4)) >> 6) << 4);
        m = (gld(s + (j + 4)) >> 4) | ((gld(s + j) >> 6) << 4);
    }
    return float2{w_f16(b) * (float)sc, w_f16(b + 2) * (float)m};
}

template <int DT>
__device__ __forceinline__ float w_at(const u8* w, u64 e) {
    if (DT == DT_F32) return gld((const float*)w + e);
    if (DT == DT_F16) return f16_to_f32(gld((const u16*)w + e));
    if (DT == DT_BF16) return bf16_to_f32(gld((const u16*)w + e));
    if (DT == DT_Q8_0) {
        const u8* b = w + (e >> 5) * 34;
        return w_f16(b) * (float)(i8)gld(b + (2 + (e & 31)));
    }
    if (DT == DT_Q4_0) {
        const u8* b = w + (e >> 5) * 18;
        int j = e & 31;
        int q = (gld(b + (2 + (j & 15))) >> ((j >> 4) * 4)) & 15;
        return w_f16(b) * (float)(q - 8);
    }
    if (DT == DT_Q5_0) {
        const u8* b = w + (e >> 5) * 22;
        int j = e & 31;
        u32 qh = gld(b + 2) | gld(b + 3) << 8 | gld(b + 4) << 16 | (u32)gld(b + 5) << 24;
        int q = ((gld(b + (6 + (j & 15))) >> ((j >> 4) * 4)) & 15) | ((qh >> j) & 1) << 4;
        return w_f16(b) * (float)(q - 16);
    }
    if (DT == DT_Q4_K) {
        const u8* b = w + (e >> 8) * 144;
        int i = e & 255;
        int q = (gld(b + (16 + 32 * (i >> 6) + (i & 31))) >> (4 * ((i >> 5) & 1))) & 15;
        float2 sm = q4k_scale_min(b, i >> 5);
        return sm.x * (float)q - sm.y;
    }
    if (DT == DT_Q6_K) {
        const u8* b = w + (e >> 8) * 210;
        int i = e & 255, n = i >> 7, k = (i >> 5) & 3, l = i & 31;
        int low = (gld(b + (64 * n + 32 * (k & 1) + l)) >> (4 * (k >> 1))) & 15;
        int high = (gld(b + (128 + 32 * n + l)) >> (2 * k)) & 3;
        float sc = w_f16(b + 208) * (float)(i8)gld(b + (192 + (i >> 4)));
        return sc * (float)((low | high << 4) - 32);
    }
    return 0.0f;
}

// The 32 elements from e0 into v.
template <int DT>
__device__ __forceinline__ void w_load32(const u8* w, u64 e0, float v[32]) {
    if (DT == DT_F32 || DT == DT_F16 || DT == DT_BF16) {
#pragma unroll
        for (int i = 0; i < 32; i++) v[i] = w_at<DT>(w, e0 + i);
    } else if (DT == DT_Q8_0) {
        const u8* b = w + (e0 >> 5) * 34;
        float d = w_f16(b);
#pragma unroll
        for (int i = 0; i < 32; i++) v[i] = d * (float)(i8)gld(b + (2 + i));
    } else if (DT == DT_Q4_0) {
        const u8* b = w + (e0 >> 5) * 18;
        float d = w_f16(b);
#pragma unroll
        for (int j = 0; j < 16; j++) {
            v[j] = d * (float)((gld(b + (2 + j)) & 15) - 8);
            v[j + 16] = d * (float)((gld(b + (2 + j)) >> 4) - 8);
        }
    } else if (DT == DT_Q5_0) {
        const u8* b = w + (e0 >> 5) * 22;
        float d = w_f16(b);
        u32 qh = gld(b + 2) | gld(b + 3) << 8 | gld(b + 4) << 16 | (u32)gld(b + 5) << 24;
#pragma unroll
        for (int j = 0; j < 16; j++) {
            int lo = (gld(b + (6 + j)) & 15) | ((qh >> j) & 1) << 4;
            int hi = (gld(b + (6 + j)) >> 4) | ((qh >> (j + 16)) & 1) << 4;
            v[j] = d * (float)(lo - 16);
            v[j + 16] = d * (float)(hi - 16);
        }
    } else if (DT == DT_Q4_K) {
        const u8* b = w + (e0 >> 8) * 144;
        int j = (e0 >> 5) & 7;
        float2 sm = q4k_scale_min(b, j);
        const u8* q = b + 16 + 32 * (j >> 1);
        int shift = 4 * (j & 1);
#pragma unroll
        for (int i = 0; i < 32; i++) v[i] = sm.x * (float)((gld(q + i) >> shift) & 15) - sm.y;
    } else if (DT == DT_Q6_K) {
        const u8* b = w + (e0 >> 8) * 210;
        int i0 = e0 & 255, n = i0 >> 7, k = (i0 >> 5) & 3;
        const u8* ql = b + 64 * n + 32 * (k & 1);
        const u8* qh = b + 128 + 32 * n;
        float d = w_f16(b + 208);
        float sc0 = d * (float)(i8)gld(b + (192 + (i0 >> 4))), sc1 = d * (float)(i8)gld(b + (193 + (i0 >> 4)));
#pragma unroll
        for (int l = 0; l < 32; l++) {
            int q = ((gld(ql + l) >> (4 * (k >> 1))) & 15) | ((gld(qh + l) >> (2 * k)) & 3) << 4;
            v[l] = (l < 16 ? sc0 : sc1) * (float)(q - 32);
        }
    }
}
