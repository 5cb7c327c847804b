// AVX-512 micro-kernels: up to 12 rows of C, each two 512-bit vectors wide (12x32 floats,
// 12x16 doubles). A is broadcast one element at a time, B loaded as two vectors per k step:
// 12x2 accumulators + 2 B + 1 A = 27 of the 32 zmm registers, 24 independent FMA chains,
// enough to cover the FMA latency on both FMA pipes.
//
// Edge tiles run the same loop specialised for their row count (a 6-row tile does 6 rows of
// work, not 12) and their vector count, and write the last vector with a mask, so they cost
// what they compute and no scratch copy. Compiled with -mavx512f; internal linkage keeps
// these copies out of the portable code.
#include <immintrin.h>

#include "gemm/ukernel.h"

namespace mg {
namespace avx512 {
namespace {

constexpr int kMR = 12;

struct F32 {
  using T = float;
  using V = __m512;
  using Mask = __mmask16;
  static constexpr int kLanes = 16;
  static V zero() { return _mm512_setzero_ps(); }
  static V set1(T x) { return _mm512_set1_ps(x); }
  static V load(const T* p) { return _mm512_loadu_ps(p); }
  static V load(const T* p, Mask m) { return _mm512_maskz_loadu_ps(m, p); }
  static void store(T* p, V v) { _mm512_storeu_ps(p, v); }
  static void store(T* p, V v, Mask m) { _mm512_mask_storeu_ps(p, m, v); }
  static void stream(T* p, V v) { _mm512_stream_ps(p, v); }
  static V fmadd(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
  static T sum(V v) { return _mm512_reduce_add_ps(v); }
};

struct F64 {
  using T = double;
  using V = __m512d;
  using Mask = __mmask8;
  static constexpr int kLanes = 8;
  static V zero() { return _mm512_setzero_pd(); }
  static V set1(T x) { return _mm512_set1_pd(x); }
  static V load(const T* p) { return _mm512_loadu_pd(p); }
  static V load(const T* p, Mask m) { return _mm512_maskz_loadu_pd(m, p); }
  static void store(T* p, V v) { _mm512_storeu_pd(p, v); }
  static void store(T* p, V v, Mask m) { _mm512_mask_storeu_pd(p, m, v); }
  static void stream(T* p, V v) { _mm512_stream_pd(p, v); }
  static V fmadd(V a, V b, V c) { return _mm512_fmadd_pd(a, b, c); }
  static V mul(V a, V b) { return _mm512_mul_pd(a, b); }
  static T sum(V v) { return _mm512_reduce_add_pd(v); }
};

// M rows (<= 12) by NV vectors (1 or 2) of C; `last` masks the columns of the last vector.
// Stream: non-temporal stores (full, aligned tiles only; see ukernel.h).
template <class S, int M, int NV, bool Masked, bool Stream = false>
void tile(int64_t kc, const typename S::T* __restrict a, const typename S::T* __restrict b,
          int64_t ldb, typename S::T* __restrict c, int64_t ldc, typename S::T alpha,
          typename S::T beta, typename S::Mask last) {
  using V = typename S::V;
  V acc[M][NV];
#pragma GCC unroll 12
  for (int i = 0; i < M; ++i)
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) acc[i][v] = S::zero();
  // The C tile is touched last; start fetching it now so the stores do not wait on memory.
  if (!Stream) {
#pragma GCC unroll 12
    for (int i = 0; i < M; ++i) {
      _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + NV * S::kLanes - 1), _MM_HINT_T0);
    }
  }
  for (int64_t p = 0; p < kc; ++p) {
    V bv[NV];
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) bv[v] = S::load(b + v * S::kLanes);
#pragma GCC unroll 12
    for (int i = 0; i < M; ++i) {
      const V ai = S::set1(a[i]);
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) acc[i][v] = S::fmadd(ai, bv[v], acc[i][v]);
    }
    a += kMR;
    b += ldb;
  }
  const V va = S::set1(alpha), vb = S::set1(beta);
#pragma GCC unroll 12
  for (int i = 0; i < M; ++i) {
    typename S::T* ci = c + i * ldc;
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) {
      const bool partial = Masked && v == NV - 1;
      V r = S::mul(va, acc[i][v]);
      if (beta != typename S::T(0))
        r = S::fmadd(vb, partial ? S::load(ci + v * S::kLanes, last) : S::load(ci + v * S::kLanes), r);
      if (Stream)
        S::stream(ci + v * S::kLanes, r);
      else if (partial)
        S::store(ci + v * S::kLanes, r, last);
      else
        S::store(ci + v * S::kLanes, r);
    }
  }
}

template <class S>
using TileFn = void (*)(int64_t, const typename S::T*, const typename S::T*, int64_t,
                        typename S::T*, int64_t, typename S::T, typename S::T, typename S::Mask);

// Edge tiles indexed by [rows - 1][vectors - 1].
template <class S, int... Ms>
struct EdgeTable {
  TileFn<S> fn[sizeof...(Ms)][2] = {{&tile<S, Ms, 1, true>, &tile<S, Ms, 2, true>}...};
};

