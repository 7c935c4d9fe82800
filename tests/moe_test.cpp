// Mixture-of-Experts: routing against a plain dense-mask reference written from DeepSpeed's
// top1gating/top2gating, expert choice against brute force, the dispatch kernels against their
// scalar references, the balance and z-loss formulas, gradients by finite differences (router
// and whole layer, with dropping, k = 2, PR-MoE and expert choice), one expert equal to the dense
// MLP, determinism under a seed, the config block and checkpoints of a GPT-MoE.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <cstring>
#include <functional>
#include <numeric>

#include "gannet/autograd/moe_ops.h"
#include "gannet/autograd/ops.h"
#include "gannet/autograd/tape.h"
#include "gannet/io/checkpoint.h"
#include "gannet/io/gpt_weights.h"
#include "gannet/io/model_config.h"
#include "gannet/kernels/moe_dispatch.h"
#include "gannet/kernels/moe_routing.h"
#include "gannet/models/gpt.h"
#include "gannet/nn/block.h"
#include "gannet/train/train_config.h"
#include "kernel_test_util.h"
#include "test_files.h"

using namespace gannet;
using autograd::Var;
namespace k = gannet::kernels;

namespace {

std::vector<float> random_uniform(int64_t n, uint64_t seed) {
  Rng rng(seed);
  std::vector<float> v((size_t)n);
  for (auto& x : v) x = rng.uniform();
  return v;
}

Var random_var(const Shape& s, uint64_t seed, bool grad, float scale = 1.f) {
  Tensor t = Tensor::empty(s);
  Rng rng(seed);
  for (int64_t i = 0; i < t.numel(); ++i) t.f32()[i] = scale * rng.normal();
  return Var(t, grad);
}

// Kept (token, expert) pairs as a sorted list, from a routing.
std::vector<std::pair<int, int>> kept_pairs(const k::MoeRouting& r) {
  std::vector<std::pair<int, int>> out;
  for (int64_t e = 0; e < r.experts; ++e)
    for (int32_t s = r.offsets[(size_t)e]; s < r.offsets[(size_t)e + 1]; ++s) out.push_back({r.slot_token[(size_t)s], (int)e});
  std::sort(out.begin(), out.end());
  return out;
}

// DeepSpeed's top1gating / top2gating with dense masks [N, E] and cumsum locations (no RTS):
// first choices take locations 0.., second choices start after all first choices of the expert.
std::vector<std::pair<int, int>> dense_reference(const std::vector<float>& s, int N, int E, int k, int capacity) {
  std::vector<std::vector<int>> mask((size_t)k, std::vector<int>((size_t)(N * E), 0));
  for (int n = 0; n < N; ++n) {
    std::vector<int> taken;
    for (int r = 0; r < k; ++r) {
      int best = -1;
      for (int e = 0; e < E; ++e) {
        if (std::find(taken.begin(), taken.end(), e) != taken.end()) continue;
        if (best < 0 || s[(size_t)(n * E + e)] > s[(size_t)(n * E + best)]) best = e;
      }
      taken.push_back(best);
      mask[(size_t)r][(size_t)(n * E + best)] = 1;
    }
  }
  std::vector<std::pair<int, int>> out;
  std::vector<int> base((size_t)E, 0);
  for (int r = 0; r < k; ++r) {
    std::vector<int> cum((size_t)E, 0);
    for (int n = 0; n < N; ++n)
      for (int e = 0; e < E; ++e) {
        if (!mask[(size_t)r][(size_t)(n * E + e)]) continue;
        int location = base[(size_t)e] + cum[(size_t)e]++;
        if (capacity < 0 || location < capacity) out.push_back({n, e});
      }
    for (int e = 0; e < E; ++e) base[(size_t)e] += cum[(size_t)e];
  }
  std::sort(out.begin(), out.end());
  return out;
}

void expect_consistent(const k::MoeRouting& r) {
  const int64_t S = r.slots();
  ASSERT_EQ((int64_t)r.slot_token.size(), S);
  ASSERT_EQ((int64_t)r.token_slots.size(), S);
  for (int64_t e = 0; e < r.experts; ++e)
    for (int32_t s = r.offsets[(size_t)e] + 1; s < r.offsets[(size_t)e + 1]; ++s)
      EXPECT_LT(r.slot_token[(size_t)s - 1], r.slot_token[(size_t)s]) << "expert " << e << " not in token order";
  for (int64_t n = 0; n < r.tokens; ++n)
    for (int32_t i = r.token_offsets[(size_t)n]; i < r.token_offsets[(size_t)n + 1]; ++i)
      EXPECT_EQ(r.slot_token[(size_t)r.token_slots[(size_t)i]], n);
}

}  // namespace

