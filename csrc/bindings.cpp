// The only pybind11 translation unit: validates arguments (check.h), releases the GIL, calls
// the kernels, and reports which implementation each family runs. Kernels never see an
// unchecked size.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <stdexcept>

#include <pybind11/stl.h>

#include <array>

#include "check.h"
#include "conv.h"
#include "dispatch.h"
#include "gemm/gemm.h"
#include "parallel.h"
#include "pool.h"

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

// ------------------------------------------------------------------------ CONV / POOL
using Pair = std::array<int64_t, 2>;

// An optional array argument: None gives nullptr, anything else must pass checked<T>.
template <typename T>
T* optional_checked(const py::object& obj, const char* op, const char* arg,
                    std::initializer_list<int64_t> shape, bool writable) {
  if (obj.is_none()) return nullptr;
  if (!py::isinstance<py::array>(obj))
    throw py::type_error(std::string(op) + ": " + arg + " must be a numpy array or None");
  return checked<T>(py::reinterpret_borrow<py::array>(obj), op, arg, shape, writable);
}

std::string pair_str(const Pair& p) {
  return "(" + std::to_string(p[0]) + ", " + std::to_string(p[1]) + ")";
}

// Checks the hyper-parameters against x (n, ci, h, w) and w (co, ci/groups, kh, kw) and
// returns the geometry; throws ValueError naming the shapes when they do not fit.
template <typename T>
ConvShape conv_shape(const char* op, const py::array& x, const py::array& w, Pair stride,
                     Pair padding, Pair dilation, int64_t groups) {
  checked<T>(x, op, "input", {kAny, kAny, kAny, kAny});
  checked<T>(w, op, "weight", {kAny, kAny, kAny, kAny});
  if (stride[0] < 1 || stride[1] < 1 || dilation[0] < 1 || dilation[1] < 1 || padding[0] < 0 ||
      padding[1] < 0 || groups < 1)
    throw py::value_error(std::string(op) + ": stride " + pair_str(stride) + " and dilation " +
                          pair_str(dilation) + " must be >= 1, padding " + pair_str(padding) +
                          " >= 0, groups " + std::to_string(groups) + " >= 1");
  ConvShape s{x.shape(0), x.shape(1), x.shape(2), x.shape(3), w.shape(0), w.shape(2), w.shape(3),
              stride[0], stride[1], padding[0], padding[1], dilation[0], dilation[1], groups};
  if (s.co % groups != 0 || w.shape(1) * groups != s.ci || s.kh < 1 || s.kw < 1)
    throw py::value_error(std::string(op) + ": weight " + shape_str(w) + " does not fit input " +
                          shape_str(x) + " with groups=" + std::to_string(groups) +
                          " (need weight (C_out, C_in/groups, kh, kw), C_out divisible by groups)");
  if (s.h + 2 * s.ph < s.dh * (s.kh - 1) + 1 || s.w + 2 * s.pw < s.dw * (s.kw - 1) + 1)
    throw py::value_error(std::string(op) + ": kernel " + shape_str(w) + " with dilation " +
                          pair_str(dilation) + " does not fit input " + shape_str(x) +
                          " padded by " + pair_str(padding));
  return s;
}

ConvAlgo parse_algo(const std::string& algo) {
  if (algo == "auto") return ConvAlgo::automatic;
  if (algo == "direct") return ConvAlgo::direct;
  if (algo == "gemm") return ConvAlgo::gemm;
  throw py::value_error("conv2d: algo must be 'auto', 'direct' or 'gemm', got '" + algo + "'");
}

template <typename T, bool Ref>
void conv2d_forward_typed(const py::array& x, const py::array& w, const py::object& b,
                          const py::array& out, Pair stride, Pair padding, Pair dilation,
                          int64_t groups, bool relu, const std::string& algo) {
  const char* op = Ref ? "conv2d_forward_ref" : "conv2d_forward";
  const ConvShape s = conv_shape<T>(op, x, w, stride, padding, dilation, groups);
  const ConvAlgo a = parse_algo(algo);
  const T* pb = optional_checked<T>(b, op, "bias", {s.co}, false);
  T* py_ = checked<T>(out, op, "out", {s.n, s.co, s.ho(), s.wo()}, true);
  const T* px = static_cast<const T*>(x.data());
  const T* pw = static_cast<const T*>(w.data());
  py::gil_scoped_release release;
  if (Ref)
    conv2d_forward_ref<T>(s, px, pw, pb, py_, relu);
  else
    conv2d_forward<T>(s, px, pw, pb, py_, relu, a);
}

