// The emulator entries of moe.cu (see entry.h).
#include "entry.h"
#include "../moe.cu"

ENTRY(moe_route)
ENTRY(moe_sort)
ENTRY(moe_combine)
#define MOE_EMU(name)             \
    ENTRY(moe_gate_up_##name)    \
    ENTRY(moe_down_##name)       \
    ENTRY(moe_down_pairs_##name)
MOE_EMU(f32)
MOE_EMU(f16)
MOE_EMU(bf16)
MOE_EMU(q8_0)
MOE_EMU(q4_0)
MOE_EMU(q5_0)
MOE_EMU(q4_k)
MOE_EMU(q6_k)
