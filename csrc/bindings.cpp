// The only pybind11 translation unit: validates arguments (check.h), releases the GIL, calls
// the kernels, and reports which implementation each family runs. Kernels never see an
// unchecked size.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <stdexcept>

#include "batchnorm.h"
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

// ----------------------------------------------------------------------------- BATCHNORM
// x, out, grads: (N, C, S) with S = H*W (the Python op reshapes); per-channel vectors (C,).
// Optional vectors (weight, bias, running stats, grads to skip) are None.
template <typename T>
const T* optional_vector(const py::object& v, const char* op, const char* arg, int64_t c,
                         bool writable = false) {
  if (v.is_none()) return nullptr;
  if (!py::isinstance<py::array>(v))
    throw py::type_error(std::string(op) + ": " + arg + " must be a numpy array or None");
  return checked<T>(v.cast<py::array>(), op, arg, {c}, writable);
}

template <typename T>
void distinct_from_input(const py::array& x, const T* out, const char* op, const char* arg) {
  if (static_cast<const void*>(out) == x.data())
    throw py::value_error(std::string(op) + ": " + arg + " must not share memory with x");
}

template <typename T, bool Ref>
void bn_forward_train_typed(const py::array& x, const py::object& weight, const py::object& bias,
                            const py::object& running_mean, const py::object& running_var,
                            const py::array& out, const py::array& save_mean,
                            const py::array& save_invstd, double momentum, double eps, bool relu) {
  const char* op = "batch_norm_forward_train";
  const T* px = checked<T>(x, op, "x", {kAny, kAny, kAny});
  const int64_t n = x.shape(0), c = x.shape(1), s = x.shape(2);
  if (n * s <= 1)
    throw py::value_error(std::string(op) + ": expected more than 1 value per channel when "
                          "training, got x of shape " + shape_str(x));
  const T* g = optional_vector<T>(weight, op, "weight", c);
  const T* b = optional_vector<T>(bias, op, "bias", c);
  T* rm = const_cast<T*>(optional_vector<T>(running_mean, op, "running_mean", c, true));
  T* rv = const_cast<T*>(optional_vector<T>(running_var, op, "running_var", c, true));
  T* y = checked<T>(out, op, "out", {n, c, s}, true);
  T* sm = checked<T>(save_mean, op, "save_mean", {c}, true);
  T* si = checked<T>(save_invstd, op, "save_invstd", {c}, true);
  distinct_from_input(x, y, op, "out");
  py::gil_scoped_release release;
  (Ref ? batch_norm_forward_train_ref<T> : batch_norm_forward_train<T>)(
      px, n, c, s, g, b, rm, rv, momentum, eps, relu, y, sm, si);
}

template <typename T, bool Ref>
void bn_forward_eval_typed(const py::array& x, const py::object& weight, const py::object& bias,
                           const py::array& running_mean, const py::array& running_var,
                           const py::array& out, const py::array& save_mean,
                           const py::array& save_invstd, double eps, bool relu) {
  const char* op = "batch_norm_forward_eval";
  const T* px = checked<T>(x, op, "x", {kAny, kAny, kAny});
  const int64_t n = x.shape(0), c = x.shape(1), s = x.shape(2);
  const T* g = optional_vector<T>(weight, op, "weight", c);
  const T* b = optional_vector<T>(bias, op, "bias", c);
  const T* rm = checked<T>(running_mean, op, "running_mean", {c});
  const T* rv = checked<T>(running_var, op, "running_var", {c});
  T* y = checked<T>(out, op, "out", {n, c, s}, true);
  T* sm = checked<T>(save_mean, op, "save_mean", {c}, true);
  T* si = checked<T>(save_invstd, op, "save_invstd", {c}, true);
  distinct_from_input(x, y, op, "out");
  py::gil_scoped_release release;
  (Ref ? batch_norm_forward_eval_ref<T> : batch_norm_forward_eval<T>)(px, n, c, s, g, b, rm, rv,
                                                                      eps, relu, y, sm, si);
}

template <typename T, bool Ref>
void bn_backward_typed(const py::array& x, const py::array& grad_out, const py::object& weight,
                       const py::object& bias, const py::array& mean, const py::array& invstd,
                       const py::object& grad_input, const py::object& grad_weight,
                       const py::object& grad_bias, bool training, bool relu) {
  const char* op = "batch_norm_backward";
  const T* px = checked<T>(x, op, "x", {kAny, kAny, kAny});
  const int64_t n = x.shape(0), c = x.shape(1), s = x.shape(2);
  const T* dy = checked<T>(grad_out, op, "grad_out", {n, c, s});
  const T* g = optional_vector<T>(weight, op, "weight", c);
  const T* b = optional_vector<T>(bias, op, "bias", c);
  const T* mu = checked<T>(mean, op, "mean", {c});
  const T* is = checked<T>(invstd, op, "invstd", {c});
  T* dx = nullptr;
  if (!grad_input.is_none()) {
    if (!py::isinstance<py::array>(grad_input))
      throw py::type_error(std::string(op) + ": grad_input must be a numpy array or None");
    dx = checked<T>(grad_input.cast<py::array>(), op, "grad_input", {n, c, s}, true);
    distinct_from_input(x, dx, op, "grad_input");
    distinct_from_input(grad_out, dx, op, "grad_input");
  }
  T* dg = const_cast<T*>(optional_vector<T>(grad_weight, op, "grad_weight", c, true));
  T* db = const_cast<T*>(optional_vector<T>(grad_bias, op, "grad_bias", c, true));
  if (training && n * s <= 1)
    throw py::value_error(std::string(op) + ": expected more than 1 value per channel when "
                          "training, got x of shape " + shape_str(x));
  py::gil_scoped_release release;
  (Ref ? batch_norm_backward_ref<T> : batch_norm_backward<T>)(px, dy, n, c, s, g, b, mu, is,
                                                              training, relu, dx, dg, db);
}

