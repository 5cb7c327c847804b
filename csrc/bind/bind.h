// What every family's bindings share: pybind11, the checking core (check.h), the geometry
// argument types, and the one registration function per family that bindings.cpp calls.
// A family binds its fast entry points on `m` and its scalar reference twins, with the same
// names and signatures, on `ref` (_C.ref).
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <array>
#include <cstdint>
#include <string>

#include "check.h"

namespace mg {
namespace py = pybind11;
using namespace pybind11::literals;

// An (height, width) hyper-parameter and an NCHW shape, as Python passes them (tuples).
using Pair = std::array<int64_t, 2>;
using Shape4 = std::array<int64_t, 4>;

template <size_t N>
std::string tuple_str(const std::array<int64_t, N>& v) {
  std::string s = "(";
  for (size_t i = 0; i < N; ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + ")";
}

// Each family's implementation name(s) for backend_info()["implementations"], registered by
// the family's bind_* function (in binding order, which is the dictionary's order).
void add_implementation(const char* key, std::string (*name)());

void bind_backend(py::module_& m);  // backend_info, thread count, MAX_SIZE
void bind_gemm(py::module_& m, py::module_& ref);
void bind_conv(py::module_& m, py::module_& ref);
void bind_pool(py::module_& m, py::module_& ref);
void bind_batchnorm(py::module_& m, py::module_& ref);
void bind_optim(py::module_& m, py::module_& ref);
void bind_eltwise(py::module_& m, py::module_& ref);

}  // namespace mg