TEST(MoeRouting, CapacityAsDeepSpeed) {
  EXPECT_EQ(k::moe_capacity(100, 8, 1, 1.0, 4), 13);   // ceil(12.5)
  EXPECT_EQ(k::moe_capacity(100, 8, 2, 1.0, 4), 25);   // top-2: twice the tokens
  EXPECT_EQ(k::moe_capacity(100, 8, 1, 1.25, 4), 16);  // ceil(15.625)
  EXPECT_EQ(k::moe_capacity(10, 8, 1, 1.0, 4), 4);     // min_capacity
}

TEST(MoeRouting, TopOneAndTopTwoMatchTheDenseMaskReference) {
  for (int k_ : {1, 2, 3})
    for (int capacity : {-1, 1, 3, 7})
      for (auto [N, E] : {std::pair{1, 1}, {13, 4}, {40, 8}, {97, 5}}) {
        if (k_ > E) continue;
        std::vector<float> s = gannet::testing::random_vec(N * E, 100 + N + E + k_);
        k::MoeRouting r;
        k::route_top_k(s.data(), N, E, k_, capacity, nullptr, r);
        expect_consistent(r);
        EXPECT_EQ(kept_pairs(r), dense_reference(s, N, E, k_, capacity)) << "N " << N << " E " << E << " k " << k_;
        EXPECT_EQ(r.dropped + r.slots(), (int64_t)N * k_);
        int64_t demand = 0;
        for (int64_t d : r.demand) demand += d;
        EXPECT_EQ(demand, (int64_t)N * k_);
      }
}

TEST(MoeRouting, RandomTokenSelectionKeepsTheHighestPriorities) {
  // DeepSpeed's use_rts: per expert, the `capacity` tokens with the largest uniform draw survive.
  const int N = 60, E = 3, capacity = 7;
  std::vector<float> s = gannet::testing::random_vec(N * E, 3), pr = random_uniform(N, 4);
  k::MoeRouting r;
  k::route_top_k(s.data(), N, E, 1, capacity, pr.data(), r);
  expect_consistent(r);
  for (int e = 0; e < E; ++e) {
    std::vector<std::pair<float, int>> cand;
    for (int n = 0; n < N; ++n)
      if (std::max_element(s.begin() + n * E, s.begin() + n * E + E) - (s.begin() + n * E) == e) cand.push_back({-pr[(size_t)n], n});
    std::sort(cand.begin(), cand.end());
    std::vector<int> want;
    for (size_t i = 0; i < cand.size() && (int)i < capacity; ++i) want.push_back(cand[i].second);
    std::sort(want.begin(), want.end());
    std::vector<int> got(r.slot_token.begin() + r.offsets[(size_t)e], r.slot_token.begin() + r.offsets[(size_t)e + 1]);
    EXPECT_EQ(got, want) << "expert " << e;
  }
  // Top-2 with RTS: second choices never displace first choices.
  k::route_top_k(s.data(), N, E, 2, capacity, pr.data(), r);
  for (int64_t e = 0; e < E; ++e) {
    int firsts = 0;
    for (int n = 0; n < N; ++n)
      firsts += std::max_element(s.begin() + n * E, s.begin() + n * E + E) - (s.begin() + n * E) == e;
    int kept_firsts = 0;
    for (int32_t sl = r.offsets[(size_t)e]; sl < r.offsets[(size_t)e + 1]; ++sl) kept_firsts += r.slot_rank[(size_t)sl] == 0;
    EXPECT_EQ(kept_firsts, std::min(firsts, capacity));
  }
}

