// The emulator entries of embed.cu (see entry.h).
#include "entry.h"
#include "../embed.cu"

#define EMBED_EMU(dt, DT) ENTRY(embed_##dt)
FOR_EACH_DTYPE(EMBED_EMU)
