// common.cuh: what every kernel file shares. Types, bf16/f16 conversions, warp reductions, and
// thin wrappers over the PTX instructions the kernels use (mma.sync, ldmatrix, cp.async).
//
// Every kernel file compiles two ways:
// - by NVRTC for the device (`garnet ptx`), where the wrappers are inline PTX;
// - by the host C++ compiler with GARNET_CUDA_EMU defined (kernels/build.rs), against
//   emu/cuda_emu.h, where the same wrappers call the emulator's lane-by-lane models.
// So the ops test runs the very source that becomes the committed PTX.
//
// Kernel rules that keep both paths honest: `KERNEL` entry points taking one params struct by
// value (mirrored field for field in the op's file under kernels/src/cuda/); static shared
// memory only, at most 48 KiB; no early `return` before a `__syncthreads` the rest of the block
// reaches.
#pragma once

#ifdef GARNET_CUDA_EMU
#include "emu/cuda_emu.h"
#endif

typedef unsigned char u8;
typedef signed char i8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;

#define FULL_MASK 0xffffffffu
// -inf as a constant (NVRTC has no <math.h> to define INFINITY).
#define NEG_INF __int_as_float(0xff800000)
// A grid-stride loop over n elements with 64-bit indices, so any length fits one launch.
#define GRID_STRIDE(i, n) for (u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (u64)gridDim.x * blockDim.x)

// A kernel entry point: an unmangled PTX entry on the device; file-local on the host, where the
// emulator's entries (emu/entries.cpp) wrap each one.
#ifdef GARNET_CUDA_EMU
#define KERNEL static
#else
#define KERNEL extern "C" __global__
#endif

// ---- conversions ----
__device__ __forceinline__ float bf16_to_f32(u16 h) { return __uint_as_float((u32)h << 16); }

// Round to nearest even, NaN kept quiet.
__device__ __forceinline__ u16 f32_to_bf16(float f) {
    u32 u = __float_as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (u16)((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (u16)(u >> 16);
}

__device__ __forceinline__ float f16_to_f32(u16 h) {
#ifdef GARNET_CUDA_EMU
    return emu::f16_bits_to_f32(h);
#else
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
    return f;
#endif
}

// Loads and stores that the emulator's memory-transaction model and race detector see
// (`emu::note`; plain accesses on the device): global (gld / gst) and shared (sld / sst). Every
// global and shared access of a kernel goes through them (atomics excepted: they never race).
template <class T>
__device__ __forceinline__ T gld(const T* p) {
#ifdef GARNET_CUDA_EMU
    emu::note(p, sizeof(T), false, false);
#endif
    return *p;
}
template <class T>
__device__ __forceinline__ void gst(T* p, T v) {
#ifdef GARNET_CUDA_EMU
    emu::note(p, sizeof(T), false, true);
#endif
    *p = v;
}
template <class T>
__device__ __forceinline__ T sld(const T* p) {
#ifdef GARNET_CUDA_EMU
    emu::note(p, sizeof(T), true, false);
#endif
    return *p;
}
template <class T>
__device__ __forceinline__ void sst(T* p, T v) {
#ifdef GARNET_CUDA_EMU
    emu::note(p, sizeof(T), true, true);
#endif
    *p = v;
}

// `p` as a pointer to the vector type `V` (float4, uint4): the device faults on a vector access
// not aligned to its size, the host would not, so the emulator checks here.
template <typename V, typename T>
__device__ __forceinline__ V* vec_at(T* p) {
#ifdef GARNET_CUDA_EMU
    if ((unsigned long long)p % sizeof(V) != 0) emu::fail("vector access not aligned to its size");
#endif
    return (V*)p;
}

// Two bf16 in one register, `lo` in the low half (the element with the lower index).
__device__ __forceinline__ u32 pack_bf16(float lo, float hi) {
    return (u32)f32_to_bf16(lo) | (u32)f32_to_bf16(hi) << 16;
}

// ---- warp and block reductions ----
__device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(FULL_MASK, v, o);
    return v;
}

// part[j] (j < N, N a power of two <= 32) summed over the warp, j's sum landing on every lane l
// with l % N == j: log2(N) halving steps in which each lane keeps the half of its values selected
// by its lane bit and adds its partner's copy of that half, then plain butterflies over the lane
// bits above N. N - 1 + log2(32 / N) shuffles instead of N warp_sums' 5 N.
template <int N>
__device__ __forceinline__ float warp_transpose_sum(float part[N], u32 lane) {
#pragma unroll
    for (int s = N / 2; s > 0; s >>= 1) {  // constant trip counts: part stays in registers
        const bool upper = (lane & (u32)s) != 0;
#pragma unroll
        for (int j = 0; j < N / 2; j++) {
            if (j >= s) break;  // constant bounds, so that every index is a constant once unrolled
            const float send = upper ? part[j] : part[j + s], keep = upper ? part[j + s] : part[j];
            part[j] = keep + __shfl_xor_sync(FULL_MASK, send, s);
        }
    }
#pragma unroll
    for (int o = N; o < 32; o <<= 1) part[0] += __shfl_xor_sync(FULL_MASK, part[0], o);
    return part[0];
}

__device__ __forceinline__ float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(FULL_MASK, v, o));
    return v;
}

