#include "gannet/nn/transformer.h"

#include "gannet/autograd/checkpoint.h"
#include "gannet/autograd/ops.h"
#include "gannet/autograd/tape.h"

namespace gannet::nn {

Transformer::Transformer(const TransformerConfig& c, ParameterList& params) : c_(c) {
  wte_ = make_param({c.vocab_size, c.n_embd});
  wpe_ = make_param({c.n_ctx, c.n_embd});
  params.push_back({"wte.weight", wte_, true});
  params.push_back({"wpe.weight", wpe_, true});
  h_.reserve(c.n_layer);
  for (int64_t i = 0; i < c.n_layer; ++i) {
    h_.emplace_back(c.n_embd, c.n_head, c.layernorm_eps);
    if (int64_t experts = c.moe.experts_at(i, c.n_layer)) h_.back().make_moe(c.moe, i, experts);
    h_.back().collect("h." + std::to_string(i), params);
  }
  ln_f_ = LayerNorm(c.n_embd, c.layernorm_eps);
  ln_f_.collect("ln_f", params);
}

std::vector<Moe*> Transformer::moe_layers() {
  std::vector<Moe*> out;
  for (Block& b : h_)
    if (b.moe) out.push_back(&*b.moe);
  return out;
}

std::vector<Block*> Transformer::blocks() {
  std::vector<Block*> out;
  for (Block& b : h_) out.push_back(&b);
  return out;
}

void Transformer::init(Rng& rng) {
  init_normal(wte_, rng, 0.02f);
  init_normal(wpe_, rng, 0.01f);
  for (auto& b : h_) b.init(rng, c_.n_layer);
}

Var Transformer::checkpointed_block(const std::function<Var(const Var&, MoePass*)>& run, const Var& x,
                                   MoePass* moe_pass) const {
  // An MoE block reports into a pass of its own on each run; the first run's statistics go to
  // `moe_pass`, and its auxiliary loss leaves the region as a second output, so that the
  // recomputation backpropagates into the router through it too.
  auto first = std::make_shared<MoePass>();
  auto runs = std::make_shared<int>(0);
  MoePass settings;
  if (moe_pass) {
    settings.training = moe_pass->training;
    settings.seed = moe_pass->seed;
    settings.keep_routing = moe_pass->keep_routing;
  }
  autograd::Region region = [run, moe = moe_pass != nullptr, settings, first, runs](const std::vector<Var>& in) {
    const bool first_run = (*runs)++ == 0;
    MoePass scratch;
    MoePass* pass = nullptr;
    if (moe) {
      pass = first_run ? first.get() : &scratch;
      pass->training = settings.training;
      pass->seed = settings.seed;
      pass->keep_routing = first_run && settings.keep_routing;
    }
    Var y = run(in[0], pass);
    return std::vector<Var>{y, pass ? pass->aux_loss : Var()};
  };
  std::vector<Var> out = autograd::checkpoint(region, {x}, keep_communication_);
  if (moe_pass) {
    for (auto& s : first->layers) moe_pass->layers.push_back(std::move(s));
    for (auto& r : first->routings) moe_pass->routings.push_back(std::move(r));
    if (out[1].defined())
      moe_pass->aux_loss = moe_pass->aux_loss.defined() ? autograd::add(moe_pass->aux_loss, out[1]) : out[1];
  }
  return out[0];
}

Var Transformer::forward(const Tensor& tokens, bool causal, const Tensor& key_mask, MoePass* moe_pass) const {
  GANNET_CHECK(tokens.ndim() == 2, "transformer: tokens must be [B, T], got ", tokens.describe());
  const int64_t B = tokens.dim(0), T = tokens.dim(1);
  GANNET_CHECK(T <= c_.n_ctx, "transformer: sequence of ", T, " tokens is longer than n_ctx ", c_.n_ctx);
  Var x = vocab_tp_ ? vocab_tp_->embed_tokens(tokens, wte_, wpe_) : autograd::embedding(tokens, wte_, wpe_);
  const bool drop = ltd_ && autograd::grad_enabled() && ltd_->keep < T;
  if (drop)
    GANNET_CHECK(ltd_->layers.size() == h_.size(), "random-LTD plan for ", ltd_->layers.size(), " layers, model has ",
                 h_.size());
  Rng rng(drop ? ltd_->seed : 0);
  for (size_t i = 0; i < h_.size(); ++i) {
    if (block_done_ && autograd::grad_enabled())
      autograd::tape().record([hook = block_done_, i] { (*hook)((int64_t)i); });
    Tensor idx;
    if (drop && ltd_->layers[i]) idx = random_ltd_indices(B, T, ltd_->keep, rng);
    const Block& block = h_[i];
    const int64_t keep = drop ? ltd_->keep : T;
    auto run = [&block, idx, B, T, keep, causal, key_mask](const Var& in, MoePass* pass) {
      if (idx.defined()) return random_ltd_block(block, in, B, T, keep, idx, causal, key_mask, pass);
      return block.forward(in, B, T, causal, key_mask, pass);
    };
    if (checkpoint_ && autograd::grad_enabled()) x = checkpointed_block(run, x, moe_pass);
    else x = run(x, moe_pass);
  }
  return ln_f_.forward(x);
}

}  // namespace gannet::nn
