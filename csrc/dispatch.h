// Runtime instruction-set dispatch.
//
// The CPU and OS are asked once (CPUID for the instruction sets, XGETBV for whether the OS
// saves the wide registers on a context switch). MINIGRAD_ISA=generic|avx2|avx512 may lower
// the choice for testing; asking for more than the machine has is an error at import.
// Each kernel family keeps its own table of function pointers filled from active_isa().
#pragma once
#include <string>

namespace mg {

enum class Isa : int { generic = 0, avx2 = 1, avx512 = 2 };

Isa cpu_isa();            // the best the CPU and OS support
Isa active_isa();         // what kernels use: cpu_isa(), possibly lowered by MINIGRAD_ISA
const char* isa_name(Isa isa);
// Validates MINIGRAD_ISA; throws std::invalid_argument with a readable message.
void check_isa_env();

// The one dispatch rule every kernel family follows: call the factory of the active ISA.
// Each argument is a function returning that ISA's kernel table (e.g. avx512::eltwise_f32).
template <typename Table>
Table select_for_isa(Table (*generic)(), Table (*avx2)(), Table (*avx512)()) {
  switch (active_isa()) {
    case Isa::avx512: return avx512();
    case Isa::avx2: return avx2();
    default: return generic();
  }
}

}  // namespace mg
