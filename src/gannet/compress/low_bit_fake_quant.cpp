#include "gannet/compress/low_bit_fake_quant.h"

#include <algorithm>

#include "gannet/autograd/straight_through.h"
#include "gannet/core/error.h"

namespace gannet::compress {

namespace {
// One group: out[i] = alpha * (float)v_i, the expression LowBitTensor::dequantize evaluates.
void dequantized_group(const float* w, int64_t n, int bits, float* out) {
  const float alpha = quantize_low_bit_group(w, n, bits, [&](int64_t i, int v) { out[i] = (float)v; });
  for (int64_t i = 0; i < n; ++i) out[i] = alpha * out[i];
}
}  // namespace

void fake_quantize_low_bit(const float* W, int64_t N, int64_t K, const LowBitSpec& spec, float* out) {
  check_low_bit_input(W, N, K, spec);
  const int64_t group = spec.group_for(K);
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k0 = 0; k0 < K; k0 += group)
      dequantized_group(W + n * K + k0, std::min(group, K - k0), spec.bits, out + n * K + k0);
}

autograd::Var fake_quantize_low_bit(const autograd::Var& w, const LowBitSpec& spec) {
  GANNET_CHECK(w.defined() && w.value().dtype() == DType::f32 && w.value().ndim() == 2,
               "low-bit fake quantization needs an f32 matrix, got ",
               w.defined() ? w.value().describe() : std::string("none"));
  return autograd::straight_through(w, [&](const Tensor& W, Tensor& out) {
    fake_quantize_low_bit(W.f32(), W.dim(0), W.dim(1), spec, out.f32());
  });
}

}  // namespace gannet::compress
