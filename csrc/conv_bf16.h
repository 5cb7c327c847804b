// The direct bfloat16 convolution on AMX tiles (conv_bf16_amx.cpp), for autocast's stride-1
// layers (groups 1) where the CPU has AMX: the layout it reads, the plan conv.cpp builds.
//
// The product is computed transposed, Y^T = W X^T per kernel tap, so that AMX's pair layout
// falls on the image's channels and its output rows on the output's channels:
//
// Image: padded (hp x wp) and pair-interleaved: for each pair of input channels (2k, 2k+1) a
// plane of `rows` pixels (at stride 1, pixel (r, q) of the padded image at r*wp + q; strided
// layers: the phases below) holding two values per pixel, channel 2k then 2k+1:
//   xh[(k * rows + pixel) * 2 + e] = X[2k + e][r - ph][q - pw]   (zero in the padding, beyond
//                                                                 ci and beyond the image)
// Output pixel p = oh*wq + ow of the grid (ho x wq; columns wo and beyond are computed and
// dropped) reads plane pixel p + tap_offsets[tap] (at stride 1: a*dh*wp + b*dw): for 16
// consecutive output pixels and 16 pairs of channels that is one B tile, rows (pairs) rows*2
// values apart. The grid is computed in blocks of 32 pixels, the last one 16 where the grid
// ends there (grid_pad: the grid rounded up to 16; dW's, below, to 32), so each phase holds
// grid_pad + the largest in-phase offset pixels.
// Weights: per tap, chunk of kchunk (32, or 16 for 16-channel layers) input channels and tile
// of 16 output channels, one A tile of 16 output channels x kchunk input channels:
//   wpack[(((a*kw + b)*chunks + kc)*cotiles + cot)*16*kchunk + j*kchunk + i]
//     = W[cot*16 + j][kc*kchunk + i][a][b]   (zero beyond co or ci)
// Output: channel-major, out[o * grid_pad + p] (float32), copad = co rounded up to 16 rows.
#pragma once
#if defined(__AVX512BW__)
#include <immintrin.h>
#endif
#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "gemm/bf16.h"

