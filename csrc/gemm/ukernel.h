// The contract between the GEMM driver (gemm.cpp) and its register-blocked micro-kernels.
//
// A micro-kernel computes one mr x nr tile of C from packed panels:
//   a: kc steps of mr values (column k of the A sliver), contiguous
//   b: kc steps of nr values (row k of the B sliver), contiguous
//   C[i*ldc + j] = alpha * sum_k a[k*mr + i] * b[k*nr + j] + beta * C[i*ldc + j]
// beta == 0 means C is not read. The driver only calls it on full tiles; edge tiles go
// through a scratch tile, so kernels never see partial sizes.
#pragma once
#include <cstdint>

namespace mg {

template <typename T>
struct GemmMicroKernel {
  int mr;
  int nr;
  void (*run)(int64_t kc, const T* a, const T* b, T* c, int64_t ldc, T alpha, T beta);
  const char* name;
};

namespace generic {
GemmMicroKernel<float> sgemm_ukr();
GemmMicroKernel<double> dgemm_ukr();
}  // namespace generic
namespace avx2 {
GemmMicroKernel<float> sgemm_ukr();
GemmMicroKernel<double> dgemm_ukr();
}  // namespace avx2
namespace avx512 {
GemmMicroKernel<float> sgemm_ukr();
GemmMicroKernel<double> dgemm_ukr();
}  // namespace avx512

}  // namespace mg
