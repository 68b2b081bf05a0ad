// The emulator entries of sample.cu (see entry.h).
#include "entry.h"
#include "../sample.cu"

ENTRY(argmax)
