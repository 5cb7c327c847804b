// Element-wise span kernels compiled for generic: the code is eltwise_kernels.inc,
// the target's settings csrc/isa/generic.h (portable flags).
#include "isa/generic.h"
#include "eltwise_kernels.inc"
