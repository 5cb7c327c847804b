// Element-wise span kernels built for the avx2 target (see eltwise_kernels.inc).
#include "eltwise.h"

namespace mg {
namespace avx2 {
namespace {
#include "eltwise_kernels.inc"
}  // namespace

EltwiseKernels<float> eltwise_f32() { return kernels<float>("eltwise_avx2"); }
EltwiseKernels<double> eltwise_f64() { return kernels<double>("eltwise_avx2"); }

}  // namespace avx2
}  // namespace mg
