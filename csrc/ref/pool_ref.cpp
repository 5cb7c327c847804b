// Reference pooling: every output visits its whole (unclipped) window and tests each position
// against the image bounds; the oracle for pool.cpp.
#include <cmath>
#include <limits>

#include "pool.h"

namespace mg {
namespace {

inline bool inside(const PoolShape& s, int64_t r, int64_t c) {
  return r >= 0 && r < s.h && c >= 0 && c < s.w;
}

}  // namespace

template <typename T>
void max_pool2d_forward_ref(const PoolShape& s, const T* x, T* y, int64_t* idx) {
  for (int64_t p = 0; p < s.n * s.c; ++p)
    for (int64_t oh = 0; oh < s.ho; ++oh)
      for (int64_t ow = 0; ow < s.wo; ++ow) {
        T best = -std::numeric_limits<T>::infinity();
        int64_t at = -1;
        for (int64_t a = 0; a < s.kh; ++a)
          for (int64_t b = 0; b < s.kw; ++b) {
            const int64_t r = oh * s.sh - s.ph + a, c = ow * s.sw - s.pw + b;
            if (!inside(s, r, c)) continue;
            const T v = x[p * s.h * s.w + r * s.w + c];
            if (at < 0 || v > best || std::isnan(v)) {
              best = v;
              at = r * s.w + c;
            }
          }
        y[p * s.ho * s.wo + oh * s.wo + ow] = best;
        idx[p * s.ho * s.wo + oh * s.wo + ow] = at;
      }
}

template <typename T>
void max_pool2d_backward_ref(const PoolShape& s, const T* gy, const int64_t* idx, T* gx) {
  for (int64_t i = 0; i < s.n * s.c * s.h * s.w; ++i) gx[i] = T(0);
  for (int64_t p = 0; p < s.n * s.c; ++p)
    for (int64_t o = 0; o < s.ho * s.wo; ++o)
      gx[p * s.h * s.w + idx[p * s.ho * s.wo + o]] += gy[p * s.ho * s.wo + o];
}

template <typename T>
void avg_pool2d_forward_ref(const PoolShape& s, const T* x, T* y) {
  for (int64_t p = 0; p < s.n * s.c; ++p)
    for (int64_t oh = 0; oh < s.ho; ++oh)
      for (int64_t ow = 0; ow < s.wo; ++ow) {
        T sum = T(0);
        for (int64_t a = 0; a < s.kh; ++a)
          for (int64_t b = 0; b < s.kw; ++b) {
            const int64_t r = oh * s.sh - s.ph + a, c = ow * s.sw - s.pw + b;
            if (inside(s, r, c)) sum += x[p * s.h * s.w + r * s.w + c];
          }
        y[p * s.ho * s.wo + oh * s.wo + ow] = sum / T(s.kh * s.kw);
      }
}

template <typename T>
void avg_pool2d_backward_ref(const PoolShape& s, const T* gy, T* gx) {
  for (int64_t i = 0; i < s.n * s.c * s.h * s.w; ++i) gx[i] = T(0);
  for (int64_t p = 0; p < s.n * s.c; ++p)
    for (int64_t oh = 0; oh < s.ho; ++oh)
      for (int64_t ow = 0; ow < s.wo; ++ow)
        for (int64_t a = 0; a < s.kh; ++a)
          for (int64_t b = 0; b < s.kw; ++b) {
            const int64_t r = oh * s.sh - s.ph + a, c = ow * s.sw - s.pw + b;
            if (inside(s, r, c))
              gx[p * s.h * s.w + r * s.w + c] += gy[p * s.ho * s.wo + oh * s.wo + ow] / T(s.kh * s.kw);
          }
}

template <typename T>
void adaptive_avg_pool2d_forward_ref(const PoolShape& s, const T* x, T* y) {
  for (int64_t p = 0; p < s.n * s.c; ++p)
    for (int64_t oh = 0; oh < s.ho; ++oh)
      for (int64_t ow = 0; ow < s.wo; ++ow) {
        const int64_t r0 = static_cast<int64_t>(std::floor(double(oh) * s.h / s.ho));
        const int64_t r1 = static_cast<int64_t>(std::ceil(double(oh + 1) * s.h / s.ho));
        const int64_t c0 = static_cast<int64_t>(std::floor(double(ow) * s.w / s.wo));
        const int64_t c1 = static_cast<int64_t>(std::ceil(double(ow + 1) * s.w / s.wo));
        T sum = T(0);
        for (int64_t r = r0; r < r1; ++r)
          for (int64_t c = c0; c < c1; ++c) sum += x[p * s.h * s.w + r * s.w + c];
        y[p * s.ho * s.wo + oh * s.wo + ow] = sum / T((r1 - r0) * (c1 - c0));
      }
}

template <typename T>
void adaptive_avg_pool2d_backward_ref(const PoolShape& s, const T* gy, T* gx) {
  for (int64_t i = 0; i < s.n * s.c * s.h * s.w; ++i) gx[i] = T(0);
  for (int64_t p = 0; p < s.n * s.c; ++p)
    for (int64_t oh = 0; oh < s.ho; ++oh)
      for (int64_t ow = 0; ow < s.wo; ++ow) {
        const int64_t r0 = static_cast<int64_t>(std::floor(double(oh) * s.h / s.ho));
        const int64_t r1 = static_cast<int64_t>(std::ceil(double(oh + 1) * s.h / s.ho));
        const int64_t c0 = static_cast<int64_t>(std::floor(double(ow) * s.w / s.wo));
        const int64_t c1 = static_cast<int64_t>(std::ceil(double(ow + 1) * s.w / s.wo));
        const T g = gy[p * s.ho * s.wo + oh * s.wo + ow] / T((r1 - r0) * (c1 - c0));
        for (int64_t r = r0; r < r1; ++r)
          for (int64_t c = c0; c < c1; ++c) gx[p * s.h * s.w + r * s.w + c] += g;
      }
}

#define MG_INSTANTIATE(T)                                                                        \
  template void max_pool2d_forward_ref<T>(const PoolShape&, const T*, T*, int64_t*);             \
  template void max_pool2d_backward_ref<T>(const PoolShape&, const T*, const int64_t*, T*);      \
  template void avg_pool2d_forward_ref<T>(const PoolShape&, const T*, T*);                       \
  template void avg_pool2d_backward_ref<T>(const PoolShape&, const T*, T*);                      \
  template void adaptive_avg_pool2d_forward_ref<T>(const PoolShape&, const T*, T*);              \
  template void adaptive_avg_pool2d_backward_ref<T>(const PoolShape&, const T*, T*);
MG_INSTANTIATE(float)
MG_INSTANTIATE(double)
#undef MG_INSTANTIATE

}  // namespace mg
