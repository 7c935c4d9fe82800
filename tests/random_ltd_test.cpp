// random-LTD: the gather/scatter kernels against their scalar references, the kept-token draw,
// the dropped layer equal to the plain one when every token is kept, its gradients against finite
// differences, and the plan being ignored at evaluation.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>

#include "gannet/autograd/ops.h"
#include "gannet/autograd/tape.h"
#include "gannet/autograd/token_ops.h"
#include "gannet/kernels/token_gather.h"
#include "gannet/models/gpt.h"
#include "gannet/nn/random_ltd.h"
#include "kernel_test_util.h"
#include "test_files.h"

using namespace gannet;
using autograd::Var;

namespace {
std::vector<int32_t> random_subset(int64_t N, int64_t M, uint64_t seed) {
  Rng rng(seed);
  std::vector<int32_t> p((size_t)N);
  std::iota(p.begin(), p.end(), 0);
  for (int64_t i = 0; i < M; ++i) std::swap(p[(size_t)i], p[(size_t)(i + (int64_t)rng.below((uint64_t)(N - i)))]);
  p.resize((size_t)M);
  return p;
}

Var random_var(const Shape& s, uint64_t seed, bool grad) {
  Tensor t = Tensor::empty(s);
  Rng rng(seed);
  for (int64_t i = 0; i < t.numel(); ++i) t.f32()[i] = rng.normal();
  return Var(t, grad);
}

// A scalar of every row: mean over rows of (y . w), w [1, C].
Var weighted_mean(const Var& y, const Var& w) {
  const int64_t N = y.shape()[0];
  Var z = autograd::linear(y, w, Var());  // [N, 1]
  Tensor ones = Tensor::empty({1, N}, DType::u8);
  for (int64_t i = 0; i < N; ++i) ones.data<uint8_t>()[i] = 1;
  return autograd::masked_mean_pool(z, 1, N, ones);
}

nn::Block small_block(uint64_t seed) {
  nn::Block b(16, 2, 1e-5f);
  Rng rng(seed);
  b.init(rng, 2);
  // Non-trivial LayerNorm parameters and biases, so that every path carries signal.
  nn::ParameterList ps;
  b.collect("b", ps);
  for (auto& p : ps)
    if (p.var.value().ndim() == 1)
      for (int64_t i = 0; i < p.var.value().numel(); ++i) p.var.value().f32()[i] += 0.1f * rng.normal();
  return b;
}
}  // namespace

TEST(TokenGather, KernelsEqualScalarReferences) {
  for (int64_t C : {1, 7, 16, 97, 384}) {
    for (int64_t N : {1, 5, 64, 300}) {
      const int64_t M = (N + 1) / 2;
      std::vector<int32_t> idx = random_subset(N, M, (uint64_t)(N * 31 + C));
      std::vector<float> big = gannet::testing::random_vec(N * C, 1), small = gannet::testing::random_vec(M * C, 2);
      std::vector<float> a(M * C), b(M * C);
      kernels::gather_rows(big.data(), idx.data(), M, C, a.data());
      kernels::ref::gather_rows(big.data(), idx.data(), M, C, b.data());
      ASSERT_EQ(a, b);
      std::vector<float> s1 = big, s2 = big;
      kernels::scatter_rows(small.data(), idx.data(), M, C, s1.data());
      kernels::ref::scatter_rows(small.data(), idx.data(), M, C, s2.data());
      ASSERT_EQ(s1, s2);
      s1 = big, s2 = big;
      kernels::scatter_add_rows(small.data(), idx.data(), M, C, s1.data());
      kernels::ref::scatter_add_rows(small.data(), idx.data(), M, C, s2.data());
      ASSERT_EQ(s1, s2);
      s1 = big, s2 = big;
      kernels::zero_rows(s1.data(), idx.data(), M, C);
      kernels::ref::zero_rows(s2.data(), idx.data(), M, C);
      ASSERT_EQ(s1, s2);
    }
  }
  int32_t bad[] = {0, 3, 3};
  EXPECT_TRUE(gannet::testing::has(gannet::testing::message_of([&] { kernels::check_row_indices(bad, 3, 5); }), "repeats"));
  EXPECT_TRUE(gannet::testing::has(gannet::testing::message_of([&] { kernels::check_row_indices(bad, 3, 3); }), "outside [0, 3)"));
}

