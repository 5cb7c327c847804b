// Packed, cache-blocked GEMM driver (GotoBLAS/BLIS loop order).
//
//   for jc in N by NC:           B panel of NC columns
//     for pc in K by KC:         pack op(B)[pc:pc+KC, jc:jc+NC] into NR-wide slivers (shared, L3)
//       for ic in M by MC:       pack op(A)[ic:ic+MC, pc:pc+KC] into MR-tall slivers (per thread, L2)
//         for jr:                one B sliver (KC x NR) stays in L1 ...
//           for ir:              ... while the micro-kernel sweeps the A slivers over it
//
// Threads split C two ways at once: a tm x tn grid of rectangles (rows in MR steps, columns
// in NR slivers), chosen per shape, so a product with few rows (a conv layer's 6 or 16
// output channels against tens of thousands of pixels) still uses every core. The team packs
// each B panel together; each thread packs the A rows it owns. Small products skip the team
// (one thread) and, when B is not transposed, read B in place instead of packing it.
// Transposed operands are handled by the packing routines, which read either orientation.
//
// Tall-k products with a small C (A not transposed, B transposed: a convolution's weight
// gradient, dY @ cols^T) take another road: packing would move as much data as they
// compute, and a single C tile gives the grid nothing to split. The dot-product kernel reads
// the rows of A and B in place, and k is split into parts whose partial sums are added in
// part order, so threads share the work without changing a single bit of the result.
#include "gemm/gemm.h"

#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>

#include "dispatch.h"
#include "gemm/ukernel.h"
#include "memory.h"
#include "parallel.h"

