// Model-level behaviour: causality, padding invariance of the encoder, gradient accumulation,
// the tape's handling of shared inputs, and a loss that falls when training on a fixed batch.
#include <gtest/gtest.h>

#include <cmath>

#include "gannet/autograd/ops.h"
#include "gannet/autograd/tape.h"
#include "gannet/models/encoder.h"
#include "gannet/models/gpt.h"
#include "gannet/optim/adamw.h"

using namespace gannet;

namespace {
models::GptConfig tiny_gpt() {
  models::GptConfig c;
  c.vocab_size = 50;
  c.n_ctx = 12;
  c.n_layer = 2;
  c.n_head = 2;
  c.n_embd = 16;
  return c;
}

Tensor random_tokens(int64_t B, int64_t T, int64_t V, uint64_t seed) {
  Rng rng(seed);
  Tensor t = Tensor::empty({B, T}, DType::i32);
  for (int64_t i = 0; i < B * T; ++i) t.data<int32_t>()[i] = (int32_t)rng.below(V);
  return t;
}
}  // namespace

TEST(Gpt, LaterTokensDoNotChangeEarlierLogits) {
  models::Gpt m(tiny_gpt());
  m.init(3);
  autograd::NoGrad ng;
  Tensor a = random_tokens(1, 10, 50, 1);
  Tensor b = a.clone();
  b.data<int32_t>()[7] = (a.data<int32_t>()[7] + 1) % 50;
  Tensor la = m.logits(a).value(), lb = m.logits(b).value();
  for (int64_t i = 0; i < 7 * 50; ++i) ASSERT_EQ(la.f32()[i], lb.f32()[i]) << i;
  double diff = 0;
  for (int64_t i = 7 * 50; i < 10 * 50; ++i) diff += std::fabs(la.f32()[i] - lb.f32()[i]);
  EXPECT_GT(diff, 1e-4);
}

TEST(Gpt, GradientAccumulatesAcrossBackwardCalls) {
  models::Gpt m(tiny_gpt());
  m.init(4);
  Tensor x = random_tokens(2, 8, 50, 2), y = random_tokens(2, 8, 50, 3);
  nn::zero_grad(m.parameters());
  autograd::tape().backward(m.loss(x, y));
  std::vector<Tensor> once;
  for (const auto& p : m.parameters()) once.push_back(p.var.grad().clone());
  autograd::tape().backward(m.loss(x, y));
  for (size_t i = 0; i < once.size(); ++i) {
    const Tensor& g = m.parameters()[i].var.grad();
    for (int64_t j = 0; j < g.numel(); ++j) ASSERT_NEAR(g.f32()[j], 2 * once[i].f32()[j], 1e-6 + 1e-5 * std::fabs(once[i].f32()[j]));
  }
}

TEST(Gpt, LossFallsWhenFittingOneBatch) {
  models::Gpt m(tiny_gpt());
  m.init(5);
  Tensor x = random_tokens(2, 8, 50, 6), y = random_tokens(2, 8, 50, 7);
  optim::AdamWOptions o;
  o.lr = 1e-2f;
  optim::AdamW opt(m.parameters(), o);
  float first = 0, last = 0;
  for (int s = 0; s < 40; ++s) {
    nn::zero_grad(m.parameters());
    autograd::Var loss = m.loss(x, y);
    if (s == 0) first = loss.value().f32()[0];
    last = loss.value().f32()[0];
    autograd::tape().backward(loss);
    opt.step(o.lr);
  }
  EXPECT_NEAR(first, std::log(50.f), 0.2f);
  EXPECT_LT(last, 0.5f * first);
}

TEST(Gpt, RejectsBadInput) {
  models::Gpt m(tiny_gpt());
  EXPECT_THROW(m.logits(random_tokens(1, 13, 50, 1)), Error);  // longer than n_ctx
  Tensor bad = random_tokens(1, 4, 50, 1);
  bad.data<int32_t>()[2] = 50;
  EXPECT_THROW(m.logits(bad), Error);
  models::GptConfig c = tiny_gpt();
  c.n_head = 3;
  EXPECT_THROW(models::Gpt{c}, Error);
}

TEST(Tape, SharedInputGetsBothGradients) {
  // y = sum-free check: loss = CE(linear(x + x)) has d/dx = 2 * d/d(x+x).
  autograd::Var x(Tensor::from_vector({0.1f, -0.2f, 0.3f, 0.4f, -0.5f, 0.6f}, {2, 3}), true);
  autograd::Var w(Tensor::from_vector({0.5f, -1.f, 2.f, 1.f, 0.f, -0.5f}, {2, 3}), true);
  Tensor tg = Tensor::empty({2}, DType::i32);
  tg.data<int32_t>()[0] = 1;
  tg.data<int32_t>()[1] = 0;
  autograd::Var s = autograd::add(x, x);
  autograd::tape().backward(autograd::cross_entropy(autograd::linear(s, w, autograd::Var()), tg));
  // Reference: the same graph on 2x with its own input.
  autograd::Var x2(Tensor::from_vector({0.2f, -0.4f, 0.6f, 0.8f, -1.f, 1.2f}, {2, 3}), true);
  autograd::Var w2(w.value().clone(), true);
  autograd::tape().backward(autograd::cross_entropy(autograd::linear(x2, w2, autograd::Var()), tg));
  for (int i = 0; i < 6; ++i) EXPECT_NEAR(x.grad().f32()[i], 2 * x2.grad().f32()[i], 1e-6);
}

