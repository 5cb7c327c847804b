// Argument validation for the bindings (csrc/bind/): every array a kernel touches is checked
// here for dtype, C-contiguity, rank, sizes and writeability, before any kernel sees a pointer;
// the dtype picks the kernel instantiation here too (by_dtype), and every size a kernel derives
// is bounded (Sizes), overlaps refused (check_no_overlap). Errors name the operation and the
// argument. Nothing is converted or copied.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "gemm/bf16.h"

namespace mg {
namespace py = pybind11;

constexpr int64_t kAny = -1;  // wildcard in an expected shape

inline std::string shape_str(const py::array& x) {
  std::ostringstream s;
  s << "(";
  for (py::ssize_t i = 0; i < x.ndim(); ++i) s << (i ? ", " : "") << x.shape(i);
  s << (x.ndim() == 1 ? ",)" : ")");
  return s.str();
}

// What an array argument must look like beyond its dtype and contiguity: a fixed rank with
// every extent given (kAny matches any), exactly the shape of another, already checked array
// (`like`, named `like_name` in errors: element-wise operands, list elements), or any shape
// (`any_shape`: a parameter whose size the kernel takes from the array itself).
struct Expect {
  std::initializer_list<int64_t> shape{};
  const py::array* like = nullptr;
  std::string like_name{};
  bool any_shape = false;
};

inline std::string dtype_name(const py::dtype& d) { return std::string(py::str(d)); }

// Whether `d` is T's dtype: numpy's equivalence (a native-order float32 made by
// newbyteorder("=") is float32 too, though not numpy's own descriptor object).
template <typename T>
bool is_dtype(const py::dtype& d) {
  return py::detail::npy_api::get().PyArray_EquivTypes_(d.ptr(), py::dtype::of<T>().ptr());
}

// The one checking core every binding goes through. `x` is any Python object (a list element,
// an optional argument) and must be a `T` numpy array that is C-contiguous, of the expected
// shape and, when the kernel writes it, writeable; otherwise TypeError (kind, dtype) or
// ValueError (layout, shape) naming the op and the argument. Returns the element pointer;
// the caller must hold a reference to `x` for as long as it uses the pointer.
template <typename T>
T* check_array(py::handle x_obj, const char* op, const std::string& arg, const Expect& want,
               bool writable, const char* or_none = "") {
  // The message prefix is built only on failure: passing checks allocate nothing.
  const auto who = [&] { return std::string(op) + ": " + arg; };
  if (!py::isinstance<py::array>(x_obj))
    throw py::type_error(who() + " must be a numpy array" + or_none + ", got " +
                         std::string(py::str(py::type::of(x_obj))));
  const auto x = py::reinterpret_borrow<py::array>(x_obj);
  if (!is_dtype<T>(x.dtype()))
    throw py::type_error(who() + " must be " + dtype_name(py::dtype::of<T>()) + ", got " +
                         dtype_name(x.dtype()));
  if (!(x.flags() & py::array::c_style)) throw py::value_error(who() + " must be C-contiguous");
  if (want.like != nullptr) {
    bool same = x.ndim() == want.like->ndim();
    for (py::ssize_t d = 0; same && d < x.ndim(); ++d) same = x.shape(d) == want.like->shape(d);
    if (!same)
      throw py::value_error(who() + " has shape " + shape_str(x) + " but " + want.like_name +
                            " has shape " + shape_str(*want.like));
  } else if (!want.any_shape) {
    if (static_cast<size_t>(x.ndim()) != want.shape.size())
      throw py::value_error(who() + " must have " + std::to_string(want.shape.size()) +
                            " dimensions, got shape " + shape_str(x));
    int d = 0;
    for (int64_t extent : want.shape) {
      if (extent != kAny && x.shape(d) != extent)
        throw py::value_error(who() + " has shape " + shape_str(x) + " but dimension " +
                              std::to_string(d) + " must be " + std::to_string(extent));
      ++d;
    }
  }
  if (writable && !x.writeable()) throw py::value_error(who() + " must be writeable");
  return static_cast<T*>(const_cast<void*>(x.data()));
}

// A required array of a fixed rank (kAny matches any extent).
template <typename T>
T* checked(const py::array& x, const char* op, const char* arg, std::initializer_list<int64_t> shape,
           bool writable = false) {
  return check_array<T>(x, op, arg, Expect{shape}, writable);
}

// A required element-wise argument of any rank: exactly the shape of `like` (already checked,
// named `like_name` in errors).
template <typename T>
T* checked_like(const py::array& x, const char* op, const char* arg, const py::array& like,
                const char* like_name, bool writable = false) {
  return check_array<T>(x, op, arg, Expect{{}, &like, like_name}, writable);
}

// An argument that may be None (a gradient not wanted, an absent bias): None gives nullptr,
// anything else must pass the same checks as a required one.
template <typename T>
T* optional_checked(const py::object& obj, const char* op, const char* arg,
                    std::initializer_list<int64_t> shape, bool writable = false) {
  if (obj.is_none()) return nullptr;
  return check_array<T>(obj, op, arg, Expect{shape}, writable, " or None");
}

// ---------------------------------------------------------------------- dtype dispatch
// Calls fn(float{}) or fn(double{}) by the dtype of `x` (the argument that decides the
// instantiation; every other array must then match it, which the checks above enforce), and
// refuses anything else with a TypeError naming the op and the argument. The one place a
// binding turns a runtime dtype into a kernel template argument.
template <typename F>
decltype(auto) by_dtype(py::handle x, const char* op, const std::string& arg, F&& fn) {
  if (!py::isinstance<py::array>(x))
    throw py::type_error(std::string(op) + ": " + arg + " must be a numpy array, got " +
                         std::string(py::str(py::type::of(x))));
  const py::dtype d = py::reinterpret_borrow<py::array>(x).dtype();
  if (is_dtype<float>(d)) return fn(float{});
  if (is_dtype<double>(d)) return fn(double{});
  throw py::type_error(std::string(op) + ": " + arg + " must be float32 or float64, got " +
                       dtype_name(d));
}

// by_dtype for the kernels that also store bfloat16 activations (passed as their uint16
// bits): fn(uint16_t{}) for those. kernel_t<S> is the element type the kernel sees.
template <typename F>
decltype(auto) by_dtype_or_bf16(py::handle x, const char* op, const std::string& arg, F&& fn) {
  if (py::isinstance<py::array>(x)) {
    const py::dtype d = py::reinterpret_borrow<py::array>(x).dtype();
    if (is_dtype<uint16_t>(d)) return fn(uint16_t{});
    if (!is_dtype<float>(d) && !is_dtype<double>(d))
      throw py::type_error(std::string(op) + ": " + arg +
                           " must be float32, float64 or bfloat16 bits (uint16), got " +
                           dtype_name(d));
  }
  return by_dtype(x, op, arg, fn);
}
// Calls fn(float{}) for a float32 array or fn(uint16_t{}) for bfloat16 bits (an operand or
// result of the bfloat16 kernels that may be either).
template <typename F>
void by_bf16_operand(const py::array& x, const char* op, const char* arg, F&& fn) {
  const py::dtype d = x.dtype();
  if (is_dtype<float>(d)) return fn(float{});
  if (is_dtype<uint16_t>(d)) return fn(uint16_t{});
  throw py::type_error(std::string(op) + ": " + arg +
                       " must be float32 or bfloat16 bits (uint16), got " + dtype_name(d));
}
template <typename S>
using kernel_t = std::conditional_t<std::is_same<S, uint16_t>::value, bf16, S>;

// ------------------------------------------------------------------------ size arithmetic
// Every size a kernel derives from the arguments (extents, paddings, dilations, strides,
// kernel sizes, their products, output sizes, workspace sizes) is computed here first, in 64
// bits with overflow checks, and must lie in [0, kMaxSize]. 2**48 elements is far beyond any
// real tensor, and leaves the kernels room: a bounded size times an element size, plus a
// bounded offset, still fits int64_t, so no index or byte count inside a kernel can wrap.
constexpr int64_t kMaxSize = int64_t(1) << 48;

class Sizes {
 public:
  // `context` describes the arguments (shapes, hyper-parameters); it is only called to build
  // the error message, so passing checks costs no string formatting.
  Sizes(const char* op, std::function<std::string()> context)
      : op_(op), context_(std::move(context)) {}

