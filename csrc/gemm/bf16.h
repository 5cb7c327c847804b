// bfloat16 matrix products with float32 accumulation, for autocast (minigrad/amp.py):
//   C[m x n] = alpha * op(A)[m x k] * op(B)[k x n] + beta * C,   C float32,
// where A and B hold bfloat16 values, or float32 values that are rounded to bfloat16 (to
// nearest, ties to even) while they are packed, so a float32 operand costs no extra pass.
// A product of two bfloat16 values (8 significant bits each) is exact in float32: the only
// rounding is the float32 accumulation.
//
// Three roads, picked once from the CPU (CPUID, XCR0 and, for AMX, the kernel's permission):
//   amx          Intel AMX-BF16 tiles: a 32 x 32 block of C in four 16 x 16 tile registers,
//                k in steps of 32 (Sapphire Rapids and later)
//   avx512_bf16  vdpbf16ps: each float32 lane adds two products per instruction
//                (Cooper Lake, Sapphire Rapids, Zen 4 and later)
//   float32      neither: the operands are widened to float32 and mg::gemm<float> runs
//                (bfloat16's numbers, not its speed)
// MINIGRAD_BF16_KERNEL=amx|avx512_bf16|float32 lowers the choice (tests run every road);
// asking for one the CPU lacks is an error at import. MINIGRAD_ISA below avx512 means float32.
// Both instructions count subnormal bfloat16 inputs as zero (the float32 road keeps them).
#pragma once
#include <cstdint>
#include <cstring>

