// Batch-norm driver: threads, reduction order and per-channel coefficients. The loops over
// data are the per-ISA span kernels (batchnorm.h, batchnorm_spans.inc).
//
// Two schedules, chosen by the channel count; both compute every channel's statistics from
// the same blocks merged in the same order, so their results are bit-identical:
//  - per channel (C large enough for the team): one thread owns a channel and runs its
//    reduction and then its element-wise pass while the channel is still in L2, so the data
//    comes from memory once per direction;
//  - split (few channels): the team first reduces all blocks of all channels into a scratch
//    table, then merges each channel's blocks in order, then runs the element-wise pass.
// (N, C) input (S == 1) runs row by row, vectorised across channels, each thread owning a
// block of channels.
#include "batchnorm.h"

#include <cmath>
#include <cstdlib>
#include <memory>
#include <vector>

#include "dispatch.h"
#include "parallel.h"

namespace mg {
namespace {

template <typename T>
const BatchNormSpanKernels<T>& kernels() {
  return isa_table<BatchNormSpanKernels<T>>();
}

// The reduction units ("blocks") of a channel, fixed by the shape alone: a block is
// `rows_per_block` consecutive (n, c) rows, or one piece of a row when a row alone is longer
// than kBatchNormBlock.
struct Layout {
  int64_t n, c, s, rows_per_block, pieces_per_row;
  Layout(int64_t n_, int64_t c_, int64_t s_)
      : n(n_), c(c_), s(s_),
        rows_per_block(s_ >= kBatchNormBlock ? 1 : kBatchNormBlock / s_),
        pieces_per_row(s_ >= kBatchNormBlock ? (s_ + kBatchNormBlock - 1) / kBatchNormBlock : 1) {}
  int64_t piece_len() const { return pieces_per_row == 1 ? s : kBatchNormBlock; }
  int64_t blocks_per_channel() const {
    return (n + rows_per_block - 1) / rows_per_block * pieces_per_row;
  }
  int64_t stride() const { return c * s; }
  // Block u of channel ch: rows from (u / pieces_per_row) * rows_per_block, piece u % pieces.
  int64_t offset(int64_t ch, int64_t u) const {
    return ((u / pieces_per_row) * rows_per_block * c + ch) * s + (u % pieces_per_row) * piece_len();
  }
  int64_t rows(int64_t u) const {
    const int64_t first = (u / pieces_per_row) * rows_per_block;
    return n - first < rows_per_block ? n - first : rows_per_block;
  }
  int64_t length(int64_t u) const {
    const int64_t start = (u % pieces_per_row) * piece_len();
    return s - start < piece_len() ? s - start : piece_len();
  }
  int64_t count() const { return n * s; }
};

// Chan et al.'s pairwise update: folds (count_b, mean_b, m2_b) into the running triple.
struct Moments {
  double count = 0, mean = 0, m2 = 0;
  void merge(double count_b, double mean_b, double m2_b) {
    const double total = count + count_b, delta = mean_b - mean;
    mean += delta * (count_b / total);
    m2 += m2_b + delta * delta * (count * count_b / total);
    count = total;
  }
};

// One schedule decision for all passes of a call.
bool per_channel_schedule(int64_t channels, int threads) {
  return threads == 1 || channels % threads == 0 || channels >= 4 * threads;
}

template <typename T>
struct Affine {
  T scale, shift;
};

// y = x * scale + shift with scale = gamma * invstd, shift = beta - mean * scale, computed
// from the rounded (saved) mean and invstd so the backward's ReLU mask recomputes y exactly.
template <typename P>
Affine<P> affine_for(const P* gamma, const P* beta, int64_t ch, P mean, P invstd) {
  const double g = gamma ? static_cast<double>(gamma[ch]) : 1.0;
  const double b = beta ? static_cast<double>(beta[ch]) : 0.0;
  const P scale = static_cast<P>(g * static_cast<double>(invstd));
  const P shift = static_cast<P>(b - static_cast<double>(mean) * static_cast<double>(scale));
  return {scale, shift};
}

// Saves the batch statistics of channel ch, updates its running statistics, returns y's affine.
template <typename P>
Affine<P> finish_channel_stats(const Moments& m, int64_t ch, const P* gamma, const P* beta,
                               P* running_mean, P* running_var, double momentum, double eps,
                               P* save_mean, P* save_invstd) {
  const double var = m.m2 / m.count;
  save_mean[ch] = static_cast<P>(m.mean);
  save_invstd[ch] = static_cast<P>(1.0 / std::sqrt(var + eps));
  if (running_mean)
    running_mean[ch] = static_cast<P>((1.0 - momentum) * static_cast<double>(running_mean[ch]) +
                                      momentum * m.mean);
  if (running_var)  // the unbiased variance, as PyTorch
    running_var[ch] = static_cast<P>((1.0 - momentum) * static_cast<double>(running_var[ch]) +
                                     momentum * m.m2 / (m.count - 1.0));
  return affine_for(gamma, beta, ch, save_mean[ch], save_invstd[ch]);
}

// ------------------------------------------------------------------ (N, C, S) forward, training
template <typename T, typename P>
void forward_train_spatial(const T* x, const Layout& L, const P* gamma, const P* beta,
                           P* running_mean, P* running_var, double momentum, double eps,
                           bool relu, const T* residual, T* y, P* save_mean, P* save_invstd) {
  const BatchNormSpanKernels<T>& k = kernels<T>();
  const int threads = team_for(Work::batchnorm, L.n * L.c * L.s);
  const int64_t units = L.blocks_per_channel();
  auto channel_pass = [&](int64_t ch, const double* unit_mean, const double* unit_m2) {
    Moments m;
    for (int64_t u = 0; u < units; ++u) {
      double mean, m2;
      if (unit_mean) {
        mean = unit_mean[ch * units + u];
        m2 = unit_m2[ch * units + u];
      } else {
        k.block_stats(x + L.offset(ch, u), L.rows(u), L.stride(), L.length(u), &mean, &m2);
      }
      m.merge(static_cast<double>(L.rows(u) * L.length(u)), mean, m2);
    }
    return finish_channel_stats(m, ch, gamma, beta, running_mean, running_var, momentum, eps,
                                save_mean, save_invstd);
  };
  if (per_channel_schedule(L.c, threads)) {
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t ch = 0; ch < L.c; ++ch) {
      const Affine<P> a = channel_pass(ch, nullptr, nullptr);
      for (int64_t u = 0; u < units; ++u)
        k.block_affine(x + L.offset(ch, u), L.rows(u), L.stride(), L.length(u), a.scale, a.shift,
                       relu, residual ? residual + L.offset(ch, u) : nullptr, y + L.offset(ch, u));
    }
    return;
  }
  std::vector<double> unit_mean(L.c * units), unit_m2(L.c * units);
  std::vector<Affine<P>> affine(L.c);
#pragma omp parallel num_threads(threads)
  {
#pragma omp for schedule(static)
    for (int64_t i = 0; i < L.c * units; ++i)
      k.block_stats(x + L.offset(i / units, i % units), L.rows(i % units), L.stride(),
                    L.length(i % units), &unit_mean[i], &unit_m2[i]);
#pragma omp for schedule(static)
    for (int64_t ch = 0; ch < L.c; ++ch) affine[ch] = channel_pass(ch, unit_mean.data(), unit_m2.data());
#pragma omp for schedule(static)
    for (int64_t i = 0; i < L.c * units; ++i) {
      const int64_t ch = i / units, u = i % units;
      k.block_affine(x + L.offset(ch, u), L.rows(u), L.stride(), L.length(u), affine[ch].scale,
                     affine[ch].shift, relu, residual ? residual + L.offset(ch, u) : nullptr,
                     y + L.offset(ch, u));
    }
  }
}

// Threads for (N, C) rows: each owns a block of channels (a multiple of 16 for whole vectors).
template <typename Body>
void for_channel_blocks(int64_t n, int64_t c, const Body& body) {
  const int64_t blocks = (c + 15) / 16;
  const int threads = team_for(Work::batchnorm, n * c, blocks);
#pragma omp parallel num_threads(threads > 0 ? threads : 1)
  {
    int64_t b0, b1;
    split_range(blocks, omp_get_num_threads(), omp_get_thread_num(), &b0, &b1);
    const int64_t c0 = b0 * 16, c1 = b1 * 16 < c ? b1 * 16 : c;
    if (c1 > c0) body(c0, c1);
  }
}

// ------------------------------------------------------------------ (N, C) forward, training
template <typename T, typename P>
void forward_train_flat(const T* x, int64_t n, int64_t c, const P* gamma, const P* beta,
                        P* running_mean, P* running_var, double momentum, double eps, bool relu,
                        const T* residual, T* y, P* save_mean, P* save_invstd) {
  const BatchNormSpanKernels<T>& k = kernels<T>();
  std::vector<double> mean(c, 0.0), dev(c, 0.0), sq(c, 0.0);
  std::vector<P> scale(c), shift(c);
  for_channel_blocks(n, c, [&](int64_t c0, int64_t c1) {
    const int64_t w = c1 - c0;
    for (int64_t r = 0; r < n; ++r) k.cols_sum(x + r * c + c0, w, &mean[c0]);
    for (int64_t ch = c0; ch < c1; ++ch) mean[ch] /= static_cast<double>(n);
    for (int64_t r = 0; r < n; ++r) k.cols_dev(x + r * c + c0, w, &mean[c0], &dev[c0], &sq[c0]);
    for (int64_t ch = c0; ch < c1; ++ch) {
      Moments m;  // the shifted-data identity, as in block_stats
      m.count = static_cast<double>(n);
      m.mean = mean[ch] + dev[ch] / m.count;
      m.m2 = sq[ch] - dev[ch] * dev[ch] / m.count;
      if (m.m2 < 0) m.m2 = 0;
      const Affine<P> a = finish_channel_stats(m, ch, gamma, beta, running_mean, running_var,
                                               momentum, eps, save_mean, save_invstd);
      scale[ch] = a.scale;
      shift[ch] = a.shift;
    }
    for (int64_t r = 0; r < n; ++r)
      k.cols_affine(x + r * c + c0, w, &scale[c0], &shift[c0], relu,
                    residual ? residual + r * c + c0 : nullptr, y + r * c + c0);
  });
}

// ------------------------------------------------------------------ backward
template <typename P>
struct GradCoefficients {
  P k_g, k_x, k_0;
};

template <typename P>
GradCoefficients<P> finish_channel_grads(double sum_g, double sum_gx, int64_t ch, double count,
                                         const P* gamma, const P* invstd, bool training,
                                         P* dgamma, P* dbeta) {
  const double is = static_cast<double>(invstd[ch]);
  const double g = gamma ? static_cast<double>(gamma[ch]) : 1.0;
  if (dbeta) dbeta[ch] = static_cast<P>(sum_g);
  if (dgamma) dgamma[ch] = static_cast<P>(sum_gx * is);
  const double k_g = g * is;
  if (!training) return {static_cast<P>(k_g), P(0), P(0)};
  return {static_cast<P>(k_g), static_cast<P>(-k_g * is * is * sum_gx / count),
          static_cast<P>(-k_g * sum_g / count)};
}

template <typename T, typename P>
void backward_spatial(const T* x, const T* dy, const Layout& L, const P* gamma, const P* beta,
                      const P* mean, const P* invstd, bool training, bool relu, T* dx, P* dgamma,
                      P* dbeta) {
  const BatchNormSpanKernels<T>& k = kernels<T>();
  const int threads = team_for(Work::batchnorm, L.n * L.c * L.s);
  const int64_t units = L.blocks_per_channel();
  auto channel_sums = [&](int64_t ch, const double* unit_g, const double* unit_gx,
                          const Affine<P>& a) {
    double sum_g = 0, sum_gx = 0;
    for (int64_t u = 0; u < units; ++u) {
      double g, gx;
      if (unit_g) {
        g = unit_g[ch * units + u];
        gx = unit_gx[ch * units + u];
      } else {
        k.block_grad_sums(x + L.offset(ch, u), dy + L.offset(ch, u), L.rows(u), L.stride(),
                          L.length(u), mean[ch], a.scale, a.shift, relu, &g, &gx);
      }
      sum_g += g;
      sum_gx += gx;
    }
    return finish_channel_grads(sum_g, sum_gx, ch, static_cast<double>(L.count()), gamma,
                                invstd, training, dgamma, dbeta);
  };
  auto channel_dx = [&](int64_t ch, int64_t u, const Affine<P>& a, const GradCoefficients<P>& q) {
    k.block_grad_input(x + L.offset(ch, u), dy + L.offset(ch, u), L.rows(u), L.stride(),
                       L.length(u), mean[ch], a.scale, a.shift, relu, q.k_g, q.k_x, q.k_0,
                       dx + L.offset(ch, u));
  };
  if (per_channel_schedule(L.c, threads)) {
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t ch = 0; ch < L.c; ++ch) {
      const Affine<P> a = affine_for(gamma, beta, ch, mean[ch], invstd[ch]);
      const GradCoefficients<P> q = channel_sums(ch, nullptr, nullptr, a);
      if (dx)
        for (int64_t u = 0; u < units; ++u) channel_dx(ch, u, a, q);
    }
    return;
  }
  std::vector<double> unit_g(L.c * units), unit_gx(L.c * units);
  std::vector<Affine<P>> affine(L.c);
  std::vector<GradCoefficients<P>> coef(L.c);
  for (int64_t ch = 0; ch < L.c; ++ch) affine[ch] = affine_for(gamma, beta, ch, mean[ch], invstd[ch]);
#pragma omp parallel num_threads(threads)
  {
#pragma omp for schedule(static)
    for (int64_t i = 0; i < L.c * units; ++i) {
      const int64_t ch = i / units, u = i % units;
      k.block_grad_sums(x + L.offset(ch, u), dy + L.offset(ch, u), L.rows(u), L.stride(),
                        L.length(u), mean[ch], affine[ch].scale, affine[ch].shift, relu,
                        &unit_g[i], &unit_gx[i]);
    }
#pragma omp for schedule(static)
    for (int64_t ch = 0; ch < L.c; ++ch)
      coef[ch] = channel_sums(ch, unit_g.data(), unit_gx.data(), affine[ch]);
    if (dx) {
#pragma omp for schedule(static)
      for (int64_t i = 0; i < L.c * units; ++i)
        channel_dx(i / units, i % units, affine[i / units], coef[i / units]);
    }
  }
}

