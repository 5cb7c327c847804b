#include "parallel.h"

#include <pthread.h>

#include <atomic>

namespace mg {
namespace {

std::atomic<int> g_threads{0};
// After fork() the child's copy of the OpenMP runtime may wait forever on the parent's
// worker threads, which do not exist in the child: run the child's kernels on one thread.
std::atomic<bool> g_forked_child{false};

void on_fork_child() { g_forked_child.store(true); }

int initial_threads() {
  static const bool registered = [] { return pthread_atfork(nullptr, nullptr, on_fork_child) == 0; }();
  (void)registered;
  return std::max(1, omp_get_max_threads());  // honours OMP_NUM_THREADS
}

}  // namespace

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

}  // namespace mg