TEST(RandomLtd, IndicesAreSortedDistinctSubsetsPerSequence) {
  Rng rng(3);
  Tensor idx = nn::random_ltd_indices(5, 13, 6, rng);
  ASSERT_EQ(idx.numel(), 30);
  std::vector<int> hits(13, 0);
  for (int64_t b = 0; b < 5; ++b)
    for (int64_t i = 0; i < 6; ++i) {
      int32_t v = idx.data<int32_t>()[b * 6 + i];
      ASSERT_GE(v, b * 13);
      ASSERT_LT(v, (b + 1) * 13);
      if (i) {
        ASSERT_GT(v, idx.data<int32_t>()[b * 6 + i - 1]);
      }
      hits[(size_t)(v - b * 13)]++;
    }
  EXPECT_GT(std::count_if(hits.begin(), hits.end(), [](int h) { return h > 0; }), 6);  // not always the same
  Tensor all = nn::random_ltd_indices(2, 7, 7, rng);
  for (int64_t i = 0; i < 14; ++i) EXPECT_EQ(all.data<int32_t>()[i], i);
}

TEST(RandomLtd, AllTokensKeptEqualsThePlainLayerExactly) {
  nn::Block blk = small_block(1);
  const int64_t B = 3, T = 9;
  nn::ParameterList ps;
  blk.collect("b", ps);
  Var w = random_var({1, 16}, 3, false);
  Rng rng(4);
  Tensor idx = nn::random_ltd_indices(B, T, T, rng);
  std::vector<Tensor> out, dx;
  std::vector<std::vector<Tensor>> dparams;
  for (int pass = 0; pass < 2; ++pass) {
    Var x = random_var({B * T, 16}, 2, true);
    nn::zero_grad(ps);
    Var y = pass == 0 ? blk.forward(x, B, T, true, Tensor()) : nn::random_ltd_block(blk, x, B, T, T, idx, true, Tensor());
    out.push_back(y.value().clone());
    autograd::tape().backward(weighted_mean(y, w));
    dx.push_back(x.grad().clone());
    dparams.emplace_back();
    for (auto& p : ps) dparams.back().push_back(p.var.grad().clone());
  }
  for (int64_t i = 0; i < out[0].numel(); ++i) ASSERT_EQ(out[0].f32()[i], out[1].f32()[i]) << i;
  for (int64_t i = 0; i < dx[0].numel(); ++i) ASSERT_EQ(dx[0].f32()[i], dx[1].f32()[i]) << i;
  for (size_t k = 0; k < ps.size(); ++k)
    for (int64_t i = 0; i < dparams[0][k].numel(); ++i)
      ASSERT_EQ(dparams[0][k].f32()[i], dparams[1][k].f32()[i]) << ps[k].name << " " << i;
}

TEST(RandomLtd, KeptTokensSeeOnlyEachOtherAndDroppedOnesBypass) {
  nn::Block blk = small_block(5);
  const int64_t B = 2, T = 10, K = 4;
  Rng rng(6);
  Tensor idx = nn::random_ltd_indices(B, T, K, rng);
  Var x = random_var({B * T, 16}, 7, false);
  Var y = nn::random_ltd_block(blk, x, B, T, K, idx, true, Tensor());
  // Reference: the block on the kept tokens as a sequence of their own.
  Tensor kept = Tensor::empty({B * K, 16});
  for (int64_t i = 0; i < B * K; ++i)
    std::copy(x.value().f32() + idx.data<int32_t>()[i] * 16, x.value().f32() + idx.data<int32_t>()[i] * 16 + 16,
              kept.f32() + i * 16);
  Var ref = blk.forward(Var(kept), B, K, true, Tensor());
  std::set<int32_t> kept_rows(idx.data<int32_t>(), idx.data<int32_t>() + B * K);
  for (int64_t r = 0; r < B * T; ++r) {
    const float* got = y.value().f32() + r * 16;
    if (!kept_rows.count((int32_t)r)) {
      for (int c = 0; c < 16; ++c) ASSERT_EQ(got[c], x.value().f32()[r * 16 + c]) << r;
      continue;
    }
    int64_t i = std::find(idx.data<int32_t>(), idx.data<int32_t>() + B * K, (int32_t)r) - idx.data<int32_t>();
    for (int c = 0; c < 16; ++c) ASSERT_EQ(got[c], ref.value().f32()[i * 16 + c]) << r;
  }
}

