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

// A row's scale and the factor its values are multiplied by, as quantize_rows computes them.
struct RowScale {
  float scale, inv;
};
inline RowScale row_scale(float amax, float static_scale) {
  if (static_scale > 0.f) return {static_scale, 1.f / static_scale};
  return {amax / 127.f, amax > 0.f ? 127.f / amax : 0.f};
}

// quantize_rows in two halves, for an op whose rows are written in column ranges by several threads
// (kernels/quant_matmul.h's quant_matmul_gelu_int8): each range's absolute maxima, then, once the
// whole rows' scales are known, each range's values q = rint(clamp(x * inv[m], +-127)). Together
// they give quantize_rows' result bitwise (a maximum does not depend on how the row is cut). On the
// calling thread.
void rows_abs_max(const float* X, int64_t ldx, int64_t M, int64_t K, float* amax);
void quantize_rows_inv(const float* X, int64_t ldx, int64_t M, int64_t K, const float* inv, int8_t* q, int64_t ldq);

#define GANNET_QUANTIZE_ROWS_DECLS                                                                              \
  void quantize_rows(const float* X, int64_t ldx, int64_t M, int64_t K, float static_scale, int8_t* q,         \
                     int64_t ldq, float* scales);                                                               \
  void rows_abs_max(const float* X, int64_t ldx, int64_t M, int64_t K, float* amax);                          \
  void quantize_rows_inv(const float* X, int64_t ldx, int64_t M, int64_t K, const float* inv, int8_t* q, \
                         int64_t ldq);
namespace ref {
GANNET_QUANTIZE_ROWS_DECLS
}
namespace avx2 {
GANNET_QUANTIZE_ROWS_DECLS
}
namespace avx512 {
GANNET_QUANTIZE_ROWS_DECLS
}
#undef GANNET_QUANTIZE_ROWS_DECLS

}  // namespace gannet::kernels
