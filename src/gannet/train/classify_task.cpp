#include "gannet/train/classify_task.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "gannet/data/classification_set.h"
#include "gannet/data/classification_tasks.h"
#include "gannet/core/format_number.h"
#include "gannet/train/encoder_task.h"
#include "gannet/train/evaluate_encoder.h"

namespace gannet::train {

namespace {

data::ClassificationSet open_set(const TrainConfig& cfg, const char* split) {
  const std::string path = data::classification_set_path(cfg.data_dir, cfg.classify_set, split);
  GANNET_CHECK(std::filesystem::exists(path), "missing ", path, ": run `gannet data tasks --data ", cfg.data_dir,
               "` first");
  data::ClassificationSet set = data::read_classification_set(path);
  GANNET_CHECK(set.window <= cfg.encoder.n_ctx, path, ": windows of ", set.window, " tokens, more than model.n_ctx ",
               cfg.encoder.n_ctx);
  GANNET_CHECK(set.vocab_size <= cfg.encoder.vocab_size, path, " has vocabulary ", set.vocab_size,
               ", more than model.vocab_size ", cfg.encoder.vocab_size);
  return set;
}

// Rows `rows` of a [N, ...] tensor into `out` [rows.size(), ...].
void gather(const Tensor& from, const std::vector<int64_t>& rows, Tensor& out) {
  const size_t row_bytes = from.nbytes() / (size_t)from.dim(0);
  const char* src = static_cast<const char*>(from.raw());
  char* dst = static_cast<char*>(out.raw());
  for (size_t i = 0; i < rows.size(); ++i) std::memcpy(dst + i * row_bytes, src + rows[i] * row_bytes, row_bytes);
}

class ClassifyTask : public EncoderTask {
 public:
  explicit ClassifyTask(const TrainConfig& cfg) : ClassifyTask(cfg, open_set(cfg, "train")) {}

  Rng& data_rng() override { return rng_; }
  void draw(int64_t, bool mine) override;
  MicroLoss forward(const MicroBatch&) override {
    autograd::Var loss = model_.encoder.loss(tokens_, mask_, labels_);
    return {loss, loss.value().f32()[0]};
  }
  int64_t micro_tokens(int64_t) const override { return cfg_.micro_batch * train_.window; }
  int64_t micro_layer_tokens(int64_t s) const override { return micro_tokens(s) * cfg_.encoder.n_layer; }

  Figures validate(int64_t batches) override;
  std::vector<std::string> validation_keys() const override { return {"val_loss", "val_accuracy", "val_macro_f1"}; }
  std::string describe_validation(int64_t step, const Figures& f) const override {
    return str("step ", step, ": val loss ", fixed(f.values[0], 4), ", accuracy ", fixed(100 * f.values[1], 1),
               "%, macro-F1 ", fixed(100 * f.values[2], 1), "%");
  }
  std::string describe_data() const override {
    return str("data ", cfg_.classify_set, " (", train_.size(), " train windows of ", train_.window, " tokens, ",
               train_.num_classes(), " classes)");
  }
  std::string describe_options() const override {
    return cfg_.init_checkpoint.empty() ? "gannet train: the encoder starts from random weights\n"
                                        : str("gannet train: the trunk starts from ", cfg_.init_checkpoint, "\n");
  }

 private:
  // The model's classifier is sized by the train split's classes.
  ClassifyTask(const TrainConfig& cfg, data::ClassificationSet train);
  static models::EncoderConfig config_for(const TrainConfig& cfg, const data::ClassificationSet& set) {
    models::EncoderConfig c = cfg.encoder;
    c.num_classes = set.num_classes();
    return c;
  }

  const TrainConfig& cfg_;
  data::ClassificationSet train_, val_;
  Rng rng_;
  Tensor tokens_, mask_, labels_;  // the kept micro-batch
};

ClassifyTask::ClassifyTask(const TrainConfig& cfg, data::ClassificationSet train)
    : EncoderTask(config_for(cfg, train)),
      cfg_(cfg),
      train_(std::move(train)),
      val_(open_set(cfg, "val")),
      rng_(cfg.seed + 1) {
  GANNET_CHECK(val_.classes == train_.classes && val_.window == train_.window, val_.task, ": the val split's classes or ",
               "window differ from the train split's");
  GANNET_CHECK(train_.size() > 0 && val_.size() > 0, cfg.classify_set, ": a split holds no window");
  model_.encoder.init(cfg.seed);
  if (!cfg.init_checkpoint.empty()) io::load_encoder_trunk(cfg.init_checkpoint, model_.encoder);
  tokens_ = Tensor::empty({cfg.micro_batch, train_.window}, DType::i32);
  mask_ = Tensor::empty({cfg.micro_batch, train_.window}, DType::u8);
  labels_ = Tensor::empty({cfg.micro_batch}, DType::i32);
}

void ClassifyTask::draw(int64_t, bool mine) {
  std::vector<int64_t> rows((size_t)cfg_.micro_batch);
  for (int64_t& r : rows) r = (int64_t)rng_.below((uint64_t)train_.size());
  if (!mine) return;
  gather(train_.tokens, rows, tokens_);
  gather(train_.mask, rows, mask_);
  gather(train_.labels, rows, labels_);
}

Figures ClassifyTask::validate(int64_t batches) {
  const ClassifierEval e = evaluate_classifier(model_.encoder, val_, cfg_.micro_batch, batches * cfg_.micro_batch);
  return {validation_keys(), {e.loss, e.confusion.accuracy(), e.confusion.macro_f1()}};
}

}  // namespace

std::unique_ptr<TrainTask> make_classify_task(const TrainConfig& config) {
  return std::make_unique<ClassifyTask>(config);
}

}  // namespace gannet::train
