// The training data of the classification tasks (fine-tuning, XTC's distillation): a
// classification set's train and val splits (`gannet data tasks`), checked against the model,
// and micro-batches of windows drawn from the train split with replacement.
#pragma once
#include <string>

#include "gannet/core/rng.h"
#include "gannet/data/classification_set.h"
#include "gannet/models/encoder.h"
#include "gannet/train/train_config.h"

namespace gannet::train {

// <data_dir>/tasks/<set>/<split>.safetensors, checked to fit `model` (window, vocabulary).
data::ClassificationSet open_classification_split(const TrainConfig& cfg, const models::EncoderConfig& model,
                                                  const char* split);

class ClassificationBatches {
 public:
  // Opens both splits; the order of the draws follows `seed`.
  ClassificationBatches(const TrainConfig& cfg, const models::EncoderConfig& model, uint64_t seed);
  const data::ClassificationSet& train() const { return train_; }
  const data::ClassificationSet& val() const { return val_; }
  Rng& rng() { return rng_; }
  // Draws micro_batch windows; keeps them when `mine` (another rank's otherwise).
  void draw(bool mine);
  const Tensor& tokens() const { return tokens_; }  // [micro_batch, window] i32
  const Tensor& mask() const { return mask_; }      // [micro_batch, window] u8
  const Tensor& labels() const { return labels_; }  // [micro_batch] i32
  std::string describe(const std::string& set) const;

 private:
  int64_t micro_batch_;
  data::ClassificationSet train_, val_;
  Rng rng_;
  Tensor tokens_, mask_, labels_;
};

}  // namespace gannet::train
