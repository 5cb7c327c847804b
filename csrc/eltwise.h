// Element-wise kernels for the activations that sit between convolutions: large, memory-bound
// passes where numpy's single-threaded loops (and its temporaries) showed up in profiles.
#pragma once
#include <cstdint>

#include "dispatch.h"
#include "gemm/bf16.h"

namespace mg {

template <typename T>
struct EltwiseKernels {
  void (*relu_forward)(const T* x, T* y, int64_t n);              // y = x < 0 ? 0 : x
  void (*relu_backward)(const T* g, const T* y, T* dx, int64_t n);  // dx = y > 0 ? g : 0
  void (*add)(const T* a, const T* b, T* out, int64_t n);           // out = a + b
  const char* name;
};

// One table per ISA and dtype, each defined by eltwise_<isa>.cpp; the driver takes the
// active ISA's with isa_table<EltwiseKernels<T>>() (dispatch.h).
MG_DECLARE_KERNEL_TABLES(EltwiseKernels<float>)
MG_DECLARE_KERNEL_TABLES(EltwiseKernels<double>)
MG_DECLARE_KERNEL_TABLES(EltwiseKernels<bf16>)

// float32 <-> bfloat16 over a span (the loops of bf16.h's scalar conversions, compiled per ISA:
// AVX-512 rounds 16 values per instruction sequence where the portable build does 4).
struct ConvertKernels {
  void (*to_bf16)(const float* src, bf16* dst, int64_t n);
  void (*from_bf16)(const bf16* src, float* dst, int64_t n);
};
MG_DECLARE_KERNEL_TABLES(ConvertKernels)

// Multithreaded drivers over the ISA chosen at import.
template <typename T>
void relu_forward(const T* x, T* y, int64_t n);
template <typename T>
void relu_backward(const T* g, const T* y, T* dx, int64_t n);
template <typename T>
void add(const T* a, const T* b, T* out, int64_t n);
const char* eltwise_impl_name();

// Scalar references (csrc/ref/eltwise_ref.cpp).
template <typename T>
void relu_forward_ref(const T* x, T* y, int64_t n);
template <typename T>
void relu_backward_ref(const T* g, const T* y, T* dx, int64_t n);
template <typename T>
void add_ref(const T* a, const T* b, T* out, int64_t n);

}  // namespace mg
