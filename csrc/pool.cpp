// Pooling kernels: threads take whole (n, c) planes, so no two threads ever write the same
// gradient element and backward needs no atomics. Within a plane the window bounds are
// clipped once per output row and column, so the inner loops carry no padding tests.
#include "pool.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <type_traits>

#include "parallel.h"

namespace mg {
namespace {

// Runs body(plane) for every (n, c) plane; `work` is the element count of the whole job.
template <typename Body>
void over_planes(int64_t planes, int64_t work, Body body) {
  const int team = team_for(Work::pool, work, planes);
  if (team <= 1) {
    for (int64_t p = 0; p < planes; ++p) body(p);
    return;
  }
#pragma omp parallel for num_threads(team) schedule(static)
  for (int64_t p = 0; p < planes; ++p) body(p);
}

// Rows (or columns) [lo, hi) of window `o`, clipped to the image.
inline void window(int64_t o, int64_t stride, int64_t pad, int64_t k, int64_t size, int64_t* lo,
                   int64_t* hi) {
  const int64_t start = o * stride - pad;
  *lo = std::max<int64_t>(start, 0);
  *hi = std::min<int64_t>(start + k, size);
}

// Adaptive pooling: cell o of `out` covers [floor(o*in/out), ceil((o+1)*in/out)).
inline void cell(int64_t o, int64_t out, int64_t in, int64_t* lo, int64_t* hi) {
  *lo = o * in / out;
  *hi = ((o + 1) * in + out - 1) / out;
}

// Sum of rows [r0, r1) x columns [c0, c1) of a plane `w` wide, in vector lanes (a value-by-value
// sum waits on each add: global pooling of 8x8 planes spent most of its time there). A cell of
// whole rows is one contiguous run.
template <typename T>
T cell_sum(const T* plane, int64_t w, int64_t r0, int64_t r1, int64_t c0, int64_t c1) {
  T sum = T(0);
  if (c0 == 0 && c1 == w) {
    const T* run = plane + r0 * w;
    const int64_t n = (r1 - r0) * w;
#pragma omp simd reduction(+ : sum)
    for (int64_t i = 0; i < n; ++i) sum += run[i];
    return sum;
  }
  for (int64_t r = r0; r < r1; ++r) {
    const T* row = plane + r * w;
#pragma omp simd reduction(+ : sum)
    for (int64_t c = c0; c < c1; ++c) sum += row[c];
  }
  return sum;
}

// The first maximum in row-major order wins; a NaN wins over numbers (as in PyTorch).
template <typename T>
void max_plane(const PoolShape& s, const T* x, T* y, int64_t* idx) {
  for (int64_t oh = 0; oh < s.ho; ++oh) {
    int64_t r0, r1;
    window(oh, s.sh, s.ph, s.kh, s.h, &r0, &r1);
    for (int64_t ow = 0; ow < s.wo; ++ow) {
      int64_t c0, c1;
      window(ow, s.sw, s.pw, s.kw, s.w, &c0, &c1);
      T best = -std::numeric_limits<T>::infinity();
      int64_t at = r0 * s.w + c0;
      for (int64_t r = r0; r < r1; ++r)
        for (int64_t c = c0; c < c1; ++c) {
          const T v = x[r * s.w + c];
          if (v > best || v != v) {
            best = v;
            at = r * s.w + c;
          }
        }
      y[oh * s.wo + ow] = best;
      idx[oh * s.wo + ow] = at;
    }
  }
}

// The common 2x2 window with stride 2 and no padding: two input rows per output row.
template <typename T>
void max_plane_2x2(const PoolShape& s, const T* x, T* y, int64_t* idx) {
  for (int64_t oh = 0; oh < s.ho; ++oh) {
    const T* top = x + 2 * oh * s.w;
    const T* bottom = top + s.w;
    for (int64_t ow = 0; ow < s.wo; ++ow) {
      const int64_t c = 2 * ow;
      T best = top[c];
      int64_t at = 2 * oh * s.w + c;
      const T rest[3] = {top[c + 1], bottom[c], bottom[c + 1]};
      const int64_t where[3] = {at + 1, at + s.w, at + s.w + 1};
      for (int j = 0; j < 3; ++j)
        if (rest[j] > best || rest[j] != rest[j]) best = rest[j], at = where[j];
      y[oh * s.wo + ow] = best;
      idx[oh * s.wo + ow] = at;
    }
  }
}

// max_plane_2x2 for float, four outputs per step in 16-byte vectors (SSE2, the x86-64 baseline,
// through GCC/Clang vector extensions). The scalar version's data-dependent branches were
// mispredicted half the time on real activations: 15 ns per output, 1.1 ms for LeNet-5 b64's
// first pool on one thread. Here the choices are lane masks; the same rule, in the same order.
typedef float F4 __attribute__((vector_size(16)));
typedef int32_t I4 __attribute__((vector_size(16)));

inline F4 load4(const float* p) {
  F4 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

void max_plane_2x2_f32(const PoolShape& s, const float* x, float* y, int64_t* idx) {
  const int64_t w = s.w, wo = s.wo, ho = s.ho;
  const I4 one = {1, 1, 1, 1}, two = {2, 2, 2, 2}, three = {3, 3, 3, 3};
  for (int64_t oh = 0; oh < ho; ++oh) {
    const float* top = x + 2 * oh * w;
    const float* bottom = top + w;
    float* yr = y + oh * wo;
    int64_t* ir = idx + oh * wo;
    const int64_t row = 2 * oh * w;
    int64_t ow = 0;
    for (; ow + 4 <= wo; ow += 4) {  // reads columns 2 ow .. 2 ow + 7 <= 2 wo - 1 < w
      const F4 t0 = load4(top + 2 * ow), t1 = load4(top + 2 * ow + 4);
      const F4 b0 = load4(bottom + 2 * ow), b1 = load4(bottom + 2 * ow + 4);
      const F4 a = __builtin_shufflevector(t0, t1, 0, 2, 4, 6), b = __builtin_shufflevector(t0, t1, 1, 3, 5, 7);
      const F4 d = __builtin_shufflevector(b0, b1, 0, 2, 4, 6), e = __builtin_shufflevector(b0, b1, 1, 3, 5, 7);
      const I4 take_b = (b > a) | (b != b);
      F4 best = take_b ? b : a;
      I4 which = take_b & one;  // 0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right
      const I4 take_d = (d > best) | (d != d);
      best = take_d ? d : best;
      which = take_d ? two : which;
      const I4 take_e = (e > best) | (e != e);
      best = take_e ? e : best;
      which = take_e ? three : which;
      std::memcpy(yr + ow, &best, sizeof best);
      for (int j = 0; j < 4; ++j)
        ir[ow + j] = row + 2 * (ow + j) + (which[j] & 1) + (which[j] >> 1) * w;
    }
    for (; ow < wo; ++ow) {
      const int64_t c = 2 * ow;
      float best = top[c];
      int64_t at = row + c;
      const float rest[3] = {top[c + 1], bottom[c], bottom[c + 1]};
      const int64_t where[3] = {at + 1, at + w, at + w + 1};
      for (int j = 0; j < 3; ++j)
        if (rest[j] > best || rest[j] != rest[j]) best = rest[j], at = where[j];
      yr[ow] = best;
      ir[ow] = at;
    }
  }
}

}  // namespace

const char* pool_impl_name() { return "pool_planes_openmp"; }

template <typename T>
void max_pool2d_forward(const PoolShape& s, const T* x, T* y, int64_t* idx) {
  const bool two_by_two = s.kh == 2 && s.kw == 2 && s.sh == 2 && s.sw == 2 && s.ph == 0 && s.pw == 0;
  over_planes(s.n * s.c, s.n * s.c * s.h * s.w, [&](int64_t p) {
    const T* xp = x + p * s.h * s.w;
    T* yp = y + p * s.ho * s.wo;
    int64_t* ip = idx + p * s.ho * s.wo;
    if (two_by_two) {
      if constexpr (std::is_same_v<T, float>)
        max_plane_2x2_f32(s, xp, yp, ip);
      else
        max_plane_2x2(s, xp, yp, ip);
    } else
      max_plane(s, xp, yp, ip);
  });
}

template <typename T>
void max_pool2d_backward(const PoolShape& s, const T* gy, const int64_t* idx, T* gx) {
  over_planes(s.n * s.c, s.n * s.c * s.h * s.w, [&](int64_t p) {
    T* gxp = gx + p * s.h * s.w;
    std::fill(gxp, gxp + s.h * s.w, T(0));
    const T* gyp = gy + p * s.ho * s.wo;
    const int64_t* ip = idx + p * s.ho * s.wo;
    for (int64_t o = 0; o < s.ho * s.wo; ++o) gxp[ip[o]] += gyp[o];
  });
}

template <typename T>
void avg_pool2d_forward(const PoolShape& s, const T* x, T* y) {
  const T scale = T(1) / T(s.kh * s.kw);
  over_planes(s.n * s.c, s.n * s.c * s.h * s.w, [&](int64_t p) {
    const T* xp = x + p * s.h * s.w;
    T* yp = y + p * s.ho * s.wo;
    for (int64_t oh = 0; oh < s.ho; ++oh) {
      int64_t r0, r1;
      window(oh, s.sh, s.ph, s.kh, s.h, &r0, &r1);
      for (int64_t ow = 0; ow < s.wo; ++ow) {
        int64_t c0, c1;
        window(ow, s.sw, s.pw, s.kw, s.w, &c0, &c1);
        T sum = T(0);
        for (int64_t r = r0; r < r1; ++r)
          for (int64_t c = c0; c < c1; ++c) sum += xp[r * s.w + c];
        yp[oh * s.wo + ow] = sum * scale;
      }
    }
  });
}

template <typename T>
void avg_pool2d_backward(const PoolShape& s, const T* gy, T* gx) {
  const T scale = T(1) / T(s.kh * s.kw);
  over_planes(s.n * s.c, s.n * s.c * s.h * s.w, [&](int64_t p) {
    T* gxp = gx + p * s.h * s.w;
    std::fill(gxp, gxp + s.h * s.w, T(0));
    const T* gyp = gy + p * s.ho * s.wo;
    for (int64_t oh = 0; oh < s.ho; ++oh) {
      int64_t r0, r1;
      window(oh, s.sh, s.ph, s.kh, s.h, &r0, &r1);
      for (int64_t ow = 0; ow < s.wo; ++ow) {
        int64_t c0, c1;
        window(ow, s.sw, s.pw, s.kw, s.w, &c0, &c1);
        const T g = gyp[oh * s.wo + ow] * scale;
        for (int64_t r = r0; r < r1; ++r)
          for (int64_t c = c0; c < c1; ++c) gxp[r * s.w + c] += g;
      }
    }
  });
}

template <typename T>
void adaptive_avg_pool2d_forward(const PoolShape& s, const T* x, T* y) {
  over_planes(s.n * s.c, s.n * s.c * s.h * s.w, [&](int64_t p) {
    const T* xp = x + p * s.h * s.w;
    T* yp = y + p * s.ho * s.wo;
    for (int64_t oh = 0; oh < s.ho; ++oh) {
      int64_t r0, r1;
      cell(oh, s.ho, s.h, &r0, &r1);
      for (int64_t ow = 0; ow < s.wo; ++ow) {
        int64_t c0, c1;
        cell(ow, s.wo, s.w, &c0, &c1);
        yp[oh * s.wo + ow] = cell_sum(xp, s.w, r0, r1, c0, c1) / T((r1 - r0) * (c1 - c0));
      }
    }
  });
}

template <typename T>
void adaptive_avg_pool2d_backward(const PoolShape& s, const T* gy, T* gx) {
  over_planes(s.n * s.c, s.n * s.c * s.h * s.w, [&](int64_t p) {
    T* gxp = gx + p * s.h * s.w;
    std::fill(gxp, gxp + s.h * s.w, T(0));
    const T* gyp = gy + p * s.ho * s.wo;
    for (int64_t oh = 0; oh < s.ho; ++oh) {
      int64_t r0, r1;
      cell(oh, s.ho, s.h, &r0, &r1);
      for (int64_t ow = 0; ow < s.wo; ++ow) {
        int64_t c0, c1;
        cell(ow, s.wo, s.w, &c0, &c1);
        const T g = gyp[oh * s.wo + ow] / T((r1 - r0) * (c1 - c0));
        for (int64_t r = r0; r < r1; ++r)
          for (int64_t c = c0; c < c1; ++c) gxp[r * s.w + c] += g;
      }
    }
  });
}

#define MG_INSTANTIATE(T)                                                                       \
  template void max_pool2d_forward<T>(const PoolShape&, const T*, T*, int64_t*);                \
  template void max_pool2d_backward<T>(const PoolShape&, const T*, const int64_t*, T*);         \
  template void avg_pool2d_forward<T>(const PoolShape&, const T*, T*);                          \
  template void avg_pool2d_backward<T>(const PoolShape&, const T*, T*);                         \
  template void adaptive_avg_pool2d_forward<T>(const PoolShape&, const T*, T*);                 \
  template void adaptive_avg_pool2d_backward<T>(const PoolShape&, const T*, T*);
MG_INSTANTIATE(float)
MG_INSTANTIATE(double)
#undef MG_INSTANTIATE

}  // namespace mg
