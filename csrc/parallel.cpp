#include "parallel.h"

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>

#include "dispatch.h"

namespace mg {
namespace {

// ------------------------------------------------------------------------- the cost model
// One call on t threads takes about  T(t) = work / rate + member_cost * (t - 1):
// the work shared out, plus what each extra team member costs (waking it, the barrier at
// the end, its share of cache misses on data another core wrote). Two threads beat one from
// work = 2 * rate * member_cost, the crossover, which is what is measured; with
// grain = crossover / 2 the best whole t is the largest with t (t - 1) <= work / grain: four
// threads pay from 6 crossovers of work, eight from 28, sixteen from 120. So a 6x28x28 ReLU
// (4704 elements) stays on the calling thread and a large convolution uses every thread.
//
// Crossovers in each family's work units (parallel.h, Work), rounded from several runs of
// `python -m bench.crossover` (each kernel over a ladder of sizes at 1 and 2 threads, a 20 us
// Python pause between calls as in training, GOMP_SPINCOUNT as minigrad sets it) on a 2-core
// AVX2 EPYC, with MINIGRAD_ISA=generic for the first column. No AVX-512 machine was at hand:
// that column is the AVX2 crossover times the single-thread speed-up of the family's AVX-512
// kernels (about 1.8x for GEMM and convolution, 1.2x for the memory-bound families), as the
// crossover scales with the rate. Re-measure there before trusting it. The member cost itself
// grows with the machine (a 16-core barrier costs more than a 2-core one); the model charges
// it per member, so large teams need proportionally more work.
struct FamilyCrossover {
  const char* name;
  double work[3];  // generic, avx2, avx512
};
constexpr FamilyCrossover kTeamCost[static_cast<int>(Work::count_)] = {
    {"eltwise", {15000, 20000, 24000}},    // ReLU forward; runs gave 1.2e4 to 2.3e4 elements
    {"optim", {15000, 16000, 19000}},      // SGD momentum over 4 tensors
    {"batchnorm", {1000, 1500, 1800}},     // (n, 16, 64) training forward: per-channel passes
    {"pool", {5000, 3000, 3600}},          // 2x2 max pool, output elements x window
    {"conv", {300000, 300000, 540000}},    // 16->16 3x3 on 8x8: one image (2.9e5 flop) is the unit
    {"gemm", {60000, 200000, 360000}},     // square products; the last crossing (a band of sizes
                                           // near 1e5 goes either way)
};

double grain(Work family) {
  static const int isa = static_cast<int>(active_isa());
  return kTeamCost[static_cast<int>(family)].work[isa] / 2;
}

// ------------------------------------------------------------------------ thread count
std::atomic<int> g_threads{0};
std::atomic<bool> g_size_by_work{true};
std::atomic<bool> g_shrink_when_busy{true};
// After fork() the child's copy of the OpenMP runtime may wait forever on the parent's
// worker threads, which do not exist in the child: run the child's kernels on one thread.
std::atomic<bool> g_forked_child{false};

void on_fork_child() { g_forked_child.store(true); }

int initial_threads() {
  static const bool registered = [] { return pthread_atfork(nullptr, nullptr, on_fork_child) == 0; }();
  (void)registered;
  return std::max(1, omp_get_max_threads());  // honours OMP_NUM_THREADS
}

// ------------------------------------------------------------------- the machine's load
// Other processes' demand for the CPUs this process may run on: the busy share of those CPUs
// in /proc/stat over the last interval, minus this process's own CPU time. While others keep
// k CPUs busy, teams are capped at the CPUs left (rounded, at least one): a team larger than
// the free CPUs waits at every barrier for a member the scheduler has parked for a whole time
// slice (milliseconds, for a kernel of microseconds). The jiffy counters tick 100 times a
// second, so an interval of kLoadSampleMs on 2 CPUs resolves 0.025 CPU.
constexpr int64_t kLoadSampleMs = 200;

struct LoadReading {
  double busy = 0, total = 0, own_cpu_s = 0, wall_s = 0;
};

std::mutex g_load_mutex;
LoadSample g_load;                   // guarded by g_load_mutex
LoadReading g_last_reading;          // guarded by g_load_mutex
bool g_have_reading = false;         // guarded by g_load_mutex
std::atomic<int> g_load_cap{0};      // 0: no cap
std::atomic<int64_t> g_next_sample_ms{0};

double clock_seconds(clockid_t id) {
  timespec ts{};
  clock_gettime(id, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

int64_t coarse_ms() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

bool read_file(const char* path, std::string* out) {
  const int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[8192];
  out->clear();
  for (;;) {
    const ssize_t got = read(fd, buf, sizeof buf);
    if (got < 0) {
      close(fd);
      return false;
    }
    if (got == 0) break;
    out->append(buf, static_cast<size_t>(got));
  }
  close(fd);
  return true;
}

// Takes a reading and updates g_load / g_load_cap; called with g_load_mutex held.
void sample_load() {
  cpu_set_t set;
  CPU_ZERO(&set);
  const int cpus = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 0;
  bool allowed[CPU_SETSIZE];
  for (int c = 0; c < CPU_SETSIZE; ++c) allowed[c] = CPU_ISSET(c, &set);
  std::string text;
  LoadReading now;
  if (cpus <= 0 || !read_file("/proc/stat", &text) ||
      !parse_proc_stat(text.c_str(), allowed, CPU_SETSIZE, &now.busy, &now.total)) {
    g_load.readable = false;
    g_load_cap.store(0);
    return;
  }
  now.own_cpu_s = clock_seconds(CLOCK_PROCESS_CPUTIME_ID);
  now.wall_s = clock_seconds(CLOCK_MONOTONIC);
  g_load.readable = true;
  g_load.cpus = cpus;
  // A reading much older than the sampling interval spans a time this process called no
  // kernels (between a benchmark's turns, an evaluation in Python): what others did then says
  // little about now, so it only starts a new interval, and teams are not capped meanwhile.
  const bool fresh = now.wall_s - g_last_reading.wall_s <= 2e-3 * kLoadSampleMs;
  if (g_have_reading && !fresh) {
    g_load.cap = 0;
    g_load_cap.store(0);
  } else if (g_have_reading && now.total > g_last_reading.total && now.wall_s > g_last_reading.wall_s) {
    const double busy_cpus = cpus * (now.busy - g_last_reading.busy) / (now.total - g_last_reading.total);
    const double own = (now.own_cpu_s - g_last_reading.own_cpu_s) / (now.wall_s - g_last_reading.wall_s);
    g_load.others_busy = std::max(0.0, busy_cpus - own);
    // Half a CPU of others' work is noise or a light background task; from there on, round.
    g_load.cap = g_load.others_busy >= 0.5
                     ? std::max(1, static_cast<int>(std::lround(cpus - g_load.others_busy)))
                     : 0;
    g_load_cap.store(g_load.cap);
  }
  g_last_reading = now;
  g_have_reading = true;
}

// The load cap, refreshed on the calling thread when the last sample is old. Another thread
// sampling at the moment means this call uses the cap as it stands.
int load_cap() {
  if (!g_shrink_when_busy.load(std::memory_order_relaxed)) return 0;
  const int64_t now = coarse_ms();
  if (now >= g_next_sample_ms.load(std::memory_order_relaxed)) {
    std::unique_lock<std::mutex> lock(g_load_mutex, std::try_to_lock);
    if (lock.owns_lock() && now >= g_next_sample_ms.load(std::memory_order_relaxed)) {
      g_next_sample_ms.store(now + kLoadSampleMs);
      sample_load();
    }
  }
  return g_load_cap.load(std::memory_order_relaxed);
}

}  // namespace

bool parse_proc_stat(const char* text, const bool* allowed, int allowed_size, double* busy,
                     double* total) {
  *busy = *total = 0;
  bool any = false;
  for (const char* line = text; *line;) {
    const char* end = std::strchr(line, '\n');
    if (!end) end = line + std::strlen(line);
    // Per-CPU lines: "cpuN user nice system idle iowait irq softirq steal ..." (jiffies)
    if (std::strncmp(line, "cpu", 3) == 0 && line[3] >= '0' && line[3] <= '9') {
      char* p = nullptr;
      const long cpu = std::strtol(line + 3, &p, 10);
      if (cpu >= 0 && cpu < allowed_size && (!allowed || allowed[cpu])) {
        double field[8] = {};
        int n = 0;
        for (; n < 8 && p < end; ++n) {
          char* q = nullptr;
          field[n] = std::strtod(p, &q);
          if (q == p || q > end) break;
          p = q;
        }
        if (n >= 4) {
          // Idle and waiting for I/O are free; user, nice, system, interrupts and time the
          // hypervisor gave to another guest (steal) are not.
          const double idle = field[3] + field[4];
          const double used = field[0] + field[1] + field[2] + field[5] + field[6] + field[7];
          *busy += used;
          *total += used + idle;
          any = true;
        }
      }
    }
    line = *end ? end + 1 : end;
  }
  return any;
}

int num_threads() {
  if (g_forked_child.load(std::memory_order_relaxed)) return 1;
  int n = g_threads.load(std::memory_order_relaxed);
  if (n <= 0) {
    n = initial_threads();
    g_threads.store(n);
  }
  return n;
}

void set_num_threads(int n) {
  initial_threads();
  g_threads.store(std::max(1, n));
}

int team_for(Work family, int64_t work, int64_t max_useful) {
  if (omp_in_parallel() || work <= 0 || max_useful <= 1) return 1;
  int limit = static_cast<int>(std::min<int64_t>(num_threads(), max_useful));
  if (limit <= 1) return 1;
  int team = limit;
  if (g_size_by_work.load(std::memory_order_relaxed)) {
    // one more member pays while t (t - 1) <= work / grain: the largest such t
    const double r = static_cast<double>(work) / grain(family);
    const double best = std::floor((1.0 + std::sqrt(1.0 + 4.0 * r)) / 2.0);
    team = static_cast<int>(std::min<double>(limit, std::max(1.0, best)));
    if (team <= 1) return 1;
  }
  const int cap = load_cap();
  return cap > 0 ? std::min(team, cap) : team;
}

int64_t team_crossover(Work family) { return static_cast<int64_t>(std::ceil(2 * grain(family))); }

const char* work_name(Work family) { return kTeamCost[static_cast<int>(family)].name; }

ThreadPolicy thread_policy() {
  return ThreadPolicy{g_size_by_work.load(), g_shrink_when_busy.load()};
}

void set_thread_policy(ThreadPolicy p) {
  g_size_by_work.store(p.size_by_work);
  g_shrink_when_busy.store(p.shrink_when_busy);
  if (!p.shrink_when_busy) g_load_cap.store(0);
}

LoadSample load_sample() {
  load_cap();
  std::lock_guard<std::mutex> lock(g_load_mutex);
  return g_load;
}

}  // namespace mg
