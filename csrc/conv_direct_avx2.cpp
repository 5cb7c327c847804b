// Direct convolution kernels built for the avx2 target (see conv_direct_kernels.inc).
#include <cstring>

#include "conv.h"

namespace mg {
namespace avx2 {
namespace {
#include "conv_direct_kernels.inc"
}  // namespace

ConvDirectKernels<float> conv_direct_f32() {
  return {16, &correlate<float>, &weight_grad<float>, "conv_direct_avx2_4x16",
          &chanvec_correlate<float>, &chanvec_weight_grad<float>, "conv_chanvec_avx2"};
}
ConvDirectKernels<double> conv_direct_f64() {
  return {8, &correlate<double>, &weight_grad<double>, "conv_direct_avx2_4x8",
          &chanvec_correlate<double>, &chanvec_weight_grad<double>, "conv_chanvec_avx2"};
}

}  // namespace avx2
}  // namespace mg
