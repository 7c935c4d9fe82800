#include "gannet/core/cpu.h"

#include <cstdlib>
#include <cstring>

namespace gannet {

bool cpu_has(Isa isa) {
  switch (isa) {
    case Isa::scalar: return true;
    case Isa::avx2: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case Isa::avx512:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
  }
  return false;
}

bool cpu_has_avx512_vnni() { return cpu_has(Isa::avx512) && __builtin_cpu_supports("avx512vnni"); }

bool cpu_has_avx512_vbmi_gfni() {
  return cpu_has(Isa::avx512) && __builtin_cpu_supports("avx512vbmi") && __builtin_cpu_supports("gfni");
}

static Isa detect() {
  Isa best = cpu_has(Isa::avx512) ? Isa::avx512 : cpu_has(Isa::avx2) ? Isa::avx2 : Isa::scalar;
  if (const char* env = std::getenv("GANNET_ISA")) {
    if (std::strcmp(env, "scalar") == 0) return Isa::scalar;
    if (std::strcmp(env, "avx2") == 0 && best >= Isa::avx2) return Isa::avx2;
  }
  return best;
}

Isa best_isa() {
  static const Isa isa = detect();
  return isa;
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::scalar: return "scalar";
    case Isa::avx2: return "avx2";
    case Isa::avx512: return "avx512";
  }
  return "?";
}

}  // namespace gannet
