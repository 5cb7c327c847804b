// Direct bfloat16 convolution on AMX tiles (conv_bf16.h; compiled with the AMX flags, called
// only where the bfloat16 road is amx).
//
// Computed as Y^T = W X^T per kernel tap: the A tile is 16 output channels x 32 input channels
// of the tap's weights (packed once per call), the B tile 16 pairs of input channels x 16
// output pixels, loaded straight from the pair-interleaved padded image (each pixel's pair of
// channels is the 4 bytes AMX wants side by side, and a tap only shifts where the 16 pixels
// start). So there is no patch matrix and no packing of the image. A block of 32 output
// channels x 32 pixels stays in four accumulator tiles over every tap and channel chunk, then
// goes to memory once, one output channel per tile row: the output comes out channel-major,
// the layout of the NCHW result.
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "conv_bf16.h"
#include "gemm/bf16.h"
#include "isa/avx512.h"  // the AMX flags include AVX-512's

namespace mg {
namespace avx512 {
namespace {
#include "isa/vector.inc"  // transpose_block
}  // namespace
}  // namespace avx512

namespace {

// The tile configuration for layers of 16 input channels (kchunk 16): the product's depth is
// 16, so the A tiles (6, 7) are 16 rows of 32 bytes and the B tiles (4, 5) 8 rows of pairs; a
// 32-deep product would multiply as many zeros as values.
AmxTileConfig half_depth_tiles() {
  AmxTileConfig config;
  config.colsb[6] = config.colsb[7] = 32;
  config.rows[4] = config.rows[5] = 8;
  return config;
}

// Output channels in blocks of two tiles (32) or, for the last 16 of an odd count, one; pixels
// likewise (32, or the last 16 of a grid that ends half-way through a block).
template <bool TwoChannelTiles, bool TwoPixelTiles>
void block(const AmxConvGeometry& g, const bf16* xh, const bf16* wpack, int64_t p0, int64_t cot,
           float* out) {
  _tile_zero(0);
  if (TwoPixelTiles) _tile_zero(1);
  if (TwoChannelTiles) _tile_zero(2);
  if (TwoChannelTiles && TwoPixelTiles) _tile_zero(3);
  const int64_t chunks = g.cpad / g.kchunk, cotiles = g.copad / 16;
  const int64_t a_tile = 16 * g.kchunk, a_stride = g.kchunk * 2;  // values per A tile, bytes per row
  const int64_t pair_stride = g.rows * 2;         // values between pair planes
  const int64_t b_stride = pair_stride * 2;       // bytes between B tile rows
  for (int64_t a = 0; a < g.kh; ++a)
    for (int64_t b = 0; b < g.kw; ++b) {
      const bf16* x0 = xh + (p0 + g.tap_offsets[a * g.kw + b]) * 2;
      const bf16* wt = wpack + (a * g.kw + b) * chunks * cotiles * a_tile;
      for (int64_t kc = 0; kc < chunks; ++kc) {
        const bf16* xk = x0 + kc * (g.kchunk / 2) * pair_stride;
        const bf16* w0 = wt + (kc * cotiles + cot) * a_tile;
        _tile_loadd(6, w0, a_stride);              // output channels of tile cot
        _tile_loadd(4, xk, b_stride);              // pixels p0 .. p0+15
        _tile_dpbf16ps(0, 6, 4);
        if (TwoPixelTiles) {
          _tile_loadd(5, xk + 32, b_stride);       // pixels p0+16 .. p0+31
          _tile_dpbf16ps(1, 6, 5);
        }
        if (TwoChannelTiles) {
          _tile_loadd(7, w0 + a_tile, a_stride);  // tile cot + 1
          _tile_dpbf16ps(2, 7, 4);
          if (TwoPixelTiles) _tile_dpbf16ps(3, 7, 5);
        }
      }
    }
  const int64_t ld = g.grid_pad * 4;  // bytes between output channels
  float* o = out + cot * 16 * g.grid_pad + p0;
  _tile_stored(0, o, ld);
  if (TwoPixelTiles) _tile_stored(1, o + 16, ld);
  if (TwoChannelTiles) _tile_stored(2, o + 16 * g.grid_pad, ld);
  if (TwoChannelTiles && TwoPixelTiles) _tile_stored(3, o + 16 * g.grid_pad + 16, ld);
}

template <bool TwoPixelTiles>
void pixel_block(const AmxConvGeometry& g, const bf16* xh, const bf16* wpack, int64_t p0, float* out) {
  const int64_t cotiles = g.copad / 16;
  int64_t cot = 0;
  for (; cot + 2 <= cotiles; cot += 2) block<true, TwoPixelTiles>(g, xh, wpack, p0, cot, out);
  if (cot < cotiles) block<false, TwoPixelTiles>(g, xh, wpack, p0, cot, out);
}

// dW^T[c0.., o0..] of one tap over every pixel of `images` images: input channels in blocks
// of two tiles (32) or one, output channels likewise.
template <bool TwoChannelTiles, bool TwoOutputTiles>
void grad_block(const AmxConvGeometry& g, const AmxGradImages& im, int64_t tap_off, int64_t c0,
                int64_t o0, float* acc) {
  _tile_zero(0);
  if (TwoOutputTiles) _tile_zero(1);
  if (TwoChannelTiles) _tile_zero(2);
  if (TwoChannelTiles && TwoOutputTiles) _tile_zero(3);
  const int64_t a_stride = g.rows * 2;   // bytes between channel planes
  const int64_t b_stride = g.copad * 4;  // bytes between pixel pairs
  for (int64_t i = 0; i < im.count; ++i) {
    const bf16* x = im.xpad + i * im.xpad_stride + c0 * g.rows + tap_off;
    const bf16* dy = im.dy_pairs + i * im.dy_stride + o0 * 2;
    for (int64_t p0 = 0; p0 < g.grid_pad; p0 += 32) {
      const bf16* a0 = x + p0;             // channels c0.., pixels p0 .. p0+31
      const bf16* b0 = dy + p0 * g.copad;  // pairs p0/2 .., channels o0..
      _tile_loadd(4, a0, a_stride);
      _tile_loadd(6, b0, b_stride);
      _tile_dpbf16ps(0, 4, 6);
      if (TwoOutputTiles) {
        _tile_loadd(7, b0 + 32, b_stride);
        _tile_dpbf16ps(1, 4, 7);
      }
      if (TwoChannelTiles) {
        _tile_loadd(5, a0 + 16 * g.rows, a_stride);
        _tile_dpbf16ps(2, 5, 6);
        if (TwoOutputTiles) _tile_dpbf16ps(3, 5, 7);
      }
    }
  }
  const int64_t ldc = g.copad * 4;  // bytes between dW^T rows (input channels)
  float* c00 = acc + c0 * g.copad + o0;
  _tile_stored(0, c00, ldc);
  if (TwoOutputTiles) _tile_stored(1, c00 + 16, ldc);
  if (TwoChannelTiles) _tile_stored(2, c00 + 16 * g.copad, ldc);
  if (TwoChannelTiles && TwoOutputTiles) _tile_stored(3, c00 + 16 * g.copad + 16, ldc);
}

// dW^T of up to three taps at once for layers of at most 16 input and 16 output channels
// (one tile each way): dY's B tile does not depend on the tap, so each is loaded once for the
// taps' three products (4 tile loads per 3 products instead of 6). The A tiles sit in 4, 5, 7.
template <int Taps>
void grad_taps_block(const AmxConvGeometry& g, const AmxGradImages& im, const int64_t* tap_offs,
                     float* acc) {
  static_assert(Taps >= 1 && Taps <= 3, "three accumulator tiles");
  _tile_zero(0);
  if (Taps > 1) _tile_zero(1);
  if (Taps > 2) _tile_zero(2);
  const int64_t a_stride = g.rows * 2;   // bytes between channel planes
  const int64_t b_stride = g.copad * 4;  // bytes between pixel pairs
  for (int64_t i = 0; i < im.count; ++i) {
    const bf16* x = im.xpad + i * im.xpad_stride;
    const bf16* dy = im.dy_pairs + i * im.dy_stride;
    for (int64_t p0 = 0; p0 < g.grid_pad; p0 += 32) {
      _tile_loadd(6, dy + p0 * g.copad, b_stride);
      _tile_loadd(4, x + tap_offs[0] + p0, a_stride);
      _tile_dpbf16ps(0, 4, 6);
      if (Taps > 1) {
        _tile_loadd(5, x + tap_offs[1] + p0, a_stride);
        _tile_dpbf16ps(1, 5, 6);
      }
      if (Taps > 2) {
        _tile_loadd(7, x + tap_offs[2] + p0, a_stride);
        _tile_dpbf16ps(2, 7, 6);
      }
    }
  }
  const int64_t ldc = g.copad * 4, tap_size = g.cpad * g.copad;
  _tile_stored(0, acc, ldc);
  if (Taps > 1) _tile_stored(1, acc + tap_size, ldc);
  if (Taps > 2) _tile_stored(2, acc + 2 * tap_size, ldc);
}

template <bool TwoChannelTiles>
void grad_channel_block(const AmxConvGeometry& g, const AmxGradImages& im, int64_t tap_off,
                        int64_t c0, float* acc) {
  const int64_t otiles = g.copad / 16;
  int64_t ot = 0;
  for (; ot + 2 <= otiles; ot += 2) grad_block<TwoChannelTiles, true>(g, im, tap_off, c0, ot * 16, acc);
  if (ot < otiles) grad_block<TwoChannelTiles, false>(g, im, tap_off, c0, ot * 16, acc);
}

}  // namespace

// ---- moving images into the tiles' layouts and back (AVX-512BW, which AMX CPUs all have) ----

namespace {

// 16-bit lane indices for _mm512_permutex2var_epi16 (lanes 32 and up pick from the second
// source): the pairs (a[first + step*k], b[first + step*k]) for k = 0..15.
__m512i pair_lanes(int first, int step) {
  alignas(64) int16_t idx[32];
  for (int k = 0; k < 16; ++k) {
    idx[2 * k] = static_cast<int16_t>(first + step * k);
    idx[2 * k + 1] = static_cast<int16_t>(32 + first + step * k);
  }
  return _mm512_load_si512(idx);
}

// 16-bit lane indices for _mm512_permutexvar_epi16: the even lanes, then the odd ones.
__m512i split_lanes() {
  alignas(64) int16_t idx[32];
  for (int k = 0; k < 16; ++k) idx[k] = static_cast<int16_t>(2 * k), idx[16 + k] = static_cast<int16_t>(2 * k + 1);
  return _mm512_load_si512(idx);
}

__mmask32 first_lanes(int64_t n) { return n >= 32 ? ~__mmask32(0) : (__mmask32(1) << n) - 1; }

// n values moved 32 at a time, the last ones masked: ResNets' image rows are 8 to 32 values,
// where memcpy's call and size dispatch cost more than the copy itself.
void copy_row(bf16* dst, const bf16* src, int64_t n) {
  for (int64_t b = 0; b < n; b += 32) {
    const __mmask32 m = first_lanes(n - b);
    _mm512_mask_storeu_epi16(dst + b, m, _mm512_maskz_loadu_epi16(m, src + b));
  }
}

// The column phases of a stride-2 row: the one that starts at column 0 and the one at 1.
int64_t phase_of_column(const AmxConvGeometry& g, int64_t parity) {
  return g.first_column(0) == parity ? 0 : 1;
}

}  // namespace

// Image x (NCHW) into the pair-interleaved planes (conv_bf16.h); the rest of xh stays zero.
// Strides 1 and 2 (every layer ResNets have) go 32 columns at a time through one permute per
// 16 pairs; wider strides value by value.
void amx_place_image(const AmxConvGeometry& g, const bf16* x, bf16* xh) {
  const int64_t plane = g.h * g.w;
  const bool vectors = g.sw == 1 || (g.sw == 2 && g.w >= 2);
  const __m512i lo = pair_lanes(0, 1), hi = pair_lanes(16, 1);
  const __m512i even = pair_lanes(0, 2), odd = pair_lanes(1, 2);
  for (int64_t c = 0; c < g.ci; c += 2) {
    const bf16* first = x + c * plane;
    const bf16* second = c + 1 < g.ci ? first + plane : nullptr;  // an odd count's last pair
    bf16* pair = xh + (c / 2) * g.rows * 2;
    if (vectors) {
      for (int64_t r = 0; r < g.h; ++r) {
        const bf16* u = first + r * g.w;
        const bf16* w = second ? second + r * g.w : nullptr;
        bf16* d0 = pair + g.run_starts[r * g.sw + (g.sw == 1 ? 0 : phase_of_column(g, 0))] * 2;
        bf16* d1 = g.sw == 1 ? nullptr : pair + g.run_starts[r * 2 + phase_of_column(g, 1)] * 2;
        for (int64_t b = 0; b < g.w; b += 32) {
          const int64_t n = std::min<int64_t>(32, g.w - b);
          const __m512i U = _mm512_maskz_loadu_epi16(first_lanes(n), u + b);
          const __m512i W = w ? _mm512_maskz_loadu_epi16(first_lanes(n), w + b) : _mm512_setzero_si512();
          if (g.sw == 1) {  // pairs b .. b+15 and b+16 .. b+31
            _mm512_mask_storeu_epi16(d0 + 2 * b, first_lanes(2 * std::min<int64_t>(n, 16)),
                                     _mm512_permutex2var_epi16(U, lo, W));
            if (n > 16)
              _mm512_mask_storeu_epi16(d0 + 2 * b + 32, first_lanes(2 * (n - 16)),
                                       _mm512_permutex2var_epi16(U, hi, W));
          } else {  // even columns to one phase, odd to the other, 16 pairs each
            _mm512_mask_storeu_epi16(d0 + b, first_lanes(2 * ((n + 1) / 2)),
                                     _mm512_permutex2var_epi16(U, even, W));
            _mm512_mask_storeu_epi16(d1 + b, first_lanes(2 * (n / 2)),
                                     _mm512_permutex2var_epi16(U, odd, W));
          }
        }
      }
      continue;
    }
    for (int64_t v = 0; v < g.sw; ++v) {  // columns of one phase: one run per row
      const int64_t q0 = g.first_column(v);
      for (int64_t r = 0; r < g.h && q0 < g.w; ++r) {
        bf16* d = pair + g.run_starts[r * g.sw + v] * 2;
        const bf16* u = first + r * g.w;
        const bf16* w = second ? second + r * g.w : nullptr;
        for (int64_t q = q0, j = 0; q < g.w; q += g.sw, ++j) {
          d[2 * j] = u[q];
          if (w) d[2 * j + 1] = w[q];
        }
      }
    }
  }
}

template <typename Y>
void amx_interleave_row(const float* even, const float* odd, int64_t n, Y* dst) {
  alignas(64) int32_t lanes[32];  // float lanes for _mm512_permutex2var_ps: (even[k], odd[k])
  for (int k = 0; k < 16; ++k) lanes[2 * k] = k, lanes[2 * k + 1] = 16 + k;
  const __m512i lo = _mm512_load_si512(lanes), hi = _mm512_load_si512(lanes + 16);
  for (int64_t b = 0; b < n; b += 32) {
    const int64_t m = std::min<int64_t>(32, n - b);
    const auto loaded = [&](const float* row, int64_t count) {
      return row ? _mm512_maskz_loadu_ps(static_cast<__mmask16>(first_lanes(count)), row + b / 2)
                 : _mm512_setzero_ps();
    };
    const __m512 e = loaded(even, (m + 1) / 2), o = loaded(odd, m / 2);
    alignas(64) float both[32];
    _mm512_store_ps(both, _mm512_permutex2var_ps(e, lo, o));
    _mm512_store_ps(both + 16, _mm512_permutex2var_ps(e, hi, o));
    for (int64_t j = 0; j < m; ++j) store_rounded(both[j], dst + b + j);  // vectorised
  }
}
template void amx_interleave_row<float>(const float*, const float*, int64_t, float*);
template void amx_interleave_row<bf16>(const float*, const float*, int64_t, bf16*);

void amx_grad_place_image(const AmxConvGeometry& g, const bf16* x, const bf16* gy, bf16* xpad,
                          bf16* dy_grid, bf16* dy_pairs) {
  // x into plain planes (channel c at c * rows), each row's columns into their phases' runs.
  const bool vectors = g.sw == 1 || (g.sw == 2 && g.w >= 2);
  const __m512i split = split_lanes();
  for (int64_t c = 0; c < g.ci; ++c)
    for (int64_t r = 0; r < g.h; ++r) {
      const bf16* u = x + (c * g.h + r) * g.w;
      bf16* plane = xpad + c * g.rows;
      if (g.sw == 1) {
        copy_row(plane + g.run_starts[r], u, g.w);
      } else if (vectors) {
        bf16* d0 = plane + g.run_starts[r * 2 + phase_of_column(g, 0)];
        bf16* d1 = plane + g.run_starts[r * 2 + phase_of_column(g, 1)];
        for (int64_t b = 0; b < g.w; b += 32) {
          const int64_t n = std::min<int64_t>(32, g.w - b);
          const __m512i s = _mm512_permutexvar_epi16(split, _mm512_maskz_loadu_epi16(first_lanes(n), u + b));
          _mm256_mask_storeu_epi16(d0 + b / 2, static_cast<__mmask16>(first_lanes((n + 1) / 2)),
                                   _mm512_castsi512_si256(s));
          _mm256_mask_storeu_epi16(d1 + b / 2, static_cast<__mmask16>(first_lanes(n / 2)),
                                   _mm512_extracti64x4_epi64(s, 1));
        }
      } else {
        for (int64_t v = 0; v < g.sw; ++v)
          if (g.first_column(v) < g.w)
            for (int64_t q = g.first_column(v), j = 0; q < g.w; q += g.sw, ++j)
              plane[g.run_starts[r * g.sw + v] + j] = u[q];
      }
    }
  // dY onto the grid (its dropped columns stay zero), then its pairs of pixels, 16 output
  // channels x 16 pairs at a time: an in-register transpose of 4-byte units.
  for (int64_t o = 0; o < g.co; ++o)
    for (int64_t oh = 0; oh < g.ho; ++oh)
      copy_row(dy_grid + o * g.grid_pad + oh * g.wq, gy + (o * g.ho + oh) * g.wo, g.wo);
  const int64_t half = g.grid_pad / 2;
  const float* units = reinterpret_cast<const float*>(dy_grid);  // moved, never computed on
  float* pairs = reinterpret_cast<float*>(dy_pairs);
  for (int64_t o0 = 0; o0 < g.copad; o0 += 16)
    for (int64_t q0 = 0; q0 < half; q0 += 16)
      avx512::transpose_block(units + o0 * half + q0, half, pairs + q0 * g.copad + o0, g.copad);
}

template <typename Y>
void amx_conv_forward_image(const AmxConvGeometry& g, const bf16* x, bf16* xh, const bf16* wpack,
                            float* out, const float* b, bool relu, Y* y, FetchAhead* ahead) {
  amx_place_image(g, x, xh);
  amx_conv_image(g, xh, wpack, out, ahead);
  // channel-major: channel c of grid pixel p at out[c * grid_pad + p]
  grid_to_output(g.co, g.ho, g.wo, out, g.grid_pad, g.wq, b, relu, y);
}
template void amx_conv_forward_image<float>(const AmxConvGeometry&, const bf16*, bf16*,
                                            const bf16*, float*, const float*, bool, float*,
                                            FetchAhead*);
template void amx_conv_forward_image<bf16>(const AmxConvGeometry&, const bf16*, bf16*,
                                           const bf16*, float*, const float*, bool, bf16*,
                                           FetchAhead*);

void amx_conv_grad_weight(const AmxConvGeometry& g, const AmxGradImages& im, float* acc) {
  amx_load_tile_config();
  const int64_t ctiles = g.cpad / 16;
  if (ctiles == 1 && g.copad == 16) {
    const int64_t taps = g.kh * g.kw;
    for (int64_t t = 0; t < taps; t += 3) {
      float* acc_taps = acc + t * g.cpad * g.copad;
      if (taps - t >= 3)
        grad_taps_block<3>(g, im, g.tap_offsets + t, acc_taps);
      else if (taps - t == 2)
        grad_taps_block<2>(g, im, g.tap_offsets + t, acc_taps);
      else
        grad_taps_block<1>(g, im, g.tap_offsets + t, acc_taps);
    }
    return;
  }
  for (int64_t a = 0; a < g.kh; ++a)
    for (int64_t b = 0; b < g.kw; ++b) {
      const int64_t tap_off = g.tap_offsets[a * g.kw + b];
      float* acc_tap = acc + (a * g.kw + b) * g.cpad * g.copad;
      int64_t ct = 0;
      for (; ct + 2 <= ctiles; ct += 2) grad_channel_block<true>(g, im, tap_off, ct * 16, acc_tap);
      if (ct < ctiles) grad_channel_block<false>(g, im, tap_off, ct * 16, acc_tap);
    }
}

void amx_conv_image(const AmxConvGeometry& g, const bf16* xh, const bf16* wpack, float* out,
                    FetchAhead* ahead) {
  if (g.kchunk == 32) {
    amx_load_tile_config();
  } else {  // 16 input channels: A tiles of 32 bytes a row, B tiles of 8 pairs
    static const AmxTileConfig config = half_depth_tiles();
    _tile_loadconfig(&config);
  }
  const int64_t blocks = (g.grid_pad + 31) / 32;
  const int64_t lines = ahead ? (ahead->end - ahead->next + 63) / 64 : 0;
  const int64_t lines_per_block = (lines + blocks - 1) / blocks;
  for (int64_t p0 = 0; p0 < g.grid_pad; p0 += 32) {
    for (int64_t l = 0; l < lines_per_block && ahead->next < ahead->end; ++l, ahead->next += 64)
      __builtin_prefetch(ahead->next, 0, 2);
    if (p0 + 32 <= g.grid_pad)
      pixel_block<true>(g, xh, wpack, p0, out);
    else  // the grid's last 16 pixels
      pixel_block<false>(g, xh, wpack, p0, out);
  }
}

}  // namespace mg
