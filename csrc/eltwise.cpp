// Multithreaded drivers for the element-wise kernels: contiguous chunks per thread, the team
// from the work (team_for; small passes stay on the calling thread).
#include "eltwise.h"

#include "dispatch.h"
#include "parallel.h"

namespace mg {
namespace {

template <typename T>
const EltwiseKernels<T>& table() {
  return isa_table<EltwiseKernels<T>>();
}

// Runs body(begin, end) over [0, n) split into one contiguous chunk per thread.
template <typename Body>
void chunked(int64_t n, Body body) {
  const int team = team_for(Work::eltwise, n);
  if (team <= 1) {
    body(int64_t(0), n);
    return;
  }
#pragma omp parallel num_threads(team)
  {
    int64_t begin, end;
    split_range(n, omp_get_num_threads(), omp_get_thread_num(), &begin, &end);
    body(begin, end);
  }
}

}  // namespace

template <typename T>
void relu_forward(const T* x, T* y, int64_t n) {
  const auto f = table<T>().relu_forward;
  chunked(n, [&](int64_t b, int64_t e) { f(x + b, y + b, e - b); });
}

template <typename T>
void relu_backward(const T* g, const T* y, T* dx, int64_t n) {
  const auto f = table<T>().relu_backward;
  chunked(n, [&](int64_t b, int64_t e) { f(g + b, y + b, dx + b, e - b); });
}

template <typename T>
void add(const T* a, const T* b, T* out, int64_t n) {
  const auto f = table<T>().add;
  chunked(n, [&](int64_t s, int64_t e) { f(a + s, b + s, out + s, e - s); });
}

const char* eltwise_impl_name() { return table<float>().name; }

template void relu_forward<float>(const float*, float*, int64_t);
template void relu_forward<double>(const double*, double*, int64_t);
template void relu_backward<float>(const float*, const float*, float*, int64_t);
template void relu_backward<double>(const double*, const double*, double*, int64_t);
template void add<float>(const float*, const float*, float*, int64_t);
template void add<double>(const double*, const double*, double*, int64_t);
template void relu_forward<bf16>(const bf16*, bf16*, int64_t);
template void relu_backward<bf16>(const bf16*, const bf16*, bf16*, int64_t);
template void add<bf16>(const bf16*, const bf16*, bf16*, int64_t);

// Whole-array conversions (declared in gemm/bf16.h): the active ISA's span, one chunk per thread.
void bf16_from_float(const float* src, bf16* dst, int64_t n) {
  const auto f = isa_table<ConvertKernels>().to_bf16;
  chunked(n, [&](int64_t b, int64_t e) { f(src + b, dst + b, e - b); });
}

void float_from_bf16(const bf16* src, float* dst, int64_t n) {
  const auto f = isa_table<ConvertKernels>().from_bf16;
  chunked(n, [&](int64_t b, int64_t e) { f(src + b, dst + b, e - b); });
}

}  // namespace mg
