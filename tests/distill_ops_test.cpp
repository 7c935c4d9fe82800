// Distillation losses (mse, kl_divergence, soft_cross_entropy), scale/add on scalar losses, and the
// encoder's attention scores: values against hand-computed numbers and double-precision direct
// computations, gradients against the closed forms and against central differences of the
// double-precision references.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <vector>

#include "gannet/autograd/attention_scores.h"
#include "gannet/autograd/distill_ops.h"
#include "gannet/autograd/ops.h"
#include "gannet/autograd/tape.h"
#include "gannet/core/error.h"
#include "kernel_test_util.h"

using namespace gannet;
using autograd::Var;
using gannet::testing::random_vec;

namespace {
Tensor tensor(const std::vector<float>& v, const Shape& shape) { return Tensor::from_vector(v, shape); }

std::vector<float> values(const Tensor& t) { return std::vector<float>(t.f32(), t.f32() + t.numel()); }

float scalar(const Var& v) { return v.value().f32()[0]; }

// Central differences (step h, in double) of f at every entry of x.
std::vector<double> central_differences(std::vector<double> x, const std::function<double(const std::vector<double>&)>& f,
                                        double h = 1e-5) {
  std::vector<double> g(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const double keep = x[i];
    x[i] = keep + h;
    const double up = f(x);
    x[i] = keep - h;
    const double down = f(x);
    x[i] = keep;
    g[i] = (up - down) / (2 * h);
  }
  return g;
}

void expect_gradient_near(const Tensor& got, const std::vector<double>& want, double rel, const char* what) {
  ASSERT_TRUE(got.defined()) << what << " has no gradient";
  ASSERT_EQ(got.numel(), (int64_t)want.size()) << what;
  double scale = 0;
  for (double w : want) scale = std::max(scale, std::fabs(w));
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(got.f32()[i], want[i], rel * scale + 1e-7) << what << " " << i;
}

std::vector<double> to_double(const std::vector<float>& v) { return std::vector<double>(v.begin(), v.end()); }
}  // namespace

// ---- mse -------------------------------------------------------------------------------------

TEST(DistillMse, HandComputedValueAndGradient) {
  Var x(tensor({1, 2, 3, 4}, {2, 2}), true);
  Var loss = autograd::mse(x, tensor({0, 2, 5, 1}, {2, 2}));
  EXPECT_EQ(scalar(loss), 3.5f);  // (1 + 0 + 4 + 9) / 4
  autograd::tape().backward(loss);
  EXPECT_EQ(values(x.grad()), (std::vector<float>{0.5f, 0.f, -1.f, 1.5f}));  // 2 (x - t) / n
}

TEST(DistillMse, AddsToAnExistingGradientAndRejectsMismatch) {
  Var x(tensor({1, 2}, {2}), true);
  x.grad() = tensor({10, 20}, {2});
  autograd::tape().backward(autograd::mse(x, tensor({0, 0}, {2})));
  EXPECT_EQ(values(x.grad()), (std::vector<float>{11.f, 22.f}));
  EXPECT_THROW(autograd::mse(x, tensor({0, 0, 0}, {3})), Error);
}

// ---- kl_divergence ---------------------------------------------------------------------------

TEST(DistillKl, HandComputedValueAndGradient) {
  // Teacher softmax [3/4, 1/4], student [1/2, 1/2].
  Var s(tensor({0, 0}, {1, 2}), true);
  Var loss = autograd::kl_divergence(s, tensor({std::log(3.f), 0}, {1, 2}));
  EXPECT_NEAR(scalar(loss), 0.75 * std::log(1.5) + 0.25 * std::log(0.5), 1e-7);
  autograd::tape().backward(loss);
  EXPECT_NEAR(s.grad().f32()[0], -0.25, 1e-7);
  EXPECT_NEAR(s.grad().f32()[1], 0.25, 1e-7);
  EXPECT_THROW(autograd::kl_divergence(s, tensor({0, 0, 0}, {1, 3})), Error);
}

// ---- soft_cross_entropy ----------------------------------------------------------------------

