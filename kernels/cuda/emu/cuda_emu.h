// cuda_emu.h: the CUDA execution model on the host, so the kernels in kernels/cuda/*.cu run as
// plain C++ in the ops test where there is no GPU (`garnet ops-test --backend cuda-emulated`).
//
// What it models:
// - A launch runs its blocks one after another; the threads of a block are coroutines
//   on the calling OS thread, switched only at synchronisation points, so a block
//   behaves like a GPU block whose threads interleave at every barrier.
// - `__shared__` variables are `static thread_local`: shared by the block's threads (they run on
//   one OS thread), private to each launch (launches on other OS threads have their own).
// - `__syncthreads` is a block barrier; a thread that returns while others wait at one is an
//   error (a real GPU may hang). Warp collectives (shuffles, votes, `__syncwarp`, `mma`,
//   `ldmatrix`) exchange values among the lanes named in the mask, which must all be alive.
// - Tensor-core and async-copy instructions (common.cuh's wrappers) follow the PTX ISA's
//   fragment layouts lane by lane; `cp.async` copies happen only at `cp.async.wait_group`, so a
//   kernel that reads its destination before waiting reads stale data and fails.
// - Errors (deadlock, barrier after exit, divergent collective) stop the launch and are returned
//   to the caller as a message.
// - Memory model (`Launch::mem`): the warp-level requests of the accesses through `note`
//   (common.cuh's gld/gst/sld/sst, ldmatrix, cp.async), their sectors and bank conflicts.
// - Race detector (`Launch::races`): threads resumed in a seeded random order each round, and
//   shadow memory per 4-byte word (the last store, a summary of the loads since) that fails the
//   launch on two accesses by different threads, one a store, not ordered: another block, or
//   the same block with no __syncthreads between (within a warp: no collective over both lanes
//   between). It sees only accesses through `note`; atomics never race. It does not catch: races
//   through plain accesses; byte-granular false sharing (two threads storing different bytes of
//   one word is reported as a race); a race with one of several same-interval readers of a word
//   when partial-mask collectives order some of them (the readers' lanes are not all kept: with
//   partial masks every lane of the warp counts as a reader); orderings that are only transitive
//   through partial-mask collectives; cp.async copies, seen as issued rather than landed.
//
// Not modelled: memory ordering without a barrier (writes are visible at once), timing.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>
#include <ucontext.h>

struct dim3 {
    unsigned x = 1, y = 1, z = 1;
};
struct uint2 { unsigned x, y; };
struct __attribute__((aligned(16))) uint4 { unsigned x, y, z, w; };
struct float2 { float x, y; };
struct __attribute__((aligned(16))) float4 { float x, y, z, w; };

