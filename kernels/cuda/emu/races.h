// races.h: the CUDA emulator's race detector, part of cuda_emu.h (included there after Block
// and Warp, which it reads; see that file's header for what it catches and what it does not).
#pragma once
#include <sys/mman.h>

namespace emu {

// ---- the race detector (a launch with `races` set) ----
// Shadow memory: per 4-byte word, the last store and a summary of the loads since it. Two
// accesses by different threads, one a store, race unless ordered: same block and a
// `__syncthreads` between them, or lanes of one warp and a collective over both between them
// (`warp_phase`: `__syncwarp`, shuffles, votes, mma, ldmatrix). Blocks of a launch never order.
struct Rec {
    uint32_t block;   // 1 + the accessing block's linear index (0: none); BLOCKS: the first's
    uint32_t epoch;   // __syncthreads the block had completed; BLOCKS: 1 + the second block's index
    uint32_t gen;     // collectives the thread's warp had completed (several lanes: the latest's)
    uint16_t thread;  // the accessing thread (several: the first)
    uint16_t other;   // kind (top bits) | another accessing thread (several: the latest other)
};
// Loads by: one thread; several lanes of one warp; several warps of the block, in one barrier
// interval; several blocks (then any store races with one of them).
enum : uint16_t { ONE = 0, LANES = 1 << 12, WARPS = 2 << 12, BLOCKS = 3 << 12, KIND = 3 << 12, WHO = 0x3ff };

// Records for any address, in chunks mapped on first use (untouched pages cost nothing): a
// 330 MB weight read once costs 4x its size in load records, for the launch, and no lookup
// beyond a one-entry chunk cache.
struct Shadow {
    static constexpr unsigned kBits = 20;  // 1 MiB of memory per chunk
    static constexpr size_t kWords = (size_t)1 << (kBits - 2);
    struct Chunk {
        Rec* load = nullptr;
        Rec* store = nullptr;
    };
    std::unordered_map<uintptr_t, Chunk> chunks;  // node-based: `last` survives rehashing
    uintptr_t last_key = ~(uintptr_t)0;
    Chunk* last = nullptr;

