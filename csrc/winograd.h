// Winograd's minimal filtering for 3x3, stride-1 convolutions: F(m x m, 3 x 3) computes an
// m x m block of outputs from an alpha x alpha input tile (alpha = m + 2) with alpha^2
// multiplies per input/output channel pair instead of 9 m^2:
//
//   Y = A^T [ (G g G^T) (.) (B^T d B) ] A        (.) = element-wise product
//
// g the 3x3 kernel, d the input tile, Y the output block. Summed over input channels, the
// element-wise products become alpha^2 independent GEMMs over channels (conv.cpp, on mg::gemm):
//   M[e] (co x tiles) = U[e] (co x ci) V[e] (ci x tiles),   U = G g G^T,  V = B^T d B.
// The weight gradient is the same identity read backwards (Y is linear in U):
//   dU[e] (co x ci) = sum over tiles of (A dY A^T)[e] V[e]^T,   dW = G^T dU G,
// and the input gradient is itself a 3x3 stride-1 convolution (of dY with the flipped,
// transposed kernel), so it runs on the forward path.
//
// Every transform is one shape, X -> L X L^T, with L one of five constant matrices
// (WinogradTransform). Tiles interpolate at the points 0, +-1 (m = 2) and 0, +-1, +-2 (m = 4),
// plus infinity; F(4x4) does 4x fewer multiplies than the direct sum, F(2x2) 2.25x, and F(4x4)
// loses more float32 accuracy (its matrices hold 1/24, 8, 5: docs in csrc/README.md).
#pragma once
#include <cstdint>

#include "dispatch.h"

