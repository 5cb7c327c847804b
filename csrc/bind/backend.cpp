// backend_info, the thread count and the size bound: what Python asks about the build and
// sets for every kernel, rather than any one family's entry points.
#include <utility>
#include <vector>

#include "bind/bind.h"
#include "dispatch.h"
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
                  "num_threads"_a = num_threads(), "openmp"_a = _OPENMP,
                  "compiler"_a = MINIGRAD_COMPILER, "build_flags"_a = MINIGRAD_BUILD_FLAGS,
                  "implementations"_a = impl, "malloc_tuning"_a = g_allocator_tuned);
}
}  // namespace

void add_implementation(const char* key, std::string (*name)()) {
  implementations().emplace_back(key, name);
}

void bind_backend(py::module_& m) {
  check_isa_env();
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
  m.attr("MAX_SIZE") = py::int_(kMaxSize);  // the Sizes bound (check.h)
}

}  // namespace mg
