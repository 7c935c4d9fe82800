#include "gannet/train/moe_stats.h"

#include <algorithm>
#include <cmath>

#include "gannet/autograd/tape.h"
#include "gannet/core/error.h"
#include "gannet/data/window_sampler.h"

namespace gannet::train {

double MoeLayerReport::entropy_fraction() const {
  return experts > 1 ? entropy / std::log((double)experts) : 0.0;
}

int64_t MoeLayerReport::total_demand() const {
  int64_t s = 0;
  for (const ExpertStats& e : expert) s += e.demand;
  return s;
}

int64_t MoeLayerReport::total_kept() const {
  int64_t s = 0;
  for (const ExpertStats& e : expert) s += e.kept;
  return s;
}

double MoeLayerReport::demand_share(int64_t e) const {
  const int64_t t = total_demand();
  return t ? (double)expert[(size_t)e].demand / (double)t : 0.0;
}

double MoeLayerReport::kept_share(int64_t e) const {
  const int64_t t = total_kept();
  return t ? (double)expert[(size_t)e].kept / (double)t : 0.0;
}

double MoeLayerReport::capacity_use(int64_t e) const {
  if (capacity_slots <= 0 || experts <= 0) return 0.0;
  return (double)expert[(size_t)e].kept / ((double)capacity_slots / (double)experts);
}

MoeStatsAccumulator::MoeStatsAccumulator(const models::GptConfig& config) {
  const nn::MoeConfig& m = config.moe;
  for (int64_t block : m.moe_layers(config.n_layer)) {
    Layer l;
    l.report.block = block;
    l.report.experts = m.experts_at(block, config.n_layer);
    l.report.k = m.k;
    l.report.expert_choice = m.router == "expert_choice";
    l.report.expert.resize((size_t)l.report.experts);
    l.token_counts.resize((size_t)l.report.experts);
    layers_.push_back(std::move(l));
  }
}

void MoeStatsAccumulator::add(const Tensor& tokens, const nn::MoePass& pass) {
  GANNET_CHECK(tokens.dtype() == DType::i32, "moe stats: tokens must be i32, got ", tokens.describe());
  GANNET_CHECK(pass.layers.size() == layers_.size(), "moe stats: the pass reports ", pass.layers.size(),
               " MoE layers, the model has ", layers_.size());
  GANNET_CHECK(pass.routings.size() == layers_.size(), "moe stats: the pass kept ", pass.routings.size(),
               " routings for ", layers_.size(), " MoE layers (run it with keep_routing)");
  const int32_t* tok = tokens.data<int32_t>();
  for (size_t i = 0; i < layers_.size(); ++i) {
    Layer& l = layers_[i];
    MoeLayerReport& r = l.report;
    const nn::MoeLayerStats& s = pass.layers[i];
    const kernels::MoeRouting& routing = *pass.routings[i];
    GANNET_CHECK(s.block == r.block && s.experts == r.experts && routing.experts == r.experts,
                 "moe stats: layer ", i, " of the pass is block ", s.block, " with ", s.experts,
                 " experts; expected block ", r.block, " with ", r.experts);
    GANNET_CHECK(routing.tokens == tokens.numel(), "moe stats: block ", r.block, " routed ", routing.tokens,
                 " tokens for ", tokens.numel(), " inputs");
    const int64_t N = routing.tokens;
    r.tokens += N;
    r.choices += r.expert_choice ? N : N * r.k;
    r.dropped += routing.dropped;
    r.passes += 1;
    if (r.passes == 1 || routing.capacity > r.capacity) r.capacity = routing.capacity;
    if (routing.capacity >= 0) r.capacity_slots += routing.capacity * r.experts;
    l.entropy_sum += s.entropy * (double)N;
    l.balance_sum += s.balance_loss * (double)N;
    l.z_sum += s.z_loss * (double)N;
    for (int64_t e = 0; e < r.experts; ++e) {
      ExpertStats& x = r.expert[(size_t)e];
      x.demand += routing.demand[(size_t)e];
      const int32_t b = routing.offsets[(size_t)e], end = routing.offsets[(size_t)e + 1];
      x.kept += end - b;
      auto& counts = l.token_counts[(size_t)e];
      for (int32_t slot = b; slot < end; ++slot) ++counts[tok[routing.slot_token[(size_t)slot]]];
    }
  }
}

std::vector<MoeLayerReport> MoeStatsAccumulator::result(int64_t top) const {
  std::vector<MoeLayerReport> out;
  for (const Layer& l : layers_) {
    MoeLayerReport r = l.report;
    if (r.tokens > 0) {
      r.entropy = l.entropy_sum / (double)r.tokens;
      r.balance_loss = l.balance_sum / (double)r.tokens;
      r.z_loss = l.z_sum / (double)r.tokens;
    }
    for (size_t e = 0; e < r.expert.size(); ++e) {
      std::vector<std::pair<int32_t, int64_t>> v(l.token_counts[e].begin(), l.token_counts[e].end());
      const size_t n = std::min(v.size(), (size_t)std::max<int64_t>(top, 0));
      auto more = [](const auto& a, const auto& b) { return a.second != b.second ? a.second > b.second : a.first < b.first; };
      std::partial_sort(v.begin(), v.begin() + (std::ptrdiff_t)n, v.end(), more);
      v.resize(n);
      r.expert[e].top_tokens = std::move(v);
    }
    out.push_back(std::move(r));
  }
  return out;
}

MoeStats analyze_moe(const models::Gpt& model, const data::TokenFile& file, const MoeStatsOptions& o) {
  const models::GptConfig& cfg = model.config();
  GANNET_CHECK(cfg.moe.enabled(), "the model has no MoE layer (a dense GPT); moe-stats needs a GPT-MoE");
  const int64_t T = o.seq_len > 0 ? o.seq_len : cfg.n_ctx;
  GANNET_CHECK(T <= cfg.n_ctx, "seq_len ", T, " is longer than the model's n_ctx ", cfg.n_ctx);
  GANNET_CHECK(o.batch >= 1, "batch must be at least 1, got ", o.batch);
  GANNET_CHECK(o.max_windows >= 0, "the window count must not be negative, got ", o.max_windows);
  GANNET_CHECK(file.vocab_size() <= cfg.vocab_size, file.path(), " has vocabulary ", file.vocab_size(),
               ", larger than the model's ", cfg.vocab_size);
  int64_t windows = data::eval_window_count(file, T);
  GANNET_CHECK(windows > 0, file.path(), " holds ", file.size(), " tokens, fewer than one window of ", T + 1);
  if (o.max_windows > 0) windows = std::min(windows, o.max_windows);

  autograd::NoGrad no_grad;
  MoeStatsAccumulator acc(cfg);
  for (int64_t first = 0, i = 0; first < windows; first += o.batch, ++i) {
    const int64_t rows = std::min(o.batch, windows - first);
    Tensor tokens = Tensor::empty({rows, T}, DType::i32);
    Tensor targets = Tensor::empty({rows, T}, DType::i32);
    data::eval_windows(file, T, first, tokens, targets);
    nn::MoePass pass;
    pass.training = false;
    pass.keep_routing = true;
    pass.seed = o.seed + (uint64_t)i;
    model.hidden(tokens, &pass);
    acc.add(tokens, pass);
  }
  MoeStats s;
  s.windows = windows;
  s.seq_len = T;
  s.batch = o.batch;
  s.layers = acc.result(o.top);
  return s;
}

}  // namespace gannet::train
