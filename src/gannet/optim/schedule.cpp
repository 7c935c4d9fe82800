#include "gannet/optim/schedule.h"

#include <cmath>

namespace gannet::optim {

float CosineSchedule::at(int64_t step) const {
  if (step < warmup_steps) return max_lr * (float)(step + 1) / (float)warmup_steps;
  if (step >= total_steps) return min_lr;
  double progress = (double)(step - warmup_steps) / (double)(total_steps - warmup_steps);
  double cosine = 0.5 * (1.0 + std::cos(M_PI * progress));
  return (float)(min_lr + (max_lr - min_lr) * cosine);
}

}  // namespace gannet::optim

namespace gannet::optim {

float LayerTokenSchedule::at(double x) const {
  if (x < warmup_layer_tokens) {
    double f = log_warmup ? std::log1p(x) / std::log1p(warmup_layer_tokens) : x / warmup_layer_tokens;
    return (float)(max_lr * f);
  }
  if (x >= total_layer_tokens) return min_lr;
  double progress = (x - warmup_layer_tokens) / (total_layer_tokens - warmup_layer_tokens);
  double cosine = 0.5 * (1.0 + std::cos(M_PI * progress));
  return (float)(min_lr + (max_lr - min_lr) * cosine);
}

}  // namespace gannet::optim
