// The encoder's masked-language-model head: its loss against a scalar reference written out by
// hand, gradients of every parameter by finite differences, ignored positions contributing
// nothing, the gathered head equal to the full-vocabulary way, parameter names and config checks.
#include <gtest/gtest.h>

#include <cmath>
#include <set>
#include <vector>

#include "gannet/autograd/ops.h"
#include "gannet/autograd/tape.h"
#include "gannet/models/encoder.h"
#include "gannet/optim/adamw.h"

using namespace gannet;

namespace {
models::EncoderConfig tiny_mlm() {
  models::EncoderConfig c;
  c.vocab_size = 12;
  c.n_ctx = 6;
  c.n_layer = 1;
  c.n_head = 2;
  c.n_embd = 8;
  c.num_classes = 0;
  c.mlm_head = true;
  return c;
}

Tensor random_tokens(int64_t B, int64_t T, int64_t V, uint64_t seed) {
  Rng rng(seed);
  Tensor t = Tensor::empty({B, T}, DType::i32);
  for (int64_t i = 0; i < B * T; ++i) t.data<int32_t>()[i] = (int32_t)rng.below(V);
  return t;
}

Tensor i32(const std::vector<int32_t>& v, const Shape& shape) {
  Tensor t = Tensor::empty(shape, DType::i32);
  for (size_t i = 0; i < v.size(); ++i) t.data<int32_t>()[i] = v[i];
  return t;
}

// Two sequences of 6: the second has 2 padding positions. Targets at 4 real positions.
struct Batch {
  Tensor tokens = random_tokens(2, 6, 12, 4);
  Tensor mask = Tensor::empty({2, 6}, DType::u8);
  Tensor targets = i32({-1, 7, -1, -1, 0, -1, 11, -1, 3, -1, -1, -1}, {2, 6});
  Batch() {
    for (int i = 0; i < 12; ++i) mask.data<uint8_t>()[i] = i < 6 ? 1 : (i % 6) < 4;
  }
};

const nn::Var& param(const models::Encoder& m, const std::string& name) {
  for (const auto& p : m.parameters())
    if (p.name == name) return p.var;
  throw Error("no parameter " + name);
}

// The head by hand, in double, from the definitions: dense, tanh-GELU, LayerNorm, tied decoder
// plus bias, log-softmax; mean over the rows with a target.
double reference_mlm_loss(const models::Encoder& m, const Batch& b) {
  autograd::NoGrad ng;
  Tensor h = m.hidden(b.tokens, b.mask).value();
  const int64_t C = m.config().n_embd, V = m.config().vocab_size;
  const float *W = param(m, "mlm.dense.weight").value().f32(), *bd = param(m, "mlm.dense.bias").value().f32();
  const float *g = param(m, "mlm.ln.weight").value().f32(), *be = param(m, "mlm.ln.bias").value().f32();
  const float *E = param(m, "wte.weight").value().f32(), *bo = param(m, "mlm.bias").value().f32();
  double total = 0;
  int counted = 0;
  for (int64_t r = 0; r < b.targets.numel(); ++r) {
    const int32_t tgt = b.targets.data<int32_t>()[r];
    if (tgt < 0) continue;
    std::vector<double> u((size_t)C), y((size_t)C);
    for (int64_t o = 0; o < C; ++o) {
      double s = bd[o];
      for (int64_t i = 0; i < C; ++i) s += (double)W[o * C + i] * h.f32()[r * C + i];
      u[(size_t)o] = 0.5 * s * (1 + std::tanh(std::sqrt(2 / M_PI) * (s + 0.044715 * s * s * s)));
    }
    double mean = 0, var = 0;
    for (double v : u) mean += v / (double)C;
    for (double v : u) var += (v - mean) * (v - mean) / (double)C;
    for (int64_t i = 0; i < C; ++i)
      y[(size_t)i] = (u[(size_t)i] - mean) / std::sqrt(var + m.config().layernorm_eps) * g[i] + be[i];
    std::vector<double> logit((size_t)V);
    double mx = -1e300;
    for (int64_t v = 0; v < V; ++v) {
      double s = bo[v];
      for (int64_t i = 0; i < C; ++i) s += (double)E[v * C + i] * y[(size_t)i];
      logit[(size_t)v] = s;
      mx = std::max(mx, s);
    }
    double z = 0;
    for (double s : logit) z += std::exp(s - mx);
    total += mx + std::log(z) - logit[(size_t)tgt];
    ++counted;
  }
  return total / counted;
}

// Every parameter at large random values (larger gradients), the output bias too.
models::Encoder perturbed_tiny_mlm() {
  models::Encoder m(tiny_mlm());
  m.init(5);
  Rng rng(1);
  for (const auto& p : m.parameters()) nn::init_normal(p.var, rng, 0.3f);
  return m;
}
}  // namespace

