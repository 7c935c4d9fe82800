// Run-time choice between a kernel's AVX-512, AVX2 and scalar-reference versions.
#pragma once
#include "gannet/core/cpu.h"

// Calls fn from the best ISA namespace available (avx512::, avx2::), falling back to the scalar
// reference in ref::. Each kernel header declares all three.
#define GANNET_DISPATCH(fn, ...)                                  \
  do {                                                            \
    switch (::gannet::best_isa()) {                               \
      case ::gannet::Isa::avx512: return avx512::fn(__VA_ARGS__); \
      case ::gannet::Isa::avx2: return avx2::fn(__VA_ARGS__);     \
      default: return ref::fn(__VA_ARGS__);                       \
    }                                                             \
  } while (0)