TEST(MoeRouting, ExpertChoiceTakesEachColumnsTopTokens) {
  const int N = 31, E = 4, capacity = 9;
  std::vector<float> s = gannet::testing::random_vec(N * E, 8);
  k::MoeRouting r;
  k::route_expert_choice(s.data(), N, E, capacity, r);
  expect_consistent(r);
  int64_t none = 0;
  for (int e = 0; e < E; ++e) {
    std::vector<std::pair<float, int>> col;
    for (int n = 0; n < N; ++n) col.push_back({-s[(size_t)(n * E + e)], n});
    std::sort(col.begin(), col.end());
    std::vector<int> want;
    for (int i = 0; i < capacity; ++i) want.push_back(col[(size_t)i].second);
    std::sort(want.begin(), want.end());
    std::vector<int> got(r.slot_token.begin() + r.offsets[(size_t)e], r.slot_token.begin() + r.offsets[(size_t)e + 1]);
    EXPECT_EQ(got, want);
  }
  for (int n = 0; n < N; ++n) none += r.token_offsets[(size_t)n] == r.token_offsets[(size_t)n + 1];
  EXPECT_EQ(r.dropped, none);
}

TEST(MoeDispatch, KernelsMatchScalarReferences) {
  for (auto [N, E, C] : {std::tuple{1, 1, 1}, {17, 3, 7}, {200, 8, 33}, {64, 5, 256}}) {
    std::vector<float> s = gannet::testing::random_vec(N * E, 11);
    k::MoeRouting r;
    k::route_top_k(s.data(), N, E, std::min(2, E), 2 * N / E + 1, nullptr, r);
    const int64_t S = r.slots();
    std::vector<float> src = gannet::testing::random_vec(S * C, 12), w = gannet::testing::random_vec(S, 13),
                       x = gannet::testing::random_vec(N * C, 14);
    for (bool acc : {false, true}) {
      std::vector<float> got = gannet::testing::random_vec(N * C, 15), want = got;
      k::combine_rows(src.data(), w.data(), r.token_offsets.data(), r.token_slots.data(), N, C, acc, got.data());
      k::ref::combine_rows(src.data(), w.data(), r.token_offsets.data(), r.token_slots.data(), N, C, acc, want.data());
      gannet::testing::expect_close(got, want, 1e-5f, 1e-5f, "combine_rows");
    }
    std::vector<float> got((size_t)(S * C)), want((size_t)(S * C));
    k::scaled_gather_rows(x.data(), r.slot_token.data(), w.data(), S, C, got.data());
    k::ref::scaled_gather_rows(x.data(), r.slot_token.data(), w.data(), S, C, want.data());
    gannet::testing::expect_close(got, want, 0.f, 0.f, "scaled_gather_rows");
    std::vector<float> d1((size_t)S), d2((size_t)S);
    k::gathered_row_dots(x.data(), r.slot_token.data(), src.data(), S, C, d1.data());
    k::ref::gathered_row_dots(x.data(), r.slot_token.data(), src.data(), S, C, d2.data());
    gannet::testing::expect_close(d1, d2, 1e-4f, 1e-4f, "gathered_row_dots");
  }
}

