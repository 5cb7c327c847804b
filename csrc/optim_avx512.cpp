// Fused optimiser chunk kernels compiled for avx512 (-mavx512f/dq/bw/vl); the loops live in
// optim_kernels.inc and are vectorised by the compiler for this instruction set.
#include "optim.h"

#define MG_OPTIM_HAS_FMA 1

namespace mg {
namespace avx512 {
namespace {
#include "optim_kernels.inc"
}  // namespace

OptimChunkKernels<float> optim_kernels_f32() { return chunk_kernels<float>("optim_fused_avx512"); }
OptimChunkKernels<double> optim_kernels_f64() { return chunk_kernels<double>("optim_fused_avx512"); }

}  // namespace avx512
}  // namespace mg