namespace {
// -sum_v softmax(t / T)_v log softmax(s / T)_v, averaged over rows, all in double.
double reference_soft_ce(const std::vector<double>& s, const std::vector<float>& t, int64_t R, int64_t V, double T) {
  double total = 0;
  for (int64_t r = 0; r < R; ++r) {
    double ms = -1e300, mt = -1e300, zs = 0, zt = 0;
    for (int64_t v = 0; v < V; ++v) ms = std::max(ms, s[r * V + v] / T), mt = std::max(mt, t[r * V + v] / T);
    for (int64_t v = 0; v < V; ++v) zs += std::exp(s[r * V + v] / T - ms), zt += std::exp(t[r * V + v] / T - mt);
    for (int64_t v = 0; v < V; ++v)
      total -= std::exp(t[r * V + v] / T - mt) / zt * (s[r * V + v] / T - ms - std::log(zs));
  }
  return total / (double)R;
}
}  // namespace

TEST(DistillSoftCrossEntropy, HandComputedValue) {
  // Teacher softmax [3/4, 1/4], uniform student: the cross-entropy is log 2, at any temperature
  // when the teacher's logits are scaled with it. Gradient (ps - pt) / (R T).
  for (float T : {1.f, 2.f}) {
    Var s(tensor({0, 0}, {1, 2}), true);
    Var loss = autograd::soft_cross_entropy(s, tensor({T * std::log(3.f), 0}, {1, 2}), T);
    EXPECT_NEAR(scalar(loss), std::log(2.0), 1e-6) << T;
    autograd::tape().backward(loss);
    EXPECT_NEAR(s.grad().f32()[0], -0.25 / T, 1e-6) << T;
    EXPECT_NEAR(s.grad().f32()[1], 0.25 / T, 1e-6) << T;
  }
}

TEST(DistillSoftCrossEntropy, MatchesDoubleReferenceAndFiniteDifferences) {
  const int64_t R = 5, V = 7;
  const std::vector<float> sv = random_vec(R * V, 1, 2.f), tv = random_vec(R * V, 2, 2.f);
  for (double T : {1.0, 0.5, 3.0}) {
    Var s(tensor(sv, {R, V}), true);
    Var loss = autograd::soft_cross_entropy(s, tensor(tv, {R, V}), (float)T);
    EXPECT_NEAR(scalar(loss), reference_soft_ce(to_double(sv), tv, R, V, T), 1e-5) << T;
    autograd::tape().backward(loss);
    auto f = [&](const std::vector<double>& x) { return reference_soft_ce(x, tv, R, V, T); };
    expect_gradient_near(s.grad(), central_differences(to_double(sv), f), 1e-5, "soft CE logits");
  }
}

TEST(DistillSoftCrossEntropy, DiffersFromKlByTheTeacherEntropy) {
  const int64_t R = 3, V = 6;
  const std::vector<float> sv = random_vec(R * V, 3), tv = random_vec(R * V, 4);
  autograd::NoGrad ng;
  const double ce = scalar(autograd::soft_cross_entropy(Var(tensor(sv, {R, V})), tensor(tv, {R, V})));
  const double kl = scalar(autograd::kl_divergence(Var(tensor(sv, {R, V})), tensor(tv, {R, V})));
  const double self = scalar(autograd::soft_cross_entropy(Var(tensor(tv, {R, V})), tensor(tv, {R, V})));
  EXPECT_NEAR(ce - kl, self, 1e-5);
}

TEST(DistillSoftCrossEntropy, RejectsBadArguments) {
  Var s(tensor({0, 0}, {1, 2}), true);
  for (float T : {0.f, -1.f, NAN, INFINITY})
    EXPECT_THROW(autograd::soft_cross_entropy(s, tensor({0, 0}, {1, 2}), T), Error) << T;
  EXPECT_THROW(autograd::soft_cross_entropy(s, tensor({0, 0}, {2, 1}), 1.f), Error);
  EXPECT_THROW(autograd::soft_cross_entropy(Var(tensor({0, 0}, {2}), true), tensor({0, 0}, {2}), 1.f), Error);
}

// ---- scale and add on scalar losses ----------------------------------------------------------

