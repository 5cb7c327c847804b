// Batch-norm span kernels compiled for avx512: the code is batchnorm_spans.inc,
// the target's settings csrc/isa/avx512.h (CMake gives *_avx512.cpp its flags).
#include "isa/avx512.h"
#include "batchnorm_spans.inc"
