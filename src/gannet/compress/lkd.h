// ZeroQuant's layer-by-layer knowledge distillation (LKD). Each block in turn: the teacher is the
// float block, the student a copy whose products run with the scheme's quantization simulated
// (straight-through gradients, compress/simulated_quant.h). Both see the teacher's hidden state
// at that block's input, and the student's weights learn to reproduce the teacher block's output
// (mean squared error). Then its weights are quantized for real, and the next block follows. One
// block's memory at a time is trained: no end-to-end backward pass.
//
// A quantized LM head is distilled last, the same way: its student reproduces the teacher's
// next-token distribution (KL divergence) from the teacher's final hidden states. A head tied to
// the embedding in the same format stays tied (the distilled rows serve both).
//
// Calibration text is a list of token batches: from a token file, or (ZeroQuant's data-free
// setting) sequences the float model samples itself (cli/quantize_command.cpp draws them).
#pragma once
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "gannet/compress/quant_scheme.h"
#include "gannet/io/gpt_weights.h"
#include "gannet/nn/parameter.h"

namespace gannet::compress {

struct LkdOptions {
  int64_t steps = 0;  // optimizer steps per block (0: plain rounding, no distillation)
  float lr = 1e-4f;
  uint64_t seed = 1;
};

struct LkdLayerReport {
  int64_t layer = 0;      // -1: the LM head
  double mse_before = 0;  // block output error (head: KL divergence) of plain rounding, over all calibration batches
  double mse_after = 0;   // after distillation (never above mse_before: a layer distillation made
                          // worse on the calibration data keeps its plain rounding)
  bool kept_plain = false;
};

struct QuantizeResult {
  io::GptWeights model;
  std::vector<LkdLayerReport> layers;  // empty without LKD
  std::map<std::string, float> activation_max_abs;  // calibration statistics (static scales)
};

using LkdProgress = std::function<void(int64_t, int64_t, const std::string&)>;

// One LKD stage: `steps` AdamW updates of `params` (no weight decay, the rate cosine-decayed to 0
// over the stage) on loss_of(batch index), cycling through `batches`; progress is reported as
// done = first_step + s + 1 of `total`, with the running loss after `label`.
void distill_stage(const nn::ParameterList& params, const LkdOptions& o, size_t batches,
                   const std::function<autograd::Var(size_t)>& loss_of, const LkdProgress& progress,
                   int64_t first_step, int64_t total, const std::string& label);

// Largest |input| of each product (by weight name) of the float model over the batches.
std::map<std::string, float> calibrate_activations(const io::GptWeights& model, const std::vector<Tensor>& batches);

// Quantizes `model` with `scheme`: calibrates static activation scales if the scheme needs them,
// distills each block for options.steps steps on `batches` (tokens [B, T] i32), and returns the
// quantized model. progress(done, total, text) is called as blocks and steps complete.
QuantizeResult quantize_with_lkd(const io::GptWeights& model, const QuantScheme& scheme,
                                 const std::vector<Tensor>& batches, const LkdOptions& options,
                                 const std::function<void(int64_t, int64_t, const std::string&)>& progress = {});

}  // namespace gannet::compress
