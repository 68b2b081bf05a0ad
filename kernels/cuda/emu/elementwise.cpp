// The emulator entries of elementwise.cu (see entry.h).
#include "entry.h"
#include "../elementwise.cu"

ENTRY(scale)
ENTRY(add)
ENTRY(softcap)
ENTRY(geglu)
