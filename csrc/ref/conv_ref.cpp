// Reference convolution: the formula in conv.h as plain loops, the oracle for the fast paths.
// Backward is the same sum read three ways: every (n, co, oh, ow, ci, kh, kw) term of the
// forward contributes gy * w to gx, gy * x to gw and gy to gb.
#include <algorithm>

#include "conv.h"

namespace mg {

template <typename T>
void conv2d_forward_ref(const ConvShape& s, const T* x, const T* w, const T* b, T* y, bool relu) {
  const int64_t ho = s.ho(), wo = s.wo(), cig = s.ci / s.groups, cog = s.co / s.groups;
  for (int64_t n = 0; n < s.n; ++n)
    for (int64_t co = 0; co < s.co; ++co)
      for (int64_t oh = 0; oh < ho; ++oh)
        for (int64_t ow = 0; ow < wo; ++ow) {
          T acc = b ? b[co] : T(0);
          const int64_t g = co / cog;
          for (int64_t ci = 0; ci < cig; ++ci)
            for (int64_t kh = 0; kh < s.kh; ++kh)
              for (int64_t kw = 0; kw < s.kw; ++kw) {
                const int64_t ih = oh * s.sh - s.ph + kh * s.dh, iw = ow * s.sw - s.pw + kw * s.dw;
                if (ih < 0 || ih >= s.h || iw < 0 || iw >= s.w) continue;
                acc += w[((co * cig + ci) * s.kh + kh) * s.kw + kw] *
                       x[((n * s.ci + g * cig + ci) * s.h + ih) * s.w + iw];
              }
          y[((n * s.co + co) * ho + oh) * wo + ow] = relu ? std::max(acc, T(0)) : acc;
        }
}

template <typename T>
void conv2d_backward_ref(const ConvShape& s, const T* x, const T* w, const T* gy, T* gx, T* gw,
                         T* gb) {
  const int64_t ho = s.ho(), wo = s.wo(), cig = s.ci / s.groups, cog = s.co / s.groups;
  if (gx) std::fill(gx, gx + s.n * s.ci * s.h * s.w, T(0));
  if (gw) std::fill(gw, gw + s.co * cig * s.kh * s.kw, T(0));
  if (gb) std::fill(gb, gb + s.co, T(0));
  for (int64_t n = 0; n < s.n; ++n)
    for (int64_t co = 0; co < s.co; ++co)
      for (int64_t oh = 0; oh < ho; ++oh)
        for (int64_t ow = 0; ow < wo; ++ow) {
          const T g = gy[((n * s.co + co) * ho + oh) * wo + ow];
          if (gb) gb[co] += g;
          const int64_t grp = co / cog;
          for (int64_t ci = 0; ci < cig; ++ci)
            for (int64_t kh = 0; kh < s.kh; ++kh)
              for (int64_t kw = 0; kw < s.kw; ++kw) {
                const int64_t ih = oh * s.sh - s.ph + kh * s.dh, iw = ow * s.sw - s.pw + kw * s.dw;
                if (ih < 0 || ih >= s.h || iw < 0 || iw >= s.w) continue;
                const int64_t xi = ((n * s.ci + grp * cig + ci) * s.h + ih) * s.w + iw;
                const int64_t wi = ((co * cig + ci) * s.kh + kh) * s.kw + kw;
                if (gx) gx[xi] += g * w[wi];
                if (gw) gw[wi] += g * x[xi];
              }
        }
}

template void conv2d_forward_ref<float>(const ConvShape&, const float*, const float*, const float*,
                                        float*, bool);
template void conv2d_forward_ref<double>(const ConvShape&, const double*, const double*,
                                         const double*, double*, bool);
template void conv2d_backward_ref<float>(const ConvShape&, const float*, const float*, const float*,
                                         float*, float*, float*);
template void conv2d_backward_ref<double>(const ConvShape&, const double*, const double*,
                                          const double*, double*, double*, double*);

}  // namespace mg
