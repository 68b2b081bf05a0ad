// The emulator entries of gemm.cu (see entry.h).
#include "entry.h"
#include "../gemm.cu"

ENTRY(gemm_tc_f16)
ENTRY(gemm_tc_bf16)
ENTRY(gemm_tc_q8_0)
ENTRY(gemm_tc_q4_0)
ENTRY(gemm_tc_q5_0)
ENTRY(gemm_tc_q4_k)
ENTRY(gemm_tc_q6_k)

ENTRY(gemm_f32_f32)
ENTRY(gemm_f32_f16)
ENTRY(gemm_f32_bf16)
ENTRY(gemm_f32_q8_0)
ENTRY(gemm_f32_q4_0)
ENTRY(gemm_f32_q5_0)
ENTRY(gemm_f32_q4_k)
ENTRY(gemm_f32_q6_k)