namespace emu {

// ---- coroutines: each CUDA thread runs on a stack of its own ----
#if defined(__x86_64__)
extern "C" void garnet_emu_switch(void** save_sp, void* load_sp);  // context.cpp
extern "C" void garnet_emu_trampoline();
struct Coro {
    void* sp = nullptr;
};
// A coroutine that will run fn(arg) (which must never return) when first switched to.
inline void coro_start(Coro& c, char* stack, size_t size, void (*fn)(void*), void* arg) {
    uintptr_t top = (uintptr_t)(stack + size) & ~(uintptr_t)15;
    void** sp = (void**)(top - 64);
    unsigned long long csr = 0x1f80ull | (0x037full << 32);  // default MXCSR, x87 control word
    sp[0] = (void*)csr;
    sp[1] = sp[2] = nullptr;  // r15, r14
    sp[3] = arg;              // r13
    sp[4] = (void*)fn;        // r12
    sp[5] = sp[6] = nullptr;  // rbx, rbp
    sp[7] = (void*)garnet_emu_trampoline;
    c.sp = sp;
}
inline void coro_switch(Coro& from, Coro& to) { garnet_emu_switch(&from.sp, to.sp); }
#else
struct Coro {
    ucontext_t ctx;
};
inline void coro_entry(unsigned f0, unsigned f1, unsigned a0, unsigned a1) {
    auto fn = (void (*)(void*))((uintptr_t)f0 | (uintptr_t)f1 << 32);
    fn((void*)((uintptr_t)a0 | (uintptr_t)a1 << 32));
}
inline void coro_start(Coro& c, char* stack, size_t size, void (*fn)(void*), void* arg) {
    getcontext(&c.ctx);
    c.ctx.uc_stack.ss_sp = stack;
    c.ctx.uc_stack.ss_size = size;
    c.ctx.uc_link = nullptr;
    uintptr_t f = (uintptr_t)fn, a = (uintptr_t)arg;
    makecontext(&c.ctx, (void (*)())coro_entry, 4, (unsigned)f, (unsigned)(f >> 32), (unsigned)a, (unsigned)(a >> 32));
}
inline void coro_switch(Coro& from, Coro& to) { swapcontext(&from.ctx, &to.ctx); }
#endif

// Raised (as a C++ exception inside the launch) by any modelled error; returned as a message.
struct Fault {
    std::string what;
};

struct Thread {
    Coro coro;
    dim3 idx;
    unsigned linear = 0;
    bool done = false;
    // cp.async: copies of the open group, and committed groups oldest first.
    struct Copy {
        void* dst;
        const void* src;
        unsigned bytes;
    };
    std::vector<Copy> open;
    std::vector<std::vector<Copy>> groups;
    // Memory model: accesses made at each source site since the last barrier.
    std::unordered_map<uintptr_t, unsigned> occurrences;
};

// The memory-transaction model's totals for one launch (Rust: `cuda::emulator::MemStats`).
// A request is one warp-level access: the lanes of a warp at the same source site, the same
// occurrence of it since the last barrier. Global: the distinct bytes the lanes use, the 32-byte
// sectors and 128-byte lines those bytes touch. Shared: the wavefronts a request takes (per
// phase of lanes, 32 lanes for accesses up to 4 bytes, 16 for 8, 8 for 16: the most distinct
// 4-byte words any of the 32 banks serves; equal words broadcast) and the phases it has (the
// wavefronts it takes without conflicts).
struct MemStats {
    unsigned long long global_requests = 0, global_bytes = 0, global_sectors = 0, global_lines = 0;
    unsigned long long shared_requests = 0, shared_wavefronts = 0, shared_phases = 0;
};

struct Access {
    uintptr_t addr;
    unsigned bytes;
    unsigned lane;
};

struct Warp {
    unsigned long long slot[32][8];  // what each lane contributes to the current collective
    unsigned arrived = 0;            // lanes arrived at the current collective
    unsigned mask = 0;               // the current collective's mask
    unsigned gen = 0;                // completed collectives (phases)
    // Race detector: the gen of the last collective whose mask held every lane of the warp, and
    // (only once a partial mask is used) the last one holding both lanes b and a: pair[b][a].
    unsigned full_gen = 0;
    std::unique_ptr<unsigned[][32]> pair;
};

struct Block {
    dim3 idx, dim, grid;
    std::vector<Thread> threads;
    std::vector<Warp> warps;
    unsigned live = 0;        // threads not yet returned
    unsigned bar_arrived = 0; // threads waiting at __syncthreads
    unsigned bar_gen = 0;
    unsigned long long progress = 0; // bumped on every arrival, release and exit
    Coro sched;
    Thread* cur = nullptr;
    std::string fault;
    MemStats* mem = nullptr;  // the memory model, when the launch asks for it
    struct Races* races = nullptr;  // the race detector, when the launch asks for it
    unsigned seq = 0;         // 1 + the block's linear index in the grid
    unsigned lanes_last = 32; // threads in the last warp (a full mask covers the warp's lanes)
    // (warp, shared, site, occurrence) -> the lanes' accesses, until the next barrier.
    std::map<std::tuple<unsigned, bool, uintptr_t, unsigned>, std::vector<Access>> pending;
};

inline thread_local Block* g_block = nullptr;

inline Block& blk() { return *g_block; }
inline Thread& cur() { return *g_block->cur; }

[[noreturn]] inline void fail(const std::string& why) { throw Fault{why}; }

}  // namespace emu
#include "races.h"  // the race detector: shadow memory over Block and Warp
namespace emu {

// Records one lane's access for the memory model and the race detector (never inlined: its
// return address, inside the kernel since `gld` & co. are always inlined, names the source
// site, the same for every lane).
__attribute__((noinline)) inline void note(const void* p, unsigned bytes, bool shared, bool store) {
    Block& b = *g_block;
    if (b.races) race_note(b, p, bytes, shared, store);
    if (!b.mem) return;
    Thread& t = *b.cur;
    uintptr_t site = (uintptr_t)__builtin_return_address(0);
    unsigned occ = t.occurrences[site]++;
    b.pending[{t.linear / 32, shared, site, occ}].push_back({(uintptr_t)p, bytes, t.linear % 32});
}

// Adds the pending requests to the totals and starts a new barrier interval.
inline void flush_mem(Block& b) {
    if (!b.mem) return;
    for (auto& [key, acc] : b.pending) {
        if (!std::get<1>(key)) {
            std::set<uintptr_t> bytes, sectors, lines;
            for (auto& a : acc)
                for (unsigned i = 0; i < a.bytes; i++) {
                    bytes.insert(a.addr + i);
                    sectors.insert((a.addr + i) / 32);
                    lines.insert((a.addr + i) / 128);
                }
            b.mem->global_requests++;
            b.mem->global_bytes += bytes.size();
            b.mem->global_sectors += sectors.size();
            b.mem->global_lines += lines.size();
        } else {
            unsigned size = 4;
            for (auto& a : acc) size = a.bytes > size ? a.bytes : size;
            unsigned lanes_per_phase = size <= 4 ? 32 : size <= 8 ? 16 : 8;
            std::map<unsigned, std::map<unsigned, std::set<uintptr_t>>> phases;  // phase -> bank -> words
            for (auto& a : acc)
                for (unsigned i = 0; i < a.bytes; i += 4) {
                    uintptr_t word = (a.addr + i) / 4;
                    phases[a.lane / lanes_per_phase][word % 32].insert(word);
                }
            b.mem->shared_requests++;
            b.mem->shared_phases += phases.size();
            for (auto& [ph, banks] : phases) {
                size_t most = 1;
                for (auto& [bank, words] : banks) most = words.size() > most ? words.size() : most;
                b.mem->shared_wavefronts += most;
            }
        }
    }
    b.pending.clear();
    for (auto& t : b.threads) t.occurrences.clear();
}

// Gives the OS thread back to the scheduler until it resumes this thread.
inline void yield() {
    Block& b = blk();
    Thread& t = cur();
    coro_switch(t.coro, b.sched);
    if (!b.fault.empty()) throw Fault{b.fault};
}

inline unsigned lane_id() { return cur().linear & 31; }
inline Warp& warp() { return blk().warps[cur().linear >> 5]; }

// The lanes of this thread's warp that have not returned.
inline unsigned live_lanes() {
    Block& b = blk();
    unsigned base = cur().linear & ~31u, mask = 0;
    for (unsigned l = 0; l < 32 && base + l < b.threads.size(); l++)
        if (!b.threads[base + l].done) mask |= 1u << l;
    return mask;
}

// One phase of a warp collective over the lanes of `mask`: every lane of the mask arrives before
// any leaves.
inline void warp_phase(unsigned mask) {
    if ((mask & live_lanes()) != mask || !(mask >> lane_id() & 1u)) {
        char m[160];
        snprintf(m, sizeof m, "warp collective with mask %08x but lanes %08x alive (lane %u)", mask, live_lanes(),
                 lane_id());
        fail(m);
    }
    Warp& w = warp();
    Block& b = blk();
    unsigned gen = w.gen;
    b.progress++;
    if (w.arrived > 0 && w.mask != mask) {
        char m[160];
        snprintf(m, sizeof m, "divergent warp collectives: masks %08x and %08x at once", w.mask, mask);
        fail(m);
    }
    w.mask = mask;
    if (++w.arrived == (unsigned)__builtin_popcount(mask)) {
        w.arrived = 0;
        w.gen++;
        if (b.races) {
            unsigned all = warp_lanes(b, cur().linear >> 5);
            if ((mask & all) == all) {
                w.full_gen = w.gen;
            } else {
                if (!w.pair) w.pair.reset(new unsigned[32][32]());
                for (unsigned x = 0; x < 32; x++)
                    for (unsigned y = 0; y < 32; y++)
                        if ((mask >> x & 1u) && (mask >> y & 1u)) w.pair[x][y] = w.gen;
            }
        }
        return;
    }
    while (w.gen == gen) yield();
}

// Every lane of `mask` contributes `mine` (at most 64 bytes); `all[l]` receives lane l's.
template <class T>
inline void warp_exchange(unsigned mask, const T& mine, T* all) {
    static_assert(sizeof(T) <= sizeof(Warp::slot[0]), "collective value too large");
    Warp& w = warp();
    memcpy(w.slot[lane_id()], &mine, sizeof(T));
    warp_phase(mask);
    for (unsigned l = 0; l < 32; l++)
        if (mask >> l & 1u) memcpy(&all[l], w.slot[l], sizeof(T));
    warp_phase(mask);  // nobody overwrites a slot before every lane has read it
}

inline void syncthreads() {
    Block& b = blk();
    // Strict on purpose: CUDA leaves a barrier that some threads of the block never reach
    // undefined, so a kernel must not return before one.
    if (b.live != b.threads.size()) fail("__syncthreads after a thread of the block returned");
    unsigned gen = b.bar_gen;
    b.progress++;
    if (++b.bar_arrived == b.live) {
        b.bar_arrived = 0;
        b.bar_gen++;
        flush_mem(b);
        return;
    }
    while (b.bar_gen == gen) yield();
}

struct Launch {
    dim3 grid, block;
    MemStats* mem;            // null: no memory model
    unsigned long long seed;  // races: the scheduling order's seed
    unsigned races;           // nonzero: race detector, threads resumed in a random order
};

constexpr size_t kStack = 256 * 1024;

template <class P>
struct Entry {
    void (*kernel)(P);
    const P* params;
};

// A CUDA thread's coroutine: runs the kernel, records the exit, and switches back to the
// scheduler for good.
template <class P>
void thread_main(void* arg) {
    auto* e = static_cast<Entry<P>*>(arg);
    Block& b = blk();
    Thread& t = cur();
    try {
        e->kernel(*e->params);
        if (!t.open.empty() || !t.groups.empty())
            fail("thread returned with cp.async copies not waited for");
    } catch (const Fault& f) {
        if (b.fault.empty()) b.fault = f.what;
    } catch (...) {
        if (b.fault.empty()) b.fault = "emulator: out of memory";
    }
    t.done = true;
    b.live--;
    b.progress++;
    if (b.fault.empty() && b.bar_arrived > 0)
        b.fault = "a thread returned while others wait at __syncthreads";
    Warp& w = b.warps[t.linear >> 5];
    if (b.fault.empty() && w.arrived > 0 && (w.mask >> (t.linear & 31) & 1u)) {
        char m[160];
        snprintf(m, sizeof m, "lane %u returned while its warp waits for it in a collective (mask %08x)",
                 t.linear & 31, w.mask);
        b.fault = m;
    }
    coro_switch(t.coro, b.sched);
    __builtin_unreachable();  // a finished thread is never resumed
}

// Runs `kernel(params)` over the launch; returns 0, or 1 with the message in `err`.
template <class P>
int run(const Launch& l, void (*kernel)(P), const void* params, char* err, size_t err_len) {
    Entry<P> entry{kernel, static_cast<const P*>(params)};
    unsigned n = l.block.x * l.block.y * l.block.z;
    if (n == 0 || n > 1024) {
        snprintf(err, err_len, "block of %u threads (1..=1024)", n);
        return 1;
    }
    // Coroutine stacks, kept per OS thread across launches (left uninitialised: only the pages
    // a thread touches are ever mapped).
    static thread_local std::unique_ptr<char[]> stacks;
    static thread_local size_t stacks_size = 0;
    if (stacks_size < (size_t)n * kStack) {
        stacks.reset(new char[(size_t)n * kStack]);
        stacks_size = (size_t)n * kStack;
    }
    Block b;
    b.dim = l.block;
    b.grid = l.grid;
    b.threads.resize(n);
    b.warps.resize((n + 31) / 32);
    b.mem = l.mem;
    b.lanes_last = n % 32 ? n % 32 : 32;
    std::unique_ptr<Races> races;
    if (l.races) {
        races.reset(new Races);
        races->rng = l.seed;
        b.races = races.get();
    }
    std::vector<unsigned> order(n);
    for (unsigned i = 0; i < n; i++) order[i] = i;
    Block* saved = g_block;
    g_block = &b;
    for (unsigned bz = 0; bz < l.grid.z && b.fault.empty(); bz++)
        for (unsigned by = 0; by < l.grid.y && b.fault.empty(); by++)
            for (unsigned bx = 0; bx < l.grid.x && b.fault.empty(); bx++) {
                b.idx = dim3{bx, by, bz};
                b.seq = 1 + bx + l.grid.x * (by + l.grid.y * bz);
                b.live = n;
                b.bar_arrived = 0;
                for (auto& w : b.warps) w = Warp{};
                for (unsigned i = 0; i < n; i++) {
                    Thread& t = b.threads[i];
                    t.linear = i;
                    t.idx = dim3{i % l.block.x, i / l.block.x % l.block.y, i / (l.block.x * l.block.y)};
                    t.done = false;
                    t.open.clear();
                    t.groups.clear();
                    coro_start(t.coro, stacks.get() + (size_t)i * kStack, kStack, thread_main<P>, &entry);
                }
                // Rounds until every thread has returned, in thread order (race mode: a random
                // order each round, so code relying on an order of its own is caught); a full
                // round without progress is a deadlock.
                while (b.live > 0 && b.fault.empty()) {
                    unsigned long long before = b.progress;
                    if (races)
                        for (unsigned i = n - 1; i > 0; i--) {
                            unsigned j = (unsigned)(splitmix64(races->rng) % (i + 1));
                            unsigned x = order[i];
                            order[i] = order[j];
                            order[j] = x;
                        }
                    for (unsigned k = 0; k < n; k++) {
                        Thread& t = b.threads[order[k]];
                        if (t.done) continue;
                        b.cur = &t;
                        coro_switch(b.sched, t.coro);
                        if (!b.fault.empty()) break;
                    }
                    if (b.live > 0 && b.progress == before && b.fault.empty())
                        b.fault = "deadlock: every live thread waits for one that never arrives";
                }
                flush_mem(b);
                if (!b.fault.empty()) {
                    char where[64];
                    snprintf(where, sizeof where, " (block %u,%u,%u)", bx, by, bz);
                    b.fault += where;
                }
            }
    g_block = saved;
    if (!b.fault.empty()) {
        snprintf(err, err_len, "%s", b.fault.c_str());
        return 1;
    }
    return 0;
}

template <class T>
inline T shfl(unsigned mask, T v, int src_lane) {
    T all[32];
    warp_exchange(mask, v, all);
    unsigned s = (unsigned)src_lane & 31;
    if (!(mask >> s & 1u)) fail("shuffle from a lane outside the mask");
    return all[s];
}

}  // namespace emu