template <typename T, bool Ref>
void conv2d_backward_typed(const py::array& x, const py::array& w, const py::array& gy,
                           const py::object& gx, const py::object& gw, const py::object& gb,
                           Pair stride, Pair padding, Pair dilation, int64_t groups,
                           const std::string& algo) {
  const char* op = Ref ? "conv2d_backward_ref" : "conv2d_backward";
  const ConvShape s = conv_shape<T>(op, x, w, stride, padding, dilation, groups);
  const ConvAlgo a = parse_algo(algo);
  const T* pgy = checked<T>(gy, op, "grad_output", {s.n, s.co, s.ho(), s.wo()});
  T* pgx = optional_checked<T>(gx, op, "grad_input", {s.n, s.ci, s.h, s.w}, true);
  T* pgw = optional_checked<T>(gw, op, "grad_weight", {s.co, s.ci / s.groups, s.kh, s.kw}, true);
  T* pgb = optional_checked<T>(gb, op, "grad_bias", {s.co}, true);
  const T* px = static_cast<const T*>(x.data());
  const T* pw = static_cast<const T*>(w.data());
  py::gil_scoped_release release;
  if (Ref)
    conv2d_backward_ref<T>(s, px, pw, pgy, pgx, pgw, pgb);
  else
    conv2d_backward<T>(s, px, pw, pgy, pgx, pgw, pgb, a);
}

template <bool Ref>
void conv2d_forward_binding(const py::array& x, const py::array& w, const py::object& b,
                            const py::array& out, Pair stride, Pair padding, Pair dilation,
                            int64_t groups, bool relu, const std::string& algo) {
  if (is_dtype(x, py::dtype::of<double>()))
    conv2d_forward_typed<double, Ref>(x, w, b, out, stride, padding, dilation, groups, relu, algo);
  else
    conv2d_forward_typed<float, Ref>(x, w, b, out, stride, padding, dilation, groups, relu, algo);
}

template <bool Ref>
void conv2d_backward_binding(const py::array& x, const py::array& w, const py::array& gy,
                             const py::object& gx, const py::object& gw, const py::object& gb,
                             Pair stride, Pair padding, Pair dilation, int64_t groups,
                             const std::string& algo) {
  if (is_dtype(x, py::dtype::of<double>()))
    conv2d_backward_typed<double, Ref>(x, w, gy, gx, gw, gb, stride, padding, dilation, groups, algo);
  else
    conv2d_backward_typed<float, Ref>(x, w, gy, gx, gw, gb, stride, padding, dilation, groups, algo);
}

// Which algorithm conv2d runs for these shapes ("direct", "gemm" or "gemm_pointwise").
std::string conv2d_algorithm(std::array<int64_t, 4> x, std::array<int64_t, 4> w, Pair stride,
                             Pair padding, Pair dilation, int64_t groups, const std::string& algo) {
  if (stride[0] < 1 || stride[1] < 1 || dilation[0] < 1 || dilation[1] < 1)
    throw py::value_error("conv2d_algorithm: stride " + pair_str(stride) + " and dilation " +
                          pair_str(dilation) + " must be >= 1");
  const ConvShape s{x[0], x[1], x[2], x[3], w[0], w[2], w[3], stride[0], stride[1], padding[0],
                    padding[1], dilation[0], dilation[1], groups};
  if (conv_choose_algo(s, parse_algo(algo)) == ConvAlgo::direct) return "direct";
  const bool pointwise = s.kh == 1 && s.kw == 1 && s.sh == 1 && s.sw == 1 && s.ph == 0 && s.pw == 0;
  return pointwise ? "gemm_pointwise" : "gemm";
}

