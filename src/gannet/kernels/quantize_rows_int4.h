// Token-wise int4 quantization of activations, the A4 of W4A4 (the INT4 paper's encoder
// pipeline), and the widening the integer products apply to such rows.
//
// Row m of X becomes scale[m] * (c[m, k] - z[m]), each code c in [0, 15] stored two per byte
// (column 2j in the low nibble of byte j, 2j + 1 in the high one):
//   symmetric, dynamic:  scale = max_k |x| / 7, inv = 7 / max (0 for a row of zeros), z = 8,
//                        c = rint(clamp(fma(x, inv, 8), 1, 15))   (values -7..7);
//   symmetric, static:   scale = static_scale (calibrated per tensor), inv = 1 / scale, as above;
//   asymmetric, dynamic: lo = min(0, min_k x), hi = max(0, max_k x), scale = (hi - lo) / 15,
//                        inv = 15 / (hi - lo) (0 when equal), z = rint(-lo * inv) (in [0, 15]),
//                        c = rint(clamp(fma(x, inv, z), 0, 15))   (values -z..15 - z).
// (fma: x * inv + z rounded once, so every path that has the instruction gets the same float.)
// The range always holds 0, so padding columns (code z) and zeros are exact. Rounding is to
// nearest even; every path computes these float operations, so the vector paths equal the scalar
// reference bitwise.
#pragma once
#include <cstdint>

#include "gannet/kernels/quant_matmul.h"

namespace gannet::kernels {

struct Int4RowScale {
  float scale, inv;
  int zero;
};
// A row's scale, inverse and zero point from its minimum and maximum, as above. static_scale > 0
// is symmetric only.
Int4RowScale int4_row_scale(float lo, float hi, bool asymmetric, float static_scale);

// X [M, ldx] f32 -> codes q [M, ldq] bytes (ldq >= Kp / 2), scales [M] and, when asymmetric, zero
// points zeros [M] (may be nullptr when symmetric). Columns [K, Kp) get code z (value 0); Kp is even
// and >= K. Runs on the OpenMP threads (rows split) for large inputs; inside a parallel region on
// the calling thread. Throws on bad sizes, a non-finite or negative static scale, or a static scale
// with asymmetric rows.
void quantize_rows_int4(const float* X, int64_t ldx, int64_t M, int64_t K, int64_t Kp, bool asymmetric,
                        float static_scale, uint8_t* q, int64_t ldq, float* scales, uint8_t* zeros);

// quantize_rows_int4 in two halves, for an op whose rows are written in column ranges by several
// threads (kernels/quant_matmul.h's quant_matmul_gelu_int4): each range's minimum and maximum (both
// starting from 0), then, once the whole rows' scales are known (int4_row_scale of the ranges'
// extremes), each range's codes with the rows' inverses inv [M] and zero points zeros [M] (nullptr:
// 8, symmetric). A range starts at an even column of the row; columns [K, Kp) of it get code z.
// Together they give quantize_rows_int4's codes bitwise (extremes do not depend on how the row is
// cut). On the calling thread.
void rows_min_max(const float* X, int64_t ldx, int64_t M, int64_t K, float* lo, float* hi);
void quantize_rows_int4_with(const float* X, int64_t ldx, int64_t M, int64_t K, int64_t Kp, bool asymmetric,
                             const float* inv, const uint8_t* zeros, uint8_t* q, int64_t ldq);

// The rows of a QuantizedRows of 4 bits (see quant_matmul.h) as int8 values c - z:
// out[(m - m_begin) * ldo + k] for rows [m_begin, m_end) and all A.K columns.
void widen_int4_rows(const QuantizedRows& A, int64_t m_begin, int64_t m_end, int8_t* out, int64_t ldo);

#define GANNET_QUANTIZE_ROWS_INT4_DECLS                                                                          \
  void quantize_rows_int4(const float* X, int64_t ldx, int64_t M, int64_t K, int64_t Kp, bool asymmetric,       \
                          float static_scale, uint8_t* q, int64_t ldq, float* scales, uint8_t* zeros);    \
  void rows_min_max(const float* X, int64_t ldx, int64_t M, int64_t K, float* lo, float* hi);                   \
  void quantize_rows_int4_with(const float* X, int64_t ldx, int64_t M, int64_t K, int64_t Kp, bool asymmetric,  \
                               const float* inv, const uint8_t* zeros, uint8_t* q, int64_t ldq);
namespace ref {
GANNET_QUANTIZE_ROWS_INT4_DECLS
}
namespace avx2 {
GANNET_QUANTIZE_ROWS_INT4_DECLS
}
namespace avx512 {
GANNET_QUANTIZE_ROWS_INT4_DECLS
}
#undef GANNET_QUANTIZE_ROWS_INT4_DECLS

}  // namespace gannet::kernels
