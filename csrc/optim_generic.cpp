// Fused optimiser chunk kernels compiled for generic (portable x86-64 (no FMA: multiply-adds stay two roundings)); the loops live in
// optim_kernels.inc and are vectorised by the compiler for this instruction set.
#include "optim.h"

#define MG_OPTIM_HAS_FMA 0

namespace mg {
namespace generic {
namespace {
#include "optim_kernels.inc"
}  // namespace

OptimChunkKernels<float> optim_kernels_f32() { return chunk_kernels<float>("optim_fused_generic"); }
OptimChunkKernels<double> optim_kernels_f64() { return chunk_kernels<double>("optim_fused_generic"); }

}  // namespace generic
}  // namespace mg
