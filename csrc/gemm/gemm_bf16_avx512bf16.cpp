// The bfloat16 micro-kernel on AVX512_BF16 (CMake compiles *_avx512bf16.cpp with
// -mavx512bf16 on top of the AVX-512 flags; gemm_bf16.cpp calls it only where CPUID says so).
//
// vdpbf16ps acc, a, b: in each of 16 float32 lanes, acc += a[2l+1] * b[2l+1], then
// acc += a[2l] * b[2l] (products exact, two roundings). B's packed sliver holds, per pair of k,
// the two values of each column side by side (bf16.h), so one 512-bit load is 16 columns x
// 2 k; A's pair for a row is broadcast to every lane as one 32-bit value. A tile is up to
// 12 rows x 32 columns: 24 accumulators + 2 B vectors + 1 broadcast of the 32 zmm registers,
// 24 independent chains to cover the instruction's latency. Edge tiles run the loop
// specialised for their row count and store their columns through masks.
#include <immintrin.h>

#include <array>
#include <cstring>
#include <utility>

#include "gemm/bf16.h"

namespace mg {
namespace {

constexpr int kMR = 12, kNR = 32;

template <int M>
void tile(int64_t kc, const uint16_t* __restrict a, const uint16_t* __restrict b,
          float* __restrict c, int64_t ldc, float alpha, float beta, int n) {
  __m512 acc[M][2];
#pragma GCC unroll 12
  for (int i = 0; i < M; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
  for (int64_t p = 0; p < kc; p += 2) {
    const __m512bh b0 = (__m512bh)_mm512_loadu_si512(b);
    const __m512bh b1 = (__m512bh)_mm512_loadu_si512(b + 32);
#pragma GCC unroll 12
    for (int i = 0; i < M; ++i) {
      int32_t pair;
      std::memcpy(&pair, a + 2 * i, 4);
      const __m512bh ai = (__m512bh)_mm512_set1_epi32(pair);
      acc[i][0] = _mm512_dpbf16_ps(acc[i][0], ai, b0);
      acc[i][1] = _mm512_dpbf16_ps(acc[i][1], ai, b1);
    }
    a += 2 * kMR;
    b += 2 * kNR;
  }
  const __mmask16 m0 = n >= 16 ? __mmask16(0xffff) : __mmask16((1u << n) - 1);
  const __mmask16 m1 = n >= 32 ? __mmask16(0xffff) : n <= 16 ? 0 : __mmask16((1u << (n - 16)) - 1);
  const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
#pragma GCC unroll 12
  for (int i = 0; i < M; ++i) {
    float* ci = c + i * ldc;
    __m512 r0 = _mm512_mul_ps(va, acc[i][0]), r1 = _mm512_mul_ps(va, acc[i][1]);
    if (beta != 0.0f) {
      r0 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m0, ci), r0);
      r1 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m1, ci + 16), r1);
    }
    _mm512_mask_storeu_ps(ci, m0, r0);
    _mm512_mask_storeu_ps(ci + 16, m1, r1);
  }
}

using TileFn = void (*)(int64_t, const uint16_t*, const uint16_t*, float*, int64_t, float, float,
                        int);

template <int... Is>
constexpr std::array<TileFn, kMR> tiles(std::integer_sequence<int, Is...>) {
  return {{&tile<Is + 1>...}};
}

void run(int64_t kc, const uint16_t* a, const uint16_t* b, float* c, int64_t ldc, float alpha,
         float beta, int m, int n) {
  static constexpr std::array<TileFn, kMR> by_rows = tiles(std::make_integer_sequence<int, kMR>{});
  by_rows[m - 1](kc, a, b, c, ldc, alpha, beta, n);
}

}  // namespace

Bf16MicroKernel bf16_kernel_avx512_bf16() {
  // A 512 x 32 B sliver is 32 KiB, which stays in L1 while the A slivers (from a 256 KiB
  // block in L2) sweep it.
  return {kMR, kNR, 2, Bf16Layout::pairs, 512, 256 * 1024, nullptr, &run, "avx512_bf16 vdpbf16ps 12x32"};
}

}  // namespace mg
