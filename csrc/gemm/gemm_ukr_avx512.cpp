// GEMM micro-kernels compiled for avx512: the code is gemm/gemm_ukr_simd.inc, the vector traits
// and blocking csrc/isa/avx512.h (CMake gives *_avx512.cpp its flags).
#include "isa/avx512.h"
#include "gemm/gemm_ukr_simd.inc"
