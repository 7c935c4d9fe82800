// `gannet eval` for VL-MoE image classification (issue 21):
// - on a "vlmoe_classifier" checkpoint (task vlmoe_classify) with a prepared data directory of the
//   format it was trained on: loss, accuracy and macro-F1 on the validation split (test_chars for
//   glyph blocks, test for Fashion-MNIST), and for Fashion-MNIST the accuracy of each class;
// - on a "vlmoe" pre-training checkpoint with a Fashion-MNIST directory: zero-shot accuracy on its
//   test split by the class names' texts (train/zero_shot_classify.h), overall and per class.
// Beside a Fashion-MNIST accuracy, the baselines Debian's dataset-fashion-mnist ships
// (data/fashion_baselines.h), or a one-line note where it is not installed.
#pragma once
#include <cstdint>
#include <string>

namespace gannet::cli {

bool is_vlmoe_classifier_model(const std::string& path);
// Whether `dir` holds prepared labelled images of format gannet-image-classes-1 (Fashion-MNIST).
bool is_image_classes_dir(const std::string& dir);

// Consecutive batches of `batch` images; max_batches > 0 limits the split to its first
// max_batches x batch images.
void eval_vlmoe_classifier(const std::string& model_path, const std::string& data_dir, int64_t batch,
                           int64_t max_batches);
// `batch` test images a forward pass (each class name is encoded alone).
void eval_vlmoe_zero_shot(const std::string& model_path, const std::string& data_dir, int64_t batch,
                          int64_t max_batches);

}  // namespace gannet::cli
