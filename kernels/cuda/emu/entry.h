// entry.h: how each emu/<module>.cpp exposes its kernels to Rust (kernels/src/cuda/kernels.rs):
// ENTRY(name) defines garnet_emu_<name>(launch, params, err, err_len), which runs the whole
// grid of kernel `name` in the emulator and returns 0, or 1 with a message in err.
#pragma once
#include "cuda_emu.h"

namespace emu {
template <class P>
int entry(const Launch* l, void (*k)(P), const void* p, char* err, size_t err_len) noexcept {
    try {
        return run(*l, k, p, err, err_len);
    } catch (...) {
        snprintf(err, err_len, "emulator: out of memory");
        return 1;
    }
}
}  // namespace emu

#define ENTRY(name)                                                                                   \
    extern "C" int garnet_emu_##name(const emu::Launch* l, const void* p, char* err, size_t n) noexcept { \
        return emu::entry(l, name, p, err, n);                                                       \
    }
