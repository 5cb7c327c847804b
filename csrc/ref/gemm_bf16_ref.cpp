// Reference bfloat16 GEMM: the textbook triple loop on bfloat16-rounded operands with float32
// accumulation in k order, the oracle the bfloat16 kernels are tested against.
#include "gemm/bf16.h"

namespace mg {

template <typename TA, typename TB>
void gemm_bf16_ref(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                   const TA* a, int64_t lda, const TB* b, int64_t ldb, float beta, float* c,
                   int64_t ldc) {
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      float acc = 0.0f;
      for (int64_t p = 0; p < k; ++p) {
        const float a_ip = to_float(to_bf16(trans_a ? a[p * lda + i] : a[i * lda + p]));
        const float b_pj = to_float(to_bf16(trans_b ? b[j * ldb + p] : b[p * ldb + j]));
        acc += a_ip * b_pj;  // exact product: 8 x 8 significant bits
      }
      float& dst = c[i * ldc + j];
      dst = alpha * acc + (beta == 0.0f ? 0.0f : beta * dst);
    }
}

#define MG_INSTANTIATE(TA, TB)                                                                   \
  template void gemm_bf16_ref<TA, TB>(bool, bool, int64_t, int64_t, int64_t, float, const TA*,  \
                                      int64_t, const TB*, int64_t, float, float*, int64_t);
MG_INSTANTIATE(bf16, bf16)
MG_INSTANTIATE(bf16, float)
MG_INSTANTIATE(float, bf16)
MG_INSTANTIATE(float, float)
#undef MG_INSTANTIATE

}  // namespace mg
