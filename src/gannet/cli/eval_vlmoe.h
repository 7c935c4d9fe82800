// `gannet eval` on a VL-MoE checkpoint (io/vlmoe_checkpoint.h): the ITC loss and the image-text
// retrieval figures (train/evaluate_vlmoe.h) on each held-out glyph split of a prepared data
// directory, test_chars (seen blocks, unseen characters) then test_blocks (unseen scripts).
// On a Fashion-MNIST directory (gannet-image-classes-1) instead: zero-shot classification of its
// test images by the class names' texts (cli/eval_vlmoe_classifier.h).
#pragma once
#include <cstdint>
#include <string>

namespace gannet::cli {

// Evaluates and prints one line per split. ITC is over consecutive batches of `batch` pairs (its
// negatives are the batch's other pairs); `max_batches` > 0 limits each split to the first
// max_batches x batch pairs, else all of it.
void eval_vlmoe(const std::string& model_path, const std::string& data_dir, int64_t batch, int64_t max_batches);

}  // namespace gannet::cli