  // v itself, refused unless 0 <= v <= kMaxSize.
  int64_t operator()(int64_t v, const char* what) const {
    if (v < 0)
      throw py::value_error(std::string(op_) + ": " + what + " " + std::to_string(v) +
                            " must not be negative for " + context_());
    if (v > kMaxSize) fail(what, std::to_string(v));
    return v;
  }
  int64_t add(int64_t a, int64_t b, const char* what) const {
    int64_t r;
    if (__builtin_add_overflow(a, b, &r) || r < 0 || r > kMaxSize)
      fail(what, std::to_string(a) + " + " + std::to_string(b));
    return r;
  }
  int64_t mul(int64_t a, int64_t b, const char* what) const {
    int64_t r;
    if (__builtin_mul_overflow(a, b, &r) || r < 0 || r > kMaxSize)
      fail(what, std::to_string(a) + " * " + std::to_string(b));
    return r;
  }
  // The product of all factors (each refused the same way as it is multiplied in).
  int64_t product(std::initializer_list<int64_t> factors, const char* what) const {
    int64_t r = 1;
    for (int64_t f : factors) r = mul(r, f, what);
    return r;
  }

 private:
  [[noreturn]] void fail(const char* what, const std::string& expr) const {
    throw py::value_error(std::string(op_) + ": " + what + " " + expr +
                          " is too large (sizes must lie in [0, 2**48]) for " + context_());
  }
  const char* op_;
  std::function<std::string()> context_;
};

// -------------------------------------------------------------------------------- overlap
// The bytes an argument spans. Checked arrays are C-contiguous, so that is data()..+nbytes
// (an empty array spans nothing and overlaps nothing).
struct Extent {
  const char* begin;
  const char* end;
  std::string name;
  bool written;  // the kernel writes it (outputs, in-place state)
};

inline Extent extent_of(const py::array& x, std::string name, bool written) {
  const char* p = static_cast<const char*>(x.data());
  return Extent{p, p + x.nbytes(), std::move(name), written};
}

// The extent of an argument that may be None (None spans nothing).
inline Extent optional_extent(const py::object& v, std::string name, bool written) {
  if (v.is_none()) return Extent{nullptr, nullptr, std::move(name), written};
  return extent_of(py::reinterpret_borrow<py::array>(v), std::move(name), written);
}

// Refuses (ValueError) any two arguments sharing a byte when at least one of them is written:
// the kernels read inputs while they write outputs, in an order of their choosing, so an
// overlap silently corrupts results or reads half-updated values. Inputs may alias each other
// (gemm(a, a) is fine). With `identical_ok`, an output may be exactly an input (same bytes,
// element-wise kernels that are written for in-place use). O(n log n) in the arguments.
inline void check_no_overlap(const char* op, std::vector<Extent> args, bool identical_ok = false) {
  args.erase(std::remove_if(args.begin(), args.end(),
                            [](const Extent& e) { return e.begin == e.end; }),
             args.end());
  std::sort(args.begin(), args.end(), [](const Extent& a, const Extent& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  if (identical_ok) {  // exactly shared bytes count once (written if any of them is)
    std::vector<Extent> merged;
    for (Extent& e : args)
      if (!merged.empty() && merged.back().begin == e.begin && merged.back().end == e.end) {
        if (e.written && !merged.back().written) std::swap(merged.back(), e);
      } else {
        merged.push_back(std::move(e));
      }
    args.swap(merged);
  }
  // Sweeping by start address, keep the earlier extent that reaches furthest right, among all
  // and among the written ones: a later extent overlaps some earlier one iff it starts before
  // that furthest end.
  const Extent* far_any = nullptr;
  const Extent* far_written = nullptr;
  for (const Extent& e : args) {
    const Extent* other = nullptr;
    if (e.written && far_any && far_any->end > e.begin) other = far_any;
    if (!other && far_written && far_written->end > e.begin) other = far_written;
    if (other) {
      const Extent& out = e.written ? e : *other;
      const Extent& in = e.written ? *other : e;
      throw py::value_error(std::string(op) + ": " + out.name + " must not share memory with " +
                            in.name + " (their bytes overlap)");
    }
    if (!far_any || e.end > far_any->end) far_any = &e;
    if (e.written && (!far_written || e.end > far_written->end)) far_written = &e;
  }
}

// Refuses a NaN or infinite scalar hyper-parameter (ValueError naming it): a kernel given one
// quietly writes NaN over every element it updates.
inline void check_finite(const char* op, std::initializer_list<std::pair<const char*, double>> values) {
  for (const auto& v : values)
    if (!std::isfinite(v.second)) {
      std::ostringstream s;
      s << op << ": " << v.first << " must be finite, got " << (std::isnan(v.second) ? "nan" : v.second > 0 ? "inf" : "-inf");
      throw py::value_error(s.str());
    }
}

}  // namespace mg
