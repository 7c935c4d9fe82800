// LayerNorm whose output goes straight to int8 (ZeroQuant's fusion: the op that produces a
// product's input quantizes it): each row is normalized into a row buffer that stays in L1 and
// quantized from there, token-wise or with a static scale, so the f32 output never goes to memory.
// The result is bitwise that of kernels::layernorm_forward followed by kernels::quantize_rows.
#pragma once
#include <cstdint>

namespace gannet::kernels {

// x [M, C] -> q [M, ldq] (C columns written) and scales [M]; static_scale as quantize_rows.
// Rows run on the OpenMP threads when there are several (on the calling thread inside a region).
void layernorm_quantize_rows(const float* x, const float* gamma, const float* beta, int64_t M, int64_t C, float eps,
                             float static_scale, int8_t* q, int64_t ldq, float* scales);
// The same to int4 codes (W4A4; kernels/quantize_rows_int4.h): q [M, ldq] bytes holding Kp columns
// (C normalized, then padding), scales [M] and, when asymmetric, zero points zeros [M]. Bitwise
// kernels::layernorm_forward followed by kernels::quantize_rows_int4.
void layernorm_quantize_rows_int4(const float* x, const float* gamma, const float* beta, int64_t M, int64_t C,
                                  float eps, int64_t Kp, bool asymmetric, float static_scale, uint8_t* q, int64_t ldq,
                                  float* scales, uint8_t* zeros);

}  // namespace gannet::kernels
