#include "gannet/train/evaluate_vlmoe_classifier.h"

#include <algorithm>
#include <numeric>

#include "gannet/autograd/ops.h"
#include "gannet/autograd/tape.h"

namespace gannet::train {

double macro_f1_present(const metrics::ConfusionMatrix& confusion) {
  double sum = 0;
  int present = 0;
  for (int c = 0; c < confusion.num_classes(); ++c)
    if (confusion.true_count(c) > 0) sum += confusion.f1(c), ++present;
  return present > 0 ? sum / present : 0.0;
}

double class_accuracy(const metrics::ConfusionMatrix& confusion, int c) {
  const int64_t n = confusion.true_count(c);
  return n > 0 ? (double)confusion.count(c, c) / (double)n : 0.0;
}

ImageClassifierEval evaluate_vlmoe_classifier(const models::VlMoeClassifier& model, const data::ImageClassSet& set,
                                              int64_t batch, int64_t max_images) {
  GANNET_CHECK(batch >= 1, "evaluate: batch must be at least 1, got ", batch);
  GANNET_CHECK(set.num_classes() == model.n_classes(), set.split, ": ", set.num_classes(),
               " classes, the classifier has ", model.n_classes());
  autograd::NoGrad no_grad;
  const int64_t end = max_images > 0 ? std::min(set.size(), max_images) : set.size();
  GANNET_CHECK(end > 0, set.split, ": no image to evaluate");
  ImageClassifierEval r{end, 0, metrics::ConfusionMatrix(set.num_classes())};
  const int64_t C = model.n_classes();
  double loss_sum = 0;
  for (int64_t first = 0; first < end; first += batch) {
    const int64_t last = std::min(end, first + batch);
    std::vector<int64_t> idx((size_t)(last - first));
    std::iota(idx.begin(), idx.end(), first);
    Tensor images, labels;
    data::gather_image_classes(set, idx, images, labels);
    const autograd::Var logits = model.forward(images).logits;
    const float* l = logits.value().f32();
    for (int64_t i = 0; i < last - first; ++i)
      r.confusion.add(labels.data<int32_t>()[i], (int)(std::max_element(l + i * C, l + (i + 1) * C) - (l + i * C)));
    // cross_entropy overwrites the logits: after the predictions.
    loss_sum += (double)autograd::cross_entropy(logits, labels).value().f32()[0] * (double)(last - first);
  }
  r.loss = loss_sum / (double)end;
  return r;
}

std::vector<std::string> image_classifier_validation_keys() { return {"val_loss", "val_accuracy", "val_macro_f1"}; }

}  // namespace gannet::train
