// The emulator entries of rope.cu (see entry.h).
#include "entry.h"
#include "../rope.cu"

ENTRY(rope)
