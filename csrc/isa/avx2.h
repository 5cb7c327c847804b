// The AVX2 target (Haswell and later, Zen): everything that is particular to it, except its
// compiler flags (CMakeLists.txt) and its CPUID test (dispatch.cpp):
//   - the names: MG_ISA (its namespace and Isa enumerator) and MG_ISA_NAME (in kernel names);
//   - MG_ISA_HAS_FMA;
//   - the vector traits the GEMM micro-kernels are written against (gemm/gemm_ukr_simd.inc);
//   - the tuning constants: GEMM register and cache blocking, conv tile sizes.
// Included first by every *_avx2.cpp file (CMake compiles those with -mavx2 -mfma -mf16c),
// never by portable code: everything here has internal linkage, so no AVX2 instruction can
// be merged by the linker into a function the portable code calls.
#pragma once
#ifndef __AVX2__
#error "isa/avx2.h is for *_avx2.cpp files, which CMake compiles with -mavx2 -mfma"
#endif
#include <immintrin.h>

#include <cstdint>

#define MG_ISA avx2
#define MG_ISA_NAME "avx2"
#define MG_ISA_HAS_FMA 1

namespace mg {
namespace avx2 {
namespace {

// GEMM micro-kernel: up to 6 rows of C, each two 256-bit vectors wide (6x16 floats, 6x8
// doubles). 6x2 accumulators + 2 B + 1 A = 15 of the 16 ymm registers.
constexpr int kGemmMR = 6;
// Without mask registers, edge tiles write their columns through a small stack tile.
constexpr bool kGemmMaskedEdges = false;
// No software prefetch of the C tile (the AVX2 tile relies on the hardware prefetchers).
constexpr bool kGemmPrefetchC = false;
// Dot-product kernel: a 3 x 4 block of sums, each one vector along k:
// 12 accumulators + 3 rows of A + 1 row of B = 16 registers.
constexpr int kGemmDotMR = 3, kGemmDotNR = 4;
// GEMM cache blocking in bytes (see generic.h and gemm.cpp): the same Zen 5 budgets.
constexpr int64_t kGemmBSliverBytes = 64 * 1024;
constexpr int64_t kGemmABlockBytes = 480 * 1024;
constexpr int64_t kGemmBPanelBytes = 4 * 1024 * 1024;

// One register: the vector type of the kernels written with vector extensions (isa/vector.inc).
// Direct and channel-vectorised convolution: vectors of one ymm register. A 64-byte vector
// type here made GCC build every weight broadcast through the stack and spill the
// accumulators: LeNet's conv1 ran at 1.5 GFLOP/s. 16 registers: tiles of two vectors x 6
// (12 accumulators, 2 weight vectors, 1 broadcast) and of one vector x 6.
constexpr int kVectorBytes = 32;
constexpr bool kConvWideRegisters = false;
constexpr int kConvPairPixels = 6, kConvPairTaps = 6;
constexpr int kConvNarrowTile = 6;

// Vector traits: one register of T and the operations the GEMM micro-kernels use.
struct SimdF32 {
  using T = float;
  using V = __m256;
  using Mask = __m256i;  // lanes on where all bits are set (vmaskmov)
  static constexpr int kLanes = 8;
  static V zero() { return _mm256_setzero_ps(); }
  static V set1(T x) { return _mm256_set1_ps(x); }
  static V load(const T* p) { return _mm256_loadu_ps(p); }
  static void store(T* p, V v) { _mm256_storeu_ps(p, v); }
  static void stream(T* p, V v) { _mm256_stream_ps(p, v); }
  static V fmadd(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  // Lanes [0, r) on.
  static Mask mask(int r) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(r), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static V load(const T* p, Mask m) { return _mm256_maskload_ps(p, m); }  // zeros elsewhere
  static T sum(V v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_shuffle_ps(s, s, 1)));
  }
};

struct SimdF64 {
  using T = double;
  using V = __m256d;
  using Mask = __m256i;
  static constexpr int kLanes = 4;
  static V zero() { return _mm256_setzero_pd(); }
  static V set1(T x) { return _mm256_set1_pd(x); }
  static V load(const T* p) { return _mm256_loadu_pd(p); }
  static void store(T* p, V v) { _mm256_storeu_pd(p, v); }
  static void stream(T* p, V v) { _mm256_stream_pd(p, v); }
  static V fmadd(V a, V b, V c) { return _mm256_fmadd_pd(a, b, c); }
  static V mul(V a, V b) { return _mm256_mul_pd(a, b); }
  static Mask mask(int r) {
    return _mm256_cmpgt_epi64(_mm256_set1_epi64x(r), _mm256_setr_epi64x(0, 1, 2, 3));
  }
  static V load(const T* p, Mask m) { return _mm256_maskload_pd(p, m); }
  static T sum(V v) {
    const __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
  }
};

}  // namespace
}  // namespace avx2
}  // namespace mg
