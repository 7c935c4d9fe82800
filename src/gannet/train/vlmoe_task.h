// VL-MoE pre-training (task "vlmoe", issue 21): models/vlmoe.h on the image-text pairs of
// `gannet data prepare --dataset glyphs` or `--dataset fashion-mnist` (<data.dir>/train; the data set
// told by the files' format, data/image_text_pairs.h), batches from data/glyph_batches.h (its data
// order: epochs of fresh permutations from the seed, so resume is exact). Images and texts are
// encoded apart (as CLIP and VL-MoE's ITC do); the objective is ITC (pairs of one text all
// positives) plus each modality's MoE auxiliary losses (balance and z-losses, weighted by the moe
// block's coefficients), and, each with a positive vlmoe.*_weight, ITM with hard negatives, MLM and
// MIM (models/vlmoe_losses.h; negatives and masks drawn from seeds of the micro-batch's index). The
// text tokenizer is built from the train split's names (order-independent, so the same data gives
// the same ids) and written to <checkpoint.dir>/tokenizer.txt beside the checkpoint; the model's
// vocab_size is its size.
//
// Validation (train/evaluate_vlmoe.h) on vlmoe.eval_split (glyphs: test_chars, the default, seen
// blocks and unseen characters, or test_blocks, unseen blocks; Fashion-MNIST: test), its first
// eval.batches x micro-batch pairs (0: all): val_loss (ITC), val_i2t_r1, val_i2t_r5, val_t2i_r1,
// val_t2i_r5.
#pragma once
#include <memory>

#include "gannet/train/train_config.h"
#include "gannet/train/train_task.h"

namespace gannet::train {

std::unique_ptr<TrainTask> make_vlmoe_task(const TrainConfig& config);

}  // namespace gannet::train
