#include "gannet/compress/xtc_forward.h"

#include "gannet/autograd/attention_scores.h"
#include "gannet/autograd/ops.h"
#include "gannet/compress/low_bit_fake_quant.h"
#include "gannet/compress/simulated_quant.h"

namespace gannet::compress {

namespace {

// x W^T + b of block `layer`'s product `p`, with the weight in the form's shape and the input
// quantized as the form says (form nullptr: f32).
Var product(const nn::Linear& l, int64_t layer, int p, const Var& x, const StudentForm* form) {
  if (!form) return l.forward(x);
  return autograd::linear(fake_quantize_activation(x, form->input(layer, p)), form->weight(layer, p, l.weight), l.bias);
}

Var embedding_table(const Var& table, const StudentForm* f) { return f ? f->embedding_table(table) : table; }

}  // namespace

Var student_block_forward(const nn::Block& b, int64_t layer, const Var& x, int64_t B, int64_t T, bool causal,
                          const Tensor& mask, const StudentForm* f, std::vector<Var>* scores) {
  Var qkv = product(b.attn.c_attn, layer, 0, b.ln_1.forward(x), f);
  if (scores) scores->push_back(autograd::attention_scores(qkv, B, T, b.attn.n_head, mask));
  Var h = autograd::add(
      x, product(b.attn.c_proj, layer, 1, autograd::attention(qkv, B, T, b.attn.n_head, causal, mask), f));
  Var g = autograd::gelu(product(b.mlp.c_fc, layer, 2, b.ln_2.forward(h), f));
  return autograd::add(h, product(b.mlp.c_proj, layer, 3, g, f));
}

Var XtcForm::weight(int64_t, int, const Var& w) const { return fake_quantize_low_bit(w, config_.weights); }

Var XtcForm::embedding_table(const Var& table) const {
  return config_.embeddings ? fake_quantize_low_bit(table, config_.embedding_spec()) : table;
}

EncoderTrace traced_forward(const models::Encoder& model, const StudentForm* form, const Tensor& tokens,
                            const Tensor& mask, TraceRequest want) {
  GANNET_CHECK(model.config().num_classes > 0, "xtc forward: the encoder has no classification head");
  GANNET_CHECK(!model.config().mlm_head, "xtc forward: an encoder with an MLM head (distil a fine-tuned classifier)");
  const nn::Transformer& trunk = model.trunk();
  const int64_t B = tokens.dim(0), T = tokens.dim(1);
  EncoderTrace r;
  Var x = autograd::embedding(tokens, embedding_table(trunk.token_embedding(), form),
                              embedding_table(trunk.position_embedding(), form));
  if (want.hidden) r.hidden.push_back(x);
  for (int64_t l = 0; l < trunk.n_layer(); ++l) {
    x = student_block_forward(trunk.block(l), l, x, B, T, false, mask, form, want.scores ? &r.scores : nullptr);
    if (want.hidden) r.hidden.push_back(x);
  }
  Var pooled = autograd::masked_mean_pool(trunk.final_norm().forward(x), B, T, mask);
  r.logits = model.classifier().forward(pooled);
  return r;
}

}  // namespace gannet::compress
