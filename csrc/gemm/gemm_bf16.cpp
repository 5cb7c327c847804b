// The bfloat16 GEMM driver (bf16.h): picks the road, packs, splits C among threads.
//
// Loop order as in the float32 driver (gemm.cpp): per thread, a block of B slivers (packed,
// KC deep) is swept by blocks of A slivers; each B sliver stays in L1 while the micro-kernel
// runs every A sliver of the block over it. Packing rounds float32 operands to bfloat16 as it
// goes and lays the values out in the pairs of k that vdpbf16ps and the AMX tiles read.
//
// Threads split C into a tm x tn grid of rectangles (rows in MR steps, columns in NR slivers)
// and each packs what its rectangle needs: no barriers. Threads sharing columns pack the same
// B slivers; the grid's cost counts that packing, which matters because the bfloat16 kernels
// do so many multiply-adds per packed value (an AMX tile product: 8192 per 1024 values loaded).
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "dispatch.h"
#include "gemm/bf16.h"
#include "gemm/gemm.h"
#include "memory.h"
#include "parallel.h"

namespace mg {
namespace {

constexpr const char* kRoadNames[] = {"float32", "avx512_bf16", "amx"};  // in Bf16Road's order

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

// op(X) (X^T when trans) for packing: X's rows are `ld` apart, or, with `rows`, row r starts
// rows[r] values past x (the shifted image rows a convolution reads, csrc/conv.cpp).
template <typename T>
struct OpView {
  const T* x;
  int64_t ld;
  bool trans;
  const int64_t* rows = nullptr;
  // Row r of X itself (op(X)'s row r when not transposed, its column r when transposed).
  const T* row(int64_t r) const { return x + (rows ? rows[r] : r * ld); }
  // Element (r, c) of op(X), rounded to bfloat16 bits.
  uint16_t at(int64_t r, int64_t c) const { return to_bf16(trans ? row(c)[r] : row(r)[c]).bits; }
};

inline uint16_t bits_of(float v) { return float_to_bf16(v).bits; }
inline uint16_t bits_of(bf16 v) { return v.bits; }

// Rows [i0, i0 + rows) x depth [p0, p0 + kb) of op(A) as one sliver in the kernel's layout
// (bf16.h), zero-padded to mr rows and kpad depth. Templated on the layout; the innermost
// loops run over the values a layout keeps contiguous (32 of k for tiles, one row's pair for
// pairs), so the compiler can vectorise them.
template <Bf16Layout L, typename T>
void pack_a_sliver(const OpView<T>& A, int64_t i0, int rows, int64_t p0, int64_t kb,
                   int64_t kpad, int mr, uint16_t* __restrict dst) {
  if (rows < mr || kb < kpad) std::fill(dst, dst + mr * kpad, uint16_t(0));
  if (A.trans) {  // op(A)'s columns are rows of A: read along i
    for (int64_t p = 0; p < kb; ++p) {
      const T* __restrict src = A.row(p0 + p) + i0;
      for (int64_t i = 0; i < rows; ++i) dst[bf16_a_slot(L, mr, i, p)] = bits_of(src[i]);
    }
    return;
  }
  for (int64_t i = 0; i < rows; ++i) {
    const T* __restrict src = A.row(i0 + i) + p0;
    if (L == Bf16Layout::tiles) {  // runs of 32 k are contiguous
      for (int64_t p = 0; p < kb; p += 32) {
        uint16_t* __restrict d = dst + bf16_a_slot(L, mr, i, p);
        const int64_t len = std::min<int64_t>(32, kb - p);
        for (int64_t q = 0; q < len; ++q) d[q] = bits_of(src[p + q]);
      }
    } else {  // a row's pairs are mr pairs apart
      for (int64_t p = 0; p < kb; ++p) dst[bf16_a_slot(L, mr, i, p)] = bits_of(src[p]);
    }
  }
}

// Two consecutive values of a bfloat16 row, copied as one 32-bit word (both layouts keep a
// column's pair of k together).
inline void copy_pair(const bf16* src, uint16_t* dst) { std::memcpy(dst, src, 4); }

// dst[2q] = even[q], dst[2q + 1] = odd[q] for q < len: two rows of B into one row of pairs.
inline void interleave(const bf16* even, const bf16* odd, int64_t len, uint16_t* dst) {
  int64_t q = 0;
  for (; q + 8 <= len; q += 8) {  // SSE2, part of every x86-64 CPU
    const __m128i e = _mm_loadu_si128(reinterpret_cast<const __m128i*>(even + q));
    const __m128i o = _mm_loadu_si128(reinterpret_cast<const __m128i*>(odd + q));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + 2 * q), _mm_unpacklo_epi16(e, o));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + 2 * q + 8), _mm_unpackhi_epi16(e, o));
  }
  for (; q < len; ++q) dst[2 * q] = even[q].bits, dst[2 * q + 1] = odd[q].bits;
}
inline void interleave(const float* even, const float* odd, int64_t len, uint16_t* dst) {
  for (int64_t q = 0; q < len; ++q) dst[2 * q] = bits_of(even[q]), dst[2 * q + 1] = bits_of(odd[q]);
}

