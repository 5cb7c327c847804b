// relu_forward(x, out), relu_backward(grad, y, out), add(a, b, out): same shape and dtype
// (float32, float64 or bfloat16 as uint16 bits), any rank; `out` may be one of the inputs exactly (in place: each element is read before it
// is written), but not a shifted view of one. The first argument's dtype and shape are the
// ones every other argument must have.
#include "bind/bind.h"
#include "gemm/bf16.h"
#include "eltwise.h"

namespace mg {
namespace {

template <typename S, bool Ref>
void relu_forward_typed(const char* op, const py::array& x, const py::array& out) {
  using T = kernel_t<S>;
  const T* px = reinterpret_cast<const T*>(checked_like<S>(x, op, "x", x, "x"));
  T* py_ = reinterpret_cast<T*>(checked_like<S>(out, op, "out", x, "x", true));
  check_no_overlap(op, {extent_of(x, "x", false), extent_of(out, "out", true)}, true);
  const int64_t n = x.size();
  py::gil_scoped_release release;
  Ref ? relu_forward_ref<T>(px, py_, n) : relu_forward<T>(px, py_, n);
}

template <typename S, bool Ref>
void relu_backward_typed(const char* op, const py::array& g, const py::array& y, const py::array& out) {
  using T = kernel_t<S>;
  const T* pg = reinterpret_cast<const T*>(checked_like<S>(g, op, "grad", g, "grad"));
  const T* py_ = reinterpret_cast<const T*>(checked_like<S>(y, op, "y", g, "grad"));
  T* po = reinterpret_cast<T*>(checked_like<S>(out, op, "out", g, "grad", true));
  check_no_overlap(op, {extent_of(g, "grad", false), extent_of(y, "y", false), extent_of(out, "out", true)}, true);
  const int64_t n = g.size();
  py::gil_scoped_release release;
  Ref ? relu_backward_ref<T>(pg, py_, po, n) : relu_backward<T>(pg, py_, po, n);
}

template <typename S, bool Ref>
void add_typed(const char* op, const py::array& a, const py::array& b, const py::array& out) {
  using T = kernel_t<S>;
  const T* pa = reinterpret_cast<const T*>(checked_like<S>(a, op, "a", a, "a"));
  const T* pb = reinterpret_cast<const T*>(checked_like<S>(b, op, "b", a, "a"));
  T* po = reinterpret_cast<T*>(checked_like<S>(out, op, "out", a, "a", true));
  check_no_overlap(op, {extent_of(a, "a", false), extent_of(b, "b", false), extent_of(out, "out", true)}, true);
  const int64_t n = a.size();
  py::gil_scoped_release release;
  Ref ? add_ref<T>(pa, pb, po, n) : add<T>(pa, pb, po, n);
}

template <bool Ref>
void def_eltwise(py::module_& m) {
  m.def("relu_forward", [](const py::array& x, const py::array& out) {
    const char* op = Ref ? "relu_forward_ref" : "relu_forward";
    by_dtype_or_bf16(x, op, "x", [&](auto zero) { relu_forward_typed<decltype(zero), Ref>(op, x, out); });
  }, "x"_a.noconvert(), "out"_a.noconvert());
  m.def("relu_backward", [](const py::array& g, const py::array& y, const py::array& out) {
    const char* op = Ref ? "relu_backward_ref" : "relu_backward";
    by_dtype_or_bf16(g, op, "grad", [&](auto zero) { relu_backward_typed<decltype(zero), Ref>(op, g, y, out); });
  }, "grad"_a.noconvert(), "y"_a.noconvert(), "out"_a.noconvert());
  m.def("add", [](const py::array& a, const py::array& b, const py::array& out) {
    const char* op = Ref ? "add_ref" : "add";
    by_dtype_or_bf16(a, op, "a", [&](auto zero) { add_typed<decltype(zero), Ref>(op, a, b, out); });
  }, "a"_a.noconvert(), "b"_a.noconvert(), "out"_a.noconvert());
}

}  // namespace

void bind_eltwise(py::module_& m, py::module_& ref) {
  // float32 <-> bfloat16 (uint16 bits) by the dtypes of src and dst, same shape, any rank.
  m.def("convert", [](const py::array& src, const py::array& dst) {
    const char* op = "convert";
    const bool to_bf16 = is_dtype<float>(src.dtype());
    if (to_bf16) {
      const float* s = check_array<float>(src, op, "src", Expect{{}, nullptr, "", true}, false);
      auto* d = reinterpret_cast<bf16*>(checked_like<uint16_t>(dst, op, "dst", src, "src", true));
      check_no_overlap(op, {extent_of(src, "src", false), extent_of(dst, "dst", true)});
      py::gil_scoped_release release;
      bf16_from_float(s, d, static_cast<int64_t>(src.size()));
    } else {
      const auto* s = reinterpret_cast<const bf16*>(
          check_array<uint16_t>(src, op, "src", Expect{{}, nullptr, "", true}, false));
      float* d = checked_like<float>(dst, op, "dst", src, "src", true);
      check_no_overlap(op, {extent_of(src, "src", false), extent_of(dst, "dst", true)});
      py::gil_scoped_release release;
      float_from_bf16(s, d, static_cast<int64_t>(src.size()));
    }
  }, "src"_a.noconvert(), "dst"_a.noconvert(),
        "dst = src converted: float32 -> bfloat16 bits (uint16; to nearest, ties to even) or back");
  def_eltwise<false>(m);
  def_eltwise<true>(ref);
  add_implementation("eltwise", [] { return std::string(eltwise_impl_name()); });
}

}  // namespace mg
