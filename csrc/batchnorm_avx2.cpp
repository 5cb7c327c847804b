// Batch-norm span kernels compiled for avx2: the code is batchnorm_spans.inc,
// the target's settings csrc/isa/avx2.h (CMake gives *_avx2.cpp its flags).
#include "isa/avx2.h"
#include "batchnorm_spans.inc"