TEST(RandomLtd, GradientsPassFiniteDifferences) {
  nn::Block blk = small_block(8);
  const int64_t B = 2, T = 7, K = 3;
  Rng rng(9);
  Tensor idx = nn::random_ltd_indices(B, T, K, rng);
  Var w = random_var({1, 16}, 10, false);
  Var x = random_var({B * T, 16}, 11, true);
  nn::ParameterList ps;
  blk.collect("b", ps);
  nn::zero_grad(ps);
  autograd::tape().backward(weighted_mean(nn::random_ltd_block(blk, x, B, T, K, idx, true, Tensor()), w));
  auto loss_at = [&]() {
    autograd::NoGrad ng;
    return (double)weighted_mean(nn::random_ltd_block(blk, x, B, T, K, idx, true, Tensor()), w).value().f32()[0];
  };
  auto check = [&](Tensor& v, const Tensor& g, const std::string& what) {
    for (int64_t i = 0; i < v.numel(); i += std::max<int64_t>(1, v.numel() / 9)) {
      const float h = 1e-2f, keep = v.f32()[i];
      v.f32()[i] = keep + h;
      double lp = loss_at();
      v.f32()[i] = keep - h;
      double lm = loss_at();
      v.f32()[i] = keep;
      double fd = (lp - lm) / (2.0 * h);
      EXPECT_NEAR(g.f32()[i], fd, 2e-3 + 3e-2 * std::fabs(fd)) << what << " " << i;
    }
  };
  check(x.value(), x.grad(), "x");
  for (auto& p : ps) check(p.var.value(), p.var.grad(), p.name);
  // Dropped rows' gradient is exactly the upstream one: w / N in every channel.
  std::set<int32_t> kept(idx.data<int32_t>(), idx.data<int32_t>() + B * K);
  for (int64_t r = 0; r < B * T; ++r)
    if (!kept.count((int32_t)r)) {
      for (int c = 0; c < 16; ++c) EXPECT_FLOAT_EQ(x.grad().f32()[r * 16 + c], w.value().f32()[c] / (float)(B * T));
    }
}

TEST(RandomLtd, OnlyWhileTrainingAndDeterministicUnderASeed) {
  models::GptConfig c;
  c.vocab_size = 30, c.n_ctx = 12, c.n_layer = 4, c.n_head = 2, c.n_embd = 16;
  models::Gpt m(c);
  m.init(1);
  Rng rng(2);
  Tensor tok = Tensor::empty({2, 12}, DType::i32), tgt = Tensor::empty({2, 12}, DType::i32);
  for (int64_t i = 0; i < 24; ++i) tok.data<int32_t>()[i] = (int32_t)rng.below(30), tgt.data<int32_t>()[i] = (int32_t)rng.below(30);
  nn::RandomLtdPlan plan{{false, true, true, false}, 5, 77};
  float plain, evald, dropped, again;
  {
    autograd::NoGrad ng;
    plain = m.loss(tok, tgt).value().f32()[0];
    m.set_random_ltd(&plan);
    evald = m.loss(tok, tgt).value().f32()[0];
  }
  dropped = m.loss(tok, tgt).value().f32()[0];
  again = m.loss(tok, tgt).value().f32()[0];
  autograd::tape().clear();
  m.set_random_ltd(nullptr);
  EXPECT_EQ(plain, evald);      // off under NoGrad (evaluation)
  EXPECT_NE(plain, dropped);    // on while training
  EXPECT_EQ(dropped, again);    // the plan's seed fixes the draws
}
