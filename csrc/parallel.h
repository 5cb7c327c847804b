// How many threads a kernel call gets: one home for the team-size rule of every family.
//
// A call's team comes from its work (team_for): a cost model per kernel family and ISA says
// how much work pays for one more thread (parallel.cpp, kTeamCost, with the measurements
// behind it). The result is capped by the thread count (set_num_threads; its default comes
// from Python, minigrad/threads.py) and, while other processes keep the CPUs busy, by the
// CPUs they leave free (shrink_when_busy). Every `#pragma omp parallel` passes its team
// with num_threads(), so the count applies whichever Python thread calls the kernel.
// Results never depend on the team (csrc/README.md, "Threads"), so shrinking is safe.
#pragma once
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <limits>

namespace mg {

// The kernel families and the unit each measures its work in.
enum class Work : int {
  eltwise,    // elements
  optim,      // parameter elements of the whole group
  batchnorm,  // elements of the activation
  pool,       // output elements times window size
  conv,       // floating-point operations
  gemm,       // multiply-adds (m * n * k)
  count_
};

int num_threads();  // the cap set by set_num_threads (or the runtime's default)
void set_num_threads(int n);

// Threads for a call doing `work` units of family `family`, at most `max_useful` (the items the
// call can hand out: images, planes, tiles). 1 inside an enclosing parallel region: no
// nested teams.
int team_for(Work family, int64_t work,
             int64_t max_useful = std::numeric_limits<int64_t>::max());

// The work (in the family's units) from which two threads beat one: the cost model's
// first crossover, for tests and `minigrad info`.
int64_t team_crossover(Work family);
const char* work_name(Work family);

// Policy switches (minigrad.set_thread_policy). size_by_work = false gives every call the
// whole cap (tests that must run each team size); shrink_when_busy = false ignores the load.
struct ThreadPolicy {
  bool size_by_work = true;
  bool shrink_when_busy = true;
};
ThreadPolicy thread_policy();
void set_thread_policy(ThreadPolicy p);

// The load the shrinking sees: CPUs this process may use, CPU-equivalents other processes
// kept busy over the last sample, and the cap it set (0: none). Samples at most every
// kLoadSampleMs, on the calling thread, outside parallel regions.
struct LoadSample {
  int cpus = 0;
  double others_busy = 0.0;
  int cap = 0;
  bool readable = false;
};
LoadSample load_sample();
// Parses /proc/stat text: busy and total jiffies over the CPUs in `allowed` (nullptr: all).
// Exposed for tests.
bool parse_proc_stat(const char* text, const bool* allowed, int allowed_size, double* busy,
                     double* total);

// Splits [0, n) into `parts` nearly equal contiguous ranges; returns part `i`.
inline void split_range(int64_t n, int parts, int i, int64_t* begin, int64_t* end) {
  const int64_t base = n / parts, extra = n % parts;
  *begin = i * base + std::min<int64_t>(i, extra);
  *end = *begin + base + (i < extra ? 1 : 0);
}

}  // namespace mg
