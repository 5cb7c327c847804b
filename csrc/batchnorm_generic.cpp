// Batch-norm span kernels for the generic path: portable code, vectorised by the compiler for the baseline ISA (SSE2 on x86-64).
#include <cstdint>

#include "batchnorm.h"

namespace mg {
namespace generic {
namespace {
#include "batchnorm_spans.inc"
}  // namespace

BatchNormSpanKernels<float> batchnorm_kernels_f32() {
  return make_batchnorm_kernels<float>("batchnorm_spans_generic");
}
BatchNormSpanKernels<double> batchnorm_kernels_f64() {
  return make_batchnorm_kernels<double>("batchnorm_spans_generic");
}

}  // namespace generic
}  // namespace mg
