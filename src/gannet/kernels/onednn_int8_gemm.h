// oneDNN's integer GEMM (u8 x s8 -> s32, libdnnl 2.6): the peer gannet's integer kernels
// (kernels/quant_matmul.h) are measured against, and the machine's int8 FLOP bound that
// `gannet bench` holds W8A8/W4A8 prompt processing to.
#pragma once
#include <cstdint>

namespace gannet::kernels {

// C[M, N] = A[M, K] (u8, row-major) x B[N, K]^T (s8, row-major) in int32, with no offsets.
void onednn_gemm_u8s8s32(int64_t M, int64_t N, int64_t K, const uint8_t* A, const int8_t* B, int32_t* C);

// Multiply-adds x 2 per second (GOP/s) of onednn_gemm_u8s8s32 on an n x n x n product: the median
// of `runs` runs after one warm-up.
double measure_onednn_int8_gops(int64_t n, int runs);

}  // namespace gannet::kernels
