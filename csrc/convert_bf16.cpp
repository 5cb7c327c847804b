// float32 <-> bfloat16 conversion of whole arrays (autocast's casts; numpy's ml_dtypes converts
// one value at a time through Python's scalar machinery, ~40x slower). The loops are the scalar
// conversions of bf16.h, which the compiler vectorises; OpenMP splits long arrays.
#include <cstdint>

#include "gemm/bf16.h"
#include "parallel.h"

namespace mg {

void bf16_from_float(const float* src, bf16* dst, int64_t n) {
  const int team = team_for(Work::eltwise, n);
#pragma omp parallel for num_threads(team) schedule(static) if (team > 1)
  for (int64_t i = 0; i < n; ++i) dst[i] = float_to_bf16(src[i]);
}

void float_from_bf16(const bf16* src, float* dst, int64_t n) {
  const int team = team_for(Work::eltwise, n);
#pragma omp parallel for num_threads(team) schedule(static) if (team > 1)
  for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_float(src[i]);
}

}  // namespace mg
