// Learning-rate schedules: linear warmup then cosine decay to a floor.
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

}  // namespace gannet::optim
