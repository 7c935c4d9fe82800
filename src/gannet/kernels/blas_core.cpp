#include "gannet/kernels/blas_core.h"

#include <cblas.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace gannet::kernels {

namespace {

// OpenBLAS's dynamic-arch kernel sets that use neither AVX2 nor AVX-512 (its fallbacks for CPUs it
// does not know, and the kernels of CPUs older than Haswell).
constexpr std::string_view kPreAvx2Cores[] = {
    "Unknown", "Katmai",  "Coppermine",   "Northwood", "Prescott", "Banias",      "Atom",
    "Core2",   "Penryn",  "Dunnington",   "Nehalem",   "Athlon",   "Opteron",     "Opteron_SSE3",
    "Barcelona", "Nano",  "Sandybridge",  "Bobcat",    "Bulldozer", "Piledriver", "Steamroller"};

bool is_pre_avx2(std::string_view core) {
  for (std::string_view c : kPreAvx2Cores)
    if (c.size() == core.size() && strncasecmp(c.data(), core.data(), c.size()) == 0) return true;
  return false;
}

}  // namespace

BlasCpuFeatures blas_cpu_features() {
  BlasCpuFeatures f;
  f.avx2_fma = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  f.avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
             __builtin_cpu_supports("avx512cd");
  f.avx512_bf16 = f.avx512 && __builtin_cpu_supports("avx512bf16");
  return f;
}

std::string blas_core_upgrade(std::string_view chosen, const BlasCpuFeatures& cpu) {
  if (!is_pre_avx2(chosen)) return "";
  if (cpu.avx512_bf16) return "Cooperlake";
  if (cpu.avx512) return "SkylakeX";
  if (cpu.avx2_fma) return "Haswell";
  return "";
}

const char* blas_core_name() { return openblas_get_corename(); }

void ensure_blas_core(char** argv) {
  if (std::getenv("OPENBLAS_CORETYPE") != nullptr) return;  // the user's choice, or our restart
  std::string better = blas_core_upgrade(blas_core_name(), blas_cpu_features());
  if (better.empty()) return;
  if (setenv("OPENBLAS_CORETYPE", better.c_str(), 1) != 0) return;
  execv("/proc/self/exe", argv);
  std::fprintf(stderr, "gannet: warning: could not restart with OPENBLAS_CORETYPE=%s (%s); "
               "GEMMs run on OpenBLAS's slow %s kernels\n", better.c_str(), std::strerror(errno),
               blas_core_name());
}

}  // namespace gannet::kernels
