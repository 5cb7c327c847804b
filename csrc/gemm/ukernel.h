// The contract between the GEMM driver (gemm.cpp) and its register-blocked micro-kernels.
//
// A micro-kernel computes one tile of C, at most mr x nr, from two slivers:
//   a: kc steps of mr values (column p of an MR-row sliver of op(A)), contiguous, zero-padded
//   b: kc rows of nr values (row p of an NR-column sliver of op(B)), rows `ldb` apart
//      (ldb == nr for a packed sliver; the row stride of B itself when B is read in place);
//      all nr values of every row are readable
//   C[i*ldc + j] = alpha * sum_p a[p*mr + i] * b[p*ldb + j] + beta * C[i*ldc + j]
//      for i < m, j < n  (m <= mr, n <= nr: edge tiles are handled by the kernel itself)
// beta == 0 means C is only written (it may hold NaN beforehand).
#pragma once
#include <cstdint>

namespace mg {

template <typename T>
struct GemmMicroKernel {
  int mr;
  int nr;
  void (*run)(int64_t kc, const T* a, const T* b, int64_t ldb, T* c, int64_t ldc, T alpha, T beta,
              int m, int n);
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
