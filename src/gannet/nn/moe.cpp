#include "gannet/nn/moe.h"

#include <algorithm>
#include <cmath>

#include "gannet/autograd/moe_ops.h"
#include "gannet/autograd/ops.h"
#include "gannet/autograd/tape.h"

namespace gannet::nn {

std::vector<int64_t> MoeConfig::moe_layers(int64_t n_layer) const {
  if (!enabled()) return {};
  if (!layers.empty()) {
    std::vector<int64_t> out = layers;
    std::sort(out.begin(), out.end());
    return out;
  }
  std::vector<int64_t> out;
  for (int64_t i = 0; i < n_layer; ++i)
    if ((i + 1) % expert_interval == 0) out.push_back(i);
  return out;
}

int64_t MoeConfig::experts_at(int64_t block, int64_t n_layer) const {
  const std::vector<int64_t> ls = moe_layers(n_layer);
  auto it = std::find(ls.begin(), ls.end(), block);
  if (it == ls.end()) return 0;
  return num_experts.size() == 1 ? num_experts[0] : num_experts[(size_t)(it - ls.begin())];
}

void MoeConfig::validate(int64_t n_layer) const {
  if (!enabled()) return;
  GANNET_CHECK(expert_interval >= 1, "moe.expert_interval must be at least 1, got ", expert_interval);
  std::vector<int64_t> ls = moe_layers(n_layer);
  for (size_t i = 0; i < ls.size(); ++i) {
    GANNET_CHECK(ls[i] >= 0 && ls[i] < n_layer, "moe.layers: block ", ls[i], " is outside [0, n_layer = ", n_layer, ")");
    GANNET_CHECK(i == 0 || ls[i] != ls[i - 1], "moe.layers: block ", ls[i], " is listed twice");
  }
  GANNET_CHECK(!ls.empty(), "moe: no block holds an MoE layer (n_layer ", n_layer, ", expert_interval ",
               expert_interval, ")");
  GANNET_CHECK(num_experts.size() == 1 || num_experts.size() == ls.size(), "moe.num_experts has ", num_experts.size(),
               " entries; give one, or one per MoE layer (", ls.size(), ")");
  for (int64_t e : num_experts) GANNET_CHECK(e >= 1, "moe.num_experts must be positive, got ", e);
  GANNET_CHECK(router == "top_k" || router == "expert_choice", "moe.router '", router,
               "' is not supported (top_k, expert_choice)");
  GANNET_CHECK(k >= 1, "moe.k must be at least 1, got ", k);
  if (router == "top_k")
    for (size_t i = 0; i < ls.size(); ++i)
      GANNET_CHECK(k <= experts_at(ls[i], n_layer), "moe.k ", k, " is more than the ", experts_at(ls[i], n_layer),
                   " experts of block ", ls[i]);
  GANNET_CHECK(capacity_factor > 0 && eval_capacity_factor > 0, "moe: capacity_factor and eval_capacity_factor must be positive");
  GANNET_CHECK(min_capacity >= 0, "moe.min_capacity must not be negative");
  GANNET_CHECK(noisy_gate_policy == "None" || noisy_gate_policy == "Jitter" || noisy_gate_policy == "RSample",
               "moe.noisy_gate_policy '", noisy_gate_policy, "' is not supported (None, Jitter, RSample)");
  GANNET_CHECK(router == "top_k" || noisy_gate_policy != "RSample",
               "moe.noisy_gate_policy RSample applies to top_k routing only");
  GANNET_CHECK(router == "top_k" || drop_tokens, "moe.drop_tokens false (dropless) applies to top_k routing only");
  GANNET_CHECK(moe_loss_coeff >= 0 && router_z_loss_coeff >= 0, "moe: loss coefficients must not be negative");
  GANNET_CHECK(ep_size == 1, "moe.ep_size ", ep_size,
               ": the expert-parallel degree is a property of the run, set it as parallel.expert in the training "
               "config (moe.ep_size must be 1)");
}

Moe::Moe(const MoeConfig& c, int64_t blk, int64_t C, int64_t E) : config(c), block(blk), n_embd(C), experts(E) {
  const int64_t H = 4 * C;
  gate = make_param({E, C});
  c_fc_w = make_param({E, H, C});
  c_fc_b = make_param({E, H});
  c_proj_w = make_param({E, C, H});
  c_proj_b = make_param({E, C});
  if (c.use_residual) coefficient = Linear(C, 2);
}

void Moe::collect(const std::string& prefix, ParameterList& out) const {
  out.push_back({prefix + ".gate.weight", gate, true});
  out.push_back({prefix + ".experts.c_fc.weight", c_fc_w, true});
  out.push_back({prefix + ".experts.c_fc.bias", c_fc_b, false});
  out.push_back({prefix + ".experts.c_proj.weight", c_proj_w, true});
  out.push_back({prefix + ".experts.c_proj.bias", c_proj_b, false});
  if (config.use_residual) coefficient.collect(prefix + ".coefficient", out);
}

void Moe::init(Rng& rng, float std, float proj_std) {
  init_normal(gate, rng, std);
  init_normal(c_fc_w, rng, std);
  init_constant(c_fc_b, 0.f);
  init_normal(c_proj_w, rng, proj_std);
  init_constant(c_proj_b, 0.f);
  if (config.use_residual) coefficient.init(rng, std);
}

Var Moe::forward(const Var& x, const Var& residual, MoePass& pass) const {
  const Tensor& X = x.value();
  GANNET_CHECK(X.ndim() == 2 && X.dim(1) == n_embd, "moe: input ", X.describe(), " does not have ", n_embd, " channels");
  const int64_t N = X.dim(0), E = experts;
  Rng rng(pass.seed ^ (0x9E3779B97F4A7C15ull * (uint64_t)(block + 1)));
  const bool noise = pass.training && config.noisy_gate_policy != "None";

  Var router_in = x;
  if (noise && config.noisy_gate_policy == "Jitter") {
    const float eps = 1e-2f;
    Tensor m = Tensor::empty(X.shape());
    for (int64_t i = 0; i < m.numel(); ++i) m.f32()[i] = 1.f - eps + 2.f * eps * rng.uniform();
    router_in = autograd::multiply_constant(x, m);
  }
  Var logits = autograd::linear(router_in, gate, Var());

  autograd::RouterOptions ro;
  const double factor = pass.training ? config.capacity_factor : config.eval_capacity_factor;
  if (config.router == "expert_choice") {
    ro.expert_choice = true;
    ro.capacity = kernels::moe_capacity(N, E, config.k, factor, config.min_capacity);
  } else {
    ro.k = config.k;
    ro.normalize_gates = config.k > 1;
    ro.capacity = config.drop_tokens ? kernels::moe_capacity(N, E, config.k, factor, config.min_capacity) : -1;
    if (noise && config.noisy_gate_policy == "RSample") {
      ro.selection_noise = Tensor::empty({N, E});
      for (int64_t i = 0; i < N * E; ++i) {
        float u = std::max(rng.uniform(), 1e-20f);
        ro.selection_noise.f32()[i] = -std::log(-std::log(u) + 1e-20f);
      }
    }
    if (config.use_rts && config.drop_tokens) {
      ro.priority = Tensor::empty({N});
      for (int64_t n = 0; n < N; ++n) ro.priority.f32()[n] = rng.uniform();
    }
  }
  autograd::RouterResult r = autograd::moe_router(logits, ro);

  std::vector<int32_t> offsets = r.routing->offsets;
  Var buffer = autograd::moe_dispatch(x, r.routing);
  static const LocalExpertExchange local;
  const ExpertExchange& ex = exchange ? *exchange : local;
  buffer = ex.dispatch(buffer, offsets);
  Var out = autograd::expert_mlp(buffer, offsets, c_fc_w, c_fc_b, c_proj_w, c_proj_b);
  out = ex.combine(out);
  Var y = autograd::moe_combine(out, r.gates, r.routing);
  if (config.use_residual) {
    GANNET_CHECK(residual.defined() && residual.shape() == x.shape(), "moe: use_residual needs the dense MLP output");
    y = autograd::softmax_mix2(y, residual, coefficient.forward(x));
  }

  // Auxiliary losses (training only) and statistics.
  if (pass.training && autograd::grad_enabled()) {
    auto add_term = [&](const Var& term, double coef) {
      if (coef == 0 || !term.requires_grad()) return;
      Tensor c = Tensor::empty({1});
      c.f32()[0] = (float)(coef * aux_scale);
      Var scaled = autograd::multiply_constant(term, c);
      pass.aux_loss = pass.aux_loss.defined() ? autograd::add(pass.aux_loss, scaled) : scaled;
    };
    add_term(r.balance_loss, config.moe_loss_coeff);
    add_term(r.z_loss, config.router_z_loss_coeff);
  }
  MoeLayerStats s;
  s.block = block;
  s.tokens = N;
  s.experts = E;
  s.capacity = r.routing->capacity;
  s.balance_loss = r.balance_loss.value().f32()[0];
  s.z_loss = r.z_loss.value().f32()[0];
  const double choices = ro.expert_choice ? (double)N : (double)(N * config.k);
  s.dropped_fraction = choices > 0 ? (double)r.routing->dropped / choices : 0.0;
  double ent = 0;
  const float* p = r.probs.f32();
  for (int64_t i = 0; i < N * E; ++i)
    if (p[i] > 0) ent -= (double)p[i] * std::log((double)p[i]);
  s.entropy = N ? ent / (double)N : 0.0;
  s.demand = r.routing->demand;
  s.kept.resize((size_t)E);
  for (int64_t e = 0; e < E; ++e) s.kept[(size_t)e] = r.routing->offsets[(size_t)e + 1] - r.routing->offsets[(size_t)e];
  pass.layers.push_back(std::move(s));
  if (pass.keep_routing) pass.routings.push_back(r.routing);
  return y;
}

}  // namespace gannet::nn
