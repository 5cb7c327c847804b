// AVX2+FMA micro-kernels: up to 6 rows of C, each two 256-bit vectors wide (6x16 floats,
// 6x8 doubles). A is broadcast one element at a time, B loaded as two vectors per k step:
// 6x2 accumulators + 2 B + 1 A = 15 of the 16 ymm registers.
//
// Edge tiles run the loop specialised for their row count; columns past the edge are
// computed (B slivers are always nr wide) but only the first n are written back, through a
// small stack tile. Compiled with -mavx2 -mfma; internal linkage keeps these copies out of
// the portable code.
#include <immintrin.h>

#include "gemm/ukernel.h"

namespace mg {
namespace avx2 {
namespace {

constexpr int kMR = 6;

struct F32 {
  using T = float;
  using V = __m256;
  static constexpr int kLanes = 8;
  static V zero() { return _mm256_setzero_ps(); }
  static V set1(T x) { return _mm256_set1_ps(x); }
  static V load(const T* p) { return _mm256_loadu_ps(p); }
  static void store(T* p, V v) { _mm256_storeu_ps(p, v); }
  static void stream(T* p, V v) { _mm256_stream_ps(p, v); }
  static V fmadd(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  // Lanes [0, r) on.
  static __m256i mask(int r) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(r), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static V load(const T* p, __m256i m) { return _mm256_maskload_ps(p, m); }
  static T sum(V v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_shuffle_ps(s, s, 1)));
  }
};

struct F64 {
  using T = double;
  using V = __m256d;
  static constexpr int kLanes = 4;
  static V zero() { return _mm256_setzero_pd(); }
  static V set1(T x) { return _mm256_set1_pd(x); }
  static V load(const T* p) { return _mm256_loadu_pd(p); }
  static void store(T* p, V v) { _mm256_storeu_pd(p, v); }
  static void stream(T* p, V v) { _mm256_stream_pd(p, v); }
  static V fmadd(V a, V b, V c) { return _mm256_fmadd_pd(a, b, c); }
  static V mul(V a, V b) { return _mm256_mul_pd(a, b); }
  static __m256i mask(int r) {
    return _mm256_cmpgt_epi64(_mm256_set1_epi64x(r), _mm256_setr_epi64x(0, 1, 2, 3));
  }
  static V load(const T* p, __m256i m) { return _mm256_maskload_pd(p, m); }
  static T sum(V v) {
    const __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
  }
};

// M rows (<= 6) of a tile two vectors wide; writes the first n columns.
// Stream: non-temporal stores (full, aligned tiles only; see ukernel.h).
template <class S, int M, bool Stream = false>
void tile(int64_t kc, const typename S::T* __restrict a, const typename S::T* __restrict b,
          int64_t ldb, typename S::T* __restrict c, int64_t ldc, typename S::T alpha,
          typename S::T beta, int n) {
  using T = typename S::T;
  using V = typename S::V;
  constexpr int kNR = 2 * S::kLanes;
  V acc[M][2];
#pragma GCC unroll 6
  for (int i = 0; i < M; ++i) acc[i][0] = acc[i][1] = S::zero();
  for (int64_t p = 0; p < kc; ++p) {
    const V b0 = S::load(b), b1 = S::load(b + S::kLanes);
#pragma GCC unroll 6
    for (int i = 0; i < M; ++i) {
      const V ai = S::set1(a[i]);
      acc[i][0] = S::fmadd(ai, b0, acc[i][0]);
      acc[i][1] = S::fmadd(ai, b1, acc[i][1]);
    }
    a += kMR;
    b += ldb;
  }
  const V va = S::set1(alpha), vb = S::set1(beta);
  if (n == kNR) {
#pragma GCC unroll 6
    for (int i = 0; i < M; ++i) {
      T* ci = c + i * ldc;
      V r0 = S::mul(va, acc[i][0]), r1 = S::mul(va, acc[i][1]);
      if (beta != T(0)) {
        r0 = S::fmadd(vb, S::load(ci), r0);
        r1 = S::fmadd(vb, S::load(ci + S::kLanes), r1);
      }
      if (Stream) {
        S::stream(ci, r0);
        S::stream(ci + S::kLanes, r1);
      } else {
        S::store(ci, r0);
        S::store(ci + S::kLanes, r1);
      }
    }
    return;
  }
  alignas(32) T row[kNR];
  for (int i = 0; i < M; ++i) {
    T* ci = c + i * ldc;
    S::store(row, S::mul(va, acc[i][0]));
    S::store(row + S::kLanes, S::mul(va, acc[i][1]));
    for (int j = 0; j < n; ++j) ci[j] = row[j] + (beta == T(0) ? T(0) : beta * ci[j]);
  }
}

template <class S>
void run(int64_t kc, const typename S::T* a, const typename S::T* b, int64_t ldb,
         typename S::T* c, int64_t ldc, typename S::T alpha, typename S::T beta, int m, int n) {
  switch (m) {
    case 1: return tile<S, 1>(kc, a, b, ldb, c, ldc, alpha, beta, n);
    case 2: return tile<S, 2>(kc, a, b, ldb, c, ldc, alpha, beta, n);
    case 3: return tile<S, 3>(kc, a, b, ldb, c, ldc, alpha, beta, n);
    case 4: return tile<S, 4>(kc, a, b, ldb, c, ldc, alpha, beta, n);
    case 5: return tile<S, 5>(kc, a, b, ldb, c, ldc, alpha, beta, n);
    default: return tile<S, 6>(kc, a, b, ldb, c, ldc, alpha, beta, n);
  }
}

// The dot-product kernel (ukernel.h): an M x N block (<= 3 x 4) of sums, each kept as one
// vector of partial sums along k: 12 accumulators + 3 rows of A + 1 row of B = 16 registers.
// The k tail is read with a masked load (zeros beyond).
constexpr int kDotMR = 3, kDotNR = 4;

template <class S, int M, int N>
void dot_tile(int64_t kc, const typename S::T* __restrict a, int64_t lda,
              const typename S::T* __restrict b, int64_t ldb, typename S::T* __restrict out,
              int64_t ldo) {
  using V = typename S::V;
  V acc[M][N];
#pragma GCC unroll 3
  for (int i = 0; i < M; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < N; ++j) acc[i][j] = S::zero();
  int64_t p = 0;
  for (; p + S::kLanes <= kc; p += S::kLanes) {
    V av[M];
#pragma GCC unroll 3
    for (int i = 0; i < M; ++i) av[i] = S::load(a + i * lda + p);
#pragma GCC unroll 4
    for (int j = 0; j < N; ++j) {
      const V bj = S::load(b + j * ldb + p);
#pragma GCC unroll 3
      for (int i = 0; i < M; ++i) acc[i][j] = S::fmadd(av[i], bj, acc[i][j]);
    }
  }
  if (p < kc) {
    const __m256i mask = S::mask(static_cast<int>(kc - p));
    V av[M];
#pragma GCC unroll 3
    for (int i = 0; i < M; ++i) av[i] = S::load(a + i * lda + p, mask);
#pragma GCC unroll 4
    for (int j = 0; j < N; ++j) {
      const V bj = S::load(b + j * ldb + p, mask);
#pragma GCC unroll 3
      for (int i = 0; i < M; ++i) acc[i][j] = S::fmadd(av[i], bj, acc[i][j]);
    }
  }
#pragma GCC unroll 3
  for (int i = 0; i < M; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < N; ++j) out[i * ldo + j] += S::sum(acc[i][j]);
}

template <class S>
using DotFn = void (*)(int64_t, const typename S::T*, int64_t, const typename S::T*, int64_t,
                       typename S::T*, int64_t);

// Blocks indexed by [rows - 1][columns - 1].
template <class S, int... Ms>
struct DotTable {
  DotFn<S> fn[sizeof...(Ms)][kDotNR] = {
      {&dot_tile<S, Ms, 1>, &dot_tile<S, Ms, 2>, &dot_tile<S, Ms, 3>, &dot_tile<S, Ms, 4>}...};
};

template <class S>
void dot_run(int64_t kc, const typename S::T* a, int64_t lda, const typename S::T* b,
             int64_t ldb, typename S::T* out, int64_t ldo, int m, int n) {
  static const DotTable<S, 1, 2, 3> blocks;
  blocks.fn[m - 1][n - 1](kc, a, lda, b, ldb, out, ldo);
}

template <class S>
void run_stream(int64_t kc, const typename S::T* a, const typename S::T* b, int64_t ldb,
                typename S::T* c, int64_t ldc, typename S::T alpha, typename S::T beta, int, int) {
  tile<S, kMR, true>(kc, a, b, ldb, c, ldc, alpha, beta, 2 * S::kLanes);
}

}  // namespace
}  // namespace avx2

template <>
GemmDotKernel<float> kernel_table<GemmDotKernel<float>, Isa::avx2>() {
  return {avx2::kDotMR, avx2::kDotNR, &avx2::dot_run<avx2::F32>, "sdot_avx2_3x4"};
}
template <>
GemmDotKernel<double> kernel_table<GemmDotKernel<double>, Isa::avx2>() {
  return {avx2::kDotMR, avx2::kDotNR, &avx2::dot_run<avx2::F64>, "ddot_avx2_3x4"};
}

template <>
GemmMicroKernel<float> kernel_table<GemmMicroKernel<float>, Isa::avx2>() {
  return {avx2::kMR, 16, &avx2::run<avx2::F32>, &avx2::run_stream<avx2::F32>, "sgemm_ukr_avx2_6x16"};
}
template <>
GemmMicroKernel<double> kernel_table<GemmMicroKernel<double>, Isa::avx2>() {
  return {avx2::kMR, 8, &avx2::run<avx2::F64>, &avx2::run_stream<avx2::F64>, "dgemm_ukr_avx2_6x8"};
}

}  // namespace mg
