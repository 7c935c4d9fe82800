// Which kernel set OpenBLAS runs, and the restart that upgrades it where OpenBLAS misjudges the CPU.
//
// Debian 12's OpenBLAS 0.3.21 does not recognise recent CPUs (Intel family 6 model 207, for one)
// and falls back to its SSE3 "Prescott" kernels: sgemm at 35 GFLOP/s on 2 cores instead of the
// 290 its AVX-512 kernels reach there. OpenBLAS picks its kernels once, when the library loads,
// reading OPENBLAS_CORETYPE; a program that finds the fallback chosen therefore restarts itself
// with that variable set.
#pragma once
#include <string>
#include <string_view>

namespace gannet::kernels {

// What the CPU can run, as far as the choice of OpenBLAS kernels goes.
struct BlasCpuFeatures {
  bool avx2_fma = false;
  bool avx512 = false;       // F, BW, VL, DQ, CD
  bool avx512_bf16 = false;
};

BlasCpuFeatures blas_cpu_features();

// The kernel set to ask OpenBLAS for instead of `chosen`, or "" to keep `chosen`: only when
// `chosen` is a pre-AVX2 fallback and the CPU runs a better one (Cooperlake with AVX512-BF16,
// SkylakeX with AVX-512, Haswell with AVX2 + FMA).
std::string blas_core_upgrade(std::string_view chosen, const BlasCpuFeatures& cpu);

// The name of the kernel set OpenBLAS runs ("Haswell", "Cooperlake", ...).
const char* blas_core_name();

// Call first thing in main(). When OpenBLAS runs fallback kernels on a CPU that has better ones
// and OPENBLAS_CORETYPE is unset, re-executes this program (/proc/self/exe, the same argv) with
// OPENBLAS_CORETYPE set; returns when there is nothing to do, or when the restart failed (with
// a one-line warning on stderr, and the program going on with the fallback).
void ensure_blas_core(char** argv);

}  // namespace gannet::kernels