namespace mg {
namespace {

// Cache blocking, from the byte budgets of the ISA's micro-kernel table (csrc/isa/<isa>.h;
// all three ISAs use the same ones, sized for a Zen 5 core: 48 KiB L1d, 1 MiB L2, shared L3):
//   KC: the depth of one pass. Each pass loads and stores every C tile once, so deeper passes
//       pay less for C; at KC x NR = 64 KiB the B sliver streams from L2 rather than sitting
//       in L1, which the prefetchers sustain (measured: KC 512 beats 256 by ~8% at n = 2048).
//   MC x KC of A (one thread's packed block) stays in L2 (~480 KiB, room for B slivers).
//   KC x NC of B (the panel the team shares) is ~4 MiB of the shared L3.
struct Blocking {
  int64_t mc, kc, nc;
};

template <typename T>
Blocking blocking_for(const GemmMicroKernel<T>& uk) {
  const int64_t elem = sizeof(T);
  const int64_t kc = uk.cache.b_sliver_bytes / (uk.nr * elem);
  const int64_t mc =
      std::max<int64_t>(uk.mr, uk.cache.a_block_bytes / (kc * elem) / uk.mr * uk.mr);
  const int64_t nc =
      std::max<int64_t>(uk.nr, uk.cache.b_panel_bytes / (kc * elem) / uk.nr * uk.nr);
  return {mc, kc, nc};
}

// op(B) panels up to this size (not transposed) are read in place rather than packed.
constexpr int64_t kInPlaceBBytes = 128 * 1024;

template <typename T>
const GemmMicroKernel<T>& ukr() {
  return isa_table<GemmMicroKernel<T>>();
}

template <typename T>
const GemmDotKernel<T>& dot_ukr() {
  return isa_table<GemmDotKernel<T>>();
}

template <typename T>
AlignedScratch<T>& a_scratch() {
  static thread_local AlignedScratch<T> s;
  return s;
}
template <typename T>
AlignedScratch<T>& b_scratch() {
  static thread_local AlignedScratch<T> s;
  return s;
}
template <typename T>
AlignedScratch<T>& sum_scratch() {
  static thread_local AlignedScratch<T> s;
  return s;
}

// Packing reads a transposed-for-the-layout operand in runs of this many values.
constexpr int64_t kChunk = 16;

// Packs rows [i0, i0+mb) x cols [p0, p0+kb) of op(A) into MR-tall slivers, zero-padded: the
// layout PackedLayout (gemm.h) describes to code that writes A straight into it.
template <typename T>
void pack_a(const T* a, int64_t lda, bool trans, int64_t i0, int64_t mb, int64_t p0, int64_t kb,
            int mr, T* dst) {
  for (int64_t is = 0; is < mb; is += mr) {
    const int64_t rows = std::min<int64_t>(mr, mb - is);
    T* d = dst + is * kb;
    if (trans) {
      for (int64_t p = 0; p < kb; ++p) {
        const T* src = a + (p0 + p) * lda + i0 + is;  // contiguous along i
        for (int64_t r = 0; r < rows; ++r) d[p * mr + r] = src[r];
        for (int64_t r = rows; r < mr; ++r) d[p * mr + r] = T(0);
      }
    } else {
      // In chunks of kChunk columns: each source row is read contiguously while the few
      // destination lines being filled stay in L1 (a whole row at a time would sweep them out).
      for (int64_t q = 0; q < kb; q += kChunk) {
        const int64_t len = std::min<int64_t>(kChunk, kb - q);
        for (int64_t r = 0; r < rows; ++r) {
          const T* src = a + (i0 + is + r) * lda + p0 + q;
          for (int64_t p = 0; p < len; ++p) d[(q + p) * mr + r] = src[p];
        }
      }
      for (int64_t r = rows; r < mr; ++r)
        for (int64_t p = 0; p < kb; ++p) d[p * mr + r] = T(0);
    }
  }
}

// Packs the NR-wide sliver starting at column j0 (width nb <= NR), rows [p0, p0+kb) of op(B).
template <typename T>
void pack_b_sliver(const T* b, int64_t ldb, bool trans, int64_t p0, int64_t kb, int64_t j0,
                   int64_t nb, int nr, T* dst) {
  if (!trans) {
    for (int64_t p = 0; p < kb; ++p) {
      const T* src = b + (p0 + p) * ldb + j0;
      T* d = dst + p * nr;
      for (int64_t c = 0; c < nb; ++c) d[c] = src[c];
      for (int64_t c = nb; c < nr; ++c) d[c] = T(0);
    }
  } else {
    // Columns of op(B) are rows of B: read each contiguously, kChunk values at a time, so
    // the kChunk destination rows being filled stay in L1.
    for (int64_t q = 0; q < kb; q += kChunk) {
      const int64_t len = std::min<int64_t>(kChunk, kb - q);
      for (int64_t c = 0; c < nb; ++c) {
        const T* src = b + (j0 + c) * ldb + p0 + q;
        for (int64_t p = 0; p < len; ++p) dst[(q + p) * nr + c] = src[p];
      }
    }
    for (int64_t p = 0; p < kb; ++p)
      for (int64_t c = nb; c < nr; ++c) dst[p * nr + c] = T(0);
  }
}

// Packs slivers [s0, s1) of the panel starting at column j0 (nb columns wide) into dst, one
// sliver after another. B not transposed is read row by row across all the slivers: one long
// contiguous run per row of B, rather than nr values from each of kb rows per sliver, which
// is kb concurrent streams that the hardware prefetchers cannot follow (a conv layer's
// forward product, 16 x 131072 x 144, ran ~25% slower that way; square sizes are unchanged).
template <typename T>
void pack_b_slivers(const T* b, int64_t ldb, bool trans, int64_t p0, int64_t kb, int64_t j0,
                    int64_t nb, int64_t s0, int64_t s1, int nr, T* dst) {
  if (trans) {
    for (int64_t s = s0; s < s1; ++s)
      pack_b_sliver(b, ldb, trans, p0, kb, j0 + s * nr, std::min<int64_t>(nr, nb - s * nr), nr,
                    dst + (s - s0) * nr * kb);
    return;
  }
  for (int64_t p = 0; p < kb; ++p) {
    const T* src = b + (p0 + p) * ldb + j0;
    for (int64_t s = s0; s < s1; ++s) {
      const int64_t width = std::min<int64_t>(nr, nb - s * nr);
      T* d = dst + (s - s0) * nr * kb + p * nr;
      for (int64_t c = 0; c < width; ++c) d[c] = src[s * nr + c];
      for (int64_t c = width; c < nr; ++c) d[c] = T(0);
    }
  }
}

template <typename T>
void scale_c(int64_t m, int64_t n, T beta, T* c, int64_t ldc) {
  for (int64_t i = 0; i < m; ++i) {
    T* ci = c + i * ldc;
    if (beta == T(0))
      std::fill(ci, ci + n, T(0));
    else
      for (int64_t j = 0; j < n; ++j) ci[j] *= beta;
  }
}

template <typename T>
struct Problem {
  bool ta, tb;
  int64_t m, n, k;
  T alpha;
  const T* a;
  int64_t lda;
  const T* b;
  int64_t ldb;
  T beta;
  T* c;
  int64_t ldc;
  bool stream = false;  // full tiles store C non-temporally (see gemm_maybe_streamed)
};

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Splits `total` into the fewest blocks of at most `max_block`, of nearly equal size rounded
// up to `unit` (so that, e.g., K = 400 becomes 200 + 200 rather than 384 + 16).
inline int64_t even_block(int64_t total, int64_t max_block, int64_t unit) {
  const int64_t blocks = ceil_div(total, max_block);
  return std::min(max_block, ceil_div(ceil_div(total, blocks), unit) * unit);
}

// The tm x tn thread grid for an m x n product: the one whose busiest thread has the least
// work (rows x columns x k, plus packing its own rows of A, plus the two barriers around
// each shared B panel when rows are split); ties go to splitting rows, which packs no A
// twice. The barriers matter for short products with a wide C (144 x 131072 x 16: 64
// panels), and more so when the cores are shared: a barrier waits for a descheduled thread.
struct Grid {
  int tm, tn;
};
constexpr double kBarrierMacs = double(int64_t(1) << 18);

inline Grid grid_for(int nt, int64_t m, int64_t n, int64_t k, int mr, int nr,
                     int64_t shared_panels) {
  Grid best{nt, 1};
  double best_cost = -1;
  for (int tm = nt; tm >= 1; --tm) {
    if (nt % tm) continue;
    const int tn = nt / tm;
    const int64_t rows = std::min(m, ceil_div(ceil_div(m, mr), tm) * mr);
    const int64_t cols = std::min(n, ceil_div(ceil_div(n, nr), tn) * nr);
    const double cost = double(k) * (double(rows) * double(cols) + 32.0 * double(rows)) +
                        (tm > 1 ? 2.0 * kBarrierMacs * double(shared_panels) : 0.0);
    if (best_cost < 0 || cost < best_cost) best = {tm, tn}, best_cost = cost;
  }
  return best;
}

// How the micro-kernels get op(B):
enum class BSource {
  in_place,  // read from B itself (small, not transposed): no packing at all
  own,       // each thread packs the slivers it uses: no synchronisation (threads split columns only)
  shared,    // the team packs each panel together, between two barriers (threads split rows)
};

// Thread (ti, tj) of a tm x tn grid (team member `tid` of `nt`) computes its rectangle of C.
// Every member runs the same jc/pc loops, so the barriers around a shared B panel match.
template <typename T>
void macro_kernel(const Problem<T>& p, const GemmMicroKernel<T>& uk, const Blocking& blk,
                  BSource source, T* shared_b, int tid, int nt, Grid grid) {
  const int mr = uk.mr, nr = uk.nr;
  const int ti = tid / grid.tn, tj = tid % grid.tn;
  int64_t r0, r1;
  split_range(ceil_div(p.m, mr), grid.tm, ti, &r0, &r1);
  const int64_t row_begin = r0 * mr, row_end = std::min(p.m, r1 * mr);
  const int64_t kc = even_block(p.k, blk.kc, 4);
  const int64_t nc = even_block(p.n, blk.nc, nr);
  const int64_t mc = row_end > row_begin ? even_block(row_end - row_begin, blk.mc, mr) : mr;
  T* apack = a_scratch<T>().get(static_cast<size_t>(mc * kc + kc * nr));
  T* edge_b = apack + mc * kc;  // an edge sliver of B read in place still needs padding
  T* own_b = source == BSource::own
                 ? b_scratch<T>().get(static_cast<size_t>(kc * nr * ceil_div(ceil_div(nc, nr), grid.tn)))
                 : nullptr;

  for (int64_t jc = 0; jc < p.n; jc += nc) {
    const int64_t nb = std::min(nc, p.n - jc);
    const int64_t slivers = ceil_div(nb, nr);
    int64_t s_begin, s_end;
    split_range(slivers, grid.tn, tj, &s_begin, &s_end);
    for (int64_t pc = 0; pc < p.k; pc += kc) {
      const int64_t kb = std::min(kc, p.k - pc);
      const T beta = pc == 0 ? p.beta : T(1);
      if (source == BSource::shared) {
        int64_t b0, b1;
        split_range(slivers, nt, tid, &b0, &b1);
        pack_b_slivers(p.b, p.ldb, p.tb, pc, kb, jc, nb, b0, b1, nr, shared_b + b0 * nr * kb);
#pragma omp barrier
      } else if (source == BSource::own) {
        pack_b_slivers(p.b, p.ldb, p.tb, pc, kb, jc, nb, s_begin, s_end, nr, own_b);
      }
      for (int64_t ic = row_begin; ic < row_end; ic += mc) {
        const int64_t mb = std::min(mc, row_end - ic);
        pack_a(p.a, p.lda, p.ta, ic, mb, pc, kb, mr, apack);
        for (int64_t s = s_begin; s < s_end; ++s) {
          const int64_t jr = s * nr;
          const int nr_eff = static_cast<int>(std::min<int64_t>(nr, nb - jr));
          const T* bs = edge_b;
          int64_t ldbs = nr;
          if (source == BSource::shared) {
            bs = shared_b + s * nr * kb;
          } else if (source == BSource::own) {
            bs = own_b + (s - s_begin) * nr * kb;
          } else if (nr_eff == nr) {
            bs = p.b + pc * p.ldb + jc + jr, ldbs = p.ldb;
          } else {
            pack_b_sliver(p.b, p.ldb, p.tb, pc, kb, jc + jr, nr_eff, nr, edge_b);
          }
          for (int64_t ir = 0; ir < mb; ir += mr) {
            const int mr_eff = static_cast<int>(std::min<int64_t>(mr, mb - ir));
            const bool full = mr_eff == mr && nr_eff == nr;
            (p.stream && full ? uk.run_stream : uk.run)(kb, apack + ir * kb, bs, ldbs,
                                                        p.c + (ic + ir) * p.ldc + jc + jr, p.ldc,
                                                        p.alpha, beta, mr_eff, nr_eff);
          }
        }
      }
      // Nobody repacks the B panel while another thread still reads it (the end of the
      // parallel region is a barrier too, so the last panel needs none).
      if (source == BSource::shared && (pc + kc < p.k || jc + nc < p.n)) {
#pragma omp barrier
      }
    }
  }
  // Non-temporal stores are weakly ordered: make them visible before C is handed back.
  if (p.stream) _mm_sfence();
}

template <typename T>
void gemm_driver(const Problem<T>& p, int threads);

// A short product (small k) with a large C is bound by writing C: an ordinary store first
// reads each line of C into the cache, doubling the memory traffic for data that will be
// evicted before anyone reads it again. With beta == 0 and C well beyond the cache, full tiles
// store C non-temporally instead. Their rows must start on 64-byte lines: the few columns
// before the first such line run as a product of their own (the split changes no sum).
constexpr int64_t kStreamMinBytes = int64_t(16) << 20;
constexpr int64_t kStreamMaxK = 64;

template <typename T>
void gemm_maybe_streamed(Problem<T> p, int threads) {
  const GemmMicroKernel<T>& uk = ukr<T>();
  constexpr int64_t line = 64 / static_cast<int64_t>(sizeof(T));
  const auto addr = reinterpret_cast<std::uintptr_t>(p.c);
  if (!uk.run_stream || p.beta != T(0) || p.k > kStreamMaxK || p.ldc % line != 0 ||
      addr % sizeof(T) != 0 || p.m * p.n * static_cast<int64_t>(sizeof(T)) < kStreamMinBytes) {
    gemm_driver(p, threads);
    return;
  }
  const int64_t head = static_cast<int64_t>((64 - addr % 64) % 64 / sizeof(T));
  if (head > 0) {
    Problem<T> first = p;
    first.n = head;
    gemm_driver(first, 1);
    p.c += head;
    p.b += p.tb ? head * p.ldb : head;
    p.n -= head;
  }
  p.stream = true;
  gemm_driver(p, threads);
}

template <typename T>
void gemm_driver(const Problem<T>& p, int threads) {
  const GemmMicroKernel<T>& uk = ukr<T>();
  const Blocking blk = blocking_for(uk);
  const bool in_place = !p.tb && p.k * p.n * static_cast<int64_t>(sizeof(T)) <= kInPlaceBBytes;
  const int64_t panels = in_place ? 0
                                  : ceil_div(p.n, even_block(p.n, blk.nc, uk.nr)) *
                                        ceil_div(p.k, even_block(p.k, blk.kc, 4));
  const Grid grid =
      threads > 1 ? grid_for(threads, p.m, p.n, p.k, uk.mr, uk.nr, panels) : Grid{1, 1};
  const BSource source = in_place ? BSource::in_place
                         : grid.tm > 1 ? BSource::shared
                                       : BSource::own;
  T* shared_b = nullptr;
  if (source == BSource::shared) {
    const int64_t kc = even_block(p.k, blk.kc, 4), nc = even_block(p.n, blk.nc, uk.nr);
    shared_b = b_scratch<T>().get(static_cast<size_t>(kc * ceil_div(nc, uk.nr) * uk.nr));
  }
  if (threads <= 1) {
    macro_kernel(p, uk, blk, source, shared_b, 0, 1, grid);
    return;
  }
#pragma omp parallel num_threads(threads)
  {
    // A team smaller than asked for (thread limits) gets a grid of its own size; with one
    // row of threads B is packed per thread, so the shared buffer is never needed then.
    const int nt = omp_get_num_threads();
    if (nt == threads) {
      macro_kernel(p, uk, blk, source, shared_b, omp_get_thread_num(), nt, grid);
    } else {
      const Grid g{1, nt};
      macro_kernel(p, uk, blk, in_place ? BSource::in_place : BSource::own, shared_b,
                   omp_get_thread_num(), nt, g);
    }
  }
}

// ---- The dot-product road (tall k, small C) ----
//
// k is cut into chunks of kDotChunkBytes per row: a block of B rows' chunks stays in L1 while
// the kernel sweeps the rows of A (whose chunks stay in L2) against it. Consecutive chunks
// form parts, at least kMinChunksPerPart each and at most kMaxParts of them; each part adds
// its chunks, in order, into its own m x n block of sums, and C gets the parts' blocks added
// in part order. The parts depend on the shape only, never on the thread count.
constexpr int64_t kDotChunkBytes = 8 * 1024;
constexpr int64_t kMinChunksPerPart = 4;
constexpr int64_t kMaxParts = 16;

template <typename T>
constexpr int64_t dot_chunk() {
  return kDotChunkBytes / static_cast<int64_t>(sizeof(T));
}

// The dot road pays off when k is long against both sides of C and one side is small (the
// packed kernel's 12-row tiles then run mostly as edge tiles, and packing B costs as much as
// using it). Measured on Zen 5, one thread: 2-4x faster than packing for the conv weight
// gradients of LeNet-5 and ResNet-8 (m = 6..64, n = 16..576, k = 6400..131072), slower
// for 128 x 128 x 2048 and 100 x 300 x 3000.
template <typename T>
bool use_dot(bool ta, bool tb, int64_t m, int64_t n, int64_t k) {
  return !ta && tb && std::min(m, n) <= 64 && k >= 8 * std::max(m, n) && k >= dot_chunk<T>() / 2;
}

template <typename T>
int64_t dot_parts(int64_t k) {
  const int64_t chunks = ceil_div(k, dot_chunk<T>());
  return std::max<int64_t>(1, std::min(kMaxParts, chunks / kMinChunksPerPart));
}

// Runs fn() in a team of its own of `threads` threads. The k-split roads share their items
// with orphaned loops, which bind to the innermost enclosing parallel region: a caller's own
// team (a convolution driver runs one GEMM per thread, each with its own operands) would split
// one call's items among threads that are running other calls. With a team of their own the
// loops see only this call (one thread: they run serially).
template <typename F>
void on_own(int threads, F fn) {
#pragma omp parallel num_threads(threads)
  fn();
}

// C = alpha * (sums_0 + sums_1 + ...) + beta * C, the parts' m x n blocks added in part
// order. An orphaned loop: shared by the team of the region it runs in (on_own).
template <typename T>
void add_parts(const Problem<T>& p, int64_t parts, const T* sums) {
  const int64_t mn = p.m * p.n;
#pragma omp for schedule(static)
  for (int64_t i = 0; i < p.m; ++i) {
    T* ci = p.c + i * p.ldc;
    for (int64_t j = 0; j < p.n; ++j) {
      T v = sums[i * p.n + j];
      for (int64_t q = 1; q < parts; ++q) v += sums[q * mn + i * p.n + j];
      ci[j] = p.beta == T(0) ? p.alpha * v : p.alpha * v + p.beta * ci[j];
    }
  }
}

// The work items: `parts` x `groups` (groups of columns of C), shared among the team.
template <typename T>
void dot_items(const Problem<T>& p, const GemmDotKernel<T>& dk, int64_t parts, int64_t groups,
               T* sums) {
  const int64_t kc = dot_chunk<T>(), chunks = ceil_div(p.k, kc);
  const int64_t mn = p.m * p.n, jblocks = ceil_div(p.n, dk.nr);
#pragma omp for schedule(static)
  for (int64_t item = 0; item < parts * groups; ++item) {
    const int part = static_cast<int>(item / groups), group = static_cast<int>(item % groups);
    int64_t c0, c1, jb0, jb1;
    split_range(chunks, static_cast<int>(parts), part, &c0, &c1);
    split_range(jblocks, static_cast<int>(groups), group, &jb0, &jb1);
    const int64_t j0 = jb0 * dk.nr, j1 = std::min(p.n, jb1 * dk.nr);
    T* s = sums + part * mn;
    for (int64_t i = 0; i < p.m; ++i) std::fill(s + i * p.n + j0, s + i * p.n + j1, T(0));
    for (int64_t c = c0; c < c1; ++c) {
      const int64_t pc = c * kc, kb = std::min(kc, p.k - pc);
      gemm_dot_accumulate(p.m, j1 - j0, kb, p.a + pc, p.lda, p.b + j0 * p.ldb + pc, p.ldb, s + j0,
                          p.n);
    }
  }
  // (the implicit barrier of the loop above: every part's sums are complete)
  add_parts(p, parts, sums);
}

template <typename T>
int64_t dot_groups(int64_t n, int64_t parts, int threads) {
  return std::min(ceil_div(n, dot_ukr<T>().nr), ceil_div(threads, parts));
}

template <typename T>
void dot_driver(const Problem<T>& p, int threads) {
  const GemmDotKernel<T>& dk = dot_ukr<T>();
  const int64_t parts = dot_parts<T>(p.k);
  const int64_t groups = dot_groups<T>(p.n, parts, threads);
  T* sums = sum_scratch<T>().get(static_cast<size_t>(parts * p.m * p.n));
  on_own(std::max(threads, 1), [&] { dot_items(p, dk, parts, groups, sums); });
}

// ---- k split on the packed road ----
//
// The other layouts of a tall-k product with very few tiles of C (one 6 x 25 tile: LeNet's
// first weight gradient with A transposed or B not) give the thread grid nothing to split.
// Then k is split into parts instead, each a packed product of its own into a block of sums,
// added in part order: the parts depend on the shape only, as on the dot road.
constexpr int64_t kMaxSplitTiles = 4;
constexpr int64_t kMinSplitPartK = 4096;

template <typename T>
int64_t k_split_parts(int64_t m, int64_t n, int64_t k) {
  const GemmMicroKernel<T>& uk = ukr<T>();
  if (ceil_div(m, uk.mr) * ceil_div(n, uk.nr) > kMaxSplitTiles || k < 8 * std::max(m, n)) return 1;
  return std::max<int64_t>(1, std::min(kMaxParts, k / kMinSplitPartK));
}

template <typename T>
void k_split_items(const Problem<T>& p, int64_t parts, T* sums) {
#pragma omp for schedule(static)
  for (int64_t q = 0; q < parts; ++q) {
    int64_t k0, k1;
    split_range(p.k, static_cast<int>(parts), static_cast<int>(q), &k0, &k1);
    Problem<T> part = p;
    part.k = k1 - k0;
    part.a = p.ta ? p.a + k0 * p.lda : p.a + k0;
    part.b = p.tb ? p.b + k0 : p.b + k0 * p.ldb;
    part.alpha = T(1);
    part.beta = T(0);
    part.c = sums + q * p.m * p.n;
    part.ldc = p.n;
    gemm_driver(part, 1);
  }
  add_parts(p, parts, sums);
}

template <typename T>
void k_split_driver(const Problem<T>& p, int64_t parts, int threads) {
  T* sums = sum_scratch<T>().get(static_cast<size_t>(parts * p.m * p.n));
  on_own(std::max(threads, 1), [&] { k_split_items(p, parts, sums); });
}

template <typename T>
int gemm_threads(bool ta, bool tb, int64_t m, int64_t n, int64_t k) {
  if (use_dot<T>(ta, tb, m, n, k)) {
    const int64_t items = dot_parts<T>(k) * ceil_div(n, dot_ukr<T>().nr);
    return team_for(Work::gemm, m * n * k, items);
  }
  if (const int64_t parts = k_split_parts<T>(m, n, k); parts > 1)
    return team_for(Work::gemm, m * n * k, parts);
  const GemmMicroKernel<T>& uk = ukr<T>();
  const int64_t tiles = ceil_div(m, uk.mr) * ceil_div(n, uk.nr);
  return team_for(Work::gemm, m * n * k, tiles);
}

template <typename T>
void gemm_with_threads(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha,
                       const T* a, int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc,
                       int threads) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0 || alpha == T(0)) {
    scale_c(m, n, beta, c, ldc);
    return;
  }
  const Problem<T> p{trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc};
  if (use_dot<T>(trans_a, trans_b, m, n, k))
    dot_driver(p, threads);
  else if (const int64_t parts = k_split_parts<T>(m, n, k); parts > 1)
    k_split_driver(p, parts, threads);
  else
    gemm_maybe_streamed(p, threads);
}

}  // namespace

