// Argument validation for the bindings: every array a kernel touches is checked here for
// dtype, C-contiguity, rank, sizes and writeability, before any kernel sees a pointer.
// Errors name the operation and the argument. Nothing is converted or copied.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
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

}  // namespace mg
