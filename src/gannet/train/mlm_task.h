// Masked-language-model pre-training of the bidirectional encoder (task "mlm"): random windows of
// the prepared token files (train.tok, val.tok), BERT's masking (data/mlm_masking.h: 15% of the
// real tokens, 80% [MASK], 10% random, 10% unchanged), cross-entropy at the masked positions.
// Validation on consecutive windows of val.tok, masked the same way at every validation:
// val_loss, val_ppl and val_accuracy (the share of masked tokens predicted exactly).
#pragma once
#include <memory>

#include "gannet/train/train_config.h"
#include "gannet/train/train_task.h"

namespace gannet::train {

std::unique_ptr<TrainTask> make_mlm_task(const TrainConfig& config);

}  // namespace gannet::train
