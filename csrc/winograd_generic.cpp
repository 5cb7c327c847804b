// Winograd tile transforms compiled for generic: the code is winograd_kernels.inc,
// the target's settings csrc/isa/generic.h (CMake gives *_generic.cpp its flags).
#include "isa/generic.h"
#include "winograd_kernels.inc"
