// Reference optimiser updates: one tensor at a time, one element at a time, options tested
// inside the loop, written straight from the formulas. The oracle the fused kernels are
// tested against (they may differ by FMA roundings only).
#include <cmath>

#include "optim.h"

namespace mg {
namespace {

template <typename T>
T decayed_grad(T g, T p, bool maximize, double weight_decay) {
  if (maximize) g = -g;
  if (weight_decay != 0.0) g = g + T(weight_decay) * p;
  return g;
}

template <typename T>
T lerp_ref(T start, T end, T w) {
  return std::fabs(w) < T(0.5) ? start + w * (end - start) : end - (end - start) * (T(1) - w);
}

}  // namespace

template <typename T>
void sgd_step_ref(const SgdScalars& s, const OptimTensors<T>& t) {
  for (int64_t k = 0; k < t.count; ++k) {
    T* p = t.param[k];
    const T* g = t.grad[k];
    for (int64_t i = 0; i < t.sizes[k]; ++i) {
      T d = decayed_grad(g[i], p[i], s.maximize, s.weight_decay);
      if (s.momentum != 0.0) {
        T& b = t.state[0][k][i];
        b = s.first_step ? d : b * T(s.momentum) + T(1.0 - s.dampening) * d;
        d = s.nesterov ? d + T(s.momentum) * b : b;
      }
      p[i] = p[i] - T(s.lr) * d;
    }
  }
}

template <typename T>
void adagrad_step_ref(const AdagradScalars& s, const OptimTensors<T>& t) {
  for (int64_t k = 0; k < t.count; ++k) {
    T* p = t.param[k];
    for (int64_t i = 0; i < t.sizes[k]; ++i) {
      const T d = decayed_grad(t.grad[k][i], p[i], s.maximize, s.weight_decay);
      T& sum = t.state[0][k][i];
      sum += d * d;
      p[i] -= T(s.clr) * d / (std::sqrt(sum) + T(s.eps));
    }
  }
}

template <typename T>
void rmsprop_step_ref(const RmspropScalars& s, const OptimTensors<T>& t) {
  const T alpha = T(s.alpha), w = T(1.0 - s.alpha);
  for (int64_t k = 0; k < t.count; ++k) {
    T* p = t.param[k];
    for (int64_t i = 0; i < t.sizes[k]; ++i) {
      const T d = decayed_grad(t.grad[k][i], p[i], s.maximize, s.weight_decay);
      T& v = t.state[0][k][i];
      v = v * alpha + w * d * d;
      T denom = v;
      if (s.centered) {
        T& a = t.state[1][k][i];
        a = lerp_ref(a, d, w);
        denom = v - a * a;
      }
      denom = std::sqrt(denom) + T(s.eps);
      if (s.momentum > 0.0) {
        T& b = t.state[2][k][i];
        b = b * T(s.momentum) + d / denom;
        p[i] -= T(s.lr) * b;
      } else {
        p[i] -= T(s.lr) * d / denom;
      }
    }
  }
}

template <typename T>
void adadelta_step_ref(const AdadeltaScalars& s, const OptimTensors<T>& t) {
  const T rho = T(s.rho), w = T(1.0 - s.rho), eps = T(s.eps);
  for (int64_t k = 0; k < t.count; ++k) {
    T* p = t.param[k];
    for (int64_t i = 0; i < t.sizes[k]; ++i) {
      const T d = decayed_grad(t.grad[k][i], p[i], s.maximize, s.weight_decay);
      T& v = t.state[0][k][i];
      T& u = t.state[1][k][i];
      v = v * rho + w * d * d;
      const T delta = std::sqrt(u + eps) / std::sqrt(v + eps) * d;
      u = u * rho + w * delta * delta;
      p[i] -= T(s.lr) * delta;
    }
  }
}

template <typename T>
void adam_step_ref(const AdamScalars& s, const OptimTensors<T>& t) {
  const T w1 = T(1.0 - s.beta1), beta2 = T(s.beta2), w2 = T(1.0 - s.beta2);
  const bool decoupled = s.decoupled_weight_decay && s.weight_decay != 0.0;
  for (int64_t k = 0; k < t.count; ++k) {
    T* p = t.param[k];
    for (int64_t i = 0; i < t.sizes[k]; ++i) {
      if (decoupled) p[i] *= T(1.0 - s.lr * s.weight_decay);
      const T d = decayed_grad(t.grad[k][i], p[i], s.maximize, decoupled ? 0.0 : s.weight_decay);
      T& m = t.state[0][k][i];
      T& v = t.state[1][k][i];
      m = lerp_ref(m, d, w1);
      v = v * beta2 + w2 * d * d;
      T second = v;
      if (s.amsgrad) {
        T& vmax = t.state[2][k][i];
        vmax = std::fmax(vmax, v);
        second = vmax;
      }
      const T denom = std::sqrt(second) / T(s.bias_correction2_sqrt) + T(s.eps);
      p[i] -= T(s.step_size) * m / denom;
    }
  }
}

template <typename T>
void nadam_step_ref(const NadamScalars& s, const OptimTensors<T>& t) {
  const T w1 = T(1.0 - s.beta1), beta2 = T(s.beta2), w2 = T(1.0 - s.beta2);
  const bool decoupled = s.decoupled_weight_decay && s.weight_decay != 0.0;
  for (int64_t k = 0; k < t.count; ++k) {
    T* p = t.param[k];
    for (int64_t i = 0; i < t.sizes[k]; ++i) {
      if (decoupled) p[i] *= T(1.0 - s.lr * s.weight_decay);
      const T d = decayed_grad(t.grad[k][i], p[i], s.maximize, decoupled ? 0.0 : s.weight_decay);
      T& m = t.state[0][k][i];
      T& v = t.state[1][k][i];
      m = lerp_ref(m, d, w1);
      v = v * beta2 + w2 * d * d;
      const T denom = std::sqrt(v / T(s.bias_correction2)) + T(s.eps);
      p[i] += T(s.grad_coef) * d / denom;
      p[i] += T(s.avg_coef) * m / denom;
    }
  }
}

#define MG_OPTIM_REF_INSTANTIATE(T)                                                   \
  template void sgd_step_ref<T>(const SgdScalars&, const OptimTensors<T>&);           \
  template void adagrad_step_ref<T>(const AdagradScalars&, const OptimTensors<T>&);   \
  template void rmsprop_step_ref<T>(const RmspropScalars&, const OptimTensors<T>&);   \
  template void adadelta_step_ref<T>(const AdadeltaScalars&, const OptimTensors<T>&); \
  template void adam_step_ref<T>(const AdamScalars&, const OptimTensors<T>&);         \
  template void nadam_step_ref<T>(const NadamScalars&, const OptimTensors<T>&);
MG_OPTIM_REF_INSTANTIATE(float)
MG_OPTIM_REF_INSTANTIATE(double)
#undef MG_OPTIM_REF_INSTANTIATE

}  // namespace mg
