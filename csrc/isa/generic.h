// The generic target: portable code for the baseline of the build (SSE2 on x86-64), the
// fallback on any CPU. Everything a translation unit needs to know about its ISA lives in
// csrc/isa/<isa>.h (see avx2.h for the full list); this one has no vector traits, since the
// generic GEMM micro-kernel is a plain loop (gemm/gemm_ukr_generic.cpp) left to the compiler.
// Included first by every *_generic.cpp file, never by the portable drivers.
#pragma once
#include <cstdint>

#define MG_ISA generic
#define MG_ISA_NAME "generic"
#define MG_ISA_HAS_FMA 0  // no fused multiply-add: multiply-adds stay two roundings

namespace mg {
namespace generic {
namespace {

// GEMM micro-kernel tile (rows x columns per dtype).
constexpr int kGemmMR = 4;
constexpr int kGemmNRF32 = 8, kGemmNRF64 = 4;
// Dot-product kernel: a kGemmDotMR x kGemmDotNR block of sums, each kept as this many lanes.
constexpr int kGemmDotMR = 2, kGemmDotNR = 4;
constexpr int kGemmDotLanesF32 = 8, kGemmDotLanesF64 = 4;
// GEMM cache blocking, as bytes (gemm.cpp derives KC, MC and NC from them and the tile):
// one KC x NR sliver of B, one thread's MC x KC block of A, the team's KC x NC panel of B.
// Sized for a Zen 5 core (48 KiB L1d, 1 MiB L2, shared L3); see gemm.cpp.
constexpr int64_t kGemmBSliverBytes = 64 * 1024;
constexpr int64_t kGemmABlockBytes = 480 * 1024;
constexpr int64_t kGemmBPanelBytes = 4 * 1024 * 1024;

// One register: the vector type of the kernels written with vector extensions (isa/vector.inc).
// Direct and channel-vectorised convolution (conv_direct_kernels.inc): vectors of one xmm
// register (wider vector types make GCC build each broadcast through the stack and keep the
// accumulators in memory); 16 registers: tiles of two vectors x 6 and of one vector x 6.
constexpr int kVectorBytes = 16;
constexpr bool kConvWideRegisters = false;
constexpr int kConvPairPixels = 6, kConvPairTaps = 6;
constexpr int kConvNarrowTile = 6;

}  // namespace
}  // namespace generic
}  // namespace mg
