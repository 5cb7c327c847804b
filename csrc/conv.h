// 2-D convolution on NCHW arrays (the layout users hand in), forward and backward.
//
//   y[n, co, oh, ow] = b[co] + sum_{ci, kh, kw} w[co, ci, kh, kw] * x[n, g*Cig + ci, ih, iw]
//   ih = oh*sh - ph + kh*dh,  iw = ow*sw - pw + kw*dw   (zero outside the image)
//
// with groups g: output channel co reads the Cig = Ci/groups input channels of its group.
// Four algorithms, chosen per shape and pass (conv_choose_algo) and named in backend_info:
//   direct  stride 1, groups 1, few input channels: a vectorised kernel that keeps a block of
//           output channels x output columns in registers and reads each input row once per
//           tap (LeNet's 1->6 and 6->16 channels, ResNet's 3-channel stem);
//   chanvec groups 1, small planes with many channels (ResNet's 16x16 and 8x8 stages, stride
//           1 or 2): vectors along output channels, each weight vector multiplied by input
//           values broadcast straight from the padded image (an implicit GEMM, no patch
//           matrix); the weight gradient keeps its sums in registers over the whole batch
//           chunk. Strided grad_input runs in stride phases (each a correlation with
//           the taps that reach it, written straight into its pixels of the image);
//           `automatic` uses that only with 32+ input channels and every phase reached.
//   gemm    everything else: the patch matrices (im2col) of a chunk of images, side by side,
//           times the weights on mg::gemm, one product per chunk; a 1x1 convolution with
//           stride 1 and no padding skips im2col (the image is the matrix).
//   winograd 3x3, stride 1: F(2x2, 3x3) or F(4x4, 3x3) tiles, 2.25x or 4x fewer multiplies,
//           the element-wise products batched as GEMMs over channels (winograd.h).
// Sizes are trusted here: the bindings check every array against ConvShape first.
#pragma once
#include <cstdint>

#include "dispatch.h"

