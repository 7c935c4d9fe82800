#include "gannet/metrics/majority_baseline.h"

#include "gannet/core/error.h"
#include "gannet/metrics/classification_metrics.h"

namespace gannet::metrics {

MajorityBaseline majority_baseline(const std::vector<int32_t>& train_labels, const std::vector<int32_t>& val_labels,
                                   int num_classes) {
  GANNET_CHECK(!train_labels.empty(), "majority baseline: no training labels");
  GANNET_CHECK(num_classes >= 1, "majority baseline: ", num_classes, " classes");
  std::vector<int64_t> counts(num_classes, 0);
  for (int32_t y : train_labels) {
    GANNET_CHECK(y >= 0 && y < num_classes, "majority baseline: training label ", y, " is outside [0, ",
                 num_classes, ")");
    ++counts[y];
  }
  MajorityBaseline b;
  for (int c = 1; c < num_classes; ++c)
    if (counts[c] > counts[b.majority_class]) b.majority_class = c;
  ConfusionMatrix m(num_classes);
  for (int32_t y : val_labels) m.add(y, b.majority_class);
  b.accuracy = m.accuracy();
  b.macro_f1 = m.macro_f1();
  return b;
}

}  // namespace gannet::metrics
