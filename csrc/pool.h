// 2-D pooling on NCHW arrays, forward and backward (PyTorch's semantics, ceil_mode off).
//
//   max:      y[n, c, oh, ow] = max over the window of x (padding never wins), and
//             idx[n, c, oh, ow] = ih * w + iw of the first maximum (the gradient's route back);
//   average:  y = sum over the window / (kh * kw)  (padding counts as zeros: count_include_pad);
//   adaptive average: output cell (oh, ow) averages rows [floor(oh*h/ho), ceil((oh+1)*h/ho))
//             and the same for columns; output 1x1 is global average pooling.
// Window (oh, ow) covers rows oh*sh - ph + [0, kh) and columns ow*sw - pw + [0, kw).
// Sizes are trusted here: the bindings check every array against PoolShape first.
#pragma once
#include <cstdint>

namespace mg {

struct PoolShape {
  int64_t n, c, h, w;
  int64_t kh, kw, sh, sw, ph, pw;  // for adaptive pooling only n, c, h, w are used
  int64_t ho, wo;                  // output size (computed by the caller for adaptive pooling)
};

inline int64_t pool_out_size(int64_t in, int64_t k, int64_t stride, int64_t pad) {
  return (in + 2 * pad - k) / stride + 1;
}

template <typename T>
void max_pool2d_forward(const PoolShape& s, const T* x, T* y, int64_t* idx);
template <typename T>
void max_pool2d_backward(const PoolShape& s, const T* gy, const int64_t* idx, T* gx);
template <typename T>
void avg_pool2d_forward(const PoolShape& s, const T* x, T* y);
template <typename T>
void avg_pool2d_backward(const PoolShape& s, const T* gy, T* gx);
template <typename T>
void adaptive_avg_pool2d_forward(const PoolShape& s, const T* x, T* y);
template <typename T>
void adaptive_avg_pool2d_backward(const PoolShape& s, const T* gy, T* gx);
const char* pool_impl_name();

// Reference loops (csrc/ref/pool_ref.cpp): the oracle.
template <typename T>
void max_pool2d_forward_ref(const PoolShape& s, const T* x, T* y, int64_t* idx);
template <typename T>
void max_pool2d_backward_ref(const PoolShape& s, const T* gy, const int64_t* idx, T* gx);
template <typename T>
void avg_pool2d_forward_ref(const PoolShape& s, const T* x, T* y);
template <typename T>
void avg_pool2d_backward_ref(const PoolShape& s, const T* gy, T* gx);
template <typename T>
void adaptive_avg_pool2d_forward_ref(const PoolShape& s, const T* x, T* y);
template <typename T>
void adaptive_avg_pool2d_backward_ref(const PoolShape& s, const T* gy, T* gx);

}  // namespace mg
