// Reference GEMM: the textbook triple loop, the oracle the fast kernels are tested against.
#include "gemm/gemm.h"

namespace mg {

template <typename T>
void gemm_ref(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a,
              int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc) {
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      T acc = T(0);
      for (int64_t p = 0; p < k; ++p) {
        const T a_ip = trans_a ? a[p * lda + i] : a[i * lda + p];
        const T b_pj = trans_b ? b[j * ldb + p] : b[p * ldb + j];
        acc += a_ip * b_pj;
      }
      T& dst = c[i * ldc + j];
      dst = alpha * acc + (beta == T(0) ? T(0) : beta * dst);
    }
}

template void gemm_ref<float>(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t,
                              const float*, int64_t, float, float*, int64_t);
template void gemm_ref<double>(bool, bool, int64_t, int64_t, int64_t, double, const double*,
                               int64_t, const double*, int64_t, double, double*, int64_t);

}  // namespace mg