// Columns [j0, j0 + cols) x depth [p0, p0 + kb) of op(B) as one sliver in the kernel's
// layout, zero-padded to nr columns and kpad depth. Not transposed, two rows of B are
// interleaved into one row of pairs at a time; transposed, each row of B (a column of op(B))
// is read along k and its pairs are placed as 32-bit words.
template <Bf16Layout L, typename T>
void pack_b_sliver(const OpView<T>& B, int64_t j0, int cols, int64_t p0, int64_t kb,
                   int64_t kpad, int nr, uint16_t* __restrict dst) {
  if (cols < nr || kb < kpad) std::fill(dst, dst + nr * kpad, uint16_t(0));
  if (B.trans) {
    const int64_t even_kb = kb & ~int64_t(1);
    int64_t j = 0;
    if constexpr (std::is_same_v<T, bf16>) {
      // Four columns at a time: a 4 x 4 block of pairs (32-bit words) transposed in registers
      // (SSE2) and stored as four runs of four words (both layouts keep the pairs of four
      // consecutive columns, from a multiple of four, side by side).
      for (; j + 4 <= cols; j += 4) {
        const bf16* r[4];
        for (int i = 0; i < 4; ++i) r[i] = B.row(j0 + j + i) + p0;
        int64_t p = 0;
        for (; p + 8 <= even_kb; p += 8) {
          __m128 w0 = _mm_castsi128_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(r[0] + p)));
          __m128 w1 = _mm_castsi128_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(r[1] + p)));
          __m128 w2 = _mm_castsi128_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(r[2] + p)));
          __m128 w3 = _mm_castsi128_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(r[3] + p)));
          _MM_TRANSPOSE4_PS(w0, w1, w2, w3);  // now w_i: pair p/2 + i of the four columns
          _mm_storeu_ps(reinterpret_cast<float*>(dst + bf16_b_slot(L, nr, p, j)), w0);
          _mm_storeu_ps(reinterpret_cast<float*>(dst + bf16_b_slot(L, nr, p + 2, j)), w1);
          _mm_storeu_ps(reinterpret_cast<float*>(dst + bf16_b_slot(L, nr, p + 4, j)), w2);
          _mm_storeu_ps(reinterpret_cast<float*>(dst + bf16_b_slot(L, nr, p + 6, j)), w3);
        }
        for (; p < even_kb; p += 2)
          for (int i = 0; i < 4; ++i) copy_pair(r[i] + p, dst + bf16_b_slot(L, nr, p, j + i));
        if (even_kb < kb)
          for (int i = 0; i < 4; ++i) dst[bf16_b_slot(L, nr, even_kb, j + i)] = r[i][even_kb].bits;
      }
    }
    for (; j < cols; ++j) {
      const T* __restrict src = B.row(j0 + j) + p0;
      for (int64_t p = 0; p < kb; ++p) dst[bf16_b_slot(L, nr, p, j)] = bits_of(src[p]);
    }
    return;
  }
  // In both layouts the pairs of 16 consecutive columns are 32 contiguous values.
  for (int64_t p = 0; p < kb; p += 2) {
    const T* __restrict even = B.row(p0 + p) + j0;
    const T* __restrict odd = p + 1 < kb ? B.row(p0 + p + 1) + j0 : nullptr;
    for (int64_t j = 0; j < cols; j += 16) {
      uint16_t* __restrict d = dst + bf16_b_slot(L, nr, p, j);
      const int64_t len = std::min<int64_t>(16, cols - j);
      if (odd) {
        interleave(even + j, odd + j, len, d);
      } else {
        for (int64_t q = 0; q < len; ++q) d[2 * q] = bits_of(even[j + q]);
      }
    }
  }
}

AlignedScratch<uint16_t>& scratch(int which) {
  static thread_local AlignedScratch<uint16_t> buffers[2];
  return buffers[which];
}