namespace mg {

// Strided layers split the padded image into sh x sw phases (pixel (r, q) in phase
// (r % sh, q % sw) at (r / sh, q / sw)), each hq x wq and phase_rows pixels apart in the
// plane: tap (a, b) of output pixel (oh, ow) then reads phase ((a*dh) % sh, (b*dw) % sw) at
// (oh + a*dh / sh, ow + b*dw / sw), a stride-1 shift again. The grid is ho x wq, and grid
// pixel p reads plane pixel p + tap_offsets[a*kw + b] for every stride (one phase at stride 1,
// where wq = wp).
struct AmxConvGeometry {
  int64_t ci, cpad, co, copad, kh, kw, dh, dw;
  int64_t kchunk;  // input channels per product: 32, or 16 for 16-channel layers (cpad 16)
  int64_t h, w, ph, pw, ho, wo;  // the image, its padding, the output
  int64_t sh, sw, hq, wq, phase_rows;
  int64_t grid, grid_pad, rows;  // rows: pixels per plane, sh * sw * phase_rows
  const int64_t* tap_offsets;
  // Placing the image: row r's columns of column phase v (q = first_column(v), + sw, ...) go
  // to consecutive pixels of the plane from run_starts[r * sw + v] (amx_runs fills it once
  // per call, so the placement loops divide nothing).
  const int64_t* run_starts;
  int64_t first_column(int64_t v) const { return (v - pw % sw + sw) % sw; }
  // Where pixel (r, q) of the padded image lies in a plane: its phase's offset plus position.
  int64_t pixel(int64_t r, int64_t q) const {
    return ((r % sh) * sw + q % sw) * phase_rows + r / sh * wq + q / sw;
  }
};

// run_starts for g (storage for g.run_starts, which it sets).
void amx_runs(AmxConvGeometry& g, std::vector<int64_t>& storage);

// Memory a later pass will read, fetched into L2 while the tiles work: amx_conv_image asks for
// an even share of what is left at each block of its grid, so the reads overlap the products
// instead of stalling the pass that needs them (dW's placement of x, after dX of that image).
struct FetchAhead {
  const char* next = nullptr;
  const char* end = nullptr;
  FetchAhead(const void* begin, int64_t bytes)
      : next(static_cast<const char*>(begin)), end(next + bytes) {}
};

void amx_conv_image(const AmxConvGeometry& g, const bf16* xh, const bf16* wpack, float* out,
                    FetchAhead* ahead = nullptr);
// Image x (NCHW, g.ci x g.h x g.w) into xh's pair-interleaved planes; what it does not write
// (padding, the last odd channel's partner) must be zero already.
void amx_place_image(const AmxConvGeometry& g, const bf16* x, bf16* xh);

// dst[2k] = even[k], dst[2k + 1] = odd[k] for 2k, 2k + 1 < n (a null row reads as zeros),
// rounded to bfloat16 where Y is: a dX row of a stride-2 layer from its two column phases.
template <typename Y>
void amx_interleave_row(const float* even, const float* odd, int64_t n, Y* dst);

// One image's forward pass on AMX, compiled with the AMX TU's flags: the image x (NCHW) placed
// into xh (zero where nothing is placed: padding, the last odd channel's partner), the tiles
// into out, then y (co x ho x wo; float32, or bfloat16 rounded once) from out with the bias
// and ReLU (grid_to_output).
template <typename Y>
void amx_conv_forward_image(const AmxConvGeometry& g, const bf16* x, bf16* xh, const bf16* wpack,
                            float* out, const float* b, bool relu, Y* y,
                            FetchAhead* ahead = nullptr);

namespace {  // internal linkage: each file that uses it compiles it for its own instruction set

// One image's output from its values on the ho x wp grid (channel c of grid pixel p at
// out[c * channel_stride + p]): columns wo and beyond dropped, bias and ReLU applied, y
// (co x ho x wo; float32, or bfloat16 rounded here) written along its rows.
template <typename Y>
void grid_to_output(int64_t co, int64_t ho, int64_t wo, const float* out, int64_t channel_stride,
                    int64_t wp, const float* b, bool relu, Y* y) {
  for (int64_t c = 0; c < co; ++c) {
    const float bc = b ? b[c] : 0.0f;
    for (int64_t oh = 0; oh < ho; ++oh) {
      const float* src = out + c * channel_stride + oh * wp;
      Y* dst = y + (c * ho + oh) * wo;
#if defined(__AVX512BW__)
      // Rows of 8 or 16 (ResNet's small planes) are all remainder to the compiler's
      // vectorised loop: 16 values at a time here, the last ones masked.
      for (int64_t ow = 0; ow < wo; ow += 16) {
        const __mmask16 m = wo - ow >= 16 ? __mmask16(0xffff) : __mmask16((1u << (wo - ow)) - 1);
        __m512 v = _mm512_add_ps(_mm512_maskz_loadu_ps(m, src + ow), _mm512_set1_ps(bc));
        if (relu) v = _mm512_max_ps(v, _mm512_setzero_ps());
        if constexpr (std::is_same_v<Y, bf16>) {
          typedef uint32_t Lanes __attribute__((vector_size(64)));
          typedef uint16_t Halves __attribute__((vector_size(32)));
          const Halves h = __builtin_convertvector(bf16_bits_rounded((Lanes)_mm512_castps_si512(v)), Halves);
          _mm256_mask_storeu_epi16(dst + ow, m, (__m256i)h);
        } else {
          _mm512_mask_storeu_ps(dst + ow, m, v);
        }
      }
#else
      if (relu)
        for (int64_t ow = 0; ow < wo; ++ow) store_rounded(std::max(src[ow] + bc, 0.0f), dst + ow);
      else
        for (int64_t ow = 0; ow < wo; ++ow) store_rounded(src[ow] + bc, dst + ow);
#endif
    }
  }
}

}  // namespace

// The weight gradient of the same layers over a few images, written to acc:
//   acc[((a*kw + b)*cpad + c)*copad + o] = sum over the images and their grid pixels p of
//                                          X[c][p + a*dh*wp + b*dw] dY[o][p]
// (cpad here: ci rounded up to 16). The contraction runs over pixels, so the A tile is 16
// input channels x 32 pixels of the padded image in plain NCHW planes (`rows` pixels apart,
// zero beyond ci and the image: a tap only shifts where the pixels start), and the B tile 16
// pairs of pixels x 16 output channels of dY in pairs:
//   dy_pairs[(q*copad + o)*2 + e] = dY[o][grid pixel 2q + e]   (zero in the dropped columns,
//                                                                beyond the grid and beyond co)
// A 32 x 32 block of dW^T per tap stays in four accumulator tiles over all the images' pixels.
// amx_grad_place_image lays out one image: x (NCHW) into xpad's planes, dY (co x ho x wo) onto
// dy_grid (copad x grid_pad, zero wherever no dY value goes) and from there into dy_pairs.
void amx_grad_place_image(const AmxConvGeometry& g, const bf16* x, const bf16* gy, bf16* xpad,
                          bf16* dy_grid, bf16* dy_pairs);
struct AmxGradImages {
  const bf16* xpad;      // image i at xpad + i * xpad_stride (cpad planes of `rows` pixels)
  int64_t xpad_stride;
  const bf16* dy_pairs;  // image i at dy_pairs + i * dy_stride (grid_pad * copad values)
  int64_t dy_stride;
  int64_t count;
};
void amx_conv_grad_weight(const AmxConvGeometry& g, const AmxGradImages& images, float* acc);

}  // namespace mg