template <typename T, typename P>
void backward_flat(const T* x, const T* dy, int64_t n, int64_t c, const P* gamma, const P* beta,
                   const P* mean, const P* invstd, bool training, bool relu, T* dx, P* dgamma,
                   P* dbeta) {
  const BatchNormSpanKernels<T>& k = kernels<T>();
  std::vector<double> sum_g(c, 0.0), sum_gx(c, 0.0);
  std::vector<P> scale(c), shift(c), k_g(c), k_x(c), k_0(c);
  for_channel_blocks(n, c, [&](int64_t c0, int64_t c1) {
    const int64_t w = c1 - c0;
    for (int64_t ch = c0; ch < c1; ++ch) {
      const Affine<P> a = affine_for(gamma, beta, ch, mean[ch], invstd[ch]);
      scale[ch] = a.scale;
      shift[ch] = a.shift;
    }
    for (int64_t r = 0; r < n; ++r)
      k.cols_grad_sums(x + r * c + c0, dy + r * c + c0, w, mean + c0, &scale[c0], &shift[c0],
                       relu, &sum_g[c0], &sum_gx[c0]);
    for (int64_t ch = c0; ch < c1; ++ch) {
      const GradCoefficients<P> q = finish_channel_grads(
          sum_g[ch], sum_gx[ch], ch, static_cast<double>(n), gamma, invstd, training, dgamma, dbeta);
      k_g[ch] = q.k_g;
      k_x[ch] = q.k_x;
      k_0[ch] = q.k_0;
    }
    if (dx)
      for (int64_t r = 0; r < n; ++r)
        k.cols_grad_input(x + r * c + c0, dy + r * c + c0, w, mean + c0, &scale[c0], &shift[c0],
                          relu, &k_g[c0], &k_x[c0], &k_0[c0], dx + r * c + c0);
  });
}

}  // namespace

