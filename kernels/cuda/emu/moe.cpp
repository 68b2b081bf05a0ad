// The emulator entries of moe.cu (see entry.h).
#include "entry.h"
#include "../moe.cu"

ENTRY(moe_route)
ENTRY(moe_sort)
ENTRY(moe_combine)
#define MOE_EMU(name, DT)         \
    ENTRY(moe_gate_up_##name)    \
    ENTRY(moe_down_##name)       \
    ENTRY(moe_down_pairs_##name)
FOR_EACH_DTYPE(MOE_EMU)
