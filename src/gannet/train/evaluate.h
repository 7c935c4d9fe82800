// Validation loss of a GPT over consecutive windows of a token file.
#pragma once
#include <functional>

#include "gannet/data/token_file.h"
#include "gannet/models/gpt.h"

namespace gannet::train {

struct EvalResult {
  double loss = 0;        // mean next-token cross-entropy (nats)
  double perplexity = 0;  // exp(loss)
  int64_t tokens = 0;     // predictions counted
};

// Evaluates on windows of seq_len+1 tokens (stride seq_len), batch rows at a time, at most
// max_batches batches (0: the whole file).
EvalResult evaluate(const models::Gpt& model, const data::TokenFile& file, int64_t seq_len, int64_t batch,
                    int64_t max_batches);
// The same for any language model given as its mean next-token loss of tokens [R, T] against
// targets [R, T] (a compressed student's simulated forward).
using WindowLoss = std::function<float(const Tensor& tokens, const Tensor& targets)>;
EvalResult evaluate(const WindowLoss& loss, const data::TokenFile& file, int64_t seq_len, int64_t batch,
                    int64_t max_batches);

}  // namespace gannet::train
