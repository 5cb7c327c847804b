// Winograd tile transforms compiled for avx2: the code is winograd_kernels.inc,
// the target's settings csrc/isa/avx2.h (CMake gives *_avx2.cpp its flags).
#include "isa/avx2.h"
#include "winograd_kernels.inc"