TEST(EncoderMlm, LossMatchesAScalarReference) {
  models::Encoder m = perturbed_tiny_mlm();
  Batch b;
  const float loss = m.mlm_loss(b.tokens, b.mask, b.targets).value().f32()[0];
  EXPECT_NEAR(loss, reference_mlm_loss(m, b), 1e-5);
  autograd::tape().clear();
}

TEST(EncoderMlm, GradientsMatchFiniteDifferencesForEveryParameter) {
  models::Encoder m = perturbed_tiny_mlm();
  Batch b;
  nn::zero_grad(m.parameters());
  autograd::tape().backward(m.mlm_loss(b.tokens, b.mask, b.targets));
  autograd::NoGrad ng;
  std::set<std::string> checked_names;
  int checked = 0;
  for (const auto& p : m.parameters()) {
    float* w = p.var.value().f32();
    const float* grad = p.var.grad().f32();
    for (int64_t i = 0; i < p.var.value().numel(); i += 5) {
      const float h = 1e-2f, keep = w[i];
      w[i] = keep + h;
      double up = m.mlm_loss(b.tokens, b.mask, b.targets).value().f32()[0];
      w[i] = keep - h;
      double down = m.mlm_loss(b.tokens, b.mask, b.targets).value().f32()[0];
      w[i] = keep;
      double fd = (up - down) / (2 * h);
      ASSERT_NEAR(grad[i], fd, 2e-3 + 0.03 * std::fabs(fd)) << p.name << "[" << i << "]";
      checked_names.insert(p.name);
      ++checked;
    }
  }
  EXPECT_EQ(checked_names.size(), m.parameters().size());
  EXPECT_GT(checked, 150);
}

TEST(EncoderMlm, IgnoredPositionsContributeNothing) {
  // The loss over targets {A, B} is the mean of the losses over {A} and over {B}.
  models::Encoder m = perturbed_tiny_mlm();
  Batch b;
  autograd::NoGrad ng;
  const float both = m.mlm_loss(b.tokens, b.mask, b.targets).value().f32()[0];
  double sum = 0;
  int n = 0;
  for (int64_t i = 0; i < 12; ++i) {
    if (b.targets.data<int32_t>()[i] < 0) continue;
    Tensor one = Tensor::empty({2, 6}, DType::i32);
    for (int64_t j = 0; j < 12; ++j) one.data<int32_t>()[j] = j == i ? b.targets.data<int32_t>()[i] : -1;
    sum += m.mlm_loss(b.tokens, b.mask, one).value().f32()[0];
    ++n;
  }
  EXPECT_EQ(n, 4);
  EXPECT_NEAR(both, sum / n, 1e-5);
}