template <typename T>
PoolShape pool_shape(const char* op, const py::array& x, Pair kernel, Pair stride, Pair padding) {
  checked<T>(x, op, "input", {kAny, kAny, kAny, kAny});
  if (kernel[0] < 1 || kernel[1] < 1 || stride[0] < 1 || stride[1] < 1 || padding[0] < 0 ||
      padding[1] < 0 || 2 * padding[0] > kernel[0] || 2 * padding[1] > kernel[1])
    throw py::value_error(std::string(op) + ": need kernel_size " + pair_str(kernel) +
                          " and stride " + pair_str(stride) + " >= 1 and 0 <= padding " +
                          pair_str(padding) + " <= kernel_size / 2");
  PoolShape s{x.shape(0), x.shape(1), x.shape(2), x.shape(3), kernel[0], kernel[1], stride[0],
              stride[1], padding[0], padding[1], 0, 0};
  if (s.h + 2 * s.ph < s.kh || s.w + 2 * s.pw < s.kw)
    throw py::value_error(std::string(op) + ": kernel_size " + pair_str(kernel) +
                          " is larger than input " + shape_str(x) + " padded by " +
                          pair_str(padding));
  s.ho = pool_out_size(s.h, s.kh, s.sh, s.ph);
  s.wo = pool_out_size(s.w, s.kw, s.sw, s.pw);
  return s;
}

// kind: 0 max, 1 average, 2 adaptive average.
template <typename T, bool Ref>
void pool_forward_typed(int kind, const py::array& x, const py::array& out, const py::object& idx,
                        Pair kernel, Pair stride, Pair padding) {
  static const char* names[2][3] = {{"max_pool2d_forward", "avg_pool2d_forward", "adaptive_avg_pool2d_forward"},
                                    {"max_pool2d_forward_ref", "avg_pool2d_forward_ref", "adaptive_avg_pool2d_forward_ref"}};
  const char* op = names[Ref][kind];
  PoolShape s{};
  if (kind == 2) {
    checked<T>(x, op, "input", {kAny, kAny, kAny, kAny});
    checked<T>(out, op, "out", {x.shape(0), x.shape(1), kAny, kAny}, true);
    s = PoolShape{x.shape(0), x.shape(1), x.shape(2), x.shape(3), 0, 0, 0, 0, 0, 0, out.shape(2), out.shape(3)};
    if (s.ho < 1 || s.wo < 1 || (s.ho > s.h && s.h > 0) || (s.wo > s.w && s.w > 0) || s.h < 1 || s.w < 1)
      throw py::value_error(std::string(op) + ": output size (" + std::to_string(s.ho) + ", " +
                            std::to_string(s.wo) + ") must be between 1 and the input size of " +
                            shape_str(x));
  } else {
    s = pool_shape<T>(op, x, kernel, stride, padding);
  }
  const T* px = static_cast<const T*>(x.data());
  T* py_ = checked<T>(out, op, "out", {s.n, s.c, s.ho, s.wo}, true);
  int64_t* pidx = nullptr;
  if (kind == 0 && !(pidx = optional_checked<int64_t>(idx, op, "indices", {s.n, s.c, s.ho, s.wo}, true)))
    throw py::type_error(std::string(op) + ": indices must be an int64 array");
  py::gil_scoped_release release;
  if (kind == 0) (Ref ? max_pool2d_forward_ref<T> : max_pool2d_forward<T>)(s, px, py_, pidx);
  if (kind == 1) (Ref ? avg_pool2d_forward_ref<T> : avg_pool2d_forward<T>)(s, px, py_);
  if (kind == 2) (Ref ? adaptive_avg_pool2d_forward_ref<T> : adaptive_avg_pool2d_forward<T>)(s, px, py_);
}

