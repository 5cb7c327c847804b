// Runtime instruction-set dispatch.
//
// The CPU and OS are asked once (CPUID for the instruction sets, XGETBV for whether the OS
// saves the wide registers on a context switch). MINIGRAD_ISA=generic|avx2|avx512 may lower
// the choice for testing; asking for more than the machine has is an error at import.
#pragma once

namespace mg {

// The enumerators double as the names of the per-ISA namespaces (mg::avx2, ...) and of the
// MG_ISA macro that csrc/isa/<isa>.h defines for its translation units.
enum class Isa : int { generic = 0, avx2 = 1, avx512 = 2 };

// The highest level whose kernel tables this build carries (CMake's MINIGRAD_MAX_ISA; all of
// them unless a build for one known machine left the others out).
#ifndef MG_BUILT_ISA
#define MG_BUILT_ISA 2
#endif
constexpr Isa kBuiltIsa = static_cast<Isa>(MG_BUILT_ISA);

Isa cpu_isa();            // the best the CPU and OS support, among the levels built
Isa active_isa();         // what kernels use: cpu_isa(), possibly lowered by MINIGRAD_ISA
const char* isa_name(Isa isa);
// Validates MINIGRAD_ISA; throws std::invalid_argument with a readable message.
void check_isa_env();

// The one rule for a choice an environment variable may lower but never raise (MINIGRAD_ISA,
// MINIGRAD_BF16_KERNEL): levels 0..count-1, named by names[] from the lowest; returns the
// level `var` names, or `best` when it is unset or empty. An unknown name, or a level above
// `best`, throws std::invalid_argument naming the variable, the choices and the best level.
int level_from_env(const char* var, const char* const* names, int count, int best);
// The same, for the level kernels use: `best` where the variable is invalid (import has
// already refused it through the check).
int active_level_from_env(const char* var, const char* const* names, int count, int best);

// bfloat16 arithmetic beyond the ISA levels above (gemm/bf16.h picks its road from these):
// AVX512_BF16 (vdpbf16ps) with the AVX-512 state enabled, and AMX-BF16 with the tile state
// enabled by the OS for this process (Linux grants it on request: arch_prctl, asked once here).
bool cpu_has_avx512_bf16();
bool cpu_has_amx_bf16();

// ---- Kernel tables: the one dispatch rule every family follows ----
//
// A family's kernels for one ISA and dtype form a table type (a struct of function pointers
// and a name, e.g. EltwiseKernels<float>). Each ISA's translation unit of the family
// (<family>_<isa>.cpp, built with that ISA's flags) defines
//     template <> EltwiseKernels<float> kernel_table<EltwiseKernels<float>, Isa::avx2>() { ... }
// and the portable code gets the active ISA's table with isa_table<EltwiseKernels<float>>().
// So the list of ISAs lives here (the switch below and MG_DECLARE_KERNEL_TABLES), not in
// every family.
template <typename Table, Isa I>
Table kernel_table();

// Declares a family's specialisations (in its header, after the table type), so every use
// of kernel_table<Table, I> sees that it is defined in another translation unit.
#define MG_DECLARE_KERNEL_TABLES(...)                                   \
  template <>                                                           \
  __VA_ARGS__ kernel_table<__VA_ARGS__, ::mg::Isa::generic>();          \
  template <>                                                           \
  __VA_ARGS__ kernel_table<__VA_ARGS__, ::mg::Isa::avx2>();             \
  template <>                                                           \
  __VA_ARGS__ kernel_table<__VA_ARGS__, ::mg::Isa::avx512>();

// The active ISA's table, picked on first use and kept: one cached table per table type
// (every family has its own table types, so families never share a cache).
template <typename Table>
const Table& isa_table() {
  static const Table table = [] {
    switch (active_isa()) {
#if MG_BUILT_ISA >= 2
      case Isa::avx512: return kernel_table<Table, Isa::avx512>();
#endif
#if MG_BUILT_ISA >= 1
      case Isa::avx2: return kernel_table<Table, Isa::avx2>();
#endif
      default: return kernel_table<Table, Isa::generic>();
    }
  }();
  return table;
}

}  // namespace mg
