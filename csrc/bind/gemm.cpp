// gemm: out[b] = alpha * op(a[b or 0]) @ op(b[b or 0]) + beta * out[b]; all three arrays are
// 3-D (batch, rows, cols); an operand with batch 1 is broadcast.
#include <type_traits>

#include "bind/bind.h"
#include "gemm/bf16.h"
#include "gemm/gemm.h"

namespace mg {
namespace {

// The batched product's geometry from already dtype-checked 3-D operands: the batch (1
// broadcasts), m, n, k, leading dimensions and batch strides. Refuses operands that do not
// multiply and sizes past the Sizes bound, before any memory is touched (the caller checks
// `out` with the dtype it needs, then check_gemm_overlap).
struct GemmShape {
  int64_t batch, m, n, k, lda, ldb, sa, sb;
};

GemmShape gemm_shape(const char* op, const py::array& a, const py::array& b, bool ta, bool tb) {
  GemmShape g{};
  g.batch = a.shape(0) > b.shape(0) ? a.shape(0) : b.shape(0);
  g.m = ta ? a.shape(2) : a.shape(1), g.k = ta ? a.shape(1) : a.shape(2);
  const int64_t kb = tb ? b.shape(2) : b.shape(1);
  g.n = tb ? b.shape(1) : b.shape(2);
  if (g.k != kb || (a.shape(0) != 1 && a.shape(0) != g.batch) || (b.shape(0) != 1 && b.shape(0) != g.batch))
    throw py::value_error(std::string(op) + ": cannot multiply a " + shape_str(a) +
                          (ta ? "^T" : "") + " by b " + shape_str(b) + (tb ? "^T" : ""));
  // Zero-size batches can carry any extents; the driver's blocking arithmetic needs them bounded.
  const Sizes z(op, [&] { return "a " + shape_str(a) + ", b " + shape_str(b); });
  z.mul(g.m, g.k, "a matrix"), z.mul(g.k, g.n, "b matrix"), z.mul(g.m, g.n, "product matrix");
  g.lda = a.shape(2), g.ldb = b.shape(2);
  g.sa = a.shape(0) == 1 ? 0 : a.shape(1) * a.shape(2);
  g.sb = b.shape(0) == 1 ? 0 : b.shape(1) * b.shape(2);
  return g;
}

void check_gemm_overlap(const char* op, const py::array& a, const py::array& b, const py::array& out) {
  check_no_overlap(op, {extent_of(a, "a", false), extent_of(b, "b", false), extent_of(out, "out", true)});
}

template <typename T, bool Ref>
void gemm_typed(const py::array& a, const py::array& b, const py::array& out, bool ta, bool tb,
                double alpha, double beta) {
  const char* op = Ref ? "gemm_ref" : "gemm";
  checked<T>(a, op, "a", {kAny, kAny, kAny});
  checked<T>(b, op, "b", {kAny, kAny, kAny});
  const GemmShape g = gemm_shape(op, a, b, ta, tb);
  T* c = checked<T>(out, op, "out", {g.batch, g.m, g.n}, true);
  check_gemm_overlap(op, a, b, out);
  const T* pa = static_cast<const T*>(a.data());
  const T* pb = static_cast<const T*>(b.data());
  py::gil_scoped_release release;
  if (Ref) {
    for (int64_t i = 0; i < g.batch; ++i)
      gemm_ref<T>(ta, tb, g.m, g.n, g.k, T(alpha), pa + i * g.sa, g.lda, pb + i * g.sb, g.ldb,
                  T(beta), c + i * g.m * g.n, g.n);
  } else {
    gemm_batched<T>(ta, tb, g.batch, g.m, g.n, g.k, T(alpha), pa, g.lda, g.sa, pb, g.ldb, g.sb,
                    T(beta), c, g.n, g.m * g.n);
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

// gemm_bf16: the same contract with float32 `out`; a and b are each bfloat16 (passed as their
// uint16 bits, numpy's view of an ml_dtypes array) or float32 (rounded to bfloat16 on the fly).
template <typename TA, typename TB, bool Ref>
void gemm_bf16_typed(const py::array& a, const py::array& b, const py::array& out, bool ta,
                     bool tb, double alpha, double beta) {
  const char* op = Ref ? "gemm_bf16_ref" : "gemm_bf16";
  const auto* pa = checked<TA>(a, op, "a", {kAny, kAny, kAny});
  const auto* pb = checked<TB>(b, op, "b", {kAny, kAny, kAny});
  const GemmShape g = gemm_shape(op, a, b, ta, tb);
  float* c = checked<float>(out, op, "out", {g.batch, g.m, g.n}, true);
  check_gemm_overlap(op, a, b, out);
  // uint16 bits are bfloat16 values: the same two bytes.
  using A = std::conditional_t<std::is_same_v<TA, uint16_t>, bf16, float>;
  using B = std::conditional_t<std::is_same_v<TB, uint16_t>, bf16, float>;
  const A* xa = reinterpret_cast<const A*>(pa);
  const B* xb = reinterpret_cast<const B*>(pb);
  py::gil_scoped_release release;
  for (int64_t i = 0; i < g.batch; ++i)
    (Ref ? gemm_bf16_ref<A, B> : gemm_bf16<A, B>)(ta, tb, g.m, g.n, g.k, float(alpha),
                                                  xa + i * g.sa, g.lda, xb + i * g.sb, g.ldb,
                                                  float(beta), c + i * g.m * g.n, g.n);
}

template <bool Ref>
void def_gemm_bf16(py::module_& m) {
  m.def("gemm_bf16",
        [](const py::array& a, const py::array& b, const py::array& out, bool ta, bool tb,
           double alpha, double beta) {
          const char* op = Ref ? "gemm_bf16_ref" : "gemm_bf16";
          by_bf16_operand(a, op, "a", [&](auto za) {
            by_bf16_operand(b, op, "b", [&](auto zb) {
              gemm_bf16_typed<decltype(za), decltype(zb), Ref>(a, b, out, ta, tb, alpha, beta);
            });
          });
        },
        "a"_a.noconvert(), "b"_a.noconvert(), "out"_a.noconvert(), "trans_a"_a = false,
        "trans_b"_a = false, "alpha"_a = 1.0, "beta"_a = 0.0);
}

std::string bf16_impl_name() {
  const Bf16Road road = bf16_active_road();
  if (road == Bf16Road::amx) return bf16_kernel_amx().name;
  if (road == Bf16Road::avx512_bf16) return bf16_kernel_avx512_bf16().name;
  return "float32 (operands widened; no bfloat16 arithmetic on this CPU)";
}

}  // namespace

void bind_gemm(py::module_& m, py::module_& ref) {
  def_gemm<false>(m);
  def_gemm<true>(ref);
  def_gemm_bf16<false>(m);
  def_gemm_bf16<true>(ref);
  add_implementation("gemm_bf16", &bf16_impl_name);
  add_implementation("gemm", [] { return std::string(gemm_impl_name()); });
  // tall-k products with a small C
  add_implementation("gemm_dot", [] { return std::string(gemm_dot_impl_name()); });
}

}  // namespace mg