template <typename T, bool Ref>
void pool_backward_typed(int kind, const py::array& gy, const py::array& gx, const py::object& idx,
                         Pair kernel, Pair stride, Pair padding) {
  static const char* names[2][3] = {{"max_pool2d_backward", "avg_pool2d_backward", "adaptive_avg_pool2d_backward"},
                                    {"max_pool2d_backward_ref", "avg_pool2d_backward_ref", "adaptive_avg_pool2d_backward_ref"}};
  const char* op = names[Ref][kind];
  PoolShape s{};
  if (kind == 2) {
    checked<T>(gx, op, "grad_input", {kAny, kAny, kAny, kAny}, true);
    checked<T>(gy, op, "grad_output", {gx.shape(0), gx.shape(1), kAny, kAny});
    s = PoolShape{gx.shape(0), gx.shape(1), gx.shape(2), gx.shape(3), 0, 0, 0, 0, 0, 0, gy.shape(2), gy.shape(3)};
    if (s.ho < 1 || s.wo < 1 || s.ho > s.h || s.wo > s.w)
      throw py::value_error(std::string(op) + ": grad_output " + shape_str(gy) +
                            " is not an adaptive pooling of grad_input " + shape_str(gx));
  } else {
    s = pool_shape<T>(op, gx, kernel, stride, padding);
  }
  const T* pgy = checked<T>(gy, op, "grad_output", {s.n, s.c, s.ho, s.wo});
  T* pgx = checked<T>(gx, op, "grad_input", {s.n, s.c, s.h, s.w}, true);
  const int64_t* pidx = nullptr;
  if (kind == 0) {
    pidx = optional_checked<int64_t>(idx, op, "indices", {s.n, s.c, s.ho, s.wo}, false);
    if (!pidx) throw py::type_error(std::string(op) + ": indices must be an int64 array");
    const int64_t count = s.n * s.c * s.ho * s.wo, plane = s.h * s.w;
    bool ok = true;
    {
      py::gil_scoped_release release;
      for (int64_t i = 0; i < count; ++i) ok &= pidx[i] >= 0 && pidx[i] < plane;
    }
    if (!ok)
      throw py::value_error(std::string(op) + ": indices must lie in [0, " + std::to_string(plane) +
                            ") (positions within an input plane of " + shape_str(gx) + ")");
  }
  py::gil_scoped_release release;
  if (kind == 0) (Ref ? max_pool2d_backward_ref<T> : max_pool2d_backward<T>)(s, pgy, pidx, pgx);
  if (kind == 1) (Ref ? avg_pool2d_backward_ref<T> : avg_pool2d_backward<T>)(s, pgy, pgx);
  if (kind == 2) (Ref ? adaptive_avg_pool2d_backward_ref<T> : adaptive_avg_pool2d_backward<T>)(s, pgy, pgx);
}

template <int Kind, bool Ref>
void pool_forward_binding(const py::array& x, const py::array& out, const py::object& idx,
                          Pair kernel, Pair stride, Pair padding) {
  if (is_dtype(x, py::dtype::of<double>()))
    pool_forward_typed<double, Ref>(Kind, x, out, idx, kernel, stride, padding);
  else
    pool_forward_typed<float, Ref>(Kind, x, out, idx, kernel, stride, padding);
}

template <int Kind, bool Ref>
void pool_backward_binding(const py::array& gy, const py::array& gx, const py::object& idx,
                           Pair kernel, Pair stride, Pair padding) {
  if (is_dtype(gy, py::dtype::of<double>()))
    pool_backward_typed<double, Ref>(Kind, gy, gx, idx, kernel, stride, padding);
  else
    pool_backward_typed<float, Ref>(Kind, gy, gx, idx, kernel, stride, padding);
}