template <typename T, typename P>
void batch_norm_forward_train(const T* x, int64_t n, int64_t c, int64_t s, const P* gamma,
                              const P* beta, P* running_mean, P* running_var, double momentum,
                              double eps, bool relu, const T* residual, T* y, P* save_mean,
                              P* save_invstd) {
  if (s == 1)
    forward_train_flat(x, n, c, gamma, beta, running_mean, running_var, momentum, eps, relu,
                       residual, y, save_mean, save_invstd);
  else
    forward_train_spatial(x, Layout(n, c, s), gamma, beta, running_mean, running_var, momentum,
                          eps, relu, residual, y, save_mean, save_invstd);
}

template <typename T, typename P>
void batch_norm_forward_eval(const T* x, int64_t n, int64_t c, int64_t s, const P* gamma,
                             const P* beta, const P* running_mean, const P* running_var,
                             double eps, bool relu, const T* residual, T* y, P* save_mean,
                             P* save_invstd) {
  const BatchNormSpanKernels<T>& k = kernels<T>();
  std::vector<P> scale(c), shift(c);
  for (int64_t ch = 0; ch < c; ++ch) {
    save_mean[ch] = running_mean[ch];
    save_invstd[ch] =
        static_cast<P>(1.0 / std::sqrt(static_cast<double>(running_var[ch]) + eps));
    const Affine<P> a = affine_for(gamma, beta, ch, save_mean[ch], save_invstd[ch]);
    scale[ch] = a.scale;
    shift[ch] = a.shift;
  }
  if (s == 1) {
    for_channel_blocks(n, c, [&](int64_t c0, int64_t c1) {
      for (int64_t r = 0; r < n; ++r)
        k.cols_affine(x + r * c + c0, c1 - c0, &scale[c0], &shift[c0], relu,
                      residual ? residual + r * c + c0 : nullptr, y + r * c + c0);
    });
    return;
  }
  const Layout L(n, c, s);
  const int64_t units = L.blocks_per_channel();
  const int threads = team_for(Work::batchnorm, n * c * s);
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t i = 0; i < c * units; ++i) {
    const int64_t ch = i / units, u = i % units;
    k.block_affine(x + L.offset(ch, u), L.rows(u), L.stride(), L.length(u), scale[ch], shift[ch],
                   relu, residual ? residual + L.offset(ch, u) : nullptr, y + L.offset(ch, u));
  }
}

