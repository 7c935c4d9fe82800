#include "gannet/autograd/tape.h"

#include "gannet/kernels/bias.h"

namespace gannet::autograd {

void Tape::record(std::function<void()> backward_fn) { fns_.push_back(std::move(backward_fn)); }

void Tape::backward(const Var& loss) {
  GANNET_CHECK(loss.defined() && loss.value().numel() == 1, "backward needs a single-element loss, got ",
               loss.defined() ? loss.value().describe() : "undefined");
  GANNET_CHECK(loss.requires_grad(), "backward: the loss does not depend on anything that needs a gradient");
  bool acc;
  Tensor& g = grad_for(loss, acc);
  if (acc) g.f32()[0] += 1.f;
  else g.f32()[0] = 1.f;
  run_backward();
}

void Tape::run_backward() {
  for (size_t i = fns_.size(); i-- > 0;) {
    fns_[i]();
    fns_[i] = nullptr;  // free what the closure held as soon as it has run
  }
  fns_.clear();
}

namespace {
Tape*& current_tape() {
  thread_local Tape own;
  thread_local Tape* current = &own;
  return current;
}
}  // namespace

Tape& tape() { return *current_tape(); }
TapeScope::TapeScope(Tape& t) : prev_(current_tape()) { current_tape() = &t; }
TapeScope::~TapeScope() { current_tape() = prev_; }

static thread_local bool g_grad_enabled = true;

bool grad_enabled() { return g_grad_enabled; }
GradModeScope::GradModeScope(bool enabled) : prev_(g_grad_enabled) { g_grad_enabled = enabled; }
GradModeScope::~GradModeScope() { g_grad_enabled = prev_; }

Tensor& grad_for(const Var& v, bool& accumulate) {
  Tensor& g = v.grad();
  accumulate = g.defined();
  if (!accumulate) g = Tensor::empty(v.shape(), DType::f32);
  return g;
}

Tensor& sum_target(const Var& v) {
  bool accumulate;
  Tensor& g = grad_for(v, accumulate);
  if (!accumulate) g.zero();
  return g;
}

void deposit_grad(const Var& v, const Tensor& fresh) {
  Tensor& g = v.grad();
  if (!g.defined()) g = fresh;
  else kernels::add_inplace(g.f32(), fresh.f32(), g.numel());
}

void record_grad_in_value(const Var& input, const Var& loss) {
  tape().record([input, loss]() {
    const Tensor& dL = loss.grad();
    if (!dL.defined()) return;
    const float s = dL.f32()[0];
    Tensor g = input.value();
    if (s != 1.f) kernels::scale_inplace(g.f32(), s, g.numel());
    deposit_grad(input, g);
  });
}

}  // namespace gannet::autograd