template <bool Ref>
void def_conv_pool(py::module_& m) {
  if (Ref) {  // the reference has one algorithm: the formula
    m.def("conv2d_forward",
          [](const py::array& x, const py::array& w, const py::object& b, const py::array& out,
             Pair stride, Pair padding, Pair dilation, int64_t groups, bool relu) {
            conv2d_forward_binding<true>(x, w, b, out, stride, padding, dilation, groups, relu, "auto");
          },
          "input"_a.noconvert(), "weight"_a.noconvert(), "bias"_a.none(true), "out"_a.noconvert(),
          "stride"_a = Pair{1, 1}, "padding"_a = Pair{0, 0}, "dilation"_a = Pair{1, 1},
          "groups"_a = 1, "relu"_a = false);
    m.def("conv2d_backward",
          [](const py::array& x, const py::array& w, const py::array& gy, const py::object& gx,
             const py::object& gw, const py::object& gb, Pair stride, Pair padding, Pair dilation,
             int64_t groups) {
            conv2d_backward_binding<true>(x, w, gy, gx, gw, gb, stride, padding, dilation, groups, "auto");
          },
          "input"_a.noconvert(), "weight"_a.noconvert(), "grad_output"_a.noconvert(),
          "grad_input"_a.none(true) = py::none(), "grad_weight"_a.none(true) = py::none(),
          "grad_bias"_a.none(true) = py::none(), "stride"_a = Pair{1, 1}, "padding"_a = Pair{0, 0},
          "dilation"_a = Pair{1, 1}, "groups"_a = 1);
  } else {
    m.def("conv2d_forward", &conv2d_forward_binding<false>, "input"_a.noconvert(),
          "weight"_a.noconvert(), "bias"_a.none(true), "out"_a.noconvert(), "stride"_a = Pair{1, 1},
          "padding"_a = Pair{0, 0}, "dilation"_a = Pair{1, 1}, "groups"_a = 1, "relu"_a = false,
          "algo"_a = "auto",
          "out = conv2d(input, weight) + bias (then ReLU when relu=True); NCHW, float32 or "
          "float64; algo 'auto', 'direct' (stride 1, groups 1 only) or 'gemm'");
    m.def("conv2d_backward", &conv2d_backward_binding<false>, "input"_a.noconvert(),
          "weight"_a.noconvert(), "grad_output"_a.noconvert(),
          "grad_input"_a.none(true) = py::none(), "grad_weight"_a.none(true) = py::none(),
          "grad_bias"_a.none(true) = py::none(), "stride"_a = Pair{1, 1}, "padding"_a = Pair{0, 0},
          "dilation"_a = Pair{1, 1}, "groups"_a = 1, "algo"_a = "auto",
          "Writes the requested gradients of conv2d_forward (an array each, None to skip)");
  }
  m.def("max_pool2d_forward", &pool_forward_binding<0, Ref>, "input"_a.noconvert(), "out"_a.noconvert(),
        "indices"_a, "kernel_size"_a, "stride"_a, "padding"_a = Pair{0, 0});
  m.def("max_pool2d_backward", &pool_backward_binding<0, Ref>, "grad_output"_a.noconvert(),
        "grad_input"_a.noconvert(), "indices"_a, "kernel_size"_a, "stride"_a, "padding"_a = Pair{0, 0});
  m.def("avg_pool2d_forward",
        [](const py::array& x, const py::array& out, Pair k, Pair s, Pair p) {
          pool_forward_binding<1, Ref>(x, out, py::none(), k, s, p);
        },
        "input"_a.noconvert(), "out"_a.noconvert(), "kernel_size"_a, "stride"_a, "padding"_a = Pair{0, 0});
  m.def("avg_pool2d_backward",
        [](const py::array& gy, const py::array& gx, Pair k, Pair s, Pair p) {
          pool_backward_binding<1, Ref>(gy, gx, py::none(), k, s, p);
        },
        "grad_output"_a.noconvert(), "grad_input"_a.noconvert(), "kernel_size"_a, "stride"_a,
        "padding"_a = Pair{0, 0});
  m.def("adaptive_avg_pool2d_forward",
        [](const py::array& x, const py::array& out) {
          pool_forward_binding<2, Ref>(x, out, py::none(), Pair{1, 1}, Pair{1, 1}, Pair{0, 0});
        },
        "input"_a.noconvert(), "out"_a.noconvert(), "Output size is out's last two dimensions");
  m.def("adaptive_avg_pool2d_backward",
        [](const py::array& gy, const py::array& gx) {
          pool_backward_binding<2, Ref>(gy, gx, py::none(), Pair{1, 1}, Pair{1, 1}, Pair{0, 0});
        },
        "grad_output"_a.noconvert(), "grad_input"_a.noconvert());
}
// ------------------------------------------------------------------- end CONV / POOL

// ------------------------------------------------------------------------- backend info
py::dict backend_info() {
  py::dict impl;
  impl["gemm"] = gemm_impl_name();
  impl["conv2d"] = std::string(conv_direct_impl_name()) + " + im2col_gemm";  // CONV / POOL
  impl["pool"] = pool_impl_name();                                           // CONV / POOL
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

  // CONV / POOL
  def_conv_pool<false>(m);
  m.def("conv2d_algorithm", &conv2d_algorithm, "input_shape"_a, "weight_shape"_a,
        "stride"_a = Pair{1, 1}, "padding"_a = Pair{0, 0}, "dilation"_a = Pair{1, 1}, "groups"_a = 1,
        "algo"_a = "auto", "The algorithm conv2d runs for these shapes");

  py::module_ ref = m.def_submodule("ref", "Plain scalar reference kernels (test oracles)");
  def_conv_pool<true>(ref);  // CONV / POOL
  ref.def("gemm", &gemm_binding<true>, "a"_a.noconvert(), "b"_a.noconvert(), "out"_a.noconvert(),
          "trans_a"_a = false, "trans_b"_a = false, "alpha"_a = 1.0, "beta"_a = 0.0);
}
