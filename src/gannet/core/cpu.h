// Which vector instruction sets this CPU has, read once; kernels use it to pick their path.
#pragma once

namespace gannet {

enum class Isa { scalar = 0, avx2 = 1, avx512 = 2 };

// The best ISA the CPU supports, lowered by GANNET_ISA=avx2|scalar in the environment (for tests
// and comparisons).
Isa best_isa();
const char* isa_name(Isa isa);
bool cpu_has(Isa isa);
// AVX512-VNNI (vpdpbusd), which the integer kernels' AVX-512 path needs beyond Isa::avx512.
bool cpu_has_avx512_vnni();
// AVX-512 VBMI (vpermb) and GFNI (vgf2p8affineqb), as the low-bit products' AVX-512 path uses.
bool cpu_has_avx512_vbmi_gfni();

}  // namespace gannet
