// NxMiFormer's product: int8 activations (token-wise, kernels/quantize_rows.h) times an N:M sparse
// matrix of int8 or int4 kept values (kernels/nm_sparse_weights.h), reading only the kept values and
// their positions.
//
//   Y[m, r] = sa[m] * sum_g s[r, g] * I[m, r, g] + bias[r],
//   I[m, r, g] = sum over row r's kept entries j in group g of a[m, column(r, j)] * q[r, j]
//
// with the arithmetic of ZeroQuant's W8A8 product (kernels/quant_matmul.h) for symmetric weights:
// I exact in int32, acc = fma(float(I_g), s[r, g], acc) for g ascending from 0, y = fma(acc, sa[m],
// bias[r] or 0). So the sparse product equals, bitwise, quant_matmul on the dense quantized matrix
// with zeros where nothing is kept.
#pragma once
#include <cstdint>

#include "gannet/kernels/nm_sparse_weights.h"
#include "gannet/kernels/quant_matmul.h"  // QuantizedRows

namespace gannet::kernels {

// Throws one line naming `what` unless A and W have a shape the product takes.
void check_nm_sparse_product(const QuantizedRows& A, const NmSparseWeights& W, const char* what);

// The layout the vector paths stream, packed once from NmSparseWeights: patterns n:4 with n 1 or 2
// and int8 values (others run on the reference). Rows in blocks of 16 (N padded with zero rows and
// zero scales); a block holds its K / group groups in turn; a group is
//   64 bytes         f32 scales of the 16 rows,
//   steps x 64 bytes the kept values, step s: byte 4r + i = row r's kept entry 4s + i of the group,
//   steps x 16 bytes the positions, step s: byte r = the positions of row r's entries 4s .. 4s + 3,
//                    2 bits each (entry i at bits 2i); then zeros to a multiple of 64 bytes,
// with steps = (group * n / 4) / 4: a step is 4 kept entries of every row, over 4 / n runs of 4
// columns. The kernels gather each row's activations by its positions (vpermb on a 64-byte window,
// or vpshufb) and multiply them with the 4 kept values: the positions stay 2 bits per kept entry in
// memory, so decode reads (0.5 + 0.125) n / 2 bytes per dense weight plus the scales, against W8A8's
// 1 plus the scales.
struct NmSparsePacked {
  int n = 2;
  int64_t N = 0, K = 0, group = 0;
  const void* data = nullptr;  // 64-byte aligned
  int64_t steps_per_group() const { return group * n / 4 / 4; }
  int64_t group_bytes() const { return 64 + steps_per_group() * 64 + (steps_per_group() * 16 + 63) / 64 * 64; }
  int64_t block_bytes() const { return K / group * group_bytes(); }
  int64_t blocks() const { return (N + 15) / 16; }
};
// Whether the vector paths take W's pattern and bits (else nm_sparse_matmul runs the reference).
bool nm_sparse_packable(const NmSparseWeights& W);
int64_t nm_sparse_packed_bytes(const NmSparseWeights& W);
// Packs W (nm_sparse_packable) into out (nm_sparse_packed_bytes(W) bytes, 64-byte aligned).
NmSparsePacked pack_nm_sparse(const NmSparseWeights& W, void* out);

// The product on the packed form with the best vector path (AVX-512 with VNNI and VBMI, else AVX2),
// bitwise ref::nm_sparse_matmul's result; without AVX2 the reference on `plain` (W's unpacked form). Runs
// on the OpenMP threads (blocks of 16 output columns split between them); called inside a parallel
// region it runs on the calling thread. bias may be nullptr; Y must not overlap A.
void nm_sparse_matmul(const QuantizedRows& A, const NmSparsePacked& W, const NmSparseWeights& plain, const float* bias,
                      float* Y, int64_t ldy);

// Activation rows copied for the vector paths: row m at x + m * stride holds a[m, k] for k < K, then
// at least 64 more readable bytes; for avx512:: biased to unsigned (a + 128, as its
// sums expect), for avx2:: as they are (its products take the signs apart). avx512:: with more
// than 6 rows also needs x and stride 64-byte aligned (its windows are the aligned lines around
// each step; nm_sparse_matmul copies the rows so).
struct GatherRows {
  const uint8_t* x = nullptr;
  int64_t stride = 0;
  const float* scale = nullptr;  // [M]
  int64_t M = 0;
};

// The per-ISA bodies: output blocks [b_begin, b_end) of all rows on the calling thread.
#define GANNET_NM_SPARSE_DECLS                                                                           \
  void nm_sparse_matmul_range(const GatherRows& A, const NmSparsePacked& W, const float* bias, float* Y, \
                              int64_t ldy, int64_t b_begin, int64_t b_end);
namespace avx512 {
GANNET_NM_SPARSE_DECLS  // VNNI + VBMI: needs cpu_has_avx512_vnni() and cpu_has_avx512_vbmi_gfni()
}
namespace avx2 {
GANNET_NM_SPARSE_DECLS
}
#undef GANNET_NM_SPARSE_DECLS

namespace ref {
// Y [M, ldy], columns [0, N); bias may be nullptr.
void nm_sparse_matmul(const QuantizedRows& A, const NmSparseWeights& W, const float* bias, float* Y, int64_t ldy);
}  // namespace ref

}  // namespace gannet::kernels
