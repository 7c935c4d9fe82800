// Activation checkpointing (autograd/checkpoint.h): a checkpointed model computes the same loss and
// exactly the same gradients as the plain one (the recomputation repeats the forward bit for bit),
// for dense and MoE blocks (seeded router noise, auxiliary losses) and random-LTD; it holds less
// memory at its peak; and a collective that keeps its result is not run again by the
// recomputation, while one that does not keep it is.
#include <gtest/gtest.h>

#include "gannet/autograd/checkpoint.h"
#include "gannet/autograd/ops.h"
#include "gannet/autograd/tape.h"
#include "gannet/core/allocator.h"
#include "gannet/core/rng.h"
#include "gannet/models/gpt.h"

using namespace gannet;
using autograd::Var;

namespace {

models::GptConfig small_config(bool moe) {
  models::GptConfig c;
  c.vocab_size = 50;
  c.n_ctx = 32;
  c.n_layer = 4;
  c.n_head = 2;
  c.n_embd = 32;
  if (moe) {
    c.moe.num_experts = {4};
    c.moe.k = 2;
    c.moe.min_capacity = 1;
    c.moe.noisy_gate_policy = "Jitter";
    c.moe.router_z_loss_coeff = 1e-3;
  }
  return c;
}

struct Pass {
  double loss = 0;
  std::vector<Tensor> grads;
  std::vector<nn::MoeLayerStats> moe;
  size_t peak = 0;  // bytes in use at the peak of forward + backward, above what was in use before
};

Pass run(bool checkpoint, bool moe, const nn::RandomLtdPlan* ltd = nullptr) {
  models::Gpt model(small_config(moe));
  model.init(7);
  model.set_activation_checkpointing(checkpoint);
  model.set_random_ltd(ltd);
  const int64_t B = 4, T = 32;
  Tensor tokens = Tensor::empty({B, T}, DType::i32), targets = Tensor::empty({B, T}, DType::i32);
  Rng rng(3);
  for (int64_t i = 0; i < B * T; ++i) {
    tokens.data<int32_t>()[i] = (int32_t)rng.below(50);
    targets.data<int32_t>()[i] = i % 7 == 0 ? -1 : (int32_t)rng.below(50);
  }
  nn::MoePass pass;
  pass.training = true;
  pass.seed = 99;
  Pass out;
  const size_t before = host_bytes_in_use();
  host_reset_window_peak();
  {
    Var loss = model.loss(tokens, targets, moe ? &pass : nullptr);
    out.loss = loss.value().f32()[0];
    autograd::tape().backward(loss);
  }
  out.peak = host_bytes_window_peak() - before;
  for (const auto& p : model.parameters()) out.grads.push_back(p.var.grad().clone());
  out.moe = pass.layers;
  return out;
}

void expect_same_gradients(const Pass& a, const Pass& b) {
  EXPECT_EQ(a.loss, b.loss);
  ASSERT_EQ(a.grads.size(), b.grads.size());
  for (size_t i = 0; i < a.grads.size(); ++i) {
    ASSERT_EQ(a.grads[i].numel(), b.grads[i].numel());
    int64_t differ = 0;
    for (int64_t j = 0; j < a.grads[i].numel(); ++j) differ += a.grads[i].f32()[j] != b.grads[i].f32()[j];
    EXPECT_EQ(differ, 0) << "parameter " << i;
  }
}

}  // namespace

TEST(ActivationCheckpoint, DenseGptGradientsAreExactAndPeakIsLower) {
  Pass plain = run(false, false), ckpt = run(true, false);
  expect_same_gradients(plain, ckpt);
  // Four blocks' activations against one block's plus the inputs of the others.
  EXPECT_LT((double)ckpt.peak, 0.75 * (double)plain.peak) << ckpt.peak << " vs " << plain.peak;
}

TEST(ActivationCheckpoint, MoeGptGradientsAuxLossesAndStatisticsAreExact) {
  Pass plain = run(false, true), ckpt = run(true, true);
  expect_same_gradients(plain, ckpt);
  ASSERT_EQ(plain.moe.size(), ckpt.moe.size());  // the recomputation reports nothing twice
  ASSERT_EQ(plain.moe.size(), 2u);
  for (size_t i = 0; i < plain.moe.size(); ++i) {
    EXPECT_EQ(plain.moe[i].balance_loss, ckpt.moe[i].balance_loss);
    EXPECT_EQ(plain.moe[i].z_loss, ckpt.moe[i].z_loss);
    EXPECT_EQ(plain.moe[i].kept, ckpt.moe[i].kept);
  }
}

