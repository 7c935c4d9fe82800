// The majority-class baseline of a classification task: always predict the class most frequent
// in the training labels, scored on the validation labels. The number a classifier must beat.
#pragma once
#include <cstdint>
#include <vector>

namespace gannet::metrics {

struct MajorityBaseline {
  int majority_class = 0;  // most frequent training class; ties go to the lowest index
  double accuracy = 0;     // on the validation labels
  double macro_f1 = 0;     // on the validation labels (classification_metrics.h's convention)
};

// Throws a one-line gannet::Error when train_labels is empty or a label lies outside
// [0, num_classes).
MajorityBaseline majority_baseline(const std::vector<int32_t>& train_labels, const std::vector<int32_t>& val_labels,
                                   int num_classes);

}  // namespace gannet::metrics
