#include "gannet/compress/simulated_quant.h"

#include "gannet/autograd/ops.h"
#include "gannet/autograd/straight_through.h"

namespace gannet::compress {

using autograd::straight_through;

Var fake_quantize_weight(const Var& w, const WeightQuantSpec& spec) {
  GANNET_CHECK(w.value().dtype() == DType::f32 && w.value().ndim() == 2, "fake quantize weight: expected a 2-D f32 ",
               "matrix, got ", w.value().describe());
  return straight_through(w, [&](const Tensor& W, Tensor& out) {
    fake_quantize_weights(W.f32(), W.dim(0), W.dim(1), spec, out.f32());
  });
}

Var fake_quantize_activation(const Var& x, float static_scale) {
  GANNET_CHECK(x.value().dtype() == DType::f32 && x.value().ndim() == 2, "fake quantize activation: expected a 2-D ",
               "f32 tensor, got ", x.value().describe());
  return straight_through(x, [&](const Tensor& X, Tensor& out) {
    fake_quantize_activations(X.f32(), X.dim(0), X.dim(1), static_scale, out.f32());
  });
}

Var fake_quantize_activation(const Var& x, const io::ActivationQuant& a) {
  GANNET_CHECK(x.value().dtype() == DType::f32 && x.value().ndim() == 2, "fake quantize activation: expected a 2-D ",
               "f32 tensor, got ", x.value().describe());
  return straight_through(x, [&](const Tensor& X, Tensor& out) {
    fake_quantize_activations(X.f32(), X.dim(0), X.dim(1), a, out.f32());
  });
}

Var simulated_block_forward(const nn::Block& b, const BlockQuant& q, const Var& x, int64_t B, int64_t T) {
  const nn::Linear* products[4] = {&b.attn.c_attn, &b.attn.c_proj, &b.mlp.c_fc, &b.mlp.c_proj};
  auto product = [&](int i, const Var& in) {
    const nn::Linear& l = *products[i];
    const Var w = q.weight[i] ? fake_quantize_weight(l.weight, *q.weight[i]) : l.weight;
    const Var xin = q.input[i].quantized ? fake_quantize_activation(in, q.input[i]) : in;
    return autograd::linear(xin, w, l.bias);
  };
  Var a = autograd::attention(product(0, b.ln_1.forward(x)), B, T, b.attn.n_head, /*causal=*/true);
  Var h = autograd::add(x, product(1, a));
  Var m = autograd::gelu(product(2, b.ln_2.forward(h)));
  return autograd::add(h, product(3, m));
}

BlockQuant recorded_block_quant(const io::GptWeights& model, int64_t layer) {
  BlockQuant q;
  for (size_t i = 0; i < kBlockProducts.size(); ++i)
    q.input[i] = model.activation(str("h.", layer, ".", kBlockProducts[i], ".weight"));
  return q;
}

}  // namespace gannet::compress
