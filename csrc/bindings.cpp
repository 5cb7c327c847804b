// The only pybind11 translation unit: validates arguments (check.h), releases the GIL, calls
// the kernels, and reports which implementation each family runs. Kernels never see an
// unchecked size.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <stdexcept>
#include <vector>

#include <pybind11/stl.h>

#include <array>

#include "batchnorm.h"
#include "check.h"
#include "conv.h"
#include "dispatch.h"
#include "eltwise.h"
#include "gemm/gemm.h"
#include "memory.h"
#include "optim.h"
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
  // Zero-size batches can carry any extents; the driver's blocking arithmetic needs them bounded.
  const Sizes z(op, [&] { return "a " + shape_str(a) + ", b " + shape_str(b); });
  z.mul(m, k, "a matrix"), z.mul(k, n, "b matrix"), z.mul(m, n, "product matrix");
  check_no_overlap(op, {extent_of(a, "a", false), extent_of(b, "b", false), extent_of(out, "out", true)});
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

using Shape4 = std::array<int64_t, 4>;

std::string shape4_str(const Shape4& s) {
  return "(" + std::to_string(s[0]) + ", " + std::to_string(s[1]) + ", " + std::to_string(s[2]) +
         ", " + std::to_string(s[3]) + ")";
}

// Checks the hyper-parameters against x (n, ci, h, w) and w (co, ci/groups, kh, kw) and
// returns the geometry; throws ValueError naming the shapes when they do not fit, or when
// any size the conv kernels derive from them (padded planes, patch matrices, per-thread
// workspace) would leave Sizes' range.
ConvShape conv_geometry(const char* op, const Shape4& x, const Shape4& w, Pair stride,
                        Pair padding, Pair dilation, int64_t groups) {
  const Sizes z(op, [&] {
    return "input " + shape4_str(x) + ", weight " + shape4_str(w) + ", stride " +
           pair_str(stride) + ", padding " + pair_str(padding) + ", dilation " +
           pair_str(dilation) + ", groups " + std::to_string(groups);
  });
  if (stride[0] < 1 || stride[1] < 1 || dilation[0] < 1 || dilation[1] < 1 || padding[0] < 0 ||
      padding[1] < 0 || groups < 1)
    throw py::value_error(std::string(op) + ": stride " + pair_str(stride) + " and dilation " +
                          pair_str(dilation) + " must be >= 1, padding " + pair_str(padding) +
                          " >= 0, groups " + std::to_string(groups) + " >= 1");
  for (int i = 0; i < 4; ++i) z(x[i], "input extent"), z(w[i], "weight extent");
  for (int i = 0; i < 2; ++i)
    z(stride[i], "stride"), z(padding[i], "padding"), z(dilation[i], "dilation");
  ConvShape s{x[0], x[1], x[2], x[3], w[0], w[2], w[3], stride[0], stride[1], padding[0],
              padding[1], dilation[0], dilation[1], groups};
  if (s.co % groups != 0 || w[1] * groups != s.ci || s.kh < 1 || s.kw < 1)
    throw py::value_error(std::string(op) + ": weight " + shape4_str(w) + " does not fit input " +
                          shape4_str(x) + " with groups=" + std::to_string(groups) +
                          " (need weight (C_out, C_in/groups, kh, kw), C_out divisible by groups)");
  const int64_t hp = z.add(s.h, z.mul(2, s.ph, "padding"), "padded input height");
  const int64_t wp = z.add(s.w, z.mul(2, s.pw, "padding"), "padded input width");
  const int64_t reach_h = z.mul(s.dh, s.kh - 1, "dilated kernel height");
  const int64_t reach_w = z.mul(s.dw, s.kw - 1, "dilated kernel width");
  if (hp < reach_h + 1 || wp < reach_w + 1)
    throw py::value_error(std::string(op) + ": kernel " + shape4_str(w) + " with dilation " +
                          pair_str(dilation) + " does not fit input " + shape4_str(x) +
                          " padded by " + pair_str(padding));
  // An upper bound on every buffer conv.cpp allocates per thread (in elements; vectors are at
  // most 16 wide, GEMM chunks at most 512 columns, direct weight-gradient chunks at most 64
  // images): padded images and padded output gradients, patch matrices, repacked weights.
  const int64_t channels = z.add(z.add(s.ci, s.co, "channels"), 16, "channels");
  const int64_t rows = z.add(z.add(hp, z.mul(2, reach_h, "padded rows"), "padded rows"), 16, "padded rows");
  const int64_t cols = z.add(z.add(wp, z.mul(2, reach_w, "padded columns"), "padded columns"), 64, "padded columns");
  const int64_t taps = z.product({s.ci, s.kh, s.kw}, "patch size");
  const int64_t plane = z.mul(s.ho(), s.wo(), "output plane");
  const int64_t padded = z.product({64, channels, rows, cols}, "padded workspace");
  const int64_t patches = z.mul(z.add(taps, channels, "patch rows"), z.add(plane, 528, "patch columns"), "patch workspace");
  const int64_t weights = z.mul(z.add(taps, 16, "weight rows"), channels, "weight workspace");
  z.mul(z.add(z.add(padded, patches, "workspace"), weights, "workspace"), num_threads(), "workspace");
  return s;
}

