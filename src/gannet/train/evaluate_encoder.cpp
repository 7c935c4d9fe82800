#include "gannet/train/evaluate_encoder.h"

#include <algorithm>

#include "gannet/autograd/ops.h"
#include "gannet/autograd/tape.h"
#include "gannet/core/format_number.h"
#include "gannet/data/window_sampler.h"

namespace gannet::train {

namespace {
int32_t argmax(const float* row, int64_t n) { return (int32_t)(std::max_element(row, row + n) - row); }

// Flat indices b*T + t of the targeted positions, and their targets.
void targeted(const Tensor& targets, Tensor& positions, Tensor& labels) {
  std::vector<int32_t> pos, lab;
  const int32_t* t = targets.data<int32_t>();
  for (int64_t i = 0; i < targets.numel(); ++i)
    if (t[i] >= 0) pos.push_back((int32_t)i), lab.push_back(t[i]);
  positions = Tensor::empty({(int64_t)pos.size()}, DType::i32);
  labels = Tensor::empty({(int64_t)lab.size()}, DType::i32);
  std::copy(pos.begin(), pos.end(), positions.data<int32_t>());
  std::copy(lab.begin(), lab.end(), labels.data<int32_t>());
}
}  // namespace

ClassifierEval evaluate_classifier(const models::Encoder& model, const data::ClassificationSet& set, int64_t batch,
                                   int64_t max_windows) {
  return evaluate_classifier([&](const Tensor& tokens, const Tensor& mask) { return model.logits(tokens, mask).value(); },
                             set, batch, max_windows);
}

ClassifierEval evaluate_classifier(const ClassifierLogits& model_logits, const data::ClassificationSet& set,
                                   int64_t batch, int64_t max_windows) {
  autograd::NoGrad no_grad;
  const int64_t end = max_windows > 0 ? std::min(set.size(), max_windows) : set.size();
  GANNET_CHECK(end > 0, set.task, " ", set.split, ": no window to evaluate");
  ClassifierEval r{0, metrics::ConfusionMatrix(set.num_classes())};
  double loss_sum = 0;
  for (int64_t first = 0; first < end; first += batch) {
    const int64_t last = std::min(end, first + batch);
    const Tensor labels = set.labels.slice(first, last);
    autograd::Var logits(model_logits(set.tokens.slice(first, last), set.mask.slice(first, last)));
    GANNET_CHECK(logits.value().dtype() == DType::f32 && logits.value().shape() == Shape({last - first, set.num_classes()}),
                 "evaluate_classifier: logits ", logits.value().describe(), " for ", last - first, " windows of ",
                 set.num_classes(), " classes");
    const int64_t C = logits.value().dim(1);
    for (int64_t i = 0; i < last - first; ++i)
      r.confusion.add(labels.data<int32_t>()[i], argmax(logits.value().f32() + i * C, C));
    // cross_entropy overwrites the logits: after the predictions.
    loss_sum += (double)autograd::cross_entropy(logits, labels).value().f32()[0] * (double)(last - first);
  }
  r.loss = loss_sum / (double)end;
  return r;
}

std::vector<std::string> classifier_validation_keys() { return {"val_loss", "val_accuracy", "val_macro_f1"}; }

std::string describe_classifier_validation(int64_t step, const std::vector<double>& v) {
  return str("step ", step, ": val loss ", fixed(v.at(0), 4), ", accuracy ", fixed(100 * v.at(1), 1), "%, macro-F1 ",
             fixed(100 * v.at(2), 1), "%");
}

MlmEval evaluate_mlm(const models::Encoder& model, const data::TokenFile& file, int64_t seq_len, int64_t batch,
                     int64_t max_batches, const data::MlmMaskingOptions& masking, uint64_t seed) {
  autograd::NoGrad no_grad;
  const int64_t windows = data::eval_window_count(file, seq_len);
  GANNET_CHECK(windows > 0, file.path(), " holds ", file.size(), " tokens, fewer than one window of ", seq_len + 1);
  int64_t n_batches = (windows + batch - 1) / batch;
  if (max_batches > 0) n_batches = std::min(n_batches, max_batches);
  Rng rng(seed);
  Tensor tokens = Tensor::empty({batch, seq_len}, DType::i32), unused = Tensor::empty({batch, seq_len}, DType::i32);
  double loss_sum = 0;
  int64_t correct = 0;
  MlmEval r;
  for (int64_t i = 0; i < n_batches; ++i) {
    const int64_t rows = data::eval_windows(file, seq_len, i * batch, tokens, unused);
    if (rows == 0) break;
    const data::MlmBatch b = data::mask_tokens(tokens.slice(0, rows), Tensor(), masking, rng);
    Tensor positions, labels;
    targeted(b.targets, positions, labels);
    if (labels.numel() == 0) continue;
    autograd::Var logits = model.mlm_logits(b.inputs, Tensor(), positions);
    const int64_t V = logits.value().dim(1);
    for (int64_t m = 0; m < labels.numel(); ++m)
      correct += argmax(logits.value().f32() + m * V, V) == labels.data<int32_t>()[m];
    loss_sum += (double)autograd::cross_entropy(logits, labels).value().f32()[0] * (double)labels.numel();
    r.masked += labels.numel();
  }
  GANNET_CHECK(r.masked > 0, file.path(), ": no token to mask in its windows");
  r.loss = loss_sum / (double)r.masked;
  r.accuracy = (double)correct / (double)r.masked;
  return r;
}

}  // namespace gannet::train
