// Packed, cache-blocked GEMM driver (GotoBLAS/BLIS loop order).
//
//   for jc in N by NC:           B panel of NC columns
//     for pc in K by KC:         pack op(B)[pc:pc+KC, jc:jc+NC] into NR-wide slivers (shared, L3)
//       for ic in M by MC:       pack op(A)[ic:ic+MC, pc:pc+KC] into MR-tall slivers (per thread, L2)
//         for jr, ir:            micro-kernel on an MR x NR tile (B sliver in L1, C in registers)
//
// Threads split the ic loop (each packs its own A block) after packing B together.
// Transposed operands are handled by the packing routines, which read either orientation.
#include "gemm/gemm.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "dispatch.h"
#include "gemm/ukernel.h"
#include "parallel.h"

namespace mg {
namespace {

template <typename T>
struct Blocking {
  int64_t mc, kc, nc;
};

template <typename T>
Blocking<T> blocking_for(const GemmMicroKernel<T>& uk) {
  // KC * NR * sizeof(T) stays in L1, MC * KC in L2, KC * NC in L3.
  const int64_t kc = sizeof(T) == 4 ? 384 : 256;
  const int64_t mc = uk.mr * (sizeof(T) == 4 ? 16 : 12);
  const int64_t nc = uk.nr * 128;
  return {mc, kc, nc};
}

template <typename T>
GemmMicroKernel<T> pick_ukr();
template <>
GemmMicroKernel<float> pick_ukr<float>() {
  switch (active_isa()) {
    case Isa::avx512: return avx512::sgemm_ukr();
    case Isa::avx2: return avx2::sgemm_ukr();
    default: return generic::sgemm_ukr();
  }
}
template <>
GemmMicroKernel<double> pick_ukr<double>() {
  switch (active_isa()) {
    case Isa::avx512: return avx512::dgemm_ukr();
    case Isa::avx2: return avx2::dgemm_ukr();
    default: return generic::dgemm_ukr();
  }
}

template <typename T>
const GemmMicroKernel<T>& ukr() {
  static const GemmMicroKernel<T> k = pick_ukr<T>();
  return k;
}

struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};
template <typename T>
std::unique_ptr<T[], FreeDeleter> aligned_buffer(int64_t count) {
  const size_t bytes = ((static_cast<size_t>(count) * sizeof(T) + 63) / 64) * 64;
  return std::unique_ptr<T[], FreeDeleter>(static_cast<T*>(std::aligned_alloc(64, bytes)));
}

// Packs rows [i0, i0+mb) x cols [p0, p0+kb) of op(A) into MR-tall slivers, zero-padded.
template <typename T>
void pack_a(const T* a, int64_t lda, bool trans, int64_t i0, int64_t mb, int64_t p0, int64_t kb,
            int mr, T* dst) {
  for (int64_t is = 0; is < mb; is += mr) {
    const int64_t rows = std::min<int64_t>(mr, mb - is);
    for (int64_t p = 0; p < kb; ++p) {
      T* d = dst + is * kb + p * mr;
      if (trans) {
        const T* src = a + (p0 + p) * lda + i0 + is;  // contiguous along i
        for (int64_t r = 0; r < rows; ++r) d[r] = src[r];
      } else {
        for (int64_t r = 0; r < rows; ++r) d[r] = a[(i0 + is + r) * lda + p0 + p];
      }
      for (int64_t r = rows; r < mr; ++r) d[r] = T(0);
    }
  }
}

// Packs the NR-wide sliver starting at column j0 (width nb <= NR), rows [p0, p0+kb) of op(B).
template <typename T>
void pack_b_sliver(const T* b, int64_t ldb, bool trans, int64_t p0, int64_t kb, int64_t j0,
                   int64_t nb, int nr, T* dst) {
  for (int64_t p = 0; p < kb; ++p) {
    T* d = dst + p * nr;
    if (!trans) {
      const T* src = b + (p0 + p) * ldb + j0;
      for (int64_t c = 0; c < nb; ++c) d[c] = src[c];
    } else {
      for (int64_t c = 0; c < nb; ++c) d[c] = b[(j0 + c) * ldb + p0 + p];
    }
    for (int64_t c = nb; c < nr; ++c) d[c] = T(0);
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

// One thread's share of a multiply; also used as the body of each team member.
template <typename T>
void gemm_blocked(bool ta, bool tb, int64_t m, int64_t n, int64_t k, T alpha, const T* a,
                  int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc, int nthreads) {
  const GemmMicroKernel<T>& uk = ukr<T>();
  const Blocking<T> blk = blocking_for(uk);
  const int mr = uk.mr, nr = uk.nr;
  const int64_t nc_max = std::min(blk.nc, ((n + nr - 1) / nr) * nr);
  const int64_t kc_max = std::min(blk.kc, k);
  auto bpack = aligned_buffer<T>(kc_max * nc_max);

#pragma omp parallel num_threads(nthreads)
  {
    auto apack = aligned_buffer<T>(blk.mc * kc_max);
    alignas(64) T tile[32 * 32];  // scratch for edge tiles (mr, nr <= 32)
    for (int64_t jc = 0; jc < n; jc += blk.nc) {
      const int64_t nb = std::min(blk.nc, n - jc);
      const int64_t slivers = (nb + nr - 1) / nr;
      for (int64_t pc = 0; pc < k; pc += blk.kc) {
        const int64_t kb = std::min(blk.kc, k - pc);
        const T beta_eff = pc == 0 ? beta : T(1);
#pragma omp for schedule(static)
        for (int64_t s = 0; s < slivers; ++s)
          pack_b_sliver(b, ldb, tb, pc, kb, jc + s * nr, std::min<int64_t>(nr, nb - s * nr), nr,
                        bpack.get() + s * nr * kb);
        // implicit barrier: B is packed
#pragma omp for schedule(dynamic, 1)
        for (int64_t ic = 0; ic < m; ic += blk.mc) {
          const int64_t mb = std::min(blk.mc, m - ic);
          pack_a(a, lda, ta, ic, mb, pc, kb, mr, apack.get());
          for (int64_t s = 0; s < slivers; ++s) {
            const int64_t jr = s * nr, nr_eff = std::min<int64_t>(nr, nb - jr);
            const T* bs = bpack.get() + s * nr * kb;
            for (int64_t ir = 0; ir < mb; ir += mr) {
              const int64_t mr_eff = std::min<int64_t>(mr, mb - ir);
              T* cij = c + (ic + ir) * ldc + jc + jr;
              const T* as = apack.get() + ir * kb;
              if (mr_eff == mr && nr_eff == nr) {
                uk.run(kb, as, bs, cij, ldc, alpha, beta_eff);
              } else {
                uk.run(kb, as, bs, tile, nr, alpha, T(0));
                for (int64_t i = 0; i < mr_eff; ++i)
                  for (int64_t j = 0; j < nr_eff; ++j) {
                    T& dst = cij[i * ldc + j];
                    dst = tile[i * nr + j] + (beta_eff == T(0) ? T(0) : beta_eff * dst);
                  }
              }
            }
          }
        }
        // implicit barrier: nobody repacks B while others still read it
      }
    }
  }
}

}  // namespace

template <typename T>
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a,
          int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0 || alpha == T(0)) {
    scale_c(m, n, beta, c, ldc);
    return;
  }
  const int64_t mc = blocking_for(ukr<T>()).mc;
  const int threads = threads_for((m + mc - 1) / mc, 1) > 1 && m * n * k >= (int64_t(1) << 18)
                          ? threads_for((m + mc - 1) / mc, 1)
                          : 1;
  gemm_blocked(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, threads);
}

template <typename T>
void gemm_batched(bool trans_a, bool trans_b, int64_t batch, int64_t m, int64_t n, int64_t k,
                  T alpha, const T* a, int64_t lda, int64_t stride_a, const T* b, int64_t ldb,
                  int64_t stride_b, T beta, T* c, int64_t ldc, int64_t stride_c) {
  for (int64_t i = 0; i < batch; ++i)
    gemm(trans_a, trans_b, m, n, k, alpha, a + i * stride_a, lda, b + i * stride_b, ldb, beta,
         c + i * stride_c, ldc);
}

const char* gemm_impl_name() { return ukr<float>().name; }

#define MG_INSTANTIATE(T)                                                                       \
  template void gemm<T>(bool, bool, int64_t, int64_t, int64_t, T, const T*, int64_t, const T*,  \
                        int64_t, T, T*, int64_t);                                               \
  template void gemm_batched<T>(bool, bool, int64_t, int64_t, int64_t, int64_t, T, const T*,    \
                                int64_t, int64_t, const T*, int64_t, int64_t, T, T*, int64_t,   \
                                int64_t);
MG_INSTANTIATE(float)
MG_INSTANTIATE(double)
#undef MG_INSTANTIATE

}  // namespace mg
