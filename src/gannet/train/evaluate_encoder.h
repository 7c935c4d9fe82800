// Evaluation of the bidirectional encoder, shared by its training tasks' validation and by
// `gannet eval`: the classifier on a classification set, and the MLM head on a token file.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "gannet/data/classification_set.h"
#include "gannet/data/mlm_masking.h"
#include "gannet/data/token_file.h"
#include "gannet/metrics/classification_metrics.h"
#include "gannet/models/encoder.h"

namespace gannet::train {

struct ClassifierEval {
  double loss = 0;  // mean cross-entropy over the windows
  metrics::ConfusionMatrix confusion;
};

// Class logits [B, num_classes] f32 of tokens [B, T] with mask [B, T]: a model's, or an
// inference engine's (infer/encoder_engine.h).
using ClassifierLogits = std::function<Tensor(const Tensor& tokens, const Tensor& mask)>;

// The first `max_windows` windows of `set` (0: all), `batch` at a time.
ClassifierEval evaluate_classifier(const ClassifierLogits& logits, const data::ClassificationSet& set, int64_t batch,
                                   int64_t max_windows);
ClassifierEval evaluate_classifier(const models::Encoder& model, const data::ClassificationSet& set, int64_t batch,
                                   int64_t max_windows);

// The classifier tasks' validation figures (val_loss, val_accuracy, val_macro_f1) and their line.
std::vector<std::string> classifier_validation_keys();
std::string describe_classifier_validation(int64_t step, const std::vector<double>& values);

// The seed of the masks of MLM validation and of `gannet eval`: every model evaluated on a file
// sees the same masks.
inline constexpr uint64_t kMlmEvalSeed = 1234;

struct MlmEval {
  double loss = 0;      // mean cross-entropy over the masked positions
  double accuracy = 0;  // the share of masked positions whose token is predicted exactly
  int64_t masked = 0;   // positions counted
};

// Consecutive windows of seq_len tokens (stride seq_len), `batch` at a time, at most max_batches
// batches (0: all), masked by `masking` with a generator seeded by `seed`: the same seed gives the
// same masks, so that figures are comparable across checkpoints.
MlmEval evaluate_mlm(const models::Encoder& model, const data::TokenFile& file, int64_t seq_len, int64_t batch,
                     int64_t max_batches, const data::MlmMaskingOptions& masking, uint64_t seed);

}  // namespace gannet::train
