// What the compressed students' tasks (XTC: train/xtc_task.h, NxMiFormer: train/nm_task.h) share:
// a student encoder distilled from a fine-tuned f32 teacher on a classification set. Each micro-
// batch runs the teacher (no gradients) and the student (in its StudentForm) through
// compress/xtc_forward's traced forward; the loss is soft cross-entropy on the logits, MSE on the
// hidden states and on the attention scores, weighted by the config's distillation block (or in
// two stages), plus the form's own terms (ADMM's penalty). Micro-batches as the classifier's
// (train/classification_batches.h). Validation runs the student as it will be packed: val_loss
// against the labels, val_accuracy, val_macro_f1.
#pragma once
#include <vector>

#include "gannet/compress/student_form.h"
#include "gannet/compress/xtc_forward.h"
#include "gannet/train/classification_batches.h"
#include "gannet/train/encoder_task.h"
#include "gannet/train/train_config.h"

namespace gannet::train {

class DistillTask : public EncoderTask {
 public:
  // The student has student_config's shape: the teacher's (cfg.encoder) with layer_map.size()
  // blocks, block j distilled against teacher block layer_map[j].
  DistillTask(const TrainConfig& cfg, const compress::DistillWeights& distill, std::vector<int64_t> layer_map);

  Rng& data_rng() override { return data_.rng(); }
  void draw(int64_t, bool mine) override { data_.draw(mine); }
  MicroLoss forward(const MicroBatch& batch) override;
  int64_t micro_tokens(int64_t) const override { return cfg_.micro_batch * data_.train().window; }
  int64_t micro_layer_tokens(int64_t s) const override {
    return micro_tokens(s) * model_.encoder.config().n_layer;
  }
  void describe_step(int64_t step, nlohmann::json& line) override;
  void start_at(int64_t step) override { next_step_ = step; }

  Figures validate(int64_t batches) override;
  std::vector<std::string> validation_keys() const override;
  std::string describe_validation(int64_t step, const Figures& f) const override;
  std::string describe_data() const override;

 protected:
  // The student's form at the start of `step`: called before each forward, and before validation
  // with the step training would take next (steps come in order).
  virtual const compress::StudentForm& form_at(int64_t step) = 0;
  // Terms the form adds to the objective of a micro-batch (undefined: none); not in the reported loss.
  virtual autograd::Var form_objective() { return {}; }
  // The student's initial weights: init.checkpoint when given, else the teacher's blocks of the layer
  // map and the modules of `copied` (the rest keep the seed's).
  void init_student(const std::vector<std::string>& copied);

  const TrainConfig& cfg_;
  const compress::DistillWeights& distill_;
  models::Encoder teacher_;
  std::vector<int64_t> layer_map_;
  ClassificationBatches data_;
  int64_t next_step_ = 0;  // the step after the last one trained

 private:
  struct Terms {
    double logits = 0, hidden = 0, attention = 0;
  };
  autograd::Var distillation_loss(const compress::EncoderTrace& s, const compress::EncoderTrace& t, float wl, float wh,
                                  float wa);
  Terms terms_;
};

}  // namespace gannet::train
