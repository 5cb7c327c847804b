// Fused optimiser chunk kernels compiled for generic: the code is optim_kernels.inc,
// the target's settings csrc/isa/generic.h (portable flags).
#include "isa/generic.h"
#include "optim_kernels.inc"