// B's block is every sliver of the thread's columns up to this size (in L3), so that each
// value of A is packed once per pass of k (a smaller B block would repack A once per block).
// Each B sliver is then loaded into L1 once per block of A (the kernel's a_block_bytes, in
// L2) and used by every A sliver of the block.
constexpr int64_t kBBlockBytes = 8 * 1024 * 1024;
// Multiply-adds that cost as much as packing one value, per road: what the grid weighs
// packing with (vdpbf16ps: 32 per 512-bit instruction; an AMX tile product: far more).
constexpr double kMacsPerPackedValue[3] = {8.0, 32.0, 256.0};

struct Grid {
  int tm, tn;
};

Grid grid_for(int threads, int64_t row_tiles, int64_t slivers, int64_t k,
              const Bf16MicroKernel& uk, Bf16Road road) {
  Grid best{threads, 1};
  double best_cost = -1;
  for (int tm = threads; tm >= 1; --tm) {
    if (threads % tm) continue;
    const int tn = threads / tm;
    const double rows = double(ceil_div(row_tiles, tm) * uk.mr);
    const double cols = double(ceil_div(slivers, tn) * uk.nr);
    const double cost = double(k) * (rows * cols / kMacsPerPackedValue[int(road)] + rows + cols);
    if (best_cost < 0 || cost < best_cost) best = {tm, tn}, best_cost = cost;
  }
  return best;
}

template <Bf16Layout L, typename TA, typename TB>
void run_kernel(const Bf16MicroKernel& uk, Bf16Road road, const OpView<TA>& A,
                const OpView<TB>& B, int64_t m, int64_t n, int64_t k, float alpha, float beta,
                float* c, int64_t ldc) {
  const int mr = uk.mr, nr = uk.nr;
  const int64_t passes = ceil_div(k, uk.kc_max);
  const int64_t kc = round_up(ceil_div(k, passes), uk.kstep);
  const int64_t row_tiles = ceil_div(m, mr), slivers = ceil_div(n, nr);
  const int64_t a_tiles = std::max<int64_t>(1, uk.a_block_bytes / (2 * mr * kc));
  const int64_t b_slivers = std::max<int64_t>(1, kBBlockBytes / (2 * nr * kc));
  const int threads = team_for(Work::gemm, m * n * k / 4, row_tiles * slivers);
  const Grid grid = grid_for(threads, row_tiles, slivers, k, uk, road);

  const auto body = [&](int tid) {
    const int ti = tid / grid.tn, tj = tid % grid.tn;
    int64_t r0, r1, s0, s1;
    split_range(row_tiles, grid.tm, ti, &r0, &r1);
    split_range(slivers, grid.tn, tj, &s0, &s1);
    if (r0 >= r1 || s0 >= s1) return;
    uint16_t* const apack = scratch(0).get(static_cast<size_t>(a_tiles * mr * kc));
    uint16_t* const bpack = scratch(1).get(static_cast<size_t>(b_slivers * nr * kc));
    if (uk.prepare) uk.prepare();
    for (int64_t sb = s0; sb < s1; sb += b_slivers) {
      const int64_t se = std::min(s1, sb + b_slivers);
      for (int64_t pc = 0; pc < k; pc += kc) {
        const int64_t kb = std::min(kc, k - pc), kpad = round_up(kb, uk.kstep);
        const float beta_pass = pc == 0 ? beta : 1.0f;
        for (int64_t s = sb; s < se; ++s)
          pack_b_sliver<L>(B, s * nr, static_cast<int>(std::min<int64_t>(nr, n - s * nr)), pc, kb,
                        kpad, nr, bpack + (s - sb) * nr * kpad);
        for (int64_t rb = r0; rb < r1; rb += a_tiles) {
          const int64_t re = std::min(r1, rb + a_tiles);
          for (int64_t t = rb; t < re; ++t)
            pack_a_sliver<L>(A, t * mr, static_cast<int>(std::min<int64_t>(mr, m - t * mr)), pc,
                             kb, kpad, mr, apack + (t - rb) * mr * kpad);
          for (int64_t s = sb; s < se; ++s) {
            const int cols = static_cast<int>(std::min<int64_t>(nr, n - s * nr));
            for (int64_t t = rb; t < re; ++t)
              uk.run(kpad, apack + (t - rb) * mr * kpad, bpack + (s - sb) * nr * kpad,
                     c + t * mr * ldc + s * nr, ldc, alpha, beta_pass,
                     static_cast<int>(std::min<int64_t>(mr, m - t * mr)), cols);
          }
        }
      }
    }
  };
  if (threads <= 1) {
    body(0);
    return;
  }
  // A smaller team than asked for (thread limits) leaves rectangles nobody computes: then
  // the members take the grid's rectangles in turn.
#pragma omp parallel num_threads(threads)
  for (int t = omp_get_thread_num(); t < threads; t += omp_get_num_threads()) body(t);
}