TEST(DistillCombine, WeightedSumOfScalarLosses) {
  Var x(tensor({1, 2}, {2}), true), y(tensor({3}, {1}), true);
  Var a = autograd::mse(x, tensor({0, 0}, {2}));  // 2.5, d/dx = x
  Var b = autograd::mse(y, tensor({1}, {1}));     // 4,   d/dy = 2 (y - 1) = 4
  Var loss = autograd::add(autograd::scale(a, 0.5f), autograd::scale(b, 3.f));
  EXPECT_EQ(scalar(loss), 0.5f * 2.5f + 3.f * 4.f);
  autograd::tape().backward(loss);
  EXPECT_EQ(values(x.grad()), (std::vector<float>{0.5f, 1.f}));
  EXPECT_EQ(values(y.grad()), (std::vector<float>{12.f}));
}

TEST(DistillCombine, ScaleAddsToAnExistingGradient) {
  Var x(tensor({1, -2, 3}, {3}), true);
  x.grad() = tensor({1, 1, 1}, {3});
  Var y = autograd::scale(x, -2.f);
  EXPECT_EQ(values(y.value()), (std::vector<float>{-2.f, 4.f, -6.f}));
  autograd::tape().backward(autograd::mse(y, tensor({0, 0, 0}, {3})));  // d/dy = 2 y / 3
  const std::vector<float> g = values(x.grad());
  for (int i = 0; i < 3; ++i) EXPECT_NEAR(g[i], 1.0 + -2.0 * 2.0 * values(y.value())[i] / 3.0, 1e-6) << i;
}

// ---- attention_scores ------------------------------------------------------------------------

namespace {
struct ScoreShape {
  int64_t B, T, H, C;
  int64_t D() const { return C / H; }
  int64_t rows() const { return B * H * T; }
};

// score[b, h, i, j] straight from the definition, in double; 0 for a padding key.
std::vector<double> reference_scores(const std::vector<double>& qkv, const ScoreShape& s, const std::vector<uint8_t>& mask) {
  const int64_t ld = 3 * s.C, D = s.D();
  std::vector<double> out(s.rows() * s.T, 0.0);
  for (int64_t b = 0; b < s.B; ++b)
    for (int64_t h = 0; h < s.H; ++h)
      for (int64_t i = 0; i < s.T; ++i)
        for (int64_t j = 0; j < s.T; ++j) {
          if (!mask.empty() && !mask[b * s.T + j]) continue;
          double dot = 0;
          for (int64_t d = 0; d < D; ++d)
            dot += qkv[(b * s.T + i) * ld + h * D + d] * qkv[(b * s.T + j) * ld + s.C + h * D + d];
          out[((b * s.H + h) * s.T + i) * s.T + j] = dot / std::sqrt((double)D);
        }
  return out;
}

double reference_mse(const std::vector<double>& x, const std::vector<float>& target) {
  double s = 0;
  for (size_t i = 0; i < x.size(); ++i) s += (x[i] - target[i]) * (x[i] - target[i]);
  return s / (double)x.size();
}

Tensor mask_tensor(const std::vector<uint8_t>& m, int64_t B, int64_t T) {
  Tensor t = Tensor::empty({B, T}, DType::u8);
  std::copy(m.begin(), m.end(), t.data<uint8_t>());
  return t;
}

// Batch 0 fully real, batch 1 with its last two keys padding.
std::vector<uint8_t> padded_mask(const ScoreShape& s) {
  std::vector<uint8_t> m(s.B * s.T, 1);
  m[s.B * s.T - 1] = m[s.B * s.T - 2] = 0;
  return m;
}
}  // namespace

TEST(AttentionScores, MatchDoubleReferenceWithPaddingKeysExactlyZero) {
  const ScoreShape s{2, 6, 3, 12};
  const std::vector<float> qkv = random_vec(s.B * s.T * 3 * s.C, 5);
  for (bool masked : {false, true}) {
    const std::vector<uint8_t> mask = masked ? padded_mask(s) : std::vector<uint8_t>();
    Var out = autograd::attention_scores(Var(tensor(qkv, {s.B * s.T, 3 * s.C})), s.B, s.T, s.H,
                                         masked ? mask_tensor(mask, s.B, s.T) : Tensor());
    ASSERT_EQ(out.shape(), Shape({s.rows(), s.T}));
    const std::vector<double> want = reference_scores(to_double(qkv), s, mask);
    for (size_t i = 0; i < want.size(); ++i) {
      const int64_t b = (int64_t)i / (s.H * s.T * s.T), j = (int64_t)i % s.T;
      if (masked && !mask[b * s.T + j]) {
        EXPECT_EQ(out.value().f32()[i], 0.f) << i;
      } else {
        EXPECT_NEAR(out.value().f32()[i], want[i], 1e-5) << i;
      }
    }
  }
}

