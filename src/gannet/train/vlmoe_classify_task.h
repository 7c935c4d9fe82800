// Image classification on VL-MoE (task "vlmoe_classify", issue 21): models/vlmoe_classifier.h on
// a prepared data directory of labelled images (data/image_classes.h: glyphs labelled by their
// Unicode block, or Fashion-MNIST), the format read from the files' metadata. The trunk starts from
// a VL-MoE pre-training checkpoint (init.checkpoint, model_type "vlmoe": fine-tuning; its
// image_size must be the data's) or from the seed (the from-scratch baseline); the head always
// from the seed. Micro-batches: epochs of fresh permutations of the train split from the seed, so
// resume is exact. Loss: cross-entropy plus the image pass's MoE auxiliary losses. Validation on
// vlmoe_classify.eval_split (default test_chars for glyphs, test for Fashion-MNIST; test_blocks is
// an error: its blocks are never seen), its first eval.batches x micro-batch images (0: all):
// val_loss, val_accuracy, val_macro_f1 (over the classes present). Checkpoints: model_type
// "vlmoe_classifier" (io/vlmoe_classifier_checkpoint.h).
#pragma once
#include <memory>

#include "gannet/train/train_config.h"
#include "gannet/train/train_task.h"

namespace gannet::train {

std::unique_ptr<TrainTask> make_vlmoe_classify_task(const TrainConfig& config);

}  // namespace gannet::train
