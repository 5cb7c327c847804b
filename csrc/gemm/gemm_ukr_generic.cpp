// Portable micro-kernels: plain loops over a register tile that the compiler vectorises
// with whatever the baseline target offers (SSE2 on x86-64). Edge tiles compute the full
// tile and write back only its first m rows and n columns. The tile sizes are in
// csrc/isa/generic.h.
#include "isa/generic.h"

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

// The dot-product kernel (ukernel.h): each of the M x N sums keeps L lanes of partial sums
// along k (lane l takes every L-th product), so the inner loop over lanes vectorises without
// reordering a sum; the lanes are added in a fixed pairwise tree at the end.
template <typename T, int MR, int NR, int L>
void dot(int64_t kc, const T* __restrict a, int64_t lda, const T* __restrict b, int64_t ldb,
         T* __restrict out, int64_t ldo, int m, int n) {
  T acc[MR][NR][L] = {};
  const int64_t full = kc / L * L;
  for (int64_t p = 0; p < kc; p += L) {
    const int len = p < full ? L : static_cast<int>(kc - p);
    for (int i = 0; i < MR; ++i) {
      if (i >= m) break;
      const T* ai = a + i * lda + p;
      for (int j = 0; j < NR; ++j) {
        if (j >= n) break;
        const T* bj = b + j * ldb + p;
        if (len == L)
          for (int l = 0; l < L; ++l) acc[i][j][l] += ai[l] * bj[l];
        else
          for (int l = 0; l < len; ++l) acc[i][j][l] += ai[l] * bj[l];
      }
    }
  }
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < n; ++j) {
      T* s = acc[i][j];
      for (int w = L / 2; w >= 1; w /= 2)
        for (int l = 0; l < w; ++l) s[l] += s[l + w];
      out[i * ldo + j] += s[0];
    }
}

template <typename T, int NR>
GemmMicroKernel<T> micro_kernel(const char* name) {
  // No streaming stores: the portable code has no non-temporal store to offer.
  return {kGemmMR, NR, &ukr<T, kGemmMR, NR>, nullptr, name,
          {kGemmBSliverBytes, kGemmABlockBytes, kGemmBPanelBytes}};
}

template <typename T, int L>
GemmDotKernel<T> dot_kernel(const char* name) {
  return {kGemmDotMR, kGemmDotNR, &dot<T, kGemmDotMR, kGemmDotNR, L>, name};
}

}  // namespace
}  // namespace generic

// The names carry the tile shape ("sgemm_ukr_generic_4x8"), built from the constants.
template <>
GemmMicroKernel<float> kernel_table<GemmMicroKernel<float>, Isa::generic>() {
  static constexpr GemmKernelName name =
      gemm_kernel_name("sgemm_ukr_generic_", generic::kGemmMR, generic::kGemmNRF32);
  return generic::micro_kernel<float, generic::kGemmNRF32>(name.text);
}
template <>
GemmMicroKernel<double> kernel_table<GemmMicroKernel<double>, Isa::generic>() {
  static constexpr GemmKernelName name =
      gemm_kernel_name("dgemm_ukr_generic_", generic::kGemmMR, generic::kGemmNRF64);
  return generic::micro_kernel<double, generic::kGemmNRF64>(name.text);
}
template <>
GemmDotKernel<float> kernel_table<GemmDotKernel<float>, Isa::generic>() {
  static constexpr GemmKernelName name =
      gemm_kernel_name("sdot_generic_", generic::kGemmDotMR, generic::kGemmDotNR);
  return generic::dot_kernel<float, generic::kGemmDotLanesF32>(name.text);
}
template <>
GemmDotKernel<double> kernel_table<GemmDotKernel<double>, Isa::generic>() {
  static constexpr GemmKernelName name =
      gemm_kernel_name("ddot_generic_", generic::kGemmDotMR, generic::kGemmDotNR);
  return generic::dot_kernel<double, generic::kGemmDotLanesF64>(name.text);
}

}  // namespace mg
