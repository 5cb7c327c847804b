// batch_norm_forward_train / batch_norm_forward_eval / batch_norm_backward.
// x, out, grads: (N, C, S) with S = H*W (the Python op reshapes); per-channel vectors (C,).
// Optional vectors (weight, bias, running stats, grads to skip) are None. x, out, grad_out and
// grad_input may be bfloat16 (uint16 bits) with float32 per-channel vectors (autocast).
#include "batchnorm.h"
#include "bind/bind.h"

namespace mg {
namespace {

// Training statistics divide by N*S - 1 (unbiased running variance): one value per channel
// has none.
void check_batch_stats(const char* op, const py::array& x) {
  int64_t values;  // an overflowing product (a zero-size x may have huge extents) is plenty
  if (!__builtin_mul_overflow(x.shape(0), x.shape(2), &values) && values <= 1)
    throw py::value_error(std::string(op) + ": expected more than 1 value per channel when "
                          "training, got x of shape " + shape_str(x));
}

template <typename S, bool Ref>
void forward_train(const py::array& x, const py::object& weight, const py::object& bias,
                   const py::object& running_mean, const py::object& running_var,
                   const py::array& out, const py::array& save_mean, const py::array& save_invstd,
                   double momentum, double eps, bool relu, const py::object& residual) {
  using T = kernel_t<S>;
  using P = bn_param_t<T>;
  const char* op = "batch_norm_forward_train";
  const T* px = reinterpret_cast<const T*>(checked<S>(x, op, "x", {kAny, kAny, kAny}));
  const int64_t n = x.shape(0), c = x.shape(1), s = x.shape(2);
  check_batch_stats(op, x);
  const P* g = optional_checked<P>(weight, op, "weight", {c});
  const P* b = optional_checked<P>(bias, op, "bias", {c});
  P* rm = optional_checked<P>(running_mean, op, "running_mean", {c}, true);
  P* rv = optional_checked<P>(running_var, op, "running_var", {c}, true);
  const T* res = reinterpret_cast<const T*>(optional_checked<S>(residual, op, "residual", {n, c, s}));
  T* y = reinterpret_cast<T*>(checked<S>(out, op, "out", {n, c, s}, true));
  P* sm = checked<P>(save_mean, op, "save_mean", {c}, true);
  P* si = checked<P>(save_invstd, op, "save_invstd", {c}, true);
  check_no_overlap(op, {extent_of(x, "x", false), optional_extent(weight, "weight", false),
                        optional_extent(bias, "bias", false),
                        optional_extent(running_mean, "running_mean", true),
                        optional_extent(running_var, "running_var", true),
                        optional_extent(residual, "residual", false),
                        extent_of(out, "out", true), extent_of(save_mean, "save_mean", true),
                        extent_of(save_invstd, "save_invstd", true)});
  py::gil_scoped_release release;
  (Ref ? batch_norm_forward_train_ref<T, P> : batch_norm_forward_train<T, P>)(
      px, n, c, s, g, b, rm, rv, momentum, eps, relu, res, y, sm, si);
}

template <typename S, bool Ref>
void forward_eval(const py::array& x, const py::object& weight, const py::object& bias,
                  const py::array& running_mean, const py::array& running_var,
                  const py::array& out, const py::array& save_mean, const py::array& save_invstd,
                  double eps, bool relu, const py::object& residual) {
  using T = kernel_t<S>;
  using P = bn_param_t<T>;
  const char* op = "batch_norm_forward_eval";
  const T* px = reinterpret_cast<const T*>(checked<S>(x, op, "x", {kAny, kAny, kAny}));
  const int64_t n = x.shape(0), c = x.shape(1), s = x.shape(2);
  const P* g = optional_checked<P>(weight, op, "weight", {c});
  const P* b = optional_checked<P>(bias, op, "bias", {c});
  const P* rm = checked<P>(running_mean, op, "running_mean", {c});
  const P* rv = checked<P>(running_var, op, "running_var", {c});
  const T* res = reinterpret_cast<const T*>(optional_checked<S>(residual, op, "residual", {n, c, s}));
  T* y = reinterpret_cast<T*>(checked<S>(out, op, "out", {n, c, s}, true));
  P* sm = checked<P>(save_mean, op, "save_mean", {c}, true);
  P* si = checked<P>(save_invstd, op, "save_invstd", {c}, true);
  check_no_overlap(op, {extent_of(x, "x", false), optional_extent(weight, "weight", false),
                        optional_extent(bias, "bias", false),
                        extent_of(running_mean, "running_mean", false),
                        extent_of(running_var, "running_var", false),
                        optional_extent(residual, "residual", false),
                        extent_of(out, "out", true), extent_of(save_mean, "save_mean", true),
                        extent_of(save_invstd, "save_invstd", true)});
  py::gil_scoped_release release;
  (Ref ? batch_norm_forward_eval_ref<T, P> : batch_norm_forward_eval<T, P>)(
      px, n, c, s, g, b, rm, rv, eps, relu, res, y, sm, si);
}

template <typename S, bool Ref>
void backward(const py::array& x, const py::array& grad_out, const py::object& weight,
              const py::object& bias, const py::array& mean, const py::array& invstd,
              const py::object& grad_input, const py::object& grad_weight,
              const py::object& grad_bias, bool training, bool relu) {
  using T = kernel_t<S>;
  using P = bn_param_t<T>;
  const char* op = "batch_norm_backward";
  const T* px = reinterpret_cast<const T*>(checked<S>(x, op, "x", {kAny, kAny, kAny}));
  const int64_t n = x.shape(0), c = x.shape(1), s = x.shape(2);
  const T* dy = reinterpret_cast<const T*>(checked<S>(grad_out, op, "grad_out", {n, c, s}));
  const P* g = optional_checked<P>(weight, op, "weight", {c});
  const P* b = optional_checked<P>(bias, op, "bias", {c});
  const P* mu = checked<P>(mean, op, "mean", {c});
  const P* is = checked<P>(invstd, op, "invstd", {c});
  T* dx = reinterpret_cast<T*>(optional_checked<S>(grad_input, op, "grad_input", {n, c, s}, true));
  P* dg = optional_checked<P>(grad_weight, op, "grad_weight", {c}, true);
  P* db = optional_checked<P>(grad_bias, op, "grad_bias", {c}, true);
  check_no_overlap(op, {extent_of(x, "x", false), extent_of(grad_out, "grad_out", false),
                        optional_extent(weight, "weight", false), optional_extent(bias, "bias", false),
                        extent_of(mean, "mean", false), extent_of(invstd, "invstd", false),
                        optional_extent(grad_input, "grad_input", true),
                        optional_extent(grad_weight, "grad_weight", true),
                        optional_extent(grad_bias, "grad_bias", true)});
  if (training) check_batch_stats(op, x);
  py::gil_scoped_release release;
  (Ref ? batch_norm_backward_ref<T, P> : batch_norm_backward<T, P>)(px, dy, n, c, s, g, b, mu, is,
                                                              training, relu, dx, dg, db);
}

// The dtype of x picks the instantiation; every other array must then match it (bfloat16
// activations, as uint16 bits, take float32 per-channel arrays). Each entry point forwards its
// arguments unchanged to the typed function.
template <bool Ref>
void def_batchnorm(py::module_& m) {
  m.def("batch_norm_forward_train",
        [](const py::array& x, const py::object& weight, const py::object& bias,
           const py::object& running_mean, const py::object& running_var, const py::array& out,
           const py::array& save_mean, const py::array& save_invstd, double momentum, double eps,
           bool relu, const py::object& residual) {
          by_dtype_or_bf16(x, "batch_norm_forward_train", "x", [&](auto zero) {
            forward_train<decltype(zero), Ref>(x, weight, bias, running_mean, running_var, out,
                                               save_mean, save_invstd, momentum, eps, relu,
                                               residual);
          });
        },
        "x"_a.noconvert(), "weight"_a.none(true), "bias"_a.none(true),
        "running_mean"_a.none(true), "running_var"_a.none(true), "out"_a.noconvert(),
        "save_mean"_a.noconvert(), "save_invstd"_a.noconvert(), "momentum"_a, "eps"_a,
        "relu"_a = false, "residual"_a = py::none(),
        "Training batch norm of x (N, C, S): batch statistics, running-stat update, out "
        "(+ residual, x's shape and dtype, then the ReLU)");
  m.def("batch_norm_forward_eval",
        [](const py::array& x, const py::object& weight, const py::object& bias,
           const py::array& running_mean, const py::array& running_var, const py::array& out,
           const py::array& save_mean, const py::array& save_invstd, double eps, bool relu,
           const py::object& residual) {
          by_dtype_or_bf16(x, "batch_norm_forward_eval", "x", [&](auto zero) {
            forward_eval<decltype(zero), Ref>(x, weight, bias, running_mean, running_var, out,
                                              save_mean, save_invstd, eps, relu, residual);
          });
        },
        "x"_a.noconvert(), "weight"_a.none(true), "bias"_a.none(true),
        "running_mean"_a.noconvert(), "running_var"_a.noconvert(), "out"_a.noconvert(),
        "save_mean"_a.noconvert(), "save_invstd"_a.noconvert(), "eps"_a, "relu"_a = false,
        "residual"_a = py::none(),
        "Inference batch norm of x (N, C, S) from running statistics (+ residual, then the ReLU)");
  m.def("batch_norm_backward",
        [](const py::array& x, const py::array& grad_out, const py::object& weight,
           const py::object& bias, const py::array& mean, const py::array& invstd,
           const py::object& grad_input, const py::object& grad_weight,
           const py::object& grad_bias, bool training, bool relu) {
          by_dtype_or_bf16(x, "batch_norm_backward", "x", [&](auto zero) {
            backward<decltype(zero), Ref>(x, grad_out, weight, bias, mean, invstd, grad_input,
                                          grad_weight, grad_bias, training, relu);
          });
        },
        "x"_a.noconvert(), "grad_out"_a.noconvert(), "weight"_a.none(true), "bias"_a.none(true),
        "mean"_a.noconvert(), "invstd"_a.noconvert(), "grad_input"_a.none(true),
        "grad_weight"_a.none(true), "grad_bias"_a.none(true), "training"_a, "relu"_a = false,
        "Gradients of batch norm (grad_* arrays written; None skips one)");
}

}  // namespace

void bind_batchnorm(py::module_& m, py::module_& ref) {
  def_batchnorm<false>(m);
  def_batchnorm<true>(ref);
  add_implementation("batch_norm", [] { return std::string(batch_norm_impl_name()); });
}

}  // namespace mg
