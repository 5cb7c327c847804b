// Argument validation for the bindings: every array a kernel touches is checked here for
// dtype, C-contiguity, rank, sizes and writeability, before any kernel sees a pointer.
// Errors name the operation and the argument. Nothing is converted or copied.
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
#include <vector>

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

// Returns the element pointer of `x` after checking it is a C-contiguous `T` array of the
// given shape (kAny matches any extent). Throws TypeError / ValueError naming op and arg.
template <typename T>
T* checked(const py::array& x, const char* op, const char* arg, std::initializer_list<int64_t> shape,
           bool writable = false) {
  if (!py::isinstance<py::array_t<T>>(x) || !x.dtype().is(py::dtype::of<T>()))
    throw py::type_error(std::string(op) + ": " + arg + " must be " +
                         std::string(py::str(py::dtype::of<T>())) + ", got " +
                         std::string(py::str(x.dtype())));
  if (!(x.flags() & py::array::c_style))
    throw py::value_error(std::string(op) + ": " + arg + " must be C-contiguous");
  if (static_cast<size_t>(x.ndim()) != shape.size())
    throw py::value_error(std::string(op) + ": " + arg + " must have " +
                          std::to_string(shape.size()) + " dimensions, got shape " + shape_str(x));
  int i = 0;
  for (int64_t want : shape) {
    if (want != kAny && x.shape(i) != want) {
      std::ostringstream s;
      s << op << ": " << arg << " has shape " << shape_str(x) << " but dimension " << i
        << " must be " << want;
      throw py::value_error(s.str());
    }
    ++i;
  }
  if (writable && !x.writeable())
    throw py::value_error(std::string(op) + ": " + arg + " must be writeable");
  return static_cast<T*>(const_cast<void*>(x.data()));
}

// Like checked<T>, for element-wise arguments of any rank: `x` must have exactly the shape of
// `like` (which must itself have been checked).
template <typename T>
T* checked_like(const py::array& x, const char* op, const char* arg, const py::array& like,
                bool writable = false) {
  if (!py::isinstance<py::array_t<T>>(x) || !x.dtype().is(py::dtype::of<T>()))
    throw py::type_error(std::string(op) + ": " + arg + " must be " +
                         std::string(py::str(py::dtype::of<T>())) + ", got " +
                         std::string(py::str(x.dtype())));
  if (!(x.flags() & py::array::c_style))
    throw py::value_error(std::string(op) + ": " + arg + " must be C-contiguous");
  bool same = x.ndim() == like.ndim();
  for (py::ssize_t i = 0; same && i < x.ndim(); ++i) same = x.shape(i) == like.shape(i);
  if (!same)
    throw py::value_error(std::string(op) + ": " + arg + " has shape " + shape_str(x) +
                          ", expected " + shape_str(like));
  if (writable && !x.writeable())
    throw py::value_error(std::string(op) + ": " + arg + " must be writeable");
  return static_cast<T*>(const_cast<void*>(x.data()));
}

inline bool is_dtype(const py::array& x, const py::dtype& d) { return x.dtype().is(d); }

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
