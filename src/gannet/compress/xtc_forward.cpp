#include "gannet/compress/xtc_forward.h"

#include "gannet/autograd/attention_scores.h"
#include "gannet/autograd/ops.h"
#include "gannet/compress/low_bit_fake_quant.h"
#include "gannet/compress/simulated_quant.h"

namespace gannet::compress {

namespace {

// x W^T + b with the weight and the input quantized as `q` says (nullptr: f32).
Var product(const nn::Linear& l, const Var& x, const XtcConfig* q) {
  if (!q) return l.forward(x);
  return autograd::linear(fake_quantize_activation(x, 0.f), fake_quantize_low_bit(l.weight, q->weights), l.bias);
}

Var block_forward(const nn::Block& b, const Var& x, int64_t B, int64_t T, const Tensor& mask, const XtcConfig* q,
                  std::vector<Var>* scores) {
  Var qkv = product(b.attn.c_attn, b.ln_1.forward(x), q);
  if (scores) scores->push_back(autograd::attention_scores(qkv, B, T, b.attn.n_head, mask));
  Var h = autograd::add(x, product(b.attn.c_proj, autograd::attention(qkv, B, T, b.attn.n_head, false, mask), q));
  Var g = autograd::gelu(product(b.mlp.c_fc, b.ln_2.forward(h), q));
  return autograd::add(h, product(b.mlp.c_proj, g, q));
}

Var embedding_table(const Var& table, const XtcConfig* q) {
  return q && q->embeddings ? fake_quantize_low_bit(table, q->embedding_spec()) : table;
}

}  // namespace

EncoderTrace traced_forward(const models::Encoder& model, const XtcConfig* quant, const Tensor& tokens,
                            const Tensor& mask, TraceRequest want) {
  GANNET_CHECK(model.config().num_classes > 0, "xtc forward: the encoder has no classification head");
  GANNET_CHECK(!model.config().mlm_head, "xtc forward: an encoder with an MLM head (distil a fine-tuned classifier)");
  const nn::Transformer& trunk = model.trunk();
  const int64_t B = tokens.dim(0), T = tokens.dim(1);
  EncoderTrace r;
  Var x = autograd::embedding(tokens, embedding_table(trunk.token_embedding(), quant),
                              embedding_table(trunk.position_embedding(), quant));
  if (want.hidden) r.hidden.push_back(x);
  for (int64_t l = 0; l < trunk.n_layer(); ++l) {
    x = block_forward(trunk.block(l), x, B, T, mask, quant, want.scores ? &r.scores : nullptr);
    if (want.hidden) r.hidden.push_back(x);
  }
  Var pooled = autograd::masked_mean_pool(trunk.final_norm().forward(x), B, T, mask);
  r.logits = model.classifier().forward(pooled);
  return r;
}

}  // namespace gannet::compress
