// backend_info, the thread count and the size bound: what Python asks about the build and
// sets for every kernel, rather than any one family's entry points.
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "bind/bind.h"
#include "dispatch.h"
#include "gemm/bf16.h"
#include "memory.h"
#include "parallel.h"

namespace mg {
namespace {
std::vector<std::pair<const char*, std::string (*)()>>& implementations() {
  static std::vector<std::pair<const char*, std::string (*)()>> list;
  return list;
}

bool g_allocator_tuned = false;  // set once at import (memory.cpp)

py::dict backend_info() {
  py::dict impl;
  for (const auto& [key, name] : implementations()) impl[key] = name();
  return py::dict("isa"_a = isa_name(active_isa()), "cpu_isa"_a = isa_name(cpu_isa()),
                  "built_isa"_a = isa_name(kBuiltIsa),
                  "num_threads"_a = num_threads(), "openmp"_a = _OPENMP,
                  "compiler"_a = MINIGRAD_COMPILER, "build_flags"_a = MINIGRAD_BUILD_FLAGS,
                  "implementations"_a = impl, "malloc_tuning"_a = g_allocator_tuned,
                  "bf16_kernel"_a = bf16_road_name(bf16_active_road()),
                  "cpu_bf16_kernel"_a = bf16_road_name(bf16_cpu_road()));
}
}  // namespace

void add_implementation(const char* key, std::string (*name)()) {
  implementations().emplace_back(key, name);
}

void bind_backend(py::module_& m) {
  check_isa_env();
  check_bf16_env();
  num_threads();  // registers the fork handler before any parallel region runs
  g_allocator_tuned = tune_allocator();

  m.def("backend_info", &backend_info, "Chosen ISA, thread count, compiler, flags, implementations");
  m.def("set_num_threads", [](int n) {
    // Every parallel region may start this many threads: a count the OS cannot create would
    // abort inside the OpenMP runtime, so refuse absurd ones here.
    constexpr int kMaxThreads = 4096;
    if (n < 1 || n > kMaxThreads)
      throw py::value_error("set_num_threads: n must lie in [1, " + std::to_string(kMaxThreads) +
                            "], got " + std::to_string(n));
    set_num_threads(n);
  }, "n"_a);
  m.def("get_num_threads", &num_threads);
  m.def("set_thread_policy", [](bool size_by_work, bool shrink_when_busy) {
    set_thread_policy(ThreadPolicy{size_by_work, shrink_when_busy});
  }, "size_by_work"_a, "shrink_when_busy"_a,
        "Team sizes from the work (else the whole cap) and shrinking while other processes are busy");
  m.def("thread_policy", [] {
    const ThreadPolicy p = thread_policy();
    const LoadSample load = load_sample();
    py::dict crossover;
    for (int f = 0; f < static_cast<int>(Work::count_); ++f)
      crossover[work_name(static_cast<Work>(f))] = team_crossover(static_cast<Work>(f));
    return py::dict("size_by_work"_a = p.size_by_work, "shrink_when_busy"_a = p.shrink_when_busy,
                    "load_readable"_a = load.readable, "cpus"_a = load.cpus,
                    "others_busy"_a = load.others_busy, "busy_cap"_a = load.cap,
                    "crossover"_a = crossover);
  }, "The team-size policy, the load the shrinking sees, and each family's 1-to-2 crossover");
  m.def("team_for", [](const std::string& family, int64_t work) {
    for (int f = 0; f < static_cast<int>(Work::count_); ++f)
      if (family == work_name(static_cast<Work>(f))) return team_for(static_cast<Work>(f), work);
    throw py::value_error("team_for: unknown kernel family '" + family + "'");
  }, "family"_a, "work"_a, "The team a call of that family and work would get now");
  m.def("parse_proc_stat", [](const std::string& text, std::optional<std::vector<int>> cpus) {
    constexpr int kCpus = 1024;
    bool allowed[kCpus];
    std::fill(allowed, allowed + kCpus, !cpus);
    if (cpus)
      for (int c : *cpus) {
        if (c < 0 || c >= kCpus)
          throw py::value_error("parse_proc_stat: CPU " + std::to_string(c) + " outside [0, 1024)");
        allowed[c] = true;
      }
    double busy = 0, total = 0;
    const bool ok = parse_proc_stat(text.c_str(), allowed, kCpus, &busy, &total);
    return py::make_tuple(ok, busy, total);
  }, "text"_a, "cpus"_a = py::none(), "Busy and total jiffies of /proc/stat text over the CPUs given");
  m.attr("MAX_SIZE") = py::int_(kMaxSize);  // the Sizes bound (check.h)
}

}  // namespace mg
