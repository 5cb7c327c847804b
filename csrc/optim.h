// Fused optimiser updates: one pass over each parameter's memory, in place, every tensor of a
// parameter group in ONE call (one OpenMP region walks the whole list).
//
// The per-element arithmetic follows torch.optim's single-tensor implementations operation by
// operation (same roundings, same order), so trajectories agree to float rounding. The
// per-step scalars (bias corrections, decayed learning rates, ...) are computed once by the
// caller (minigrad/optim/*.py) in double precision and passed in; the kernels cast them to the
// element type once, outside the loop, as PyTorch does when it hands a Python float to a
// float32 kernel.
#pragma once
#include <cstdint>

#include "dispatch.h"

namespace mg {

// A parameter group: `count` tensors of sizes[i] elements. state[k][i] is the k-th state buffer
// of tensor i (same size as the parameter), or the whole state[k] is nullptr when unused.
template <typename T>
struct OptimTensors {
  int64_t count = 0;
  const int64_t* sizes = nullptr;
  T* const* param = nullptr;
  const T* const* grad = nullptr;
  T* const* state[3] = {nullptr, nullptr, nullptr};
};

// g <- -g when maximize; g <- g + wd * p (coupled weight decay) when wd != 0.
struct SgdScalars {
  double lr, momentum, dampening, weight_decay;
  bool nesterov, maximize;
  bool first_step;  // momentum buffer starts as a copy of the (decayed) gradient
};
// state: 0 momentum buffer (only when momentum != 0)

struct AdagradScalars {
  double clr;  // lr / (1 + (step - 1) * lr_decay)
  double eps, weight_decay;
  bool maximize;
};
// state: 0 sum of squared gradients

struct RmspropScalars {
  double lr, alpha, eps, weight_decay, momentum;
  bool centered, maximize;
};
// state: 0 square average, 1 gradient average (centered), 2 momentum buffer (momentum > 0)

struct AdadeltaScalars {
  double lr, rho, eps, weight_decay;
  bool maximize;
};
// state: 0 square average, 1 accumulated squared deltas

struct AdamScalars {
  double lr, beta1, beta2, eps, weight_decay;
  double step_size;              // lr / (1 - beta1^t), or lr without bias correction
  double bias_correction2_sqrt;  // sqrt(1 - beta2^t), or 1 without bias correction
  bool decoupled_weight_decay, amsgrad, maximize;
};
// state: 0 first moment, 1 second moment, 2 running max of the second moment (amsgrad)

struct NadamScalars {
  double lr, beta1, beta2, eps, weight_decay;
  double bias_correction2;  // 1 - beta2^t
  double grad_coef;         // -lr (1 - mu_t) / (1 - prod_{i<=t} mu_i)
  double avg_coef;          // -lr mu_{t+1} / (1 - prod_{i<=t+1} mu_i)
  bool decoupled_weight_decay, maximize;
};
// state: 0 first moment, 1 second moment

// The fast, multithreaded kernels (ISA chosen once at import) ...
template <typename T> void sgd_step(const SgdScalars& s, const OptimTensors<T>& t);
template <typename T> void adagrad_step(const AdagradScalars& s, const OptimTensors<T>& t);
template <typename T> void rmsprop_step(const RmspropScalars& s, const OptimTensors<T>& t);
template <typename T> void adadelta_step(const AdadeltaScalars& s, const OptimTensors<T>& t);
template <typename T> void adam_step(const AdamScalars& s, const OptimTensors<T>& t);
template <typename T> void nadam_step(const NadamScalars& s, const OptimTensors<T>& t);
const char* optim_impl_name();

// ... and their plain scalar twins in csrc/ref/optim_ref.cpp (the test oracle).
template <typename T> void sgd_step_ref(const SgdScalars& s, const OptimTensors<T>& t);
template <typename T> void adagrad_step_ref(const AdagradScalars& s, const OptimTensors<T>& t);
template <typename T> void rmsprop_step_ref(const RmspropScalars& s, const OptimTensors<T>& t);
template <typename T> void adadelta_step_ref(const AdadeltaScalars& s, const OptimTensors<T>& t);
template <typename T> void adam_step_ref(const AdamScalars& s, const OptimTensors<T>& t);
template <typename T> void nadam_step_ref(const NadamScalars& s, const OptimTensors<T>& t);

// One contiguous stretch of one tensor, as the per-ISA chunk kernels see it.
template <typename T>
struct OptimChunk {
  T* p;
  const T* g;
  T* s0;
  T* s1;
  T* s2;
  int64_t n;
};

// The per-ISA kernels: each updates one chunk; optim.cpp splits the group's elements evenly
// over threads and calls these on the pieces.
template <typename T>
struct OptimChunkKernels {
  void (*sgd)(const SgdScalars&, const OptimChunk<T>&);
  void (*adagrad)(const AdagradScalars&, const OptimChunk<T>&);
  void (*rmsprop)(const RmspropScalars&, const OptimChunk<T>&);
  void (*adadelta)(const AdadeltaScalars&, const OptimChunk<T>&);
  void (*adam)(const AdamScalars&, const OptimChunk<T>&);
  void (*nadam)(const NadamScalars&, const OptimChunk<T>&);
  const char* name;
};

// One table per ISA and dtype, each defined by optim_<isa>.cpp; the driver takes the
// active ISA's with isa_table<OptimChunkKernels<T>>() (dispatch.h).
MG_DECLARE_KERNEL_TABLES(OptimChunkKernels<float>)
MG_DECLARE_KERNEL_TABLES(OptimChunkKernels<double>)

}  // namespace mg
