// GraphSAGE's pieces: the neighbour-mean kernel against its scalar reference (bitwise, 1 and 2
// threads), the graph ops' gradients by finite differences, and the whole model's gradients by
// finite differences on a small sampled graph, for "sage" and the features-only "mlp".
#include <gtest/gtest.h>

#include <cmath>
#include <functional>

#include "gannet/autograd/graph_ops.h"
#include "gannet/autograd/ops.h"
#include "gannet/autograd/tape.h"
#include "gannet/kernels/gemm.h"
#include "gannet/kernels/neighbour_mean.h"
#include "gannet/models/graphsage.h"
#include "kernel_test_util.h"

using namespace gannet;
using autograd::Var;
namespace k = gannet::kernels;

namespace {

// Random neighbour lists: num_dst destinations with 0..max_deg sources each (repeats allowed).
struct Lists {
  std::vector<int64_t> offsets{0};
  std::vector<int32_t> src;
};
Lists random_lists(int64_t num_dst, int64_t num_src, int max_deg, uint64_t seed) {
  Rng rng(seed);
  Lists l;
  for (int64_t d = 0; d < num_dst; ++d) {
    const int64_t n = (int64_t)rng.below(max_deg + 1);
    for (int64_t j = 0; j < n; ++j) l.src.push_back((int32_t)rng.below(num_src));
    l.offsets.push_back((int64_t)l.src.size());
  }
  return l;
}

Var random_var(const Shape& s, uint64_t seed, bool grad = true) {
  Tensor t = Tensor::empty(s);
  const std::vector<float> v = gannet::testing::random_vec(t.numel(), seed);
  std::copy(v.begin(), v.end(), t.f32());
  return Var(t, grad);
}

// sum(w * f(x)) in double: the scalar whose gradient the checks compare.
double weighted_sum(const Var& y, const std::vector<float>& w) {
  double s = 0;
  for (int64_t i = 0; i < y.value().numel(); ++i) s += (double)w[i] * y.value().f32()[i];
  return s;
}

// Checks d sum(w * f(x)) / dx from the tape against central differences of step h at every
// element of x (f is piecewise linear in x here, so the differences are exact up to rounding
// unless a step crosses a kink, which the inputs avoid).
void check_gradient(const Var& x, const std::function<Var()>& f, float h, double tol) {
  Var y = f();
  const std::vector<float> w = gannet::testing::random_vec(y.value().numel(), 99);
  Tensor dy = Tensor::empty(y.shape());
  std::copy(w.begin(), w.end(), dy.f32());
  y.grad() = dy;
  autograd::tape().run_backward();
  ASSERT_TRUE(x.grad().defined());
  const Tensor analytic = x.grad().clone();
  autograd::NoGrad no_grad;
  for (int64_t i = 0; i < x.value().numel(); ++i) {
    float& v = x.value().f32()[i];
    const float keep = v;
    v = keep + h;
    const double up = weighted_sum(f(), w);
    v = keep - h;
    const double down = weighted_sum(f(), w);
    v = keep;
    EXPECT_NEAR(analytic.f32()[i], (up - down) / (2 * h), tol) << "element " << i;
  }
}

}  // namespace

TEST(NeighbourMean, KernelEqualsScalarReferenceBitwise) {
  for (int threads : {1, 2}) {
    k::set_num_threads(threads);
    for (int64_t C : {1, 7, 16, 33, 128}) {
      const int64_t num_dst = 37, num_src = 61;
      const Lists l = random_lists(num_dst, num_src, 9, 5 + C);
      const std::vector<float> x = gannet::testing::random_vec(num_src * C, 3);
      std::vector<float> y(num_dst * C), y_ref(num_dst * C);
      k::neighbour_mean(x.data(), l.offsets.data(), l.src.data(), num_dst, C, y.data());
      k::ref::neighbour_mean(x.data(), l.offsets.data(), l.src.data(), num_dst, C, y_ref.data());
      EXPECT_EQ(y, y_ref) << "C " << C << ", " << threads << " threads";

      const std::vector<float> dy = gannet::testing::random_vec(num_dst * C, 4);
      std::vector<float> dx = gannet::testing::random_vec(num_src * C, 8), dx_ref = dx;  // both accumulate
      k::neighbour_mean_backward(dy.data(), k::transpose_neighbours(l.offsets.data(), l.src.data(), num_dst, num_src),
                                 C, dx.data());
      k::ref::neighbour_mean_backward(dy.data(), l.offsets.data(), l.src.data(), num_dst, C, dx_ref.data());
      EXPECT_EQ(dx, dx_ref) << "C " << C << ", " << threads << " threads";
    }
  }
  k::set_num_threads(2);
}

