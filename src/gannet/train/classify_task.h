// Sequence classification with the bidirectional encoder (task "classify"): fine-tuning on a set
// of `gannet data tasks` (<data.dir>/tasks/<data.task>/{train,val}.safetensors), the trunk taken
// from an encoder checkpoint (init.checkpoint: usually an MLM one) or initialised from the seed.
// Micro-batches are windows drawn uniformly with replacement. Validation on every val window (or
// the first eval.batches batches of them): val_loss, val_accuracy, val_macro_f1.
#pragma once
#include <memory>

#include "gannet/train/train_config.h"
#include "gannet/train/train_task.h"

namespace gannet::train {

std::unique_ptr<TrainTask> make_classify_task(const TrainConfig& config);

}  // namespace gannet::train
