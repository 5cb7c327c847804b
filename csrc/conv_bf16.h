// The direct bfloat16 convolution on AMX tiles (conv_bf16_amx.cpp), for autocast's stride-1
// layers (groups 1) where the CPU has AMX: the layout it reads, the plan conv.cpp builds.
//
// Image: channels-last, padded: pixel (r, q) of the padded image (hp x wp) at row r*wp + q of
// xh, its cpad channels contiguous (zero beyond ci). Output pixel p = oh*wp + ow of the grid
// (ho x wp; columns wo and beyond are computed and dropped) reads input row p + a*dh*wp + b*dw
// for kernel tap (a, b). The grid is computed in blocks of 32 pixels (grid_pad rows), so xh
// holds `rows` = grid_pad + the largest tap offset rows, zero beyond the padded image.
// Weights: per tap, channel chunk of 32 and tile of 16 output channels, one 1 KiB tile of
// 16 pairs of input channels x 16 output channels x 2 (the AMX B layout):
//   wpack[(((a*kw + b)*chunks + kc)*cotiles + cot)*512 + q*32 + j*2 + e]
//     = W[cot*16 + j][kc*32 + 2q + e][a][b]   (zero beyond co or ci)
// Output: out[p * copad + o] (float32, grid_pad rows).
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