// ---- the CUDA names the kernels use ----
#define __global__
#define __device__
// Always inlined, as on the device: the memory model names an access's source site by the
// return address of `note`, which must be the call site in the kernel, not inside `gld`.
#define __forceinline__ inline __attribute__((always_inline))
#define __launch_bounds__(...)
#define __shared__ static thread_local
#define __restrict__ __restrict

#define threadIdx (emu::cur().idx)
#define blockIdx (emu::blk().idx)
#define blockDim (emu::blk().dim)
#define gridDim (emu::blk().grid)

inline void __syncthreads() { emu::syncthreads(); }
inline void __syncwarp(unsigned mask = 0xffffffffu) { emu::warp_phase(mask); }
inline void __threadfence() {}
inline void __threadfence_block() {}

template <class T>
inline T __shfl_sync(unsigned mask, T v, int src, int width = 32) {
    return emu::shfl(mask, v, (int)(emu::lane_id() & ~(unsigned)(width - 1)) + (src & (width - 1)));
}
template <class T>
inline T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32) {
    unsigned l = emu::lane_id(), base = l & ~(unsigned)(width - 1);
    return emu::shfl(mask, v, (int)(base | ((l ^ (unsigned)lane_mask) & (unsigned)(width - 1))));
}
template <class T>
inline T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = 32) {
    unsigned l = emu::lane_id(), base = l & ~(unsigned)(width - 1);
    unsigned src = (l - base + delta < (unsigned)width) ? l + delta : l;
    return emu::shfl(mask, v, (int)src);
}
inline unsigned __ballot_sync(unsigned mask, int pred) {
    int all[32];
    emu::warp_exchange(mask, pred, all);
    unsigned r = 0;
    for (unsigned l = 0; l < 32; l++)
        if ((mask >> l & 1u) && all[l]) r |= 1u << l;
    return r;
}
inline int __any_sync(unsigned mask, int pred) { return __ballot_sync(mask, pred) != 0; }
inline int __all_sync(unsigned mask, int pred) { return __ballot_sync(mask, pred) == mask; }

