// Accuracy and macro-F1 of a classifier, from a confusion matrix (rows: true class, columns:
// predicted class). Used by the classification task's validation and by `gannet eval`.
//
// Macro-F1 is the unweighted mean of the per-class F1 over all num_classes classes, where
// F1 = 2 tp / (2 tp + fp + fn) and a class with no true and no predicted samples (0 / 0) counts
// as 0 and is included: scikit-learn's f1_score(y, p, average="macro", labels=range(C),
// zero_division=0). A class never predicted but present has F1 0 as well.
#pragma once
#include <cstdint>
#include <vector>

namespace gannet::metrics {

class ConfusionMatrix {
 public:
  explicit ConfusionMatrix(int num_classes);  // throws unless num_classes >= 1

  // Counts one sample; throws a one-line gannet::Error when either class is outside [0, classes).
  void add(int true_class, int predicted_class);
  // Counts labels[i] against predictions[i]; the two must have the same length.
  void add_all(const std::vector<int32_t>& labels, const std::vector<int32_t>& predictions);

  int num_classes() const { return classes_; }
  int64_t total() const { return total_; }
  int64_t count(int true_class, int predicted_class) const;
  int64_t true_count(int c) const;       // samples whose true class is c (tp + fn)
  int64_t predicted_count(int c) const;  // samples predicted as c (tp + fp)

  double accuracy() const;  // trace / total; 0 when there are no samples
  double f1(int c) const;   // 2 tp / (2 tp + fp + fn); 0 when the denominator is 0
  double macro_f1() const;  // mean of f1(c) over every class (see the file comment)

 private:
  int classes_;
  int64_t total_ = 0;
  std::vector<int64_t> counts_;  // classes_ x classes_, row = true class
};

// Shorthands over one confusion matrix of (labels, predictions).
double accuracy(const std::vector<int32_t>& labels, const std::vector<int32_t>& predictions, int num_classes);
double macro_f1(const std::vector<int32_t>& labels, const std::vector<int32_t>& predictions, int num_classes);

}  // namespace gannet::metrics
