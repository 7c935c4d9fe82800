#include "gannet/models/graphsage.h"

#include <cmath>

#include "gannet/autograd/graph_ops.h"
#include "gannet/autograd/ops.h"
#include "gannet/core/error.h"

namespace gannet::models {

using autograd::Var;

void GraphSageConfig::validate() const {
  GANNET_CHECK(type == "sage" || type == "mlp", "model.type '", type, "' is not a graph model (sage or mlp)");
  GANNET_CHECK(in_dim >= 1, "model: feature width ", in_dim, " must be >= 1");
  GANNET_CHECK(hidden >= 1 && hidden <= (1 << 16), "model.hidden ", hidden, " must be in [1, 65536]");
  GANNET_CHECK(num_classes >= 2, "model: ", num_classes, " classes; node classification needs at least 2");
  GANNET_CHECK(layers >= 1 && layers <= 8, "model.layers ", layers, " must be in [1, 8]");
  GANNET_CHECK(dropout >= 0.f && dropout < 1.f, "model.dropout ", dropout, " must be in [0, 1)");
}

GraphSage::GraphSage(const GraphSageConfig& config) : config_(config) {
  config_.validate();
  for (int64_t l = 0; l < config_.layers; ++l) {
    const int64_t in = l == 0 ? config_.in_dim : config_.hidden;
    const int64_t out = l + 1 == config_.layers ? config_.num_classes : config_.hidden;
    const std::string p = "layers." + std::to_string(l) + ".";
    Layer layer;
    if (config_.is_sage()) {
      layer.self = nn::make_param({out, in});
      layer.neigh = nn::make_param({out, in});
      params_.push_back({p + "self.weight", layer.self, true});
      params_.push_back({p + "neigh.weight", layer.neigh, true});
    } else {
      layer.weight = nn::make_param({out, in});
      params_.push_back({p + "weight", layer.weight, true});
    }
    layer.bias = nn::make_param({out});
    params_.push_back({p + "bias", layer.bias, false});
    layers_.push_back(layer);
  }
}

void GraphSage::init(uint64_t seed) {
  Rng rng(seed);
  for (const nn::Parameter& p : params_) {
    if (p.var.value().ndim() == 1) {
      nn::init_constant(p.var, 0.f);
    } else {
      // He initialisation for ReLU layers: variance 2 / fan-in (each sage term gets half of it).
      const double fan_in = (double)p.var.value().dim(1) * (config_.is_sage() ? 2 : 1);
      nn::init_normal(p.var, rng, (float)std::sqrt(2.0 / fan_in));
    }
  }
}

Var GraphSage::sage_layer(const Layer& layer, const Var& h, const gnn::SampledBlock& block) const {
  GANNET_CHECK(h.value().dim(0) == block.num_src, "GraphSage: ", h.value().dim(0), " input rows for a block of ",
               block.num_src, " source nodes");
  const Var own = autograd::leading_rows(h, block.num_dst);
  const Var mean = autograd::neighbour_mean(h, block.offsets.data(), block.src_of.data(), block.num_dst);
  return autograd::add(autograd::linear(own, layer.self, layer.bias), autograd::linear(mean, layer.neigh, Var()));
}

Var GraphSage::logits(const Var& x, const gnn::MiniBatch& batch, Rng* dropout) const {
  GANNET_CHECK(x.value().ndim() == 2 && x.value().dim(1) == config_.in_dim, "GraphSage: features ",
               x.value().describe(), " do not have the model's width ", config_.in_dim);
  const int64_t seeds = (int64_t)batch.seeds.size();
  Var h = x;
  if (config_.is_sage()) {
    GANNET_CHECK((int64_t)batch.blocks.size() == config_.layers, "GraphSage: a batch of ", batch.blocks.size(),
                 " blocks for a model of ", config_.layers, " layers (graph.fanouts must have one per layer)");
  } else {
    h = autograd::leading_rows(x, seeds);
  }
  for (int64_t l = 0; l < config_.layers; ++l) {
    const Layer& layer = layers_[l];
    h = config_.is_sage() ? sage_layer(layer, h, batch.blocks[l]) : autograd::linear(h, layer.weight, layer.bias);
    if (l + 1 == config_.layers) break;
    h = dropout && config_.dropout > 0.f ? autograd::relu_dropout(h, config_.dropout, *dropout) : autograd::relu(h);
  }
  GANNET_CHECK(h.value().dim(0) == seeds, "GraphSage: ", h.value().dim(0), " output rows for ", seeds, " seeds");
  return h;
}

}  // namespace gannet::models
