// Products of a few activation rows with a large weight matrix, the work of a decode step:
//   Y[m, n] = epilogue(sum_k X[m, k] * W[n, k] + bias[n]),  m < M (a handful of rows), n < N.
// The kernel streams W once for all M rows, so its speed is set by memory bandwidth, and keeps
// activations in f32 (bf16 weights are widened in registers; no f32 copy of W is ever made).
//
// W (nn::Linear's [out, in] = [N, K]) is packed for the kernel, so that each thread reads one
// sequential stream: rows in blocks, K padded, and for each block and each 64-byte group of k's
// the block's rows one after another.
//   f32:  blocks of 4 rows, groups of 16 values (K padded to a multiple of 16);
//   bf16: blocks of 8 rows, groups of 32 values (K padded to a multiple of 32). A group is widened
//         with one shift (even k's) and one mask (odd k's) against activations reordered to match.
// Padding is zero. The GEMM path of prefill unpacks row blocks (unpack_rows) as it goes.
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

enum class PackedType : uint8_t { f32, bf16 };

// A packed weight matrix (not owning its data).
struct PackedMatrix {
  PackedType type = PackedType::f32;
  const void* data = nullptr;  // 64-byte aligned for full speed
  int64_t N = 0, K = 0;
};

int64_t packed_block_rows(PackedType t);  // 4 or 8
int64_t packed_group(PackedType t);       // 16 or 32
// Elements (floats or bf16 values) of a packed [N, K] matrix, padding included.
int64_t packed_size(PackedType t, int64_t N, int64_t K);
// Packs row-major f32 W [N, K] into out (bf16: rounded to nearest even).
void pack_weights(PackedType t, const float* W, int64_t N, int64_t K, void* out);
// Widens rows [r0, r0 + rows) of a packed matrix to row-major f32 out [rows, K].
void unpack_rows(const PackedMatrix& W, int64_t r0, int64_t rows, float* out);

// bias may be nullptr. Runs on the OpenMP threads (N split into contiguous ranges); called inside a
// parallel region it runs on the calling thread. Y must not overlap X.
void skinny_matmul(const float* X, int64_t ldx, int64_t M, const PackedMatrix& W, const float* bias, float* Y,
                   int64_t ldy, Epilogue e);

// Activations as the packed kernels read them: each row padded to Kp = round_up(K, group) with
// zeros; for bf16 each group of 32 is stored as its 16 even-k values, then its 16 odd-k values.
void prepare_activations(PackedType t, const float* X, int64_t ldx, int64_t M, int64_t K, float* out);

// The per-ISA bodies: output columns [n_begin, n_end) on the calling thread, from prepared
// activations Xp ([M, Kp]); n_begin a multiple of the block rows.
#define GANNET_SKINNY_DECLS                                                                              \
  void skinny_matmul_range(const float* Xp, int64_t M, const PackedMatrix& W, const float* bias, float* Y, \
                           int64_t ldy, Epilogue e, int64_t n_begin, int64_t n_end);
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
