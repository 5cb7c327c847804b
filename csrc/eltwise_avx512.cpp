// Element-wise span kernels built for the avx512 target (see eltwise_kernels.inc).
#include "eltwise.h"

namespace mg {
namespace avx512 {
namespace {
#include "eltwise_kernels.inc"
}  // namespace

EltwiseKernels<float> eltwise_f32() { return kernels<float>("eltwise_avx512"); }
EltwiseKernels<double> eltwise_f64() { return kernels<double>("eltwise_avx512"); }

}  // namespace avx512
}  // namespace mg