template <typename T>
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a,
          int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc) {
  gemm_with_threads(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc,
                    m > 0 && n > 0 && k > 0 ? gemm_threads<T>(trans_a, trans_b, m, n, k) : 1);
}

// A batch of products each too small to keep the team busy runs one product per thread;
// otherwise the products run one after another, each using the team.
template <typename T>
void gemm_batched(bool trans_a, bool trans_b, int64_t batch, int64_t m, int64_t n, int64_t k,
                  T alpha, const T* a, int64_t lda, int64_t stride_a, const T* b, int64_t ldb,
                  int64_t stride_b, T beta, T* c, int64_t ldc, int64_t stride_c) {
  if (batch <= 0) return;
  const int per_item = m > 0 && n > 0 && k > 0 ? gemm_threads<T>(trans_a, trans_b, m, n, k) : 1;
  const int across = team_for(Work::gemm, batch * m * n * k, batch);
  // Across the batch when items cannot use the whole team, or when the batch divides evenly.
  const bool by_item = across > 1 && (per_item < across || batch % across == 0 ||
                                      batch >= 4 * static_cast<int64_t>(across));
  if (!by_item) {
    for (int64_t i = 0; i < batch; ++i)
      gemm_with_threads(trans_a, trans_b, m, n, k, alpha, a + i * stride_a, lda, b + i * stride_b,
                        ldb, beta, c + i * stride_c, ldc, per_item);
    return;
  }
#pragma omp parallel for num_threads(across) schedule(static)
  for (int64_t i = 0; i < batch; ++i)
    gemm_with_threads(trans_a, trans_b, m, n, k, alpha, a + i * stride_a, lda, b + i * stride_b,
                      ldb, beta, c + i * stride_c, ldc, 1);
}

