// Batch normalisation over (N, C, S) arrays: S = H*W (1 for (N, C) input).
//
//   training:  mu_c = mean over (n, s) of x[n,c,s],  var_c = biased variance,
//              invstd_c = 1 / sqrt(var_c + eps)
//   inference: mu_c, invstd_c from the running statistics
//   forward:   y = gamma_c (x - mu_c) invstd_c + beta_c  (+ residual, a residual block's skip
//              path, where one is given; then max(y, 0) if relu)
//   backward:  g = dy (times [y > 0] if relu),  M = N*S
//              dbeta_c  = sum g,   dgamma_c = invstd_c sum g (x - mu_c)
//              dx = gamma_c invstd_c (g - dbeta_c / M - (x - mu_c) invstd_c dgamma_c / M)
//                   (training; in inference the batch terms vanish: dx = gamma_c invstd_c g)
//
// The driver (batchnorm.cpp) owns threads and the order of every reduction; the loops over
// one block of a channel are per-ISA "span kernels" (batchnorm_spans.inc compiled
// once per instruction set). Every reduction is split into blocks fixed by the shape alone
// (about kBatchNormBlock elements of one channel), whose partial results are merged in block
// order, so the result does not depend on the number of threads.
#pragma once
#include <cstdint>

#include "dispatch.h"
#include "gemm/bf16.h"

namespace mg {

constexpr int64_t kBatchNormBlock = 8192;

// Activations (x, y, dy, dx) are stored as T; the per-channel values (weight, bias, running
// and saved statistics, their gradients, the affine scale and shift) are arith_t<T> (bf16.h):
// T itself for float32 and float64, float32 for bfloat16 activations (autocast: statistics
// and arithmetic stay float32, only the activations' storage is bfloat16, as in PyTorch's CPU
// batch norm).
template <typename T>
using bn_param_t = arith_t<T>;

// Kernels over one block of a channel: `rows` runs of `len` contiguous elements, `stride`
// apart ("block_*"), and over one (N, C) row of `channels` elements for S == 1 input ("cols_*",
// vectorised across channels). g below is dy, masked by [x * scale + shift > 0] if relu.
template <typename T, typename P = bn_param_t<T>>
struct BatchNormSpanKernels {
  // Mean and sum of squared deviations of the block.
  void (*block_stats)(const T* x, int64_t rows, int64_t stride, int64_t len, double* mean,
                      double* m2);
  // y = x * scale + shift (+ residual, laid out as x, where not null; then max(y, 0) if relu).
  void (*block_affine)(const T* x, int64_t rows, int64_t stride, int64_t len, P scale, P shift,
                       bool relu, const T* residual, T* y);
  // sum g and sum g * (x - mean).
  void (*block_grad_sums)(const T* x, const T* dy, int64_t rows, int64_t stride, int64_t len,
                          P mean, P scale, P shift, bool relu, double* sum_g, double* sum_gx);
  // dx = k_g * g + k_x * (x - mean) + k_0.
  void (*block_grad_input)(const T* x, const T* dy, int64_t rows, int64_t stride, int64_t len,
                           P mean, P scale, P shift, bool relu, P k_g, P k_x, P k_0, T* dx);

  // S == 1 rows: acc[c] += x[c];  then  shift_sum[c] += x[c] - mean[c], sq[c] += (x[c]-mean[c])^2.
  void (*cols_sum)(const T* x, int64_t channels, double* acc);
  void (*cols_dev)(const T* x, int64_t channels, const double* mean, double* dev, double* sq);
  void (*cols_affine)(const T* x, int64_t channels, const P* scale, const P* shift, bool relu,
                      const T* residual, T* y);
  void (*cols_grad_sums)(const T* x, const T* dy, int64_t channels, const P* mean,
                         const P* scale, const P* shift, bool relu, double* sum_g,
                         double* sum_gx);
  void (*cols_grad_input)(const T* x, const T* dy, int64_t channels, const P* mean,
                          const P* scale, const P* shift, bool relu, const P* k_g,
                          const P* k_x, const P* k_0, T* dx);
  const char* name;
};

// One table per ISA and dtype, each defined by batchnorm_<isa>.cpp; the driver takes the
// active ISA's with isa_table<BatchNormSpanKernels<T>>() (dispatch.h).
MG_DECLARE_KERNEL_TABLES(BatchNormSpanKernels<float>)
MG_DECLARE_KERNEL_TABLES(BatchNormSpanKernels<double>)
MG_DECLARE_KERNEL_TABLES(BatchNormSpanKernels<bf16>)

// ---- the driver (all pointers checked by the bindings; optional ones may be null)
// Training forward: batch statistics into save_mean / save_invstd, running stats updated
// in place (r = (1 - momentum) r + momentum * batch value, unbiased variance), y written.
template <typename T, typename P = bn_param_t<T>>
void batch_norm_forward_train(const T* x, int64_t n, int64_t c, int64_t s, const P* gamma,
                              const P* beta, P* running_mean, P* running_var, double momentum,
                              double eps, bool relu, const T* residual, T* y, P* save_mean,
                              P* save_invstd);
// Inference forward from running statistics (also written to save_mean / save_invstd).
template <typename T, typename P = bn_param_t<T>>
void batch_norm_forward_eval(const T* x, int64_t n, int64_t c, int64_t s, const P* gamma,
                             const P* beta, const P* running_mean, const P* running_var,
                             double eps, bool relu, const T* residual, T* y, P* save_mean,
                             P* save_invstd);
// Backward from the saved mean / invstd; `training` selects the batch-statistics formula.
template <typename T, typename P = bn_param_t<T>>
void batch_norm_backward(const T* x, const T* dy, int64_t n, int64_t c, int64_t s,
                         const P* gamma, const P* beta, const P* mean, const P* invstd,
                         bool training, bool relu, T* dx, P* dgamma, P* dbeta);
const char* batch_norm_impl_name();

// Plain scalar twins (csrc/ref/batchnorm_ref.cpp): the test oracle.
template <typename T, typename P = bn_param_t<T>>
void batch_norm_forward_train_ref(const T* x, int64_t n, int64_t c, int64_t s, const P* gamma,
                                  const P* beta, P* running_mean, P* running_var,
                                  double momentum, double eps, bool relu, const T* residual,
                                  T* y, P* save_mean, P* save_invstd);
template <typename T, typename P = bn_param_t<T>>
void batch_norm_forward_eval_ref(const T* x, int64_t n, int64_t c, int64_t s, const P* gamma,
                                 const P* beta, const P* running_mean, const P* running_var,
                                 double eps, bool relu, const T* residual, T* y, P* save_mean,
                                 P* save_invstd);
template <typename T, typename P = bn_param_t<T>>
void batch_norm_backward_ref(const T* x, const T* dy, int64_t n, int64_t c, int64_t s,
                             const P* gamma, const P* beta, const P* mean, const P* invstd,
                             bool training, bool relu, T* dx, P* dgamma, P* dbeta);

}  // namespace mg
