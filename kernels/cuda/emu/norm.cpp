// The emulator entries of norm.cu (see entry.h).
#include "entry.h"
#include "../norm.cu"

ENTRY(rms_norm)
ENTRY(add_rms_norm)
