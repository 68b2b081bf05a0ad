// The emulator entries of matvec.cu (see entry.h).
#include "entry.h"
#include "../matvec.cu"

#define MATVEC_ENTRY(dt) ENTRY(matvec_##dt) ENTRY(matvec8_##dt)
MATVEC_ENTRY(f32)
MATVEC_ENTRY(f16)
MATVEC_ENTRY(bf16)
MATVEC_ENTRY(q8_0)
MATVEC_ENTRY(q4_0)
MATVEC_ENTRY(q5_0)
MATVEC_ENTRY(q4_k)
MATVEC_ENTRY(q6_k)
