// Direct bfloat16 convolution on AMX tiles (conv_bf16.h; compiled with the AMX flags, called
// only where the bfloat16 road is amx).
//
// The image is channels-last and padded (conv_bf16.h): pixel p of the output grid (ho x wp,
// row-major) reads input pixel p + a*dh*wp + b*dw for kernel tap (a, b), and that pixel's
// channels are one contiguous run. So the A tile of 16 consecutive output pixels x 32 input
// channels for a tap is loaded straight from the image, rows cpad values apart: no patch
// matrix and no packing. B is the tap's weights, packed once per call into 1 KiB tiles of 16
// pairs of input channels x 16 output channels. A 32-pixel x 32-channel block of the output
// stays in four accumulator tiles over every tap and channel chunk, then goes to memory once.
#include <immintrin.h>

#include <cstdint>

#include "conv_bf16.h"
#include "gemm/bf16.h"

namespace mg {
namespace {

// Output channels in blocks of two tiles (32) or, for the last 16 of an odd count, one.
template <bool TwoChannelTiles>
void block(const AmxConvGeometry& g, const bf16* xh, const bf16* wpack, int64_t p0, int64_t cot,
           float* out) {
  _tile_zero(0);
  _tile_zero(1);
  if (TwoChannelTiles) {
    _tile_zero(2);
    _tile_zero(3);
  }
  const int64_t chunks = g.cpad / 32, cotiles = g.copad / 16, a_stride = g.cpad * 2;
  for (int64_t a = 0; a < g.kh; ++a)
    for (int64_t b = 0; b < g.kw; ++b) {
      const bf16* x0 = xh + (p0 + a * g.dh * g.wp + b * g.dw) * g.cpad;
      const bf16* wt = wpack + (a * g.kw + b) * chunks * cotiles * 512;
      for (int64_t kc = 0; kc < chunks; ++kc) {
        const bf16* w0 = wt + (kc * cotiles + cot) * 512;
        _tile_loadd(4, x0 + kc * 32, a_stride);                  // pixels p0 .. p0+15
        _tile_loadd(6, w0, 64);                                  // channels of tile cot
        _tile_dpbf16ps(0, 4, 6);
        _tile_loadd(5, x0 + 16 * g.cpad + kc * 32, a_stride);  // pixels p0+16 .. p0+31
        _tile_dpbf16ps(1, 5, 6);
        if (TwoChannelTiles) {
          _tile_loadd(7, w0 + 512, 64);  // tile cot + 1
          _tile_dpbf16ps(2, 4, 7);
          _tile_dpbf16ps(3, 5, 7);
        }
      }
    }
  const int64_t ld = g.copad * 4;  // bytes between output pixels
  float* o = out + p0 * g.copad + cot * 16;
  _tile_stored(0, o, ld);
  _tile_stored(1, o + 16 * g.copad, ld);
  if (TwoChannelTiles) {
    _tile_stored(2, o + 16, ld);
    _tile_stored(3, o + 16 * g.copad + 16, ld);
  }
}

}  // namespace

void amx_conv_image(const AmxConvGeometry& g, const bf16* xh, const bf16* wpack, float* out) {
  amx_load_tile_config();
  const int64_t cotiles = g.copad / 16;
  for (int64_t p0 = 0; p0 < g.grid_pad; p0 += 32) {
    int64_t cot = 0;
    for (; cot + 2 <= cotiles; cot += 2) block<true>(g, xh, wpack, p0, cot, out);
    if (cot < cotiles) block<false>(g, xh, wpack, p0, cot, out);
  }
}

}  // namespace mg
