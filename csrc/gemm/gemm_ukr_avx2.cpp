// GEMM micro-kernels compiled for avx2: the code is gemm/gemm_ukr_simd.inc, the vector traits
// and blocking csrc/isa/avx2.h (CMake gives *_avx2.cpp its flags).
#include "isa/avx2.h"
#include "gemm/gemm_ukr_simd.inc"
