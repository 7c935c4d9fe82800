// What the encoder's training tasks (MLM, classification) share: the model, whole on every rank
// (no tensor or expert placement), its checkpoint format and its reduction buckets.
#pragma once
#include <memory>

#include "gannet/train/encoder_model.h"
#include "gannet/train/train_task.h"

namespace gannet::train {

class EncoderTask : public TrainTask {
 public:
  explicit EncoderTask(const models::EncoderConfig& config) : model_(config) {}

  CheckpointModel& model() override { return model_; }
  std::unique_ptr<CheckpointModel> make_whole_model() const override {
    return std::make_unique<EncoderModel>(model_.encoder.config());
  }
  dist::BucketPlan buckets() const override {
    return dist::transformer_buckets(model_.parameters(), model_.encoder.config().n_layer);
  }
  std::vector<const dist::ParameterPlacement*> split(dist::ProcessGroups&) override { return {}; }
  double whole_parameter_count() const override { return (double)nn::count_elements(model_.parameters()); }

 protected:
  EncoderModel model_;
};

}  // namespace gannet::train
