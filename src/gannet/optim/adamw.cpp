#include "gannet/optim/adamw.h"

#include "gannet/kernels/adamw.h"

namespace gannet::optim {

AdamW::AdamW(const nn::ParameterList& params, const AdamWOptions& options) : params_(params), options_(options) {
  for (const auto& p : params_) {
    m_.push_back(Tensor::zeros(p.var.shape()));
    v_.push_back(Tensor::zeros(p.var.shape()));
  }
}

void AdamW::step(float lr, float grad_scale) {
  ++step_;
  for (size_t i = 0; i < params_.size(); ++i) {
    const auto& p = params_[i];
    const Tensor& g = p.var.grad();
    GANNET_CHECK(g.defined(), "adamw: parameter ", p.name, " has no gradient");
    kernels::adamw_update(p.var.value().f32(), g.f32(), m_[i].f32(), v_[i].f32(), g.numel(), lr, options_.beta1,
                          options_.beta2, options_.eps, p.decay ? options_.weight_decay : 0.f, step_, grad_scale);
  }
}

}  // namespace gannet::optim
