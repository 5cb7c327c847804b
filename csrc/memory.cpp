// Allocator tuning for training loops.
//
// Every training step allocates and frees the same large activation and gradient arrays.
// glibc serves blocks above its mmap threshold with fresh mmap()s and trims the heap top
// eagerly, so each step's arrays come back as new pages and every first touch page-faults:
// measured here, a ReLU right after a conv ran 3.7x slower than on recycled memory. Raising
// the thresholds keeps freed blocks in the heap for the next step. Opt out with
// MINIGRAD_MALLOC_TUNING=0 (the process then keeps glibc's defaults).
#include "memory.h"

#include <cstdlib>
#include <cstring>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace mg {

bool tune_allocator() {
  const char* env = std::getenv("MINIGRAD_MALLOC_TUNING");
  if (env != nullptr && std::strcmp(env, "0") == 0) return false;
#if defined(__GLIBC__)
  // 1 GiB: larger arrays still get their own mapping; the trim threshold keeps up to 2 GiB
  // of freed memory instead of returning it to the OS after every step.
  const bool mmap_ok = mallopt(M_MMAP_THRESHOLD, 1 << 30) == 1;
  const bool trim_ok = mallopt(M_TRIM_THRESHOLD, 0x7fffffff) == 1;
  return mmap_ok && trim_ok;
#else
  return false;
#endif
}

}  // namespace mg
