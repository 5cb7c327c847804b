// Batch-norm span kernels compiled for generic: the code is batchnorm_spans.inc,
// the target's settings csrc/isa/generic.h (portable flags).
#include "isa/generic.h"
#include "batchnorm_spans.inc"
