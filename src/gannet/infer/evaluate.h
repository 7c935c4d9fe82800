// Next-token loss of the inference engine over a token file: how quantized models (which run only
// on the engine's integer kernels) are evaluated, on exactly the windows train::evaluate uses
// (windows of seq_len + 1 tokens, stride seq_len), so that the two figures compare.
#pragma once
#include <cstdint>
#include <functional>

#include "gannet/data/token_file.h"
#include "gannet/infer/engine.h"

namespace gannet::infer {

struct TextLoss {
  double loss = 0;        // mean next-token cross-entropy (nats)
  double perplexity = 0;  // exp(loss)
  int64_t tokens = 0;     // predictions counted
};

// Evaluates the first max_windows windows (0: all). The engine needs max_context >= seq_len;
// sequence 0 of its cache is used. progress(done, total) after each window.
TextLoss evaluate_text(Engine& engine, const data::TokenFile& file, int64_t seq_len, int64_t max_windows,
                       const std::function<void(int64_t, int64_t)>& progress = {});

}  // namespace gannet::infer
