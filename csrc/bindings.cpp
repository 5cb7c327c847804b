// The only pybind11 translation unit: validates arguments (check.h), releases the GIL, calls
// the kernels, and reports which implementation each family runs. Kernels never see an
// unchecked size.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <stdexcept>
#include <vector>

#include "check.h"
#include "dispatch.h"
#include "gemm/gemm.h"
#include "optim.h"
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

// ---------------------------------------------------------------------------------- OPTIM
// Fused optimiser steps: one call per parameter group. Every list element is checked (dtype,
// C-contiguity, writeability, shape equal to its parameter's) before any kernel runs.
template <typename T>
struct GroupArrays {
  std::vector<int64_t> sizes;
  std::vector<T*> param;
  std::vector<const T*> grad;
  std::vector<T*> state[3];
  OptimTensors<T> view() const {
    OptimTensors<T> t;
    t.count = static_cast<int64_t>(param.size());
    t.sizes = sizes.data();
    t.param = param.data();
    t.grad = grad.data();
    for (int k = 0; k < 3; ++k) t.state[k] = state[k].empty() ? nullptr : state[k].data();
    return t;
  }
};

// A list element that must be a C-contiguous T array shaped like `like` (when given).
template <typename T>
T* checked_element(py::handle h, const char* op, const char* arg, size_t i, const py::array* like,
                   bool writable) {
  const std::string name = std::string(arg) + "[" + std::to_string(i) + "]";
  if (!py::isinstance<py::array>(h))
    throw py::type_error(std::string(op) + ": " + name + " must be a numpy array, got " +
                         std::string(py::str(py::type::of(h))));
  auto x = py::reinterpret_borrow<py::array>(h);
  if (!x.dtype().is(py::dtype::of<T>()))
    throw py::type_error(std::string(op) + ": " + name + " must be " +
                         std::string(py::str(py::dtype::of<T>())) + " like params[0], got " +
                         std::string(py::str(x.dtype())));
  if (!(x.flags() & py::array::c_style))
    throw py::value_error(std::string(op) + ": " + name + " must be C-contiguous");
  if (writable && !x.writeable())
    throw py::value_error(std::string(op) + ": " + name + " must be writeable");
  T* ptr = static_cast<T*>(const_cast<void*>(x.data()));
  if (like != nullptr) {
    bool same = x.ndim() == like->ndim();
    for (py::ssize_t d = 0; same && d < x.ndim(); ++d) same = x.shape(d) == like->shape(d);
    if (!same)
      throw py::value_error(std::string(op) + ": " + name + " has shape " + shape_str(x) +
                            " but params[" + std::to_string(i) + "] has shape " + shape_str(*like));
  }
  return ptr;
}

// states: (name, list or None, required) for up to three state lists.
struct StateArg {
  const char* name;
  py::object list;
  bool required;
};

template <typename T>
GroupArrays<T> gather_group(const char* op, const py::sequence& params, const py::sequence& grads,
                            std::initializer_list<StateArg> states) {
  const size_t n = params.size();
  if (grads.size() != n)
    throw py::value_error(std::string(op) + ": got " + std::to_string(n) + " params but " +
                          std::to_string(grads.size()) + " grads");
  GroupArrays<T> g;
  g.sizes.reserve(n);
  g.param.reserve(n);
  g.grad.reserve(n);
  std::vector<py::array> param_arrays;
  param_arrays.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    py::handle h = params[i];
    g.param.push_back(checked_element<T>(h, op, "params", i, nullptr, true));
    param_arrays.push_back(py::reinterpret_borrow<py::array>(h));
    g.sizes.push_back(static_cast<int64_t>(param_arrays.back().size()));
    g.grad.push_back(checked_element<T>(grads[i], op, "grads", i, &param_arrays.back(), false));
  }
  int k = 0;
  for (const StateArg& s : states) {
    if (s.list.is_none()) {
      if (s.required)
        throw py::value_error(std::string(op) + ": " + s.name + " is required with these options");
    } else if (s.required) {
      auto seq = py::reinterpret_borrow<py::sequence>(s.list);
      if (seq.size() != n)
        throw py::value_error(std::string(op) + ": got " + std::to_string(n) + " params but " +
                              std::to_string(seq.size()) + " " + s.name);
      g.state[k].reserve(n);
      for (size_t i = 0; i < n; ++i)
        g.state[k].push_back(checked_element<T>(seq[i], op, s.name, i, &param_arrays[i], true));
    }
    ++k;
  }
  return g;
}

