#include "gannet/train/evaluate_graph.h"

#include <algorithm>
#include <cmath>

#include "gannet/autograd/tape.h"

namespace gannet::train {

Tensor gather_inputs(const gnn::FeatureStore& store, const gnn::MiniBatch& batch) {
  const int64_t n = (int64_t)batch.input_nodes.size();
  Tensor x = Tensor::empty({n, store.dim()});
  store.gather(batch.input_nodes.data(), n, x.f32());
  return x;
}

gnn::MiniBatch graph_batch(const models::GraphSage& model, const gnn::NeighbourSampler& sampler,
                           const std::vector<int32_t>& seeds, uint64_t seed) {
  if (model.config().is_sage()) return sampler.sample(seeds, seed);
  gnn::MiniBatch b;
  b.seeds = seeds;
  b.input_nodes = seeds;
  return b;
}

namespace {
// Sum of the cross-entropies of logits [n, C] against labels, and the count of correct arg-maxes.
void score(const Tensor& logits, const int32_t* labels, double& loss_sum, int64_t& correct) {
  const int64_t n = logits.dim(0), C = logits.dim(1);
  for (int64_t i = 0; i < n; ++i) {
    const float* row = logits.f32() + i * C;
    const int64_t best = std::max_element(row, row + C) - row;
    double sum = 0;
    for (int64_t c = 0; c < C; ++c) sum += std::exp((double)row[c] - row[best]);
    loss_sum += std::log(sum) - ((double)row[labels[i]] - row[best]);
    correct += best == labels[i];
  }
}
}  // namespace

GraphEval evaluate_graph(const models::GraphSage& model, const gnn::GraphDataset& data, const gnn::FeatureStore& store,
                         const gnn::NeighbourSampler& sampler, const std::vector<int32_t>& nodes, int64_t batch,
                         int64_t max_nodes, uint64_t seed) {
  GANNET_CHECK(batch >= 1, "evaluate_graph: batch ", batch);
  autograd::NoGrad no_grad;
  const int64_t total = max_nodes > 0 ? std::min<int64_t>(max_nodes, (int64_t)nodes.size()) : (int64_t)nodes.size();
  double loss_sum = 0;
  int64_t correct = 0;
  std::vector<int32_t> labels;
  for (int64_t start = 0; start < total; start += batch) {
    const std::vector<int32_t> seeds(nodes.begin() + start, nodes.begin() + std::min(total, start + batch));
    const gnn::MiniBatch b = graph_batch(model, sampler, seeds, seed + (uint64_t)start);
    const autograd::Var x(gather_inputs(store, b));
    labels.resize(seeds.size());
    for (size_t i = 0; i < seeds.size(); ++i) labels[i] = data.labels.data<int32_t>()[seeds[i]];
    score(model.logits(x, b, nullptr).value(), labels.data(), loss_sum, correct);
  }
  GraphEval e;
  e.nodes = total;
  if (total > 0) {
    e.loss = loss_sum / (double)total;
    e.accuracy = (double)correct / (double)total;
  }
  return e;
}

}  // namespace gannet::train
