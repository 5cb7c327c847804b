// gemm: out[b] = alpha * op(a[b or 0]) @ op(b[b or 0]) + beta * out[b]; all three arrays are
// 3-D (batch, rows, cols); an operand with batch 1 is broadcast.
#include <type_traits>

#include "bind/bind.h"
#include "gemm/bf16.h"
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

// gemm_bf16: the same contract with float32 `out`; a and b are each bfloat16 (passed as their
// uint16 bits, numpy's view of an ml_dtypes array) or float32 (rounded to bfloat16 on the fly).
template <typename TA, typename TB, bool Ref>
void gemm_bf16_typed(const py::array& a, const py::array& b, const py::array& out, bool ta,
                     bool tb, double alpha, double beta) {
  const char* op = Ref ? "gemm_bf16_ref" : "gemm_bf16";
  const auto* pa = checked<TA>(a, op, "a", {kAny, kAny, kAny});
  const auto* pb = checked<TB>(b, op, "b", {kAny, kAny, kAny});
  const int64_t batch = a.shape(0) > b.shape(0) ? a.shape(0) : b.shape(0);
  const int64_t m = ta ? a.shape(2) : a.shape(1), k = ta ? a.shape(1) : a.shape(2);
  const int64_t kb = tb ? b.shape(2) : b.shape(1), n = tb ? b.shape(1) : b.shape(2);
  if (k != kb || (a.shape(0) != 1 && a.shape(0) != batch) || (b.shape(0) != 1 && b.shape(0) != batch))
    throw py::value_error(std::string(op) + ": cannot multiply a " + shape_str(a) +
                          (ta ? "^T" : "") + " by b " + shape_str(b) + (tb ? "^T" : ""));
  float* c = checked<float>(out, op, "out", {batch, m, n}, true);
  const Sizes z(op, [&] { return "a " + shape_str(a) + ", b " + shape_str(b); });
  z.mul(m, k, "a matrix"), z.mul(k, n, "b matrix"), z.mul(m, n, "product matrix");
  check_no_overlap(op, {extent_of(a, "a", false), extent_of(b, "b", false), extent_of(out, "out", true)});
  // uint16 bits are bfloat16 values: the same two bytes.
  using A = std::conditional_t<std::is_same_v<TA, uint16_t>, bf16, float>;
  using B = std::conditional_t<std::is_same_v<TB, uint16_t>, bf16, float>;
  const A* xa = reinterpret_cast<const A*>(pa);
  const B* xb = reinterpret_cast<const B*>(pb);
  const int64_t lda = a.shape(2), ldb = b.shape(2);
  const int64_t sa = a.shape(0) == 1 ? 0 : a.shape(1) * a.shape(2);
  const int64_t sb = b.shape(0) == 1 ? 0 : b.shape(1) * b.shape(2);
  py::gil_scoped_release release;
  for (int64_t i = 0; i < batch; ++i)
    (Ref ? gemm_bf16_ref<A, B> : gemm_bf16<A, B>)(ta, tb, m, n, k, float(alpha), xa + i * sa, lda,
                                                  xb + i * sb, ldb, float(beta), c + i * m * n, n);
}

// Calls fn(uint16_t{}) for a bfloat16 operand (uint16 bits) or fn(float{}) for a float32 one.
template <typename F>
void by_bf16_operand(const py::array& x, const char* op, const char* arg, F&& fn) {
  const py::dtype d = x.dtype();
  if (is_dtype<uint16_t>(d)) return fn(uint16_t{});
  if (is_dtype<float>(d)) return fn(float{});
  throw py::type_error(std::string(op) + ": " + arg +
                       " must be bfloat16 bits (uint16) or float32, got " + dtype_name(d));
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
