// The bfloat16 micro-kernel on Intel AMX (CMake compiles *_amx.cpp with -mamx-tile -mamx-bf16
// on top of the AVX-512 flags; gemm_bf16.cpp calls it only where CPUID, XCR0 and the kernel's
// permission for the tile state say so).
//
// Eight tile registers of 16 rows x 64 bytes: C as a 2 x 2 block of 16 x 16 float32 tiles
// (0-3), two A tiles of 16 rows x 32 bfloat16 of k (4, 5) and two B tiles of 16 pairs of k x 16
// columns (6, 7). Per 32 steps of k, four loads and four tdpbf16ps, each 16 x 16 x 32
// multiply-adds. The slivers are packed tile by tile (bf16.h), so each load is one
// contiguous KiB. A tile of at most 16 rows uses only the top
// half. The tiles are then stored to a stack block and alpha/beta applied with AVX-512.
#include <immintrin.h>

#include <cstdint>

#include "gemm/bf16.h"

namespace mg {
namespace {

constexpr int kMR = 32, kNR = 32, kKStep = 32;

}  // namespace

// The configuration is per thread, and other code in the process (another library's AMX
// kernels) may load its own between two products: so every thread loads it again per product.
void amx_load_tile_config() {
  static const AmxTileConfig config;
  _tile_loadconfig(&config);
}

namespace {

template <bool TwoRowTiles>
void run_tiles(int64_t kc, const uint16_t* a, const uint16_t* b, float* c, int64_t ldc,
               float alpha, float beta, int m, int n) {
  // A whole block with alpha 1 and beta 0 or 1 (every pass of a plain product) goes between
  // the tiles and C directly: C's rows are loaded into the accumulators (beta 1) and stored
  // back from them, with no trip through a stack block and no vector pass over it.
  const bool direct = alpha == 1.0f && (beta == 0.0f || beta == 1.0f) && n == kNR &&
                      m == (TwoRowTiles ? kMR : 16);
  if (direct && beta == 1.0f) {
    _tile_loadd(0, c, ldc * 4);
    _tile_loadd(1, c + 16, ldc * 4);
    if (TwoRowTiles) {
      _tile_loadd(2, c + 16 * ldc, ldc * 4);
      _tile_loadd(3, c + 16 * ldc + 16, ldc * 4);
    }
  } else {
    _tile_zero(0);
    _tile_zero(1);
    if (TwoRowTiles) {
      _tile_zero(2);
      _tile_zero(3);
    }
  }
  // Each tile is 1 KiB of its own in the packed slivers (bf16.h, tiles layout): rows 64 bytes
  // apart. Each load sits right before the first product that reads it.
  for (int64_t p = 0; p < kc; p += kKStep) {
    const uint16_t* as = a + p * kMR;
    const uint16_t* bs = b + p * kNR;
    // The slivers (64 KiB each at depth 1024) do not fit L1 together: the A and B tiles of two
    // steps on are asked for now, so their loads find them there (one thread at n = 2048: 700
    // -> 760-790 GFLOP/s).
    if (p + 2 * kKStep < kc)
      for (int l = 0; l < 32; ++l) {
        _mm_prefetch(reinterpret_cast<const char*>(as + 2 * kKStep * kMR) + 64 * l, _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(bs + 2 * kKStep * kNR) + 64 * l, _MM_HINT_T0);
      }
    _tile_loadd(4, as, 64);
    _tile_loadd(6, bs, 64);
    _tile_dpbf16ps(0, 4, 6);
    _tile_loadd(7, bs + 512, 64);
    _tile_dpbf16ps(1, 4, 7);
    if (TwoRowTiles) {
      _tile_loadd(5, as + 512, 64);
      _tile_dpbf16ps(2, 5, 6);
      _tile_dpbf16ps(3, 5, 7);
    }
  }
  if (direct) {
    _tile_stored(0, c, ldc * 4);
    _tile_stored(1, c + 16, ldc * 4);
    if (TwoRowTiles) {
      _tile_stored(2, c + 16 * ldc, ldc * 4);
      _tile_stored(3, c + 16 * ldc + 16, ldc * 4);
    }
    return;
  }
  alignas(64) float block[kMR][kNR];
  _tile_stored(0, &block[0][0], kNR * 4);
  _tile_stored(1, &block[0][16], kNR * 4);
  if (TwoRowTiles) {
    _tile_stored(2, &block[16][0], kNR * 4);
    _tile_stored(3, &block[16][16], kNR * 4);
  }
  const __mmask16 m0 = n >= 16 ? __mmask16(0xffff) : __mmask16((1u << n) - 1);
  const __mmask16 m1 = n >= 32 ? __mmask16(0xffff) : n <= 16 ? 0 : __mmask16((1u << (n - 16)) - 1);
  const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
  for (int i = 0; i < m; ++i) {
    float* ci = c + i * ldc;
    __m512 r0 = _mm512_mul_ps(va, _mm512_load_ps(&block[i][0]));
    __m512 r1 = _mm512_mul_ps(va, _mm512_load_ps(&block[i][16]));
    if (beta != 0.0f) {
      r0 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m0, ci), r0);
      r1 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m1, ci + 16), r1);
    }
    _mm512_mask_storeu_ps(ci, m0, r0);
    _mm512_mask_storeu_ps(ci + 16, m1, r1);
  }
}

void run(int64_t kc, const uint16_t* a, const uint16_t* b, float* c, int64_t ldc, float alpha,
         float beta, int m, int n) {
  if (m > 16)
    run_tiles<true>(kc, a, b, c, ldc, alpha, beta, m, n);
  else
    run_tiles<false>(kc, a, b, c, ldc, alpha, beta, m, n);
}

}  // namespace

Bf16MicroKernel bf16_kernel_amx() {
  // Deep passes: a pass loads and stores every C tile once, which at AMX's rate costs more than
  // streaming the slivers from L2 (measured at n = 1024 and 2048, one thread: 256-deep passes
  // ran at 0.7x, 512 at 0.8x the speed of 1024-deep ones; 2048 as fast as 1024). A 1024 x 32
  // sliver is 64 KiB; the A block of 512 KiB (8 slivers) shares L2 with the current B sliver.
  return {kMR, kNR, kKStep, Bf16Layout::tiles, 1024, 512 * 1024, &amx_load_tile_config, &run, "amx tdpbf16ps 32x32"};
}

}  // namespace mg
