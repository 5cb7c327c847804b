// Winograd convolution driver (the identity and the tile numbering are in winograd.h):
// transforms the tiles of a chunk of images, read in place (the per-ISA kernels; the zero
// padding is cut off by the gathers' masks, not copied), runs the alpha^2 GEMMs over channels
// on the GEMM's micro-kernels, and transforms back. Threads take whole chunks of images, each
// with its own buffers; weight-gradient sums are added in chunk order (conv_parts::ChunkSums),
// so results do not depend on the team.
#include <algorithm>
#include <vector>

#include "conv.h"
#include "conv_parts.h"
#include "gemm/gemm.h"
#include "parallel.h"
#include "winograd.h"

namespace mg {
namespace {

using namespace conv_parts;

template <typename T>
const WinogradKernels<T>& kernels() {
  return isa_table<WinogradKernels<T>>();
}

// Lanes of the widest vector (16 floats): offset tables are padded to a multiple of it.
constexpr int64_t kTail = 16;
// A chunk's images span fewer values than this, so that the tiles' int32 offsets (image *
// image_values + column) cannot overflow; an image may hold up to kMaxImageValues.
constexpr int64_t kMaxChunkValues = (int64_t(1) << 31) - (int64_t(1) << 21);
constexpr int64_t kMaxImageValues = int64_t(1) << 30;
// Tiles per gather call for the weight transforms, so int32 offsets cannot overflow.
constexpr int64_t kBlockTiles = int64_t(1) << 20;

// Tiles per chunk: the chunk's transformed inputs and products (alpha^2 x (ci + co) x tiles,
// 2.4 MB at 64 channels) stay near the L2 size, while each of the alpha^2 GEMMs still has
// enough columns for full micro-kernel panels. Measured on ResNet-8's layers: 64 to 256 tiles
// run within noise of each other, for the forward pass and for dW alike; 32 loses 5-30%.
constexpr int64_t kChunkTiles = 128;

// dW's products (co x ci over a chunk's tiles) have both operands with the tiles contiguous:
// the dot-product kernel reads them in place, where the packed GEMM transposes both first.
// Its sums end in a horizontal add per entry, which pays off from this many tiles (ResNet-8's
// 64-channel layer: 2.5 -> 2.2 ms at 128 tiles a chunk, 1.3 -> 1.5 ms at 64, 0.8 -> 1.1 at 32).
constexpr int64_t kDotMinTiles = 128;

// The geometry of one Winograd pass: an output plane (ho x wo) of tiles_h x tiles_w tiles of
// m x m; `images` images per chunk, so a row of tiles spans images * tiles_w tiles and a chunk
// holds `tiles` tiles.
struct TileGrid {
  int m, alpha;
  int64_t ho, wo, tiles_h, tiles_w, images, chunks, span, tiles;
  // image_values: the most values an image of a plane the tiles are read from holds (the
  // transforms' int32 offsets span a chunk's images).
  TileGrid(int m_, int64_t n, int64_t ho_, int64_t wo_, int64_t min_chunks, int64_t chunk_tiles,
           int64_t image_values)
      : m(m_), alpha(m_ + 2), ho(ho_), wo(wo_) {
    tiles_h = (ho + m - 1) / m;
    tiles_w = (wo + m - 1) / m;
    // At least a full vector of tiles per row of tiles (span), else lanes go unused.
    images = std::max(chunk_tiles / (tiles_h * tiles_w), (kTail + tiles_w - 1) / tiles_w);
    images = std::min(images, kMaxChunkValues / std::max<int64_t>(image_values, 1));
    images = std::max<int64_t>(1, std::min(images, (n + min_chunks - 1) / min_chunks));
    chunks = (n + images - 1) / images;
    span = images * tiles_w;
    tiles = tiles_h * span;
  }
  int64_t elements() const { return alpha * alpha; }
  // Chunk c: its first image, its images (the last chunk may be short), their tiles.
  struct Chunk {
    int64_t first, images, span, tiles;
  };
  Chunk chunk(int64_t n, int64_t c) const {
    const int64_t first = c * images, count = std::min(images, n - first);
    return {first, count, count * tiles_w, count * tiles_w * tiles_h};
  }
  // Elements between the channels (GEMM rows) of a plane and between the alpha^2 planes of a
  // buffer of `channels` x tiles: powers of two would put the rows or planes the transforms
  // write at once in the same L1 sets.
  int64_t row_stride() const { return tiles + kTail; }
  int64_t plane_stride(int64_t channels) const { return channels * row_stride() + kTail; }
  // The gather tables of a chunk of `count` images, each `image_values` apart, read with its
  // plane shifted `left` columns into the padding: off[j], where tile j starts (its first
  // column may be in the padding), and col[j], that column (TileWindow). Past the chunk's
  // tiles, offset 0 and column 0: in bounds.
  void tables(int64_t count, int64_t image_values, int64_t left, std::vector<int32_t>& off,
              std::vector<int32_t>& col) const {
    const int64_t tiles_in_row = count * tiles_w;
    off.assign(tiles_in_row + kTail, 0);
    col.assign(tiles_in_row + kTail, 0);
    for (int64_t j = 0; j < tiles_in_row; ++j) {
      col[j] = static_cast<int32_t>(j % tiles_w * m - left);
      off[j] = static_cast<int32_t>(j / tiles_w * image_values + col[j]);
    }
  }
};

// X -> L X L^T for `count` tiles of one channel: tile j's X[i][k] at in[j * tile_stride +
// i * in_rs + k * in_ks], its result entry e at out[e * out_es + j].
template <typename T>
void transform_tiles(WinogradTransform kind, int m, const T* in, int64_t in_rs, int64_t in_ks,
                     int64_t tile_stride, int64_t count, T* out, int64_t out_es) {
  const WinogradKernels<T>& k = kernels<T>();
  for (int64_t first = 0; first < count; first += kBlockTiles) {
    const int64_t block = std::min(kBlockTiles, count - first);
    std::vector<int32_t> off(block + kTail, 0);
    for (int64_t j = 0; j < block; ++j) off[j] = static_cast<int32_t>(j * tile_stride);
    k.gather_transform(kind, m, in + first * tile_stride, 0, in_rs, in_ks, off.data(),
                       TileWindow::everything(), 1, 1, block, out + first, out_es, 0);
  }
}

// U[e] (rows x cols) = G k[r, c] G^T for the alpha^2 entries e, each packed for the GEMM:
// every chunk of tiles multiplies by the same matrices. The transform writes them straight
// into the packed layout (tile q of its row of tiles is the kernel that lands at q).
template <typename T>
struct TransformedKernels {
  PackedLayout layout;
  AlignedVector<T> data;
  const T* entry(int64_t e) const { return data.data() + e * layout.size(); }
};

// Kernel k[r, c] (3 x 3) of the `rows` x `cols` matrix is read at k + offset(r, c), its
// (a, b) tap `step_row` a + `step_col` b further: the forward pass reads the weights as they
// are, dX reads each [o, i] kernel flipped, as [i, o].
template <typename T, typename Offset>
TransformedKernels<T> transform_kernels(int m, const T* k, int64_t rows, int64_t cols,
                                        Offset offset, int64_t step_row, int64_t step_col) {
  TransformedKernels<T> u{gemm_packed_layout<T>(rows, cols), {}};
  const int64_t count = u.layout.size(), elements = int64_t(m + 2) * (m + 2);
  u.data.resize(elements * count);
  // Rows past `rows` (and the lanes past the last tile) read kernel [0, 0]; those rows are
  // zeroed afterwards.
  std::vector<int32_t> off(count + kTail, static_cast<int32_t>(offset(0, 0)));
  std::vector<int64_t> padding;
  int64_t q = 0;
  u.layout.for_each_entry([&](int64_t r, int64_t c) {
    if (r < rows)
      off[q] = static_cast<int32_t>(offset(r, c));
    else
      padding.push_back(q);
    ++q;
  });
  kernels<T>().gather_transform(WinogradTransform::weight, m, k, 0, step_row, step_col,
                                off.data(), TileWindow::everything(), 1, 1, count,
                                u.data.data(), count, 0);
  for (int64_t e = 0; e < elements; ++e)
    for (int64_t at : padding) u.data[e * count + at] = T(0);
  return u;
}

// dW's chunks depend on the shape only (ChunkSums); at least 4 of them where the batch allows,
// so a few threads share small batches.
TileGrid weight_grad_grid(const ConvShape& s, int m) {
  return TileGrid(m, s.n, s.ho(), s.wo(), 4, kChunkTiles,
                  std::max(s.ci * s.h * s.w, s.co * s.ho() * s.wo()));
}

template <typename T>
void forward_pass(const ConvShape& s, int m, const T* x, const TransformedKernels<T>& u,
                  const T* b, T* y, bool relu) {
  const WinogradKernels<T>& k = kernels<T>();
  const int team = batch_team(s);
  const int64_t image_values = s.ci * s.h * s.w;
  const TileGrid g(m, s.n, s.ho(), s.wo(), team, kChunkTiles, image_values);
  const int64_t es_in = g.plane_stride(s.ci), es_out = g.plane_stride(s.co);
  std::vector<Scratch<T>> v(team), prod(team);
  std::vector<std::vector<int32_t>> off(team), col(team);
  over_images(
      g.chunks, std::min<int64_t>(team, g.chunks),
      [&](int t) {
        v[t].resize(g.elements() * es_in);
        prod[t].resize(g.elements() * es_out);
      },
      [&](int t, int64_t c) {
        const TileGrid::Chunk ch = g.chunk(s.n, c);
        g.tables(ch.images, image_values, s.pw, off[t], col[t]);
        k.gather_transform(WinogradTransform::input, m, x + ch.first * image_values, s.h * s.w,
                           s.w, 1, off[t].data(),
                           TileWindow{s.ph, s.h, col[t].data(), static_cast<int32_t>(s.w), g.tiles_w}, s.ci,
                           g.tiles_h, ch.span, v[t].data(), es_in, g.row_stride());
        for (int64_t e = 0; e < g.elements(); ++e)
          gemm_packed_a(u.layout, u.entry(e), ch.tiles, v[t].data() + e * es_in, g.row_stride(),
                        T(0), prod[t].data() + e * es_out, g.row_stride());
        k.output_transform(m, prod[t].data(), es_out, g.row_stride(), s.co, g.tiles_h,
                           ch.images, g.tiles_w, b, relu, y + ch.first * s.co * g.ho * g.wo,
                           s.co * g.ho * g.wo, g.ho * g.wo, g.wo, g.ho, g.wo);
      });
}

}  // namespace

// Planes up to this many pixels a side: the transforms' tile offsets are int32 (one gather
// instruction per vector), and a chunk's row of side-by-side images (at most
// kChunkTiles + kTail images of width + 2 + m) stays far below 2^31 with it.
constexpr int64_t kMaxPlaneSide = int64_t(1) << 20;
// Kernels up to this many values: the weight transform's offsets are int32 too.
constexpr int64_t kMaxKernelValues = int64_t(1) << 30;

bool winograd_weight_grad_on_dot(const ConvShape& s, int m) {
  return weight_grad_grid(s, m).tiles >= kDotMinTiles;
}

bool conv_winograd_supports(const ConvShape& s) {
  return s.kh == 3 && s.kw == 3 && s.sh == 1 && s.sw == 1 && s.dh == 1 && s.dw == 1 &&
         s.groups == 1 && s.ph <= 2 && s.pw <= 2 && s.h <= kMaxPlaneSide && s.w <= kMaxPlaneSide &&
         s.co * s.ci * 9 <= kMaxKernelValues && s.ci * s.h * s.w <= kMaxImageValues &&
         s.co * s.ho() * s.wo() <= kMaxImageValues;
}

template <typename T>
void winograd_forward(const ConvShape& s, int m, const T* x, const T* w, const T* b, T* y,
                      bool relu) {
  const auto as_stored = [&](int64_t o, int64_t i) { return (o * s.ci + i) * 9; };
  forward_pass(s, m, x, transform_kernels(m, w, s.co, s.ci, as_stored, 3, 1), b, y, relu);
}

template <typename T>
void winograd_backward(const ConvShape& s, int m, const T* x, const T* w, const T* gy, T* gx,
                       T* gw, T* gb) {
  const int64_t ho = s.ho(), wo = s.wo();
  if (gx) {
    // dX = the correlation of dY, padded by 2 - p, with wflip[i, o, a, b] = w[o, i, 2-a, 2-b]:
    // kernel [i, o] read backwards from w[o, i]'s last tap.
    const auto flipped = [&](int64_t i, int64_t o) { return (o * s.ci + i) * 9 + 8; };
    const ConvShape t{s.n, s.co, ho, wo, s.ci, 3, 3, 1, 1, 2 - s.ph, 2 - s.pw, 1, 1, 1};
    forward_pass(t, m, gy, transform_kernels(m, w, s.ci, s.co, flipped, -3, -1),
                 static_cast<const T*>(nullptr), gx, false);
  }
  if (!gw && !gb) return;
  // dU[e] (co x ci) = sum over the chunk's tiles of (A dY A^T)[e] V[e]^T: one product per
  // element with the tiles as its depth, summed chunk by chunk (weight_grad_grid).
  const WinogradKernels<T>& k = kernels<T>();
  const TileGrid g = weight_grad_grid(s, m);
  const int team = static_cast<int>(std::min<int64_t>(batch_team(s), g.chunks));
  const int64_t x_values = s.ci * s.h * s.w, gy_values = s.co * ho * wo;
  const int64_t es_in = g.plane_stride(s.ci), es_g = g.plane_stride(s.co), du_es = s.co * s.ci;
  ChunkSums<T> sums(team, gw ? g.elements() * du_es : 0, gb ? s.co : 0);
  AlignedVector<T> du(gw ? g.elements() * du_es : 0, T(0));
  std::vector<Scratch<T>> v(team), gt(team);
  std::vector<std::vector<int32_t>> off(team), col(team), goff(team), gcol(team);
  over_chunks_summed(
      g.chunks, team,
      [&](int t) {
        if (!gw) return;
        v[t].resize(g.elements() * es_in);
        gt[t].resize(g.elements() * es_g);
      },
      [&](int t, int64_t c) {
        const TileGrid::Chunk ch = g.chunk(s.n, c);
        const T* gyc = gy + ch.first * gy_values;
        if (gb)
          for (int64_t i = 0; i < ch.images; ++i)
            add_channel_sums(s.co, ho * wo, gyc + i * gy_values, sums.gb[t].data());
        if (!gw) return;
        g.tables(ch.images, x_values, s.pw, off[t], col[t]);
        g.tables(ch.images, gy_values, 0, goff[t], gcol[t]);
        k.gather_transform(WinogradTransform::input, m, x + ch.first * x_values, s.h * s.w, s.w, 1,
                           off[t].data(),
                           TileWindow{s.ph, s.h, col[t].data(), static_cast<int32_t>(s.w), g.tiles_w}, s.ci,
                           g.tiles_h, ch.span, v[t].data(), es_in, g.row_stride());
        // dY's tiles past its last row or column (a plane not a multiple of m) read zeros.
        k.gather_transform(WinogradTransform::grad_output, m, gyc, ho * wo, wo, 1, goff[t].data(),
                           TileWindow{0, ho, gcol[t].data(), static_cast<int32_t>(wo), g.tiles_w}, s.co,
                           g.tiles_h, ch.span, gt[t].data(), es_g, g.row_stride());
        for (int64_t e = 0; e < g.elements(); ++e)
          if (ch.tiles >= kDotMinTiles)
            gemm_dot_accumulate(s.co, s.ci, ch.tiles, gt[t].data() + e * es_g, g.row_stride(),
                                v[t].data() + e * es_in, g.row_stride(),
                                sums.gw[t].data() + e * du_es, s.ci);
          else
            gemm<T>(false, true, s.co, s.ci, ch.tiles, T(1), gt[t].data() + e * es_g,
                    g.row_stride(), v[t].data() + e * es_in, g.row_stride(), T(1),
                    sums.gw[t].data() + e * du_es, s.ci);
      },
      sums, du.data(), gb);
  if (!gw) return;
  // dW[o, i] = G^T dU[o, i] G: tile j = o * ci + i has its entry (a, b) at du[(a * alpha + b)
  // * du_es + j].
  AlignedVector<T> planes(9 * du_es);
  transform_tiles(WinogradTransform::grad_weight, m, du.data(), g.alpha * du_es, du_es, 1, du_es,
                  planes.data(), du_es);
  for (int64_t t = 0; t < du_es; ++t)
    for (int e = 0; e < 9; ++e) gw[t * 9 + e] = planes[e * du_es + t];
}

template <typename T>
void winograd_transform(WinogradTransform kind, int m, const T* tiles, int64_t count, T* out) {
  const int r = winograd_in_side(kind, m), q = winograd_out_side(kind, m);
  if (kind == WinogradTransform::output) {  // each tile its own image of one tile
    AlignedVector<T> planes(r * r * count + kTail);  // vector loads run past the last tile
    for (int64_t t = 0; t < count; ++t)
      for (int e = 0; e < r * r; ++e) planes[e * count + t] = tiles[t * r * r + e];
    kernels<T>().output_transform(m, planes.data(), count, 0, 1, 1, count, 1, nullptr, false, out,
                                  q * q, 0, q, q, q);
    return;
  }
  AlignedVector<T> result(q * q * count);
  transform_tiles(kind, m, tiles, r, 1, r * r, count, result.data(), count);
  for (int64_t t = 0; t < count; ++t)
    for (int e = 0; e < q * q; ++e) out[t * q * q + e] = result[e * count + t];
}

const char* winograd_impl_name() { return kernels<float>().name; }

#define MG_INSTANTIATE(T)                                                                      \
  template void winograd_forward<T>(const ConvShape&, int, const T*, const T*, const T*, T*,   \
                                    bool);                                                     \
  template void winograd_backward<T>(const ConvShape&, int, const T*, const T*, const T*, T*,  \
                                     T*, T*);                                                  \
  template void winograd_transform<T>(WinogradTransform, int, const T*, int64_t, T*);
MG_INSTANTIATE(float)
MG_INSTANTIATE(double)
#undef MG_INSTANTIATE

}  // namespace mg