// Neither AVX512_BF16 nor AMX: round the operands to bfloat16, widen them back, and run the
// float32 GEMM (the same products, the float32 kernels' speed).
template <typename TA, typename TB>
void run_float32(const OpView<TA>& A, const OpView<TB>& B, int64_t m, int64_t n, int64_t k,
                 float alpha, float beta, float* c, int64_t ldc) {
  std::vector<float> wa(static_cast<size_t>(m * k)), wb(static_cast<size_t>(k * n));
  for (int64_t i = 0; i < m; ++i)
    for (int64_t p = 0; p < k; ++p) wa[i * k + p] = bf16_to_float(bf16{A.at(i, p)});
  for (int64_t p = 0; p < k; ++p)
    for (int64_t j = 0; j < n; ++j) wb[p * n + j] = bf16_to_float(bf16{B.at(p, j)});
  gemm<float>(false, false, m, n, k, alpha, wa.data(), k, wb.data(), n, beta, c, ldc);
}

const Bf16MicroKernel& kernel_of(Bf16Road road) {
  static const Bf16MicroKernel avx512 = bf16_kernel_avx512_bf16();
  static const Bf16MicroKernel amx = bf16_kernel_amx();
  return road == Bf16Road::amx ? amx : avx512;
}

}  // namespace

Bf16Road bf16_cpu_road() {
  static const Bf16Road road = cpu_has_amx_bf16()      ? Bf16Road::amx
                               : cpu_has_avx512_bf16() ? Bf16Road::avx512_bf16
                                                       : Bf16Road::float32;
  return road;
}

void check_bf16_env() {
  level_from_env("MINIGRAD_BF16_KERNEL", kRoadNames, 3, static_cast<int>(bf16_cpu_road()));
}

Bf16Road bf16_active_road() {
  static const Bf16Road road = [] {
    // Both kernels need AVX-512: MINIGRAD_ISA=avx2 (an AVX2-only CPU, as tests and the
    // benchmark emulate it) has neither.
    if (active_isa() != Isa::avx512) return Bf16Road::float32;
    return static_cast<Bf16Road>(active_level_from_env("MINIGRAD_BF16_KERNEL", kRoadNames, 3,
                                                       static_cast<int>(bf16_cpu_road())));
  }();
  return road;
}

const char* bf16_road_name(Bf16Road road) { return kRoadNames[static_cast<int>(road)]; }

namespace {

// The three roads on views of A and B.
template <typename TA, typename TB>
void gemm_views(const OpView<TA>& A, const OpView<TB>& B, int64_t m, int64_t n, int64_t k,
                float alpha, float beta, float* c, int64_t ldc) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0 || alpha == 0.0f) {  // C = beta * C, as the float32 GEMM does
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) c[i * ldc + j] = beta == 0.0f ? 0.0f : beta * c[i * ldc + j];
    return;
  }
  const Bf16Road road = bf16_active_road();
  if (road == Bf16Road::float32)
    run_float32(A, B, m, n, k, alpha, beta, c, ldc);
  else if (kernel_of(road).layout == Bf16Layout::tiles)
    run_kernel<Bf16Layout::tiles>(kernel_of(road), road, A, B, m, n, k, alpha, beta, c, ldc);
  else
    run_kernel<Bf16Layout::pairs>(kernel_of(road), road, A, B, m, n, k, alpha, beta, c, ldc);
}

}  // namespace

template <typename TA, typename TB>
void gemm_bf16(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
               const TA* a, int64_t lda, const TB* b, int64_t ldb, float beta, float* c,
               int64_t ldc) {
  gemm_views(OpView<TA>{a, lda, trans_a}, OpView<TB>{b, ldb, trans_b}, m, n, k, alpha, beta, c,
             ldc);
}

void gemm_bf16_rows(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                    const bf16* a, int64_t lda, const bf16* b, const int64_t* b_rows, float beta,
                    float* c, int64_t ldc) {
  gemm_views(OpView<bf16>{a, lda, trans_a}, OpView<bf16>{b, 0, trans_b, b_rows}, m, n, k, alpha,
             beta, c, ldc);
}

#define MG_INSTANTIATE(TA, TB)                                                                   \
  template void gemm_bf16<TA, TB>(bool, bool, int64_t, int64_t, int64_t, float, const TA*,      \
                                  int64_t, const TB*, int64_t, float, float*, int64_t);
MG_INSTANTIATE(bf16, bf16)
MG_INSTANTIATE(bf16, float)
MG_INSTANTIATE(float, bf16)
MG_INSTANTIATE(float, float)
#undef MG_INSTANTIATE

}  // namespace mg