TEST(MoeRouter, BalanceAndZLossFormulas) {
  const int64_t N = 50, E = 6;
  for (int64_t kk : {1, 2}) {
    Var logits = random_var({N, E}, 21, false, 2.f);
    autograd::RouterOptions o;
    o.k = kk;
    o.capacity = 5;
    o.normalize_gates = kk > 1;
    autograd::RouterResult r = autograd::moe_router(logits, o);
    const float* L = logits.value().f32();
    double z = 0, me[6] = {}, ce[6] = {};
    for (int64_t n = 0; n < N; ++n) {
      double mx = *std::max_element(L + n * E, L + n * E + E), sum = 0;
      for (int64_t e = 0; e < E; ++e) sum += std::exp((double)L[n * E + e] - mx);
      const double lse = mx + std::log(sum);
      z += lse * lse / N;
      std::vector<int64_t> order((size_t)E);
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return L[n * E + a] > L[n * E + b]; });
      for (int64_t e = 0; e < E; ++e) me[e] += std::exp((double)L[n * E + e] - lse) / N;
      for (int64_t q = 0; q < kk; ++q) ce[order[(size_t)q]] += 1.0 / N;  // choices before capacity
    }
    double bal = 0;
    for (int64_t e = 0; e < E; ++e) bal += me[e] * ce[e];
    bal *= (double)E / (double)kk;
    EXPECT_NEAR(r.balance_loss.value().f32()[0], bal, 1e-5);
    EXPECT_NEAR(r.z_loss.value().f32()[0], z, 1e-4 * z);
    // Gates: the probability, normalized over the token's kept choices when k > 1.
    for (int64_t n = 0; n < N; ++n) {
      double sum = 0;
      for (int32_t i = r.routing->token_offsets[(size_t)n]; i < r.routing->token_offsets[(size_t)n + 1]; ++i)
        sum += r.gates.value().f32()[r.routing->token_slots[(size_t)i]];
      if (kk > 1 && sum > 0) {
        EXPECT_NEAR(sum, 1.0, 1e-5);
      }
    }
  }
  // A flat router sends every token to expert 0 (ties go to the lower index): E * (1/E * 1) = 1.
  Var flat(Tensor::zeros({8, 4}), false);
  autograd::RouterOptions o;
  autograd::RouterResult r = autograd::moe_router(flat, o);
  EXPECT_NEAR(r.balance_loss.value().f32()[0], 1.0, 1e-6);
}

namespace {
// Central differences of `loss` (evaluated without grad) against an analytic gradient, at a spread of
// entries; entries whose perturbation changes the routing are skipped (the loss is not smooth there).
void check_gradient(Tensor& v, const Tensor& g, const std::function<double(std::vector<int32_t>*)>& loss,
                    const std::vector<int32_t>& routing, const std::string& what, int* checked) {
  ASSERT_TRUE(g.defined()) << what << " has no gradient";
  for (int64_t i = 0; i < v.numel(); i += std::max<int64_t>(1, v.numel() / 11)) {
    const float h = 1e-2f, keep = v.f32()[i];
    std::vector<int32_t> rp, rm;
    v.f32()[i] = keep + h;
    double lp = loss(&rp);
    v.f32()[i] = keep - h;
    double lm = loss(&rm);
    v.f32()[i] = keep;
    if (rp != routing || rm != routing) continue;
    double fd = (lp - lm) / (2.0 * h);
    EXPECT_NEAR(g.f32()[i], fd, 3e-3 + 3e-2 * std::fabs(fd)) << what << " " << i;
    ++*checked;
  }
}

// mean over rows of sum_c y[n,c] * w[n,c], as a [1, 1] Var.
Var pooled_dot(const Var& y, const Tensor& w) {
  const int64_t N = y.shape()[0], C = y.shape()[1];
  Tensor mask = Tensor::empty({1, N}, DType::u8);
  std::fill(mask.data<uint8_t>(), mask.data<uint8_t>() + N, (uint8_t)1);
  Var pooled = autograd::masked_mean_pool(autograd::multiply_constant(y, w), 1, N, mask);
  Tensor ones = Tensor::empty({1, C});
  std::fill(ones.f32(), ones.f32() + C, 1.f);
  return autograd::linear(pooled, Var(ones, false), Var());
}
}  // namespace