TEST(AttentionScores, GradientMatchesFiniteDifferencesThroughMse) {
  const ScoreShape s{2, 5, 2, 8};
  const std::vector<float> qkv = random_vec(s.B * s.T * 3 * s.C, 6);
  const std::vector<float> target = random_vec(s.rows() * s.T, 7);
  const std::vector<uint8_t> mask = padded_mask(s);
  Var x(tensor(qkv, {s.B * s.T, 3 * s.C}), true);
  autograd::tape().backward(
      autograd::mse(autograd::attention_scores(x, s.B, s.T, s.H, mask_tensor(mask, s.B, s.T)), tensor(target, {s.rows(), s.T})));
  auto f = [&](const std::vector<double>& q) { return reference_mse(reference_scores(q, s, mask), target); };
  const std::vector<double> fd = central_differences(to_double(qkv), f);
  expect_gradient_near(x.grad(), fd, 1e-5, "qkv");
  for (int64_t r = 0; r < s.B * s.T; ++r)
    for (int64_t c = 0; c < 3 * s.C; ++c) {
      const bool v_column = c >= 2 * s.C, padding_key = c >= s.C && !mask[r];
      if (v_column || padding_key) {
        EXPECT_EQ(x.grad().f32()[r * 3 * s.C + c], 0.f) << r << " " << c;
      }
    }
}

TEST(AttentionScores, GradientAddsToTheAttentionOpsInEitherOrder) {
  const ScoreShape s{2, 4, 2, 8};
  const std::vector<float> qkv = random_vec(s.B * s.T * 3 * s.C, 8);
  const Tensor mask = mask_tensor(padded_mask(s), s.B, s.T);
  const Tensor out_target = tensor(random_vec(s.B * s.T * s.C, 9), {s.B * s.T, s.C});
  const Tensor score_target = tensor(random_vec(s.rows() * s.T, 10), {s.rows(), s.T});
  auto attention_loss = [&](const Var& x) {
    return autograd::mse(autograd::attention(x, s.B, s.T, s.H, false, mask), out_target);
  };
  auto score_loss = [&](const Var& x) { return autograd::mse(autograd::attention_scores(x, s.B, s.T, s.H, mask), score_target); };
  auto grad_of = [&](const std::function<Var(const Var&)>& loss) {
    Var x(tensor(qkv, {s.B * s.T, 3 * s.C}), true);
    autograd::tape().backward(loss(x));
    return values(x.grad());
  };
  const std::vector<float> ga = grad_of(attention_loss), gs = grad_of(score_loss);
  const std::vector<float> attention_first = grad_of([&](const Var& x) {
    Var a = attention_loss(x);
    return autograd::add(a, score_loss(x));
  });
  const std::vector<float> scores_first = grad_of([&](const Var& x) {
    Var b = score_loss(x);
    return autograd::add(attention_loss(x), b);
  });
  for (size_t i = 0; i < ga.size(); ++i) {
    EXPECT_NEAR(attention_first[i], ga[i] + gs[i], 1e-6) << i;
    EXPECT_NEAR(scores_first[i], ga[i] + gs[i], 1e-6) << i;
  }
}

TEST(AttentionScores, RejectsBadArguments) {
  Var x(Tensor::zeros({8, 24}), true);
  EXPECT_THROW(autograd::attention_scores(x, 2, 3, 2), Error);  // 2 * 3 rows != 8
  EXPECT_THROW(autograd::attention_scores(x, 2, 4, 3), Error);  // 8 channels, 3 heads
  EXPECT_THROW(autograd::attention_scores(x, 2, 4, 2, Tensor::zeros({2, 3}, DType::u8)), Error);
  EXPECT_THROW(autograd::attention_scores(x, 2, 4, 2, Tensor::zeros({2, 4})), Error);  // f32 mask
  EXPECT_THROW(autograd::attention_scores(Var(Tensor::zeros({8, 25})), 2, 4, 1), Error);
}
