// max/avg/adaptive_avg_pool2d forward and backward, pool2d_output_shape.
//
// pool_geometry is the one home of the pooling window rules (kernel and stride >= 1, padding
// between 0 and half the kernel, window within the padded input, planes and window area
// bounded): the kernels index with these sizes, so C++ enforces them whatever Python passes,
// and the Python ops reach the same function through _C.pool2d_output_shape.
#include <vector>

#include "bind/bind.h"
#include "pool.h"

namespace mg {
namespace {

// Which pooling an entry point runs (one checking path serves all three).
enum class PoolKind { max, average, adaptive_average };

const char* pool_op(PoolKind kind, bool backward, bool ref) {
  static const char* names[3][2][2] = {
      {{"max_pool2d_forward", "max_pool2d_forward_ref"}, {"max_pool2d_backward", "max_pool2d_backward_ref"}},
      {{"avg_pool2d_forward", "avg_pool2d_forward_ref"}, {"avg_pool2d_backward", "avg_pool2d_backward_ref"}},
      {{"adaptive_avg_pool2d_forward", "adaptive_avg_pool2d_forward_ref"},
       {"adaptive_avg_pool2d_backward", "adaptive_avg_pool2d_backward_ref"}}};
  return names[static_cast<int>(kind)][backward][ref];
}

Shape4 shape4(const py::array& x) { return {x.shape(0), x.shape(1), x.shape(2), x.shape(3)}; }

// The sizes the pooling kernels index with (input and output planes, window area) must lie in
// Sizes' range; the window must fit the padded input (as in PyTorch).
PoolShape pool_geometry(const char* op, const Shape4& x, Pair kernel, Pair stride, Pair padding) {
  const Sizes z(op, [&] {
    return "input " + tuple_str(x) + ", kernel_size " + tuple_str(kernel) + ", stride " +
           tuple_str(stride) + ", padding " + tuple_str(padding);
  });
  if (kernel[0] < 1 || kernel[1] < 1 || stride[0] < 1 || stride[1] < 1 || padding[0] < 0 ||
      padding[1] < 0 || padding[0] > kernel[0] / 2 || padding[1] > kernel[1] / 2)
    throw py::value_error(std::string(op) + ": kernel_size " + tuple_str(kernel) + " and stride " +
                          tuple_str(stride) + " must be >= 1 and padding " + tuple_str(padding) +
                          " between 0 and half the kernel size");
  PoolShape s{x[0], x[1], x[2], x[3], kernel[0], kernel[1], stride[0], stride[1], padding[0],
              padding[1], 0, 0};
  z(s.n, "input extent"), z(s.c, "input extent");
  z.mul(z(s.h, "input height"), z(s.w, "input width"), "input plane");
  z.mul(z(s.kh, "kernel_size"), z(s.kw, "kernel_size"), "window area");
  z(s.sh, "stride"), z(s.sw, "stride");
  if (s.h + 2 * s.ph < s.kh || s.w + 2 * s.pw < s.kw)
    throw py::value_error(std::string(op) + ": kernel_size " + tuple_str(kernel) +
                          " is larger than input " + tuple_str(x) + " padded by " +
                          tuple_str(padding));
  s.ho = pool_out_size(s.h, s.kh, s.sh, s.ph);
  s.wo = pool_out_size(s.w, s.kw, s.sw, s.pw);
  z.mul(s.ho, s.wo, "output plane");
  return s;
}

// Adaptive pooling maps the plane of `x` (h, w) onto (ho, wo) with 1 <= ho <= h, 1 <= wo <= w;
// `out` is the output (forward) or the output gradient (backward).
PoolShape adaptive_geometry(const char* op, const py::array& x, const py::array& out, bool backward) {
  const Sizes z(op, [&] {
    return "input " + shape_str(x) + " to output size (" + std::to_string(out.shape(2)) + ", " +
           std::to_string(out.shape(3)) + ")";
  });
  z.mul(z(x.shape(2), "input height"), z(x.shape(3), "input width"), "input plane");
  const PoolShape s{x.shape(0), x.shape(1), x.shape(2), x.shape(3), 0, 0, 0, 0, 0, 0,
                    out.shape(2), out.shape(3)};
  if (s.ho < 1 || s.wo < 1 || s.ho > s.h || s.wo > s.w) {
    if (backward)
      throw py::value_error(std::string(op) + ": grad_output " + shape_str(out) +
                            " is not an adaptive pooling of grad_input " + shape_str(x));
    throw py::value_error(std::string(op) + ": output size (" + std::to_string(s.ho) + ", " +
                          std::to_string(s.wo) + ") must be between 1 and the input size of " +
                          shape_str(x));
  }
  return s;
}

// Max pooling's indices: bound as a plain object (pybind11 would otherwise copy a list into
// a new array), then checked like any required array.
int64_t* checked_indices(const py::object& idx, const char* op, const PoolShape& s, bool writable) {
  if (idx.is_none()) throw py::type_error(std::string(op) + ": indices must be an int64 array");
  return check_array<int64_t>(idx, op, "indices", Expect{{s.n, s.c, s.ho, s.wo}}, writable);
}

template <PoolKind K, typename T, bool Ref>
void pool_forward_typed(const py::array& x, const py::array& out, const py::object& idx,
                        Pair kernel, Pair stride, Pair padding) {
  const char* op = pool_op(K, false, Ref);
  checked<T>(x, op, "input", {kAny, kAny, kAny, kAny});
  PoolShape s{};
  if constexpr (K == PoolKind::adaptive_average) {
    checked<T>(out, op, "out", {x.shape(0), x.shape(1), kAny, kAny}, true);
    s = adaptive_geometry(op, x, out, false);
  } else {
    s = pool_geometry(op, shape4(x), kernel, stride, padding);
  }
  const T* px = static_cast<const T*>(x.data());
  T* py_ = checked<T>(out, op, "out", {s.n, s.c, s.ho, s.wo}, true);
  int64_t* pidx = nullptr;
  if constexpr (K == PoolKind::max) {
    pidx = checked_indices(idx, op, s, true);
  }
  check_no_overlap(op, {extent_of(x, "input", false), extent_of(out, "out", true),
                        optional_extent(idx, "indices", true)});
  py::gil_scoped_release release;
  if constexpr (K == PoolKind::max) (Ref ? max_pool2d_forward_ref<T> : max_pool2d_forward<T>)(s, px, py_, pidx);
  if constexpr (K == PoolKind::average) (Ref ? avg_pool2d_forward_ref<T> : avg_pool2d_forward<T>)(s, px, py_);
  if constexpr (K == PoolKind::adaptive_average)
    (Ref ? adaptive_avg_pool2d_forward_ref<T> : adaptive_avg_pool2d_forward<T>)(s, px, py_);
}

template <PoolKind K, typename T, bool Ref>
void pool_backward_typed(const py::array& gy, const py::array& gx, const py::object& idx,
                         Pair kernel, Pair stride, Pair padding) {
  const char* op = pool_op(K, true, Ref);
  PoolShape s{};
  if constexpr (K == PoolKind::adaptive_average) {
    checked<T>(gx, op, "grad_input", {kAny, kAny, kAny, kAny}, true);
    checked<T>(gy, op, "grad_output", {gx.shape(0), gx.shape(1), kAny, kAny});
    s = adaptive_geometry(op, gx, gy, true);
  } else {
    checked<T>(gx, op, "grad_input", {kAny, kAny, kAny, kAny}, true);
    s = pool_geometry(op, shape4(gx), kernel, stride, padding);
  }
  const T* pgy = checked<T>(gy, op, "grad_output", {s.n, s.c, s.ho, s.wo});
  T* pgx = checked<T>(gx, op, "grad_input", {s.n, s.c, s.h, s.w}, true);
  const int64_t* pidx = nullptr;
  if constexpr (K == PoolKind::max) {
    pidx = checked_indices(idx, op, s, false);
  }
  check_no_overlap(op, {extent_of(gy, "grad_output", false), extent_of(gx, "grad_input", true),
                        optional_extent(idx, "indices", false)});
  if constexpr (K == PoolKind::max) {
    // The indices route gradients into the input plane: each must lie inside it.
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
  if constexpr (K == PoolKind::max) (Ref ? max_pool2d_backward_ref<T> : max_pool2d_backward<T>)(s, pgy, pidx, pgx);
  if constexpr (K == PoolKind::average) (Ref ? avg_pool2d_backward_ref<T> : avg_pool2d_backward<T>)(s, pgy, pgx);
  if constexpr (K == PoolKind::adaptive_average)
    (Ref ? adaptive_avg_pool2d_backward_ref<T> : adaptive_avg_pool2d_backward<T>)(s, pgy, pgx);
}

// The input's dtype (forward) or the output gradient's (backward) picks the instantiation.
template <PoolKind K, bool Ref>
void pool_forward(const py::array& x, const py::array& out, const py::object& idx, Pair kernel,
                  Pair stride, Pair padding) {
  by_dtype(x, pool_op(K, false, Ref), "input", [&](auto zero) {
    pool_forward_typed<K, decltype(zero), Ref>(x, out, idx, kernel, stride, padding);
  });
}

template <PoolKind K, bool Ref>
void pool_backward(const py::array& gy, const py::array& gx, const py::object& idx, Pair kernel,
                   Pair stride, Pair padding) {
  by_dtype(gy, pool_op(K, true, Ref), "grad_output", [&](auto zero) {
    pool_backward_typed<K, decltype(zero), Ref>(gy, gx, idx, kernel, stride, padding);
  });
}

template <bool Ref>
void def_pool(py::module_& m) {
  constexpr PoolKind kMax = PoolKind::max, kAvg = PoolKind::average, kAdaptive = PoolKind::adaptive_average;
  const Pair one{1, 1}, zero{0, 0};  // unused window arguments of adaptive pooling
  m.def("max_pool2d_forward", &pool_forward<kMax, Ref>, "input"_a.noconvert(), "out"_a.noconvert(),
        "indices"_a, "kernel_size"_a, "stride"_a, "padding"_a = Pair{0, 0});
  m.def("max_pool2d_backward", &pool_backward<kMax, Ref>, "grad_output"_a.noconvert(),
        "grad_input"_a.noconvert(), "indices"_a, "kernel_size"_a, "stride"_a, "padding"_a = Pair{0, 0});
  m.def("avg_pool2d_forward",
        [](const py::array& x, const py::array& out, Pair k, Pair s, Pair p) {
          pool_forward<kAvg, Ref>(x, out, py::none(), k, s, p);
        },
        "input"_a.noconvert(), "out"_a.noconvert(), "kernel_size"_a, "stride"_a, "padding"_a = Pair{0, 0});
  m.def("avg_pool2d_backward",
        [](const py::array& gy, const py::array& gx, Pair k, Pair s, Pair p) {
          pool_backward<kAvg, Ref>(gy, gx, py::none(), k, s, p);
        },
        "grad_output"_a.noconvert(), "grad_input"_a.noconvert(), "kernel_size"_a, "stride"_a,
        "padding"_a = Pair{0, 0});
  m.def("adaptive_avg_pool2d_forward",
        [one, zero](const py::array& x, const py::array& out) {
          pool_forward<kAdaptive, Ref>(x, out, py::none(), one, one, zero);
        },
        "input"_a.noconvert(), "out"_a.noconvert(), "Output size is out's last two dimensions");
  m.def("adaptive_avg_pool2d_backward",
        [one, zero](const py::array& gy, const py::array& gx) {
          pool_backward<kAdaptive, Ref>(gy, gx, py::none(), one, one, zero);
        },
        "grad_output"_a.noconvert(), "grad_input"_a.noconvert());
}

}  // namespace

void bind_pool(py::module_& m, py::module_& ref) {
  def_pool<false>(m);
  def_pool<true>(ref);
  // The window rules for the Python ops to check before they allocate outputs (errors name
  // `op`); returns the output shape.
  m.def("pool2d_output_shape",
        [](Shape4 x, Pair kernel, Pair stride, Pair padding, const std::string& op) {
          const PoolShape s = pool_geometry(op.c_str(), x, kernel, stride, padding);
          return Shape4{s.n, s.c, s.ho, s.wo};
        },
        "input_shape"_a, "kernel_size"_a, "stride"_a, "padding"_a, "op"_a = "pool2d");
  add_implementation("pool", [] { return std::string(pool_impl_name()); });
}

}  // namespace mg
