#include "gannet/train/vlmoe_classify_task.h"

#include "gannet/core/format_number.h"
#include "gannet/data/image_classes.h"
#include "gannet/io/vlmoe_checkpoint.h"
#include "gannet/io/vlmoe_classifier_checkpoint.h"
#include "gannet/train/evaluate_vlmoe_classifier.h"
#include "gannet/train/moe_log.h"

namespace gannet::train {

namespace {

class VlMoeClassifierModel : public CheckpointModel {
 public:
  VlMoeClassifierModel(const models::VlMoeConfig& config, const data::ImageClassSet& train)
      : classifier(config, train.num_classes()), classes_(train.classes), format_(train.format) {}
  const nn::ParameterList& parameters() const override { return classifier.parameters(); }
  void save(const std::string& path, optim::AdamW* optimizer, const io::TrainState& state) const override {
    io::save_vlmoe_classifier_checkpoint(path, classifier, classes_, format_, optimizer, state);
  }
  void load(const std::string& path, optim::AdamW* optimizer, io::TrainState* state) override {
    io::load_vlmoe_classifier_checkpoint(path, classifier, optimizer, state);
  }
  void save_sharded(const std::string&, dist::Communicator&, const std::vector<const dist::ParameterPlacement*>&,
                    dist::DataParallel&, const io::ShardedLayout&, const io::TrainState&) const override {
    fail("sharded checkpoints are for the GPT only: set checkpoint.sharded to false");
  }

  models::VlMoeClassifier classifier;

 private:
  std::vector<std::string> classes_;
  std::string format_;
};

double aux_value(const nn::MoePass& pass) { return pass.aux_loss.defined() ? pass.aux_loss.value().f32()[0] : 0.0; }

// The train split, checked against the model's image size.
data::ImageClassSet train_split(const TrainConfig& cfg) {
  data::ImageClassSet s = data::load_image_class_split(cfg.data_dir, "train");
  GANNET_CHECK(s.images.dim(1) == cfg.vlmoe.image_size, cfg.data_dir, ": images are ", s.images.dim(1), "x",
               s.images.dim(2), ", the model's image_size is ", cfg.vlmoe.image_size,
               cfg.init_checkpoint.empty() ? std::string(" (model.image_size)") : str(" (", cfg.init_checkpoint, ")"));
  return s;
}

data::ImageClassSet eval_split(const TrainConfig& cfg, const data::ImageClassSet& train) {
  const std::string split =
      cfg.vlmoe_eval_split.empty() ? data::image_class_eval_split(train.format) : cfg.vlmoe_eval_split;
  try {
    data::check_image_class_eval_split(train.format, split);
  } catch (const Error& e) {
    fail(str("vlmoe_classify.eval_split: ", e.what()));
  }
  data::ImageClassSet s = data::load_image_class_split(cfg.data_dir, split);
  GANNET_CHECK(s.format == train.format && s.classes == train.classes && s.images.dim(1) == train.images.dim(1),
               cfg.data_dir, "/", split, ".safetensors: another format, class list or image size than the train split");
  return s;
}

class VlMoeClassifyTask : public TrainTask {
 public:
  explicit VlMoeClassifyTask(const TrainConfig& cfg)
      : cfg_(cfg), train_(train_split(cfg)), eval_(eval_split(cfg, train_)),
        batches_(train_.size(), cfg.micro_batch, cfg.seed), model_(cfg.vlmoe, train_) {
    model_.classifier.init(cfg.seed);
    if (!cfg.init_checkpoint.empty())
      io::load_vlmoe_checkpoint(cfg.init_checkpoint, model_.classifier.trunk(), nullptr, nullptr);
  }

  CheckpointModel& model() override { return model_; }
  std::unique_ptr<CheckpointModel> make_whole_model() const override {
    return std::make_unique<VlMoeClassifierModel>(cfg_.vlmoe, train_);
  }
  dist::BucketPlan buckets() const override {
    return dist::transformer_buckets(model_.parameters(), cfg_.vlmoe.n_layer);
  }
  std::vector<const dist::ParameterPlacement*> split(dist::ProcessGroups&) override { return {}; }
  double whole_parameter_count() const override { return (double)nn::count_elements(model_.parameters()); }

  Rng& data_rng() override { return unused_rng_; }  // the data order follows from the seed alone
  void draw(int64_t, bool) override {}
  MicroLoss forward(const MicroBatch& batch) override {
    const int64_t index = batch.step * batch.count + batch.index;
    Tensor images, labels;
    data::gather_image_classes(train_, batches_.batch(index), images, labels);
    const uint64_t moe_seed = cfg_.seed + 0xD1B54A32D192ED03ull * (uint64_t)(index + 1);
    const models::VlMoeClassifierOutput out = model_.classifier.forward(images, moe_seed);
    moe_log_.add(out.moe.layers, aux_value(out.moe));
    double reported = 0;
    autograd::Var loss = models::VlMoeClassifier::loss(out, labels, &reported);
    return {loss, reported};
  }
  int64_t micro_tokens(int64_t) const override { return cfg_.micro_batch; }
  int64_t micro_layer_tokens(int64_t s) const override { return micro_tokens(s) * cfg_.vlmoe.n_layer; }
  const char* unit() const override { return "image"; }
  void describe_step(int64_t, nlohmann::json& line) override {
    if (!cfg_.vlmoe.dense) line["moe_image"] = moe_log_.take();
  }

  Figures validate(int64_t batches) override {
    const ImageClassifierEval e =
        evaluate_vlmoe_classifier(model_.classifier, eval_, cfg_.micro_batch, batches * cfg_.micro_batch);
    return {validation_keys(), {e.loss, e.confusion.accuracy(), macro_f1_present(e.confusion)}};
  }
  std::vector<std::string> validation_keys() const override { return image_classifier_validation_keys(); }
  std::string describe_validation(int64_t step, const Figures& f) const override {
    return str("step ", step, ": val loss ", format_number("%.4f", f.values[0]), ", accuracy ",
               format_number("%.2f", 100 * f.values[1]), "%, macro-F1 ", format_number("%.2f", 100 * f.values[2]), "%");
  }
  std::string describe_data() const override {
    return str(train_.glyphs() ? "glyph blocks " : "images ", cfg_.data_dir, " (", train_.size(), " train images, ",
               train_.num_classes(), " classes; validation ", eval_.split, ", ", eval_.size(), " images)");
  }
  std::string describe_options() const override {
    const models::VlMoeConfig& c = cfg_.vlmoe;
    return str("gannet train: VL-MoE image classifier d ", c.n_embd, ", ", c.n_layer, " blocks, ", c.image_tokens(),
               " image tokens, ", c.dense ? std::string("dense") : str(c.moe.num_experts[0], " experts top-", c.moe.k),
               "; ", cfg_.init_checkpoint.empty() ? std::string("from the seed") : "trunk from " + cfg_.init_checkpoint,
               "\n");
  }

 private:
  const TrainConfig& cfg_;
  data::ImageClassSet train_, eval_;
  data::ImageClassBatches batches_;
  VlMoeClassifierModel model_;
  MoeLog moe_log_;
  Rng unused_rng_{0};
};

}  // namespace

std::unique_ptr<TrainTask> make_vlmoe_classify_task(const TrainConfig& config) {
  return std::make_unique<VlMoeClassifyTask>(config);
}

}  // namespace gannet::train