template <class S>
void run(int64_t kc, const typename S::T* a, const typename S::T* b, int64_t ldb,
         typename S::T* c, int64_t ldc, typename S::T alpha, typename S::T beta, int m, int n) {
  constexpr int kNR = 2 * S::kLanes;
  if (m == kMR && n == kNR) {
    tile<S, kMR, 2, false>(kc, a, b, ldb, c, ldc, alpha, beta, 0);
    return;
  }
  static const EdgeTable<S, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12> edges;
  const int nv = n > S::kLanes ? 2 : 1;
  const int tail = n - (nv - 1) * S::kLanes;
  const auto last = static_cast<typename S::Mask>((1u << tail) - 1u);
  edges.fn[m - 1][nv - 1](kc, a, b, ldb, c, ldc, alpha, beta, last);
}

// The dot-product kernel (ukernel.h): an M x N block (<= 4 x 6) of sums, each kept as one
// vector of partial sums along k: 24 accumulators + 4 rows of A + 1 row of B in registers,
// 24 independent FMA chains fed by 10 loads (measured on Zen 5: 4x6 beats 4x4 by ~10-20% on
// the ResNet-8 weight gradients). The k tail is read with a mask (zeros beyond).
constexpr int kDotMR = 4, kDotNR = 6;

template <class S, int M, int N>
void dot_tile(int64_t kc, const typename S::T* __restrict a, int64_t lda,
              const typename S::T* __restrict b, int64_t ldb, typename S::T* __restrict out,
              int64_t ldo) {
  using V = typename S::V;
  V acc[M][N];
#pragma GCC unroll 4
  for (int i = 0; i < M; ++i)
#pragma GCC unroll 6
    for (int j = 0; j < N; ++j) acc[i][j] = S::zero();
  int64_t p = 0;
  for (; p + S::kLanes <= kc; p += S::kLanes) {
    V av[M];
#pragma GCC unroll 4
    for (int i = 0; i < M; ++i) av[i] = S::load(a + i * lda + p);
#pragma GCC unroll 6
    for (int j = 0; j < N; ++j) {
      const V bj = S::load(b + j * ldb + p);
#pragma GCC unroll 4
      for (int i = 0; i < M; ++i) acc[i][j] = S::fmadd(av[i], bj, acc[i][j]);
    }
  }
  if (p < kc) {
    const auto mask = static_cast<typename S::Mask>((1u << (kc - p)) - 1u);
    V av[M];
#pragma GCC unroll 4
    for (int i = 0; i < M; ++i) av[i] = S::load(a + i * lda + p, mask);
#pragma GCC unroll 6
    for (int j = 0; j < N; ++j) {
      const V bj = S::load(b + j * ldb + p, mask);
#pragma GCC unroll 4
      for (int i = 0; i < M; ++i) acc[i][j] = S::fmadd(av[i], bj, acc[i][j]);
    }
  }
#pragma GCC unroll 4
  for (int i = 0; i < M; ++i)
#pragma GCC unroll 6
    for (int j = 0; j < N; ++j) out[i * ldo + j] += S::sum(acc[i][j]);
}

template <class S>
using DotFn = void (*)(int64_t, const typename S::T*, int64_t, const typename S::T*, int64_t,
                       typename S::T*, int64_t);

// Blocks indexed by [rows - 1][columns - 1].
template <class S, int... Ms>
struct DotTable {
  DotFn<S> fn[sizeof...(Ms)][kDotNR] = {
      {&dot_tile<S, Ms, 1>, &dot_tile<S, Ms, 2>, &dot_tile<S, Ms, 3>, &dot_tile<S, Ms, 4>,
       &dot_tile<S, Ms, 5>, &dot_tile<S, Ms, 6>}...};
};

template <class S>
void dot_run(int64_t kc, const typename S::T* a, int64_t lda, const typename S::T* b,
             int64_t ldb, typename S::T* out, int64_t ldo, int m, int n) {
  static const DotTable<S, 1, 2, 3, 4> blocks;
  blocks.fn[m - 1][n - 1](kc, a, lda, b, ldb, out, ldo);
}

template <class S>
void run_stream(int64_t kc, const typename S::T* a, const typename S::T* b, int64_t ldb,
                typename S::T* c, int64_t ldc, typename S::T alpha, typename S::T beta, int, int) {
  tile<S, kMR, 2, false, true>(kc, a, b, ldb, c, ldc, alpha, beta, 0);
}

}  // namespace
}  // namespace avx512

template <>
GemmDotKernel<float> kernel_table<GemmDotKernel<float>, Isa::avx512>() {
  return {avx512::kDotMR, avx512::kDotNR, &avx512::dot_run<avx512::F32>, "sdot_avx512_4x6"};
}
template <>
GemmDotKernel<double> kernel_table<GemmDotKernel<double>, Isa::avx512>() {
  return {avx512::kDotMR, avx512::kDotNR, &avx512::dot_run<avx512::F64>, "ddot_avx512_4x6"};
}

template <>
GemmMicroKernel<float> kernel_table<GemmMicroKernel<float>, Isa::avx512>() {
  return {avx512::kMR, 32, &avx512::run<avx512::F32>, &avx512::run_stream<avx512::F32>, "sgemm_ukr_avx512_12x32"};
}
template <>
GemmMicroKernel<double> kernel_table<GemmMicroKernel<double>, Isa::avx512>() {
  return {avx512::kMR, 16, &avx512::run<avx512::F64>, &avx512::run_stream<avx512::F64>, "dgemm_ukr_avx512_12x16"};
}

}  // namespace mg
