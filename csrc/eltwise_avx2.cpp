// Element-wise span kernels compiled for avx2: the code is eltwise_kernels.inc,
// the target's settings csrc/isa/avx2.h (CMake gives *_avx2.cpp its flags).
#include "isa/avx2.h"
#include "eltwise_kernels.inc"