TEST(NeighbourMean, MeansByHandAndZeroForNoNeighbours) {
  // Sources 0..2 hold rows (1, 10), (2, 20), (4, 40); d0 <- {0, 2}, d1 <- {}, d2 <- {1, 1, 2}.
  const std::vector<float> x = {1, 10, 2, 20, 4, 40};
  const std::vector<int64_t> offsets = {0, 2, 2, 5};
  const std::vector<int32_t> src = {0, 2, 1, 1, 2};
  std::vector<float> y(6, -1.f);
  k::neighbour_mean(x.data(), offsets.data(), src.data(), 3, 2, y.data());
  const std::vector<float> want = {2.5f, 25.f, 0.f, 0.f, 8.f / 3.f, 80.f / 3.f};
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(y[i], want[i], 1e-5f * std::fabs(want[i])) << i;
}

TEST(NeighbourMean, BadListsAreErrors) {
  Var x = random_var({4, 3}, 1, false);
  const std::vector<int64_t> offsets = {0, 2, 1};
  const std::vector<int32_t> src = {0, 1};
  EXPECT_THROW(autograd::neighbour_mean(x, offsets.data(), src.data(), 2), Error);  // decreasing offsets
  const std::vector<int64_t> ok = {0, 1, 2};
  const std::vector<int32_t> far = {0, 4};
  EXPECT_THROW(autograd::neighbour_mean(x, ok.data(), far.data(), 2), Error);  // source outside [0, 4)
  EXPECT_THROW(autograd::leading_rows(x, 5), Error);
}

TEST(GraphOps, GradientsMatchFiniteDifferences) {
  const Lists l = random_lists(5, 8, 4, 11);
  Var x = random_var({8, 3}, 2);
  check_gradient(x, [&] { return autograd::neighbour_mean(x, l.offsets.data(), l.src.data(), 5); }, 0.5f, 1e-4);
  x.grad() = Tensor();
  check_gradient(x, [&] { return autograd::leading_rows(x, 5); }, 0.5f, 1e-4);
  x.grad() = Tensor();
  // Away from the kink: no element within the step of 0.
  for (int64_t i = 0; i < x.value().numel(); ++i)
    if (std::fabs(x.value().f32()[i]) < 0.05f) x.value().f32()[i] = 0.3f;
  check_gradient(x, [&] { return autograd::relu(x); }, 0.01f, 1e-3);
  x.grad() = Tensor();
  check_gradient(x, [&] {
    Rng rng(7);  // the same mask on every call
    return autograd::dropout(x, 0.4f, rng);
  }, 0.5f, 1e-4);
}

TEST(GraphOps, ReluDropoutIsDropoutOfReluBitwiseWithItsGradient) {
  Var x = random_var({37, 19}, 5);
  for (int64_t i = 0; i < x.value().numel(); ++i)
    if (std::fabs(x.value().f32()[i]) < 0.05f) x.value().f32()[i] = -0.3f;  // away from the kink
  {
    autograd::NoGrad no_grad;
    Rng a(11), b(11);
    const Var fused = autograd::relu_dropout(x, 0.3f, a);
    const Var apart = autograd::dropout(autograd::relu(x), 0.3f, b);
    for (int64_t i = 0; i < fused.value().numel(); ++i) ASSERT_EQ(fused.value().f32()[i], apart.value().f32()[i]) << i;
  }
  check_gradient(x, [&] {
    Rng rng(7);
    return autograd::relu_dropout(x, 0.3f, rng);
  }, 0.01f, 1e-3);
}