// Runs fn<float> or fn<double> on the dtype of the first parameter (an empty group is a no-op).
template <typename F>
void by_param_dtype(const py::sequence& params, F&& fn) {
  if (params.size() == 0) return;
  py::handle first = params[0];
  if (py::isinstance<py::array>(first) &&
      is_dtype(py::reinterpret_borrow<py::array>(first), py::dtype::of<double>()))
    fn(double{});
  else
    fn(float{});
}

template <bool Ref>
void sgd_binding(const py::sequence& params, const py::sequence& grads, const py::object& bufs,
                 double lr, double momentum, double dampening, double weight_decay, bool nesterov,
                 bool maximize, bool first_step) {
  const SgdScalars s{lr, momentum, dampening, weight_decay, nesterov, maximize, first_step};
  by_param_dtype(params, [&](auto zero) {
    using T = decltype(zero);
    const auto g = gather_group<T>("sgd_step", params, grads, {{"momentum_buffers", bufs, momentum != 0.0}});
    py::gil_scoped_release release;
    Ref ? sgd_step_ref<T>(s, g.view()) : sgd_step<T>(s, g.view());
  });
}

template <bool Ref>
void adagrad_binding(const py::sequence& params, const py::sequence& grads, const py::object& sums,
                     double clr, double eps, double weight_decay, bool maximize) {
  const AdagradScalars s{clr, eps, weight_decay, maximize};
  by_param_dtype(params, [&](auto zero) {
    using T = decltype(zero);
    const auto g = gather_group<T>("adagrad_step", params, grads, {{"sums", sums, true}});
    py::gil_scoped_release release;
    Ref ? adagrad_step_ref<T>(s, g.view()) : adagrad_step<T>(s, g.view());
  });
}

template <bool Ref>
void rmsprop_binding(const py::sequence& params, const py::sequence& grads,
                     const py::object& square_avgs, const py::object& grad_avgs,
                     const py::object& bufs, double lr, double alpha, double eps,
                     double weight_decay, double momentum, bool centered, bool maximize) {
  const RmspropScalars s{lr, alpha, eps, weight_decay, momentum, centered, maximize};
  by_param_dtype(params, [&](auto zero) {
    using T = decltype(zero);
    const auto g = gather_group<T>("rmsprop_step", params, grads,
                                   {{"square_avgs", square_avgs, true},
                                    {"grad_avgs", grad_avgs, centered},
                                    {"momentum_buffers", bufs, momentum > 0.0}});
    py::gil_scoped_release release;
    Ref ? rmsprop_step_ref<T>(s, g.view()) : rmsprop_step<T>(s, g.view());
  });
}

template <bool Ref>
void adadelta_binding(const py::sequence& params, const py::sequence& grads,
                      const py::object& square_avgs, const py::object& acc_deltas, double lr,
                      double rho, double eps, double weight_decay, bool maximize) {
  const AdadeltaScalars s{lr, rho, eps, weight_decay, maximize};
  by_param_dtype(params, [&](auto zero) {
    using T = decltype(zero);
    const auto g = gather_group<T>("adadelta_step", params, grads,
                                   {{"square_avgs", square_avgs, true}, {"acc_deltas", acc_deltas, true}});
    py::gil_scoped_release release;
    Ref ? adadelta_step_ref<T>(s, g.view()) : adadelta_step<T>(s, g.view());
  });
}

