// The AVX2 target (Haswell and later, Zen): everything that is particular to it, except its
// compiler flags (CMakeLists.txt) and its CPUID test (dispatch.cpp):
//   - the names: MG_ISA (its namespace and Isa enumerator) and MG_ISA_NAME (in kernel names);
//   - MG_ISA_HAS_FMA;
//   - its tuning constants (conv tile sizes).
// Included first by every *_avx2.cpp file (CMake compiles those with -mavx2 -mfma -mf16c),
// never by portable code: everything here has internal linkage, so no AVX2 instruction can
// be merged by the linker into a function the portable code calls.
#pragma once
#ifndef __AVX2__
#error "isa/avx2.h is for *_avx2.cpp files, which CMake compiles with -mavx2 -mfma"
#endif

#define MG_ISA avx2
#define MG_ISA_NAME "avx2"
#define MG_ISA_HAS_FMA 1

namespace mg {
namespace avx2 {
namespace {

// Channel-vectorised convolution: 16 ymm registers, a 64-byte vector takes two.
constexpr bool kConvWideRegisters = false;
constexpr int kConvNarrowTile = 6;

}  // namespace
}  // namespace avx2
}  // namespace mg