// Sum over the whole block (blockDim.x a multiple of 32, at most 1024); every thread gets it.
// `scratch` is 32 floats of shared memory; the call starts and ends with a barrier, so it may be
// called again with the same scratch.
__device__ __forceinline__ float block_sum(float v, float* scratch) {
    v = warp_sum(v);
    unsigned lane = threadIdx.x & 31, w = threadIdx.x >> 5, warps = blockDim.x >> 5;
    __syncthreads();
    if (lane == 0) sst(scratch + w, v);
    __syncthreads();
    v = lane < warps ? sld(scratch + lane) : 0.0f;
    return warp_sum(v);
}

// ---- tensor cores: D = A B + C on one warp, m16n8k16, f32 accumulate ----
// Fragments as the PTX ISA lays them out (see emu/cuda_emu.h): a[4] the 16x16 A tile (row),
// b[2] the 16x8 B tile (col), c/d[4] the 16x8 f32 tile.
__device__ __forceinline__ void mma_bf16_16816(float d[4], const u32 a[4], const u32 b[2], const float c[4]) {
#ifdef GARNET_CUDA_EMU
    emu::mma_m16n8k16(d, a, b, c, emu::bf16_bits_to_f32);
#else
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%10,%11,%12,%13};\n"
        : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]), "f"(c[2]),
          "f"(c[3]));
#endif
}

// ---- ldmatrix: 8x8 b16 matrices from shared memory; lanes 8j..8j+7 give matrix j's row addresses ----
// (the memory model sees each lane's 16-byte row read; cp.async its global read and shared write)
__device__ __forceinline__ void ldmatrix_x4(u32 r[4], const void* row) {
#ifdef GARNET_CUDA_EMU
    emu::note(row, 16, true, false);
    emu::ldmatrix(r, 4, row, false);
#else
    u32 s = (u32)__cvta_generic_to_shared(row);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(s));
#endif
}

__device__ __forceinline__ void ldmatrix_x2(u32 r[2], const void* row) {
#ifdef GARNET_CUDA_EMU
    if ((threadIdx.x & 31) < 16) emu::note(row, 16, true, false);  // lanes 16..31 give no address
    emu::ldmatrix(r, 2, row, false);
#else
    u32 s = (u32)__cvta_generic_to_shared(row);
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0,%1}, [%2];\n" : "=r"(r[0]), "=r"(r[1]) : "r"(s));
#endif
}

__device__ __forceinline__ void ldmatrix_x2_trans(u32 r[2], const void* row) {
#ifdef GARNET_CUDA_EMU
    if ((threadIdx.x & 31) < 16) emu::note(row, 16, true, false);
    emu::ldmatrix(r, 2, row, true);
#else
    u32 s = (u32)__cvta_generic_to_shared(row);
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0,%1}, [%2];\n"
                 : "=r"(r[0]), "=r"(r[1])
                 : "r"(s));
#endif
}

// ---- cp.async: N (4 or 16) bytes global -> shared, zero-filled when !valid; both addresses
// N-byte aligned. 16 bytes bypass L1 (.cg), 4 bytes go through it (.ca: the only form for 4).
template <int N>
__device__ __forceinline__ void cp_async(void* smem, const void* gmem, bool valid) {
    static_assert(N == 4 || N == 16, "cp.async copies 4 or 16 bytes here");
#ifdef GARNET_CUDA_EMU
    if (valid) emu::note(gmem, N, false, false);
    emu::note(smem, N, true, true);
    emu::cp_async(smem, gmem, N, valid);
#else
    u32 s = (u32)__cvta_generic_to_shared(smem);
    int n = valid ? N : 0;
    if (N == 16)
        asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(gmem), "r"(n));
    else
        asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(s), "l"(gmem), "r"(n));
#endif
}

__device__ __forceinline__ void cp_async_commit() {
#ifdef GARNET_CUDA_EMU
    emu::cp_async_commit();
#else
    asm volatile("cp.async.commit_group;\n" ::);
#endif
}

// Waits until at most N committed groups are still in flight.
template <int N>
__device__ __forceinline__ void cp_async_wait() {
#ifdef GARNET_CUDA_EMU
    emu::cp_async_wait(N);
#else
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
#endif
}
