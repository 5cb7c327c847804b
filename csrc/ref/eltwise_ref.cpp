// Scalar references for the element-wise kernels: the oracles of tests/kernels.
#include "eltwise.h"

namespace mg {

template <typename T>
void relu_forward_ref(const T* x, T* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = widen(x[i]) < 0 ? T(0) : x[i];
}

template <typename T>
void relu_backward_ref(const T* g, const T* y, T* dx, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dx[i] = widen(y[i]) > 0 ? g[i] : T(0);
}

template <typename T>
void add_ref(const T* a, const T* b, T* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) store_rounded(widen(a[i]) + widen(b[i]), out + i);
}

template void relu_forward_ref<float>(const float*, float*, int64_t);
template void relu_forward_ref<double>(const double*, double*, int64_t);
template void relu_backward_ref<float>(const float*, const float*, float*, int64_t);
template void relu_backward_ref<double>(const double*, const double*, double*, int64_t);
template void add_ref<float>(const float*, const float*, float*, int64_t);
template void add_ref<double>(const double*, const double*, double*, int64_t);
template void relu_forward_ref<bf16>(const bf16*, bf16*, int64_t);
template void relu_backward_ref<bf16>(const bf16*, const bf16*, bf16*, int64_t);
template void add_ref<bf16>(const bf16*, const bf16*, bf16*, int64_t);

}  // namespace mg