namespace mg {

// Which matrix L a transform X -> L X L^T applies, and the sides of X and of the result.
enum class WinogradTransform : int {
  input = 0,        // B^T (alpha x alpha): input tile d -> V
  weight = 1,       // G (alpha x 3): 3x3 kernel g -> U
  output = 2,       // A^T (m x alpha): product M -> output block Y
  grad_output = 3,  // A (alpha x m): output-gradient block dY -> A dY A^T
  grad_weight = 4,  // G^T (3 x alpha): dU -> 3x3 weight gradient
};

struct WinogradF2 {  // F(2x2, 3x3)
  static constexpr int m = 2, alpha = 4;
  static constexpr double BT[4][4] = {{1, 0, -1, 0}, {0, 1, 1, 0}, {0, -1, 1, 0}, {0, 1, 0, -1}};
  static constexpr double G[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
  static constexpr double AT[2][4] = {{1, 1, 1, 0}, {0, 1, -1, -1}};
};

struct WinogradF4 {  // F(4x4, 3x3)
  static constexpr int m = 4, alpha = 6;
  static constexpr double BT[6][6] = {{4, 0, -5, 0, 1, 0},  {0, -4, -4, 1, 1, 0},
                                      {0, 4, -4, -1, 1, 0}, {0, -2, -1, 2, 1, 0},
                                      {0, 2, -1, -2, 1, 0}, {0, 4, 0, -5, 0, 1}};
  static constexpr double G[6][3] = {{1.0 / 4, 0, 0},
                                     {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                                     {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                                     {1.0 / 24, 1.0 / 12, 1.0 / 6},
                                     {1.0 / 24, -1.0 / 12, 1.0 / 6},
                                     {0, 0, 1}};
  static constexpr double AT[4][6] = {
      {1, 1, 1, 1, 1, 0}, {0, 1, -1, 2, -2, 0}, {0, 1, 1, 4, 4, 0}, {0, 1, -1, 8, -8, 1}};
};

// L of transform K for tile F: rows x cols, entries at(i, j); constexpr, so the vector kernels
// unroll X -> L X L^T with the zeros and ones folded away.
template <typename F, WinogradTransform K>
struct WinogradMatrix {
  static constexpr int rows = K == WinogradTransform::input         ? F::alpha
                              : K == WinogradTransform::weight      ? F::alpha
                              : K == WinogradTransform::output      ? F::m
                              : K == WinogradTransform::grad_output ? F::alpha
                                                                    : 3;
  static constexpr int cols = K == WinogradTransform::input         ? F::alpha
                              : K == WinogradTransform::weight      ? 3
                              : K == WinogradTransform::output      ? F::alpha
                              : K == WinogradTransform::grad_output ? F::m
                                                                    : F::alpha;
  static constexpr double at(int i, int j) {
    switch (K) {
      case WinogradTransform::input: return F::BT[i][j];
      case WinogradTransform::weight: return F::G[i][j];
      case WinogradTransform::output: return F::AT[i][j];
      case WinogradTransform::grad_output: return F::AT[j][i];
      default: return F::G[j][i];
    }
  }
};

// (side of X, side of L X L^T) for transform K with output tile m (2 or 4).
inline int winograd_in_side(WinogradTransform k, int m) {
  switch (k) {
    case WinogradTransform::weight: return 3;
    case WinogradTransform::grad_output: return m;
    default: return m + 2;
  }
}
inline int winograd_out_side(WinogradTransform k, int m) {
  switch (k) {
    case WinogradTransform::output: return m;
    case WinogradTransform::grad_weight: return 3;
    default: return m + 2;
  }
}

// ------------------------------------------------------------------- transforms, per ISA
// Tiles are numbered row of tiles first, then image, then column of tiles:
//   t = (ty * images + img) * tiles_w + tx,
// so for one row of tiles the tiles of every image of a chunk are consecutive: vectors run
// along t (lanes are tiles) and stay full on small images (8x8 planes have 2 tiles a row).
//
// gather_transform (any K but output, tile m): for c < channels, ty < tiles_h,
// j < span (= images * tiles_w), e < out_side^2 (out_side = winograd_out_side(K, m)):
//   out[e * out_es + c * out_cs + ty * span + j] = (L X L^T)[e],
//   X[i][k] = in[c * in_cs + (ty * m + i - top) * in_rs + k * in_ks + off[j]]
//     where the window holds it (TileWindow), else 0.
// off[j] says where tile j starts in its row: a convolution reads the chunk's images in place,
// off[j] = img * image_size + tx * m - left, and the window cuts off what falls in the zero
// padding, so no padded copy is made. The lanes are read with the ISA's (masked) gather
// instruction. `off` and `col` hold round_up(span, 16) entries, those past span any in-bounds
// offset (0) and any column. The weight transforms use it with one row of tiles (tiles_h = 1),
// one channel and TileWindow::everything().
// output_transform (tile m): Y = A^T X A, X[i][k] = in[(i*alpha + k) * in_es + c * in_cs + t],
//   then Y + bias[c] (bias may be null), max(., 0) when relu, written to
//   out[img * out_is + c * out_cs + (ty*m + a) * out_rs + tx*m + b] for ty*m + a < rows and
//   tx*m + b < cols (edge tiles are cut).
//
// The part of a plane the tiles read: X[i][k] of tile j in row of tiles ty is read only when
// 0 <= ty * m + i - top < rows and 0 <= col[j] + k < cols (col[j] = tx * m - left, its
// first column in the plane); outside, it is the zero padding. col == nullptr: no limits.
// tiles_w: the lanes are rows of tiles of whole images, tiles_w tiles each, one image after the
// other (0: unknown); it lets a kernel read whole image rows instead of gathering.
struct TileWindow {
  int64_t top, rows;
  const int32_t* col;
  int32_t cols;
  int64_t tiles_w;
  static TileWindow everything() { return {0, int64_t(1) << 62, nullptr, 0, 0}; }
};

template <typename T>
struct WinogradKernels {
  void (*gather_transform)(WinogradTransform kind, int m, const T* in, int64_t in_cs,
                           int64_t in_rs, int64_t in_ks, const int32_t* off,
                           const TileWindow& window, int64_t channels, int64_t tiles_h,
                           int64_t span, T* out, int64_t out_es, int64_t out_cs);
  void (*output_transform)(int m, const T* in, int64_t in_es, int64_t in_cs, int64_t channels,
                           int64_t tiles_h, int64_t images, int64_t tiles_w, const T* bias,
                           bool relu, T* out, int64_t out_is, int64_t out_cs, int64_t out_rs,
                           int64_t rows, int64_t cols);
  const char* name;
};

MG_DECLARE_KERNEL_TABLES(WinogradKernels<float>)
MG_DECLARE_KERNEL_TABLES(WinogradKernels<double>)

struct ConvShape;

// Whether the Winograd path can run this convolution: 3x3, stride 1, dilation 1, groups 1,
// padding at most 2 (the input gradient pads dY by 2 - padding), planes at most 2^20 a side
// (int32 tile offsets).
bool conv_winograd_supports(const ConvShape& s);

// Whether dW on F(m x m) sums each chunk's products on the dot-product kernel (chunks of at
// least kDotMinTiles tiles, winograd.cpp) or on the packed GEMM: the cost model's rates differ.
bool winograd_weight_grad_on_dot(const ConvShape& s, int m);

// conv2d_forward / conv2d_backward (conv.h) on F(m x m, 3 x 3), m = 2 or 4; the sizes were
// checked by the binding and conv_winograd_supports(s) holds.
template <typename T>
void winograd_forward(const ConvShape& s, int m, const T* x, const T* w, const T* b, T* y,
                      bool relu);
template <typename T>
void winograd_backward(const ConvShape& s, int m, const T* x, const T* w, const T* gy, T* gx,
                       T* gw, T* gb);

// Reference twin (csrc/ref/winograd_ref.cpp): X -> L X L^T for `count` tiles, tiles
// (count, in_side, in_side) -> out (count, out_side, out_side), plain loops over at(i, j).
template <typename T>
void winograd_transform_ref(WinogradTransform kind, int m, const T* tiles, int64_t count, T* out);

// The active ISA's transforms, for tests: the same layout as the reference.
template <typename T>
void winograd_transform(WinogradTransform kind, int m, const T* tiles, int64_t count, T* out);

const char* winograd_impl_name();

}  // namespace mg
