// GraphSAGE (Hamilton et al., 2017) with the mean aggregator, for node classification on sampled
// mini-batches (gnn/neighbour_sampler.h). Layer l maps each destination node d of block l to
//   h'_d = W_self h_d + W_neigh mean_{s in N(d)} h_s + b
// followed by ReLU (and dropout in training) on every layer but the last, whose outputs are the
// class logits. Also the features-only baseline: an MLP of the same depth and width on each
// node's own features (type "mlp"), which reads no neighbours.
// Parameter names: layers.<l>.self.weight [out, in], layers.<l>.neigh.weight [out, in],
// layers.<l>.bias [out]; the MLP has layers.<l>.weight and layers.<l>.bias.
#pragma once
#include <string>
#include <vector>

#include "gannet/gnn/neighbour_sampler.h"
#include "gannet/nn/parameter.h"

namespace gannet::models {

struct GraphSageConfig {
  std::string type = "sage";  // "sage" or "mlp"
  int64_t in_dim = 0;         // node feature width (the data set's)
  int64_t hidden = 256;
  int64_t num_classes = 0;    // the data set's
  int64_t layers = 2;         // a "sage" model samples one hop per layer
  float dropout = 0.5f;       // on hidden activations, training only

  bool is_sage() const { return type == "sage"; }
  // Throws gannet::Error naming the bad field.
  void validate() const;
  bool operator==(const GraphSageConfig&) const = default;
};

class GraphSage {
 public:
  explicit GraphSage(const GraphSageConfig& config);
  const GraphSageConfig& config() const { return config_; }
  void init(uint64_t seed);
  const nn::ParameterList& parameters() const { return params_; }

  // Class logits [seeds, num_classes]. x holds the rows of the batch's input_nodes; for "mlp" only
  // its first batch.seeds.size() rows (the seeds') are read. `dropout` draws masks from `rng`
  // when given (training) and is off when null (evaluation).
  nn::Var logits(const nn::Var& x, const gnn::MiniBatch& batch, Rng* dropout) const;

 private:
  struct Layer {
    nn::Var self, neigh, weight, bias;  // self/neigh: sage; weight: mlp
  };
  nn::Var sage_layer(const Layer& layer, const nn::Var& h, const gnn::SampledBlock& block) const;

  GraphSageConfig config_;
  std::vector<Layer> layers_;
  nn::ParameterList params_;
};

}  // namespace gannet::models
