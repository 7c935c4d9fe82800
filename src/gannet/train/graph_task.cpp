#include "gannet/train/graph_task.h"

#include <algorithm>
#include <numeric>

#include "gannet/autograd/ops.h"
#include "gannet/core/format_number.h"
#include "gannet/io/graphsage_checkpoint.h"
#include "gannet/train/evaluate_graph.h"

namespace gannet::train {

namespace {

class GraphModel : public CheckpointModel {
 public:
  explicit GraphModel(const models::GraphSageConfig& config) : sage(config) {}
  const nn::ParameterList& parameters() const override { return sage.parameters(); }
  void save(const std::string& path, optim::AdamW* optimizer, const io::TrainState& state) const override {
    io::save_graphsage_checkpoint(path, sage, optimizer, state);
  }
  void load(const std::string& path, optim::AdamW* optimizer, io::TrainState* state) override {
    io::load_graphsage_checkpoint(path, sage, optimizer, state);
  }
  void save_sharded(const std::string&, dist::Communicator&, const std::vector<const dist::ParameterPlacement*>&,
                    dist::DataParallel&, const io::ShardedLayout&, const io::TrainState&) const override {
    fail("sharded checkpoints are for the GPT only: set checkpoint.sharded to false");
  }

  models::GraphSage sage;
};

// A stream of its own for each (seed, micro-batch, purpose).
uint64_t stream(uint64_t seed, int64_t index, uint64_t purpose) {
  uint64_t z = seed ^ (0x9E3779B97F4A7C15ull * (uint64_t)(index + 1)) ^ (purpose << 56);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

class GraphTask : public TrainTask {
 public:
  explicit GraphTask(const TrainConfig& cfg);

  CheckpointModel& model() override { return model_; }
  std::unique_ptr<CheckpointModel> make_whole_model() const override {
    return std::make_unique<GraphModel>(model_.sage.config());
  }
  dist::BucketPlan buckets() const override { return dist::transformer_buckets(model_.parameters(), 0); }
  std::vector<const dist::ParameterPlacement*> split(dist::ProcessGroups&) override { return {}; }
  double whole_parameter_count() const override { return (double)nn::count_elements(model_.parameters()); }

  Rng& data_rng() override { return unused_rng_; }  // the data order follows from the seed alone
  void draw(int64_t, bool) override {}
  MicroLoss forward(const MicroBatch& batch) override;
  int64_t micro_tokens(int64_t) const override { return cfg_.micro_batch; }
  int64_t micro_layer_tokens(int64_t s) const override { return micro_tokens(s) * model_.sage.config().layers; }
  const char* unit() const override { return "node"; }

  Figures validate(int64_t batches) override;
  std::vector<std::string> validation_keys() const override { return {"val_loss", "val_accuracy"}; }
  std::string describe_validation(int64_t step, const Figures& f) const override {
    return str("step ", step, ": val loss ", format_number("%.4f", f.values[0]), ", val accuracy ",
               format_number("%.4f", f.values[1]));
  }
  std::string describe_data() const override;
  std::string describe_options() const override;

 private:
  // The seeds of micro-batch `index` (counted over the whole run).
  std::vector<int32_t> seeds_of(int64_t index);

  const TrainConfig& cfg_;
  gnn::GraphDataset data_;
  std::unique_ptr<gnn::FeatureStore> store_;
  gnn::NeighbourSampler sampler_;
  GraphModel model_;
  std::vector<int32_t> train_nodes_, val_nodes_;
  std::vector<int32_t> order_;  // the permutation of the current epoch
  int64_t order_epoch_ = -1;
  Rng unused_rng_{0};
};

models::GraphSageConfig sized_for(models::GraphSageConfig c, const gnn::GraphDataset& data) {
  c.in_dim = data.feature_dim();
  c.num_classes = data.num_classes();
  return c;
}

GraphTask::GraphTask(const TrainConfig& cfg)
    : cfg_(cfg),
      data_(gnn::load_graph_dataset(cfg.data_dir)),
      store_(gnn::open_feature_store(data_, cfg.graph_features)),
      sampler_(data_.graph, cfg.fanouts),
      model_(sized_for(cfg.graph_model, data_)),
      train_nodes_(data_.nodes_in(gnn::kTrain)),
      val_nodes_(data_.nodes_in(gnn::kValidation)) {
  GANNET_CHECK(!train_nodes_.empty(), cfg.data_dir, ": no training nodes");
  model_.sage.init(cfg.seed);
}

std::vector<int32_t> GraphTask::seeds_of(int64_t index) {
  const int64_t n = (int64_t)train_nodes_.size(), B = cfg_.micro_batch;
  const int64_t per_epoch = (n + B - 1) / B;
  const int64_t epoch = index / per_epoch, at = (index % per_epoch) * B;
  if (epoch != order_epoch_) {
    order_ = train_nodes_;
    Rng rng(stream(cfg_.seed, epoch, 1));
    for (int64_t i = n - 1; i > 0; --i) std::swap(order_[i], order_[rng.below(i + 1)]);
    order_epoch_ = epoch;
  }
  return {order_.begin() + at, order_.begin() + std::min(n, at + B)};
}

MicroLoss GraphTask::forward(const MicroBatch& batch) {
  const int64_t index = batch.step * batch.count + batch.index;
  const std::vector<int32_t> seeds = seeds_of(index);
  const gnn::MiniBatch b = graph_batch(model_.sage, sampler_, seeds, stream(cfg_.seed, index, 2));
  Tensor labels = Tensor::empty({(int64_t)seeds.size()}, DType::i32);
  for (size_t i = 0; i < seeds.size(); ++i) labels.data<int32_t>()[i] = data_.labels.data<int32_t>()[seeds[i]];
  Rng dropout(stream(cfg_.seed, index, 3));
  const autograd::Var x(gather_inputs(*store_, b));
  autograd::Var loss = autograd::cross_entropy(model_.sage.logits(x, b, &dropout), labels);
  return {loss, loss.value().f32()[0]};
}

Figures GraphTask::validate(int64_t batches) {
  const GraphEval e = evaluate_graph(model_.sage, data_, *store_, sampler_, val_nodes_, cfg_.micro_batch,
                                     batches * cfg_.micro_batch, stream(cfg_.seed, 0, 4));
  return {validation_keys(), {e.loss, e.accuracy}};
}

std::string GraphTask::describe_data() const {
  return str("graph ", cfg_.data_dir, " (", data_.source, ": ", data_.num_nodes(), " nodes, ",
             data_.graph.num_directed_edges() / 2, " edges, ", data_.num_classes(), " classes, ", train_nodes_.size(),
             " training nodes)");
}

std::string GraphTask::describe_options() const {
  const models::GraphSageConfig& c = model_.sage.config();
  std::string fanouts;
  for (int f : cfg_.fanouts) {
    if (!fanouts.empty()) fanouts += ',';
    fanouts += std::to_string(f);
  }
  const double raw = (double)data_.num_nodes() * (double)data_.feature_dim() * 4;
  const std::string ratio =
      cfg_.graph_features == "raw" ? "" : str(", ", format_number("%.1f", raw / (double)store_->bytes()), "x smaller than f32");
  return str("gannet train: ", c.is_sage() ? str("GraphSAGE-mean, fan-outs ", fanouts) : std::string("MLP on node features only"),
             ", ", c.layers, " layers of ", c.hidden, ", dropout ", c.dropout, "\ngannet train: features ",
             cfg_.graph_features, ", ", format_number("%.1f", (double)store_->bytes() / 1e6), " MB resident", ratio, "\n");
}

}  // namespace

std::unique_ptr<TrainTask> make_graph_task(const TrainConfig& config) { return std::make_unique<GraphTask>(config); }

}  // namespace gannet::train
