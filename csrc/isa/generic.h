// The generic target: portable code for the baseline of the build (SSE2 on x86-64), the
// fallback on any CPU. Everything a translation unit needs to know about its ISA lives in
// csrc/isa/<isa>.h (see avx2.h for the full list). Included first by every *_generic.cpp file,
// never by the portable drivers.
#pragma once

#define MG_ISA generic
#define MG_ISA_NAME "generic"
#define MG_ISA_HAS_FMA 0  // no fused multiply-add: multiply-adds stay two roundings

namespace mg {
namespace generic {
namespace {

// Channel-vectorised convolution (conv_direct_kernels.inc): 16 vector registers, in which a
// 64-byte vector takes several, so only the one-vector tiles, kConvNarrowTile pixels wide.
constexpr bool kConvWideRegisters = false;
constexpr int kConvNarrowTile = 6;

}  // namespace
}  // namespace generic
}  // namespace mg
