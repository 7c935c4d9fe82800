// Products of a few activation rows with a large weight matrix, the work of a decode step:
//   Y[m, n] = epilogue(sum_k X[m, k] * W[n, k] + bias[n]),  m < M (a handful of rows), n < N.
// The kernel streams W once for all M rows, so its speed is set by memory bandwidth, and keeps
// activations in f32 (bf16 weights are widened in registers; no f32 copy of W is ever made).
//
// f32 weights are row-major [N, K] (nn::Linear's [out, in]), the layout the GEMM takes too.
// bf16 weights are packed for the kernel (pack_bf16): rows in blocks of 8, K padded to a multiple
// of 32, and for each block and each group of 32 k's the 8 rows' 32 values one after another,
// so that a thread reads one sequential stream. A 32-value group is widened with one shift (even
// k's) and one mask (odd k's); the activations are reordered to match.
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

// The packed bf16 layout.
constexpr int64_t kBf16BlockRows = 8, kBf16Group = 32;
// Elements of a packed [N, K] matrix (with its padding).
int64_t packed_bf16_size(int64_t N, int64_t K);
// Packs row-major f32 W [N, K] (rounded to bf16, nearest even) into `out`.
void pack_bf16(const float* W, int64_t N, int64_t K, uint16_t* out);
// Widens rows [r0, r0 + rows) of a packed matrix to row-major f32 out [rows, K].
void unpack_bf16_rows(const uint16_t* packed, int64_t N, int64_t K, int64_t r0, int64_t rows, float* out);
// Activations reordered for the packed kernel: each row padded to Kp = round_up(K, 32) and each
// group of 32 stored as its 16 even-k values then its 16 odd-k values.
void reorder_activations(const float* X, int64_t ldx, int64_t M, int64_t K, float* out);

// The per-ISA bodies compute the output columns [n_begin, n_end) on the calling thread.
#define GANNET_SKINNY_DECLS                                                                           \
  void skinny_matmul_range(const float* X, int64_t ldx, int64_t M, const float* W, int64_t K,         \
                           const float* bias, float* Y, int64_t ldy, Epilogue e, int64_t n_begin,   \
                           int64_t n_end);                                                           \
  /* Xr: reorder_activations' output; n_begin a multiple of kBf16BlockRows */                       \
  void skinny_matmul_bf16_range(const float* Xr, int64_t M, const uint16_t* W, int64_t K,            \
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
