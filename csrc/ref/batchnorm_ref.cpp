// Reference batch norm: textbook two-pass statistics in double, one channel at a time, no
// threads, no vectors. The oracle the fast kernels (batchnorm.cpp) are tested against.
#include <cmath>

#include "batchnorm.h"

namespace mg {
namespace {

// A double result stored as an activation (bfloat16 through float32, as the kernels round).
template <typename T>
void store(double v, T* p) {
  store_rounded(static_cast<bn_param_t<T>>(v), p);
}

template <typename T>
double channel_sum(const T* x, int64_t n, int64_t c, int64_t s, int64_t ch, double shift) {
  double acc = 0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < s; ++j) acc += static_cast<double>(widen(x[(i * c + ch) * s + j])) - shift;
  return acc;
}

template <typename T>
double channel_squares(const T* x, int64_t n, int64_t c, int64_t s, int64_t ch, double mean) {
  double acc = 0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < s; ++j) {
      const double d = static_cast<double>(widen(x[(i * c + ch) * s + j])) - mean;
      acc += d * d;
    }
  return acc;
}

template <typename T, typename P>
void normalise(const T* x, int64_t n, int64_t c, int64_t s, const P* gamma, const P* beta,
               const P* mean, const P* invstd, bool relu, const T* residual, T* y) {
  for (int64_t ch = 0; ch < c; ++ch) {
    const double g = gamma ? gamma[ch] : 1.0, b = beta ? beta[ch] : 0.0;
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < s; ++j) {
        const int64_t at = (i * c + ch) * s + j;
        const double v = g * (static_cast<double>(widen(x[at])) - mean[ch]) * invstd[ch] + b +
                         (residual ? static_cast<double>(widen(residual[at])) : 0.0);
        store(relu && v < 0 ? 0.0 : v, y + at);
      }
  }
}

}  // namespace

template <typename T, typename P>
void batch_norm_forward_train_ref(const T* x, int64_t n, int64_t c, int64_t s, const P* gamma,
                                  const P* beta, P* running_mean, P* running_var,
                                  double momentum, double eps, bool relu, const T* residual,
                                  T* y, P* save_mean, P* save_invstd) {
  const double count = static_cast<double>(n * s);
  for (int64_t ch = 0; ch < c; ++ch) {
    const double mean = channel_sum(x, n, c, s, ch, 0.0) / count;
    const double m2 = channel_squares(x, n, c, s, ch, mean);
    save_mean[ch] = static_cast<P>(mean);
    save_invstd[ch] = static_cast<P>(1.0 / std::sqrt(m2 / count + eps));
    if (running_mean)
      running_mean[ch] = static_cast<P>((1 - momentum) * running_mean[ch] + momentum * mean);
    if (running_var)
      running_var[ch] =
          static_cast<P>((1 - momentum) * running_var[ch] + momentum * m2 / (count - 1));
  }
  normalise(x, n, c, s, gamma, beta, save_mean, save_invstd, relu, residual, y);
}

template <typename T, typename P>
void batch_norm_forward_eval_ref(const T* x, int64_t n, int64_t c, int64_t s, const P* gamma,
                                 const P* beta, const P* running_mean, const P* running_var,
                                 double eps, bool relu, const T* residual, T* y, P* save_mean,
                                 P* save_invstd) {
  for (int64_t ch = 0; ch < c; ++ch) {
    save_mean[ch] = running_mean[ch];
    save_invstd[ch] = static_cast<P>(1.0 / std::sqrt(static_cast<double>(running_var[ch]) + eps));
  }
  normalise(x, n, c, s, gamma, beta, save_mean, save_invstd, relu, residual, y);
}

template <typename T, typename P>
void batch_norm_backward_ref(const T* x, const T* dy, int64_t n, int64_t c, int64_t s,
                             const P* gamma, const P* beta, const P* mean, const P* invstd,
                             bool training, bool relu, T* dx, P* dgamma, P* dbeta) {
  const double count = static_cast<double>(n * s);
  for (int64_t ch = 0; ch < c; ++ch) {
    const double g = gamma ? gamma[ch] : 1.0, b = beta ? beta[ch] : 0.0;
    const double mu = mean[ch], is = invstd[ch];
    // The upstream gradient reaching the affine output: zero where the fused ReLU clipped.
    auto grad_at = [&](int64_t at) {
      const double y = g * (static_cast<double>(widen(x[at])) - mu) * is + b;
      return relu && !(y > 0) ? 0.0 : static_cast<double>(widen(dy[at]));
    };
    double sum_g = 0, sum_gx = 0;
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < s; ++j) {
        const int64_t at = (i * c + ch) * s + j;
        sum_g += grad_at(at);
        sum_gx += grad_at(at) * (static_cast<double>(widen(x[at])) - mu);
      }
    if (dbeta) dbeta[ch] = static_cast<P>(sum_g);
    if (dgamma) dgamma[ch] = static_cast<P>(sum_gx * is);
    if (!dx) continue;
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < s; ++j) {
        const int64_t at = (i * c + ch) * s + j;
        double v = grad_at(at);
        if (training)
          v -= sum_g / count + (static_cast<double>(widen(x[at])) - mu) * is * is * sum_gx / count;
        store(g * is * v, dx + at);
      }
  }
}

#define MG_BATCHNORM_REF_INSTANTIATE(T, P)                                                       \
  template void batch_norm_forward_train_ref<T>(const T*, int64_t, int64_t, int64_t, const P*,  \
                                                const P*, P*, P*, double, double, bool,         \
                                                const T*, T*, P*, P*);                          \
  template void batch_norm_forward_eval_ref<T>(const T*, int64_t, int64_t, int64_t, const P*,   \
                                               const P*, const P*, const P*, double, bool,      \
                                               const T*, T*, P*, P*);                           \
  template void batch_norm_backward_ref<T>(const T*, const T*, int64_t, int64_t, int64_t,       \
                                           const P*, const P*, const P*, const P*, bool, bool,  \
                                           T*, P*, P*);
MG_BATCHNORM_REF_INSTANTIATE(float, float)
MG_BATCHNORM_REF_INSTANTIATE(double, double)
MG_BATCHNORM_REF_INSTANTIATE(bf16, float)
#undef MG_BATCHNORM_REF_INSTANTIATE

}  // namespace mg