inline float __uint_as_float(unsigned u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}
inline unsigned __float_as_uint(float f) {
    unsigned u;
    memcpy(&u, &f, 4);
    return u;
}
inline int __float_as_int(float f) { return (int)__float_as_uint(f); }
inline float __int_as_float(int i) { return __uint_as_float((unsigned)i); }
inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline float __expf(float x) { return expf(x); }
inline float __fdividef(float a, float b) { return a / b; }
inline float __saturatef(float x) { return x < 0.f ? 0.f : (x > 1.f ? 1.f : x); }
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __ffs(int x) { return __builtin_ffs(x); }
inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz((unsigned)x); }
inline unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
inline unsigned max(unsigned a, unsigned b) { return a > b ? a : b; }
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }

// Blocks never overlap and a block's threads switch only at barriers, so atomics are plain
// read-modify-writes.
inline float atomicAdd(float* p, float v) {
    float old = *p;
    *p = old + v;
    return old;
}
inline unsigned atomicAdd(unsigned* p, unsigned v) {
    unsigned old = *p;
    *p = old + v;
    return old;
}
inline int atomicAdd(int* p, int v) {
    int old = *p;
    *p = old + v;
    return old;
}
inline unsigned atomicMax(unsigned* p, unsigned v) {
    unsigned old = *p;
    *p = old > v ? old : v;
    return old;
}
inline unsigned atomicCAS(unsigned* p, unsigned cmp, unsigned v) {
    unsigned old = *p;
    if (old == cmp) *p = v;
    return old;
}

