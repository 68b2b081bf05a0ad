// selftest.cpp: kernels that check the emulator itself (kernels/tests/cuda_emulator.rs): the
// tensor-core fragments through the documented ldmatrix + mma usage against a plain product,
// and the faults it must catch (an early return before a barrier, a divergent shuffle, a
// cp.async destination read before its wait), the race detector's known answers. Host-only:
// never compiled to PTX.
#include "entry.h"
#include "../common.cuh"

struct MmaParams {
    u64 a;  // [16, 16] bf16 row-major
    u64 b;  // [8, 16] bf16: B^T row-major, i.e. B (16 x 8) column-major
    u64 d;  // [16, 8] f32
};

// One warp: A and B^T staged in shared memory, fragments by ldmatrix as a GEMM kernel loads
// them (A: x4, lanes 0-15 rows 0-15 at column 0, lanes 16-31 the same rows at column 8; B: x2,
// lanes 0-7 rows of B^T at column 0, lanes 8-15 at column 8), one mma, D scattered by the
// accumulator layout.
static void selftest_mma(MmaParams p) {
    __shared__ __attribute__((aligned(16))) u16 sa[16][16];
    __shared__ __attribute__((aligned(16))) u16 sb[8][16];
    u32 lane = threadIdx.x;
    const u16* a = (const u16*)p.a;
    const u16* b = (const u16*)p.b;
    for (u32 i = lane; i < 256; i += 32) sa[i / 16][i % 16] = a[i];
    for (u32 i = lane; i < 128; i += 32) sb[i / 16][i % 16] = b[i];
    __syncthreads();
    u32 af[4], bf[2];
    ldmatrix_x4(af, &sa[lane % 16][(lane / 16) * 8]);
    ldmatrix_x2(bf, &sb[lane % 8][((lane / 8) % 2) * 8]);
    float c[4] = {0, 0, 0, 0}, d[4];
    mma_bf16_16816(d, af, bf, c);
    float* out = (float*)p.d;
    u32 g = lane / 4, t = lane % 4;
    out[g * 8 + t * 2] = d[0];
    out[g * 8 + t * 2 + 1] = d[1];
    out[(g + 8) * 8 + t * 2] = d[2];
    out[(g + 8) * 8 + t * 2 + 1] = d[3];
}

struct FaultParams {
    u64 out;
    u32 which;
    u32 pad;
};

// which = 0: thread 0 returns before a barrier the others reach. 1: a full-mask shuffle in a
// branch only half the warp takes. 2: a cp.async destination read before its wait (out[0] gets
// the stale value) and after it (out[1]). 3: nothing wrong (the control case). 4: a write one
// element past the end of the 16-float buffer. 5: a read there (out[0] gets the guard bytes).
// 6: a float4 load from an address 4 bytes past a 16-byte boundary.
static void selftest_fault(FaultParams p) {
    __shared__ __attribute__((aligned(16))) float s[4];
    float* out = (float*)p.out;
    if (p.which == 0) {
        if (threadIdx.x == 0) return;
        __syncthreads();
    } else if (p.which == 1) {
        if (threadIdx.x < 16) out[threadIdx.x] = __shfl_xor_sync(FULL_MASK, 1.0f, 1);
    } else if (p.which == 2) {
        if (threadIdx.x == 0) {
            s[0] = 0.0f;
            cp_async<16>(s, out + 4, true);
            cp_async_commit();
            out[0] = s[0];
            cp_async_wait<0>();
            out[1] = s[0];
        }
    } else if (p.which == 4) {
        if (threadIdx.x == 0) out[16] = 1.0f;
    } else if (p.which == 5) {
        if (threadIdx.x == 0) out[0] = out[16];
    } else if (p.which == 6) {
        if (threadIdx.x == 0) out[0] = vec_at<const float4>(out + 1)->x;
    } else {
        __syncthreads();
        float v = warp_sum(1.0f);
        if (threadIdx.x == 0) out[0] = v;
    }
}

struct MemParams {
    u64 in;
    u32 which;
    u32 pad;
};

// Known answers for the memory model, one warp each. Global (in: 4096 floats, 256-byte aligned):
// 0 coalesced floats, 1 floats 32 bytes apart, 2 one float for all lanes, 3 coalesced float4.
// Shared: 4 consecutive floats, 5 floats 128 bytes apart (one bank), 6 floats 8 bytes apart
// (two-way), 7 one float for all lanes, 8 consecutive float4.
static void selftest_mem(MemParams p) {
    __shared__ __attribute__((aligned(128))) float s[32 * 32];
    const float* in = (const float*)p.in;
    const u32 l = threadIdx.x;
    float v = 0.0f;
    switch (p.which) {
        case 0: v = gld(in + l); break;
        case 1: v = gld(in + 8 * l); break;
        case 2: v = gld(in); break;
        case 3: v = gld(vec_at<const float4>(in + 4 * l)).x; break;
        case 4: sst(s + l, 1.0f); break;
        case 5: sst(s + 32 * l, 1.0f); break;
        case 6: sst(s + 2 * l, 1.0f); break;
        case 7: v = sld(s); break;
        default: sst(vec_at<float4>(s + 4 * l), float4{1.0f, 2.0f, 3.0f, 4.0f}); break;
    }
    if (v == 12345.0f) s[0] = v;  // keeps the loads
}

struct RaceParams {
    u64 out;  // 64 floats
    u32 which;
    u32 pad;
};

// Known answers for the race detector (blocks of 64 threads; out: 64 floats):
// 0 threads 0 and 32 store one shared word (race), 1 the same with __syncthreads between (clean);
// 2 lane 0 stores a shared word lane 1 loads (race), 3 the same with __syncwarp between (clean);
// 4 thread 0 of every block stores out[0] (race with two blocks), 5 every thread loads out[0]
// (clean); 6 thread i stores out[i] after loading out[i + 1] (race between neighbours);
// 7 each thread appends its index to a shared list through plain accesses the detector does
// not see, then the list is copied to out: the order the threads were resumed in.
static void selftest_race(RaceParams p) {
    __shared__ float s[64];
    __shared__ u32 n;
    float* out = (float*)p.out;
    const u32 t = threadIdx.x;
    float v = 0.0f;
    switch (p.which) {
        case 0:
        case 1:
            if (t == 0) sst(s, 1.0f);
            if (p.which == 1) __syncthreads();
            if (t == 32) sst(s, 2.0f);
            break;
        case 2:
        case 3:
            if (t == 0) sst(s, 1.0f);
            if (p.which == 3 && t < 32) __syncwarp();
            if (t == 1) v = sld(s);
            break;
        case 4:
            if (t == 0) gst(out, (float)blockIdx.x);
            break;
        case 5:
            v = gld(out);
            break;
        case 6:
            if (t < 63) gst(out + t, gld(out + t + 1));
            break;
        default:
            if (t == 0) n = 0;
            __syncthreads();
            s[n++] = (float)t;
            __syncthreads();
            gst(out + t, s[t]);
            break;
    }
    if (v == 12345.0f) out[0] = v;  // keeps the loads
}

ENTRY(selftest_mma)
ENTRY(selftest_fault)
ENTRY(selftest_mem)
ENTRY(selftest_race)
