// Batch-norm span kernels for the avx512 path: compiled with -mavx512f/dq/bw/vl (CMake gives *_avx512.cpp those flags).
#include <cstdint>

#include "batchnorm.h"

namespace mg {
namespace avx512 {
namespace {
#include "batchnorm_spans.inc"
}  // namespace

BatchNormSpanKernels<float> batchnorm_kernels_f32() {
  return make_batchnorm_kernels<float>("batchnorm_spans_avx512");
}
BatchNormSpanKernels<double> batchnorm_kernels_f64() {
  return make_batchnorm_kernels<double>("batchnorm_spans_avx512");
}

}  // namespace avx512
}  // namespace mg