template <typename T>
PackedLayout gemm_packed_layout(int64_t m, int64_t k) {
  const GemmMicroKernel<T>& uk = ukr<T>();
  return {m, k, even_block(std::max<int64_t>(k, 1), blocking_for(uk).kc, 4),
          ceil_div(m, uk.mr) * uk.mr, uk.mr};
}

// The macro-kernel's loops for one thread's whole C: each B sliver is read in place (an edge
// sliver, narrower than nr, is copied into a zero-padded one) and stays in L1 while the
// micro-kernel sweeps A's slivers over it.
template <typename T>
void gemm_packed_a(const PackedLayout& layout, const T* a, int64_t n, const T* b, int64_t ldb,
                   T beta, T* c, int64_t ldc) {
  const GemmMicroKernel<T>& uk = ukr<T>();
  const int64_t m = layout.m, k = layout.k, kc = layout.kc;
  if (m <= 0 || n <= 0) return;
  if (k <= 0) {
    scale_c(m, n, beta, c, ldc);
    return;
  }
  const int mr = uk.mr, nr = uk.nr;
  T* edge_b = b_scratch<T>().get(static_cast<size_t>(kc * nr));
  for (int64_t pc = 0; pc < k; pc += kc) {
    const int64_t kb = std::min(kc, k - pc);
    const T pass_beta = pc == 0 ? beta : T(1);
    const T* apanel = a + pc * layout.rows;
    for (int64_t jr = 0; jr < n; jr += nr) {
      const int nr_eff = static_cast<int>(std::min<int64_t>(nr, n - jr));
      const T* bs = b + pc * ldb + jr;
      int64_t ldbs = ldb;
      if (nr_eff < nr) {
        pack_b_sliver(b, ldb, false, pc, kb, jr, nr_eff, nr, edge_b);
        bs = edge_b, ldbs = nr;
      }
      for (int64_t ir = 0; ir < m; ir += mr)
        uk.run(kb, apanel + ir * kb, bs, ldbs, c + ir * ldc + jr, ldc, T(1), pass_beta,
               static_cast<int>(std::min<int64_t>(mr, m - ir)), nr_eff);
    }
  }
}

