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
