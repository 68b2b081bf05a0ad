// The emulator entries of matmul.cu (see entry.h).
#include "entry.h"
#include "../matmul.cu"

#define MATVEC_EMU(dt, DT) ENTRY(matvec_##dt) ENTRY(matvec8_##dt)
#define GEMM_TC_EMU(dt, DT) ENTRY(gemm_tc_##dt)
#define GEMM_F32_EMU(dt, DT) ENTRY(gemm_f32_##dt)
FOR_EACH_DTYPE(MATVEC_EMU)
FOR_EACH_DTYPE_BUT_F32(GEMM_TC_EMU)
FOR_EACH_DTYPE(GEMM_F32_EMU)
