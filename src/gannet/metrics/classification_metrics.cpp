#include "gannet/metrics/classification_metrics.h"

#include "gannet/core/error.h"

namespace gannet::metrics {

ConfusionMatrix::ConfusionMatrix(int num_classes) : classes_(num_classes) {
  GANNET_CHECK(num_classes >= 1 && num_classes <= (1 << 15), "confusion matrix: ", num_classes,
               " classes (must be in [1, 32768])");
  counts_.assign((size_t)num_classes * (size_t)num_classes, 0);
}

void ConfusionMatrix::add(int true_class, int predicted_class) {
  GANNET_CHECK(true_class >= 0 && true_class < classes_, "confusion matrix: true class ", true_class,
               " is outside [0, ", classes_, ")");
  GANNET_CHECK(predicted_class >= 0 && predicted_class < classes_, "confusion matrix: predicted class ",
               predicted_class, " is outside [0, ", classes_, ")");
  ++counts_[(size_t)true_class * classes_ + predicted_class];
  ++total_;
}

void ConfusionMatrix::add_all(const std::vector<int32_t>& labels, const std::vector<int32_t>& predictions) {
  GANNET_CHECK(labels.size() == predictions.size(), "confusion matrix: ", labels.size(), " labels but ",
               predictions.size(), " predictions");
  for (size_t i = 0; i < labels.size(); ++i) add(labels[i], predictions[i]);
}

int64_t ConfusionMatrix::count(int true_class, int predicted_class) const {
  GANNET_CHECK(true_class >= 0 && true_class < classes_ && predicted_class >= 0 && predicted_class < classes_,
               "confusion matrix: cell (", true_class, ", ", predicted_class, ") is outside ", classes_, " x ",
               classes_);
  return counts_[(size_t)true_class * classes_ + predicted_class];
}

int64_t ConfusionMatrix::true_count(int c) const {
  int64_t n = 0;
  for (int p = 0; p < classes_; ++p) n += count(c, p);
  return n;
}

int64_t ConfusionMatrix::predicted_count(int c) const {
  int64_t n = 0;
  for (int t = 0; t < classes_; ++t) n += count(t, c);
  return n;
}

double ConfusionMatrix::accuracy() const {
  if (total_ == 0) return 0.0;
  int64_t correct = 0;
  for (int c = 0; c < classes_; ++c) correct += count(c, c);
  return (double)correct / (double)total_;
}

double ConfusionMatrix::f1(int c) const {
  const int64_t tp = count(c, c);
  const int64_t fn = true_count(c) - tp, fp = predicted_count(c) - tp;
  const int64_t denom = 2 * tp + fp + fn;
  return denom == 0 ? 0.0 : 2.0 * (double)tp / (double)denom;
}

double ConfusionMatrix::macro_f1() const {
  double sum = 0;
  for (int c = 0; c < classes_; ++c) sum += f1(c);
  return sum / classes_;
}

double accuracy(const std::vector<int32_t>& labels, const std::vector<int32_t>& predictions, int num_classes) {
  ConfusionMatrix m(num_classes);
  m.add_all(labels, predictions);
  return m.accuracy();
}

double macro_f1(const std::vector<int32_t>& labels, const std::vector<int32_t>& predictions, int num_classes) {
  ConfusionMatrix m(num_classes);
  m.add_all(labels, predictions);
  return m.macro_f1();
}

}  // namespace gannet::metrics