    static Rec* map() {
        void* p = mmap(nullptr, kWords * sizeof(Rec), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) throw std::bad_alloc();
        return static_cast<Rec*>(p);
    }
    Chunk& chunk(uintptr_t addr) {
        if (addr >> kBits != last_key) {
            last_key = addr >> kBits;
            last = &chunks[last_key];
        }
        return *last;
    }
    Shadow() = default;
    Shadow(const Shadow&) = delete;
    Shadow& operator=(const Shadow&) = delete;
    ~Shadow() {
        for (auto& [key, c] : chunks) {
            if (c.load) munmap(c.load, kWords * sizeof(Rec));
            if (c.store) munmap(c.store, kWords * sizeof(Rec));
        }
    }
};

inline unsigned long long splitmix64(unsigned long long& s) {
    unsigned long long z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

struct Races {
    Shadow global, shared;  // shared: records of another block are stale (each has its own)
    unsigned long long rng;  // the scheduling order's generator (splitmix64)
};

// The lanes of warp `w` that exist in the block.
inline unsigned warp_lanes(const Block& b, unsigned w) {
    unsigned n = w + 1 == b.warps.size() ? b.lanes_last : 32;
    return n == 32 ? 0xffffffffu : (1u << n) - 1;
}

// Whether thread a's access at warp gen `gen` is ordered before thread t's now (same warp).
inline bool warp_ordered(const Block& b, unsigned a, unsigned gen, unsigned t) {
    const Warp& w = b.warps[t >> 5];
    if (w.full_gen > gen) return true;
    return w.pair && w.pair[t & 31][a & 31] > gen;
}

// Whether accesses by any other lane of t's warp at warp gens up to `gen` are ordered before now.
inline bool lanes_ordered(const Block& b, unsigned gen, unsigned t) {
    const Warp& w = b.warps[t >> 5];
    if (w.full_gen > gen) return true;
    if (!w.pair) return false;
    unsigned lanes = warp_lanes(b, t >> 5) & ~(1u << (t & 31));
    for (unsigned a = 0; a < 32; a++)
        if ((lanes >> a & 1u) && w.pair[t & 31][a] <= gen) return false;
    return true;
}

// Whether the single access `r` is ordered before thread t's now, at barrier epoch `epoch`.
inline bool ordered(const Block& b, const Rec& r, unsigned t, unsigned epoch) {
    if (r.block != b.seq) return false;
    if (r.epoch != epoch || r.thread == t) return true;
    return (r.thread >> 5) == (t >> 5) && warp_ordered(b, r.thread, r.gen, t);
}

inline std::string who(const Block& b, unsigned seq, unsigned thread) {
    unsigned i = seq - 1, gx = b.grid.x, gy = b.grid.y, tx = b.dim.x, ty = b.dim.y;
    char m[96];
    snprintf(m, sizeof m, "block (%u,%u,%u) thread (%u,%u,%u)", i % gx, i / gx % gy, i / (gx * gy), thread % tx,
             thread / tx % ty, thread / (tx * ty));
    return m;
}

[[noreturn]] inline void race(const Block& b, bool shared, uintptr_t addr, bool store, bool earlier_store,
                              unsigned seq, unsigned thread) {
    unsigned t = b.cur->linear;
    const char* why = seq != b.seq                ? "different blocks"
                      : (thread >> 5) == (t >> 5) ? "no __syncthreads or warp collective between"
                                                  : "no __syncthreads between";
    char m[400];
    snprintf(m, sizeof m, "data race on %s memory at %#llx: %s by %s, %s by %s (%s)", shared ? "shared" : "global",
             (unsigned long long)addr, store ? "store" : "load", who(b, b.seq, t).c_str(),
             earlier_store ? "store" : "load", who(b, seq, thread).c_str(), why);
    fail(m);
}

// A store by thread t against the loads recorded in `l` since the last store.
inline void check_loads(const Block& b, const Rec& l, unsigned t, unsigned epoch, bool shared, uintptr_t a) {
    unsigned kind = l.other & KIND, other = l.other & WHO;
    if (kind == BLOCKS) {
        if (l.block != b.seq) race(b, shared, a, true, false, l.block, l.thread);
        race(b, shared, a, true, false, l.epoch, other);
    }
    if (kind == ONE) {
        if (!ordered(b, l, t, epoch)) race(b, shared, a, true, false, l.block, l.thread);
        return;
    }
    if (l.block != b.seq) race(b, shared, a, true, false, l.block, l.thread);
    if (l.epoch != epoch) return;
    unsigned witness = l.thread != t ? l.thread : other;
    if (kind == WARPS) race(b, shared, a, true, false, b.seq, (l.thread >> 5) != (t >> 5) ? l.thread : other);
    if ((l.thread >> 5) != (t >> 5) || !lanes_ordered(b, l.gen, t)) race(b, shared, a, true, false, b.seq, witness);
}

// Adds a load by thread t to the loads recorded in `l`.
inline void merge_load(const Block& b, Rec& l, unsigned t, unsigned epoch, unsigned gen) {
    const Rec mine{b.seq, epoch, gen, (uint16_t)t, ONE};
    unsigned kind = l.other & KIND;
    if (l.block == 0) {
        l = mine;
    } else if (kind == BLOCKS) {
    } else if (l.block != b.seq) {
        l = Rec{l.block, b.seq, 0, l.thread, (uint16_t)(BLOCKS | t)};
    } else if (l.epoch != epoch) {
        l = mine;  // the earlier loads are ordered before anything this block does from now on
    } else if (kind == WARPS) {
    } else if ((l.thread >> 5) != (t >> 5)) {
        l = Rec{b.seq, epoch, 0, l.thread, (uint16_t)(WARPS | t)};
    } else if (kind == ONE ? l.thread == t || warp_ordered(b, l.thread, l.gen, t) : lanes_ordered(b, l.gen, t)) {
        l = mine;
    } else {
        l.gen = gen;
        l.other = (uint16_t)(LANES | (l.thread != t ? t : l.other & WHO));
    }
}

inline void race_note(Block& b, const void* p, unsigned bytes, bool shared, bool store) {
    Shadow& sh = shared ? b.races->shared : b.races->global;
    const unsigned t = b.cur->linear, epoch = b.bar_gen, gen = b.warps[t >> 5].gen;
    for (uintptr_t a = (uintptr_t)p & ~(uintptr_t)3; a < (uintptr_t)p + bytes; a += 4) {
        Shadow::Chunk& c = sh.chunk(a);
        size_t i = (a >> 2) & (Shadow::kWords - 1);
        // Every access is ordered after the last store, or races with it.
        if (c.store) {
            const Rec& w = c.store[i];
            if (w.block != 0 && !(shared && w.block != b.seq) && !ordered(b, w, t, epoch))
                race(b, shared, a, store, true, w.block, w.thread);
        }
        if (store) {
            if (c.load) {
                Rec& l = c.load[i];
                if (l.block != 0 && !(shared && l.block != b.seq))
                    check_loads(b, l, t, epoch, shared, a);
                l = Rec{};  // loads before an ordered store are ordered before what follows it
            }
            if (!c.store) c.store = Shadow::map();
            c.store[i] = Rec{b.seq, epoch, gen, (uint16_t)t, ONE};
        } else {
            if (!c.load) c.load = Shadow::map();
            Rec& l = c.load[i];
            if (shared && l.block != b.seq) l = Rec{};
            merge_load(b, l, t, epoch, gen);
        }
    }
}

}  // namespace emu
