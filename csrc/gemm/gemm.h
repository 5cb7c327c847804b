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

// A left operand packed once into the micro-kernel's slivers, for a series of products
// against different right operands (Winograd's transformed weights, one product per chunk of
// tiles): packing a 16 x 16 operand for each 16 x 128 x 16 product took a tenth of the
// convolution's time. The layout is public so that a producer can write A straight into it.
struct PackedLayout {
  int64_t m, k;
  int64_t kc;    // depth of one pass: pass q's slivers start at q * kc * rows
  int64_t rows;  // m rounded up to the micro-kernel's height
  int mr;
  int64_t size() const { return rows * k; }
  // Calls visit(i, p) for the entries in their packed order: the q-th call is for the value
  // that goes to q, A[i][p] (i >= m: a padding row).
  template <typename Visit>
  void for_each_entry(Visit visit) const {
    for (int64_t pc = 0; pc < k; pc += kc)
      for (int64_t is = 0; is < rows; is += mr)
        for (int64_t p = pc; p < pc + kc && p < k; ++p)
          for (int64_t i = is; i < is + mr; ++i) visit(i, p);
  }
};

// The active micro-kernel's layout for an m x k left operand.
template <typename T>
PackedLayout gemm_packed_layout(int64_t m, int64_t k);

// C[m x n] = A B + beta C on the calling thread, for A packed in `layout` (entries of the
// rows past m: zero) and B (k x n, not transposed) read in place: the many small products of
// a driver that already shares its work among threads.
template <typename T>
void gemm_packed_a(const PackedLayout& layout, const T* a, int64_t n, const T* b, int64_t ldb,
                   T beta, T* c, int64_t ldc);

// C[m x n] += A B^T on the calling thread with the dot-product kernel (rows of A and B, both
// k long, read in place): Winograd's weight gradient per chunk of tiles, whose operands have
// the tiles (k) contiguous and would each need a transposing pack on the packed road.
template <typename T>
void gemm_dot_accumulate(int64_t m, int64_t n, int64_t k, const T* a, int64_t lda, const T* b,
                         int64_t ldb, T* c, int64_t ldc);

const char* gemm_impl_name();
// The dot-product kernel that tall-k products with a small C use (A as is, B transposed).
const char* gemm_dot_impl_name();

// Reference triple loop: the fallback's oracle in tests.
template <typename T>
void gemm_ref(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a,
              int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc);

}  // namespace mg
