// Batch-norm span kernels for the avx2 path: compiled with -mavx2 -mfma (CMake gives *_avx2.cpp those flags).
#include <cstdint>

#include "batchnorm.h"

namespace mg {
namespace avx2 {
namespace {
#include "batchnorm_spans.inc"
}  // namespace

BatchNormSpanKernels<float> batchnorm_kernels_f32() {
  return make_batchnorm_kernels<float>("batchnorm_spans_avx2");
}
BatchNormSpanKernels<double> batchnorm_kernels_f64() {
  return make_batchnorm_kernels<double>("batchnorm_spans_avx2");
}

}  // namespace avx2
}  // namespace mg
