// AVX2+FMA micro-kernels: MR rows of C, each two 256-bit vectors wide; A is broadcast one
// element at a time, B loaded as two vectors per k step. 6x2 accumulators + 2 B + 1 A = 15 of
// the 16 ymm registers. Compiled with -mavx2 -mfma; internal linkage keeps these copies out of
// the portable code.
#include <immintrin.h>

#include "gemm/ukernel.h"

namespace mg {
namespace avx2 {
namespace {

constexpr int kMR = 6;

void sgemm_6x16(int64_t kc, const float* __restrict a, const float* __restrict b,
                float* __restrict c, int64_t ldc, float alpha, float beta) {
  __m256 acc[kMR][2];
  for (int i = 0; i < kMR; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
  for (int64_t p = 0; p < kc; ++p) {
    const __m256 b0 = _mm256_loadu_ps(b + p * 16), b1 = _mm256_loadu_ps(b + p * 16 + 8);
    const float* ap = a + p * kMR;
    for (int i = 0; i < kMR; ++i) {
      const __m256 ai = _mm256_broadcast_ss(ap + i);
      acc[i][0] = _mm256_fmadd_ps(ai, b0, acc[i][0]);
      acc[i][1] = _mm256_fmadd_ps(ai, b1, acc[i][1]);
    }
  }
  const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
  for (int i = 0; i < kMR; ++i) {
    float* ci = c + i * ldc;
    __m256 r0 = _mm256_mul_ps(va, acc[i][0]), r1 = _mm256_mul_ps(va, acc[i][1]);
    if (beta != 0.0f) {
      r0 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(ci), r0);
      r1 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(ci + 8), r1);
    }
    _mm256_storeu_ps(ci, r0);
    _mm256_storeu_ps(ci + 8, r1);
  }
}

void dgemm_6x8(int64_t kc, const double* __restrict a, const double* __restrict b,
               double* __restrict c, int64_t ldc, double alpha, double beta) {
  __m256d acc[kMR][2];
  for (int i = 0; i < kMR; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_pd();
  for (int64_t p = 0; p < kc; ++p) {
    const __m256d b0 = _mm256_loadu_pd(b + p * 8), b1 = _mm256_loadu_pd(b + p * 8 + 4);
    const double* ap = a + p * kMR;
    for (int i = 0; i < kMR; ++i) {
      const __m256d ai = _mm256_broadcast_sd(ap + i);
      acc[i][0] = _mm256_fmadd_pd(ai, b0, acc[i][0]);
      acc[i][1] = _mm256_fmadd_pd(ai, b1, acc[i][1]);
    }
  }
  const __m256d va = _mm256_set1_pd(alpha), vb = _mm256_set1_pd(beta);
  for (int i = 0; i < kMR; ++i) {
    double* ci = c + i * ldc;
    __m256d r0 = _mm256_mul_pd(va, acc[i][0]), r1 = _mm256_mul_pd(va, acc[i][1]);
    if (beta != 0.0) {
      r0 = _mm256_fmadd_pd(vb, _mm256_loadu_pd(ci), r0);
      r1 = _mm256_fmadd_pd(vb, _mm256_loadu_pd(ci + 4), r1);
    }
    _mm256_storeu_pd(ci, r0);
    _mm256_storeu_pd(ci + 4, r1);
  }
}

}  // namespace

GemmMicroKernel<float> sgemm_ukr() { return {kMR, 16, &sgemm_6x16, "sgemm_ukr_avx2_6x16"}; }
GemmMicroKernel<double> dgemm_ukr() { return {kMR, 8, &dgemm_6x8, "dgemm_ukr_avx2_6x8"}; }

}  // namespace avx2
}  // namespace mg
