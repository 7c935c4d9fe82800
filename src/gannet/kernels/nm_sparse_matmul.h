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

namespace ref {
// Y [M, ldy], columns [0, N); bias may be nullptr.
void nm_sparse_matmul(const QuantizedRows& A, const NmSparseWeights& W, const float* bias, float* Y, int64_t ldy);
}  // namespace ref

}  // namespace gannet::kernels