template <bool Ref>
void adam_binding(const py::sequence& params, const py::sequence& grads, const py::object& exp_avgs,
                  const py::object& exp_avg_sqs, const py::object& max_exp_avg_sqs, double lr,
                  double beta1, double beta2, double eps, double weight_decay, double step_size,
                  double bias_correction2_sqrt, bool decoupled_weight_decay, bool amsgrad,
                  bool maximize) {
  const AdamScalars s{lr, beta1, beta2, eps, weight_decay, step_size, bias_correction2_sqrt,
                      decoupled_weight_decay, amsgrad, maximize};
  by_param_dtype(params, [&](auto zero) {
    using T = decltype(zero);
    const auto g = gather_group<T>("adam_step", params, grads,
                                   {{"exp_avgs", exp_avgs, true},
                                    {"exp_avg_sqs", exp_avg_sqs, true},
                                    {"max_exp_avg_sqs", max_exp_avg_sqs, amsgrad}});
    py::gil_scoped_release release;
    Ref ? adam_step_ref<T>(s, g.view()) : adam_step<T>(s, g.view());
  });
}

template <bool Ref>
void nadam_binding(const py::sequence& params, const py::sequence& grads, const py::object& exp_avgs,
                   const py::object& exp_avg_sqs, double lr, double beta1, double beta2, double eps,
                   double weight_decay, double bias_correction2, double grad_coef, double avg_coef,
                   bool decoupled_weight_decay, bool maximize) {
  const NadamScalars s{lr, beta1, beta2, eps, weight_decay, bias_correction2, grad_coef, avg_coef,
                       decoupled_weight_decay, maximize};
  by_param_dtype(params, [&](auto zero) {
    using T = decltype(zero);
    const auto g = gather_group<T>("nadam_step", params, grads,
                                   {{"exp_avgs", exp_avgs, true}, {"exp_avg_sqs", exp_avg_sqs, true}});
    py::gil_scoped_release release;
    Ref ? nadam_step_ref<T>(s, g.view()) : nadam_step<T>(s, g.view());
  });
}

// Registers the six steps on `m` (the fast module or _C.ref) with the same signatures.
template <bool Ref>
void def_optim(py::module_& m) {
  m.def("sgd_step", &sgd_binding<Ref>, "params"_a, "grads"_a, "momentum_buffers"_a, py::kw_only(),
        "lr"_a, "momentum"_a, "dampening"_a, "weight_decay"_a, "nesterov"_a, "maximize"_a,
        "first_step"_a);
  m.def("adagrad_step", &adagrad_binding<Ref>, "params"_a, "grads"_a, "sums"_a, py::kw_only(),
        "clr"_a, "eps"_a, "weight_decay"_a, "maximize"_a);
  m.def("rmsprop_step", &rmsprop_binding<Ref>, "params"_a, "grads"_a, "square_avgs"_a,
        "grad_avgs"_a, "momentum_buffers"_a, py::kw_only(), "lr"_a, "alpha"_a, "eps"_a,
        "weight_decay"_a, "momentum"_a, "centered"_a, "maximize"_a);
  m.def("adadelta_step", &adadelta_binding<Ref>, "params"_a, "grads"_a, "square_avgs"_a,
        "acc_deltas"_a, py::kw_only(), "lr"_a, "rho"_a, "eps"_a, "weight_decay"_a, "maximize"_a);
  m.def("adam_step", &adam_binding<Ref>, "params"_a, "grads"_a, "exp_avgs"_a, "exp_avg_sqs"_a,
        "max_exp_avg_sqs"_a, py::kw_only(), "lr"_a, "beta1"_a, "beta2"_a, "eps"_a,
        "weight_decay"_a, "step_size"_a, "bias_correction2_sqrt"_a, "decoupled_weight_decay"_a,
        "amsgrad"_a, "maximize"_a);
  m.def("nadam_step", &nadam_binding<Ref>, "params"_a, "grads"_a, "exp_avgs"_a, "exp_avg_sqs"_a,
        py::kw_only(), "lr"_a, "beta1"_a, "beta2"_a, "eps"_a, "weight_decay"_a,
        "bias_correction2"_a, "grad_coef"_a, "avg_coef"_a, "decoupled_weight_decay"_a,
        "maximize"_a);
}
// ------------------------------------------------------------------------------ end OPTIM

// ------------------------------------------------------------------------- backend info
py::dict backend_info() {
  py::dict impl;
  impl["gemm"] = gemm_impl_name();
  impl["optim"] = optim_impl_name();
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

  def_optim<false>(m);  // OPTIM
  def_optim<true>(ref);  // OPTIM
}
