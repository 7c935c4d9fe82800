// Products of a few activation rows with a large weight matrix, the work of a decode step:
//   Y[m, n] = epilogue(sum_k X[m, k] * W[n, k] + bias[n]),  m < M (a handful of rows), n < N.
// W is row-major [N, K] (nn::Linear's [out, in]), f32 or bf16 (raw bits, uint16_t). The kernel
// streams W once for all M rows, so its speed is set by memory bandwidth, and keeps activations
// in f32 (bf16 weights are widened in registers; no f32 copy of W is ever made).
//
// Each output element is accumulated in the same order whatever M, the thread count and the other
// rows are: a row's result is bitwise independent of what else is in the batch.
#pragma once
#include <cstdint>

namespace gannet::kernels {

enum class Epilogue : uint8_t {
  store,       // Y = XW^T + b
  gelu,        // Y = gelu(XW^T + b)   (tanh GELU, as kernels/gelu.h)
  accumulate,  // Y += XW^T + b        (a residual connection)
};

// bias may be nullptr. Runs on the OpenMP threads (N split into contiguous ranges); called inside a
// parallel region it runs on the calling thread.
void skinny_matmul(const float* X, int64_t ldx, int64_t M, const float* W, int64_t N, int64_t K,
                   const float* bias, float* Y, int64_t ldy, Epilogue e);
void skinny_matmul_bf16(const float* X, int64_t ldx, int64_t M, const uint16_t* W, int64_t N, int64_t K,
                        const float* bias, float* Y, int64_t ldy, Epilogue e);

// The per-ISA bodies compute the output columns [n_begin, n_end) on the calling thread.
#define GANNET_SKINNY_DECLS                                                                           \
  void skinny_matmul_range(const float* X, int64_t ldx, int64_t M, const float* W, int64_t K,         \
                           const float* bias, float* Y, int64_t ldy, Epilogue e, int64_t n_begin,   \
                           int64_t n_end);                                                           \
  void skinny_matmul_bf16_range(const float* X, int64_t ldx, int64_t M, const uint16_t* W, int64_t K, \
                                const float* bias, float* Y, int64_t ldy, Epilogue e,              \
                                int64_t n_begin, int64_t n_end);
namespace ref {
GANNET_SKINNY_DECLS  // double accumulation, scalar GELU from kernels/gelu.h's reference
}
namespace avx2 {
GANNET_SKINNY_DECLS
}
namespace avx512 {
GANNET_SKINNY_DECLS
}
#undef GANNET_SKINNY_DECLS

}  // namespace gannet::kernels
