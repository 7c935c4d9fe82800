#include "gannet/train/classify_task.h"

#include <memory>

#include "gannet/train/classification_batches.h"
#include "gannet/train/encoder_task.h"
#include "gannet/train/evaluate_encoder.h"

namespace gannet::train {

namespace {

class ClassifyTask : public EncoderTask {
 public:
  explicit ClassifyTask(const TrainConfig& cfg)
      : ClassifyTask(cfg, std::make_unique<ClassificationBatches>(cfg, cfg.encoder, cfg.seed + 1)) {}

  Rng& data_rng() override { return data_->rng(); }
  void draw(int64_t, bool mine) override { data_->draw(mine); }
  MicroLoss forward(const MicroBatch&) override {
    autograd::Var loss = model_.encoder.loss(data_->tokens(), data_->mask(), data_->labels());
    return {loss, loss.value().f32()[0]};
  }
  int64_t micro_tokens(int64_t) const override { return cfg_.micro_batch * data_->train().window; }
  int64_t micro_layer_tokens(int64_t s) const override { return micro_tokens(s) * cfg_.encoder.n_layer; }

  Figures validate(int64_t batches) override;
  std::vector<std::string> validation_keys() const override { return classifier_validation_keys(); }
  std::string describe_validation(int64_t step, const Figures& f) const override {
    return describe_classifier_validation(step, f.values);
  }
  std::string describe_data() const override { return data_->describe(cfg_.classify_set); }
  std::string describe_options() const override {
    return cfg_.init_checkpoint.empty() ? "gannet train: the encoder starts from random weights\n"
                                        : str("gannet train: the trunk starts from ", cfg_.init_checkpoint, "\n");
  }

 private:
  // The model's classifier is sized by the train split's classes.
  ClassifyTask(const TrainConfig& cfg, std::unique_ptr<ClassificationBatches> data);
  static models::EncoderConfig config_for(const TrainConfig& cfg, const data::ClassificationSet& set) {
    models::EncoderConfig c = cfg.encoder;
    c.num_classes = set.num_classes();
    return c;
  }

  const TrainConfig& cfg_;
  std::unique_ptr<ClassificationBatches> data_;
};

ClassifyTask::ClassifyTask(const TrainConfig& cfg, std::unique_ptr<ClassificationBatches> data)
    : EncoderTask(config_for(cfg, data->train())), cfg_(cfg), data_(std::move(data)) {
  model_.encoder.init(cfg.seed);
  if (!cfg.init_checkpoint.empty()) io::load_encoder_trunk(cfg.init_checkpoint, model_.encoder);
}

Figures ClassifyTask::validate(int64_t batches) {
  const ClassifierEval e = evaluate_classifier(model_.encoder, data_->val(), cfg_.micro_batch, batches * cfg_.micro_batch);
  return {validation_keys(), {e.loss, e.confusion.accuracy(), e.confusion.macro_f1()}};
}

}  // namespace

std::unique_ptr<TrainTask> make_classify_task(const TrainConfig& config) {
  return std::make_unique<ClassifyTask>(config);
}

}  // namespace gannet::train
