// XTC's single-stage distillation (task "xtc"; compress/xtc_config.h): a student encoder with
// binary or ternary weights (simulated with straight-through gradients) and int8 activations,
// initialised from the fine-tuned teacher's layers (all of them, or the subset layer_reduction
// keeps), learns from the teacher on a classification set: soft cross-entropy on the logits, MSE
// on the hidden states and on the attention scores, weighted as the config says (or in two
// stages). Micro-batches as the classifier's (train/classification_batches.h). Validation runs
// the student as it will be packed (quantized): val_loss against the labels, val_accuracy,
// val_macro_f1. Checkpoints hold the student's f32 latent weights; `gannet compress` packs them.
#pragma once
#include <memory>

#include "gannet/train/train_config.h"
#include "gannet/train/train_task.h"

namespace gannet::train {

std::unique_ptr<TrainTask> make_xtc_task(const TrainConfig& config);

}  // namespace gannet::train
