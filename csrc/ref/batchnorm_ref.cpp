// Reference batch norm: textbook two-pass statistics in double, one channel at a time, no
// threads, no vectors. The oracle the fast kernels (batchnorm.cpp) are tested against.
#include <cmath>

#include "batchnorm.h"

namespace mg {
namespace {

template <typename T>
double channel_sum(const T* x, int64_t n, int64_t c, int64_t s, int64_t ch, double shift) {
  double acc = 0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < s; ++j) acc += static_cast<double>(x[(i * c + ch) * s + j]) - shift;
  return acc;
}

template <typename T>
double channel_squares(const T* x, int64_t n, int64_t c, int64_t s, int64_t ch, double mean) {
  double acc = 0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < s; ++j) {
      const double d = static_cast<double>(x[(i * c + ch) * s + j]) - mean;
      acc += d * d;
    }
  return acc;
}

template <typename T>
void normalise(const T* x, int64_t n, int64_t c, int64_t s, const T* gamma, const T* beta,
               const T* mean, const T* invstd, bool relu, T* y) {
  for (int64_t ch = 0; ch < c; ++ch) {
    const double g = gamma ? gamma[ch] : 1.0, b = beta ? beta[ch] : 0.0;
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < s; ++j) {
        const int64_t at = (i * c + ch) * s + j;
        const double v = g * (static_cast<double>(x[at]) - mean[ch]) * invstd[ch] + b;
        y[at] = static_cast<T>(relu && v < 0 ? 0.0 : v);
      }
  }
}

}  // namespace

template <typename T>
void batch_norm_forward_train_ref(const T* x, int64_t n, int64_t c, int64_t s, const T* gamma,
                                  const T* beta, T* running_mean, T* running_var,
                                  double momentum, double eps, bool relu, T* y, T* save_mean,
                                  T* save_invstd) {
  const double count = static_cast<double>(n * s);
  for (int64_t ch = 0; ch < c; ++ch) {
    const double mean = channel_sum(x, n, c, s, ch, 0.0) / count;
    const double m2 = channel_squares(x, n, c, s, ch, mean);
    save_mean[ch] = static_cast<T>(mean);
    save_invstd[ch] = static_cast<T>(1.0 / std::sqrt(m2 / count + eps));
    if (running_mean)
      running_mean[ch] = static_cast<T>((1 - momentum) * running_mean[ch] + momentum * mean);
    if (running_var)
      running_var[ch] =
          static_cast<T>((1 - momentum) * running_var[ch] + momentum * m2 / (count - 1));
  }
  normalise(x, n, c, s, gamma, beta, save_mean, save_invstd, relu, y);
}

template <typename T>
void batch_norm_forward_eval_ref(const T* x, int64_t n, int64_t c, int64_t s, const T* gamma,
                                 const T* beta, const T* running_mean, const T* running_var,
                                 double eps, bool relu, T* y, T* save_mean, T* save_invstd) {
  for (int64_t ch = 0; ch < c; ++ch) {
    save_mean[ch] = running_mean[ch];
    save_invstd[ch] = static_cast<T>(1.0 / std::sqrt(static_cast<double>(running_var[ch]) + eps));
  }
  normalise(x, n, c, s, gamma, beta, save_mean, save_invstd, relu, y);
}

template <typename T>
void batch_norm_backward_ref(const T* x, const T* dy, int64_t n, int64_t c, int64_t s,
                             const T* gamma, const T* beta, const T* mean, const T* invstd,
                             bool training, bool relu, T* dx, T* dgamma, T* dbeta) {
  const double count = static_cast<double>(n * s);
  for (int64_t ch = 0; ch < c; ++ch) {
    const double g = gamma ? gamma[ch] : 1.0, b = beta ? beta[ch] : 0.0;
    const double mu = mean[ch], is = invstd[ch];
    // The upstream gradient reaching the affine output: zero where the fused ReLU clipped.
    auto grad_at = [&](int64_t at) {
      const double y = g * (static_cast<double>(x[at]) - mu) * is + b;
      return relu && !(y > 0) ? 0.0 : static_cast<double>(dy[at]);
    };
    double sum_g = 0, sum_gx = 0;
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < s; ++j) {
        const int64_t at = (i * c + ch) * s + j;
        sum_g += grad_at(at);
        sum_gx += grad_at(at) * (static_cast<double>(x[at]) - mu);
      }
    if (dbeta) dbeta[ch] = static_cast<T>(sum_g);
    if (dgamma) dgamma[ch] = static_cast<T>(sum_gx * is);
    if (!dx) continue;
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < s; ++j) {
        const int64_t at = (i * c + ch) * s + j;
        double v = grad_at(at);
        if (training)
          v -= sum_g / count + (static_cast<double>(x[at]) - mu) * is * is * sum_gx / count;
        dx[at] = static_cast<T>(g * is * v);
      }
  }
}

#define MG_BATCHNORM_REF_INSTANTIATE(T)                                                         \
  template void batch_norm_forward_train_ref<T>(const T*, int64_t, int64_t, int64_t, const T*,  \
                                                const T*, T*, T*, double, double, bool, T*, T*, \
                                                T*);                                            \
  template void batch_norm_forward_eval_ref<T>(const T*, int64_t, int64_t, int64_t, const T*,   \
                                               const T*, const T*, const T*, double, bool, T*,  \
                                               T*, T*);                                         \
  template void batch_norm_backward_ref<T>(const T*, const T*, int64_t, int64_t, int64_t,       \
                                           const T*, const T*, const T*, const T*, bool, bool,  \
                                           T*, T*, T*);
MG_BATCHNORM_REF_INSTANTIATE(float)
MG_BATCHNORM_REF_INSTANTIATE(double)
#undef MG_BATCHNORM_REF_INSTANTIATE

}  // namespace mg
