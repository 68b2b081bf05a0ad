// The emulator entries of attention.cu (see entry.h).
#include "entry.h"
#include "../attention.cu"

ENTRY(attention_d128_r2)
ENTRY(attention_d128_r8)
ENTRY(attention_d128_r16)
ENTRY(attention_d256_r2)
ENTRY(attention_d256_r8)
ENTRY(attention_d256_r16)
ENTRY(attention_d512_r2)
ENTRY(attention_d512_r8)
ENTRY(attention_d512_r16)
ENTRY(attention_combine)
ENTRY(kv_write)
