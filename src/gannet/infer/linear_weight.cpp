#include "gannet/infer/linear_weight.h"

#include <algorithm>

#include "gannet/core/dtype.h"
#include "gannet/kernels/bias.h"
#include "gannet/kernels/gelu.h"
#include "gannet/kernels/gemm.h"

namespace gannet::infer {

LinearWeight::LinearWeight(Tensor weight, int64_t out, int64_t in, Tensor bias)
    : weight_(std::move(weight)), bias_(std::move(bias)), out_(out), in_(in) {
  if (weight_.dtype() == DType::f32) check_shape(weight_, {out, in}, "LinearWeight f32 weight");
  else if (weight_.dtype() == DType::bf16) check_shape(weight_, {kernels::packed_bf16_size(out, in)}, "LinearWeight packed bf16 weight");
  else fail(str("LinearWeight: weight dtype ", dtype_name(weight_.dtype()), " is not supported (f32, bf16)"));
  if (bias_.defined()) check_shape(bias_, {out}, "LinearWeight bias");
}

int64_t LinearWeight::scratch_floats(int64_t M) const {
  if (M <= kSkinnyMaxRows || dtype() == DType::f32) return 0;
  return std::min(kWidenRows, out_features()) * in_features();
}

void LinearWeight::apply(const float* X, int64_t ldx, int64_t M, float* Y, int64_t ldy, kernels::Epilogue e,
                         float* scratch) const {
  const int64_t N = out_features(), K = in_features();
  const float* b = bias_.defined() ? bias_.f32() : nullptr;
  if (M <= kSkinnyMaxRows) {
    if (dtype() == DType::f32) return kernels::skinny_matmul(X, ldx, M, weight_.f32(), N, K, b, Y, ldy, e);
    return kernels::skinny_matmul_bf16(X, ldx, M, weight_.half_bits(), N, K, b, Y, ldy, e);
  }
  // GEMM path: Y (+)= X W^T, then bias and GELU over the rows.
  const float beta = e == kernels::Epilogue::accumulate ? 1.f : 0.f;
  if (dtype() == DType::f32) {
    kernels::gemm(false, true, M, N, K, 1.f, X, ldx, weight_.f32(), K, beta, Y, ldy);
  } else {
    GANNET_CHECK(scratch != nullptr, "LinearWeight::apply: bf16 GEMM needs scratch");
    for (int64_t n0 = 0; n0 < N; n0 += kWidenRows) {
      int64_t rows = std::min(kWidenRows, N - n0);
      kernels::unpack_bf16_rows(weight_.half_bits(), N, K, n0, rows, scratch);
      kernels::gemm(false, true, M, rows, K, 1.f, X, ldx, scratch, K, beta, Y + n0, ldy);
    }
  }
  if (ldy == N) {  // contiguous rows: one pass each
    if (b) kernels::add_bias(Y, b, M, N);
    if (e == kernels::Epilogue::gelu) kernels::gelu_forward(Y, Y, M * N);
    return;
  }
  for (int64_t m = 0; m < M; ++m) {
    float* y = Y + m * ldy;
    if (b) kernels::add_bias(y, b, 1, N);
    if (e == kernels::Epilogue::gelu) kernels::gelu_forward(y, y, N);
  }
}

}  // namespace gannet::infer
