// General matrix multiply on row-major matrices:
//   C[m x n] = alpha * op(A)[m x k] * op(B)[k x n] + beta * C,   op(X) = X or X^T.
// A transposed operand is read in place (no copy): packing reads either orientation.
// With beta == 0, C is only written (it may hold garbage or NaN beforehand).
#pragma once
#include <cstdint>

namespace mg {

template <typename T>
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a,
          int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc);

// `batch` independent products; stride_* in elements between consecutive matrices
// (0 broadcasts one operand over the batch).
template <typename T>
void gemm_batched(bool trans_a, bool trans_b, int64_t batch, int64_t m, int64_t n, int64_t k,
                  T alpha, const T* a, int64_t lda, int64_t stride_a, const T* b, int64_t ldb,
                  int64_t stride_b, T beta, T* c, int64_t ldc, int64_t stride_c);

const char* gemm_impl_name();
// The dot-product kernel that tall-k products with a small C use (A as is, B transposed).
const char* gemm_dot_impl_name();

// Reference triple loop: the fallback's oracle in tests.
template <typename T>
void gemm_ref(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a,
              int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc);

}  // namespace mg
