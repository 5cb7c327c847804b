// AVX-512 micro-kernels: MR rows of C, each two 512-bit vectors wide; A is broadcast one
// element at a time, B loaded as two vectors per k step. 12x2 accumulators + 2 B + 1 A = 27 of
// the 32 zmm registers. Compiled with -mavx512f; internal linkage keeps these copies out of
// the portable code.
#include <immintrin.h>

#include "gemm/ukernel.h"

namespace mg {
namespace avx512 {
namespace {

constexpr int kMR = 12;

void sgemm_12x32(int64_t kc, const float* __restrict a, const float* __restrict b,
                float* __restrict c, int64_t ldc, float alpha, float beta) {
  __m512 acc[kMR][2];
  for (int i = 0; i < kMR; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
  for (int64_t p = 0; p < kc; ++p) {
    const __m512 b0 = _mm512_loadu_ps(b + p * 32), b1 = _mm512_loadu_ps(b + p * 32 + 16);
    const float* ap = a + p * kMR;
    for (int i = 0; i < kMR; ++i) {
      const __m512 ai = _mm512_set1_ps(*(ap + i));
      acc[i][0] = _mm512_fmadd_ps(ai, b0, acc[i][0]);
      acc[i][1] = _mm512_fmadd_ps(ai, b1, acc[i][1]);
    }
  }
  const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
  for (int i = 0; i < kMR; ++i) {
    float* ci = c + i * ldc;
    __m512 r0 = _mm512_mul_ps(va, acc[i][0]), r1 = _mm512_mul_ps(va, acc[i][1]);
    if (beta != 0.0f) {
      r0 = _mm512_fmadd_ps(vb, _mm512_loadu_ps(ci), r0);
      r1 = _mm512_fmadd_ps(vb, _mm512_loadu_ps(ci + 16), r1);
    }
    _mm512_storeu_ps(ci, r0);
    _mm512_storeu_ps(ci + 16, r1);
  }
}

void dgemm_12x16(int64_t kc, const double* __restrict a, const double* __restrict b,
               double* __restrict c, int64_t ldc, double alpha, double beta) {
  __m512d acc[kMR][2];
  for (int i = 0; i < kMR; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_pd();
  for (int64_t p = 0; p < kc; ++p) {
    const __m512d b0 = _mm512_loadu_pd(b + p * 16), b1 = _mm512_loadu_pd(b + p * 16 + 8);
    const double* ap = a + p * kMR;
    for (int i = 0; i < kMR; ++i) {
      const __m512d ai = _mm512_set1_pd(*(ap + i));
      acc[i][0] = _mm512_fmadd_pd(ai, b0, acc[i][0]);
      acc[i][1] = _mm512_fmadd_pd(ai, b1, acc[i][1]);
    }
  }
  const __m512d va = _mm512_set1_pd(alpha), vb = _mm512_set1_pd(beta);
  for (int i = 0; i < kMR; ++i) {
    double* ci = c + i * ldc;
    __m512d r0 = _mm512_mul_pd(va, acc[i][0]), r1 = _mm512_mul_pd(va, acc[i][1]);
    if (beta != 0.0) {
      r0 = _mm512_fmadd_pd(vb, _mm512_loadu_pd(ci), r0);
      r1 = _mm512_fmadd_pd(vb, _mm512_loadu_pd(ci + 8), r1);
    }
    _mm512_storeu_pd(ci, r0);
    _mm512_storeu_pd(ci + 8, r1);
  }
}

}  // namespace

GemmMicroKernel<float> sgemm_ukr() { return {kMR, 32, &sgemm_12x32, "sgemm_ukr_avx512_12x32"}; }
GemmMicroKernel<double> dgemm_ukr() { return {kMR, 16, &dgemm_12x16, "dgemm_ukr_avx512_12x16"}; }

}  // namespace avx512
}  // namespace mg