template <typename T, typename P>
void batch_norm_backward(const T* x, const T* dy, int64_t n, int64_t c, int64_t s,
                         const P* gamma, const P* beta, const P* mean, const P* invstd,
                         bool training, bool relu, T* dx, P* dgamma, P* dbeta) {
  if (s == 1)
    backward_flat(x, dy, n, c, gamma, beta, mean, invstd, training, relu, dx, dgamma, dbeta);
  else
    backward_spatial(x, dy, Layout(n, c, s), gamma, beta, mean, invstd, training, relu, dx,
                     dgamma, dbeta);
}

const char* batch_norm_impl_name() { return kernels<float>().name; }

#define MG_BATCHNORM_INSTANTIATE(T, P)                                                         \
  template void batch_norm_forward_train<T>(const T*, int64_t, int64_t, int64_t, const P*,     \
                                            const P*, P*, P*, double, double, bool, const T*,  \
                                            T*, P*, P*);                                        \
  template void batch_norm_forward_eval<T>(const T*, int64_t, int64_t, int64_t, const P*,      \
                                           const P*, const P*, const P*, double, bool,         \
                                           const T*, T*, P*, P*);                              \
  template void batch_norm_backward<T>(const T*, const T*, int64_t, int64_t, int64_t,          \
                                       const P*, const P*, const P*, const P*, bool, bool, T*, \
                                       P*, P*);
MG_BATCHNORM_INSTANTIATE(float, float)
MG_BATCHNORM_INSTANTIATE(double, double)
MG_BATCHNORM_INSTANTIATE(bf16, float)
#undef MG_BATCHNORM_INSTANTIATE

}  // namespace mg
