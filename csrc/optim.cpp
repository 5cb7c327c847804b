// Fused optimiser steps over a whole parameter group in one call.
//
// The group's tensors are laid end to end in one virtual index space of `total` elements;
// each thread takes one contiguous, nearly equal share of it (split on cache-line multiples
// so no two threads write the same line of one tensor) and walks the tensors overlapping its
// share, calling the ISA's chunk kernel on each piece. Tiny groups run on the calling thread:
// a parallel region costs more than they take.
#include <omp.h>

#include "dispatch.h"
#include "optim.h"
#include "parallel.h"

namespace mg {
namespace {

constexpr int64_t kLine = 16;      // split points are multiples of this many elements

template <typename T>
const OptimChunkKernels<T>& kernels() {
  return isa_table<OptimChunkKernels<T>>();
}

template <typename T>
OptimChunk<T> chunk_of(const OptimTensors<T>& t, int64_t i, int64_t begin, int64_t end) {
  auto at = [&](int k) { return t.state[k] ? t.state[k][i] + begin : nullptr; };
  return OptimChunk<T>{t.param[i] + begin, t.grad[i] + begin, at(0), at(1), at(2), end - begin};
}

// Calls fn(scalars, chunk) on every element of the group exactly once.
template <typename T, typename S>
void for_each_chunk(void (*fn)(const S&, const OptimChunk<T>&), const S& s, const OptimTensors<T>& t) {
  int64_t total = 0;
  for (int64_t i = 0; i < t.count; ++i) total += t.sizes[i];
  const int threads = team_for(Work::optim, total);
  if (threads <= 1) {
    for (int64_t i = 0; i < t.count; ++i)
      if (t.sizes[i] > 0) fn(s, chunk_of(t, i, 0, t.sizes[i]));
    return;
  }
  const int64_t lines = (total + kLine - 1) / kLine;
#pragma omp parallel num_threads(threads)
  {
    int64_t first_line, last_line;
    split_range(lines, omp_get_num_threads(), omp_get_thread_num(), &first_line, &last_line);
    const int64_t lo = first_line * kLine, hi = last_line * kLine < total ? last_line * kLine : total;
    int64_t offset = 0;  // start of tensor i in the virtual index space
    for (int64_t i = 0; i < t.count && offset < hi; offset += t.sizes[i], ++i) {
      const int64_t b = lo > offset ? lo : offset;
      const int64_t e = hi < offset + t.sizes[i] ? hi : offset + t.sizes[i];
      if (b < e) fn(s, chunk_of(t, i, b - offset, e - offset));
    }
  }
}

}  // namespace

template <typename T>
void sgd_step(const SgdScalars& s, const OptimTensors<T>& t) { for_each_chunk(kernels<T>().sgd, s, t); }
template <typename T>
void adagrad_step(const AdagradScalars& s, const OptimTensors<T>& t) { for_each_chunk(kernels<T>().adagrad, s, t); }
template <typename T>
void rmsprop_step(const RmspropScalars& s, const OptimTensors<T>& t) { for_each_chunk(kernels<T>().rmsprop, s, t); }
template <typename T>
void adadelta_step(const AdadeltaScalars& s, const OptimTensors<T>& t) { for_each_chunk(kernels<T>().adadelta, s, t); }
template <typename T>
void adam_step(const AdamScalars& s, const OptimTensors<T>& t) { for_each_chunk(kernels<T>().adam, s, t); }
template <typename T>
void nadam_step(const NadamScalars& s, const OptimTensors<T>& t) { for_each_chunk(kernels<T>().nadam, s, t); }

const char* optim_impl_name() { return kernels<float>().name; }

#define MG_OPTIM_INSTANTIATE(T)                                                   \
  template void sgd_step<T>(const SgdScalars&, const OptimTensors<T>&);           \
  template void adagrad_step<T>(const AdagradScalars&, const OptimTensors<T>&);   \
  template void rmsprop_step<T>(const RmspropScalars&, const OptimTensors<T>&);   \
  template void adadelta_step<T>(const AdadeltaScalars&, const OptimTensors<T>&); \
  template void adam_step<T>(const AdamScalars&, const OptimTensors<T>&);         \
  template void nadam_step<T>(const NadamScalars&, const OptimTensors<T>&);
MG_OPTIM_INSTANTIATE(float)
MG_OPTIM_INSTANTIATE(double)
#undef MG_OPTIM_INSTANTIATE

}  // namespace mg
