// VL-MoE image classifier checkpoints (models/vlmoe_classifier.h): io/parameter_checkpoint.h's
// format with "model_type" "vlmoe_classifier", "model_config" the VlMoeConfig's JSON
// (io/vlmoe_checkpoint.h's writer) plus "n_classes", "classes" (the class names, a JSON list in
// label order) and "data_format" (the prepared data's format: glyph blocks or Fashion-MNIST).
#pragma once
#include <string>
#include <vector>

#include "gannet/io/parameter_checkpoint.h"
#include "gannet/models/vlmoe_classifier.h"

namespace gannet::io {

struct VlMoeClassifierInfo {
  models::VlMoeConfig config;
  int64_t n_classes = 0;
  std::vector<std::string> classes;  // n_classes names
  std::string data_format;
};

void save_vlmoe_classifier_checkpoint(const std::string& path, const models::VlMoeClassifier& model,
                                      const std::vector<std::string>& classes, const std::string& data_format,
                                      optim::AdamW* optimizer, const TrainState& state);
// What the file declares, validated; one-line errors for another model type or bad metadata.
VlMoeClassifierInfo read_vlmoe_classifier_info(const std::string& path);
// Whether `path` is a checkpoint of model type "vlmoe_classifier" (false for a missing file).
bool is_vlmoe_classifier_checkpoint(const std::string& path);
// Loads weights into `model`, whose config and n_classes must equal the file's; with an optimizer,
// its moments.
void load_vlmoe_classifier_checkpoint(const std::string& path, models::VlMoeClassifier& model, optim::AdamW* optimizer,
                                      TrainState* state);

}  // namespace gannet::io
