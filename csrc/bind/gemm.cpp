// gemm: out[b] = alpha * op(a[b or 0]) @ op(b[b or 0]) + beta * out[b]; all three arrays are
// 3-D (batch, rows, cols); an operand with batch 1 is broadcast.
#include "bind/bind.h"
#include "gemm/gemm.h"

namespace mg {
namespace {

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
  if (Ref) {
    for (int64_t i = 0; i < batch; ++i)
      gemm_ref<T>(ta, tb, m, n, k, T(alpha), pa + i * sa, lda, pb + i * sb, ldb, T(beta),
                  c + i * m * n, n);
  } else {
    gemm_batched<T>(ta, tb, batch, m, n, k, T(alpha), pa, lda, sa, pb, ldb, sb, T(beta), c, n,
                    m * n);
  }
}

template <bool Ref>
void def_gemm(py::module_& m) {
  m.def("gemm",
        [](const py::array& a, const py::array& b, const py::array& out, bool ta, bool tb,
           double alpha, double beta) {
          // out's dtype picks the instantiation (a and b must then match it).
          by_dtype(out, Ref ? "gemm_ref" : "gemm", "out", [&](auto zero) {
            gemm_typed<decltype(zero), Ref>(a, b, out, ta, tb, alpha, beta);
          });
        },
        "a"_a.noconvert(), "b"_a.noconvert(), "out"_a.noconvert(), "trans_a"_a = false,
        "trans_b"_a = false, "alpha"_a = 1.0, "beta"_a = 0.0);
}

}  // namespace

void bind_gemm(py::module_& m, py::module_& ref) {
  def_gemm<false>(m);
  def_gemm<true>(ref);
  add_implementation("gemm", [] { return std::string(gemm_impl_name()); });
  // tall-k products with a small C
  add_implementation("gemm_dot", [] { return std::string(gemm_dot_impl_name()); });
}

}  // namespace mg