namespace mg {

struct ConvShape {
  int64_t n, ci, h, w;      // input
  int64_t co, kh, kw;       // weight (co, ci / groups, kh, kw)
  int64_t sh, sw, ph, pw, dh, dw, groups;
  int64_t ho() const { return (h + 2 * ph - dh * (kh - 1) - 1) / sh + 1; }
  int64_t wo() const { return (w + 2 * pw - dw * (kw - 1) - 1) / sw + 1; }
};

// `winograd` lets the chooser pick the tile; winograd_f2 / winograd_f4 force F(2x2, 3x3) /
// F(4x4, 3x3) (winograd.h). conv_choose_algo never returns automatic or winograd.
enum class ConvAlgo : int {
  automatic = 0,
  direct = 1,
  gemm = 2,
  chanvec = 3,
  winograd = 4,
  winograd_f2 = 5,
  winograd_f4 = 6,
};
// The three products of a training step; each may run on its own algorithm.
enum class ConvPass : int { forward = 0, grad_input = 1, grad_weight = 2 };

// The algorithm `automatic` resolves to for one pass; `direct` is only possible for stride 1,
// groups 1; `chanvec` for groups 1; `winograd*` where conv_winograd_supports; otherwise
// `gemm` runs.
ConvAlgo conv_choose_algo(const ConvShape& s, ConvAlgo wanted, ConvPass pass);
bool conv_direct_supports(const ConvShape& s);
const char* conv_direct_impl_name();   // the direct kernels' name for the active ISA
const char* conv_chanvec_impl_name();  // the channel-vectorised kernels' name
const char* conv_algo_name(ConvAlgo algo);  // "direct", "winograd_f4", ...

// Autocast's bfloat16 convolution (bf16: gemm/bf16.h): bfloat16 input, weight and dY; float32
// bias and weight gradients; the output and dX float32 or bfloat16 (Y, rounded once from the
// float32 accumulation; autocast asks for bfloat16). Stride-1 layers on shifted image rows
// (AMX tiles where the CPU has them), the others on im2col + the bfloat16 GEMM.
struct bf16;
template <typename Y>
void conv2d_forward_bf16(const ConvShape& s, const bf16* x, const bf16* w, const float* b, Y* y,
                         bool relu);
template <typename Y>
void conv2d_backward_bf16(const ConvShape& s, const bf16* x, const bf16* w, const bf16* gy,
                          Y* gx, float* gw, float* gb);

// The road a pass of the bfloat16 convolution takes (conv.cpp, bfloat16 section): the direct
// AMX tile kernels, dX's phases on them (strided layers), the GEMM on shifted image rows
// (stride 1), im2col + the GEMM, or (AVX512_BF16 without AMX, where the float32 chooser picks
// Winograd or a direct kernel) the float32 kernels on the widened values; and its name for the
// profile ("bf16_amx", ...).
enum class Bf16ConvPath : int { none = 0, amx, amx_phases, shifted, gemm, widened };
Bf16ConvPath bf16_conv_path(const ConvShape& s, ConvPass pass);
const char* bf16_conv_path_name(Bf16ConvPath path);

// Calls per pass and algorithm since the process started (backend_info()["conv_calls"]).
int64_t conv_calls(ConvPass pass, ConvAlgo algo);

// y = conv(x, w) + b (b may be null), then max(y, 0) when relu is set.
template <typename T>
void conv2d_forward(const ConvShape& s, const T* x, const T* w, const T* b, T* y, bool relu,
                    ConvAlgo algo);

// Any of gx (dL/dx), gw (dL/dw), gb (dL/db) may be null and is then not computed.
template <typename T>
void conv2d_backward(const ConvShape& s, const T* x, const T* w, const T* gy, T* gx, T* gw, T* gb,
                     ConvAlgo algo);

// Plain loops straight from the formula above: the test oracle (csrc/ref/conv_ref.cpp).
template <typename T>
void conv2d_forward_ref(const ConvShape& s, const T* x, const T* w, const T* b, T* y, bool relu);
template <typename T>
void conv2d_backward_ref(const ConvShape& s, const T* x, const T* w, const T* gy, T* gx, T* gw,
                         T* gb);

// ------------------------------------------------------------- direct kernels, per ISA
// Both work on buffers the driver prepares (padded, so full vectors never read out of bounds).
//
// correlate: out[o, r, c] = bias[o] + sum_{i, kh, kw} wt[o, i, kh, kw] * in[i, r + kh*dh, c + kw*dw]
//   for o < outs, r < rows, c < cols; `wt` holds round_up(outs, 4) output channels (zero
//   beyond outs); `in` must be readable up to column round_up(cols, vl) - 1 + (kw-1)*dw.
// weight_grad: gw[o, i, kh, kw] += sum_{m, r, c} g[m, o, r, c] * in[m, i, r + kh*dh, c + kw*dw]
//   over images m < images (g_is, in_is apart), r < rows, c < round_up(cols, vl); `g` has
//   round_up(outs, 4) channels, rows of g_rs >= round_up(cols, vl) values, zero beyond `cols`
//   and `outs`.
template <typename T>
struct ConvDirectKernels {
  int vl;  // values per vector block
  void (*correlate)(const T* in, int64_t in_cs, int64_t in_rs, int64_t ins, const T* wt,
                    const T* bias, int64_t outs, int64_t kh, int64_t kw, int64_t dh, int64_t dw,
                    T* out, int64_t out_cs, int64_t out_rs, int64_t rows, int64_t cols, bool relu);
  void (*weight_grad)(const T* g, int64_t g_is, int64_t g_cs, int64_t g_rs, int64_t outs,
                      const T* in, int64_t in_is, int64_t in_cs, int64_t in_rs, int64_t ins,
                      int64_t kh, int64_t kw, int64_t dh, int64_t dw, int64_t images,
                      int64_t rows, int64_t cols, T* gw);
  const char* name;
  // The kernels vectorised over channels (conv_direct_kernels.inc, "kernels vectorised over
  // channels"); outs_pad is a multiple of vl.
  void (*chanvec_correlate)(const T* in, int64_t in_cs, const int64_t* pix_off, int64_t pixels,
                            int64_t ins, const int64_t* tap_off, int64_t taps, const T* wt,
                            int64_t outs_pad, const T* bias, int64_t outs, T* out,
                            int64_t out_cs, bool relu);
  void (*chanvec_weight_grad)(const T* g, int64_t g_is, int64_t outs_pad, const T* in,
                              int64_t in_is, const int64_t* pix_off, int64_t pixels,
                              const int64_t* col_off, int64_t cols, int64_t images, T* gwt);
  const char* chanvec_name;
  // dst[q * dst_stride + c] = src[c * plane + q]: dY's channel planes into the pixel rows
  // chanvec_weight_grad reads (an in-register transpose).
  void (*planes_to_rows)(const T* src, int64_t channels, int64_t plane, T* dst,
                         int64_t dst_stride);
};

// One table per ISA and dtype, each defined by conv_direct_<isa>.cpp; the driver takes the
// active ISA's with isa_table<ConvDirectKernels<T>>() (dispatch.h).
MG_DECLARE_KERNEL_TABLES(ConvDirectKernels<float>)
MG_DECLARE_KERNEL_TABLES(ConvDirectKernels<double>)

}  // namespace mg
