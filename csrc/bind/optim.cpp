// sgd/adagrad/rmsprop/adadelta/adam/nadam_step: the fused optimiser updates.
#include <string>
#include <vector>

#include "bind/bind.h"
#include "optim.h"

namespace mg {
namespace {

// Fused optimiser steps: one call per parameter group. Every list element is checked (dtype,
// C-contiguity, writeability, shape equal to its parameter's) before any kernel runs.
template <typename T>
struct GroupArrays {
  // Every array the pointers below point into. A Python sequence may hand out a new array on
  // each __getitem__ that nothing else references: without these references it would be freed
  // (and its memory reused) before the kernel writes through the pointer.
  std::vector<py::array> keep;
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
  g.keep.reserve(n * (2 + states.size()));
  g.sizes.reserve(n);
  g.param.reserve(n);
  g.grad.reserve(n);
  std::vector<Extent> extents;
  extents.reserve(n * (2 + states.size()));
  // Checks one element, holds a reference to it and records its bytes for the overlap check.
  auto take = [&](py::object item, const char* list, size_t i, const py::array* like, bool written) {
    const std::string name = std::string(list) + "[" + std::to_string(i) + "]";
    const Expect want = like ? Expect{{}, like, "params[" + std::to_string(i) + "]"} : Expect{{}, nullptr, {}, true};
    T* ptr = check_array<T>(item, op, name, want, written);
    g.keep.push_back(py::reinterpret_borrow<py::array>(item));
    extents.push_back(extent_of(g.keep.back(), name, written));
    return ptr;
  };
  std::vector<size_t> param_at(n);  // where params[i] sits in g.keep (the shape reference)
  for (size_t i = 0; i < n; ++i) {
    g.param.push_back(take(params[i], "params", i, nullptr, true));
    param_at[i] = g.keep.size() - 1;
    g.sizes.push_back(static_cast<int64_t>(g.keep.back().size()));
    g.grad.push_back(take(grads[i], "grads", i, &g.keep[param_at[i]], false));
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
        g.state[k].push_back(take(seq[i], s.name, i, &g.keep[param_at[i]], true));
    }
    ++k;
  }
  // Each parameter and state buffer is updated in place from its own old values; it must
  // not share bytes with any other list element.
  check_no_overlap(op, std::move(extents));
  return g;
}

// Runs fn(float{}) or fn(double{}) by the dtype of the first parameter (an empty group is a
// no-op; every other element must then match it).
template <typename F>
void by_param_dtype(const char* op, const py::sequence& params, F&& fn) {
  if (params.size() == 0) return;
  const py::object first = params[0];  // owned: the sequence may not keep it alive
  by_dtype(first, op, "params[0]", fn);
}

template <bool Ref>
void sgd_binding(const py::sequence& params, const py::sequence& grads, const py::object& bufs,
                 double lr, double momentum, double dampening, double weight_decay, bool nesterov,
                 bool maximize, bool first_step) {
  check_finite("sgd_step", {{"lr", lr}, {"momentum", momentum}, {"dampening", dampening}, {"weight_decay", weight_decay}});
  const SgdScalars s{lr, momentum, dampening, weight_decay, nesterov, maximize, first_step};
  by_param_dtype("sgd_step", params, [&](auto zero) {
    using T = decltype(zero);
    const auto g = gather_group<T>("sgd_step", params, grads, {{"momentum_buffers", bufs, momentum != 0.0}});
    py::gil_scoped_release release;
    Ref ? sgd_step_ref<T>(s, g.view()) : sgd_step<T>(s, g.view());
  });
}

template <bool Ref>
void adagrad_binding(const py::sequence& params, const py::sequence& grads, const py::object& sums,
                     double clr, double eps, double weight_decay, bool maximize) {
  check_finite("adagrad_step", {{"clr", clr}, {"eps", eps}, {"weight_decay", weight_decay}});
  const AdagradScalars s{clr, eps, weight_decay, maximize};
  by_param_dtype("adagrad_step", params, [&](auto zero) {
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
  check_finite("rmsprop_step", {{"lr", lr}, {"alpha", alpha}, {"eps", eps}, {"weight_decay", weight_decay}, {"momentum", momentum}});
  const RmspropScalars s{lr, alpha, eps, weight_decay, momentum, centered, maximize};
  by_param_dtype("rmsprop_step", params, [&](auto zero) {
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
  check_finite("adadelta_step", {{"lr", lr}, {"rho", rho}, {"eps", eps}, {"weight_decay", weight_decay}});
  const AdadeltaScalars s{lr, rho, eps, weight_decay, maximize};
  by_param_dtype("adadelta_step", params, [&](auto zero) {
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
  check_finite("adam_step", {{"lr", lr}, {"beta1", beta1}, {"beta2", beta2}, {"eps", eps}, {"weight_decay", weight_decay}, {"step_size", step_size}, {"bias_correction2_sqrt", bias_correction2_sqrt}});
  const AdamScalars s{lr, beta1, beta2, eps, weight_decay, step_size, bias_correction2_sqrt,
                      decoupled_weight_decay, amsgrad, maximize};
  by_param_dtype("adam_step", params, [&](auto zero) {
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
  check_finite("nadam_step", {{"lr", lr}, {"beta1", beta1}, {"beta2", beta2}, {"eps", eps}, {"weight_decay", weight_decay}, {"bias_correction2", bias_correction2}, {"grad_coef", grad_coef}, {"avg_coef", avg_coef}});
  const NadamScalars s{lr, beta1, beta2, eps, weight_decay, bias_correction2, grad_coef, avg_coef,
                       decoupled_weight_decay, maximize};
  by_param_dtype("nadam_step", params, [&](auto zero) {
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
}  // namespace

void bind_optim(py::module_& m, py::module_& ref) {
  def_optim<false>(m);
  def_optim<true>(ref);
  add_implementation("optim", [] { return std::string(optim_impl_name()); });
}

}  // namespace mg