// The dtype of x picks the instantiation; every other array must then match it.
template <bool Ref>
void bn_forward_train_binding(const py::array& x, const py::object& weight, const py::object& bias,
                              const py::object& running_mean, const py::object& running_var,
                              const py::array& out, const py::array& save_mean,
                              const py::array& save_invstd, double momentum, double eps,
                              bool relu) {
  if (is_dtype(x, py::dtype::of<double>()))
    bn_forward_train_typed<double, Ref>(x, weight, bias, running_mean, running_var, out,
                                        save_mean, save_invstd, momentum, eps, relu);
  else
    bn_forward_train_typed<float, Ref>(x, weight, bias, running_mean, running_var, out,
                                       save_mean, save_invstd, momentum, eps, relu);
}

template <bool Ref>
void bn_forward_eval_binding(const py::array& x, const py::object& weight, const py::object& bias,
                             const py::array& running_mean, const py::array& running_var,
                             const py::array& out, const py::array& save_mean,
                             const py::array& save_invstd, double eps, bool relu) {
  if (is_dtype(x, py::dtype::of<double>()))
    bn_forward_eval_typed<double, Ref>(x, weight, bias, running_mean, running_var, out,
                                       save_mean, save_invstd, eps, relu);
  else
    bn_forward_eval_typed<float, Ref>(x, weight, bias, running_mean, running_var, out,
                                      save_mean, save_invstd, eps, relu);
}

template <bool Ref>
void bn_backward_binding(const py::array& x, const py::array& grad_out, const py::object& weight,
                         const py::object& bias, const py::array& mean, const py::array& invstd,
                         const py::object& grad_input, const py::object& grad_weight,
                         const py::object& grad_bias, bool training, bool relu) {
  if (is_dtype(x, py::dtype::of<double>()))
    bn_backward_typed<double, Ref>(x, grad_out, weight, bias, mean, invstd, grad_input,
                                   grad_weight, grad_bias, training, relu);
  else
    bn_backward_typed<float, Ref>(x, grad_out, weight, bias, mean, invstd, grad_input,
                                  grad_weight, grad_bias, training, relu);
}

template <bool Ref>
void def_batch_norm(py::module_& m) {
  m.def("batch_norm_forward_train", &bn_forward_train_binding<Ref>, "x"_a.noconvert(),
        "weight"_a.none(true), "bias"_a.none(true), "running_mean"_a.none(true),
        "running_var"_a.none(true), "out"_a.noconvert(), "save_mean"_a.noconvert(),
        "save_invstd"_a.noconvert(), "momentum"_a, "eps"_a, "relu"_a = false,
        "Training batch norm of x (N, C, S): batch statistics, running-stat update, out");
  m.def("batch_norm_forward_eval", &bn_forward_eval_binding<Ref>, "x"_a.noconvert(),
        "weight"_a.none(true), "bias"_a.none(true), "running_mean"_a.noconvert(),
        "running_var"_a.noconvert(), "out"_a.noconvert(), "save_mean"_a.noconvert(),
        "save_invstd"_a.noconvert(), "eps"_a, "relu"_a = false,
        "Inference batch norm of x (N, C, S) from running statistics");
  m.def("batch_norm_backward", &bn_backward_binding<Ref>, "x"_a.noconvert(),
        "grad_out"_a.noconvert(), "weight"_a.none(true), "bias"_a.none(true),
        "mean"_a.noconvert(), "invstd"_a.noconvert(), "grad_input"_a.none(true),
        "grad_weight"_a.none(true), "grad_bias"_a.none(true), "training"_a, "relu"_a = false,
        "Gradients of batch norm (grad_* arrays written; None skips one)");
}
// --------------------------------------------------------------------------- /BATCHNORM

// ------------------------------------------------------------------------- backend info
py::dict backend_info() {
  py::dict impl;
  impl["gemm"] = gemm_impl_name();
  impl["batch_norm"] = batch_norm_impl_name();  // BATCHNORM
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

  def_batch_norm<false>(m);  // BATCHNORM
  def_batch_norm<true>(ref);  // BATCHNORM
}