TEST(ActivationCheckpoint, RandomLtdGradientsAreExact) {
  nn::RandomLtdPlan ltd;
  ltd.layers = {false, true, true, false};
  ltd.keep = 16;
  ltd.seed = 5;
  expect_same_gradients(run(false, true, &ltd), run(true, true, &ltd));
}

namespace {
// A stand-in for a forward collective: doubles x, counting how often it really "communicates",
// and keeps its result for a recomputation the way the dist/ collectives do.
int g_exchanges = 0;
Var fake_exchange(const Var& x) {
  Tensor out;
  if (const std::any* k = autograd::kept_communication()) {
    out = std::any_cast<const Tensor&>(*k);
  } else {
    ++g_exchanges;
    out = x.value().clone();
    for (int64_t i = 0; i < out.numel(); ++i) out.f32()[i] *= 2.f;
    autograd::keep_communication(out);
  }
  const bool rg = autograd::grad_enabled() && x.requires_grad();
  Var y(out, rg);
  if (rg)
    autograd::tape().record([x, y] {
      Tensor g = y.grad().clone();
      for (int64_t i = 0; i < g.numel(); ++i) g.f32()[i] *= 2.f;
      autograd::deposit_grad(x, g);
    });
  return y;
}

// x W^T, exchanged, times W^T again, exchanged; cross-entropy against target 1. The gradients of x
// and W, checkpointed (keep: whether the exchanges keep their results) or not (keep unused).
std::pair<Tensor, Tensor> exchange_grads(bool checkpointed, bool keep) {
  Var w(Tensor::empty({3, 3}), true), x(Tensor::empty({2, 3}), true);
  for (int i = 0; i < 9; ++i) w.value().f32()[i] = 0.1f * (float)(i - 4);
  for (int i = 0; i < 6; ++i) x.value().f32()[i] = 1.f - 0.3f * (float)i;
  autograd::Region region = [&w](const std::vector<Var>& in) {
    Var h = fake_exchange(autograd::linear(in[0], w, Var()));
    return std::vector<Var>{fake_exchange(autograd::linear(h, w, Var()))};
  };
  Var y = checkpointed ? autograd::checkpoint(region, {x}, keep)[0] : region({x})[0];
  Tensor targets = Tensor::empty({2}, DType::i32);
  targets.data<int32_t>()[0] = 1;
  targets.data<int32_t>()[1] = 2;
  autograd::tape().backward(autograd::cross_entropy(y, targets));
  return {x.grad().clone(), w.grad().clone()};
}
}  // namespace

TEST(ActivationCheckpoint, KeptCommunicationIsNotRepeated) {
  g_exchanges = 0;
  auto [gx, gw] = exchange_grads(false, false);
  ASSERT_EQ(g_exchanges, 2);
  for (bool keep : {true, false}) {
    g_exchanges = 0;
    auto [cx, cw] = exchange_grads(true, keep);
    EXPECT_EQ(g_exchanges, keep ? 2 : 4) << "keep " << keep;  // the recomputation exchanges again without
    for (int i = 0; i < 6; ++i) EXPECT_EQ(cx.f32()[i], gx.f32()[i]) << i;
    for (int i = 0; i < 9; ++i) EXPECT_EQ(cw.f32()[i], gw.f32()[i]) << i;
  }
}

TEST(ActivationCheckpoint, OutsideGradModeItIsThePlainForward) {
  autograd::NoGrad off;
  int runs = 0;
  Var x(Tensor::empty({1, 2}), true);
  x.value().f32()[0] = 1.f;
  x.value().f32()[1] = 2.f;
  Var w(Tensor::empty({1, 2}), true);
  w.value().f32()[0] = 3.f;
  w.value().f32()[1] = 0.f;
  std::vector<Var> y = autograd::checkpoint(
      [&runs, &w](const std::vector<Var>& in) {
        ++runs;
        return std::vector<Var>{autograd::linear(in[0], w, Var())};
      },
      {x});
  EXPECT_EQ(runs, 1);
  EXPECT_FALSE(y[0].requires_grad());
  EXPECT_EQ(y[0].value().f32()[0], 3.f);
  EXPECT_EQ(autograd::tape().size(), 0u);
}