TEST(EncoderMlm, GatheredHeadEqualsFullVocabularyLogits) {
  // The head on every row, then a cross-entropy that ignores the rows without a target: the same
  // loss and the same gradients as the head on the target rows only.
  models::Encoder m = perturbed_tiny_mlm();
  Batch b;
  nn::zero_grad(m.parameters());
  autograd::Var loss = m.mlm_loss(b.tokens, b.mask, b.targets);
  const float gathered = loss.value().f32()[0];
  autograd::tape().backward(loss);
  std::vector<Tensor> grads;
  for (const auto& p : m.parameters()) grads.push_back(p.var.grad().clone());
  nn::zero_grad(m.parameters());
  std::vector<int32_t> all(12);
  for (int i = 0; i < 12; ++i) all[(size_t)i] = i;
  autograd::Var full = autograd::cross_entropy(m.mlm_logits(b.tokens, b.mask, i32(all, {12})), b.targets.view({12}));
  EXPECT_NEAR(full.value().f32()[0], gathered, 1e-6);
  autograd::tape().backward(full);
  for (size_t k = 0; k < grads.size(); ++k) {
    const Tensor& g = m.parameters()[k].var.grad();
    for (int64_t i = 0; i < g.numel(); ++i)
      ASSERT_NEAR(g.f32()[i], grads[k].f32()[i], 1e-5 + 1e-4 * std::fabs(grads[k].f32()[i]))
          << m.parameters()[k].name << "[" << i << "]";
  }
}

TEST(EncoderMlm, NoTargetGivesZeroLossAndZeroGradients) {
  models::Encoder m = perturbed_tiny_mlm();
  Batch b;
  for (int64_t i = 0; i < 12; ++i) b.targets.data<int32_t>()[i] = -1;
  nn::zero_grad(m.parameters());
  autograd::Var loss = m.mlm_loss(b.tokens, b.mask, b.targets);
  EXPECT_EQ(loss.value().f32()[0], 0.f);
  autograd::tape().backward(loss);
  for (const auto& p : m.parameters())
    for (int64_t i = 0; i < p.var.grad().numel(); ++i) ASSERT_EQ(p.var.grad().f32()[i], 0.f) << p.name;
}

TEST(EncoderMlm, LearnsToFillInAMaskedToken) {
  // Every sequence is "a b a b ..." with one position masked: its token is the neighbours'.
  models::EncoderConfig c = tiny_mlm();
  c.vocab_size = 10;
  c.n_embd = 16;
  models::Encoder m(c);
  m.init(3);
  const int64_t B = 16, T = 6;
  Tensor tokens = Tensor::empty({B, T}, DType::i32), targets = Tensor::empty({B, T}, DType::i32);
  for (int64_t s = 0; s < B; ++s)
    for (int64_t t = 0; t < T; ++t) {
      const int64_t i = s * T + t;
      const int32_t tok = (int32_t)(3 + (t % 2 ? s % 7 : (s + 3) % 7));
      const bool masked = t == s % T;
      tokens.data<int32_t>()[i] = masked ? 1 : tok;
      targets.data<int32_t>()[i] = masked ? tok : -1;
    }
  optim::AdamWOptions o;
  o.lr = 1e-2f;
  o.weight_decay = 0.f;
  optim::AdamW opt(m.parameters(), o);
  float first = 0, last = 0;
  for (int s = 0; s < 100; ++s) {
    nn::zero_grad(m.parameters());
    autograd::Var loss = m.mlm_loss(tokens, Tensor(), targets);
    if (s == 0) first = loss.value().f32()[0];
    last = loss.value().f32()[0];
    autograd::tape().backward(loss);
    opt.step(o.lr);
  }
  EXPECT_NEAR(first, std::log(10.f), 0.3f);
  EXPECT_LT(last, 0.1f);
}

