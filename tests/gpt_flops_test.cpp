// Gpt::flops_computed counts the FLOPs a pass computed: the nominal count for a dense model or a
// dropless MoE, and for an MoE with a capacity limit exactly 2 x 8C^2 fewer per dropped expert slot
// (the drops as the layers themselves report them).
#include <gtest/gtest.h>

#include "gannet/core/rng.h"
#include "gannet/core/tensor.h"
#include "gannet/models/gpt.h"

using namespace gannet;

namespace {
models::GptConfig config(bool moe, bool drop_tokens) {
  models::GptConfig c;
  c.vocab_size = 64, c.n_ctx = 32, c.n_layer = 4, c.n_head = 2, c.n_embd = 16;
  if (moe) {
    c.moe.num_experts = {4};
    c.moe.k = 2;
    c.moe.capacity_factor = 0.5;  // tight: many choices dropped
    c.moe.min_capacity = 1;
    c.moe.drop_tokens = drop_tokens;
  }
  return c;
}

// One training forward pass over 3 sequences of 32 random tokens; its MoE statistics in `pass`.
void forward(const models::Gpt& model, nn::MoePass& pass, Tensor& x) {
  Rng rng(5);
  x = Tensor::empty({3, 32}, DType::i32);
  Tensor y = Tensor::empty({3, 32}, DType::i32);
  for (int64_t i = 0; i < x.numel(); ++i) {
    x.data<int32_t>()[i] = (int32_t)rng.below(64);
    y.data<int32_t>()[i] = (int32_t)rng.below(64);
  }
  pass.training = true;
  pass.seed = 3;
  model.loss(x, y, &pass);
}
}  // namespace

TEST(GptFlops, DenseModelComputesItsNominalFlops) {
  models::Gpt model(config(false, true));
  model.init(1);
  nn::MoePass pass;
  Tensor x;
  forward(model, pass, x);
  EXPECT_TRUE(pass.layers.empty());
  EXPECT_DOUBLE_EQ(model.flops_computed(32, 96, pass), 96 * model.flops_per_token(32));
}

TEST(GptFlops, DroplessMoeComputesItsNominalFlops) {
  models::Gpt model(config(true, false));
  model.init(1);
  nn::MoePass pass;
  Tensor x;
  forward(model, pass, x);
  ASSERT_EQ(pass.layers.size(), 2u);
  for (const auto& l : pass.layers) EXPECT_EQ(l.dropped_fraction, 0.0);
  EXPECT_NEAR(model.flops_computed(32, 96, pass), 96 * model.flops_per_token(32), 1e-9 * 96 * model.flops_per_token(32));
}

TEST(GptFlops, DroppedSlotsAreNotCounted) {
  models::Gpt model(config(true, true));
  model.init(1);
  nn::MoePass pass;
  Tensor x;
  forward(model, pass, x);
  ASSERT_EQ(pass.layers.size(), 2u);
  const double C = 16, nominal = 96 * model.flops_per_token(32);
  double dropped_slots = 0;
  for (const auto& l : pass.layers) dropped_slots += l.dropped_fraction * 2.0 * (double)l.tokens;  // k = 2
  EXPECT_GT(dropped_slots, 10.0);  // the tight capacity did drop
  EXPECT_NEAR(model.flops_computed(32, 96, pass), nominal - 2.0 * 8.0 * C * C * dropped_slots, 1e-6);
}
