#include "dispatch.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
#define MG_X86 1
#endif
#if defined(MG_X86) && defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace mg {
namespace {

#ifdef MG_X86
unsigned long long read_xcr0() {
  unsigned int lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<unsigned long long>(hi) << 32) | lo;
}
#endif

Isa detect() {
#ifdef MG_X86
  unsigned int a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return Isa::generic;
  const bool osxsave = c & (1u << 27), fma = c & (1u << 12), avx = c & (1u << 28);
  if (!(osxsave && avx && fma)) return Isa::generic;
  const unsigned long long xcr0 = read_xcr0();
  const bool os_ymm = (xcr0 & 0x6) == 0x6;     // XMM and YMM state
  const bool os_zmm = (xcr0 & 0xe6) == 0xe6;   // plus opmask and both ZMM halves
  if (!os_ymm) return Isa::generic;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return Isa::generic;
  const bool avx2 = b & (1u << 5);
  const bool avx512f = b & (1u << 16), avx512dq = b & (1u << 17), avx512bw = b & (1u << 30),
             avx512vl = b & (1u << 31);
  if (avx2 && avx512f && avx512dq && avx512bw && avx512vl && os_zmm) return Isa::avx512;
  if (avx2) return Isa::avx2;
#endif
  return Isa::generic;
}

constexpr const char* kIsaNames[] = {"generic", "avx2", "avx512"};  // in Isa's order

}  // namespace

Isa cpu_isa() {
  static const Isa isa = std::min(detect(), kBuiltIsa);
  return isa;
}

int level_from_env(const char* var, const char* const* names, int count, int best) {
  const char* env = std::getenv(var);
  if (env == nullptr || *env == '\0') return best;
  for (int level = 0; level < count; ++level) {
    if (std::strcmp(env, names[level]) != 0) continue;
    if (level > best)
      throw std::invalid_argument(std::string(var) + "=" + env +
                                  " is not supported by this CPU/OS and build (best available: " +
                                  names[best] + ")");
    return level;
  }
  std::string choices;
  for (int level = 0; level < count; ++level)
    choices += std::string(level == 0 ? "" : level == count - 1 ? " or " : ", ") + names[level];
  throw std::invalid_argument(std::string(var) + " must be " + choices + ", got '" + env + "'");
}

int active_level_from_env(const char* var, const char* const* names, int count, int best) {
  try {
    return level_from_env(var, names, count, best);
  } catch (const std::invalid_argument&) {
    return best;
  }
}

void check_isa_env() {
  level_from_env("MINIGRAD_ISA", kIsaNames, 3, static_cast<int>(cpu_isa()));
}

Isa active_isa() {
  static const Isa isa = static_cast<Isa>(
      active_level_from_env("MINIGRAD_ISA", kIsaNames, 3, static_cast<int>(cpu_isa())));
  return isa;
}

bool cpu_has_avx512_bf16() {
  static const bool has = [] {
#ifdef MG_X86
    unsigned int a, b, c, d;
    if (cpu_isa() != Isa::avx512 || !__get_cpuid_count(7, 1, &a, &b, &c, &d)) return false;
    return (a & (1u << 5)) != 0;
#else
    return false;
#endif
  }();
  return has;
}

bool cpu_has_amx_bf16() {
  static const bool has = [] {
#if defined(MG_X86) && defined(__linux__)
    unsigned int a, b, c, d;
    if (!cpu_has_avx512_bf16() || !__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
    const bool amx_bf16 = d & (1u << 22), amx_tile = d & (1u << 24);
    const unsigned long long tile_state = (1ull << 17) | (1ull << 18);  // XTILECFG, XTILEDATA
    if (!amx_bf16 || !amx_tile || (read_xcr0() & tile_state) != tile_state) return false;
    // The tile data is too large for the default signal frame: Linux (5.16 and later) enables
    // it per process on request. ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18.
    return syscall(SYS_arch_prctl, 0x1023, 18) == 0;
#else
    return false;
#endif
  }();
  return has;
}

const char* isa_name(Isa isa) { return kIsaNames[static_cast<int>(isa)]; }

}  // namespace mg
