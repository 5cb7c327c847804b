// The AVX-512 target (F, DQ, BW, VL: Skylake-SP and later, Zen 4 and later): everything that
// is particular to it, except its compiler flags (CMakeLists.txt) and its CPUID test
// (dispatch.cpp); avx2.h lists what a target header holds. Included first by every
// *_avx512.cpp file, never by portable code; everything here has internal linkage.
#pragma once
#ifndef __AVX512F__
#error "isa/avx512.h is for *_avx512.cpp files, which CMake compiles with -mavx512f ..."
#endif
#include <immintrin.h>

#include <cstdint>

#define MG_ISA avx512
#define MG_ISA_NAME "avx512"
#define MG_ISA_HAS_FMA 1

namespace mg {
namespace avx512 {
namespace {

// GEMM micro-kernel: up to 12 rows of C, each two 512-bit vectors wide (12x32 floats, 12x16
// doubles). 12x2 accumulators + 2 B + 1 A = 27 of the 32 zmm registers, 24 independent FMA
// chains, enough to cover the FMA latency on both FMA pipes.
constexpr int kGemmMR = 12;
// Edge tiles run the loop specialised for their row count (a 6-row tile does 6 rows of work,
// not 12) and their vector count, and write the last vector with a mask, so they cost what
// they compute and no scratch copy.
constexpr bool kGemmMaskedEdges = true;
// The C tile is touched last; fetching it at the start hides the memory latency of the stores.
constexpr bool kGemmPrefetchC = true;
// Dot-product kernel: a 4 x 6 block of sums, each one vector along k: 24 accumulators + 4 rows
// of A + 1 row of B in registers, 24 independent FMA chains fed by 10 loads (measured on
// Zen 5: 4x6 beats 4x4 by ~10-20% on the ResNet-8 weight gradients).
constexpr int kGemmDotMR = 4, kGemmDotNR = 6;
// GEMM cache blocking in bytes (see generic.h and gemm.cpp): the Zen 5 budgets.
constexpr int64_t kGemmBSliverBytes = 64 * 1024;
constexpr int64_t kGemmABlockBytes = 480 * 1024;
constexpr int64_t kGemmBPanelBytes = 4 * 1024 * 1024;

// One register: the vector type of the kernels written with vector extensions (isa/vector.inc).
// Direct and channel-vectorised convolution: 32 zmm registers, a vector is one. Tiles of
// 4 x 6, 2 x 8 (measured faster than 2 x 12) and 1 x kConvNarrowTile.
constexpr int kVectorBytes = 64;
constexpr bool kConvWideRegisters = true;
constexpr int kConvPairPixels = 8, kConvPairTaps = 12;
constexpr int kConvNarrowTile = 8;

// Vector traits: one register of T and the operations the GEMM micro-kernels use.
struct SimdF32 {
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
  static Mask mask(int r) { return static_cast<Mask>((1u << r) - 1u); }  // lanes [0, r) on
  static T sum(V v) { return _mm512_reduce_add_ps(v); }
};

struct SimdF64 {
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
  static Mask mask(int r) { return static_cast<Mask>((1u << r) - 1u); }
  static T sum(V v) { return _mm512_reduce_add_pd(v); }
};

}  // namespace
}  // namespace avx512
}  // namespace mg