TEST(GraphOps, DropoutKeepsAboutOneMinusPAndScales) {
  Var x(Tensor::full({200, 50}, 1.f), false);
  Rng rng(3);
  const Var y = autograd::dropout(x, 0.3f, rng);
  int64_t kept = 0;
  for (int64_t i = 0; i < y.value().numel(); ++i) {
    const float v = y.value().f32()[i];
    ASSERT_TRUE(v == 0.f || std::fabs(v - 1.f / 0.7f) < 1e-6f) << v;
    kept += v != 0.f;
  }
  EXPECT_NEAR((double)kept / 10000, 0.7, 0.02);  // 0.02 is 4.4 standard deviations
}

namespace {

// A two-layer batch by hand: seeds {10, 11}; hop 1 adds 12, 13; hop 2 adds 14.
gnn::MiniBatch small_batch() {
  gnn::MiniBatch b;
  b.seeds = {10, 11};
  b.input_nodes = {10, 11, 12, 13, 14};
  gnn::SampledBlock inner{4, 5, {0, 2, 3, 3, 5}, {1, 4, 2, 0, 4}};  // sources: all 5; dst: first 4
  gnn::SampledBlock outer{2, 4, {0, 2, 4}, {2, 3, 0, 2}};          // sources: first 4; dst: the seeds
  b.blocks = {inner, outer};
  return b;
}

void check_model_gradients(const std::string& type) {
  models::GraphSageConfig c;
  c.type = type;
  c.in_dim = 3;
  c.hidden = 4;
  c.num_classes = 3;
  c.layers = 2;
  c.dropout = 0.f;
  models::GraphSage model(c);
  model.init(5);
  const gnn::MiniBatch batch = small_batch();
  const Var x = random_var({5, 3}, 21, false);
  Tensor labels = Tensor::empty({2}, DType::i32);
  labels.data<int32_t>()[0] = 2;
  labels.data<int32_t>()[1] = 0;
  auto loss = [&] { return autograd::cross_entropy(model.logits(x, batch, nullptr), labels); };
  nn::zero_grad(model.parameters());
  autograd::tape().backward(loss());
  autograd::NoGrad no_grad;
  const float h = 1e-2f;
  for (const nn::Parameter& p : model.parameters()) {
    for (int64_t i = 0; i < p.var.value().numel(); ++i) {
      float& v = p.var.value().f32()[i];
      const float keep = v;
      v = keep + h;
      const double up = loss().value().f32()[0];
      v = keep - h;
      const double down = loss().value().f32()[0];
      v = keep;
      EXPECT_NEAR(p.var.grad().f32()[i], (up - down) / (2 * h), 2e-3) << type << " " << p.name << "[" << i << "]";
    }
  }
}

}  // namespace

TEST(GraphSage, GradientsMatchFiniteDifferences) {
  check_model_gradients("sage");
  check_model_gradients("mlp");
}

TEST(GraphSage, MlpReadsOnlyTheSeedsRows) {
  models::GraphSageConfig c;
  c.type = "mlp";
  c.in_dim = 3;
  c.num_classes = 2;
  models::GraphSage model(c);
  model.init(1);
  const gnn::MiniBatch batch = small_batch();
  Var x = random_var({5, 3}, 4, false);
  autograd::NoGrad no_grad;
  const Tensor before = model.logits(x, batch, nullptr).value().clone();
  for (int64_t i = 2 * 3; i < 5 * 3; ++i) x.value().f32()[i] = 100.f;  // the non-seed rows
  const Tensor after = model.logits(x, batch, nullptr).value();
  for (int64_t i = 0; i < before.numel(); ++i) EXPECT_EQ(before.f32()[i], after.f32()[i]);
}

TEST(GraphSage, ConfigAndBatchMistakesAreErrors) {
  models::GraphSageConfig c;
  c.in_dim = 3;
  c.num_classes = 2;
  c.type = "gcn";
  EXPECT_THROW(models::GraphSage{c}, Error);
  c.type = "sage";
  c.layers = 3;  // the batch has 2 blocks
  models::GraphSage model(c);
  model.init(1);
  autograd::NoGrad no_grad;
  EXPECT_THROW(model.logits(random_var({5, 3}, 1, false), small_batch(), nullptr), Error);
  c.layers = 2;
  models::GraphSage two(c);
  EXPECT_THROW(two.logits(random_var({5, 4}, 1, false), small_batch(), nullptr), Error);  // wrong width
}
