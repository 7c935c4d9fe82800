#include "gannet/compress/gpt_student_forward.h"

#include "gannet/autograd/ops.h"
#include "gannet/compress/xtc_forward.h"
#include "gannet/core/error.h"

namespace gannet::compress {

autograd::Var gpt_student_logits(const models::Gpt& model, const StudentForm* form, const Tensor& tokens) {
  GANNET_CHECK(!model.config().moe.enabled(), "gpt student forward: the model has MoE blocks (a dense GPT only)");
  GANNET_CHECK(!model.vocab_parallel(), "gpt student forward: the model is split over a tensor-parallel group");
  const nn::Transformer& trunk = model.trunk();
  const int64_t B = tokens.dim(0), T = tokens.dim(1);
  const autograd::Var wte = form ? form->embedding_table(trunk.token_embedding()) : trunk.token_embedding();
  const autograd::Var wpe = form ? form->embedding_table(trunk.position_embedding()) : trunk.position_embedding();
  autograd::Var x = autograd::embedding(tokens, wte, wpe);
  for (int64_t l = 0; l < trunk.n_layer(); ++l)
    x = student_block_forward(trunk.block(l), l, x, B, T, /*causal=*/true, Tensor(), form, nullptr);
  return autograd::linear(trunk.final_norm().forward(x), trunk.token_embedding(), autograd::Var());
}

}  // namespace gannet::compress
