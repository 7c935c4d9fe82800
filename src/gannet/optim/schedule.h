// Learning-rate schedules: linear warmup then cosine decay to a floor, counted in optimizer steps
// (CosineSchedule) or in layer-tokens actually processed (LayerTokenSchedule).
#pragma once
#include <cstdint>

namespace gannet::optim {

struct CosineSchedule {
  float max_lr = 6e-4f;
  float min_lr = 6e-5f;
  int64_t warmup_steps = 100;
  int64_t total_steps = 1000;
  // Learning rate for update number `step` (counting from 0).
  float at(int64_t step) const;
};

// The same shape over layer-tokens (one token through one transformer layer), so that the rate
// follows the compute when random-LTD or a sequence-length curriculum makes steps cheaper:
// warmup to max_lr over warmup_layer_tokens (linear, or log: log(1+x)/log(1+W)), then cosine
// decay to min_lr at total_layer_tokens, min_lr after.
struct LayerTokenSchedule {
  float max_lr = 6e-4f;
  float min_lr = 6e-5f;
  double warmup_layer_tokens = 0;
  double total_layer_tokens = 1;
  bool log_warmup = false;
  // Learning rate for an update that brings the layer-tokens processed to `layer_tokens`.
  float at(double layer_tokens) const;
};

}  // namespace gannet::optim