namespace mg {

// The scalar conversions below are `static inline`: every translation unit, including the
// per-ISA ones compiled with wider instruction sets, keeps its own copy, so the linker can
// never hand a portable caller an AVX-512 build of one.
// bfloat16 storage: the upper 16 bits of a float32. bf16(0) is +0 (buffers are zero-filled
// with T(0) whatever T is).
struct bf16 {
  uint16_t bits;
  bf16() = default;
  constexpr explicit bf16(uint16_t b) : bits(b) {}
};
static_assert(sizeof(bf16) == 2, "bf16 is two bytes");

static inline float bf16_to_float(bf16 v) {
  const uint32_t u = static_cast<uint32_t>(v.bits) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Round to nearest, ties to even (numpy's ml_dtypes and PyTorch round the same way); NaN stays
// a (quiet) NaN, infinities stay infinite, and values that round past the largest finite
// bfloat16 become infinite.
// (Branch-free, so that loops over arrays vectorise.) On the float32 bits u, in the low 16 bits
// of the result; U is uint32_t or a GCC vector of them (the same rule, lane by lane).
template <typename U>
static inline U bf16_bits_rounded(U u) {
  const U rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
  const U quiet_nan = (u >> 16) | 0x40u;
  return (u & 0x7fffffffu) > 0x7f800000u ? quiet_nan : rounded;
}
static inline bf16 float_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return bf16{static_cast<uint16_t>(bf16_bits_rounded(u))};
}

// Kernels that store activations as bfloat16 but compute in float32 (batch norm, the
// element-wise passes) read and write through these: arith_t<T> is the type they compute in
// (float for bf16, T itself otherwise), widen() reads an element in it (exact) and
// store_rounded() writes a result back (bfloat16: to nearest, ties to even).
template <typename T>
struct Arithmetic {
  using type = T;
};
template <>
struct Arithmetic<bf16> {
  using type = float;
};
template <typename T>
using arith_t = typename Arithmetic<T>::type;
static inline float widen(float v) { return v; }
static inline double widen(double v) { return v; }
static inline float widen(bf16 v) { return bf16_to_float(v); }
static inline void store_rounded(float v, float* p) { *p = v; }
static inline void store_rounded(double v, double* p) { *p = v; }
static inline void store_rounded(float v, bf16* p) { *p = float_to_bf16(v); }

static inline float to_float(float v) { return v; }
static inline float to_float(bf16 v) { return bf16_to_float(v); }
static inline bf16 to_bf16(float v) { return float_to_bf16(v); }
static inline bf16 to_bf16(bf16 v) { return v; }

// Whole arrays (csrc/eltwise.cpp, per-ISA spans): the same roundings, threaded.
void bf16_from_float(const float* src, bf16* dst, int64_t n);
void float_from_bf16(const bf16* src, float* dst, int64_t n);

enum class Bf16Road : int { float32 = 0, avx512_bf16 = 1, amx = 2 };
Bf16Road bf16_cpu_road();     // the best this CPU and OS support
Bf16Road bf16_active_road();  // what gemm_bf16 uses: the CPU's, possibly lowered by the variable
const char* bf16_road_name(Bf16Road road);
void check_bf16_env();  // validates MINIGRAD_BF16_KERNEL; throws std::invalid_argument

// A and B are each bf16 or float (instantiated for the four pairs).
template <typename TA, typename TB>
void gemm_bf16(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
               const TA* a, int64_t lda, const TB* b, int64_t ldb, float beta, float* c,
               int64_t ldc);

// B given by the rows of the stored matrix X (op(B) = X, or X^T with trans_b): row r starts
// b_rows[r] values past b and runs contiguously. What the bfloat16 convolution reads: the
// rows of its patch matrix are shifted runs of the padded image (csrc/conv.cpp).
void gemm_bf16_rows(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                    const bf16* a, int64_t lda, const bf16* b, const int64_t* b_rows, float beta,
                    float* c, int64_t ldc);

// Reference: the triple loop on bfloat16-rounded operands, float32 accumulation in k order.
template <typename TA, typename TB>
void gemm_bf16_ref(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                   const TA* a, int64_t lda, const TB* b, int64_t ldb, float beta, float* c,
                   int64_t ldc);

// ---- The contract between the driver (gemm_bf16.cpp) and its micro-kernels ----
// Packed slivers hold bfloat16 bits, zero-padded to mr rows (A) or nr columns (B) and to a
// depth kc that is a multiple of kstep; each is mr * kc or kc * nr values, laid out as the
// kernel's instructions read them:
//   pairs (vdpbf16ps): per pair of k, the two values of a row (A) or a column (B) side by side:
//      A(i, p) at (p / 2) * 2 * mr + 2 * i + p % 2 (one 32-bit broadcast per row and pair),
//      B(p, j) at (p / 2) * 2 * nr + 2 * j + p % 2 (one vector: 16 columns x 2 k);
//   tiles (AMX): per step of 32 k, each 16-row or 16-column tile as 1 KiB of its own, so every
//      tile load reads one contiguous block the prefetchers follow:
//      A(i, p) at (p / 32) * 32 * mr + (i / 16) * 512 + (i % 16) * 32 + p % 32,
//      B(p, j) at (p / 32) * 32 * nr + (j / 16) * 512 + (p % 32 / 2) * 32 + (j % 16) * 2 + p % 2.
// run: C[i*ldc + j] = alpha * sum_p A(i, p) B(p, j) + beta * C[i*ldc + j] for i < m <= mr,
// j < n <= nr; beta == 0: C is only written. prepare (may be null) runs once per thread
// before its first run of a product (the AMX tile configuration).
enum class Bf16Layout : int { pairs, tiles };

inline int64_t bf16_a_slot(Bf16Layout layout, int mr, int64_t i, int64_t p) {
  if (layout == Bf16Layout::pairs) return (p >> 1) * 2 * mr + 2 * i + (p & 1);
  return (p >> 5) * 32 * mr + (i >> 4) * 512 + (i & 15) * 32 + (p & 31);
}
inline int64_t bf16_b_slot(Bf16Layout layout, int nr, int64_t p, int64_t j) {
  if (layout == Bf16Layout::pairs) return (p >> 1) * 2 * nr + 2 * j + (p & 1);
  return (p >> 5) * 32 * nr + (j >> 4) * 512 + ((p & 31) >> 1) * 32 + (j & 15) * 2 + (p & 1);
}

struct Bf16MicroKernel {
  int mr, nr, kstep;
  Bf16Layout layout;
  int64_t kc_max;         // depth of one pass
  int64_t a_block_bytes;  // one thread's packed block of A slivers (kept in L2)
  void (*prepare)();
  void (*run)(int64_t kc, const uint16_t* a, const uint16_t* b, float* c, int64_t ldc,
              float alpha, float beta, int m, int n);
  const char* name;
};
Bf16MicroKernel bf16_kernel_avx512_bf16();  // gemm_bf16_avx512bf16.cpp
Bf16MicroKernel bf16_kernel_amx();          // gemm_bf16_amx.cpp
// An AMX tile configuration (palette 1): tile i has rows[i] rows of colsb[i] bytes. The
// default, tiles 0-7 each 16 rows of 64 bytes, is what the GEMM and the convolution kernels run
// with (the convolution of 16-channel layers narrows its A and B tiles, conv_bf16_amx.cpp).
struct alignas(64) AmxTileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {64, 64, 64, 64, 64, 64, 64, 64};
  uint8_t rows[16] = {16, 16, 16, 16, 16, 16, 16, 16};
};
// Loads the default configuration; per thread, before a kernel's tiles (other code in the
// process may load its own in between).
void amx_load_tile_config();

}  // namespace mg
