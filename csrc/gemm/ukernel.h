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
//
// run_stream (nullptr where the ISA has none) computes a full mr x nr tile with beta == 0 and
// writes C with non-temporal stores, which skip reading C's lines into the cache first: for
// large outputs of short products, which are bound by writing C. Every row of the tile must
// start 64-byte aligned; the caller issues a store fence before anyone reads C.
#pragma once
#include <cstdint>

#include "dispatch.h"

namespace mg {

// The cache blocking the driver derives from a micro-kernel (gemm.cpp, blocking_for): byte
// budgets for one KC x NR sliver of B, one thread's packed MC x KC block of A and the team's
// KC x NC panel of B. They are tuning constants of the ISA (csrc/isa/<isa>.h), carried here so
// that the portable driver reads them from the table it runs.
struct GemmCacheBudget {
  int64_t b_sliver_bytes;
  int64_t a_block_bytes;
  int64_t b_panel_bytes;
};

template <typename T>
struct GemmMicroKernel {
  int mr;
  int nr;
  void (*run)(int64_t kc, const T* a, const T* b, int64_t ldb, T* c, int64_t ldc, T alpha, T beta,
              int m, int n);
  void (*run_stream)(int64_t kc, const T* a, const T* b, int64_t ldb, T* c, int64_t ldc, T alpha,
                     T beta, int m, int n);
  const char* name;
  GemmCacheBudget cache;
};

// The dot-product kernel, for op(A) = A and op(B) = B^T, whose rows both run along k: it
// reads them in place (no packing) and adds one chunk of k to a block of partial sums:
//   out[i*ldo + j] += sum_{p < kc} a[i*lda + p] * b[j*ldb + p]   for i < m <= mr, j < n <= nr
// Each sum runs in a fixed order (lanes along p, then the lanes added in a fixed tree), so
// the result depends only on kc and the data. It serves tall-k products with a small C
// (a convolution's weight gradient), where packing would move as much data as the product
// computes.
template <typename T>
struct GemmDotKernel {
  int mr;
  int nr;
  void (*run)(int64_t kc, const T* a, int64_t lda, const T* b, int64_t ldb, T* out, int64_t ldo,
              int m, int n);
  const char* name;
};

// A kernel's name with its tile shape, "<prefix><rows>x<cols>", built by the compiler from the
// constants the kernel is made of, so that the name cannot disagree with them. (Only ever
// evaluated at compile time, into static constexpr names: no code of it is emitted.)
struct GemmKernelName {
  char text[48];
};
constexpr GemmKernelName gemm_kernel_name(const char* prefix, int rows, int cols) {
  GemmKernelName name{};
  int at = 0;
  for (const char* p = prefix; *p != '\0'; ++p) name.text[at++] = *p;
  const int parts[2] = {rows, cols};
  for (int k = 0; k < 2; ++k) {
    if (k == 1) name.text[at++] = 'x';
    char digits[12] = {};
    int len = 0;
    for (int v = parts[k]; len == 0 || v > 0; v /= 10)
      digits[len++] = static_cast<char>('0' + v % 10);
    while (len > 0) name.text[at++] = digits[--len];
  }
  return name;
}

// One of each per ISA and dtype, defined by gemm_ukr_<isa>.cpp; the driver takes the active
// ISA's with isa_table<GemmMicroKernel<T>>() (dispatch.h).
MG_DECLARE_KERNEL_TABLES(GemmMicroKernel<float>)
MG_DECLARE_KERNEL_TABLES(GemmMicroKernel<double>)
MG_DECLARE_KERNEL_TABLES(GemmDotKernel<float>)
MG_DECLARE_KERNEL_TABLES(GemmDotKernel<double>)

}  // namespace mg
