// The only pybind11 translation unit: validates arguments (check.h), releases the GIL, calls
// the kernels, and reports which implementation each family runs. Kernels never see an
// unchecked size.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <stdexcept>

#include "check.h"
#include "dispatch.h"
#include "gemm/gemm.h"
#include "parallel.h"

namespace py = pybind11;
using namespace pybind11::literals;

namespace mg {
namespace {

// ---------------------------------------------------------------------------------- GEMM
// out[b] = alpha * op(a[b or 0]) @ op(b[b or 0]) + beta * out[b]; all three arrays are 3-D
// (batch, rows, cols); an operand with batch 1 is broadcast.
template <typename T, bool Ref>
void gemm_typed(const py::array& a, const py::array& b, const py::array& out, bool ta, bool tb,
                double alpha, double beta) {
  const char* op = Ref ? "gemm_ref" : "gemm";
  checked<T>(a, op, "a", {kAny, kAny, kAny});
  checked<T>(b, op, "b", {kAny, kAny, kAny});
  const int64_t batch = a.shape(0) > b.shape(0) ? a.shape(0) : b.shape(0);
  const int64_t m = ta ? a.shape(2) : a.shape(1), k = ta ? a.shape(1) : a.shape(2);
  const int64_t kb = tb ? b.shape(2) : b.shape(1), n = tb ? b.shape(1) : b.shape(2);
  if (k != kb || (a.shape(0) != 1 && a.shape(0) != batch) || (b.shape(0) != 1 && b.shape(0) != batch))
    throw py::value_error(std::string(op) + ": cannot multiply a " + shape_str(a) +
                          (ta ? "^T" : "") + " by b " + shape_str(b) + (tb ? "^T" : ""));
  T* c = checked<T>(out, op, "out", {batch, m, n}, true);
  const T* pa = static_cast<const T*>(a.data());
  const T* pb = static_cast<const T*>(b.data());
  const int64_t lda = a.shape(2), ldb = b.shape(2);
  const int64_t sa = a.shape(0) == 1 ? 0 : a.shape(1) * a.shape(2);
  const int64_t sb = b.shape(0) == 1 ? 0 : b.shape(1) * b.shape(2);
  py::gil_scoped_release release;
  for (int64_t i = 0; i < batch; ++i) {
    if (Ref)
      gemm_ref<T>(ta, tb, m, n, k, T(alpha), pa + i * sa, lda, pb + i * sb, ldb, T(beta),
                  c + i * m * n, n);
  }
  if (!Ref)
    gemm_batched<T>(ta, tb, batch, m, n, k, T(alpha), pa, lda, sa, pb, ldb, sb, T(beta), c, n,
                    m * n);
}

template <bool Ref>
void gemm_binding(const py::array& a, const py::array& b, const py::array& out, bool ta, bool tb,
                  double alpha, double beta) {
  if (is_dtype(out, py::dtype::of<double>()))
    gemm_typed<double, Ref>(a, b, out, ta, tb, alpha, beta);
  else
    gemm_typed<float, Ref>(a, b, out, ta, tb, alpha, beta);
}

// ------------------------------------------------------------------------- backend info
py::dict backend_info() {
  py::dict impl;
  impl["gemm"] = gemm_impl_name();
  return py::dict("isa"_a = isa_name(active_isa()), "cpu_isa"_a = isa_name(cpu_isa()),
                  "num_threads"_a = num_threads(), "openmp"_a = _OPENMP,
                  "compiler"_a = MINIGRAD_COMPILER, "build_flags"_a = MINIGRAD_BUILD_FLAGS,
                  "implementations"_a = impl);
}

}  // namespace
}  // namespace mg

PYBIND11_MODULE(_C, m) {
  using namespace mg;
  m.doc() = "minigrad's compiled kernels (validated entry points; see csrc/README.md)";
  check_isa_env();
  num_threads();  // registers the fork handler before any parallel region runs

  m.def("backend_info", &backend_info, "Chosen ISA, thread count, compiler, flags, implementations");
  m.def("set_num_threads", &set_num_threads, "n"_a);
  m.def("get_num_threads", &num_threads);

  m.def("gemm", &gemm_binding<false>, "a"_a.noconvert(), "b"_a.noconvert(), "out"_a.noconvert(),
        "trans_a"_a = false, "trans_b"_a = false, "alpha"_a = 1.0, "beta"_a = 0.0);

  py::module_ ref = m.def_submodule("ref", "Plain scalar reference kernels (test oracles)");
  ref.def("gemm", &gemm_binding<true>, "a"_a.noconvert(), "b"_a.noconvert(), "out"_a.noconvert(),
          "trans_a"_a = false, "trans_b"_a = false, "alpha"_a = 1.0, "beta"_a = 0.0);
}
