// The direct bfloat16 convolution on AMX tiles (conv_bf16_amx.cpp), for autocast's stride-1
// layers (groups 1) where the CPU has AMX: the layout it reads, the plan conv.cpp builds.
//
// The product is computed transposed, Y^T = W X^T per kernel tap, so that AMX's pair layout
// falls on the image's channels and its output rows on the output's channels:
//
// Image: padded (hp x wp) and pair-interleaved: for each pair of input channels (2k, 2k+1) a
// plane of `rows` pixels (pixel (r, q) of the padded image at r*wp + q) holding two values per
// pixel, channel 2k then 2k+1:
//   xh[(k * rows + pixel) * 2 + e] = X[2k + e][r - ph][q - pw]   (zero in the padding, beyond
//                                                                 ci and beyond the image)
// Output pixel p = oh*wp + ow of the grid (ho x wp; columns wo and beyond are computed and
// dropped) reads input pixel p + a*dh*wp + b*dw for tap (a, b): for 16 consecutive output
// pixels and 16 pairs of channels that is one B tile, rows (pairs) rows*2 values apart. The
// grid is computed in blocks of 32 pixels (grid_pad), so each plane holds `rows` = grid_pad +
// the largest tap offset pixels.
// Weights: per tap, chunk of 32 input channels and tile of 16 output channels, one 1 KiB A
// tile of 16 output channels x 32 input channels:
//   wpack[(((a*kw + b)*chunks + kc)*cotiles + cot)*512 + j*32 + i] = W[cot*16 + j][kc*32 + i][a][b]
//   (zero beyond co or ci)
// Output: channel-major, out[o * grid_pad + p] (float32), copad = co rounded up to 16 rows.
#pragma once
#include <cstdint>

namespace mg {

struct bf16;

struct AmxConvGeometry {
  int64_t ci, cpad, co, copad, kh, kw, dh, dw;
  int64_t wp, grid, grid_pad, rows;
};

void amx_conv_image(const AmxConvGeometry& g, const bf16* xh, const bf16* wpack, float* out);

}  // namespace mg