template <typename T>
ConvShape conv_shape(const char* op, const py::array& x, const py::array& w, Pair stride,
                     Pair padding, Pair dilation, int64_t groups) {
  checked<T>(x, op, "input", {kAny, kAny, kAny, kAny});
  checked<T>(w, op, "weight", {kAny, kAny, kAny, kAny});
  return conv_geometry(op, {x.shape(0), x.shape(1), x.shape(2), x.shape(3)},
                       {w.shape(0), w.shape(1), w.shape(2), w.shape(3)}, stride, padding,
                       dilation, groups);
}

ConvAlgo parse_algo(const std::string& algo) {
  if (algo == "auto") return ConvAlgo::automatic;
  if (algo == "direct") return ConvAlgo::direct;
  if (algo == "gemm") return ConvAlgo::gemm;
  if (algo == "chanvec") return ConvAlgo::chanvec;
  throw py::value_error("conv2d: algo must be 'auto', 'direct', 'chanvec' or 'gemm', got '" +
                        algo + "'");
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
  std::vector<Extent> args{extent_of(x, "input", false), extent_of(w, "weight", false),
                           extent_of(out, "out", true)};
  if (pb) args.push_back(extent_of(py::reinterpret_borrow<py::array>(b), "bias", false));
  check_no_overlap(op, std::move(args));
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
  std::vector<Extent> args{extent_of(x, "input", false), extent_of(w, "weight", false),
                           extent_of(gy, "grad_output", false)};
  if (pgx) args.push_back(extent_of(py::reinterpret_borrow<py::array>(gx), "grad_input", true));
  if (pgw) args.push_back(extent_of(py::reinterpret_borrow<py::array>(gw), "grad_weight", true));
  if (pgb) args.push_back(extent_of(py::reinterpret_borrow<py::array>(gb), "grad_bias", true));
  check_no_overlap(op, std::move(args));
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

// Which algorithm conv2d runs for these shapes and this pass ("direct", "chanvec", "gemm" or
// "gemm_pointwise").
std::string conv2d_algorithm(std::array<int64_t, 4> x, std::array<int64_t, 4> w, Pair stride,
                             Pair padding, Pair dilation, int64_t groups, const std::string& algo,
                             const std::string& pass) {
  ConvPass which;
  if (pass == "forward")
    which = ConvPass::forward;
  else if (pass == "grad_input")
    which = ConvPass::grad_input;
  else if (pass == "grad_weight")
    which = ConvPass::grad_weight;
  else
    throw py::value_error("conv2d_algorithm: pass_ must be 'forward', 'grad_input' or "
                          "'grad_weight', got '" + pass + "'");
  const ConvShape s = conv_geometry("conv2d_algorithm", x, w, stride, padding, dilation, groups);
  switch (conv_choose_algo(s, parse_algo(algo), which)) {
    case ConvAlgo::direct: return "direct";
    case ConvAlgo::chanvec: return "chanvec";
    default: break;
  }
  const bool pointwise = s.kh == 1 && s.kw == 1 && s.sh == 1 && s.sw == 1 && s.ph == 0 && s.pw == 0;
  return pointwise ? "gemm_pointwise" : "gemm";
}

// The sizes the pooling kernels index with (input and output planes, window area) must lie in
// Sizes' range; the window must fit the padded input (as in PyTorch).
PoolShape pool_geometry(const char* op, const Shape4& x, Pair kernel, Pair stride, Pair padding) {
  const Sizes z(op, [&] {
    return "input " + shape4_str(x) + ", kernel_size " + pair_str(kernel) + ", stride " +
           pair_str(stride) + ", padding " + pair_str(padding);
  });
  if (kernel[0] < 1 || kernel[1] < 1 || stride[0] < 1 || stride[1] < 1 || padding[0] < 0 ||
      padding[1] < 0 || padding[0] > kernel[0] / 2 || padding[1] > kernel[1] / 2)
    throw py::value_error(std::string(op) + ": need kernel_size " + pair_str(kernel) +
                          " and stride " + pair_str(stride) + " >= 1 and 0 <= padding " +
                          pair_str(padding) + " <= kernel_size / 2");
  PoolShape s{x[0], x[1], x[2], x[3], kernel[0], kernel[1], stride[0], stride[1], padding[0],
              padding[1], 0, 0};
  z(s.n, "input extent"), z(s.c, "input extent");
  z.mul(z(s.h, "input height"), z(s.w, "input width"), "input plane");
  z.mul(z(s.kh, "kernel_size"), z(s.kw, "kernel_size"), "window area");
  z(s.sh, "stride"), z(s.sw, "stride");
  if (s.h + 2 * s.ph < s.kh || s.w + 2 * s.pw < s.kw)
    throw py::value_error(std::string(op) + ": kernel_size " + pair_str(kernel) +
                          " is larger than input " + shape4_str(x) + " padded by " +
                          pair_str(padding));
  s.ho = pool_out_size(s.h, s.kh, s.sh, s.ph);
  s.wo = pool_out_size(s.w, s.kw, s.sw, s.pw);
  z.mul(s.ho, s.wo, "output plane");
  return s;
}

template <typename T>
PoolShape pool_shape(const char* op, const py::array& x, Pair kernel, Pair stride, Pair padding) {
  checked<T>(x, op, "input", {kAny, kAny, kAny, kAny});
  return pool_geometry(op, {x.shape(0), x.shape(1), x.shape(2), x.shape(3)}, kernel, stride, padding);
}

// Adaptive pooling: x's plane (h, w) onto an output plane (ho, wo), 1 <= ho <= h, 1 <= wo <= w.
void adaptive_geometry(const char* op, const py::array& x, int64_t ho, int64_t wo) {
  const Sizes z(op, [&] {
    return "input " + shape_str(x) + " to output size (" + std::to_string(ho) + ", " +
           std::to_string(wo) + ")";
  });
  z.mul(z(x.shape(2), "input height"), z(x.shape(3), "input width"), "input plane");
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
    adaptive_geometry(op, x, s.ho, s.wo);
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
  std::vector<Extent> args{extent_of(x, "input", false), extent_of(out, "out", true)};
  if (pidx) args.push_back(extent_of(py::reinterpret_borrow<py::array>(idx), "indices", true));
  check_no_overlap(op, std::move(args));
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
    adaptive_geometry(op, gx, s.ho, s.wo);
    if (s.ho < 1 || s.wo < 1 || s.ho > s.h || s.wo > s.w)
      throw py::value_error(std::string(op) + ": grad_output " + shape_str(gy) +
                            " is not an adaptive pooling of grad_input " + shape_str(gx));
  } else {
    s = pool_shape<T>(op, gx, kernel, stride, padding);
  }
  const T* pgy = checked<T>(gy, op, "grad_output", {s.n, s.c, s.ho, s.wo});
  T* pgx = checked<T>(gx, op, "grad_input", {s.n, s.c, s.h, s.w}, true);
  const int64_t* pidx = nullptr;
  std::vector<Extent> args{extent_of(gy, "grad_output", false), extent_of(gx, "grad_input", true)};
  if (kind == 0) {
    pidx = optional_checked<int64_t>(idx, op, "indices", {s.n, s.c, s.ho, s.wo}, false);
    if (!pidx) throw py::type_error(std::string(op) + ": indices must be an int64 array");
    args.push_back(extent_of(py::reinterpret_borrow<py::array>(idx), "indices", false));
  }
  check_no_overlap(op, std::move(args));
  if (kind == 0) {
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

// The extent of an optional argument (None spans nothing).
Extent optional_extent(const py::object& v, const char* name, bool written) {
  if (v.is_none()) return Extent{nullptr, nullptr, name, written};
  return extent_of(py::reinterpret_borrow<py::array>(v), name, written);
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
  check_no_overlap(op, {extent_of(x, "x", false), optional_extent(weight, "weight", false),
                        optional_extent(bias, "bias", false),
                        optional_extent(running_mean, "running_mean", true),
                        optional_extent(running_var, "running_var", true),
                        extent_of(out, "out", true), extent_of(save_mean, "save_mean", true),
                        extent_of(save_invstd, "save_invstd", true)});
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
  check_no_overlap(op, {extent_of(x, "x", false), optional_extent(weight, "weight", false),
                        optional_extent(bias, "bias", false),
                        extent_of(running_mean, "running_mean", false),
                        extent_of(running_var, "running_var", false),
                        extent_of(out, "out", true), extent_of(save_mean, "save_mean", true),
                        extent_of(save_invstd, "save_invstd", true)});
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
  }
  T* dg = const_cast<T*>(optional_vector<T>(grad_weight, op, "grad_weight", c, true));
  T* db = const_cast<T*>(optional_vector<T>(grad_bias, op, "grad_bias", c, true));
  check_no_overlap(op, {extent_of(x, "x", false), extent_of(grad_out, "grad_out", false),
                        optional_extent(weight, "weight", false), optional_extent(bias, "bias", false),
                        extent_of(mean, "mean", false), extent_of(invstd, "invstd", false),
                        optional_extent(grad_input, "grad_input", true),
                        optional_extent(grad_weight, "grad_weight", true),
                        optional_extent(grad_bias, "grad_bias", true)});
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
// ---------------------------------------------------------------------------------- OPTIM
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
  g.keep.reserve(n * (2 + states.size()));
  g.sizes.reserve(n);
  g.param.reserve(n);
  g.grad.reserve(n);
  std::vector<Extent> extents;
  extents.reserve(n * (2 + states.size()));
  // Checks one element, holds a reference to it and records its bytes for the overlap check.
  auto take = [&](py::object item, const char* list, size_t i, const py::array* like, bool written) {
    T* ptr = checked_element<T>(item, op, list, i, like, written);
    g.keep.push_back(py::reinterpret_borrow<py::array>(item));
    extents.push_back(extent_of(g.keep.back(), std::string(list) + "[" + std::to_string(i) + "]", written));
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

// Runs fn<float> or fn<double> on the dtype of the first parameter (an empty group is a no-op).
template <typename F>
void by_param_dtype(const py::sequence& params, F&& fn) {
  if (params.size() == 0) return;
  const py::object first = params[0];  // owned: the sequence may not keep it alive
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
  check_finite("sgd_step", {{"lr", lr}, {"momentum", momentum}, {"dampening", dampening}, {"weight_decay", weight_decay}});
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
  check_finite("adagrad_step", {{"clr", clr}, {"eps", eps}, {"weight_decay", weight_decay}});
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
  check_finite("rmsprop_step", {{"lr", lr}, {"alpha", alpha}, {"eps", eps}, {"weight_decay", weight_decay}, {"momentum", momentum}});
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
  check_finite("adadelta_step", {{"lr", lr}, {"rho", rho}, {"eps", eps}, {"weight_decay", weight_decay}});
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
  check_finite("adam_step", {{"lr", lr}, {"beta1", beta1}, {"beta2", beta2}, {"eps", eps}, {"weight_decay", weight_decay}, {"step_size", step_size}, {"bias_correction2_sqrt", bias_correction2_sqrt}});
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
  check_finite("nadam_step", {{"lr", lr}, {"beta1", beta1}, {"beta2", beta2}, {"eps", eps}, {"weight_decay", weight_decay}, {"bias_correction2", bias_correction2}, {"grad_coef", grad_coef}, {"avg_coef", avg_coef}});
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

// ---------------------------------------------------------------------------- ELTWISE
// relu_forward(x, out), relu_backward(grad, y, out), add(a, b, out): same shape and dtype,
// any rank; `out` may be one of the inputs exactly (in place: each element is read before it is
// written), but not a shifted view of one.
template <typename T, bool Ref>
void relu_forward_typed(const py::array& x, const py::array& out) {
  const char* op = Ref ? "relu_forward_ref" : "relu_forward";
  const T* px = checked_like<T>(x, op, "x", x);
  T* py_ = checked_like<T>(out, op, "out", x, true);
  check_no_overlap(op, {extent_of(x, "x", false), extent_of(out, "out", true)}, true);
  const int64_t n = x.size();
  py::gil_scoped_release release;
  Ref ? relu_forward_ref<T>(px, py_, n) : relu_forward<T>(px, py_, n);
}

template <typename T, bool Ref>
void relu_backward_typed(const py::array& g, const py::array& y, const py::array& out) {
  const char* op = Ref ? "relu_backward_ref" : "relu_backward";
  const T* pg = checked_like<T>(g, op, "grad", g);
  const T* py_ = checked_like<T>(y, op, "y", g);
  T* po = checked_like<T>(out, op, "out", g, true);
  check_no_overlap(op, {extent_of(g, "grad", false), extent_of(y, "y", false), extent_of(out, "out", true)}, true);
  const int64_t n = g.size();
  py::gil_scoped_release release;
  Ref ? relu_backward_ref<T>(pg, py_, po, n) : relu_backward<T>(pg, py_, po, n);
}

template <typename T, bool Ref>
void add_typed(const py::array& a, const py::array& b, const py::array& out) {
  const char* op = Ref ? "add_ref" : "add";
  const T* pa = checked_like<T>(a, op, "a", a);
  const T* pb = checked_like<T>(b, op, "b", a);
  T* po = checked_like<T>(out, op, "out", a, true);
  check_no_overlap(op, {extent_of(a, "a", false), extent_of(b, "b", false), extent_of(out, "out", true)}, true);
  const int64_t n = a.size();
  py::gil_scoped_release release;
  Ref ? add_ref<T>(pa, pb, po, n) : add<T>(pa, pb, po, n);
}

template <bool Ref>
void def_eltwise(py::module_& m) {
  m.def("relu_forward", [](const py::array& x, const py::array& out) {
    is_dtype(x, py::dtype::of<double>()) ? relu_forward_typed<double, Ref>(x, out)
                                         : relu_forward_typed<float, Ref>(x, out);
  }, "x"_a.noconvert(), "out"_a.noconvert());
  m.def("relu_backward", [](const py::array& g, const py::array& y, const py::array& out) {
    is_dtype(g, py::dtype::of<double>()) ? relu_backward_typed<double, Ref>(g, y, out)
                                         : relu_backward_typed<float, Ref>(g, y, out);
  }, "grad"_a.noconvert(), "y"_a.noconvert(), "out"_a.noconvert());
  m.def("add", [](const py::array& a, const py::array& b, const py::array& out) {
    is_dtype(a, py::dtype::of<double>()) ? add_typed<double, Ref>(a, b, out)
                                         : add_typed<float, Ref>(a, b, out);
  }, "a"_a.noconvert(), "b"_a.noconvert(), "out"_a.noconvert());
}
// ------------------------------------------------------------------------ end ELTWISE

// ------------------------------------------------------------------------- backend info
bool g_allocator_tuned = false;  // set once at import (memory.cpp)

py::dict backend_info() {
  py::dict impl;
  impl["gemm"] = gemm_impl_name();
  impl["gemm_dot"] = gemm_dot_impl_name();  // GEMM: tall-k products with a small C
  impl["conv2d"] = std::string(conv_direct_impl_name()) + " + " + conv_chanvec_impl_name() +
                   " + im2col_gemm";  // CONV / POOL
  impl["pool"] = pool_impl_name();                                           // CONV / POOL
  impl["batch_norm"] = batch_norm_impl_name();  // BATCHNORM
  impl["optim"] = optim_impl_name();
  impl["eltwise"] = eltwise_impl_name();
  return py::dict("isa"_a = isa_name(active_isa()), "cpu_isa"_a = isa_name(cpu_isa()),
                  "num_threads"_a = num_threads(), "openmp"_a = _OPENMP,
                  "compiler"_a = MINIGRAD_COMPILER, "build_flags"_a = MINIGRAD_BUILD_FLAGS,
                  "implementations"_a = impl, "malloc_tuning"_a = g_allocator_tuned);
}

}  // namespace
}  // namespace mg

PYBIND11_MODULE(_C, m) {
  using namespace mg;
  m.doc() = "minigrad's compiled kernels (validated entry points; see csrc/README.md)";
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

  m.def("gemm", &gemm_binding<false>, "a"_a.noconvert(), "b"_a.noconvert(), "out"_a.noconvert(),
        "trans_a"_a = false, "trans_b"_a = false, "alpha"_a = 1.0, "beta"_a = 0.0);

  // CONV / POOL
  def_conv_pool<false>(m);
  m.def("conv2d_algorithm", &conv2d_algorithm, "input_shape"_a, "weight_shape"_a,
        "stride"_a = Pair{1, 1}, "padding"_a = Pair{0, 0}, "dilation"_a = Pair{1, 1}, "groups"_a = 1,
        "algo"_a = "auto", "pass_"_a = "forward",
        "The algorithm conv2d runs for these shapes in this pass ('forward', 'grad_input' or "
        "'grad_weight')");

  // The size rules of conv2d and pooling, for the Python ops to check before they allocate
  // outputs (errors name `op`); they return the output shape.
  m.attr("MAX_SIZE") = py::int_(kMaxSize);
  m.def("conv2d_output_shape",
        [](Shape4 x, Shape4 w, Pair stride, Pair padding, Pair dilation, int64_t groups,
           const std::string& op) {
          const ConvShape s = conv_geometry(op.c_str(), x, w, stride, padding, dilation, groups);
          return Shape4{s.n, s.co, s.ho(), s.wo()};
        },
        "input_shape"_a, "weight_shape"_a, "stride"_a, "padding"_a, "dilation"_a, "groups"_a,
        "op"_a = "conv2d");
  m.def("pool2d_output_shape",
        [](Shape4 x, Pair kernel, Pair stride, Pair padding, const std::string& op) {
          const PoolShape s = pool_geometry(op.c_str(), x, kernel, stride, padding);
          return Shape4{s.n, s.c, s.ho, s.wo};
        },
        "input_shape"_a, "kernel_size"_a, "stride"_a, "padding"_a, "op"_a = "pool2d");

  py::module_ ref = m.def_submodule("ref", "Plain scalar reference kernels (test oracles)");
  def_conv_pool<true>(ref);  // CONV / POOL
  ref.def("gemm", &gemm_binding<true>, "a"_a.noconvert(), "b"_a.noconvert(), "out"_a.noconvert(),
          "trans_a"_a = false, "trans_b"_a = false, "alpha"_a = 1.0, "beta"_a = 0.0);

  def_batch_norm<false>(m);  // BATCHNORM
  def_batch_norm<true>(ref);  // BATCHNORM
  def_optim<false>(m);  // OPTIM
  def_optim<true>(ref);  // OPTIM
  def_eltwise<false>(m);  // ELTWISE
  def_eltwise<true>(ref);  // ELTWISE
}
