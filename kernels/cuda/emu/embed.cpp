// The emulator entries of embed.cu (see entry.h).
#include "entry.h"
#include "../embed.cu"

ENTRY(embed_f32)
ENTRY(embed_f16)
ENTRY(embed_bf16)
ENTRY(embed_q8_0)
ENTRY(embed_q4_0)
ENTRY(embed_q5_0)
ENTRY(embed_q4_k)
ENTRY(embed_q6_k)