TEST(Encoder, PaddingDoesNotChangeTheResult) {
  models::EncoderConfig c;
  c.vocab_size = 40;
  c.n_ctx = 10;
  c.n_layer = 2;
  c.n_head = 2;
  c.n_embd = 16;
  c.num_classes = 3;
  models::Encoder m(c);
  m.init(9);
  autograd::NoGrad ng;
  Tensor tokens = random_tokens(2, 10, 40, 11);
  Tensor mask = Tensor::empty({2, 10}, DType::u8);
  for (int i = 0; i < 20; ++i) mask.data<uint8_t>()[i] = (i % 10) < (i < 10 ? 6 : 10);
  Tensor la = m.logits(tokens, mask).value().clone();
  Tensor other = tokens.clone();
  for (int t = 6; t < 10; ++t) other.data<int32_t>()[t] = (tokens.data<int32_t>()[t] + 5) % 40;
  Tensor lb = m.logits(other, mask).value();
  for (int i = 0; i < 6; ++i) EXPECT_NEAR(la.f32()[i], lb.f32()[i], 1e-6) << i;
  // A change to a real token does change it (bidirectional: the first token sees the last one).
  other.data<int32_t>()[15] = (tokens.data<int32_t>()[15] + 1) % 40;
  Tensor lc = m.logits(other, mask).value();
  double diff = 0;
  for (int i = 3; i < 6; ++i) diff += std::fabs(lc.f32()[i] - la.f32()[i]);
  EXPECT_GT(diff, 1e-6);
}

TEST(Encoder, LearnsToClassify) {
  models::EncoderConfig c;
  c.vocab_size = 20;
  c.n_ctx = 8;
  c.n_layer = 1;
  c.n_head = 2;
  c.n_embd = 16;
  c.num_classes = 2;
  models::Encoder m(c);
  m.init(2);
  // Class = whether token 3 appears anywhere in the sequence.
  Tensor tokens = random_tokens(16, 8, 20, 21);
  Tensor mask8 = Tensor::empty({16, 8}, DType::u8);
  Tensor labels = Tensor::empty({16}, DType::i32);
  for (int b = 0; b < 16; ++b) {
    int32_t* row = tokens.data<int32_t>() + b * 8;
    for (int t = 0; t < 8; ++t) {
      if (row[t] == 3) row[t] = 4;
      mask8.data<uint8_t>()[b * 8 + t] = 1;
    }
    if (b % 2) row[(b * 5) % 8] = 3;
    labels.data<int32_t>()[b] = b % 2;
  }
  optim::AdamWOptions o;
  o.lr = 3e-3f;
  o.weight_decay = 0.f;
  optim::AdamW opt(m.parameters(), o);
  float last = 0;
  for (int s = 0; s < 150; ++s) {
    nn::zero_grad(m.parameters());
    autograd::Var loss = m.loss(tokens, mask8, labels);
    last = loss.value().f32()[0];
    autograd::tape().backward(loss);
    opt.step(o.lr);
  }
  EXPECT_LT(last, 0.1f);
}

TEST(Encoder, GradientsMatchFiniteDifferences) {
  // Through the tape: embedding, bidirectional masked attention, masked mean pooling, the head.
  models::EncoderConfig c;
  c.vocab_size = 12;
  c.n_ctx = 6;
  c.n_layer = 1;
  c.n_head = 2;
  c.n_embd = 8;
  c.num_classes = 3;
  models::Encoder m(c);
  m.init(5);
  Rng rng(1);
  for (const auto& p : m.parameters()) nn::init_normal(p.var, rng, 0.3f);  // larger weights: larger gradients
  Tensor tokens = random_tokens(2, 6, 12, 4);
  Tensor mask = Tensor::empty({2, 6}, DType::u8);
  for (int i = 0; i < 12; ++i) mask.data<uint8_t>()[i] = i < 6 ? 1 : (i % 6) < 4;
  Tensor labels = Tensor::empty({2}, DType::i32);
  labels.data<int32_t>()[0] = 2;
  labels.data<int32_t>()[1] = 0;
  nn::zero_grad(m.parameters());
  autograd::tape().backward(m.loss(tokens, mask, labels));
  autograd::NoGrad ng;
  int checked = 0;
  for (const auto& p : m.parameters()) {
    float* w = p.var.value().f32();
    const float* g = p.var.grad().f32();
    for (int64_t i = 0; i < p.var.value().numel(); i += 7) {
      const float h = 1e-2f, keep = w[i];
      w[i] = keep + h;
      double up = m.loss(tokens, mask, labels).value().f32()[0];
      w[i] = keep - h;
      double down = m.loss(tokens, mask, labels).value().f32()[0];
      w[i] = keep;
      double fd = (up - down) / (2 * h);
      ASSERT_NEAR(g[i], fd, 2e-3 + 0.03 * std::fabs(fd)) << p.name << "[" << i << "]";
      ++checked;
    }
  }
  EXPECT_GT(checked, 100);
}
