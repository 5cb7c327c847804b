// Reference Winograd transforms: X -> L X L^T as two plain matrix products per tile, reading
// L entry by entry (WinogradMatrix::at), the oracle for the vector kernels and the weight
// transforms (tests/kernels/test_winograd.py).
#include <vector>

#include "winograd.h"

namespace mg {
namespace {

template <typename F, WinogradTransform K, typename T>
void apply(const T* tiles, int64_t count, T* out) {
  using L = WinogradMatrix<F, K>;
  constexpr int Q = L::rows, R = L::cols;
  std::vector<T> half(Q * R);
  for (int64_t t = 0; t < count; ++t) {
    const T* x = tiles + t * R * R;
    T* y = out + t * Q * Q;
    for (int i = 0; i < Q; ++i)  // half = L x
      for (int k = 0; k < R; ++k) {
        T sum = T(0);
        for (int j = 0; j < R; ++j) sum += static_cast<T>(L::at(i, j)) * x[j * R + k];
        half[i * R + k] = sum;
      }
    for (int i = 0; i < Q; ++i)  // y = half L^T
      for (int l = 0; l < Q; ++l) {
        T sum = T(0);
        for (int k = 0; k < R; ++k) sum += half[i * R + k] * static_cast<T>(L::at(l, k));
        y[i * Q + l] = sum;
      }
  }
}

template <typename F, typename T>
void apply_kind(WinogradTransform kind, const T* tiles, int64_t count, T* out) {
  switch (kind) {
    case WinogradTransform::input: apply<F, WinogradTransform::input>(tiles, count, out); break;
    case WinogradTransform::weight: apply<F, WinogradTransform::weight>(tiles, count, out); break;
    case WinogradTransform::output: apply<F, WinogradTransform::output>(tiles, count, out); break;
    case WinogradTransform::grad_output:
      apply<F, WinogradTransform::grad_output>(tiles, count, out);
      break;
    case WinogradTransform::grad_weight:
      apply<F, WinogradTransform::grad_weight>(tiles, count, out);
      break;
  }
}

}  // namespace

template <typename T>
void winograd_transform_ref(WinogradTransform kind, int m, const T* tiles, int64_t count, T* out) {
  if (m == 2)
    apply_kind<WinogradF2>(kind, tiles, count, out);
  else
    apply_kind<WinogradF4>(kind, tiles, count, out);
}

template void winograd_transform_ref<float>(WinogradTransform, int, const float*, int64_t, float*);
template void winograd_transform_ref<double>(WinogradTransform, int, const double*, int64_t,
                                             double*);

}  // namespace mg