// A block of B's rows stays in L1 while the kernel sweeps the rows of A over it.
template <typename T>
void gemm_dot_accumulate(int64_t m, int64_t n, int64_t k, const T* a, int64_t lda, const T* b,
                         int64_t ldb, T* c, int64_t ldc) {
  const GemmDotKernel<T>& dk = dot_ukr<T>();
  for (int64_t j = 0; j < n; j += dk.nr) {
    const int cols = static_cast<int>(std::min<int64_t>(dk.nr, n - j));
    for (int64_t i = 0; i < m; i += dk.mr)
      dk.run(k, a + i * lda, lda, b + j * ldb, ldb, c + i * ldc + j, ldc,
             static_cast<int>(std::min<int64_t>(dk.mr, m - i)), cols);
  }
}

const char* gemm_impl_name() { return ukr<float>().name; }
const char* gemm_dot_impl_name() { return dot_ukr<float>().name; }

#define MG_INSTANTIATE(T)                                                                       \
  template void gemm<T>(bool, bool, int64_t, int64_t, int64_t, T, const T*, int64_t, const T*,  \
                        int64_t, T, T*, int64_t);                                               \
  template void gemm_batched<T>(bool, bool, int64_t, int64_t, int64_t, int64_t, T, const T*,    \
                                int64_t, int64_t, const T*, int64_t, int64_t, T, T*, int64_t,   \
                                int64_t);                                                       \
  template PackedLayout gemm_packed_layout<T>(int64_t, int64_t);                                \
  template void gemm_packed_a<T>(const PackedLayout&, const T*, int64_t, const T*, int64_t, T, T*, \
                                 int64_t);                                                      \
  template void gemm_dot_accumulate<T>(int64_t, int64_t, int64_t, const T*, int64_t, const T*,  \
                                       int64_t, T*, int64_t);
MG_INSTANTIATE(float)
MG_INSTANTIATE(double)
#undef MG_INSTANTIATE

}  // namespace mg
