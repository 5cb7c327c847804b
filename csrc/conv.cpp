// Convolution driver: picks the algorithm per shape, prepares buffers, splits the batch over
// threads. The arithmetic lives in mg::gemm (gemm path) and the direct kernels (conv.h).
//
// Threads take whole images (the GEMM path: whole chunks of images): with a batch of at least
// two images every thread runs its own single-threaded GEMMs on its own patch buffer (no
// synchronisation inside an image); with one image the GEMM threads itself. Weight and bias
// gradients are summed per thread and then added up in thread order.
#include "conv.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <exception>
#include <type_traits>
#include <vector>

#include "dispatch.h"
#include "gemm/bf16.h"
#include "gemm/gemm.h"
#include "conv_bf16.h"
#include "conv_parts.h"
#include "parallel.h"
#include "winograd.h"

namespace mg {
namespace {

using namespace conv_parts;

template <typename T>
const ConvDirectKernels<T>& direct() {
  return isa_table<ConvDirectKernels<T>>();
}

// A 1x1 convolution with stride 1 and no padding: the image (ci x h*w) is the patch matrix.
bool pointwise(const ConvShape& s) {
  return s.kh == 1 && s.kw == 1 && s.sh == 1 && s.sw == 1 && s.ph == 0 && s.pw == 0;
}

// The GEMM path's products: float32/float64 operands on mg::gemm, bfloat16 ones (autocast) on
// gemm_bf16, which accumulates and writes float32.
template <typename T>
void product(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const T* a, int64_t lda,
             const T* b, int64_t ldb, T beta, T* c, int64_t ldc) {
  gemm<T>(ta, tb, m, n, k, T(1), a, lda, b, ldb, beta, c, ldc);
}
inline void product(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const bf16* a,
                    int64_t lda, const bf16* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  gemm_bf16<bf16, bf16>(ta, tb, m, n, k, 1.0f, a, lda, b, ldb, beta, c, ldc);
}

// The bias gradient's per-channel sums of dY, in T whatever dY is stored in.
template <typename T>
void add_channel_sums_of(int64_t channels, int64_t plane, const T* gy, T* gb) {
  add_channel_sums(channels, plane, gy, gb);
}
inline void add_channel_sums_of(int64_t channels, int64_t plane, const bf16* gy, float* gb) {
  for (int64_t c = 0; c < channels; ++c) {
    float sum = 0.0f;
    for (int64_t p = 0; p < plane; ++p) sum += bf16_to_float(gy[c * plane + p]);
    gb[c] += sum;
  }
}

// ------------------------------------------------------------------------ im2col / col2im
// dst (channels x rows x cols) = the window of src (channels x rows_src x cols_src) at (r0, c0).
template <typename T>
void extract(const T* src, int64_t channels, int64_t rows_src, int64_t cols_src, int64_t r0,
             int64_t c0, T* dst, int64_t rows, int64_t cols) {
  for (int64_t c = 0; c < channels; ++c)
    for (int64_t r = 0; r < rows; ++r)
      std::memcpy(dst + (c * rows + r) * cols, src + (c * rows_src + r0 + r) * cols_src + c0,
                  cols * sizeof(T));
}

// The image with its zero padding made explicit (ci x hp x wp), so the patch gather below
// is branch-free: every patch entry reads inside this buffer.
// Without padding the image itself is that buffer.
struct PaddedImage {
  int64_t hp, wp;
  bool none;  // no padding
  explicit PaddedImage(const ConvShape& s)
      : hp(s.h + 2 * s.ph), wp(s.w + 2 * s.pw), none(s.ph == 0 && s.pw == 0) {}
  int64_t size(const ConvShape& s) const { return s.ci * hp * wp; }
  // The padded image of x: x itself, or x placed into buf.
  template <typename T>
  const T* of(const ConvShape& s, const T* x, T* buf) const {
    if (none) return x;
    place(x, s.ci, s.h, s.w, buf, hp, wp, s.ph, s.pw);
    return buf;
  }
};

// col[(c*kh + a)*kw + b, oh*wo + ow] = xp[c, oh*sh + a*dh, ow*sw + b*dw] from the padded image
// xp; rows of col are ld apart (several images' patch matrices sit side by side in a buffer).
template <typename T>
void im2col(const ConvShape& s, const PaddedImage& P, const T* xp, T* col, int64_t ld) {
  const int64_t ho = s.ho(), wo = s.wo(), sw = s.sw;
  for (int64_t c = 0; c < s.ci; ++c)
    for (int64_t a = 0; a < s.kh; ++a)
      for (int64_t b = 0; b < s.kw; ++b) {
        T* dst = col + ((c * s.kh + a) * s.kw + b) * ld;
        const T* src = xp + (c * P.hp + a * s.dh) * P.wp + b * s.dw;
        for (int64_t oh = 0; oh < ho; ++oh, dst += wo, src += s.sh * P.wp) {
          if (sw == 1)
            std::memcpy(dst, src, wo * sizeof(T));
          else
            for (int64_t ow = 0; ow < wo; ++ow) dst[ow] = src[ow * sw];
        }
      }
}

// The adjoint of im2col: gp[c, ih, iw] += col[...] for every patch entry that read (ih, iw) of
// the padded image (the caller zeroes gp first and keeps its interior).
template <typename T>
void col2im_add(const ConvShape& s, const PaddedImage& P, const T* col, int64_t ld, T* gp) {
  const int64_t ho = s.ho(), wo = s.wo(), sw = s.sw;
  for (int64_t c = 0; c < s.ci; ++c)
    for (int64_t a = 0; a < s.kh; ++a)
      for (int64_t b = 0; b < s.kw; ++b) {
        const T* src = col + ((c * s.kh + a) * s.kw + b) * ld;
        T* dst = gp + (c * P.hp + a * s.dh) * P.wp + b * s.dw;
        for (int64_t oh = 0; oh < ho; ++oh, src += wo, dst += s.sh * P.wp) {
          if (sw == 1)
            for (int64_t ow = 0; ow < wo; ++ow) dst[ow] += src[ow];
          else
            for (int64_t ow = 0; ow < wo; ++ow) dst[ow * sw] += src[ow];
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

// ------------------------------------------------------------------------------ gemm path
// Images go through the GEMM in chunks: the patch matrices of `images` images sit side by side
// (k x images*p), so one product per chunk has N = images * p columns. Per image the products
// are small (block3 of ResNet-8: 64 x 64 x 576) and the GEMM spends its time packing the
// weights and on call overhead; side by side the weights are packed once per chunk and the
// micro-kernel runs on full panels. The weight gradient sums over the chunk's images inside
// the same product (its depth is images * p).
struct GemmChunks {
  int64_t images;  // per chunk
  int64_t count;   // chunks
  int64_t ld;      // row stride of the chunk buffers (k x images*p, co x images*p)
};

// Aim for about this many columns per product: enough for the GEMM's full column panels,
// while a chunk's patch matrix (k x cols) stays near the L2 size for k in the hundreds.
constexpr int64_t kChunkColumns = 512;

GemmChunks gemm_chunks(const ConvShape& s, int team, bool in_place) {
  const int64_t p = s.ho() * s.wo();
  // Pointwise convolutions read the image in place when a chunk is one image.
  int64_t images = in_place ? 1 : std::max<int64_t>(1, kChunkColumns / p);
  images = std::min(images, (s.n + team - 1) / team);  // every thread gets a chunk
  images = std::max<int64_t>(images, 1);
  const int64_t cols = images * p;
  // Power-of-two row strides put the rows the GEMM packs together in the same L1 sets.
  const int64_t ld = images == 1 ? cols : cols + (cols % 256 == 0 ? 16 : 0);
  return {images, (s.n + images - 1) / images, ld};
}

// y[i, c, :] = max(buf[c, j*p : (j+1)*p] + b[c], 0 if relu) for the j-th image i of a chunk.
template <typename T>
void unpack_output(int64_t channels, int64_t p, const T* buf, int64_t ld, const T* b, bool relu,
                   T* y) {
  for (int64_t c = 0; c < channels; ++c) {
    const T* src = buf + c * ld;
    T* dst = y + c * p;
    const T bc = b ? b[c] : T(0);
    if (relu)
      for (int64_t q = 0; q < p; ++q) dst[q] = std::max(src[q] + bc, T(0));
    else
      for (int64_t q = 0; q < p; ++q) dst[q] = src[q] + bc;
  }
}

// In: how x and w are stored (T, or bfloat16 under autocast); T: the output and bias.
template <typename In, typename T>
void forward_gemm(const ConvShape& s, const In* x, const In* w, const T* b, T* y, bool relu) {
  const int64_t p = s.ho() * s.wo(), cig = s.ci / s.groups, cog = s.co / s.groups;
  const int64_t k = cig * s.kh * s.kw, plane = s.ci * s.h * s.w;
  const int team = batch_team(s);
  const GemmChunks ch = gemm_chunks(s, team, pointwise(s));
  const PaddedImage P(s);
  std::vector<std::vector<In>> col(team), xp(team);
  std::vector<AlignedVector<T>> out(team);
  over_images(
      ch.count, team,
      [&](int t) {
        if (!pointwise(s) || ch.images > 1) {
          col[t].resize(s.ci * s.kh * s.kw * ch.ld);
          if (!P.none) xp[t].resize(P.size(s));
        }
        if (ch.images > 1) out[t].resize(s.co * ch.ld);
      },
      [&](int t, int64_t c) {
        const int64_t first = c * ch.images, images = std::min(ch.images, s.n - first);
        const In* cols = x + first * plane;  // a pointwise chunk of one image: the image itself
        int64_t ld = p;
        if (!col[t].empty()) {
          for (int64_t j = 0; j < images; ++j)
            im2col(s, P, P.of(s, x + (first + j) * plane, xp[t].data()), col[t].data() + j * p,
                   ch.ld);
          cols = col[t].data();
          ld = ch.ld;
        }
        T* yc = ch.images > 1 ? out[t].data() : y + first * s.co * p;
        const int64_t ldy = ch.images > 1 ? ch.ld : p;
        for (int64_t g = 0; g < s.groups; ++g)
          product(false, false, cog, images * p, k, w + g * cog * k, k, cols + g * k * ld, ld,
                  T(0), yc + g * cog * ldy, ldy);
        if (ch.images > 1)
          for (int64_t j = 0; j < images; ++j)
            unpack_output(s.co, p, yc + j * p, ldy, b, relu, y + (first + j) * s.co * p);
        else
          add_bias_relu(s.co, p, b, relu, yc);
      });
}

template <typename In, typename T>
void backward_gemm(const ConvShape& s, const In* x, const In* w, const In* gy, T* gx, T* gw,
                   T* gb) {
  const int64_t p = s.ho() * s.wo(), cig = s.ci / s.groups, cog = s.co / s.groups;
  const int64_t k = cig * s.kh * s.kw, plane = s.h * s.w;
  const bool in_place = pointwise(s), summed = gw || gb;
  int team = batch_team(s);
  // With gradient sums the chunks depend on the shape only (ChunkSums). Too few of them to
  // go round the team run one after another, each product threaded inside the GEMM.
  const GemmChunks ch = gemm_chunks(s, summed ? 1 : team, in_place);
  if (summed && 2 * ch.count < team) team = 1;
  const bool use_col = !in_place || ch.images > 1;
  // The weight gradient is summed transposed, (k x cog) per group: dW^T = cols dY^T reads
  // both GEMM operands along their rows (dW = dY cols^T would pack cols^T from rows p apart,
  // and power-of-two planes alias in the L1 sets).
  ChunkSums<T> sums(team, gw ? s.co * k : 0, gb ? s.co : 0);
  AlignedVector<T> gw_t(gw ? s.co * k : 0, T(0));
  const PaddedImage P(s);
  std::vector<std::vector<In>> col(team), gyc(team), gy_t(team), xp(team);
  // dX's patch matrix and padded image are T: with In == T they reuse the buffers above.
  constexpr bool kSameType = std::is_same_v<In, T>;
  std::vector<AlignedVector<T>> dcol_t(kSameType ? 0 : team), gp_t(kSameType ? 0 : team);
  auto setup = [&](int t) {
    if (use_col) {
      col[t].resize(s.ci * s.kh * s.kw * ch.ld);
      if (!P.none) xp[t].resize(P.size(s));
      if constexpr (!kSameType) {
        if (gx) dcol_t[t].resize(s.ci * s.kh * s.kw * ch.ld), gp_t[t].resize(P.size(s));
      }
    }
    if (ch.images > 1) gyc[t].resize(s.co * ch.ld);
    if (gw) gy_t[t].resize(cog * ch.images * p);
  };
  auto chunk = [&](int t, int64_t c) {
    const int64_t first = c * ch.images, images = std::min(ch.images, s.n - first);
    const int64_t cols_n = images * p;
    // dY of the chunk as one (co x images*p) matrix, rows ldg apart.
    const In* g = gy + first * s.co * p;
    int64_t ldg = p;
    if (ch.images > 1) {
      for (int64_t j = 0; j < images; ++j)
        for (int64_t o = 0; o < s.co; ++o)
          std::memcpy(gyc[t].data() + o * ch.ld + j * p, gy + ((first + j) * s.co + o) * p,
                      p * sizeof(In));
      g = gyc[t].data();
      ldg = ch.ld;
    }
    if (gw) {  // dW^T += cols dY^T, per group
      const In* cols = x + first * s.ci * plane;
      int64_t ld = p;
      if (use_col) {
        for (int64_t j = 0; j < images; ++j)
          im2col(s, P, P.of(s, x + (first + j) * s.ci * plane, xp[t].data()),
                 col[t].data() + j * p, ch.ld);
        cols = col[t].data();
        ld = ch.ld;
      }
      In* gyt = gy_t[t].data();
      T* gwt = sums.gw[t].data();
      for (int64_t gr = 0; gr < s.groups; ++gr) {
        const In* gyg = g + gr * cog * ldg;
        for (int64_t o = 0; o < cog; ++o)
          for (int64_t q = 0; q < cols_n; ++q) gyt[q * cog + o] = gyg[o * ldg + q];
        product(false, false, k, cog, cols_n, cols + gr * k * ld, ld, gyt, cog, T(1),
                gwt + gr * k * cog, cog);
      }
    }
    if (gx) {  // dcol = W^T dY, then scattered back onto the images
      T* gxc = gx + first * s.ci * plane;
      T* dcol = !use_col ? gxc : kSameType ? reinterpret_cast<T*>(col[t].data()) : dcol_t[t].data();
      const int64_t ld = use_col ? ch.ld : p;
      for (int64_t gr = 0; gr < s.groups; ++gr)
        product(true, false, k, cols_n, cog, w + gr * cog * k, k, g + gr * cog * ldg, ldg, T(0),
                dcol + gr * k * ld, ld);
      if (use_col)  // the padded buffer collects dX, its interior is the image's
        for (int64_t j = 0; j < images; ++j) {
          T* gxi = gxc + j * s.ci * plane;
          T* gp = P.none ? gxi : kSameType ? reinterpret_cast<T*>(xp[t].data()) : gp_t[t].data();
          std::fill(gp, gp + P.size(s), T(0));
          col2im_add(s, P, dcol + j * p, ld, gp);
          if (!P.none) extract(gp, s.ci, P.hp, P.wp, s.ph, s.pw, gxi, s.h, s.w);
        }
    }
    if (gb)
      for (int64_t j = 0; j < images; ++j)
        add_channel_sums_of(s.co, p, gy + (first + j) * s.co * p, sums.gb[t].data());
  };
  if (!summed) {
    over_images(ch.count, team, setup, chunk);
    return;
  }
  over_chunks_summed(ch.count, team, setup, chunk, sums, gw_t.data(), gb);
  if (gw)
    for (int64_t g = 0; g < s.groups; ++g)
      for (int64_t c = 0; c < cog; ++c)
        for (int64_t j = 0; j < k; ++j) gw[(g * cog + c) * k + j] = gw_t[(g * k + j) * cog + c];
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

template <typename T>
void forward_direct(const ConvShape& s, const T* x, const T* w, const T* b, T* y, bool relu) {
  const ConvDirectKernels<T>& k = direct<T>();
  const DirectLayout L(s, k.vl);
  const int64_t ho = s.ho(), wo = s.wo(), taps = s.ci * s.kh * s.kw;
  AlignedVector<T> wt(round_up(s.co, 4) * taps, T(0));  // output channels padded to the tile
  std::copy(w, w + s.co * taps, wt.begin());
  const int team = batch_team(s);
  std::vector<AlignedVector<T>> xp(team);
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
  AlignedVector<T> wflip;
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
  // The weight gradient sums over a chunk of images per kernel call (see weight_grad_tile):
  // about kProducts products per accumulator before its lanes are added up.
  const int64_t kProducts = 64, vectors = ho * (L.wov / L.vl);
  // The chunks depend on the shape only (ChunkSums).
  const int64_t images = std::max<int64_t>(1, std::min((kProducts + vectors - 1) / vectors, s.n));
  const int64_t chunks = (s.n + images - 1) / images;
  const int64_t x_is = s.ci * L.hp * L.wp, g_is = co_tiles * ho * L.wov;
  std::vector<AlignedVector<T>> xp(team), gyp(team), gyw(team);
  ChunkSums<T> sums(team, gw ? s.co * taps : 0, gb ? s.co : 0);
  over_chunks_summed(
      chunks, team,
      [&](int t) {
        if (gx) gyp[t].resize(s.co * L.gh * L.gwid);
        if (gw) {
          xp[t].resize(images * x_is);
          gyw[t].assign(images * g_is, T(0));  // stays zero beyond co and wo
        }
      },
      [&](int t, int64_t c) {
        const int64_t first = c * images, count = std::min(images, s.n - first);
        for (int64_t i = first; i < first + count; ++i) {
          const T* gyi = gy + i * s.co * ho * wo;
          if (gx) {
            place(gyi, s.co, ho, wo, gyp[t].data(), L.gh, L.gwid, (s.kh - 1) * s.dh,
                  (s.kw - 1) * s.dw);
            k.correlate(gyp[t].data() + s.ph * L.gwid + s.pw, L.gh * L.gwid, L.gwid, s.co,
                        wflip.data(), nullptr, s.ci, s.kh, s.kw, s.dh, s.dw,
                        gx + i * s.ci * s.h * s.w, s.h * s.w, s.w, s.h, s.w, false);
          }
          if (gw) {
            place(x + i * s.ci * s.h * s.w, s.ci, s.h, s.w, xp[t].data() + (i - first) * x_is,
                  L.hp, L.wp, s.ph, s.pw);
            T* g = gyw[t].data() + (i - first) * g_is;
            for (int64_t o = 0; o < s.co; ++o)
              for (int64_t r = 0; r < ho; ++r)
                std::memcpy(g + (o * ho + r) * L.wov, gyi + (o * ho + r) * wo, wo * sizeof(T));
          }
          if (gb) add_channel_sums(s.co, ho * wo, gyi, sums.gb[t].data());
        }
        if (gw)
          k.weight_grad(gyw[t].data(), g_is, ho * L.wov, L.wov, s.co, xp[t].data(), x_is,
                        L.hp * L.wp, L.wp, s.ci, s.kh, s.kw, s.dh, s.dw, count, ho, wo,
                        sums.gw[t].data());
      },
      sums, gw, gb);
}

// --------------------------------------------------------------------------- chanvec path
// Offsets the channel-vectorised kernels read at (conv_direct_kernels.inc): pixel p of an
// (rows x cols) output at stride (sh, sw) starts at (p / cols)*sh*row_stride + (p % cols)*sw
// of the padded input; tap (a, b) adds a*dh*row_stride + b*dw. Tables are padded with zeros
// to whole tiles (24 entries: a multiple of every tile size the kernels use) so the kernels
// never test for the end.
constexpr int64_t kChanvecTile = 24;

std::vector<int64_t> pixel_offsets(int64_t rows, int64_t cols, int64_t sh, int64_t sw,
                                   int64_t row_stride) {
  std::vector<int64_t> off(round_up(rows * cols, kChanvecTile), 0);
  for (int64_t p = 0; p < rows * cols; ++p) off[p] = (p / cols) * sh * row_stride + (p % cols) * sw;
  return off;
}

std::vector<int64_t> tap_offsets(const ConvShape& s, int64_t row_stride) {
  std::vector<int64_t> off(s.kh * s.kw);
  for (int64_t a = 0; a < s.kh; ++a)
    for (int64_t b = 0; b < s.kw; ++b) off[a * s.kw + b] = a * s.dh * row_stride + b * s.dw;
  return off;
}

template <typename T>
void forward_chanvec(const ConvShape& s, const T* x, const T* w, const T* b, T* y, bool relu) {
  const ConvDirectKernels<T>& k = direct<T>();
  const PaddedImage P(s);
  const int64_t p = s.ho() * s.wo(), taps = s.kh * s.kw, co_pad = round_up(s.co, k.vl);
  AlignedVector<T> wt(s.ci * taps * co_pad, T(0));  // [input channel][tap][output channel]
  for (int64_t o = 0; o < s.co; ++o)
    for (int64_t u = 0; u < s.ci * taps; ++u) wt[u * co_pad + o] = w[o * s.ci * taps + u];
  const std::vector<int64_t> pix = pixel_offsets(s.ho(), s.wo(), s.sh, s.sw, P.wp);
  const std::vector<int64_t> tap = tap_offsets(s, P.wp);
  const int team = batch_team(s);
  std::vector<AlignedVector<T>> xp(team);
  over_images(
      s.n, team, [&](int t) { if (!P.none) xp[t].resize(P.size(s)); },
      [&](int t, int64_t i) {
        const T* xi = P.of(s, x + i * s.ci * s.h * s.w, xp[t].data());
        k.chanvec_correlate(xi, P.hp * P.wp, pix.data(), p, s.ci, tap.data(), taps, wt.data(),
                            co_pad, b, s.co, y + i * s.co * p, p, relu);
      });
}

// dX[i, y, x] = sum over (o, a, b) with y = oy*sh - ph + a*dh, x = ox*sw - pw + b*dw of
// w[o, i, a, b] dY[o, oy, ox]. The input pixels split into sh x sw phases (y mod sh, x mod sw);
// within a phase the taps that reach it are fixed and dY is read at a fixed offset per tap,
// (y + ph - a*dh)/sh, so each phase is a correlation of the zero-extended dY with those
// taps: the channel-vectorised kernel with per-phase tap offsets. Stride 1 is one phase.
struct InputPhase {
  int64_t py, px, rows, cols;         // the phase's pixels: (py + sh*Y, px + sw*X)
  std::vector<int64_t> taps, dy, dx;  // contributing taps a*kw + b and their dY offsets
};

// dX[c, py + sh r, px + sw q] = phase (py, px)'s [c, r, q], each phase's values held
// [channel][row][column] at buffer + phase_at[f]; phases are numbered py-major.
template <typename T>
void interleave_phases(const ConvShape& s, const std::vector<InputPhase>& phases, const T* buffer,
                       const std::vector<int64_t>& phase_at, T* gx) {
  const int64_t phase_cols = std::min(s.sw, s.w);
  for (int64_t c = 0; c < s.ci; ++c)
    for (int64_t y = 0; y < s.h; ++y) {
      T* row = gx + (c * s.h + y) * s.w;
      const size_t first = (y % s.sh) * phase_cols;  // phase (y % sh, 0)
      const int64_t r = y / s.sh;
      auto phase_row = [&](size_t f) {
        return buffer + phase_at[f] + (c * phases[f].rows + r) * phases[f].cols;
      };
      if (s.sw == 2 && phase_cols == 2) {  // pairs of columns: a loop the compiler vectorises
        const T* even = phase_row(first);
        const T* odd = phase_row(first + 1);
        const int64_t pairs = s.w / 2;
        for (int64_t q = 0; q < pairs; ++q) {
          row[2 * q] = even[q];
          row[2 * q + 1] = odd[q];
        }
        if (s.w % 2) row[s.w - 1] = even[pairs];
        continue;
      }
      for (int64_t px = 0; px < phase_cols; ++px) {
        const T* from = phase_row(first + px);
        for (int64_t q = 0; q < phases[first + px].cols; ++q) row[px + q * s.sw] = from[q];
      }
    }
}

template <typename T>
void backward_input_chanvec(const ConvShape& s, const T* w, const T* gy, T* gx, int team) {
  const ConvDirectKernels<T>& k = direct<T>();
  const int64_t ho = s.ho(), wo = s.wo(), taps = s.kh * s.kw, ci_pad = round_up(s.ci, k.vl);
  std::vector<InputPhase> phases;
  int64_t top = 0, left = 0, bottom = ho, right = wo;  // dY rows/cols read, before extension
  for (int64_t py = 0; py < std::min(s.sh, s.h); ++py)
    for (int64_t px = 0; px < std::min(s.sw, s.w); ++px) {
      InputPhase ph{py, px, (s.h - py + s.sh - 1) / s.sh, (s.w - px + s.sw - 1) / s.sw, {}, {}, {}};
      for (int64_t a = 0; a < s.kh; ++a)
        for (int64_t b = 0; b < s.kw; ++b) {
          const int64_t ry = py + s.ph - a * s.dh, rx = px + s.pw - b * s.dw;
          if (((ry % s.sh) + s.sh) % s.sh || ((rx % s.sw) + s.sw) % s.sw) continue;
          // floor division: ry, rx are exact multiples here
          const int64_t dy = ry >= 0 ? ry / s.sh : -((-ry) / s.sh);
          const int64_t dx = rx >= 0 ? rx / s.sw : -((-rx) / s.sw);
          ph.taps.push_back(a * s.kw + b);
          ph.dy.push_back(dy);
          ph.dx.push_back(dx);
          top = std::min(top, dy);
          left = std::min(left, dx);
          bottom = std::max(bottom, dy + ph.rows);
          right = std::max(right, dx + ph.cols);
        }
      phases.push_back(std::move(ph));
    }
  // dY zero-extended so every phase's reads land inside: rows [top, bottom), cols [left, right).
  const int64_t gh = bottom - top, gwid = right - left;
  std::vector<AlignedVector<T>> wph(phases.size());  // [o][phase tap][i]
  std::vector<std::vector<int64_t>> pix(phases.size()), tap(phases.size());
  for (size_t f = 0; f < phases.size(); ++f) {
    const InputPhase& ph = phases[f];
    const int64_t nt = ph.taps.size();
    wph[f].assign(s.co * nt * ci_pad, T(0));
    for (int64_t o = 0; o < s.co; ++o)
      for (int64_t j = 0; j < nt; ++j)
        for (int64_t i = 0; i < s.ci; ++i)
          wph[f][(o * nt + j) * ci_pad + i] = w[(o * s.ci + i) * taps + ph.taps[j]];
    pix[f] = pixel_offsets(ph.rows, ph.cols, 1, 1, gwid);
    for (int64_t j = 0; j < nt; ++j) tap[f].push_back((ph.dy[j] - top) * gwid + ph.dx[j] - left);
  }
  // Each phase's pixels come out contiguous (the kernel's transposed stores) into a buffer
  // of one image, then are interleaved into dX row by row; writing them straight into dX
  // would be lane by lane (Zen 3, ResNet-8's stride-2 layers: a third of dX). One phase
  // (stride 1) is dX itself.
  const bool one_phase = phases.size() == 1;
  std::vector<int64_t> phase_at(phases.size() + 1, 0);  // where phase f starts in the buffer
  for (size_t f = 0; f < phases.size(); ++f)
    phase_at[f + 1] = phase_at[f] + s.ci * phases[f].rows * phases[f].cols;
  std::vector<AlignedVector<T>> gyp(team), phase_out(team);
  over_images(
      s.n, team,
      [&](int t) {
        gyp[t].resize(s.co * gh * gwid);
        if (!one_phase) phase_out[t].resize(phase_at.back());
      },
      [&](int t, int64_t n) {
        place(gy + n * s.co * ho * wo, s.co, ho, wo, gyp[t].data(), gh, gwid, -top, -left);
        T* gxn = gx + n * s.ci * s.h * s.w;
        for (size_t f = 0; f < phases.size(); ++f) {
          const InputPhase& ph = phases[f];
          const int64_t np = ph.rows * ph.cols;
          T* out = one_phase ? gxn : phase_out[t].data() + phase_at[f];
          if (ph.taps.empty()) {  // no tap reaches these pixels
            std::fill(out, out + s.ci * np, T(0));
            continue;
          }
          k.chanvec_correlate(gyp[t].data(), gh * gwid, pix[f].data(), np, s.co, tap[f].data(),
                              ph.taps.size(), wph[f].data(), ci_pad, nullptr, s.ci, out, np,
                              false);
        }
        if (!one_phase) interleave_phases(s, phases, phase_out[t].data(), phase_at, gxn);
      });
}

template <typename T>
void backward_chanvec(const ConvShape& s, const T* x, const T* w, const T* gy, T* gx, T* gw,
                      T* gb) {
  const ConvDirectKernels<T>& k = direct<T>();
  const int64_t ho = s.ho(), wo = s.wo(), p = ho * wo, taps = s.kh * s.kw;
  const int team = batch_team(s);
  if (gx) backward_input_chanvec(s, w, gy, gx, team);
  if (!gw && !gb) return;
  // dW^T (ci*taps x co_pad) summed per thread over chunks of images; a chunk's dY^T (p x
  // co_pad per image) is read once per tile of taps, so it is kept to about the L1 size.
  const PaddedImage P(s);
  const int64_t co_pad = round_up(s.co, k.vl), cols = s.ci * taps;
  const int64_t rows = round_up(cols, kChanvecTile);
  const int64_t x_is = P.none ? s.ci * s.h * s.w : P.size(s), g_is = p * co_pad;
  const int64_t kChunkBytes = 32 * 1024;
  const int64_t images = std::max<int64_t>(  // the shape only (ChunkSums)
      1, std::min<int64_t>(kChunkBytes / (g_is * static_cast<int64_t>(sizeof(T))), s.n));
  const int64_t chunks = (s.n + images - 1) / images;
  const std::vector<int64_t> pix = pixel_offsets(ho, wo, s.sh, s.sw, P.wp);
  std::vector<int64_t> col(rows, 0);
  for (int64_t i = 0; i < s.ci; ++i)
    for (int64_t a = 0; a < s.kh; ++a)
      for (int64_t b = 0; b < s.kw; ++b)
        col[(i * s.kh + a) * s.kw + b] = i * P.hp * P.wp + a * s.dh * P.wp + b * s.dw;
  ChunkSums<T> sums(team, gw ? rows * co_pad : 0, gb ? s.co : 0);
  AlignedVector<T> gw_t(gw ? rows * co_pad : 0, T(0));
  std::vector<AlignedVector<T>> xp(team), gyt(team);
  over_chunks_summed(
      chunks, team,
      [&](int t) {
        if (gw) {
          if (!P.none) xp[t].resize(images * x_is);
          gyt[t].assign(images * g_is, T(0));  // stays zero beyond co
        }
      },
      [&](int t, int64_t c) {
        const int64_t first = c * images, count = std::min(images, s.n - first);
        for (int64_t m = 0; m < count; ++m) {
          const T* gym = gy + (first + m) * s.co * p;
          if (gb) add_channel_sums(s.co, p, gym, sums.gb[t].data());
          if (!gw) continue;
          if (!P.none)
            place(x + (first + m) * s.ci * s.h * s.w, s.ci, s.h, s.w, xp[t].data() + m * x_is,
                  P.hp, P.wp, s.ph, s.pw);
          T* g = gyt[t].data() + m * g_is;
          k.planes_to_rows(gym, s.co, p, g, co_pad);
        }
        if (gw) {
          const T* in = P.none ? x + first * x_is : xp[t].data();
          k.chanvec_weight_grad(gyt[t].data(), g_is, co_pad, in, x_is, pix.data(), p, col.data(),
                                cols, count, sums.gw[t].data());
        }
      },
      sums, gw_t.data(), gb);
  if (gw)
    for (int64_t o = 0; o < s.co; ++o)
      for (int64_t u = 0; u < cols; ++u) gw[o * cols + u] = gw_t[u * co_pad + o];
}

}  // namespace

bool conv_direct_supports(const ConvShape& s) {
  return s.groups == 1 && s.sh == 1 && s.sw == 1;
}

bool conv_chanvec_supports(const ConvShape& s) { return s.groups == 1; }

namespace {
// ---- Winograd's cost model: when it runs, and on which tile ----
// Estimated time of one pass, in ns (only ratios matter):
//   Winograd F(m x m, 3x3) on T = n ceil(ho/m) ceil(wo/m) tiles: alpha^2 GEMMs of
//     2 ci co T flops at gemm_gflops, slower when their depth (ci forward, co for dX) is under
//     16 channels, plus transform_ns per transformed value (alpha^2 (ci + co) per tile: the
//     input and output transforms forward and for dX, input and dY's for dW); dW's products
//     run at gemm_gflops on the dot-product kernel (chunks of 128+ tiles) and at
//     packed_gflops on the packed GEMM (smaller chunks);
//   the other paths: the direct sum's 18 ci co flops per output pixel at other_gflops (what
//     direct/chanvec reach on these shapes).
// Fitted to ResNet-8's 3x3 layers (16-64 channels, batch 32 and 128) at 2 threads on a
// 2-core Xeon (csrc/README.md, "Winograd"); the generic build uses the AVX2 figures.
struct WinogradCosts {
  double gemm_gflops, transform_ns, other_gflops, packed_gflops;
};
constexpr WinogradCosts kWinogradCosts[3][2] = {
    // {forward and grad_input}, {grad_weight}
    {{116, 0.163, 140, 116}, {66, 0.127, 142, 46}},  // generic
    {{116, 0.163, 140, 116}, {66, 0.127, 142, 46}},  // avx2
    {{157, 0.132, 230, 157}, {73, 0.066, 215, 49}},  // avx512
};

double winograd_cost_ns(const ConvShape& s, int m, ConvPass pass) {
  const WinogradCosts& c =
      kWinogradCosts[static_cast<int>(active_isa())][pass == ConvPass::grad_weight ? 1 : 0];
  const double alpha2 = (m + 2.0) * (m + 2.0);
  const double tiles = double(s.n) * ((s.ho() + m - 1) / m) * ((s.wo() + m - 1) / m);
  const double depth = pass == ConvPass::forward     ? s.ci
                       : pass == ConvPass::grad_input ? s.co
                                                      : 16.0;
  const double gflops = pass == ConvPass::grad_weight && !winograd_weight_grad_on_dot(s, m)
                            ? c.packed_gflops
                            : c.gemm_gflops;
  const double gemm = 2.0 * alpha2 * s.ci * s.co * tiles / (gflops * std::min(1.0, depth / 16));
  return gemm + alpha2 * (s.ci + s.co) * tiles * c.transform_ns;
}

double other_cost_ns(const ConvShape& s, ConvPass pass) {
  const WinogradCosts& c =
      kWinogradCosts[static_cast<int>(active_isa())][pass == ConvPass::grad_weight ? 1 : 0];
  return conv_flop(s) / c.other_gflops;
}

// The cheaper tile by the model.
ConvAlgo winograd_tile(const ConvShape& s, ConvPass pass) {
  return winograd_cost_ns(s, 2, pass) < winograd_cost_ns(s, 4, pass) ? ConvAlgo::winograd_f2
                                                                       : ConvAlgo::winograd_f4;
}

bool winograd_pays(const ConvShape& s, ConvPass pass) {
  const int m = winograd_tile(s, pass) == ConvAlgo::winograd_f2 ? 2 : 4;
  return winograd_cost_ns(s, m, pass) < other_cost_ns(s, pass);
}
}  // namespace

ConvAlgo conv_choose_algo(const ConvShape& s, ConvAlgo wanted, ConvPass pass) {
  const bool winograd_ok = conv_winograd_supports(s);
  if (wanted == ConvAlgo::winograd_f2 || wanted == ConvAlgo::winograd_f4)
    return winograd_ok ? wanted : ConvAlgo::gemm;
  if (wanted == ConvAlgo::winograd)
    return winograd_ok ? winograd_tile(s, pass) : ConvAlgo::gemm;
  if (wanted == ConvAlgo::direct) return conv_direct_supports(s) ? ConvAlgo::direct : ConvAlgo::gemm;
  if (wanted == ConvAlgo::chanvec)
    return conv_chanvec_supports(s) ? ConvAlgo::chanvec : ConvAlgo::gemm;
  if (wanted == ConvAlgo::gemm) return ConvAlgo::gemm;
  // A 1x1 convolution with stride 1 is a plain GEMM on the image itself.
  if (s.groups != 1 || pointwise(s)) return ConvAlgo::gemm;
  if (winograd_ok && winograd_pays(s, pass)) return winograd_tile(s, pass);
  // The direct kernel runs its vectors (16 floats) along rows: it wins on long rows, and with
  // few input channels (LeNet's conv1, ResNet's stem), where the channel-vectorised kernel's
  // sum over input channels and taps is too short to hide its output transposition.
  // The channel-vectorised kernel needs at least a full vector of the channels it produces
  // (output channels for forward and dW, input channels for dX). Measured on Zen 5 at one
  // thread it runs the 16x16 and 8x8 ResNet layers at 200-240 GFLOP/s in all three passes,
  // where the direct kernel's rows are half empty and im2col + GEMM pays for the patch matrix.
  const bool direct_ok = conv_direct_supports(s);
  const int64_t vector_channels = pass == ConvPass::grad_input ? s.ci : s.co;
  // With 8-float vectors (AVX2) the channel-vectorised kernel, its tiles written through
  // in-register transposes, beats the direct kernel on long rows and few input channels too,
  // wherever it has 16 channels to produce. Zen 3, 2 threads, forward (dW) in ms: ResNet's
  // stem b128 3 -> 16 at 32x32 1.7 vs 3.1 (1.3 vs 1.5), 16 -> 32 at 32x32 b32 3.1 vs 5.1
  // (2.7 vs 3.3), 1 -> 16 at 28x28 b64 0.39 vs 0.85 (0.28 vs 0.30); dX of a 5x5 16 -> 16 at
  // 32x32 b32 3.6 vs 5.8. The generic build's 4-float vectors (stem 9.3 vs 7.6) and
  // AVX-512's 16-float rows keep the direct kernel there.
  const bool chanvec_over_direct = active_isa() == Isa::avx2 && vector_channels >= 16;
  switch (pass) {
    case ConvPass::forward:
      if (direct_ok && !chanvec_over_direct && (s.ci <= 4 || s.wo() >= 32)) return ConvAlgo::direct;
      // A one-tap kernel with a stride (ResNet's 1x1 shortcuts): the channel-vectorised sum
      // per output is only ci multiply-adds, too short to pay for its tile's writes, while the
      // GEMM's patch matrix is a strided copy of the input. Zen 3 AVX2, b128, 2 threads, GEMM
      // vs chanvec (interleaved): 16 -> 32 channels at 32x32 1.0 vs 1.1 ms, 32 -> 64 at 16x16
      // 0.60 vs 0.72, 64 -> 128 at 16x16 2.2 vs 3.6 (before chanvec's transposed writes: 1.2
      // vs 3.5, 0.6 vs 1.4, 3.0 vs 4.2).
      if (s.kh * s.kw == 1) return ConvAlgo::gemm;
      break;
    case ConvPass::grad_weight:  // the channel-vectorised dW wins even on long rows
      if (direct_ok && !chanvec_over_direct && s.ci <= 4) return ConvAlgo::direct;
      break;
    case ConvPass::grad_input:
      if (direct_ok && !chanvec_over_direct && s.w >= 32) return ConvAlgo::direct;
      break;
  }
  // Strided dX runs in sh*sw phases of a few taps each, or as the GEMM's W^T dY + col2im,
  // whose strided scatter-add costs as much as the product. Measured on ResNet-8's stride-2
  // 3x3 layers (b128, 2 threads), the phases win at 16 and 32 input channels: with 16-float
  // vectors (Zen 5) 2.55 vs 3.49 ms and 1.75 vs 2.1; with 8-float ones on two-vector tiles
  // (Zen 3, AVX2) 6.2 vs 8.3 and 4.9 vs 5.8. Where some phases get no tap (1x1 stride 2) the
  // GEMM wins.
  const bool every_phase_reached = s.kh >= s.sh && s.kw >= s.sw && s.dh == 1 && s.dw == 1;
  const bool strided_dx_on_gemm =
      pass == ConvPass::grad_input && (s.sh > 1 || s.sw > 1) && !every_phase_reached;
  if (vector_channels >= 16 && conv_chanvec_supports(s) && !strided_dx_on_gemm)
    return ConvAlgo::chanvec;
  // Otherwise the direct kernel where its rows are at least half full (or the input channels
  // few), else the GEMM.
  if (!direct_ok || (s.ci > 8 && s.wo() < 16)) return ConvAlgo::gemm;
  // dX by the direct kernel produces input channels in tiles of 4, so 6 of them (LeNet's
  // conv2) waste a quarter of the tile, while the GEMM's W^T dY has a tall, well-shaped
  // product (ci*kh*kw rows) once the patch matrix has some height.
  if (pass == ConvPass::grad_input && s.ci < 8 && s.ci * s.kh * s.kw >= 64) return ConvAlgo::gemm;
  return ConvAlgo::direct;
}

const char* conv_direct_impl_name() { return direct<float>().name; }

const char* conv_algo_name(ConvAlgo algo) {
  switch (algo) {
    case ConvAlgo::automatic: return "auto";
    case ConvAlgo::direct: return "direct";
    case ConvAlgo::gemm: return "gemm";
    case ConvAlgo::chanvec: return "chanvec";
    case ConvAlgo::winograd: return "winograd";
    case ConvAlgo::winograd_f2: return "winograd_f2";
    case ConvAlgo::winograd_f4: return "winograd_f4";
  }
  return "?";
}

namespace {
constexpr int kAlgos = 7;
std::atomic<int64_t> g_calls[3][kAlgos];

void count_call(ConvPass pass, ConvAlgo algo) {
  g_calls[static_cast<int>(pass)][static_cast<int>(algo)].fetch_add(1, std::memory_order_relaxed);
}

int winograd_m(ConvAlgo a) { return a == ConvAlgo::winograd_f2 ? 2 : 4; }
}  // namespace

int64_t conv_calls(ConvPass pass, ConvAlgo algo) {
  return g_calls[static_cast<int>(pass)][static_cast<int>(algo)].load(std::memory_order_relaxed);
}
const char* conv_chanvec_impl_name() { return direct<float>().chanvec_name; }

template <typename T>
void conv2d_forward(const ConvShape& s, const T* x, const T* w, const T* b, T* y, bool relu,
                    ConvAlgo algo) {
  if (s.n == 0 || s.co == 0) return;
  const ConvAlgo chosen = conv_choose_algo(s, algo, ConvPass::forward);
  count_call(ConvPass::forward, chosen);
  switch (chosen) {
    case ConvAlgo::direct: forward_direct(s, x, w, b, y, relu); break;
    case ConvAlgo::chanvec: forward_chanvec(s, x, w, b, y, relu); break;
    case ConvAlgo::winograd_f2:
    case ConvAlgo::winograd_f4: winograd_forward(s, winograd_m(chosen), x, w, b, y, relu); break;
    default: forward_gemm(s, x, w, b, y, relu);
  }
}

template <typename T>
void conv2d_backward(const ConvShape& s, const T* x, const T* w, const T* gy, T* gx, T* gw, T* gb,
                     ConvAlgo algo) {
  if (gw) std::fill(gw, gw + s.co * (s.ci / s.groups) * s.kh * s.kw, T(0));
  if (gb) std::fill(gb, gb + s.co, T(0));
  if (s.n == 0) return;
  const ConvAlgo for_gx = conv_choose_algo(s, algo, ConvPass::grad_input);
  const ConvAlgo for_gw = conv_choose_algo(s, algo, ConvPass::grad_weight);
  if (gx) count_call(ConvPass::grad_input, for_gx);
  if (gw || gb) count_call(ConvPass::grad_weight, for_gw);
  auto run = [&](ConvAlgo a, T* gx_, T* gw_, T* gb_) {
    switch (a) {
      case ConvAlgo::direct: backward_direct(s, x, w, gy, gx_, gw_, gb_); break;
      case ConvAlgo::chanvec: backward_chanvec(s, x, w, gy, gx_, gw_, gb_); break;
      case ConvAlgo::winograd_f2:
      case ConvAlgo::winograd_f4:
        winograd_backward(s, winograd_m(a), x, w, gy, gx_, gw_, gb_);
        break;
      default: backward_gemm(s, x, w, gy, gx_, gw_, gb_);
    }
  };
  if (!gx || for_gx == for_gw) {
    run(for_gw, gx, gw, gb);
  } else {
    run(for_gx, gx, nullptr, nullptr);
    if (gw || gb) run(for_gw, nullptr, gw, gb);
  }
}

// ----------------------------------------------------------------- bfloat16 path (autocast)
// Stride-1 convolutions (groups 1) need no patch matrix. On the padded image (ci x hp x wp),
// patch row (c, a, b) over the output grid ho x wp is one contiguous run of the image, from
// c*hp*wp + a*dh*wp + b*dw (each output row's last wp - wo columns wrap into the next image
// row: they are computed and dropped). gemm_bf16_rows packs straight from those runs, so the
// image is read once by the product's packing instead of being copied kh*kw times into a patch
// matrix first. dX is such a convolution itself (dY padded by (kh-1)dh - ph, the kernel flipped
// and transposed), and dW the product of dY, spread onto the ho x wp grid with zeros in the
// dropped columns, with the same rows transposed.
struct ShiftedRows {
  int64_t hp, wp, size;       // the padded image (ci x hp x wp) and a tail the last runs read
  std::vector<int64_t> rows;  // the start of each patch row (c, a, b)
  explicit ShiftedRows(const ConvShape& s)
      : hp(s.h + 2 * s.ph), wp(s.w + 2 * s.pw), size(s.ci * hp * wp + (s.kw - 1) * s.dw),
        rows(s.ci * s.kh * s.kw) {
    for (int64_t c = 0; c < s.ci; ++c)
      for (int64_t a = 0; a < s.kh; ++a)
        for (int64_t b = 0; b < s.kw; ++b)
          rows[(c * s.kh + a) * s.kw + b] = c * hp * wp + a * s.dh * wp + b * s.dw;
  }
  int64_t grid(const ConvShape& s) const { return s.ho() * wp; }
  void pad(const ConvShape& s, const bf16* x, bf16* dst) const {
    place(x, s.ci, s.h, s.w, dst, hp, wp, s.ph, s.pw);
    std::fill(dst + s.ci * hp * wp, dst + size, bf16(0));
  }
};

bool shifted_applies(const ConvShape& s) { return s.sh == 1 && s.sw == 1 && s.groups == 1; }

// With AMX, layers of groups 1 run on the direct tile kernels (conv_bf16.h), strided ones on the
// image split into phases, when there are channels enough for the tiles' 16-channel rows:
// - forward: at least 2 input channels. Each tap's product pads the channels to 16, yet even
//   the 3-channel stem ran 0.55-0.7x the shifted rows' time (strided stems 0.3-0.7x im2col's);
//   a single channel (MNIST's first layer, 16 times the products) ran 1.4x and stays off;
// - dW: at least 8 (8 channels 0.8x, 6 about even, 2-3 slower: up to 2x on 64x64 images);
// - dX (its products' depth is co, checked by the caller): 16, as before.
// Strides up to 4: each of the stride x stride phases holds at least a 32-pixel block, so a
// stride far beyond the image would make planes of mostly empty phases (1000: a gigabyte).
bool amx_direct_applies(const ConvShape& s, ConvPass pass) {
  const int64_t fewest = pass == ConvPass::forward ? 2 : pass == ConvPass::grad_weight ? 8 : 16;
  return bf16_active_road() == Bf16Road::amx && s.groups == 1 && s.ci >= fewest && s.sh <= 4 &&
         s.sw <= 4;
}

// Input channels per AMX product: 32, or 16 where there are only 16 (a 32-deep product
// would multiply as many zeros).
int64_t amx_kchunk(int64_t channels) { return channels <= 16 ? 16 : 32; }

// What the output grid is rounded up to: 16 pixels for the forward kernel, which may end on a
// half block (an 8 x 8 image's 80-pixel grid costs 80 pixels, not 96; strided dX's phases run
// the same kernel), 32 for dW, whose B tiles hold pairs of pixels.
constexpr int64_t kAmxForwardGridRound = 16, kAmxGradGridRound = 32;

// The AMX kernels' geometry (conv_bf16.h) and the tap offsets it points to.
struct AmxPlan {
  AmxConvGeometry g{};
  std::vector<int64_t> tap_offsets;
  explicit AmxPlan(const ConvShape& s, int64_t block_pixels = kAmxForwardGridRound)
      : tap_offsets(s.kh * s.kw) {
    const int64_t hp = s.h + 2 * s.ph, wp = s.w + 2 * s.pw;
    g.kchunk = amx_kchunk(s.ci);
    g.ci = s.ci, g.cpad = round_up(s.ci, g.kchunk), g.co = s.co, g.copad = round_up(s.co, 16);
    g.kh = s.kh, g.kw = s.kw, g.dh = s.dh, g.dw = s.dw, g.sh = s.sh, g.sw = s.sw;
    g.h = s.h, g.w = s.w, g.ph = s.ph, g.pw = s.pw, g.ho = s.ho(), g.wo = s.wo();
    g.hq = (hp + s.sh - 1) / s.sh, g.wq = (wp + s.sw - 1) / s.sw;
    g.grid = s.ho() * g.wq;
    g.grid_pad = round_up(g.grid, block_pixels);
    const int64_t reach = (s.kh - 1) * s.dh / s.sh * g.wq + (s.kw - 1) * s.dw / s.sw;
    g.phase_rows = std::max(g.grid_pad + reach, g.hq * g.wq);
    g.rows = s.sh * s.sw * g.phase_rows;
    for (int64_t a = 0; a < s.kh; ++a)
      for (int64_t b = 0; b < s.kw; ++b) {
        const int64_t ya = a * s.dh, xb = b * s.dw;
        tap_offsets[a * s.kw + b] = ((ya % s.sh) * s.sw + xb % s.sw) * g.phase_rows +
                                    ya / s.sh * g.wq + xb / s.sw;
      }
    g.tap_offsets = tap_offsets.data();
    amx_runs(g, runs);
  }
  AmxPlan(const AmxPlan&) = delete;  // g points into this object
  std::vector<int64_t> runs;
};

void amx_runs(AmxConvGeometry& g, std::vector<int64_t>& storage) {
  storage.assign(g.h * g.sw, -1);
  for (int64_t v = 0; v < g.sw; ++v)
    if (g.first_column(v) < g.w)
      for (int64_t r = 0; r < g.h; ++r)
        storage[r * g.sw + v] = g.pixel(r + g.ph, g.first_column(v) + g.pw);
  g.run_starts = storage.data();
}

// One thread's buffers for the AMX forward kernel: the placed image (zero wherever nothing is
// placed, so filled once) and the tiles' output.
struct AmxScratch {
  Scratch<bf16> xh;
  Scratch<float> out;
  void setup(const AmxConvGeometry& g) {
    xh.resize(g.cpad * g.rows);
    std::fill(xh.data(), xh.data() + g.cpad * g.rows, bf16(0));
    out.resize(g.copad * g.grid_pad);
  }
};

AlignedVector<bf16> amx_pack_weights(const ConvShape& s, const AmxConvGeometry& g, const bf16* w) {
  const int64_t chunks = g.cpad / g.kchunk, cotiles = g.copad / 16, a_tile = 16 * g.kchunk;
  AlignedVector<bf16> packed(s.kh * s.kw * chunks * cotiles * a_tile, bf16(0));
  for (int64_t o = 0; o < s.co; ++o)
    for (int64_t c = 0; c < s.ci; ++c)
      for (int64_t a = 0; a < s.kh; ++a)
        for (int64_t b = 0; b < s.kw; ++b) {
          const int64_t kc = c / g.kchunk, i = c % g.kchunk, cot = o / 16, j = o % 16;
          packed[(((a * s.kw + b) * chunks + kc) * cotiles + cot) * a_tile + j * g.kchunk + i] =
              w[((o * s.ci + c) * s.kh + a) * s.kw + b];
        }
  return packed;
}


// The AMX forward pass as a loop over images with per-thread scratch (setup(t), image(t, i)),
// so that dW's chunk loop can run it on the images it is about to read (stride-1 dX is this
// pass on dY; conv2d_backward_bf16).
template <typename Y>
struct AmxForward {
  const ConvShape s;
  const AmxPlan P;
  const AlignedVector<bf16> wpack;
  const bf16* x;
  const float* b;
  Y* y;
  bool relu;
  std::vector<AmxScratch> work;
  AmxForward(const ConvShape& s_, const bf16* x_, const bf16* w, const float* b_, Y* y_, bool relu_,
             int team)
      : s(s_), P(s_), wpack(amx_pack_weights(s_, P.g, w)), x(x_), b(b_), y(y_), relu(relu_), work(team) {}
  void setup(int t) { work[t].setup(P.g); }
  void image(int t, int64_t i, FetchAhead* ahead = nullptr) {
    amx_conv_forward_image(P.g, x + i * s.ci * s.h * s.w, work[t].xh.data(), wpack.data(),
                           work[t].out.data(), b, relu, y + i * s.co * s.ho() * s.wo(), ahead);
  }
};

// Runs a per-image pass (AmxForward, AmxDxPhases) over the batch on its own.
template <typename Pass>
void over_images_of(Pass& pass, int64_t n, int team) {
  over_images(
      n, team, [&](int t) { pass.setup(t); }, [&](int t, int64_t i) { pass.image(t, i); });
}

template <typename Y>
void forward_amx(const ConvShape& s, const bf16* x, const bf16* w, const float* b, Y* y,
                 bool relu) {
  const int team = batch_team(s);
  AmxForward<Y> pass(s, x, w, b, y, relu, team);
  // Images of 32 KB and more (ResNet's 16 x 32 x 32 stage: 0.82-0.87x the time on cold data)
  // fetch the next image while this one is on the tiles; smaller ones gained nothing.
  const int64_t image = s.ci * s.h * s.w;
  if (image * static_cast<int64_t>(sizeof(bf16)) < 32 * 1024) {
    over_images_of(pass, s.n, team);
    return;
  }
  over_images(
      s.n, team, [&](int t) { pass.setup(t); },
      [&](int t, int64_t i) {
        FetchAhead next(x + (i + 1) * image, i + 1 < s.n ? image * static_cast<int64_t>(sizeof(bf16)) : 0);
        pass.image(t, i, &next);
      });
}

template <typename Y>
void forward_shifted(const ConvShape& s, const bf16* x, const bf16* w, const float* b, Y* y,
                     bool relu) {
  const ShiftedRows R(s);
  const int64_t k = s.ci * s.kh * s.kw, grid = R.grid(s), ho = s.ho(), wo = s.wo();
  const int team = batch_team(s);
  std::vector<Scratch<bf16>> xp(team);
  std::vector<Scratch<float>> out(team);
  over_images(
      s.n, team,
      [&](int t) {
        xp[t].resize(R.size);
        out[t].resize(s.co * grid);
      },
      [&](int t, int64_t i) {
        R.pad(s, x + i * s.ci * s.h * s.w, xp[t].data());
        gemm_bf16_rows(false, false, s.co, grid, k, 1.0f, w, k, xp[t].data(), R.rows.data(), 0.0f,
                       out[t].data(), grid);
        // channel-major: channel c of grid pixel p at out[c * grid + p]
        grid_to_output(s.co, ho, wo, out[t].data(), grid, R.wp, b, relu, y + i * s.co * ho * wo);
      });
}

// dX of a strided layer on AMX. Row ihp = ih + ph of the padded input is reached by tap a from
// output row (ihp - a*dh) / sh when sh divides it, so dX splits into sh x sw phases by
// (ihp % sh, iwp % sw): phase (u, v) at (i, j) = (ihp / sh, iwp / sw) is
//   dX[c](i, j) = sum over o and the taps a*dh = u (mod sh), b*dw = v (mod sw) of
//                 dY[o](i - (a*dh - u) / sh, j - (b*dw - v) / sw) W[o][c][a][b],
// a stride-1 correlation of dY with those taps' weights (transposed: dX's channels are its
// outputs) at shifts the AMX forward kernel takes as its tap offsets. One padded copy of dY
// per image serves every phase; each dX row is assembled from its phases' grids and rounded
// once. A phase no tap reaches (a 1x1 stride-2 layer's odd rows) is zero (no weights packed).
struct DxPhase {
  std::vector<int64_t> tap_offsets;
  AmxConvGeometry g{};
  AlignedVector<bf16> wpack;
};

// Per axis of a strided layer's dX: for each phase u, the taps t with t*d % stride == u, their
// shifts (t*d - u) / stride, and the phase's index range inside the input [first, first + count).
struct DxAxis {
  std::vector<std::vector<int64_t>> taps, shifts;
  std::vector<int64_t> first, count;
};

// dX of a strided layer as a loop over images (setup(t), image(t, i)), as AmxForward.
template <typename Y>
struct AmxDxPhases {
  const ConvShape s;
  const bf16* gy;
  Y* gx;
  DxAxis rows, cols;
  AmxConvGeometry base{};
  std::vector<int64_t> runs;
  std::vector<DxPhase> phases;
  // Where each input column comes from: its phase and its column inside the phase's grid.
  std::vector<int64_t> column_phase, column_index;
  int64_t phase_size = 0;
  std::vector<AmxScratch> work;
  std::vector<Scratch<float>> grids;  // every phase's grid of one image
  AmxDxPhases(const ConvShape& s, const bf16* w, const bf16* gy, Y* gx, int team);
  AmxDxPhases(const AmxDxPhases&) = delete;  // base and the phases point into this object
  void setup(int t) {
    work[t].setup(base);
    grids[t].resize(s.sh * s.sw * phase_size);
  }
  void image(int t, int64_t i, FetchAhead* ahead = nullptr);
};

template <typename Y>
AmxDxPhases<Y>::AmxDxPhases(const ConvShape& s_, const bf16* w, const bf16* gy_, Y* gx_, int team)
    : s(s_), gy(gy_), gx(gx_), work(team), grids(team) {
  const int64_t ho = s.ho(), wo = s.wo();
  auto axis = [](int64_t stride, int64_t k, int64_t d, int64_t pad, int64_t size) {
    DxAxis ax;
    ax.taps.resize(stride), ax.shifts.resize(stride), ax.first.resize(stride), ax.count.resize(stride);
    for (int64_t t = 0; t < k; ++t) {
      ax.taps[(t * d) % stride].push_back(t);
      ax.shifts[(t * d) % stride].push_back(t * d / stride);
    }
    for (int64_t u = 0; u < stride; ++u) {
      const int64_t first = pad > u ? (pad - u + stride - 1) / stride : 0;
      const int64_t last = pad + size - 1 >= u ? (pad + size - 1 - u) / stride : -1;
      ax.first[u] = first, ax.count[u] = std::max<int64_t>(0, last - first + 1);
    }
    return ax;
  };
  rows = axis(s.sh, s.kh, s.dh, s.ph, s.h);
  cols = axis(s.sw, s.kw, s.dw, s.pw, s.w);
  // One padding of dY for every phase: top / left enough for the largest shift past the
  // phase's first row / column.
  int64_t pad_t = 0, pad_l = 0, rows_max = 0, cols_max = 0;
  for (int64_t u = 0; u < s.sh; ++u) {
    for (int64_t sft : rows.shifts[u]) pad_t = std::max(pad_t, sft - rows.first[u]);
    rows_max = std::max(rows_max, rows.count[u]);
  }
  for (int64_t v = 0; v < s.sw; ++v) {
    for (int64_t sft : cols.shifts[v]) pad_l = std::max(pad_l, sft - cols.first[v]);
    cols_max = std::max(cols_max, cols.count[v]);
  }
  int64_t reach_r = 0, reach_c = 0;  // the largest shift into the padded dY
  for (int64_t u = 0; u < s.sh; ++u)
    for (int64_t sft : rows.shifts[u]) reach_r = std::max(reach_r, rows.first[u] + pad_t - sft);
  for (int64_t v = 0; v < s.sw; ++v)
    for (int64_t sft : cols.shifts[v]) reach_c = std::max(reach_c, cols.first[v] + pad_l - sft);
  base.kchunk = amx_kchunk(s.co);
  base.ci = s.co, base.cpad = round_up(s.co, base.kchunk), base.co = s.ci, base.copad = round_up(s.ci, 16);
  base.dh = base.dw = base.sh = base.sw = 1;
  base.h = ho, base.w = wo, base.ph = pad_t, base.pw = pad_l;
  base.wq = std::max(pad_l + wo, cols_max + reach_c);
  base.hq = std::max(pad_t + ho, rows_max + reach_r);
  base.grid = rows_max * base.wq;
  base.grid_pad = round_up(base.grid, kAmxForwardGridRound);
  base.phase_rows = base.rows = std::max(base.grid_pad + reach_r * base.wq + reach_c, base.hq * base.wq);
  amx_runs(base, runs);
  phases.resize(s.sh * s.sw);
  for (int64_t u = 0; u < s.sh; ++u)
    for (int64_t v = 0; v < s.sw; ++v) {
      DxPhase& P = phases[u * s.sw + v];
      const std::vector<int64_t>&taps_a = rows.taps[u], &taps_b = cols.taps[v];
      const int64_t na = taps_a.size(), nb = taps_b.size();
      if (na == 0 || nb == 0 || rows.count[u] == 0 || cols.count[v] == 0) continue;
      for (int64_t ia = 0; ia < na; ++ia)
        for (int64_t ib = 0; ib < nb; ++ib)
          P.tap_offsets.push_back((rows.first[u] + pad_t - rows.shifts[u][ia]) * base.wq +
                                  (cols.first[v] + pad_l - cols.shifts[v][ib]));
      P.g = base;
      P.g.kh = na, P.g.kw = nb, P.g.tap_offsets = P.tap_offsets.data();
      ConvShape t = s;  // the phase's correlation: dX channels out of dY channels
      t.co = s.ci, t.ci = s.co, t.kh = na, t.kw = nb;
      std::vector<bf16> wt(t.co * t.ci * na * nb);
      for (int64_t c = 0; c < s.ci; ++c)
        for (int64_t o = 0; o < s.co; ++o)
          for (int64_t ia = 0; ia < na; ++ia)
            for (int64_t ib = 0; ib < nb; ++ib)
              wt[((c * s.co + o) * na + ia) * nb + ib] =
                  w[((o * s.ci + c) * s.kh + taps_a[ia]) * s.kw + taps_b[ib]];
      P.wpack = amx_pack_weights(t, P.g, wt.data());
    }
  column_phase.resize(s.w);
  column_index.resize(s.w);
  for (int64_t iw = 0; iw < s.w; ++iw) {
    column_phase[iw] = (iw + s.pw) % s.sw;
    column_index[iw] = (iw + s.pw) / s.sw - cols.first[column_phase[iw]];
  }
  phase_size = base.copad * base.grid_pad;
}

template <typename Y>
void AmxDxPhases<Y>::image(int t, int64_t i, FetchAhead* ahead) {
  amx_place_image(base, gy + i * s.co * s.ho() * s.wo(), work[t].xh.data());
  float* grid = grids[t].data();
  for (int64_t f = 0; f < s.sh * s.sw; ++f)
    if (!phases[f].wpack.empty())
      amx_conv_image(phases[f].g, work[t].xh.data(), phases[f].wpack.data(), grid + f * phase_size,
                     ahead);
  // Each dX row from its row phase's grids: at stride 2 its even and odd columns come from
  // two phases, interleaved; phases no tap reaches give zeros.
  auto row_of = [&](int64_t u, int64_t v, int64_t c, int64_t r) -> const float* {
    return phases[u * s.sw + v].wpack.empty()
               ? nullptr
               : grid + (u * s.sw + v) * phase_size + c * base.grid_pad + r * base.wq;
  };
  Y* gxi = gx + i * s.ci * s.h * s.w;
  for (int64_t c = 0; c < s.ci; ++c)
    for (int64_t ih = 0; ih < s.h; ++ih) {
      const int64_t u = (ih + s.ph) % s.sh, r = (ih + s.ph) / s.sh - rows.first[u];
      Y* d = gxi + (c * s.h + ih) * s.w;
      if (s.sw == 2 && s.w >= 2) {
        const float* even = row_of(u, column_phase[0], c, r);
        const float* odd = row_of(u, column_phase[1], c, r);
        amx_interleave_row(even ? even + column_index[0] : nullptr,
                           odd ? odd + column_index[1] : nullptr, s.w, d);
        continue;
      }
      for (int64_t iw = 0; iw < s.w; ++iw) {
        const float* src = row_of(u, column_phase[iw], c, r);
        store_rounded(src ? src[column_index[iw]] : 0.0f, d + iw);
      }
    }
}

template <typename Y>
void grad_input_amx_phases(const ConvShape& s, const bf16* w, const bf16* gy, Y* gx) {
  const int team = batch_team(s);
  AmxDxPhases<Y> pass(s, w, gy, gx, team);
  over_images_of(pass, s.n, team);
}

// dX by the shifted rows needs dY padded by (kh-1)dh - ph (grad_input_shifted, below), which
// must not be negative.
bool grad_input_shifted_applies(const ConvShape& s) {
  return shifted_applies(s) && s.ph <= (s.kh - 1) * s.dh && s.pw <= (s.kw - 1) * s.dw;
}

// Which road each pass of the bfloat16 convolution takes: the one place that decides
// (conv2d_forward_bf16 / conv2d_backward_bf16 follow it, the profile names it).
Bf16ConvPath bf16_conv_path(const ConvShape& s, ConvPass pass) {
  // vdpbf16ps does twice the float32 FMA's products, but Winograd does a quarter of them and
  // the direct kernels run the narrow layers near the FMA peak where the GEMM's tiles are half
  // empty: where the float32 chooser picks one of those, the bfloat16 values widened to
  // float32 (exact) run there (bfloat16 products are exact in float32 as well).
  if (bf16_active_road() == Bf16Road::avx512_bf16 &&
      conv_choose_algo(s, ConvAlgo::automatic, pass) != ConvAlgo::gemm)
    return Bf16ConvPath::widened;
  switch (pass) {
    case ConvPass::forward:
    case ConvPass::grad_weight:
      return amx_direct_applies(s, pass) ? Bf16ConvPath::amx
             : shifted_applies(s)  ? Bf16ConvPath::shifted
                                   : Bf16ConvPath::gemm;
    case ConvPass::grad_input:
    default:
      if (grad_input_shifted_applies(s))  // a stride-1 forward convolution of dY, co channels in
        return bf16_active_road() == Bf16Road::amx && s.co >= 16 ? Bf16ConvPath::amx
                                                                 : Bf16ConvPath::shifted;
      return amx_direct_applies(s, ConvPass::grad_input) && s.co >= 16 ? Bf16ConvPath::amx_phases
                                                                       : Bf16ConvPath::gemm;
  }
}

const char* bf16_conv_path_name(Bf16ConvPath path) {
  switch (path) {
    case Bf16ConvPath::amx: return "bf16_amx";
    case Bf16ConvPath::amx_phases: return "bf16_amx_phases";
    case Bf16ConvPath::shifted: return "bf16_shifted";
    case Bf16ConvPath::widened: return "bf16_widened";
    default: return "bf16_im2col";
  }
}

// The forward convolution without a patch matrix: on AMX tiles where they apply, else on the
// shifted rows (stride 1); false where neither does.
template <typename Y>
bool forward_direct(const ConvShape& s, const bf16* x, const bf16* w, const float* b, Y* y,
                    bool relu) {
  switch (bf16_conv_path(s, ConvPass::forward)) {
    case Bf16ConvPath::amx: forward_amx(s, x, w, b, y, relu); return true;
    case Bf16ConvPath::shifted: forward_shifted(s, x, w, b, y, relu); return true;
    default: return false;
  }
}

// dX[c, h, w] = sum_{o,a,b} dY[o, h + ph - a dh, w + pw - b dw] W[o, c, a, b]: the forward
// convolution of dY padded by (kh-1)dh - ph with W'[c, o, a', b'] = W[o, c, kh-1-a', kw-1-b'].
// stride-1 dX's shape as that forward convolution.
ConvShape grad_input_as_forward(const ConvShape& s) {
  ConvShape t = s;
  t.ci = s.co, t.co = s.ci, t.h = s.ho(), t.w = s.wo();
  t.ph = (s.kh - 1) * s.dh - s.ph, t.pw = (s.kw - 1) * s.dw - s.pw;
  return t;
}

std::vector<bf16> flipped_weights(const ConvShape& s, const bf16* w) {
  std::vector<bf16> flipped(s.co * s.ci * s.kh * s.kw);
  for (int64_t o = 0; o < s.co; ++o)
    for (int64_t c = 0; c < s.ci; ++c)
      for (int64_t a = 0; a < s.kh; ++a)
        for (int64_t b = 0; b < s.kw; ++b)
          flipped[((c * s.co + o) * s.kh + (s.kh - 1 - a)) * s.kw + (s.kw - 1 - b)] =
              w[((o * s.ci + c) * s.kh + a) * s.kw + b];
  return flipped;
}

template <typename Y>
void grad_input_shifted(const ConvShape& s, const bf16* w, const bf16* gy, Y* gx) {
  forward_direct(grad_input_as_forward(s), gy, flipped_weights(s, w).data(),
                 static_cast<const float*>(nullptr), gx, false);
}

// dW (and db) on AMX tiles (conv_bf16.h): images in chunks, each chunk's dW^T summed in the
// tiles over all its images and then added, transposed, into the chunk sums in chunk order.
// A chunk holds about kAmxGradPixels grid pixels (at least 8 images; small images need more
// of them to pay for each chunk's tile stores and transposed sum), and there are a multiple of
// 4 chunks where the batch allows. The chunks depend on the shape alone: the same bits at any
// thread count.
constexpr int64_t kAmxGradPixels = 8192;

// `images` (an AmxForward or AmxDxPhases computing dX from the same dY, or NoImagePass) runs
// on each image just before the image is placed: dY comes from memory once for both passes,
// and the image of x arrives while dX's tiles work.
struct NoImagePass {
  void setup(int) {}
  void image(int, int64_t, FetchAhead*) {}
};

template <typename ImagePass = NoImagePass>
void grad_weight_amx(const ConvShape& s, const bf16* x, const bf16* gy, float* gw, float* gb,
                     ImagePass* images = nullptr) {
  AmxPlan P(s, kAmxGradGridRound);
  AmxConvGeometry& g = P.g;
  g.cpad = round_up(s.ci, 16);  // dW^T tiles hold 16 input channels
  const int64_t taps = s.kh * s.kw, ho = s.ho(), wo = s.wo();
  const int64_t x_stride = g.cpad * g.rows, dy_stride = g.copad * g.grid_pad;
  const int64_t wanted = std::max<int64_t>(
      1, std::min(std::max<int64_t>(8, kAmxGradPixels / g.grid_pad), s.n / 4));
  // a multiple of 4 chunks where the batch allows, so 2 or 4 threads get equal shares (ResNet's
  // 16 x 16 layers at batch 128 made 5 chunks of 28: one thread did 84 images, the other 44)
  const int64_t split = std::min(s.n, round_up((s.n + wanted - 1) / wanted, 4));
  const int64_t per_chunk = (s.n + split - 1) / split;
  const int64_t chunks = (s.n + per_chunk - 1) / per_chunk;  // none empty (11 images: 6 of 2)
  const int team = static_cast<int>(std::min<int64_t>(batch_team(s), chunks));
  ChunkSums<float> sums(team, s.co * s.ci * taps, gb ? s.co : 0);
  std::vector<Scratch<bf16>> xpad(team), dy_grid(team), dy_pairs(team);
  std::vector<Scratch<float>> acc(team);
  auto setup = [&](int t) {  // what no image writes stays zero: padding, dropped columns
    if (images) images->setup(t);
    xpad[t].resize(per_chunk * x_stride);
    std::fill(xpad[t].data(), xpad[t].data() + per_chunk * x_stride, bf16(0));
    dy_grid[t].resize(g.copad * g.grid_pad);
    std::fill(dy_grid[t].data(), dy_grid[t].data() + g.copad * g.grid_pad, bf16(0));
    dy_pairs[t].resize(per_chunk * dy_stride);
    acc[t].resize(taps * g.cpad * g.copad);
  };
  auto body = [&](int t, int64_t chunk) {
    const int64_t first = chunk * per_chunk, count = std::min(s.n - first, per_chunk);
    for (int64_t j = 0; j < count; ++j) {
      const bf16* gyi = gy + (first + j) * s.co * ho * wo;
      if (images) {  // x of this image is fetched while its dX runs
        FetchAhead x_ahead(x + (first + j) * s.ci * s.h * s.w, s.ci * s.h * s.w * sizeof(bf16));
        images->image(t, first + j, &x_ahead);
      }
      amx_grad_place_image(g, x + (first + j) * s.ci * s.h * s.w, gyi, xpad[t].data() + j * x_stride,
                           dy_grid[t].data(), dy_pairs[t].data() + j * dy_stride);
      if (gb) add_channel_sums_of(s.co, ho * wo, gyi, sums.gb[t].data());
    }
    const float* a = acc[t].data();
    amx_conv_grad_weight(g, {xpad[t].data(), x_stride, dy_pairs[t].data(), dy_stride, count},
                         acc[t].data());
    float* out = sums.gw[t].data();
    for (int64_t tap = 0; tap < taps; ++tap)
      for (int64_t c = 0; c < s.ci; ++c)
        for (int64_t o = 0; o < s.co; ++o)
          out[(o * s.ci + c) * taps + tap] = a[(tap * g.cpad + c) * g.copad + o];
  };
  over_chunks_summed(chunks, team, setup, body, sums, gw, gb);
}

void grad_weight_shifted(const ConvShape& s, const bf16* x, const bf16* gy, float* gw, float* gb) {
  const ShiftedRows R(s);
  const int64_t k = s.ci * s.kh * s.kw, grid = R.grid(s), ho = s.ho(), wo = s.wo();
  const int team = batch_team(s);
  ChunkSums<float> sums(team, gw ? s.co * k : 0, gb ? s.co : 0);
  std::vector<Scratch<bf16>> xp(team), gy_grid(team);
  auto setup = [&](int t) {
    if (!gw) return;
    xp[t].resize(R.size);
    gy_grid[t].resize(s.co * grid);
    std::fill(gy_grid[t].data(), gy_grid[t].data() + s.co * grid, bf16(0));  // dropped columns
  };
  auto body = [&](int t, int64_t i) {
    const bf16* gyi = gy + i * s.co * ho * wo;
    if (gw) {
      R.pad(s, x + i * s.ci * s.h * s.w, xp[t].data());
      bf16* g = gy_grid[t].data();
      for (int64_t c = 0; c < s.co; ++c)
        for (int64_t oh = 0; oh < ho; ++oh)
          std::memcpy(g + c * grid + oh * R.wp, gyi + (c * ho + oh) * wo, wo * sizeof(bf16));
      gemm_bf16_rows(false, true, s.co, k, grid, 1.0f, g, grid, xp[t].data(), R.rows.data(), 1.0f,
                     sums.gw[t].data(), k);
    }
    if (gb) add_channel_sums_of(s.co, ho * wo, gyi, sums.gb[t].data());
  };
  over_chunks_summed(s.n, team, setup, body, sums, gw, gb);
}

// bfloat16 values widened to float32 (exact), for the float32 kernels.
std::vector<float> widened(const bf16* v, int64_t size) {
  std::vector<float> out(size);
  float_from_bf16(v, out.data(), size);
  return out;
}

int64_t weight_size(const ConvShape& s) { return s.co * (s.ci / s.groups) * s.kh * s.kw; }

// The gemm paths accumulate into float32 arrays: a bfloat16 result goes through a float32
// copy, rounded once at the end.
template <typename Y, typename Fn>
void through_float(Y* out, int64_t size, Fn&& fn) {
  if constexpr (std::is_same_v<Y, float>) {
    fn(out);
  } else {
    std::vector<float> wide(size);
    fn(wide.data());
    if (out) bf16_from_float(wide.data(), out, size);
  }
}

// Under autocast: bfloat16 input, weight and dY, float32 bias and weight gradients, the output
// and dX float32 or bfloat16 (Y): stride-1 layers (groups 1) on the shifted rows above, the
// others on im2col + the bfloat16 GEMM.
template <typename Y>
void conv2d_forward_bf16(const ConvShape& s, const bf16* x, const bf16* w, const float* b, Y* y,
                         bool relu) {
  if (s.n == 0 || s.co == 0) return;
  if (bf16_conv_path(s, ConvPass::forward) == Bf16ConvPath::widened) {
    const std::vector<float> xf = widened(x, s.n * s.ci * s.h * s.w), wf = widened(w, weight_size(s));
    through_float(y, s.n * s.co * s.ho() * s.wo(), [&](float* out) {
      conv2d_forward<float>(s, xf.data(), wf.data(), b, out, relu, ConvAlgo::automatic);
    });
    return;
  }
  count_call(ConvPass::forward, ConvAlgo::gemm);
  if (!forward_direct(s, x, w, b, y, relu))
    through_float(y, s.n * s.co * s.ho() * s.wo(),
                  [&](float* out) { forward_gemm(s, x, w, b, out, relu); });
}

template <typename Y>
void conv2d_backward_bf16(const ConvShape& s, const bf16* x, const bf16* w, const bf16* gy,
                          Y* gx, float* gw, float* gb) {
  if (gw) std::fill(gw, gw + s.co * (s.ci / s.groups) * s.kh * s.kw, 0.0f);
  if (gb) std::fill(gb, gb + s.co, 0.0f);
  if (s.n == 0) return;
  if (gx) count_call(ConvPass::grad_input, ConvAlgo::gemm);
  if (gw || gb) count_call(ConvPass::grad_weight, ConvAlgo::gemm);
  // dX: the stride-1 convolution of dY where it is one, else its phases on AMX or im2col's
  // adjoint; dW: AMX tiles, the shifted rows (stride 1), or im2col + GEMM, in the same pass as
  // dX when both take im2col, and dX image by image inside dW's loop when both are on AMX (db
  // alone: with the shifted rows or im2col)
  Bf16ConvPath dx = gx ? bf16_conv_path(s, ConvPass::grad_input) : Bf16ConvPath::none;
  Bf16ConvPath dw = gw ? bf16_conv_path(s, ConvPass::grad_weight) : Bf16ConvPath::none;
  if (!gw && gb) dw = shifted_applies(s) ? Bf16ConvPath::shifted : Bf16ConvPath::gemm;
  if (dx == Bf16ConvPath::widened || dw == Bf16ConvPath::widened) {  // float32 kernels
    const bool wide_dx = dx == Bf16ConvPath::widened, wide_dw = dw == Bf16ConvPath::widened;
    const std::vector<float> xf = widened(x, s.n * s.ci * s.h * s.w), wf = widened(w, weight_size(s)),
                             gyf = widened(gy, s.n * s.co * s.ho() * s.wo());
    through_float(wide_dx ? gx : static_cast<Y*>(nullptr), wide_dx ? s.n * s.ci * s.h * s.w : 0,
                  [&](float* out) {
                    conv2d_backward<float>(s, xf.data(), wf.data(), gyf.data(), wide_dx ? out : nullptr,
                                           wide_dw ? gw : nullptr, wide_dw ? gb : nullptr,
                                           ConvAlgo::automatic);
                  });
    if (wide_dx) dx = Bf16ConvPath::none;
    if (wide_dw) dw = Bf16ConvPath::none;
  }
  float* gw_gemm = dw == Bf16ConvPath::gemm ? gw : nullptr;
  float* gb_gemm = dw == Bf16ConvPath::gemm ? gb : nullptr;
  if (dx == Bf16ConvPath::gemm)  // dX float32 where it is bfloat16
    through_float(gx, s.n * s.ci * s.h * s.w,
                  [&](float* out) { backward_gemm(s, x, w, gy, out, gw_gemm, gb_gemm); });
  else if (gw_gemm || gb_gemm)
    backward_gemm(s, x, w, gy, static_cast<float*>(nullptr), gw_gemm, gb_gemm);
  if (dw == Bf16ConvPath::amx && dx == Bf16ConvPath::amx_phases) {  // one read of dY for both
    AmxDxPhases<Y> images(s, w, gy, gx, batch_team(s));
    grad_weight_amx(s, x, gy, gw, gb, &images);
    dx = dw = Bf16ConvPath::none;
  }
  if (dw == Bf16ConvPath::amx && dx == Bf16ConvPath::amx &&
      amx_direct_applies(grad_input_as_forward(s), ConvPass::forward)) {
    AmxForward<Y> images(grad_input_as_forward(s), gy, flipped_weights(s, w).data(), nullptr, gx,
                         false, batch_team(s));
    grad_weight_amx(s, x, gy, gw, gb, &images);
    dx = dw = Bf16ConvPath::none;
  }
  if (dx == Bf16ConvPath::amx || dx == Bf16ConvPath::shifted) grad_input_shifted(s, w, gy, gx);
  if (dx == Bf16ConvPath::amx_phases) grad_input_amx_phases(s, w, gy, gx);
  if (dw == Bf16ConvPath::amx) grad_weight_amx(s, x, gy, gw, gb);
  if (dw == Bf16ConvPath::shifted) grad_weight_shifted(s, x, gy, gw, gb);
}

template void conv2d_forward_bf16<float>(const ConvShape&, const bf16*, const bf16*, const float*,
                                         float*, bool);
template void conv2d_forward_bf16<bf16>(const ConvShape&, const bf16*, const bf16*, const float*,
                                        bf16*, bool);
template void conv2d_backward_bf16<float>(const ConvShape&, const bf16*, const bf16*, const bf16*,
                                          float*, float*, float*);
template void conv2d_backward_bf16<bf16>(const ConvShape&, const bf16*, const bf16*, const bf16*,
                                         bf16*, float*, float*);

#define MG_INSTANTIATE(T)                                                                     \
  template void conv2d_forward<T>(const ConvShape&, const T*, const T*, const T*, T*, bool,   \
                                  ConvAlgo);                                                  \
  template void conv2d_backward<T>(const ConvShape&, const T*, const T*, const T*, T*, T*, T*, \
                                   ConvAlgo);
MG_INSTANTIATE(float)
MG_INSTANTIATE(double)
#undef MG_INSTANTIATE

}  // namespace mg