TEST(EncoderMlm, TrunkNamesDoNotDependOnTheHeads) {
  models::EncoderConfig mlm = tiny_mlm(), cls = tiny_mlm(), both = tiny_mlm();
  cls.mlm_head = false;
  cls.num_classes = 3;
  both.num_classes = 3;
  models::Encoder a(mlm), b(cls), c(both);
  ASSERT_EQ(a.trunk_parameters().size(), b.trunk_parameters().size());
  for (size_t i = 0; i < a.trunk_parameters().size(); ++i) {
    EXPECT_EQ(a.trunk_parameters()[i].name, b.trunk_parameters()[i].name);
    EXPECT_EQ(a.parameters()[i].name, c.parameters()[i].name);
    EXPECT_EQ(a.trunk_parameters()[i].var.shape(), b.trunk_parameters()[i].var.shape());
  }
  auto names_after_trunk = [](const models::Encoder& m) {
    std::vector<std::string> out;
    for (size_t i = m.trunk_parameters().size(); i < m.parameters().size(); ++i) out.push_back(m.parameters()[i].name);
    return out;
  };
  using V = std::vector<std::string>;
  const V mlm_head{"mlm.dense.weight", "mlm.dense.bias", "mlm.ln.weight", "mlm.ln.bias", "mlm.bias"};
  const V classifier{"classifier.weight", "classifier.bias"};
  V both_heads = mlm_head;
  both_heads.insert(both_heads.end(), classifier.begin(), classifier.end());
  EXPECT_EQ(names_after_trunk(a), mlm_head);
  EXPECT_EQ(names_after_trunk(b), classifier);
  EXPECT_EQ(names_after_trunk(c), both_heads);
  // Same seed, different heads: the same trunk.
  a.init(9);
  b.init(9);
  for (size_t i = 0; i < a.trunk_parameters().size(); ++i) {
    const Tensor &x = a.parameters()[i].var.value(), &y = b.parameters()[i].var.value();
    for (int64_t j = 0; j < x.numel(); ++j) ASSERT_EQ(x.f32()[j], y.f32()[j]) << a.parameters()[i].name;
  }
}

TEST(EncoderMlm, RejectsBadTargetsAndMissingHeads) {
  models::Encoder m = perturbed_tiny_mlm();
  Batch b;
  auto rejects = [&](int64_t at, int32_t value) {
    Tensor t = b.targets.clone();
    t.data<int32_t>()[at] = value;
    EXPECT_THROW(m.mlm_loss(b.tokens, b.mask, t), Error) << at << "=" << value;
    autograd::tape().clear();
  };
  rejects(0, 12);  // outside the vocabulary
  rejects(0, -2);  // negative, not the ignore index
  rejects(11, 4);  // on padding
  EXPECT_THROW(m.mlm_loss(b.tokens, b.mask, Tensor::zeros({2, 5}, DType::i32)), Error);
  EXPECT_THROW(m.mlm_loss(b.tokens, b.mask, Tensor::zeros({2, 6}, DType::f32)), Error);
  EXPECT_THROW(m.mlm_loss(b.tokens, Tensor::zeros({2, 5}, DType::u8), b.targets), Error);
  EXPECT_THROW(m.logits(b.tokens, b.mask), Error);  // no classification head
  models::EncoderConfig cls = tiny_mlm();
  cls.mlm_head = false;
  cls.num_classes = 2;
  models::Encoder classifier(cls);
  EXPECT_THROW(classifier.mlm_loss(b.tokens, b.mask, b.targets), Error);
  autograd::tape().clear();
}

TEST(EncoderMlm, ConfigNeedsAHeadAndSensibleClassCount) {
  models::EncoderConfig c = tiny_mlm();
  EXPECT_NO_THROW(c.validate());
  c.mlm_head = false;
  EXPECT_THROW(c.validate(), Error);  // no head at all
  c.num_classes = 1;
  EXPECT_THROW(c.validate(), Error);
  c.num_classes = -2;
  c.mlm_head = true;
  EXPECT_THROW(c.validate(), Error);
  c.num_classes = 2;
  EXPECT_NO_THROW(c.validate());
  models::EncoderConfig headless;
  headless.num_classes = 0;
  EXPECT_THROW(models::Encoder{headless}, Error);
}
