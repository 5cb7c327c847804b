// Direct convolution kernels compiled for generic: the code is conv_direct_kernels.inc,
// the target's settings csrc/isa/generic.h (portable flags).
#include "isa/generic.h"
#include "conv_direct_kernels.inc"
