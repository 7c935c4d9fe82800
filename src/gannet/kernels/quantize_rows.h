// Token-wise int8 quantization of activations, the A8 of W8A8/W4A8: each row of X becomes
// scale[m] * q[m, :] with q in [-127, 127] (symmetric), ready for kernels/quant_matmul.h.
// ZeroQuant fuses this into the op that produces the activations (LayerNorm, GELU); this is the
// standalone form the engine calls right after them.
//
//   dynamic (static_scale <= 0): scale = max_k |x[m, k]| / 127, q = rint(clamp(x * (127 / max), +-127));
//                                a row of zeros gets scale 0 and q = 0;
//   static  (static_scale > 0):  scale = static_scale (calibrated per tensor),
//                                q = rint(clamp(x * (1 / static_scale), +-127)).
// Rounding is to nearest even; every path computes exactly these float operations, so the vector
// paths equal the scalar reference bitwise.
#pragma once
#include <cstdint>

namespace gannet::kernels {

// q [M, ldq] bytes, scales [M]. Runs on the OpenMP threads (rows split) for large inputs; called
// inside a parallel region it runs on the calling thread.
void quantize_rows(const float* X, int64_t ldx, int64_t M, int64_t K, float static_scale, int8_t* q, int64_t ldq,
                   float* scales);

namespace ref {
void quantize_rows(const float* X, int64_t ldx, int64_t M, int64_t K, float static_scale, int8_t* q, int64_t ldq,
                   float* scales);
}
namespace avx2 {
void quantize_rows(const float* X, int64_t ldx, int64_t M, int64_t K, float static_scale, int8_t* q, int64_t ldq,
                   float* scales);
}
namespace avx512 {
void quantize_rows(const float* X, int64_t ldx, int64_t M, int64_t K, float static_scale, int8_t* q, int64_t ldq,
                   float* scales);
}

}  // namespace gannet::kernels
