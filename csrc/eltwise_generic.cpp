// Element-wise span kernels built for the generic target (see eltwise_kernels.inc).
#include "eltwise.h"

namespace mg {
namespace generic {
namespace {
#include "eltwise_kernels.inc"
}  // namespace

EltwiseKernels<float> eltwise_f32() { return kernels<float>("eltwise_generic"); }
EltwiseKernels<double> eltwise_f64() { return kernels<double>("eltwise_generic"); }

}  // namespace generic
}  // namespace mg
