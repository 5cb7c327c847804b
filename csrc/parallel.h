// OpenMP helpers shared by every kernel family.
//
// One global thread count (set_num_threads) is passed explicitly to every parallel region
// with num_threads(), so it applies no matter which Python thread calls the kernel.
// Small problems run on one thread: starting a team costs more than they take.
#pragma once
#include <omp.h>

#include <algorithm>
#include <cstdint>

namespace mg {

int num_threads();
void set_num_threads(int n);

// Threads worth using for `work` units when each thread should get at least `grain` units.
// Inside an enclosing parallel region the answer is 1: no nested teams, no oversubscription.
inline int threads_for(int64_t work, int64_t grain) {
  if (omp_in_parallel()) return 1;
  const int64_t useful = std::max<int64_t>(1, work / std::max<int64_t>(1, grain));
  return static_cast<int>(std::min<int64_t>(num_threads(), useful));
}

// Splits [0, n) into `parts` nearly equal contiguous ranges; returns part `i`.
inline void split_range(int64_t n, int parts, int i, int64_t* begin, int64_t* end) {
  const int64_t base = n / parts, extra = n % parts;
  *begin = i * base + std::min<int64_t>(i, extra);
  *end = *begin + base + (i < extra ? 1 : 0);
}

}  // namespace mg
