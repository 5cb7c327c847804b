// The AVX-512 target (F, DQ, BW, VL: Skylake-SP and later, Zen 4 and later): everything that
// is particular to it, except its compiler flags (CMakeLists.txt) and its CPUID test
// (dispatch.cpp); avx2.h lists what a target header holds. Included first by every
// *_avx512.cpp file, never by portable code; everything here has internal linkage.
#pragma once
#ifndef __AVX512F__
#error "isa/avx512.h is for *_avx512.cpp files, which CMake compiles with -mavx512f ..."
#endif

#define MG_ISA avx512
#define MG_ISA_NAME "avx512"
#define MG_ISA_HAS_FMA 1

namespace mg {
namespace avx512 {
namespace {

// Channel-vectorised convolution: 32 zmm registers, a 64-byte vector is one. Tiles of
// 4 x 6, 2 x 8 (measured faster than 2 x 12) and 1 x kConvNarrowTile.
constexpr bool kConvWideRegisters = true;
constexpr int kConvNarrowTile = 8;

}  // namespace
}  // namespace avx512
}  // namespace mg