TEST(MoeRouter, GradientsPassFiniteDifferences) {
  const int64_t N = 12, E = 4;
  for (int variant = 0; variant < 3; ++variant) {
    Var logits = random_var({N, E}, 31 + variant, true, 1.5f);
    autograd::RouterOptions o;
    o.k = variant == 1 ? 2 : 1;
    o.normalize_gates = o.k > 1;
    o.expert_choice = variant == 2;
    o.capacity = 4;
    Var wg = random_var({N * E}, 41, false);  // gate weights: one per (token, expert)
    auto run = [&](std::vector<int32_t>* pairs) {
      autograd::RouterResult r = autograd::moe_router(logits, o);
      double loss = 0.3 * r.balance_loss.value().f32()[0] + 0.2 * r.z_loss.value().f32()[0];
      std::vector<int32_t> key;
      for (int64_t e = 0; e < E; ++e)
        for (int32_t s = r.routing->offsets[(size_t)e]; s < r.routing->offsets[(size_t)e + 1]; ++s) {
          loss += (double)wg.value().f32()[r.routing->slot_token[(size_t)s] * E + e] * r.gates.value().f32()[s];
          key.push_back(r.routing->slot_token[(size_t)s] * (int32_t)E + (int32_t)e);
        }
      if (pairs) *pairs = key;
      return std::make_pair(loss, r);
    };
    std::vector<int32_t> base;
    auto [l0, r] = run(&base);
    (void)l0;
    // Seed the three outputs' gradients and run the tape.
    Tensor dg = Tensor::empty({r.routing->slots()});
    for (int64_t e = 0; e < E; ++e)
      for (int32_t s = r.routing->offsets[(size_t)e]; s < r.routing->offsets[(size_t)e + 1]; ++s)
        dg.f32()[s] = wg.value().f32()[r.routing->slot_token[(size_t)s] * E + e];
    r.gates.grad() = dg;
    if (r.balance_loss.requires_grad()) {
      r.balance_loss.grad() = Tensor::empty({1});
      r.balance_loss.grad().f32()[0] = 0.3f;
    }
    // backward() seeds its argument with 1 on top of what is there: z-loss ends at 0.2. The
    // router's closure reads whichever of its three outputs' gradients are defined.
    r.z_loss.grad() = Tensor::empty({1});
    r.z_loss.grad().f32()[0] = 0.2f - 1.f;
    autograd::tape().backward(r.z_loss);
    int checked = 0;
    auto loss = [&](std::vector<int32_t>* key) {
      autograd::NoGrad ng;
      return run(key).first;
    };
    check_gradient(logits.value(), logits.grad(), loss, base, "router logits, variant " + std::to_string(variant),
                   &checked);
    EXPECT_GT(checked, 8) << "variant " << variant;
  }
}

namespace {
nn::MoeConfig small_moe(int64_t experts, int64_t k_) {
  nn::MoeConfig c;
  c.num_experts = {experts};
  c.k = k_;
  c.capacity_factor = 1.0;
  c.min_capacity = 1;
  c.moe_loss_coeff = 0.1;
  c.router_z_loss_coeff = 0.05;
  return c;
}

std::vector<int32_t> routing_key(const nn::MoePass& pass) {
  std::vector<int32_t> key;
  for (const auto& r : pass.routings) {
    key.insert(key.end(), r->offsets.begin(), r->offsets.end());
    key.insert(key.end(), r->slot_token.begin(), r->slot_token.end());
  }
  return key;
}
}  // namespace

TEST(MoeLayer, GradientsPassFiniteDifferences) {
  const int64_t C = 8, B = 2, T = 8, N = B * T;
  struct Variant {
    const char* name;
    int64_t experts, k;
    bool residual, expert_choice, drop;
  };
  for (const Variant& v : {Variant{"top-1 with drops", 4, 1, false, false, true}, Variant{"top-2", 3, 2, false, false, true},
                           Variant{"PR-MoE dropless", 4, 1, true, false, false},
                           Variant{"expert choice", 4, 1, false, true, true}}) {
    nn::MoeConfig cfg = small_moe(v.experts, v.k);
    cfg.use_residual = v.residual;
    cfg.drop_tokens = v.drop;
    if (v.expert_choice) cfg.router = "expert_choice";
    nn::Block blk(C, 2, 1e-5f);
    blk.make_moe(cfg, 0, v.experts);
    nn::ParameterList ps;
    blk.collect("b", ps);
    Rng rng(7);
    for (auto& p : ps) nn::init_normal(p.var, rng, 0.4f);
    Var x = random_var({N, C}, 8, true);
    Tensor w = random_var({N, C}, 9, false).value();
    nn::zero_grad(ps);
    nn::MoePass pass;
    pass.training = true;
    pass.seed = 3;
    pass.keep_routing = true;
    Var y = blk.forward(x, B, T, true, Tensor(), &pass);
    Var loss = pooled_dot(y, w);
    // The auxiliary losses join the backward pass through their seeded gradient (the tape replays
    // every closure, and each reads its output's gradient).
    ASSERT_TRUE(pass.aux_loss.defined());
    pass.aux_loss.grad() = Tensor::empty({1});
    pass.aux_loss.grad().f32()[0] = 1.f;
    autograd::tape().backward(loss);
    const std::vector<int32_t> base = routing_key(pass);
    if (v.drop && !v.expert_choice) {
      EXPECT_GT(pass.layers[0].dropped_fraction, 0.0) << v.name << ": nothing dropped";
    }
    auto eval = [&](std::vector<int32_t>* key) {
      autograd::NoGrad ng;
      nn::MoePass p;
      p.training = true;
      p.seed = 3;
      p.keep_routing = true;
      double l = pooled_dot(blk.forward(x, B, T, true, Tensor(), &p), w).value().f32()[0];
      for (const auto& s : p.layers) l += cfg.moe_loss_coeff * s.balance_loss + cfg.router_z_loss_coeff * s.z_loss;
      *key = routing_key(p);
      return l;
    };
    int checked = 0;
    check_gradient(x.value(), x.grad(), eval, base, std::string(v.name) + " x", &checked);
    for (auto& p : ps) check_gradient(p.var.value(), p.var.grad(), eval, base, std::string(v.name) + " " + p.name, &checked);
    EXPECT_GT(checked, 60) << v.name;
  }
}

