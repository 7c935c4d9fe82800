#include "gannet/infer/linear_weight.h"

#include <algorithm>

#include "gannet/core/dtype.h"
#include "gannet/kernels/bias.h"
#include "gannet/kernels/gelu.h"
#include "gannet/kernels/gemm.h"

namespace gannet::infer {

namespace {
kernels::PackedType packed_type(DType t) {
  GANNET_CHECK(t == DType::f32 || t == DType::bf16, "LinearWeight: weight dtype ", dtype_name(t),
               " is not supported (f32, bf16)");
  return t == DType::f32 ? kernels::PackedType::f32 : kernels::PackedType::bf16;
}
}  // namespace

LinearWeight::LinearWeight(Tensor weight, int64_t out, int64_t in, Tensor bias)
    : weight_(std::move(weight)), bias_(std::move(bias)), out_(out), in_(in) {
  check_shape(weight_, {kernels::packed_size(packed_type(weight_.dtype()), out, in)}, "LinearWeight packed weight");
  if (bias_.defined()) check_shape(bias_, {out}, "LinearWeight bias");
}

kernels::PackedMatrix LinearWeight::packed() const {
  return {packed_type(weight_.dtype()), weight_.raw(), out_, in_};
}

int64_t LinearWeight::scratch_floats(int64_t M) const {
  if (M <= kSkinnyMaxRows) return 0;
  return std::min(kWidenRows, out_features()) * in_features();
}

void LinearWeight::apply(const float* X, int64_t ldx, int64_t M, float* Y, int64_t ldy, kernels::Epilogue e,
                         float* scratch) const {
  const int64_t N = out_features(), K = in_features();
  const float* b = bias_.defined() ? bias_.f32() : nullptr;
  if (M <= kSkinnyMaxRows) return kernels::skinny_matmul(X, ldx, M, packed(), b, Y, ldy, e);
  // GEMM path: Y (+)= X W^T on unpacked blocks of rows, then bias and GELU over the rows.
  GANNET_CHECK(scratch != nullptr, "LinearWeight::apply: the GEMM path needs scratch");
  const float beta = e == kernels::Epilogue::accumulate ? 1.f : 0.f;
  for (int64_t n0 = 0; n0 < N; n0 += kWidenRows) {
    const int64_t rows = std::min(kWidenRows, N - n0);
    kernels::unpack_rows(packed(), n0, rows, scratch);
    kernels::gemm(false, true, M, rows, K, 1.f, X, ldx, scratch, K, beta, Y + n0, ldy);
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
