// Winograd tile transforms compiled for avx512: the code is winograd_kernels.inc,
// the target's settings csrc/isa/avx512.h (CMake gives *_avx512.cpp its flags).
#include "isa/avx512.h"
#include "winograd_kernels.inc"