// ---- tensor-core and async-copy instructions, lane by lane as the PTX ISA lays them out ----
namespace emu {

inline float bf16_bits_to_f32(unsigned short h) { return __uint_as_float((unsigned)h << 16); }

inline float f16_bits_to_f32(unsigned short h) {
    unsigned sign = (unsigned)(h >> 15) << 31, exp = h >> 10 & 0x1f, man = h & 0x3ff;
    if (exp == 0x1f) return __uint_as_float(sign | 0x7f800000u | man << 13);
    if (exp == 0) {
        float f = ldexpf((float)man, -24);
        return sign ? -f : f;
    }
    return __uint_as_float(sign | (exp + 112) << 23 | man << 13);
}

// mma.sync.aligned.m16n8k16.row.col.f32.{bf16,f16}.{bf16,f16}.f32 for the whole warp, with
// groupID = lane / 4 and tig = lane % 4 (PTX ISA, "Matrix fragments for mma.m16n8k16"):
// - A (16x16, row), element i of 8 (two per register, lower index in the low half):
//   row = groupID (+8 for i in 2,3,6,7), col = tig * 2 + (i & 1) (+8 for i >= 4)
// - B (16x8, col), element i of 4: k = tig * 2 + (i & 1) (+8 for i >= 2), n = groupID
// - C, D (16x8 f32), element i of 4: row = groupID (+8 for i >= 2), col = tig * 2 + (i & 1)
inline void mma_m16n8k16(float d[4], const unsigned a[4], const unsigned b[2], const float c[4],
                         float (*cvt)(unsigned short)) {
    struct Frag {
        unsigned a[4], b[2];
        float c[4];
    } mine, all[32];
    memcpy(mine.a, a, sizeof mine.a);
    memcpy(mine.b, b, sizeof mine.b);
    memcpy(mine.c, c, sizeof mine.c);
    warp_exchange(0xffffffffu, mine, all);
    float A[16][16], B[16][8], C[16][8];
    for (unsigned l = 0; l < 32; l++) {
        unsigned g = l >> 2, t = l & 3;
        for (unsigned i = 0; i < 8; i++) {
            unsigned short h = (unsigned short)(all[l].a[i / 2] >> (16 * (i & 1)));
            unsigned row = g + ((i & 2) ? 8 : 0), col = t * 2 + (i & 1) + (i >= 4 ? 8 : 0);
            A[row][col] = cvt(h);
        }
        for (unsigned i = 0; i < 4; i++) {
            unsigned short h = (unsigned short)(all[l].b[i / 2] >> (16 * (i & 1)));
            B[t * 2 + (i & 1) + (i >= 2 ? 8 : 0)][g] = cvt(h);
        }
        for (unsigned i = 0; i < 4; i++) C[g + (i >= 2 ? 8 : 0)][t * 2 + (i & 1)] = all[l].c[i];
    }
    unsigned g = lane_id() >> 2, t = lane_id() & 3;
    for (unsigned i = 0; i < 4; i++) {
        unsigned row = g + (i >= 2 ? 8 : 0), col = t * 2 + (i & 1);
        float acc = C[row][col];
        for (unsigned k = 0; k < 16; k++) acc += A[row][k] * B[k][col];
        d[i] = acc;
    }
}

// ldmatrix.sync.aligned.m8n8.x{1,2,4}{,.trans}.shared.b16: lanes 8j..8j+7 give the row addresses
// (16-byte aligned) of matrix j; register j of lane l receives matrix j's row l / 4, columns
// (l % 4) * 2 and +1 (lower column in the low half); with .trans, column l / 4 of rows
// (l % 4) * 2 and +1.
inline void ldmatrix(unsigned* r, unsigned count, const void* row, bool trans) {
    if ((uintptr_t)row % 16 != 0) fail("ldmatrix row address not 16-byte aligned");
    const unsigned short* all[32];
    warp_exchange(0xffffffffu, static_cast<const unsigned short*>(row), all);
    unsigned l = lane_id();
    for (unsigned j = 0; j < count; j++) {
        unsigned short lo, hi;
        if (trans) {
            lo = all[8 * j + (l % 4) * 2][l / 4];
            hi = all[8 * j + (l % 4) * 2 + 1][l / 4];
        } else {
            lo = all[8 * j + l / 4][(l % 4) * 2];
            hi = all[8 * j + l / 4][(l % 4) * 2 + 1];
        }
        r[j] = (unsigned)lo | (unsigned)hi << 16;
    }
}

// cp.async of `bytes` (zero-filled when !valid): queued in the thread's open group.
inline void cp_async(void* dst, const void* src, unsigned bytes, bool valid) {
    if ((uintptr_t)dst % bytes != 0 || (valid && (uintptr_t)src % bytes != 0))
        fail("cp.async address not aligned to its size");
    cur().open.push_back(Thread::Copy{dst, valid ? src : nullptr, bytes});
}
inline void cp_async_commit() {
    Thread& t = cur();
    t.groups.push_back(std::move(t.open));
    t.open.clear();
}
// cp.async.wait_group n: completes every committed group but the newest n.
inline void cp_async_wait(unsigned n) {
    Thread& t = cur();
    while (t.groups.size() > n) {
        for (auto& c : t.groups.front()) {
            if (c.src)
                memcpy(c.dst, c.src, c.bytes);
            else
                memset(c.dst, 0, c.bytes);
        }
        t.groups.erase(t.groups.begin());
    }
}

}  // namespace emu
