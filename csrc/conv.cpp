// Convolution driver: picks the algorithm per shape, prepares buffers, splits the batch over
// threads. The arithmetic lives in mg::gemm (gemm path) and the direct kernels (conv.h).
//
// Threads take whole images: with a batch of at least two images every thread runs its own
// single-threaded GEMMs on its own patch buffer (no synchronisation inside an image); with one
// image the images run in turn and the GEMM threads itself. Weight and bias gradients are
// summed per thread and then added up in thread order.
#include "conv.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "dispatch.h"
#include "gemm/gemm.h"
#include "parallel.h"

namespace mg {
namespace {

int64_t round_up(int64_t a, int64_t b) { return (a + b - 1) / b * b; }

template <typename T>
ConvDirectKernels<T> pick_direct();
template <>
ConvDirectKernels<float> pick_direct<float>() {
  switch (active_isa()) {
    case Isa::avx512: return avx512::conv_direct_f32();
    case Isa::avx2: return avx2::conv_direct_f32();
    default: return generic::conv_direct_f32();
  }
}
template <>
ConvDirectKernels<double> pick_direct<double>() {
  switch (active_isa()) {
    case Isa::avx512: return avx512::conv_direct_f64();
    case Isa::avx2: return avx2::conv_direct_f64();
    default: return generic::conv_direct_f64();
  }
}
template <typename T>
const ConvDirectKernels<T>& direct() {
  static const ConvDirectKernels<T> k = pick_direct<T>();
  return k;
}

// A 1x1 convolution with stride 1 and no padding: the image (ci x h*w) is the patch matrix.
bool pointwise(const ConvShape& s) {
  return s.kh == 1 && s.kw == 1 && s.sh == 1 && s.sw == 1 && s.ph == 0 && s.pw == 0;
}

double conv_flop(const ConvShape& s) {
  return 2.0 * s.n * s.co * (s.ci / s.groups) * s.kh * s.kw * s.ho() * s.wo();
}

// Threads for a whole-batch loop: one per image at most, one for small problems.
int batch_team(const ConvShape& s) {
  const int64_t kFlopPerThread = 1 << 20;
  return static_cast<int>(std::min<int64_t>(
      s.n, threads_for(static_cast<int64_t>(conv_flop(s)), kFlopPerThread)));
}

// ------------------------------------------------------------------------ im2col / col2im
// The columns of output position ow that read inside the image for kernel column b:
// 0 <= ow*sw - pw + b*dw < w.
void valid_columns(const ConvShape& s, int64_t b, int64_t* lo, int64_t* hi) {
  const int64_t off = b * s.dw - s.pw, wo = s.wo();
  *lo = off >= 0 ? 0 : std::min(wo, (-off + s.sw - 1) / s.sw);
  *hi = s.w - 1 - off < 0 ? 0 : std::min(wo, (s.w - 1 - off) / s.sw + 1);
  if (*hi < *lo) *hi = *lo;
}

// col[(c*kh + a)*kw + b, oh*wo + ow] = x[c, oh*sh - ph + a*dh, ow*sw - pw + b*dw], 0 outside.
template <typename T>
void im2col(const ConvShape& s, const T* x, T* col) {
  const int64_t ho = s.ho(), wo = s.wo();
  for (int64_t c = 0; c < s.ci; ++c)
    for (int64_t a = 0; a < s.kh; ++a)
      for (int64_t b = 0; b < s.kw; ++b) {
        T* dst = col + ((c * s.kh + a) * s.kw + b) * ho * wo;
        int64_t lo, hi;
        valid_columns(s, b, &lo, &hi);
        const int64_t off = b * s.dw - s.pw;
        for (int64_t oh = 0; oh < ho; ++oh, dst += wo) {
          const int64_t ih = oh * s.sh - s.ph + a * s.dh;
          if (ih < 0 || ih >= s.h) {
            std::fill(dst, dst + wo, T(0));
            continue;
          }
          const T* src = x + (c * s.h + ih) * s.w;
          std::fill(dst, dst + lo, T(0));
          if (s.sw == 1)
            std::memcpy(dst + lo, src + lo + off, (hi - lo) * sizeof(T));
          else
            for (int64_t ow = lo; ow < hi; ++ow) dst[ow] = src[ow * s.sw + off];
          std::fill(dst + hi, dst + wo, T(0));
        }
      }
}

// The adjoint of im2col: x[c, ih, iw] += col[...] for every patch entry that read (ih, iw).
template <typename T>
void col2im_add(const ConvShape& s, const T* col, T* x) {
  const int64_t ho = s.ho(), wo = s.wo();
  for (int64_t c = 0; c < s.ci; ++c)
    for (int64_t a = 0; a < s.kh; ++a)
      for (int64_t b = 0; b < s.kw; ++b) {
        const T* src = col + ((c * s.kh + a) * s.kw + b) * ho * wo;
        int64_t lo, hi;
        valid_columns(s, b, &lo, &hi);
        const int64_t off = b * s.dw - s.pw;
        for (int64_t oh = 0; oh < ho; ++oh, src += wo) {
          const int64_t ih = oh * s.sh - s.ph + a * s.dh;
          if (ih < 0 || ih >= s.h) continue;
          T* dst = x + (c * s.h + ih) * s.w;
          for (int64_t ow = lo; ow < hi; ++ow) dst[ow * s.sw + off] += src[ow];
        }
      }
}

template <typename T>
void add_bias_relu(int64_t channels, int64_t plane, const T* b, bool relu, T* y) {
  if (!b && !relu) return;
  for (int64_t c = 0; c < channels; ++c) {
    T* yc = y + c * plane;
    const T bc = b ? b[c] : T(0);
    if (relu)
      for (int64_t p = 0; p < plane; ++p) yc[p] = std::max(yc[p] + bc, T(0));
    else
      for (int64_t p = 0; p < plane; ++p) yc[p] += bc;
  }
}

template <typename T>
void add_channel_sums(int64_t channels, int64_t plane, const T* gy, T* gb) {
  for (int64_t c = 0; c < channels; ++c) {
    T sum = T(0);
    for (int64_t p = 0; p < plane; ++p) sum += gy[c * plane + p];
    gb[c] += sum;
  }
}

// Runs body(thread, image) over the batch on `team` threads (static split, so every thread
// owns a fixed set of images), after setup(thread) on each thread.
template <typename Setup, typename Body>
void over_images(int64_t n, int team, Setup setup, Body body) {
  if (team <= 1) {
    setup(0);
    for (int64_t i = 0; i < n; ++i) body(0, i);
    return;
  }
#pragma omp parallel num_threads(team)
  {
    const int t = omp_get_thread_num();
    setup(t);
#pragma omp for schedule(static)
    for (int64_t i = 0; i < n; ++i) body(t, i);
  }
}

// Per-thread partial sums of a gradient, added into `out` in thread order.
template <typename T>
struct PartialSums {
  std::vector<std::vector<T>> parts;
  PartialSums(int team, int64_t size) : parts(team, std::vector<T>(size, T(0))) {}
  void add_into(T* out) const {
    for (const auto& p : parts)
      for (size_t i = 0; i < p.size(); ++i) out[i] += p[i];
  }
};

// ------------------------------------------------------------------------------ gemm path
template <typename T>
void forward_gemm(const ConvShape& s, const T* x, const T* w, const T* b, T* y, bool relu) {
  const int64_t p = s.ho() * s.wo(), cig = s.ci / s.groups, cog = s.co / s.groups;
  const int64_t k = cig * s.kh * s.kw;
  const bool direct_cols = pointwise(s);
  const int team = batch_team(s);
  std::vector<std::vector<T>> col(team);
  over_images(
      s.n, team, [&](int t) { if (!direct_cols) col[t].resize(s.ci * s.kh * s.kw * p); },
      [&](int t, int64_t i) {
        const T* xi = x + i * s.ci * s.h * s.w;
        T* yi = y + i * s.co * p;
        const T* cols = xi;
        if (!direct_cols) {
          im2col(s, xi, col[t].data());
          cols = col[t].data();
        }
        for (int64_t g = 0; g < s.groups; ++g)
          gemm<T>(false, false, cog, p, k, T(1), w + g * cog * k, k, cols + g * k * p, p, T(0),
                  yi + g * cog * p, p);
        add_bias_relu(s.co, p, b, relu, yi);
      });
}

template <typename T>
void backward_gemm(const ConvShape& s, const T* x, const T* w, const T* gy, T* gx, T* gw, T* gb) {
  const int64_t p = s.ho() * s.wo(), cig = s.ci / s.groups, cog = s.co / s.groups;
  const int64_t k = cig * s.kh * s.kw, plane = s.h * s.w;
  const bool direct_cols = pointwise(s);
  const int team = batch_team(s);
  std::vector<std::vector<T>> col(team);
  // The weight gradient is summed transposed, (k x cog) per group: dW^T = cols dY^T reads
  // both GEMM operands along their rows (dW = dY cols^T would pack cols^T from rows p apart,
  // and power-of-two planes alias in the L1 sets). dY^T per image is small (co x p).
  PartialSums<T> gw_parts(gw ? team : 0, s.co * k), gb_parts(gb ? team : 0, s.co);
  std::vector<std::vector<T>> gy_t(team);
  over_images(
      s.n, team,
      [&](int t) {
        if (!direct_cols) col[t].resize(s.ci * s.kh * s.kw * p);
        if (gw) gy_t[t].resize(cog * p);
      },
      [&](int t, int64_t i) {
        const T* xi = x + i * s.ci * plane;
        const T* gyi = gy + i * s.co * p;
        if (gx) {  // dcol = W^T dY, then scattered back onto the image
          T* gxi = gx + i * s.ci * plane;
          T* dcol = direct_cols ? gxi : col[t].data();
          for (int64_t g = 0; g < s.groups; ++g)
            gemm<T>(true, false, k, p, cog, T(1), w + g * cog * k, k, gyi + g * cog * p, p, T(0),
                    dcol + g * k * p, p);
          if (!direct_cols) {
            std::fill(gxi, gxi + s.ci * plane, T(0));
            col2im_add(s, dcol, gxi);
          }
        }
        if (gw) {  // dW^T += cols dY^T, per group
          const T* cols = xi;
          if (!direct_cols) {
            im2col(s, xi, col[t].data());
            cols = col[t].data();
          }
          T* gyt = gy_t[t].data();
          T* gwt = gw_parts.parts[t].data();
          for (int64_t g = 0; g < s.groups; ++g) {
            const T* gyg = gyi + g * cog * p;
            for (int64_t c = 0; c < cog; ++c)
              for (int64_t q = 0; q < p; ++q) gyt[q * cog + c] = gyg[c * p + q];
            gemm<T>(false, false, k, cog, p, T(1), cols + g * k * p, p, gyt, cog, T(1),
                    gwt + g * k * cog, cog);
          }
        }
        if (gb) add_channel_sums(s.co, p, gyi, gb_parts.parts[t].data());
      });
  if (gw) {
    std::vector<T> sum(s.co * k, T(0));
    gw_parts.add_into(sum.data());
    for (int64_t g = 0; g < s.groups; ++g)
      for (int64_t c = 0; c < cog; ++c)
        for (int64_t j = 0; j < k; ++j) gw[(g * cog + c) * k + j] = sum[(g * k + j) * cog + c];
  }
  if (gb) gb_parts.add_into(gb);
}

// ---------------------------------------------------------------------------- direct path
// Geometry of the padded copies the direct kernels read (stride 1, groups 1).
struct DirectLayout {
  int64_t vl, hp, wp;        // padded input: ci x hp x wp
  int64_t gh, gwid;          // padded output gradient for dX: co x gh x gwid
  int64_t wov;               // output row rounded up to whole vectors (dW's gradient copy)
  DirectLayout(const ConvShape& s, int vl_) : vl(vl_) {
    const int64_t wo = s.wo(), reach_h = (s.kh - 1) * s.dh, reach_w = (s.kw - 1) * s.dw;
    hp = s.h + 2 * s.ph;
    wp = std::max(s.w + 2 * s.pw, round_up(wo, vl) + reach_w);
    gh = s.ho() + 2 * reach_h;
    gwid = std::max(wo + 2 * reach_w, s.pw + round_up(s.w, vl) + reach_w);
    wov = round_up(wo, vl);
  }
};

// dst (channels x rows_dst x cols_dst) = 0, then the image src (channels x rows x cols) copied
// in at (r0, c0).
template <typename T>
void place(const T* src, int64_t channels, int64_t rows, int64_t cols, T* dst, int64_t rows_dst,
           int64_t cols_dst, int64_t r0, int64_t c0) {
  std::fill(dst, dst + channels * rows_dst * cols_dst, T(0));
  for (int64_t c = 0; c < channels; ++c)
    for (int64_t r = 0; r < rows; ++r)
      std::memcpy(dst + (c * rows_dst + r0 + r) * cols_dst + c0, src + (c * rows + r) * cols,
                  cols * sizeof(T));
}

template <typename T>
void forward_direct(const ConvShape& s, const T* x, const T* w, const T* b, T* y, bool relu) {
  const ConvDirectKernels<T>& k = direct<T>();
  const DirectLayout L(s, k.vl);
  const int64_t ho = s.ho(), wo = s.wo(), taps = s.ci * s.kh * s.kw;
  std::vector<T> wt(round_up(s.co, 4) * taps, T(0));  // output channels padded to the tile
  std::copy(w, w + s.co * taps, wt.begin());
  const int team = batch_team(s);
  std::vector<std::vector<T>> xp(team);
  over_images(
      s.n, team, [&](int t) { xp[t].resize(s.ci * L.hp * L.wp); },
      [&](int t, int64_t i) {
        place(x + i * s.ci * s.h * s.w, s.ci, s.h, s.w, xp[t].data(), L.hp, L.wp, s.ph, s.pw);
        k.correlate(xp[t].data(), L.hp * L.wp, L.wp, s.ci, wt.data(), b, s.co, s.kh, s.kw, s.dh,
                    s.dw, y + i * s.co * ho * wo, ho * wo, wo, ho, wo, relu);
      });
}

template <typename T>
void backward_direct(const ConvShape& s, const T* x, const T* w, const T* gy, T* gx, T* gw, T* gb) {
  const ConvDirectKernels<T>& k = direct<T>();
  const DirectLayout L(s, k.vl);
  const int64_t ho = s.ho(), wo = s.wo(), taps = s.ci * s.kh * s.kw;
  // dX is the correlation of the zero-extended dY with the flipped, transposed kernel:
  // wflip[i, o, kh-1-a, kw-1-b] = w[o, i, a, b].
  std::vector<T> wflip;
  if (gx) {
    wflip.assign(round_up(s.ci, 4) * s.co * s.kh * s.kw, T(0));
    for (int64_t o = 0; o < s.co; ++o)
      for (int64_t i = 0; i < s.ci; ++i)
        for (int64_t a = 0; a < s.kh; ++a)
          for (int64_t b = 0; b < s.kw; ++b)
            wflip[((i * s.co + o) * s.kh + (s.kh - 1 - a)) * s.kw + (s.kw - 1 - b)] =
                w[((o * s.ci + i) * s.kh + a) * s.kw + b];
  }
  const int64_t co_tiles = round_up(s.co, 4);
  const int team = batch_team(s);
  std::vector<std::vector<T>> xp(team), gyp(team), gyw(team);
  PartialSums<T> gw_parts(gw ? team : 0, s.co * taps), gb_parts(gb ? team : 0, s.co);
  over_images(
      s.n, team,
      [&](int t) {
        if (gx) gyp[t].resize(s.co * L.gh * L.gwid);
        if (gw) {
          xp[t].resize(s.ci * L.hp * L.wp);
          gyw[t].assign(co_tiles * ho * L.wov, T(0));  // stays zero beyond co and wo
        }
      },
      [&](int t, int64_t i) {
        const T* gyi = gy + i * s.co * ho * wo;
        if (gx) {
          place(gyi, s.co, ho, wo, gyp[t].data(), L.gh, L.gwid, (s.kh - 1) * s.dh,
                (s.kw - 1) * s.dw);
          k.correlate(gyp[t].data() + s.ph * L.gwid + s.pw, L.gh * L.gwid, L.gwid, s.co,
                      wflip.data(), nullptr, s.ci, s.kh, s.kw, s.dh, s.dw,
                      gx + i * s.ci * s.h * s.w, s.h * s.w, s.w, s.h, s.w, false);
        }
        if (gw) {
          place(x + i * s.ci * s.h * s.w, s.ci, s.h, s.w, xp[t].data(), L.hp, L.wp, s.ph, s.pw);
          T* g = gyw[t].data();
          for (int64_t o = 0; o < s.co; ++o)
            for (int64_t r = 0; r < ho; ++r)
              std::memcpy(g + (o * ho + r) * L.wov, gyi + (o * ho + r) * wo, wo * sizeof(T));
          k.weight_grad(g, ho * L.wov, L.wov, s.co, xp[t].data(), L.hp * L.wp, L.wp, s.ci, s.kh,
                        s.kw, s.dh, s.dw, ho, wo, gw_parts.parts[t].data());
        }
        if (gb) add_channel_sums(s.co, ho * wo, gyi, gb_parts.parts[t].data());
      });
  if (gw) gw_parts.add_into(gw);
  if (gb) gb_parts.add_into(gb);
}

}  // namespace

bool conv_direct_supports(const ConvShape& s) {
  return s.groups == 1 && s.sh == 1 && s.sw == 1;
}

ConvAlgo conv_choose_algo(const ConvShape& s, ConvAlgo wanted) {
  if (wanted == ConvAlgo::direct) return conv_direct_supports(s) ? ConvAlgo::direct : ConvAlgo::gemm;
  if (wanted == ConvAlgo::gemm) return ConvAlgo::gemm;
  // Few input channels: the patch matrix is short (k = ci*kh*kw), so the GEMM spends its time
  // packing and writing C rather than multiplying, while the direct kernel streams the image.
  // Wide rows: the direct kernel's vectors (16 floats) run along output rows, so rows of at
  // least 16 keep its lanes busy; narrower planes with many channels go to the GEMM.
  if (conv_direct_supports(s) && !pointwise(s) && (s.ci <= 8 || s.wo() >= 16))
    return ConvAlgo::direct;
  return ConvAlgo::gemm;
}

const char* conv_direct_impl_name() { return direct<float>().name; }

template <typename T>
void conv2d_forward(const ConvShape& s, const T* x, const T* w, const T* b, T* y, bool relu,
                    ConvAlgo algo) {
  if (s.n == 0 || s.co == 0) return;
  if (conv_choose_algo(s, algo) == ConvAlgo::direct)
    forward_direct(s, x, w, b, y, relu);
  else
    forward_gemm(s, x, w, b, y, relu);
}

template <typename T>
void conv2d_backward(const ConvShape& s, const T* x, const T* w, const T* gy, T* gx, T* gw, T* gb,
                     ConvAlgo algo) {
  if (gw) std::fill(gw, gw + s.co * (s.ci / s.groups) * s.kh * s.kw, T(0));
  if (gb) std::fill(gb, gb + s.co, T(0));
  if (s.n == 0) return;
  if (conv_choose_algo(s, algo) == ConvAlgo::direct)
    backward_direct(s, x, w, gy, gx, gw, gb);
  else
    backward_gemm(s, x, w, gy, gx, gw, gb);
}

#define MG_INSTANTIATE(T)                                                                     \
  template void conv2d_forward<T>(const ConvShape&, const T*, const T*, const T*, T*, bool,   \
                                  ConvAlgo);                                                  \
  template void conv2d_backward<T>(const ConvShape&, const T*, const T*, const T*, T*, T*, T*, \
                                   ConvAlgo);
MG_INSTANTIATE(float)
MG_INSTANTIATE(double)
#undef MG_INSTANTIATE

}  // namespace mg
