// Evaluation of a VL-MoE image classifier (models/vlmoe_classifier.h), shared by task
// "vlmoe_classify"'s validation and `gannet eval`: mean cross-entropy, accuracy, per-class
// accuracy and macro-F1 over consecutive batches, MoE layers in evaluation mode.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "gannet/data/image_classes.h"
#include "gannet/metrics/classification_metrics.h"
#include "gannet/models/vlmoe_classifier.h"

namespace gannet::train {

struct ImageClassifierEval {
  int64_t images = 0;
  double loss = 0;  // mean cross-entropy per image
  metrics::ConfusionMatrix confusion{1};
};

// Macro-F1 over the classes with at least one true sample (a glyph data set has 156 blocks and its
// validation split fewer: absent classes would only pull the mean down); 0 without samples.
double macro_f1_present(const metrics::ConfusionMatrix& confusion);
// Accuracy of class c: correct / true samples (0 when it has none).
double class_accuracy(const metrics::ConfusionMatrix& confusion, int c);

// The first max_images images of `set` (all when 0), `batch` at a time; predictions by the highest
// logit (the lowest class index on a tie).
ImageClassifierEval evaluate_vlmoe_classifier(const models::VlMoeClassifier& model, const data::ImageClassSet& set,
                                              int64_t batch, int64_t max_images);

// Task "vlmoe_classify"'s validation keys: val_loss, val_accuracy, val_macro_f1.
std::vector<std::string> image_classifier_validation_keys();

}  // namespace gannet::train
