// Differentiable pieces of a CLIP-style contrastive loss (models/vlmoe_losses.h composes them with
// autograd::linear and cross_entropy): row-wise L2 normalisation, and scaling by the exponential of
// a learned, clamped log-scale (CLIP's logit_scale, the inverse temperature).
#pragma once
#include "gannet/autograd/variable.h"

namespace gannet::autograd {

// y[r] = x[r] / max(||x[r]||, eps).  x [N, C] f32  ->  [N, C]
Var l2_normalize_rows(const Var& x, float eps = 1e-12f);

// y = x * exp(min(s, max_log_scale)).  x any f32 shape, log_scale [1]. Where the clamp is active
// the scale gets no gradient (torch.clamp's convention), so it cannot drift further out.
Var scale_by_exp(const Var& x, const Var& log_scale, float max_log_scale);

}  // namespace gannet::autograd