TEST(MoeLayer, OneExpertTopOneWithoutDroppingIsTheDenseMlp) {
  const int64_t C = 16, N = 21;
  nn::MoeConfig cfg = small_moe(1, 1);
  cfg.drop_tokens = false;
  nn::Moe moe(cfg, 0, C, 1);
  Rng rng(1);
  moe.init(rng, 0.1f, 0.1f);
  nn::Mlp mlp(C);
  std::memcpy(mlp.c_fc.weight.value().raw(), moe.c_fc_w.value().raw(), 4 * C * C * 4);
  std::memcpy(mlp.c_fc.bias.value().raw(), moe.c_fc_b.value().raw(), 4 * C * 4);
  std::memcpy(mlp.c_proj.weight.value().raw(), moe.c_proj_w.value().raw(), 4 * C * C * 4);
  std::memcpy(mlp.c_proj.bias.value().raw(), moe.c_proj_b.value().raw(), C * 4);
  for (int64_t i = 0; i < C; ++i) moe.c_fc_b.value().f32()[i] = mlp.c_fc.bias.value().f32()[i] = 0.01f * (float)i;
  Var x = random_var({N, C}, 2, false);
  nn::MoePass pass;
  Var a = moe.forward(x, Var(), pass), b = mlp.forward(x);
  for (int64_t i = 0; i < N * C; ++i) ASSERT_FLOAT_EQ(a.value().f32()[i], b.value().f32()[i]) << i;
  EXPECT_EQ(pass.layers.at(0).dropped_fraction, 0.0);
}

TEST(MoeLayer, RandomSelectionAndNoiseAreDeterministicUnderASeed) {
  const int64_t C = 8, N = 64;
  for (const char* policy : {"None", "Jitter", "RSample"}) {
    nn::MoeConfig cfg = small_moe(4, 1);
    cfg.noisy_gate_policy = policy;
    nn::Moe moe(cfg, 2, C, 4);
    Rng rng(1);
    moe.init(rng, 0.3f, 0.3f);
    Var x = random_var({N, C}, 2, false);
    auto run = [&](uint64_t seed, bool training) {
      nn::MoePass p;
      p.training = training;
      p.seed = seed;
      p.keep_routing = true;
      Var y = moe.forward(x, Var(), p);
      std::vector<float> out(y.value().f32(), y.value().f32() + N * C);
      return std::make_pair(routing_key(p), out);
    };
    EXPECT_EQ(run(5, true), run(5, true)) << policy;
    EXPECT_NE(run(5, true).first, run(6, true).first) << policy << ": the seed changes nothing";
    if (std::string(policy) != "None") {
      EXPECT_NE(run(5, true).second, run(5, false).second) << policy << " noise at eval";
    }
  }
}

