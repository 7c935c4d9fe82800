// AdamW (decoupled weight decay, PyTorch semantics) over a parameter list; weight decay only
// on parameters marked `decay`.
#pragma once
#include <vector>

#include "gannet/nn/parameter.h"

namespace gannet::optim {

struct AdamWOptions {
  float lr = 6e-4f;
  float beta1 = 0.9f;
  float beta2 = 0.95f;
  float eps = 1e-8f;
  float weight_decay = 0.1f;
};

class AdamW {
 public:
  AdamW(const nn::ParameterList& params, const AdamWOptions& options);
  // One update with learning rate `lr`; each gradient is multiplied by grad_scale first (for
  // gradient accumulation and clipping).
  void step(float lr, float grad_scale = 1.f);
  int64_t step_count() const { return step_; }
  void set_step_count(int64_t s) { step_ = s; }
  const AdamWOptions& options() const { return options_; }
  // First and second moments, one pair per parameter, in parameter order (for checkpoints).
  std::vector<Tensor>& first_moments() { return m_; }
  std::vector<Tensor>& second_moments() { return v_; }

 private:
  nn::ParameterList params_;
  AdamWOptions options_;
  std::vector<Tensor> m_, v_;
  int64_t step_ = 0;
};

}  // namespace gannet::optim
