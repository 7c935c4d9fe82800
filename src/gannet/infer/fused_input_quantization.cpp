#include "gannet/infer/fused_input_quantization.h"

#include <cstring>

#include "gannet/core/error.h"
#include "gannet/kernels/layernorm_quantize.h"

namespace gannet::infer {

bool takes_fused_inputs(const LinearWeight& w) { return w.quantized() && w.activation_quant().quantized; }

void QuantizedInputs::reserve(int64_t rows, int64_t width) {
  if ((int64_t)q.size() < rows * width) q.resize(rows * width);
  if ((int64_t)scale.size() < rows) scale.resize(rows);
  if ((int64_t)zero.size() < rows) zero.resize(rows);
}

kernels::QuantizedRows layernorm_quantized(const LinearWeight& w, const float* x, int64_t n, int64_t C,
                                           const float* gamma, const float* beta, float eps, QuantizedInputs& in) {
  GANNET_CHECK(takes_fused_inputs(w) && w.in_features() == C, "layernorm_quantized: needs a quantized product with ",
               "quantized inputs of ", C, " features");
  const int64_t Kp = w.packed_in();
  in.reserve(n, Kp);
  const io::ActivationQuant& a = w.activation_quant();
  if (a.bits == 4) {  // the codes of Kp columns (padding code z), two per byte
    uint8_t* zeros = a.asymmetric ? in.zero.data() : nullptr;
    kernels::layernorm_quantize_rows_int4(x, gamma, beta, n, C, eps, Kp, a.asymmetric, a.static_scale,
                                          reinterpret_cast<uint8_t*>(in.q.data()), Kp / 2, in.scale.data(), zeros);
    return {in.q.data(), Kp / 2, in.scale.data(), n, Kp, 4, zeros};
  }
  kernels::layernorm_quantize_rows(x, gamma, beta, n, C, eps, a.static_scale, in.q.data(), Kp, in.scale.data());
  if (Kp > C)
    for (int64_t m = 0; m < n; ++m) std::memset(in.q.data() + m * Kp + C, 0, Kp - C);
  return {in.q.data(), Kp, in.scale.data(), n, Kp};
}

}  // namespace gannet::infer