TEST(MoeConfig, JsonKeysRoundTripAndBadValuesAreErrors) {
  const std::string base = R"({"model": {"vocab_size": 50, "n_ctx": 16, "n_layer": 4, "n_head": 2, "n_embd": 16,
     "moe": {"num_experts": [2, 4], "k": 2, "capacity_factor": 1.5, "eval_capacity_factor": 2.0, "min_capacity": 2,
             "drop_tokens": false, "use_rts": false, "noisy_gate_policy": "RSample", "use_residual": true,
             "moe_loss_coeff": 0.02, "router_z_loss_coeff": 0.001, "ep_size": 1}}})";
  train::TrainConfig c = train::parse_train_config(base, "t.json");
  const nn::MoeConfig& m = c.model.moe;
  EXPECT_EQ(m.moe_layers(4), (std::vector<int64_t>{1, 3}));
  EXPECT_EQ(m.experts_at(1, 4), 2);
  EXPECT_EQ(m.experts_at(3, 4), 4);
  EXPECT_EQ(m.experts_at(2, 4), 0);
  EXPECT_EQ(m.k, 2);
  EXPECT_FALSE(m.drop_tokens);
  EXPECT_TRUE(m.use_residual);
  io::JsonReader back(io::gpt_config_to_json(c.model), "model");
  EXPECT_EQ(io::read_gpt_config(back).moe, m);
  auto error_of = [&](const std::string& from, const std::string& to) {
    std::string text = base;
    text.replace(text.find(from), from.size(), to);
    try {
      train::parse_train_config(text, "t.json");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(error_of("\"k\": 2", "\"k\": 3").find("more than the 2 experts"), std::string::npos);
  EXPECT_NE(error_of("\"RSample\"", "\"Gaussian\"").find("noisy_gate_policy"), std::string::npos);
  EXPECT_NE(error_of("\"ep_size\": 1", "\"ep_size\": 2").find("ep_size"), std::string::npos);
  EXPECT_NE(error_of("\"use_rts\"", "\"use_rtss\"").find("use_rtss"), std::string::npos);
  EXPECT_NE(error_of("[2, 4]", "[2, 4, 8]").find("num_experts"), std::string::npos);
}

class MoeModelTest : public gannet::testing::TempDirTest {};

TEST_F(MoeModelTest, CheckpointRoundTripAndEvaluationRunsWithoutNoise) {
  models::GptConfig c;
  c.vocab_size = 40, c.n_ctx = 12, c.n_layer = 2, c.n_head = 2, c.n_embd = 16;
  c.moe.num_experts = {4};
  c.moe.k = 2;
  c.moe.noisy_gate_policy = "Jitter";
  models::Gpt m(c);
  m.init(3);
  Tensor tok = Tensor::empty({2, 12}, DType::i32), tgt = Tensor::empty({2, 12}, DType::i32);
  Rng rng(4);
  for (int64_t i = 0; i < 24; ++i) tok.data<int32_t>()[i] = (int32_t)rng.below(40), tgt.data<int32_t>()[i] = (int32_t)rng.below(40);
  nn::MoePass pass;
  pass.training = true;
  pass.seed = 1;
  Var loss = m.loss(tok, tgt, &pass);
  ASSERT_TRUE(pass.aux_loss.defined());
  ASSERT_EQ(pass.layers.size(), 1u);
  EXPECT_EQ(pass.layers[0].block, 1);
  autograd::tape().backward(loss);
  const std::string path = file("moe.safetensors");
  io::save_checkpoint(path, m, nullptr, io::TrainState{});
  io::GptWeights w = io::read_gpt_weights(path);
  EXPECT_EQ(w.config, c);
  models::Gpt back(w.config);
  io::load_gpt_weights(w, back);
  autograd::NoGrad ng;
  Var a = m.logits(tok), b = back.logits(tok), again = m.logits(tok);
  for (int64_t i = 0; i < a.value().numel(); ++i) {
    ASSERT_EQ(a.value().f32()[i], b.value().f32()[i]);
    ASSERT_EQ(a.value().f32()[i], again.value().f32()[i]);  // evaluation: no jitter
  }
}
