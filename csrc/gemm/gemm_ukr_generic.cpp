// Portable micro-kernels: plain loops over a register tile that the compiler vectorises
// with whatever the baseline target offers (SSE2 on x86-64). Edge tiles compute the full
// tile and write back only its first m rows and n columns.
#include "gemm/ukernel.h"

namespace mg {
namespace generic {
namespace {

template <typename T, int MR, int NR>
void ukr(int64_t kc, const T* __restrict a, const T* __restrict b, int64_t ldb, T* __restrict c,
         int64_t ldc, T alpha, T beta, int m, int n) {
  T acc[MR][NR] = {};
  for (int64_t p = 0; p < kc; ++p) {
    const T* ap = a + p * MR;
    const T* bp = b + p * ldb;
    for (int i = 0; i < MR; ++i)
      for (int j = 0; j < NR; ++j) acc[i][j] += ap[i] * bp[j];
  }
  for (int i = 0; i < m; ++i) {
    T* ci = c + i * ldc;
    if (beta == T(0))
      for (int j = 0; j < n; ++j) ci[j] = alpha * acc[i][j];
    else
      for (int j = 0; j < n; ++j) ci[j] = alpha * acc[i][j] + beta * ci[j];
  }
}

}  // namespace

GemmMicroKernel<float> sgemm_ukr() { return {4, 8, &ukr<float, 4, 8>, "sgemm_ukr_generic_4x8"}; }
GemmMicroKernel<double> dgemm_ukr() { return {4, 4, &ukr<double, 4, 4>, "dgemm_ukr_generic_4x4"}; }

}  // namespace generic
}  // namespace mg
